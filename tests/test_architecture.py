"""The house: layers import one way, and no module of ``src/careblocks`` imports itself in a loop.

Layers, lowest first (DESIGN.md): io -> network -> transit -> access -> demand -> sites ->
outputs -> pipeline -> api (``careblocks/__init__.py``) -> cli. ``errors``, ``config`` and
``columns`` (and ``i18n``, the language of what people read) sit under all of them and import none of them. A module may import its own layer
and any layer below; every import is read from the source (module level, inside functions and
under ``TYPE_CHECKING`` alike), so a new module must be given a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "careblocks"

#: layer of each top-level module or package of careblocks, lowest first
LAYERS: dict[str, int] = {
    "errors": 0, "config": 0, "columns": 0, "_version": 0, "_files": 0, "i18n": 0, "compute": 0, "_crash": 0, "_jit": 0,
    "io": 1,
    "network": 2,
    "transit": 3,
    "access": 4, "services": 4, "accessibility": 4,
    "demand": 5, "origins": 5,
    "sites": 6,
    "results": 7, "outputs": 7, "audit": 7,
    "pipeline": 8,
    "__init__": 9, "api": 9,
    "cli": 10, "summary": 10, "batch": 10, "__main__": 10,
}
LAYER_NAMES = ["base", "io", "network", "transit", "access", "demand", "sites", "outputs",
               "pipeline", "api", "cli"]


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ``name`` (a dotted careblocks path, maybe ending in a function)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(mod: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """careblocks modules imported anywhere in ``path`` (``from pkg import sub`` -> pkg.sub)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")
                up = up[: len(up) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            if n == "careblocks" or n.startswith("careblocks."):
                r = _resolve(n, modules)
                if r is not None:
                    out.add(r)
    out.discard(mod)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def _layer(mod: str) -> int:
    parts = mod.split(".")
    key = "__init__" if len(parts) == 1 else parts[1]
    if key not in LAYERS:
        pytest.fail(f"{mod}: no layer in tests/test_architecture.py LAYERS; give it one", pytrace=False)
    return LAYERS[key]


def test_every_import_runs_down_the_layers():
    up = []
    for mod, deps in _graph().items():
        for d in deps:
            if _layer(d) > _layer(mod):
                up.append(f"{mod} ({LAYER_NAMES[_layer(mod)]}) imports {d} ({LAYER_NAMES[_layer(d)]})")
    assert not up, "imports that run up the layers:\n" + "\n".join(sorted(up))


def test_no_import_cycle():
    g = _graph()
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The reader resolves relative, ``from pkg import sub`` and in-function imports."""
    modules = {"careblocks.network.graph": tmp_path / "g.py", "careblocks.sites.scoring": tmp_path / "s.py",
               "careblocks.network": tmp_path / "n.py"}
    src = tmp_path / "g.py"
    src.write_text("def f():\n    from careblocks.sites import scoring\n", encoding="utf-8")
    deps = _imports("careblocks.network.graph", src, modules)
    assert deps == {"careblocks.sites.scoring"}
    assert _layer("careblocks.sites.scoring") > _layer("careblocks.network.graph")


def test_the_command_line_is_a_client_of_the_public_api():
    """cli.py and batch.py reach the pipeline only through ``careblocks.run`` / ``validate`` /
    ``prioritise`` (careblocks.api), the one entry the pipeline exposes."""
    g = _graph()
    reach = {m: sorted(d for d in g[m] if d == "careblocks.pipeline" or d.startswith("careblocks.pipeline."))
             for m in ("careblocks.cli", "careblocks.batch", "careblocks.summary", "careblocks.__main__")}
    assert not any(reach.values()), f"the CLI imports the pipeline past the API: {reach}"


def test_the_pipeline_context_is_typed():
    """Every field of the pipeline's Context has a real type (no ``Any``, no grab-bag dict)."""
    import dataclasses

    from careblocks.pipeline.context import Context

    loose = [f.name for f in dataclasses.fields(Context)
             if f.type in ("Any", "dict[str, Any]") and f.name != "stats"]
    assert not loose, f"Context fields without a real type: {loose}"
    assert "extra" not in {f.name for f in dataclasses.fields(Context)}
