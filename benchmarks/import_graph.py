"""The package's import graph: floors (a module's floor is one above the highest module it imports), circles,
and arrows into the grid and report wings from outside them.

    python benchmarks/import_graph.py            # floors, one line per module, and any circle
    python benchmarks/import_graph.py --check    # exit 1 on a circle or an arrow back up into a wing

Every relative import counts, at any depth of a file (a lazy import inside a function too): the graph is the
one ``fingerprint`` follows. tests/test_layout.py runs the check.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xlt_helpers.fingerprint import _imports, package_sources  # noqa: E402

WINGS = ("grid", "report")
# The only arrows from outside a wing into it: the command line, the grid's aggregation, which writes
# the report folder's tables with the report's own functions (the grid sits above the report, never below),
# and the exploration notebooks' helpers (``explore.``: every module of that package), which sit on top of
# everything like the command line: they run the test grid and read its report.
ALLOWED_INTO_WINGS = {("__main__", "grid."), ("grid.aggregate", "report."), ("explore.", "grid."),
                      ("explore.", "report.")}


def graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (dotted names as in ``fingerprint.package_sources``)."""
    sources = package_sources()
    known = set(sources)
    return {m: _imports(m, src, known) - {m} for m, src in sources.items()}


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def floors(g: dict[str, set[str]]) -> dict[str, int]:
    """1 for a module that imports nothing of the package, else one above the highest it imports (a circle's
    modules share a floor)."""
    memo: dict[str, int] = {}

    def floor(m: str, seen: tuple[str, ...]) -> int:
        if m in memo:
            return memo[m]
        deps = [d for d in g[m] if d not in seen]
        memo[m] = 1 + max((floor(d, seen + (m,)) for d in deps), default=0)
        return memo[m]

    return {m: floor(m, ()) for m in sorted(g)}


def arrows_into_wings(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports of a wing's module from outside the wing that ``ALLOWED_INTO_WINGS`` does not list."""
    bad = []
    for m, deps in g.items():
        for d in deps:
            wing = d.split(".")[0]
            if wing in WINGS and m.split(".")[0] != wing:
                if not any((m == src or src.endswith(".") and m.startswith(src)) and d.startswith(dst)
                           for src, dst in ALLOWED_INTO_WINGS):
                    bad.append((m, d))
    return sorted(bad)


def main(argv: list[str]) -> int:
    g = graph()
    found, bad = circles(g), arrows_into_wings(g)
    if "--check" not in argv:
        lines = {m: sum(1 for _ in open(Path(__file__).resolve().parent.parent / "xlt_helpers" /
                                        (m.replace(".", "/") + ".py"))) for m in g}
        for m, f in sorted(floors(g).items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"floor {f:2d}  {m:28s} {lines[m]:4d} lines  imports: {', '.join(sorted(g[m])) or '-'}")
    print(f"{len(g)} modules, {sum(map(len, g.values()))} arrows, {len(found)} circle(s)"
          + "".join(f"\n  circle: {' <-> '.join(c)}" for c in found)
          + "".join(f"\n  arrow into a wing: {m} -> {d}" for m, d in bad))
    return 1 if (found or bad) and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
