"""Every kernel source compiles as CUDA C (nvcc) and as OpenCL C (PoCL), in every specialisation.

The CUDA backend cannot run here (no GPU), so compiling each kernel with nvcc exactly as
CuPy would (same source text, same -D defines, --fmad=false) is the CUDA check. It skips
with a reason only where nvcc is missing.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gpuseg.backends.clike import SPECIALISATIONS, kernel_names, kernel_source
from gpuseg.backends.cuda import NVRTC_OPTIONS

CASES = [(name, defines) for name in kernel_names() for defines in SPECIALISATIONS.get(name, [{}])]
IDS = [name + "".join(f"-{k}={v}" for k, v in d.items()) for name, d in CASES]


def test_every_kernel_file_is_listed():
    assert {"threshold", "masks"} <= set(kernel_names())
    for name in SPECIALISATIONS:
        assert name in kernel_names(), f"SPECIALISATIONS names {name!r} but kernels/{name}.cl does not exist"


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
    assert ".entry" in ptx  # at least one kernel was emitted


@pytest.mark.opencl
@pytest.mark.parametrize("name,defines", CASES, ids=IDS)
def test_builds_on_opencl(name, defines):
    from tests.conftest import _backend_or_skip

    b = _backend_or_skip("opencl")
    import pyopencl as cl

    prg = cl.Program(b._ctx, kernel_source(name)).build(
        options=["-cl-std=CL1.2"] + [f"-D{k}={v}" for k, v in defines.items()])
    assert prg.all_kernels(), f"kernels/{name}.cl built no kernel"
