"""The import graph of the installed `tart` package: every module's imports of other tart modules,
read from the source (ast: function-level imports count too), printed as `a -> b` lines.

    python scripts/import_graph.py            # the edges
    python scripts/import_graph.py > results/import-graph.txt   # the committed copy (a test compares)
    python scripts/import_graph.py --check    # exit 1 on a cycle, an arrow up a layer (see `layer`),
                                              # or a top-level training/serving import

tests/test_import_graph.py runs the same checks.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

# where each tart package lives in the checkout (pyproject.toml maps the same folders)
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"tart": ROOT / "tart", "tart.training": ROOT / "training", "tart.serving": ROOT / "serving"}


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known) -> set[str]:
    """tart modules `name` imports (the longest known module name of each import)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in sorted(known.items())}


FOUNDATIONS = ("tart.defaults", "tart.paths", "tart.memo", "tart.head", "tart.lm", "tart.data", "tart.tasks")


def layer(name: str) -> int:
    """0: the foundations (the head, the language models, data, training tasks, defaults, paths, the memo),
    1: what is built on them (the classifier and pipeline, methods, the corpus job, evaluation, training,
    serving), 2: the analyses, 3: the CLI. Imports may only point to the same or a lower layer."""
    for rank, package in ((3, "tart.cli"), (2, "tart.analysis")):
        if name == package or name.startswith(package + "."):
            return rank
    return 0 if any(name == p or name.startswith(p + ".") for p in FOUNDATIONS) else 1


def _package_of(name: str, edges) -> bool:
    return any(other.startswith(name + ".") for other in edges)


def cycles(edges) -> list[list[str]]:
    """Cycles between modules (a package importing its own submodules in __init__ does not count)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if _package_of(node, edges) and nxt.startswith(node + "."):
                continue  # package __init__ re-exporting its own submodule
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in edges:
        if node not in state:
            visit(node, [])
    return found


def bad_arrows(edges) -> list[tuple[str, str]]:
    """Imports that point up a layer: the foundations into what uses them, the library into the analyses or
    the CLI, the analyses into the CLI."""
    return [(a, b) for a, targets in edges.items() for b in sorted(targets) if layer(b) > layer(a)]


def generic_imports() -> list[str]:
    """Imports of the top-level names `training` / `serving`: installed, they are tart.training /
    tart.serving, and a second copy of a module under another name breaks its caches."""
    bad = []
    for path in [*(p for folder in PACKAGES.values() for p in folder.rglob("*.py")), *ROOT.glob("tests/*.py"),
                 *ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            bad += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names
                    if n.split(".")[0] in ("training", "serving")]
    return bad


def main(argv) -> int:
    edges = graph()
    if "--check" not in argv:
        for a, targets in edges.items():
            for b in sorted(targets):
                print(f"{a} -> {b}")
        return 0
    problems = [" -> ".join(c) for c in cycles(edges)] + [f"{a} -> {b} (points up a layer)" for a, b in
                                                           bad_arrows(edges)] + generic_imports()
    print("\n".join(problems) or f"{len(edges)} modules, {sum(map(len, edges.values()))} imports: no cycle, "
          "no arrow up a layer (foundations < library < analysis < cli)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
