"""The packages form layers: each imports only from the layers below it, and no module imports itself back.

    musicprod_common  <  vae  <  guidance  <  latent_diffusion, waveform_diffusion, symbolic  <  recipes

Every import counts, including those inside functions (which would otherwise hide a loop).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYER = {
    "musicprod_common": 0,
    "vae": 1,
    "guidance": 2,
    "latent_diffusion": 3,
    "waveform_diffusion": 3,
    "symbolic": 3,
    "recipes": 4,
}


def modules() -> dict[str, Path]:
    out = {}
    for package in LAYER:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports (relative imports resolved, ``from x import y`` to ``x.y`` if a
    module)."""
    mods = modules()

    def resolve(name: str | None) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets |= {base} | {f"{base}.{a.name}" for a in node.names}
        graph[name] = {t for t in map(resolve, targets) if t and t != name}
    return graph


def test_no_package_imports_a_layer_above_or_beside_it():
    upward = sorted(
        f"{m} imports {t}"
        for m, ts in import_graph().items()
        for t in ts
        if m.split(".")[0] != t.split(".")[0] and LAYER[t.split(".")[0]] >= LAYER[m.split(".")[0]]
    )
    assert not upward, "\n".join(upward)


def test_no_import_loops():
    graph = import_graph()
    # Tarjan's strongly connected components: any component of more than one module is a loop
    index, low, stack, on_stack, loops = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not loops, loops


def test_the_graph_sees_imports_inside_functions(tmp_path):
    """The check itself: a function-level import is an edge like any other."""
    graph = import_graph()
    assert "guidance.passt" in graph["guidance.train_classifier"]
    assert any(t.startswith("musicprod_common") for t in graph["guidance.song"])
