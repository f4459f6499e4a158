"""The package's floor plan in numbers: `python tools/floorplan.py [REPO]`.

Modules, modules at the top of cnnkit/, sub-packages, the largest file, files over 500 lines,
import levels (the longest chain of internal imports, a circle counted as one level) and import
circles. Every import statement counts, a function-local one too, as in tests/test_imports.py.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(root, p): p for p in (root / "cnnkit").rglob("*.py") if "__pycache__" not in p.parts}
    graph = {}
    for name, path in files.items():
        named = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                named |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                named |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        graph[name] = {m for m in named if m in files and m not in (name, "cnnkit")}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def levels(graph: dict[str, set[str]], found: list[list[str]]) -> int:
    group = {m: tuple(c) for c in found for m in c}
    memo: dict = {}

    def level(v):
        members = group.get(v, (v,))
        if members not in memo:
            deps = {d for m in members for d in graph[m] if d not in members}
            memo[members] = 1 + max((level(d) for d in deps), default=0)
        return memo[members]

    return max(level(v) for v in graph)


def main(root: Path) -> None:
    package = root / "cnnkit"
    sizes = {str(p.relative_to(root)): len(p.read_text(encoding="utf-8").splitlines())
             for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    graph = import_graph(root)
    found = circles(graph)
    largest = max(sizes, key=sizes.get)
    print(f"modules {len(sizes)}; at the top of cnnkit/ {len(list(package.glob('*.py')))}; sub-packages "
          f"{sum(1 for d in package.iterdir() if (d / '__init__.py').is_file())}")
    print(f"largest {largest} ({sizes[largest]} lines); over 500 lines: {[f for f, n in sizes.items() if n > 500]}")
    print(f"import levels {levels(graph, found)}; circles {found}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent))
