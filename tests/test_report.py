"""The rendered report of the `test` grid: every score has an interval and an n, the scorecard and the
regression sections render, results.csv has the documented columns and no timings."""
import json

import pandas as pd
import pytest

from xlt_helpers.config import REPO_ROOT
from xlt_helpers.grid.run import run_grid
from xlt_helpers.report.intervals import ALIGNMENT_N, CELL
from xlt_helpers.report.results import RESULT_COLUMNS, TIMING_METRICS

TEST_GRID = REPO_ROOT / "papermill_runs" / "grids" / "test.yaml"


@pytest.fixture(scope="module")
def report(shared_runs):
    return run_grid(TEST_GRID, log=lambda *a: None)  # steps shared with test_runner's run


def test_results_csv_has_the_documented_columns_and_no_timings(report):
    df = pd.read_csv(report / "results.csv")
    assert list(df.columns) == RESULT_COLUMNS
    assert not set(df.metric) & TIMING_METRICS
    assert set(df.corpus_setting) == {"parallel"}


def test_every_score_of_the_grid_has_an_interval_in_the_summary(report):
    df = pd.read_csv(report / "results.csv")
    summary = pd.read_csv(report / "summary.csv")
    scored = df[df.setting.isin(["BS", "BZ", "MZ", "orig", "delta"]) | df.metric.isin(list(ALIGNMENT_N))]
    cells = scored.groupby(CELL).value.mean()
    assert len(summary) == len(cells)
    merged = summary.merge(cells.rename("mean").reset_index(), on=CELL, validate="one_to_one")
    assert (merged.value - merged["mean"]).abs().max() < 1e-9
    assert merged.n_examples.gt(0).all() and set(merged.n_runs) == {1}
    finite = merged.dropna(subset=["ci_low"])
    assert len(finite) >= 0.8 * len(merged) and (finite.ci_low <= finite.value + 1e-12).all()
    assert (finite.value <= finite.ci_high + 1e-12).all()


def test_the_report_shows_the_scorecard_and_the_regression_sections(report):
    html = (report / "report.html").read_text()
    for heading in ("Findings scorecard", "Main table: Delta_Sup and Delta_Mono with 95% intervals",
                    "Compositions beside their parts", "Alignment against transfer: regression", "Corpus setting"):
        assert heading in html, heading
    assert "Traceback" not in html  # a cell that raised would also have failed render_report
    assert "1 pretraining seed(s) x 1 fine-tuning seed(s)" in html
    assert json.loads((report / "failures.json").read_text()) == []
