"""The generated parts of README.md and docs/: tables rendered from the code and from committed data files,
so that the prose around them cannot disagree with what they are rendered from.

A generated part sits between two markers in a markdown file::

    <!-- generated: NAME (python -m xlt_helpers.docgen) -->
    ...the table...
    <!-- end generated -->

``python -m xlt_helpers.docgen`` rewrites every part from its source; ``--check`` only says which parts
are out of date (exit 1). ``tests/test_docs.py`` runs the check.
"""
from __future__ import annotations

import csv
import math
import re
import sys
from pathlib import Path
from typing import Callable

from .config import REPO_ROOT
from .errors import DataFormatError

HEADLINE_CSV = Path("docs/results/headline.csv")

# the columns of docs/results/headline.csv, in order, and what each holds
HEADLINE_COLUMNS = {
    "finding": "the paper's finding the row tests (1-5, numbered as in the findings scorecard)",
    "quantity": "what is measured, in the paper's vocabulary (e.g. Delta_Sup, alignment P@1)",
    "language": "the original language",
    "transformation": "the derived language (e.g. translit, translit+inv)",
    "task": "xnli, ner, pos, qa, retrieval; empty for alignment",
    "estimate": "the mean over the runs",
    "ci_low": "lower end of the 95% interval",
    "ci_high": "upper end of the 95% interval",
    "n": "the number that the interval's bootstrap (or Wilson interval) resamples, per run",
    "n_unit": "what n counts (test examples, token pairs)",
    "pretrain_seeds": "pretraining seeds the interval spans",
    "finetune_seeds": "fine-tuning seeds per pretrained model",
    "scale": "the run_config preset (test, demo, cpu, gpu_small, paper)",
    "grid": "the grid file under papermill_runs/grids/",
    "date": "when the grid ran (YYYY-MM-DD)",
    "caveat": "what the number does not say (one phrase)",
    "source": "where the number was recorded (a commit, a results page)",
}

_BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+)[^\n]*-->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def read_headline(path: Path) -> list[dict[str, str]]:
    """The rows of the headline CSV, checked: every column present, numbers that parse, the estimate
    inside its interval. A bad row is refused with its file and line."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in HEADLINE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFormatError(path, 1, f"the columns {list(HEADLINE_COLUMNS)}", f"{missing} missing")
        rows = []
        for row in reader:
            try:
                est, lo, hi = (float(row[c]) for c in ("estimate", "ci_low", "ci_high"))
                n = int(row["n"])
            except (TypeError, ValueError):
                raise DataFormatError(path, reader.line_num, "numbers in estimate, ci_low, ci_high and an integer n",
                                      str([row.get(c) for c in ("estimate", "ci_low", "ci_high", "n")])) from None
            if not all(math.isfinite(v) for v in (est, lo, hi)) or not lo <= est <= hi:
                raise DataFormatError(path, reader.line_num, "ci_low <= estimate <= ci_high", f"{lo} / {est} / {hi}")
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["date"] or ""):
                raise DataFormatError(path, reader.line_num, "a date YYYY-MM-DD", row["date"])
            rows.append(row)
    return rows


def _seeds(row: dict[str, str]) -> str:
    p, f = row["pretrain_seeds"], row["finetune_seeds"]
    return f"{p} pretraining x {f} fine-tuning seed{'s' if f != '1' else ''}"


def render_headline(path: Path) -> str:
    """The README's headline table (markdown) from the headline CSV; one 'pending' row when it has none."""
    rows = read_headline(path)
    head = ("| finding | quantity | language, derived language, task | estimate [95% CI] | n | seeds "
            "| grid, scale, date | caveat |\n|---|---|---|---|---|---|---|---|")
    if not rows:
        return head + "\n| pending | no result recorded yet in `docs/results/headline.csv` | | | | | | |"
    lines = [head]
    for r in rows:
        cell = ", ".join(x for x in (r["language"], f"`{r['transformation']}`", r["task"].upper()) if x.strip("`"))
        est = f"{float(r['estimate']):.3f} [{float(r['ci_low']):.3f}, {float(r['ci_high']):.3f}]"
        lines.append(f"| {r['finding']} | {r['quantity']} | {cell} | {est} | {int(r['n']):,} {r['n_unit']} "
                     f"| {_seeds(r)} | `{r['grid']}`, `{r['scale']}`, {r['date']} | {r['caveat']} |")
    return "\n".join(lines)


def headline_columns() -> str:
    """The results page's table of the headline CSV's columns (markdown)."""
    return "\n".join(["| column | what it holds |", "|---|---|"]
                     + [f"| `{name}` | {what} |" for name, what in HEADLINE_COLUMNS.items()])


def config_table() -> str:
    """The configuration page's table, from run_config's field definitions and presets."""
    from .run_config import config_table as table

    return table()


# (file, block name) -> what renders it
GENERATED: dict[tuple[str, str], Callable[[], str]] = {
    ("README.md", "headline"): lambda: render_headline(REPO_ROOT / HEADLINE_CSV),
    ("docs/results/index.md", "headline-columns"): headline_columns,
    ("docs/configuration.md", "config-table"): config_table,
}


def block(text: str, name: str, where: str = "<text>") -> str:
    """The body of the generated part ``name`` of a markdown text (without its markers)."""
    for m in _BLOCK.finditer(text):
        if m.group("name") == name:
            return m.group("body").rstrip("\n")
    raise DataFormatError(where, None, f"a generated part '<!-- generated: {name} ... -->' ... '<!-- end generated -->'")


def fill(text: str, name: str, body: str, where: str = "<text>") -> str:
    """``text`` with the generated part ``name`` replaced by ``body``."""
    block(text, name, where)  # refuses a missing part
    return _BLOCK.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(4)
                      if m.group("name") == name else m.group(0), text)


def stale(root: Path = REPO_ROOT) -> list[str]:
    """The generated parts whose committed text differs from what their source renders now."""
    return [f"{file}: {name}" for (file, name), render in GENERATED.items()
            if block((root / file).read_text(encoding="utf-8"), name, file) != render().rstrip("\n")]


def write(root: Path = REPO_ROOT) -> list[str]:
    """Rewrite every generated part; returns those that changed."""
    changed = stale(root)
    for (file, name), render in GENERATED.items():
        path = root / file
        path.write_text(fill(path.read_text(encoding="utf-8"), name, render(), file), encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"]):
        print("usage: python -m xlt_helpers.docgen [--check]", file=sys.stderr)
        return 2
    try:
        if args == ["--check"]:
            out = stale()
            for part in out:
                print(f"out of date: {part} (python -m xlt_helpers.docgen)")
            return 1 if out else 0
        for part in write():
            print(f"rewritten: {part}")
    except (DataFormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
