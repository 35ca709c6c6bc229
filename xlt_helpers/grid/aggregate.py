"""Aggregation: every step's rows into the report folder's tables (results.csv, configs.csv,
intervals.csv, summary.csv, failures.json, skipped.json), then the aggregate notebook rendered to HTML."""
from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import Iterator

from ..config import runs_dir
from ..labels import DEFAULT_VARIANT
from ..storage import atomic_path, atomic_write_json, atomic_write_text, atomic_write_with
from .preflight import report_folder
from .notebooks import execute_notebook
from .plan import Skip, plan
from .spec import Grid
from .step import Step


def config_rows(steps: list[Step]) -> list[dict]:
    """One row per step: its name, kind, state, code fingerprints and every config field (configs.csv)."""
    return [{"step": s.name, "kind": s.kind, "task": s.task, "state": s.state().split(":")[0],
             "code_fingerprint": s.recorded_code(), "code_fingerprint_now": s.code, **s.cfg.flat()} for s in steps]


def aggregate(grid: Grid, steps: list[Step], log=print, skips: list[Skip] | None = None) -> Path:
    """Gather every step's rows into results.csv (with a ``step`` column that joins configs.csv and the
    step's results.json, and the model's ``corpus_setting``), each run's 95% intervals into
    intervals.csv (``report.intervals.run_intervals``) and each cell's, over its seeds, into summary.csv
    (``report.intervals.summarize``), then render the aggregate notebook to HTML. The report folder must
    belong to this grid file (``preflight.report_folder``); concurrent reports of one grid take turns
    (``report_lock``) and every file is replaced atomically."""
    report_dir = report_folder(runs_dir(), grid.name, grid.path, claim=False)
    with report_lock(report_dir, log):
        report_folder(runs_dir(), grid.name, grid.path, claim=True)
        _aggregate(grid, steps, report_dir, log, skips)
    return report_dir


@contextlib.contextmanager
def report_lock(report_dir: Path, log=print) -> Iterator[None]:
    """Hold ``<report folder>/.lock`` (flock) while the report is written: a second ``report`` (or a ``run``
    ending) on the same grid waits, then writes a whole report of its own; released however it ends."""
    report_dir.mkdir(parents=True, exist_ok=True)
    with open(report_dir / ".lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"  wait   {report_dir}: another report of this grid is being written")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _aggregate(grid: Grid, steps: list[Step], report_dir: Path, log, skips: list[Skip] | None) -> None:
    """``aggregate``'s work, under the report folder's lock."""
    import pandas as pd

    from ..report.intervals import run_intervals, run_samples, summarize
    from ..report.results import RESULT_COLUMNS, TIMING_METRICS, collect

    rows, failures, intervals, samples = [], [], [], []
    for s in steps:
        step_rows, step_failures = collect([s.out_dir])
        for variant in s.variants or [DEFAULT_VARIANT]:  # a step shared by two variants counts in each
            rows += [{**r, "corpus_setting": s.cfg.data.corpus_setting, "variant": variant, "step": s.name}
                     for r in step_rows if r["metric"] not in TIMING_METRICS]
            step_samples = run_samples(s.out_dir, variant)
            intervals += [{**r, "step": s.name} for r in run_intervals(step_samples)]
            samples += step_samples
        failures += step_failures
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    for name, table in (("results.csv", df), ("configs.csv", pd.DataFrame(config_rows(steps))),
                        ("intervals.csv", pd.DataFrame(intervals)), ("summary.csv", summarize(samples))):
        atomic_write_with(lambda tmp: table.to_csv(tmp, index=False), report_dir / name)
    atomic_write_json(failures, report_dir / "failures.json")
    skips = plan(grid)[1] if skips is None else skips
    atomic_write_json([{"cell": sk.cell, "reason": sk.reason} for sk in skips], report_dir / "skipped.json")
    log(f"aggregate: {len(df)} result rows, {len(failures)} failed steps -> {report_dir / 'results.csv'}")
    render_report(report_dir, grid.name, log)


def render_report(report_dir: Path, title: str, log=print) -> Path:
    """Execute the aggregate notebook on ``report_dir`` and export it to ``report.html``."""
    from nbconvert import HTMLExporter

    with atomic_path(report_dir / "04_aggregate.ipynb") as executed:  # papermill saves it as cells run
        execute_notebook("04_aggregate.ipynb", executed, {"report_dir": str(report_dir), "title": title})
        exporter = HTMLExporter()
        exporter.exclude_input = True
        body, _ = exporter.from_filename(str(executed))
    html = report_dir / "report.html"
    atomic_write_text(body, html)
    log(f"report: {html}")
    return html
