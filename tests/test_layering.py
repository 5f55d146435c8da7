"""The package's layering, read from the source (no import needed): no import circles between
modules, and no module imports another package's underscore names (docs/editor.md, "Layering").

Every import counts, at module level or inside a function (a lazy import hides a circle, it
does not remove it). Underscore names and ``_private`` modules may be shared inside one package
(``gpuseg.io._atomic`` among ``gpuseg.io``'s modules), never across packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "gpuseg"

# No exceptions: the kernel twins are public modules of gpuseg.kernels, and no circle is allowed.
ALLOWED_PRIVATE: set[str] = set()
ALLOWED_CIRCLES: list[set[str]] = []


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(mods: dict[str, Path]):
    """``(importer, imported module, imported name or None, line)`` for every import."""
    out = []
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for a in node.names:
                    out.append((name, a.name, None, node.lineno))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    if sub in mods:  # "from package import module"
                        out.append((name, sub, None, node.lineno))
                    else:
                        out.append((name, target, a.name, node.lineno))
    return [e for e in out if e[1] == "gpuseg" or e[1].startswith("gpuseg.")]


def package_of(mod: str, mods: dict[str, Path]) -> str:
    return mod if mods[mod].name == "__init__.py" else mod.rpartition(".")[0]


def cross_package_private(mods):
    bad = []
    for importer, target, name, line in imports(mods):
        if target not in mods or target in ALLOWED_PRIVATE:
            continue
        private_module = target.rpartition(".")[2].startswith("_")
        private_name = name is not None and name.startswith("_") and not name.startswith("__")
        if not (private_module or private_name):
            continue
        # the package that owns the private thing: a private module's package, or the module's
        owner = package_of(target, mods) if private_module else target
        owner_pkg = owner if private_module else package_of(target, mods)
        if package_of(importer, mods) != owner_pkg:
            bad.append(f"{mods[importer].relative_to(ROOT.parent)}:{line}: {importer} imports "
                       f"{target}{'.' + name if name else ''}")
    return bad


def circles(mods):
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for importer, target, _, _ in imports(mods):
        if target in mods and target != importer:
            graph[importer].add(target)
    # Tarjan's strongly connected components
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_cross_package_private_imports():
    bad = cross_package_private(modules())
    assert not bad, "private names used outside their package:\n" + "\n".join(bad)


def test_no_import_circles():
    found = [c for c in circles(modules()) if c not in ALLOWED_CIRCLES]
    assert not found, "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """The same checks on a small made-up package find its circle and its private import."""
    pkg = tmp_path / "gpuseg"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("from ..b import _secret\n")
    (pkg / "b.py").write_text("def _secret():\n    from .a import x\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", pkg)
    mods = modules()
    assert circles(mods) == [{"gpuseg.a.x", "gpuseg.b"}]
    assert len(cross_package_private(mods)) == 1
