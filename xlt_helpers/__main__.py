"""Command line: ``python -m xlt_helpers <command>``.

Commands:
  run <grid.yaml>            run every pending step of a grid, then aggregate and render the report
  status <grid.yaml>         list the grid's steps and whether each is done, failed or pending
  report <grid.yaml>         re-aggregate finished steps and re-render the report without running anything
  syntax-stats <spec>        word-order statistics of the Syntax transformation (e.g. en~hi@N~hi@V)
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "syntax-stats":
        from .syntax.stats import main as syntax_stats

        return syntax_stats(rest)
    if cmd in ("run", "status", "report"):
        if len(rest) != 1:
            print(f"usage: python -m xlt_helpers {cmd} <grid.yaml>", file=sys.stderr)
            return 2
        from . import runner

        if cmd == "run":
            runner.run_grid(rest[0])
        elif cmd == "report":
            grid = runner.load_grid(rest[0])
            runner.aggregate(grid, runner.expand(grid))
        else:
            for name, state in runner.status(rest[0]):
                print(f"{state:10s} {name}")
        return 0
    print(f"unknown command {cmd!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
