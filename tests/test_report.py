"""The rendered report of the `test` grid: every score has an interval and an n, every delta, scorecard test
and alignment P@1 is shown with its interval, results.csv has the documented columns and no timings."""
import json

import pandas as pd
import pytest

from xlt_helpers.config import REPO_ROOT
from xlt_helpers.grid.run import run_grid
from xlt_helpers.report.build import build
from xlt_helpers.report.intervals import ALIGNMENT_N, CELL, average_languages
from xlt_helpers.report.results import RESULT_COLUMNS, TIMING_METRICS
from xlt_helpers.report.scorecard import scorecard
from xlt_helpers.stats import format_interval

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


def test_the_report_shows_every_delta_and_every_scorecard_test_with_its_interval(report):
    html = (report / "report.html").read_text()
    summary = pd.read_csv(report / "summary.csv")
    deltas = summary[summary.setting == "delta"]
    assert len(deltas) == 2 * 3 * 2  # translit and inv x 3 tasks x (Delta_Sup, Delta_Mono)
    for r in deltas.itertuples():  # the main table and the per-language breakdown
        assert format_interval(r.value, r.ci_low, r.ci_high, signed=True) in html, r
    tests = scorecard(average_languages(summary))
    assert {1, 2} <= set(tests.finding)  # Transliteration (finding 1) and Inversion (finding 2) are in the grid
    for t in tests.itertuples():
        assert format_interval(t.estimate, t.ci_low, t.ci_high, signed=True) in html, t
    alignment = summary[summary.metric == "alignment_at_1"].iloc[0]
    assert format_interval(alignment.value, alignment.ci_low, alignment.ci_high) in html
    assert "1 pretraining seed(s) x 1 fine-tuning seed(s)" in html
    assert json.loads((report / "failures.json").read_text()) == []


def test_a_report_folder_without_results_says_so_in_each_section(tmp_path):
    report = build(tmp_path, "empty")
    assert report.items("overview")[0] == "grid empty: 0 result rows, 0 failed steps, 0 skipped cells"
    assert report.items("main_table") == ["no transfer results yet"]
    assert report.items("variants") == ["one variant in this grid"]
    assert report.items("retrieval") == ["no retrieval in this grid"]
    [figure] = report.items("corpus")
    assert figure.draw() is None and figure.otherwise.startswith("one corpus setting")
    with pytest.raises(ValueError, match="unknown report section 'tables'"):
        report.items("tables")


def test_two_figures_of_one_name_are_refused_rather_than_one_file_overwriting_the_other(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from xlt_helpers.report.build import Figure

    with pytest.raises(TypeError):
        Figure(lambda: plt.figure())  # no default name that every unnamed figure would share
    report = build(tmp_path, "figures")
    monkeypatch.setattr(report, "items", lambda section: [Figure(lambda: plt.figure(), name="one"),
                                                          Figure(lambda: plt.figure(), name="two"),
                                                          Figure(lambda: plt.figure(), name="one")])
    with pytest.raises(ValueError, match="named 'one'"):
        report.show("alignment_study")
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["one.png", "one.svg", "two.png", "two.svg"]
    again = build(tmp_path, "figures")
    monkeypatch.setattr(again, "items", lambda section: [Figure(lambda: plt.figure(), name="one")])
    again.show("corpus")
    again.show("corpus")  # a section shown again (a notebook cell run twice) rewrites its own file
    assert [p.name for p in again.figures] == ["one.png", "one.svg"]
    with pytest.raises(ValueError, match="named 'one'"):
        again.show("deltas")  # another section's figure of the same name would overwrite it


def test_the_report_has_contents_provenance_figure_files_curves_and_step_links(report):
    import re
    import subprocess

    html = (report / "report.html").read_text()
    targets = set(re.findall(r'href="#([\w-]+)"', html))
    assert {"provenance", "overview", "scorecard", "classifiers", "references", "pretraining", "finetuning"} <= targets
    assert all(f'id="{t}"' in html for t in targets)  # every entry of the contents leads somewhere
    try:
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        assert head in html
    except (OSError, subprocess.CalledProcessError):
        assert "not a git checkout" in html
    for field in ("torch", "transformers", "tokenizers", "grid_sha256", "cpu", "threads"):
        assert f"<th>{field}</th>" in html, field
    figures = {p.name for p in (report / "figures").iterdir()}
    for name in ("deltas", "pretraining_loss", "finetune_loss"):
        assert {f"{name}.png", f"{name}.svg"} <= figures, name
    links = set(re.findall(r'href="(\.\./[^"]+\.ipynb)"', html))
    assert links and all((report / link).resolve().is_file() for link in links)
    assert "not above chance" in html  # at `test` scale every classifier is at chance: the gate says so
