"""Aggregation: every step's rows into the report folder's tables (results.csv, configs.csv,
intervals.csv, summary.csv, failures.json, skipped.json), then the aggregate notebook rendered to HTML."""
from __future__ import annotations

from pathlib import Path

from ..config import runs_dir
from ..labels import DEFAULT_VARIANT
from ..storage import atomic_write_json
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
    (``report.intervals.summarize``), then render the aggregate notebook to HTML."""
    import pandas as pd

    from ..report.intervals import run_intervals, run_samples, summarize
    from ..report.results import RESULT_COLUMNS, TIMING_METRICS, collect

    report_dir = runs_dir() / "reports" / grid.name
    report_dir.mkdir(parents=True, exist_ok=True)
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
        tmp = report_dir / f".{name}.tmp"
        table.to_csv(tmp, index=False)
        tmp.replace(report_dir / name)
    atomic_write_json(failures, report_dir / "failures.json")
    skips = plan(grid)[1] if skips is None else skips
    atomic_write_json([{"cell": sk.cell, "reason": sk.reason} for sk in skips], report_dir / "skipped.json")
    log(f"aggregate: {len(df)} result rows, {len(failures)} failed steps -> {report_dir / 'results.csv'}")
    render_report(report_dir, grid.name, log, grid.path)
    return report_dir


def render_report(report_dir: Path, title: str, log=print, grid_file: str | None = None) -> Path:
    """Execute the aggregate notebook on ``report_dir`` and export it to ``report.html`` (``grid_file``:
    the grid it ran, named with its hash in the report's header)."""
    from nbconvert import HTMLExporter

    executed = report_dir / "04_aggregate.ipynb"
    execute_notebook("04_aggregate.ipynb", executed, {"report_dir": str(report_dir), "title": title,
                                                      "grid_file": str(Path(grid_file).resolve()) if grid_file else None})
    exporter = HTMLExporter()
    exporter.exclude_input = True
    body, _ = exporter.from_filename(str(executed))
    html = report_dir / "report.html"
    html.write_text(body)
    log(f"report: {html}")
    return html
