"""`python -m xlt_helpers.syntax stats SPEC ...` or `... parser train LANG ...` (the package CLI also offers syntax-stats)."""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    """Dispatch to the stats or parser command."""
    if not argv or argv[0] not in ("stats", "parser"):
        print("usage: python -m xlt_helpers.syntax {stats SPEC [--seed S] [--max-sentences N] | "
              "parser {train,card} LANG... [--max-train-sentences N]}", file=sys.stderr)
        return 2
    if argv[0] == "stats":
        from .stats import main as run
    else:
        from .parser import main as run
    return run(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
