"""A report a reviewer can trust: its provenance is right, its figures are files, a classifier at chance
or collapsed gives no verdict, reference numbers come from the committed file and are labelled, and no
measured number is typed into the report's code."""
import hashlib
import math
import re
import subprocess
from importlib import metadata

import numpy as np
import pandas as pd
import pytest

from xlt_helpers.config import REPO_ROOT
from xlt_helpers.experiment import save_results
from xlt_helpers.labels import FINETUNE_LOSS, PREDICTIONS
from xlt_helpers.report import calibration, chance, curves, narrative, plots, provenance, reference, scorecard
from xlt_helpers.run_config import resolve
from xlt_helpers.storage import atomic_write_json

NLI = ["entailment", "neutral", "contradiction"]


# ---- provenance ------------------------------------------------------------------------------------
def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_provenance_names_the_commit_and_whether_the_tree_is_dirty(tmp_path):
    try:
        _git(tmp_path, "init", "-q")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available")
    (tmp_path / "a.txt").write_text("one\n")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    grid = tmp_path / "grid.yaml"
    grid.write_text("scale: test\n")
    rec = provenance.provenance(grid, repo=tmp_path)
    assert rec["commit"] == _git(tmp_path, "rev-parse", "HEAD") and rec["dirty"] is False  # untracked files: clean
    (tmp_path / "a.txt").write_text("two\n")
    assert provenance.provenance(repo=tmp_path)["dirty"] is True
    assert rec["grid_file"] == str(grid) and rec["grid_sha256"] == hashlib.sha256(b"scale: test\n").hexdigest()
    for lib in provenance.LIBRARIES:
        assert rec[lib] == metadata.version(lib)
    assert rec["python"].count(".") == 2 and rec["cpu"] and rec["gpu"] and rec["threads"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", rec["date"])


def test_provenance_outside_git_says_so(tmp_path):
    rec = provenance.provenance(tmp_path / "missing.yaml", repo=tmp_path)
    assert rec["commit"] is None and rec["dirty"] is None and rec["grid_sha256"] == "missing"


# ---- figure files ----------------------------------------------------------------------------------
def test_every_figure_is_written_as_png_and_svg_and_the_svg_is_reproducible(tmp_path):
    logs = pd.DataFrame({"step": [1, 2, 3] * 2, "loss": [7.0, 6.5, 6.1, 7.1, 6.4, 6.2], "language": "en",
                         "transformation": ["translit"] * 3 + ["inv"] * 3, "corpus_setting": "parallel",
                         "variant": "default", "seed": 0, "step_dir": "x"})
    fig = plots.pretraining_curves(logs)
    assert len(fig.axes) == 2 and [a.get_title() for a in fig.axes] == ["translit", "inv"]
    png, svg = plots.save_figure(fig, tmp_path / "figures", "pretraining_loss")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and svg.read_text().lstrip().startswith("<?xml")
    first = svg.read_bytes()
    plots.save_figure(fig, tmp_path / "figures", "pretraining_loss")
    assert svg.read_bytes() == first  # no date, fixed ids


# ---- fine-tuning losses ------------------------------------------------------------------------------
def test_finetune_records_the_loss_of_every_step(tmp_path):
    import torch

    from xlt_helpers.finetune import finetune
    from xlt_helpers.model import build_mlm
    from xlt_helpers.encoding import Encoded
    from xlt_helpers.tasks import get_task

    cfg = resolve("test", {"finetune.seed": 0, "finetune.epochs": 2, "finetune.batch_size": 2})
    build_mlm(cfg.model, 2 * cfg.model.vocab_size, 0).save_pretrained(tmp_path / "model")
    data = [Encoded((0, 10 + i, 11, 2), i % 3) for i in range(6)]
    losses: list[float] = []
    torch.manual_seed(0)
    finetune(tmp_path / "model", get_task("xnli"), data, cfg.finetune, progress=False, losses=losses)
    assert len(losses) == 6 and all(math.isfinite(v) and v > 0 for v in losses)  # 2 epochs x 3 batches


def test_save_results_writes_the_finetune_loss_csv(tmp_path):
    cfg = resolve("test", {"finetune.seed": 0})
    result = {"kind": "transfer", "rows": [{"task": "pos"}], "finetune_loss": {"BZ": [2.0, 1.5], "BS": [2.5]}}
    save_results(result, tmp_path, cfg)
    table = pd.read_csv(tmp_path / FINETUNE_LOSS)
    assert table.to_dict("list") == {"setting": ["BZ", "BZ", "BS"], "step": [1, 2, 1], "loss": [2.0, 1.5, 2.5]}
    assert "finetune_loss" not in (tmp_path / "results.json").read_text()


# ---- chance levels and collapsed classifiers -----------------------------------------------------------
def test_chance_is_the_score_of_the_best_constant_predictor():
    assert chance.constant_score("xnli", [0, 1, 2] * 4) == pytest.approx(1 / 3)
    assert chance.constant_score("xnli", [0, 0, 0, 1]) == pytest.approx(0.75)
    assert chance.constant_score("pos", [["NOUN", "VERB"], ["NOUN", "NOUN", "DET"]]) == pytest.approx(0.6)
    assert chance.constant_score("ner", [["B-PER", "I-PER", "O"], ["O", "O"]]) == 0.0


def test_an_evaluation_that_predicts_one_class_is_collapsed():
    one = chance.evaluation_check("xnli", {"gold": [0, 1, 2, 0], "pred": [1, 1, 1, 1]})
    assert one["collapsed"] and one["distinct_outputs"] == 1 and one["top_share"] == 1.0
    assert one["score"] == 0.25 and one["chance"] == 0.5
    tags = chance.evaluation_check("pos", {"gold": [["NOUN", "VERB"]], "pred": [["NOUN", "NOUN"]]})
    assert tags["collapsed"] and tags["score"] == 0.5
    fine = chance.evaluation_check("pos", {"gold": [["NOUN", "VERB"]], "pred": [["NOUN", "VERB"]]})
    assert not fine["collapsed"] and fine["distinct_outputs"] == 2


def _cell(transformation, task, setting, metric, value, low, high, variant="default"):
    return {"language": "en", "transformation": transformation, "corpus_setting": "parallel", "variant": variant,
            "task": task, "setting": setting, "metric": metric, "value": value, "ci_low": low, "ci_high": high,
            "se": (high - low) / 3.92, "df": math.inf, "n_examples": 300, "n_seeds": 1, "interval": "bootstrap"}


def _cells(bs_low):
    """Inversion on XNLI with Delta_Sup near 0 (a reproduced 'little to moderate' test), BS's interval
    starting at ``bs_low``; BZ and MZ well above chance on their own test sets."""
    return pd.DataFrame([_cell("inv", "xnli", "delta", "delta_sup", -0.01, -0.03, 0.01),
                         _cell("inv", "xnli", "BS", "accuracy", 0.60, bs_low, 0.70),
                         _cell("inv", "xnli", "orig", "accuracy", 0.60, 0.55, 0.65),
                         _cell("mono", "xnli", "orig", "accuracy", 0.60, 0.55, 0.65)])


def _checks(collapsed_bs=False):
    rows = []
    for transformation, setting, classifier in (("inv", "BS", "BS"), ("inv", "orig", "BZ"), ("mono", "orig", "MZ")):
        rows.append({"step": f"{transformation}/{setting}", "language": "en", "transformation": transformation,
                     "corpus_setting": "parallel", "variant": "default", "task": "xnli", "seed": 0, "finetune_seed": 0,
                     "setting": setting, "classifier": classifier, "supervised": True, "score": 0.6,
                     "chance": 0.34, "distinct_outputs": 1 if collapsed_bs and classifier == "BS" else 3,
                     "top_output": 0, "top_share": 0.4, "collapsed": collapsed_bs and classifier == "BS"})
    return pd.DataFrame(rows, columns=chance.CHECK_COLUMNS)


def _gated(cells, checks):
    tests = scorecard.scorecard(cells)
    return chance.gate(tests, chance.classifier_health(cells, checks)).set_index("test")


def test_a_test_on_a_classifier_at_chance_or_collapsed_is_inconclusive_and_says_why():
    ok = _gated(_cells(0.50), _checks()).loc["Delta_Sup(inv) little to moderate"]
    assert ok.verdict == "reproduced" and ok.why == ""
    at_chance = _gated(_cells(0.30), _checks()).loc["Delta_Sup(inv) little to moderate"]
    assert at_chance.verdict == "inconclusive" and at_chance.verdict_before_gate == "reproduced"
    assert "BS of inv (xnli)" in at_chance.why and "not above chance 0.340" in at_chance.why
    collapsed = _gated(_cells(0.50), _checks(collapsed_bs=True)).loc["Delta_Sup(inv) little to moderate"]
    assert collapsed.verdict == "inconclusive" and "1 of 1 runs predict one class" in collapsed.why
    summary = scorecard.scorecard_summary(_gated(_cells(0.30), _checks()).reset_index()).set_index("finding")
    assert summary.loc[2, "verdict"] == "inconclusive" and summary.loc[2, "inconclusive"] == 1


def test_classifier_checks_read_each_steps_predictions(tmp_path):
    step = "test/en/inv/seed0/transfer_xnli"
    settings = {"BS": {"id": [0, 1, 2], "gold": [0, 1, 2], "pred": [0, 0, 0]},
                "orig": {"id": [0, 1, 2], "gold": [0, 1, 2], "pred": [0, 1, 2]}}
    atomic_write_json({"kind": "transfer", "task": "xnli", "settings": settings}, tmp_path / step / PREDICTIONS)
    df = pd.DataFrame([{"language": "en", "transformation": "inv", "task": "xnli", "setting": s, "metric": "accuracy",
                        "value": 0.5, "seed": 0, "scale": "test", "finetune_seed": 0, "corpus_setting": "parallel",
                        "variant": "default", "step": step} for s in ("BS", "orig")])
    checks = chance.classifier_checks(df, tmp_path).set_index("setting")
    assert checks.loc["BS", "collapsed"] and checks.loc["BS", "classifier"] == "BS" and checks.loc["BS", "supervised"]
    assert not checks.loc["orig", "collapsed"] and checks.loc["orig", "classifier"] == "BZ"
    assert list(chance.collapsed_runs(checks.reset_index()).setting) == ["BS"]


# ---- reference measurements -----------------------------------------------------------------------
def test_the_committed_reference_file_reads_and_is_labelled_with_grid_commit_and_date():
    ref = reference.load_reference()
    assert {"demo", "cpu"} <= set(ref.scale)
    demo = reference.for_scales(ref, ["demo", "demo"])
    assert set(demo.scale) == {"demo"}
    lines = reference.label(demo)
    assert lines and all(line.startswith("reference: grid ") and " at commit " in line for line in lines)
    for r in ref.itertuples():  # every commit named is one of this repository's
        assert _git(REPO_ROOT, "cat-file", "-t", r.commit) == "commit"


def test_reference_verdicts_are_what_the_scorecard_gives_their_intervals():
    """Rebuild the demo reference's cells, run the scorecard on them: every single-cell test recorded
    gets the recorded verdict, and every recorded test name is one the scorecard produces."""
    ref = reference.for_scales(reference.load_reference(), ["demo"])
    metric = {"Delta_Sup": "delta_sup", "Delta_Mono": "delta_mono"}
    cells = pd.DataFrame([_cell(r.transformation, r.task, "delta", metric[r.quantity], r.estimate, r.ci_low, r.ci_high)
                          for r in ref[ref.finding.isna() & ref.quantity.isin(list(metric))].itertuples()])
    tests = scorecard.scorecard(cells).set_index(["finding", "test", "task"])
    recorded = ref[ref.finding.notna()]
    for r in recorded.itertuples():
        assert (r.finding, r.test, r.task) in tests.index, (r.finding, r.test, r.task)
        if np.isfinite(r.estimate):
            assert tests.loc[(r.finding, r.test, r.task), "verdict"] == r.verdict, r.test
    shown = reference.beside_tests(tests.reset_index(), recorded)
    assert shown.str.contains(r"\(default\.yaml @ 919b4bc, 2026-12-03\)").all()


def test_a_bad_reference_row_is_refused_with_its_line(tmp_path):
    good = reference.REFERENCE_FILE.read_text().splitlines()
    bad = tmp_path / "reference.csv"
    bad.write_text("\n".join([good[0], good[1].replace(",-0.123,", ",oops,", 1)]) + "\n")
    with pytest.raises(ValueError, match=r"reference\.csv:2: column 'ci_low' expected a number"):
        reference.load_reference(bad)
    bad.write_text("scale,grid\ndemo,x\n")
    with pytest.raises(ValueError, match=r"reference\.csv:1: expected the columns"):
        reference.load_reference(bad)


def test_no_measured_number_is_typed_into_the_report_code():
    """Reference numbers live in docs/results/reference.csv; the report's code and notebook hold none."""
    code = list((REPO_ROOT / "xlt_helpers" / "report").glob("*.py")) + [REPO_ROOT / "notebooks" / "04_aggregate.ipynb"]
    for path in code:
        text = path.read_text()
        assert "SCALE_NOTES" not in text and "scale_note(" not in text, path
        numbers = re.findall(r"(?<![\w.])-?0\.\d{3}\b", text)  # a measured score or delta: 0.319, -0.415
        assert not numbers, f"{path.name}: {numbers}"


# ---- the text above the tables --------------------------------------------------------------------
def test_the_summary_text_is_computed_from_the_grids_tests():
    tests = pd.DataFrame([{"finding": 1, "test": "Delta_Sup(translit) near 0", "task": "pos", "estimate": -0.4291,
                           "ci_low": -0.4652, "ci_high": -0.3931, "criterion": "within ±0.05", "verdict": "contradicted",
                           "uses": (), "why": "", "gated_by": ""}])
    text = narrative.findings_text(scorecard.scorecard_summary(tests), tests, "Grid x.")
    assert "**Finding 1: contradicted.**" in text and "-0.429 [-0.465, -0.393]" in text
    assert "**Finding 5: not in this grid.**" in text and "this grid tests 1;" in text
    moved = tests.assign(estimate=0.01, ci_low=-0.02, ci_high=0.04, verdict="reproduced")
    assert "+0.010 [-0.020, +0.040]" in narrative.findings_text(scorecard.scorecard_summary(moved), moved, "Grid x.")


# ---- curves and embedding drift from step folders --------------------------------------------------------
def _rows(step, transformation, task, setting, variant="default"):
    return {"language": "en", "transformation": transformation, "task": task, "setting": setting, "metric": "m",
            "value": 0.5, "seed": 0, "scale": "test", "finetune_seed": 0, "corpus_setting": "parallel",
            "variant": variant, "step": step}


def test_pretraining_and_finetuning_curves_are_read_from_the_step_folders(tmp_path):
    (tmp_path / "a" / "pretrain").mkdir(parents=True)
    (tmp_path / "a" / "pretrain" / "loss_log.csv").write_text("step,loss,lr,tokens_per_s\n1,7.0,1e-3,10\n2,6.0,1e-3,10\n")
    (tmp_path / "a" / "t").mkdir()
    (tmp_path / "a" / "t" / FINETUNE_LOSS).write_text("setting,step,loss\nBZ,1,1.1\nBZ,2,0.9\nBS,1,1.0\n")
    df = pd.DataFrame([_rows("a/pretrain", "translit", "pretrain", "none"), _rows("a/t", "translit", "pos", "BS"),
                       _rows("a/t", "translit", "pos", "BZ")])
    pre = curves.pretraining_logs(df, tmp_path)
    assert list(pre.loss) == [7.0, 6.0] and set(pre.transformation) == {"translit"}
    assert curves.finetune_cells(df) == [("translit", "pos")]
    ft = curves.finetune_logs(df, tmp_path, "translit", "pos")
    assert list(ft.setting) == ["BZ", "BZ", "BS"] and list(ft.loss) == [1.1, 0.9, 1.0]
    assert plots.finetune_curves(ft, "translit/pos") is not None


def test_embedding_drift_is_shown_per_variant_with_an_interval_over_runs(tmp_path):
    rows = []
    for k, (variant, bz) in enumerate([("trained", 0.90), ("trained", 0.80), ("frozen", 1.0)]):
        step = f"s{k}"
        atomic_write_json({"rows": [], "embedding_drift": {"BZ": bz, "BS": bz - 0.1}}, tmp_path / step / "results.json")
        rows.append(_rows(step, "translit", "pos", "BS", variant))
    drift = calibration.drift_points(pd.DataFrame(rows), tmp_path).set_index(["variant", "quantity"])
    trained = drift.loc[("trained", "pos BZ embedding drift (cosine)")]
    assert trained.value == pytest.approx(0.85) and trained.n_runs == 2 and trained.ci_low < 0.85 < trained.ci_high
    frozen = drift.loc[("frozen", "pos BS embedding drift (cosine)")]
    assert frozen.value == pytest.approx(0.9) and frozen.n_runs == 1 and math.isnan(frozen.ci_low)
    table = calibration.variant_table(drift.reset_index().assign(pretrain_flops=1e13, pretrain_seconds=1.0, n_seeds=1))
    assert table.loc["trained", "pos BZ embedding drift (cosine)"].endswith(" n=2")
