"""A report folder, filtered and looked into (notebooks/explore_results.ipynb): the cells of chosen languages,
transformations, tasks, settings and variants with their 95% intervals and figures, and the evidence behind
each verdict of the findings scorecard.

Nothing here computes a number of its own: the folder is read by ``report.build`` (the report's ``Report``:
its summary, its language-averaged cells and its gated scorecard tests), cells are averaged over the chosen
languages by ``report.intervals.average_languages``, shown by ``report.tables`` and drawn by ``report.plots``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from ..config import REPO_ROOT, runs_dir
from ..report import intervals, plots, tables
from ..report.build import Report, build

TEST_GRID = REPO_ROOT / "papermill_runs" / "grids" / "test.yaml"  # run when no report folder exists
TEST_GRID_TIMEOUT = 1800  # seconds: about 40 on two idle cores; past this, an error rather than a wait
FILTERS = ("language", "transformation", "task", "setting", "variant")
ALL = "(all)"  # a filter that keeps every value


def report_folders(root: str | Path | None = None) -> list[Path]:
    """The report folders of the runs folder (``papermill_runs/reports/<grid>`` with a summary.csv), newest first."""
    found = [p.parent for p in (Path(root or runs_dir()) / "reports").glob("*/summary.csv")]
    return sorted(found, key=lambda d: (d / "summary.csv").stat().st_mtime, reverse=True)


def choose_report(report_dir: str | Path | None = None, log=print) -> Path:
    """``report_dir`` if given, else the newest report folder, else the report of the `test` grid, run
    first (``xlt run``: about 40 s on a fresh clone; its steps are kept and reused). The grid runs in a
    process of its own: started inside a notebook's kernel, the runner's own kernels and signal handlers
    would share that kernel's event loop and ZMQ context (a notebook test once waited forever there)."""
    if report_dir:
        if not (Path(report_dir) / "summary.csv").exists():
            raise FileNotFoundError(f"{report_dir}: not a report folder (no summary.csv): run its grid first")
        return Path(report_dir)
    found = report_folders()
    if found:
        return found[0]
    import subprocess
    import tempfile

    # the runner's output goes to a file, not a pipe: a pipe is read until every process holding it has
    # closed it, and a kernel of the runner's that outlived it would make this wait forever
    with tempfile.TemporaryFile("w+") as out:
        code = subprocess.run(test_grid_command(), stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=TEST_GRID_TIMEOUT).returncode
        out.seek(0)
        text = out.read()
    for line in text.splitlines()[-3:]:
        log(line)
    if code != 0:
        raise RuntimeError(f"the test grid failed (exit {code}):\n{text[-3000:]}")
    found = report_folders()
    if not found:
        raise RuntimeError(f"the test grid ran but left no report under {runs_dir() / 'reports'}")
    return found[0]


def test_grid_command() -> list[str]:
    """The command that runs the `test` grid for ``choose_report``: the runner in a process of its own."""
    import sys

    return [sys.executable, "-m", "xlt_helpers", "run", str(TEST_GRID)]


@lru_cache(maxsize=4)
def load(report_dir: str | Path) -> Report:
    """The report of a folder (``report.build``), kept for the widgets (its tables are read once)."""
    return build(report_dir)


# ------------------------------------------------------------------------------------ filtered cells

def choices(summary: pd.DataFrame) -> dict[str, list[str]]:
    """Every value each filter can take in a summary (``summary.csv``), in the grid's order."""
    return {k: [str(v) for v in dict.fromkeys(summary[k])] if k in summary else [] for k in FILTERS}


def filter_cells(summary: pd.DataFrame, chosen: Mapping[str, str | Sequence[str] | None]) -> pd.DataFrame:
    """The rows of ``summary`` whose value of each filter is among the chosen ones (a filter that is None,
    empty or ``ALL`` keeps every value)."""
    keep = pd.Series(True, index=summary.index)
    for key, values in chosen.items():
        if values in (None, ALL) or (not isinstance(values, str) and not len(values)):
            continue
        values = [values] if isinstance(values, str) else list(values)
        keep &= summary[key].astype(str).isin(values)
    return summary[keep]


def chosen_cells(summary: pd.DataFrame, chosen: Mapping[str, str | Sequence[str] | None]) -> pd.DataFrame:
    """``filter_cells``, then averaged over the chosen languages with their intervals combined
    (``intervals.average_languages``, the main table's rule); a single language keeps its own intervals."""
    cells = filter_cells(summary, chosen)
    return intervals.average_languages(cells) if len(cells) else cells


def cell_table(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells as the report shows them: ``value [low, high]`` per setting and metric (``tables.interval_table``),
    with a row per variant, corpus setting, transformation and task."""
    if cells.empty:
        return pd.DataFrame()
    index = [*tables.model_axes(cells), "transformation", "task"]
    table = tables.interval_table(cells, index, ["setting", "metric"], signed=bool((cells.setting == "delta").all()))
    return table.fillna("")  # a setting or metric the row's task does not have


def figures(cells: pd.DataFrame) -> list:
    """The report's delta figure and the score figure of the cells (one variant: the first chosen), those
    that have something to draw."""
    one = tables.first_variant(cells)
    return [f for f in (plots.delta_figure(one), plots.score_figure(one)) if f is not None] if len(one) else []


# ------------------------------------------------------------------------------------ verdicts

def verdict_labels(tests: pd.DataFrame) -> list[str]:
    """One line per scorecard test, for a dropdown: finding, test, task (and variant), verdict."""
    variant = tests["variant"] if "variant" in tests else pd.Series("", index=tests.index)
    return [f"{t.finding} · {t.test} · {t.task}" + (f" · {v}" if v else "") + f" → {t.verdict}"
            for t, v in zip(tests.itertuples(), variant)]


def evidence(report: Report, k: int) -> dict[str, pd.DataFrame]:
    """What verdict ``k`` (a row of ``report.tests``) rests on: the test itself (estimate, interval, criterion,
    verdict, why), the language-averaged cells it was computed from, each language's cell behind them
    (``summary.csv``: n, seeds, interval method), and the fine-tuned classifiers of those cells checked
    against chance (``report.health``: a failing one makes the verdict inconclusive)."""
    test = report.tests.iloc[k]
    variant = test.get("variant")
    variants = None if variant in (None, "all models") or pd.isna(variant) else {variant}

    def used(frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty:
            return frame
        keys = set(test.uses or ())
        hit = [(r.transformation, r.corpus_setting, r.task, r.metric) in keys and
               (variants is None or r.variant in variants) for r in frame.itertuples()]
        return frame[hit]

    cells, per_language = used(report.cells), used(report.summary)
    shown = ["estimate", "ci_low", "ci_high", "criterion", "verdict", "why"]
    row = test[[c for c in ["variant", "finding", "test", "task", *shown] if c in test.index]].to_frame("").T
    classifiers = report.health
    if len(classifiers) and len(cells):
        models = set(cells.transformation) | {"mono"}
        classifiers = classifiers[classifiers.transformation.isin(models) & classifiers.task.isin(set(cells.task))]
    return {"test": row, "cells": cells, "per language": per_language, "classifiers": classifiers}
