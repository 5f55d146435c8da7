"""The kernel registry, enumerated: every spec has a twin with the kernel's arguments, and
every kernel source builds on OpenCL (PoCL) and compiles with nvcc in every specialisation.

The CUDA backend cannot run here (no GPU), so compiling each kernel file with nvcc exactly as
CuPy would (same generated source text, same -D defines, --fmad=false) is the CUDA check. It
skips with a reason only where nvcc is missing.
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess

import pytest

from gpuseg.backends.cuda import NVRTC_OPTIONS
from gpuseg.backends.registry import Kernel, Procedure, all_specs, kernel_names, kernel_source, specialisations
from gpuseg.kernels import constants

from .parity import backend_or_skip

SPECS = all_specs()
KERNELS = [s for s in SPECS if isinstance(s, Kernel)]
CASES = [(src, dict(d)) for src, ds in sorted(specialisations().items()) for d in ds]
IDS = [src + "".join(f"-{k}={v}" for k, v in d.items()) for src, d in CASES]


def _n_args(spec: Kernel) -> int:
    return sum(7 if p.kind.startswith("box") else 1 for p in spec.layout)


def _c_params(spec: Kernel) -> list[str]:
    text = kernel_source(spec.source)
    m = re.search(r"KERNEL void " + spec.name + r"\s*\(([^)]*)\)", text)
    assert m, f"kernels/{spec.source}.cl has no KERNEL void {spec.name}(...)"
    return [p.strip() for p in m.group(1).split(",")]


def test_every_kernel_file_and_entry_point_is_declared():
    declared = {(k.source, k.name) for k in KERNELS}
    for src in kernel_names():
        entries = re.findall(r"KERNEL void (\w+)\s*\(", kernel_source(src))
        for e in entries:
            assert (src, e) in declared, f"kernels/{src}.cl:{e} has no registry spec in gpuseg/kernels/{src}.py"
    for src, _ in declared:
        assert src in kernel_names(), f"a spec names kernels/{src}.cl, which does not exist"


@pytest.mark.parametrize("spec", SPECS, ids=[repr(s) for s in SPECS])
def test_every_spec_has_a_twin_with_the_same_arguments(spec):
    twin = spec.twin
    assert callable(twin)
    if isinstance(spec, Procedure):
        for k in spec.kernels:
            assert isinstance(k, Kernel)
        return
    py = getattr(twin, "py_func", twin)
    n_twin = len(inspect.signature(py).parameters)
    c = _c_params(spec)
    assert n_twin == _n_args(spec) == len(c), (
        f"{spec!r}: twin takes {n_twin} arguments, the layout expands to {_n_args(spec)}, the kernel takes {len(c)}")
    assert [p.split()[-1].lstrip("*") for p in c] == list(inspect.signature(py).parameters), \
        f"{spec!r}: the twin's parameter names differ from the kernel's"


def test_constants_are_defined_once():
    for src in kernel_names():
        body = kernel_source(src).split("#line 1\n", 1)[1]
        for name in constants.DEFINES:
            assert f"#define {name}" not in body, f"kernels/{src}.cl redefines {name}: it comes from constants.py"
    pre = kernel_source("masks")
    for name, value in constants.DEFINES.items():
        assert f"#define {name} {value}\n" in pre


@pytest.mark.cuda
@pytest.mark.parametrize("name,defines", CASES, ids=IDS)
def test_compiles_with_nvcc(name, defines, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on the PATH: the CUDA compile check cannot run here")
    src = tmp_path / f"{name}.cu"
    src.write_text(kernel_source(name))
    opts = [o for o in NVRTC_OPTIONS if o.startswith("--fmad")]
    cmd = [nvcc, "-ptx", "-arch=sm_90", *opts, *[f"-D{k}={v}" for k, v in defines.items()],
           "-o", str(tmp_path / f"{name}.ptx"), str(src)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"nvcc failed for {name} {defines}:\n{res.stderr}"
    ptx = (tmp_path / f"{name}.ptx").read_text()
    for k in KERNELS:
        if k.source == name:
            assert re.search(rf"\.entry {k.name}\b", ptx), f"nvcc emitted no entry {k.name} for {name}"


@pytest.mark.opencl
@pytest.mark.parametrize("name,defines", CASES, ids=IDS)
def test_builds_on_opencl(name, defines):
    b = backend_or_skip("opencl")
    import pyopencl as cl

    prg = cl.Program(b._ctx, kernel_source(name)).build(
        options=["-cl-std=CL1.2"] + [f"-D{k}={v}" for k, v in defines.items()])
    built = {k.function_name: k for k in prg.all_kernels()}
    for spec in KERNELS:
        if spec.source == name:
            assert spec.name in built, f"kernels/{name}.cl built no kernel {spec.name}"
            assert built[spec.name].num_args == _n_args(spec), f"{spec!r}: argument count differs"
