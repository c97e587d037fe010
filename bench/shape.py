"""The package's shape in figures: the same measurements before and after a restructuring.

    uv run python bench/shape.py            # a table on stdout
    uv run python bench/shape.py --json     # the same figures as JSON

Static, from the source alone (``ast``); nothing is imported or run. What it counts:

- the longest functions (``def`` line to the last line, docstring included);
- files over 300 lines, and the modules that sit in the package root;
- import cycles between modules, counting module-level, lazy (inside a function) and
  ``TYPE_CHECKING`` imports alike, and cycles between the top-level packages;
- ``Any`` leaks: parameters and return types annotated ``Any`` outside ``to_dict``-style
  JSON builders (``dict[str, Any]`` is JSON, not a leak).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "portprobe"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of the package this file imports (any kind of import)."""
    name = module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_from(name, path.name == "__init__.py", node)
            # ``from pkg import mod`` depends on the submodule; ``from pkg import name``
            # on the package (every import runs the package's __init__ either way).
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            targets = subs if len(subs) == len(node.names) else [base, *subs]
        else:
            continue
        for target in targets:
            if target in modules and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def is_any(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Name) and node.id == "Any"


def measure() -> dict[str, object]:
    files = sorted(p for p in PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in files}
    lines = {p: len(p.read_text().splitlines()) for p in files}
    functions: list[tuple[int, str]] = []
    any_leaks: list[str] = []
    graph: dict[str, set[str]] = {}
    for path in files:
        rel = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[module_name(path)] = imports(path, modules)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((length, f"{rel}:{node.lineno} {node.name}"))
                args = [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]
                if node.args.vararg:
                    args.append(node.args.vararg)
                if node.args.kwarg:
                    args.append(node.args.kwarg)
                for arg in args:
                    if is_any(arg.annotation):
                        any_leaks.append(f"{rel}:{node.lineno} {node.name}({arg.arg}: Any)")
                if is_any(node.returns):
                    any_leaks.append(f"{rel}:{node.lineno} {node.name} -> Any")
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        top = ".".join(module.split(".")[:2])
        for target in targets:
            other = ".".join(target.split(".")[:2])
            if other != top and other != "portprobe":
                packages.setdefault(top, set()).add(other)
    functions.sort(reverse=True)
    root = sorted(p.name for p in files if p.parent == PACKAGE)
    return {
        "files": len(files),
        "lines": sum(lines.values()),
        "functions": len(functions),
        "over_50": sum(1 for n, _ in functions if n > 50),
        "over_80": sum(1 for n, _ in functions if n > 80),
        "longest": [f"{n:4d}  {name}" for n, name in functions[:15]],
        "files_over_300": [
            f"{n:4d}  {p.relative_to(ROOT)}"
            for p, n in sorted(lines.items(), key=lambda kv: -kv[1])
            if n > 300
        ],
        "root_modules": root,
        "module_cycles": cycles(graph),
        "package_cycles": cycles(packages),
        "any_leaks": any_leaks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure()
    if args.json:
        json.dump(figures, sys.stdout, indent=2)
        print()
        return
    print(
        f"{figures['files']} files, {figures['lines']} lines, {figures['functions']} functions "
        f"({figures['over_50']} over 50 lines, {figures['over_80']} over 80)"
    )
    for key in ("longest", "files_over_300", "root_modules", "any_leaks"):
        items = figures[key]
        assert isinstance(items, list)
        print(f"\n{key.replace('_', ' ')} ({len(items)}):")
        for item in items:
            print(f"  {item}")
    for key in ("module_cycles", "package_cycles"):
        found = figures[key]
        assert isinstance(found, list)
        print(f"\n{key.replace('_', ' ')} ({len(found)}):")
        for cycle in found:
            print("  " + " ⇄ ".join(cycle))


if __name__ == "__main__":
    main()
