"""Grid variants: named override sets in one grid (validation, shared steps, the `variant` column, the
scorecard per variant) and config fields that enter a folder's key only when set."""
import dataclasses
import re
import types

import pandas as pd
import pytest

from xlt_helpers.config import REPO_ROOT
from xlt_helpers.grid.plan import expand
from xlt_helpers.grid.run import run_grid
from xlt_helpers.grid.spec import load_grid
from xlt_helpers.report.calibration import variant_contrasts
from xlt_helpers.report.results import RESULT_COLUMNS
from xlt_helpers.report.scorecard import scorecard, scorecard_summary
from xlt_helpers.run_config import _f, key_dict

from test_runner import write_grid  # pytest puts tests/ on sys.path

BASE = "scale: test\nlanguages: [en]\ntransformations: [translit, inv]\ntasks: [xnli, ner, pos]\nseeds: [0]\n"
# the first variant is the `test` grid itself (so its steps are shared with test_runner's run); the second
# changes only the fine-tuning learning rate, so it shares every pretrained model with the first
VARIANTS = BASE + "name: variants\nvariants:\n  plain: {}\n  slow_finetune: {finetune.lr: 0.0005}\n"


@pytest.mark.parametrize("extra, message", [
    ("variants: [a, b]\n", "variants must be a non-empty mapping"),
    ("variants: {}\n", "variants must be a non-empty mapping"),
    ("variants:\n  a: {}\n  b: {pretrain.stpes: 5}\n", "variants: b: pretrain has no field 'stpes'"),
    ("variants:\n  a: {}\n  b: {pretrain.seed: 3}\n", "variants: b: pretrain.seed is set by the grid's `seeds`"),
    ("variants:\n  a: {}\n  b: {model.heads: 3}\n", "variants: b: model.heads = 3"),
    ("variants:\n  a: {}\n  b: {finetune.lr: 0.001}\n", "variants 'a' and 'b' resolve to the same configuration"),
    ("variants:\n  a/b: {}\n", "bad name 'a/b'"),
    ("corpus_settings: [parallel]\nvariants:\n  a: {data.corpus_setting: nonparallel}\n",
     "data.corpus_setting is also set by `corpus_settings`"),
])
def test_bad_variants_are_rejected_in_one_line_naming_the_file(tmp_path, extra, message):
    path = write_grid(tmp_path, BASE + extra)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        load_grid(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_variants_share_what_they_do_not_change(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    grid = load_grid(write_grid(tmp_path, VARIANTS))
    assert list(grid.variants) == ["plain", "slow_finetune"]
    steps = expand(grid)
    plain = expand(load_grid(REPO_ROOT / "papermill_runs" / "grids" / "test.yaml"))
    assert {s.out_dir for s in plain} <= {s.out_dir for s in steps}  # the first variant is the test grid
    by_kind = {}
    for s in steps:
        by_kind.setdefault(s.kind, []).append(s)
    # pretraining and alignment read no fine-tuning field: one model per transformation serves both variants
    for s in by_kind["pretrain"] + by_kind["alignment"]:
        assert s.variants == ["plain", "slow_finetune"]
    # fine-tuning steps differ: each serves exactly one variant, and the second has the changed lr
    for s in by_kind["transfer"] + by_kind["finetune_mono"]:
        assert len(s.variants) == 1
        assert s.cfg.finetune.lr == (0.0005 if s.variants == ["slow_finetune"] else 0.001)
    assert len(by_kind["transfer"]) == 2 * 2 * 3 and len(by_kind["pretrain"]) == 3


def test_a_grid_without_variants_has_the_default_variant(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    steps = expand(load_grid(write_grid(tmp_path, BASE)))
    assert {tuple(s.variants) for s in steps} == {("default",)}


@pytest.fixture(scope="module")
def variant_report(shared_runs, tmp_path_factory):
    path = write_grid(tmp_path_factory.mktemp("variants"), VARIANTS)
    return run_grid(path, log=lambda *a: None)


def test_results_and_summary_have_one_cell_per_variant(variant_report):
    df = pd.read_csv(variant_report / "results.csv")
    assert list(df.columns) == RESULT_COLUMNS
    assert set(df.variant) == {"plain", "slow_finetune"}
    # a shared step's rows are counted in each variant: the same pretraining loss under both names
    loss = df[(df.task == "pretrain") & (df.metric == "final_mlm_loss")].pivot_table(
        index=["transformation", "seed"], columns="variant", values="value")
    assert len(loss) >= 2 and (loss.plain == loss.slow_finetune).all()
    summary = pd.read_csv(variant_report / "summary.csv")
    deltas = summary[summary.metric == "delta_sup"]
    assert deltas.groupby(["transformation", "task"]).variant.nunique().eq(2).all()
    # different fine-tuning learning rates give different BZ somewhere (the variants are really run)
    bz = summary[summary.setting == "BZ"].pivot_table(index=["transformation", "task", "metric"], columns="variant",
                                                      values="value")
    assert (bz.plain != bz.slow_finetune).any()
    html = (variant_report / "report.html").read_text()
    assert "slow_finetune" in html and "Traceback" not in html


def _cells(variant: str, delta_sup: float, delta_mono: float) -> list[dict]:
    return [{"transformation": "translit", "corpus_setting": "parallel", "variant": variant, "task": "pos",
             "setting": "delta", "metric": m, "value": v, "ci_low": v - 0.02, "ci_high": v + 0.02, "se": 0.01,
             "df": float("inf"), "n_examples": 500, "n_seeds": 3, "interval": "made by hand"}
            for m, v in (("delta_sup", delta_sup), ("delta_mono", delta_mono))]


def test_the_scorecard_tests_findings_per_variant_and_correlation_over_all_models():
    cells = pd.DataFrame(_cells("mlm", -0.40, 0.0) + _cells("mlm+align", -0.01, -0.40))
    correlations = pd.DataFrame([{"task": "pos", "predictor": "alignment_at_1", "n_models": 6, "spearman_rho": 0.9,
                                  "ci_low": 0.7, "ci_high": 0.99, "undefined_resamples": 0.0}])
    tests = scorecard(cells, correlations)
    one = tests[tests.finding == 1].groupby("variant").verdict.agg(set)
    assert one["mlm"] == {"contradicted"} and one["mlm+align"] == {"reproduced"}
    assert list(tests[tests.finding == 5].variant) == ["all models"]
    summary = scorecard_summary(tests).set_index(["variant", "finding"]).verdict
    assert summary["mlm", 1] == "contradicted" and summary["mlm+align", 1] == "reproduced"
    assert summary["all models", 5] == "reproduced" and ("mlm", 5) not in summary.index
    assert summary["mlm", 4] == "not in this grid"


def test_variant_contrasts_say_which_way_an_objective_moved_delta_sup():
    cells = pd.DataFrame(_cells("mlm", -0.40, 0.0) + _cells("mlm+align", -0.20, -0.1) + _cells("mlm+tlm", -0.41, 0.0))
    got = variant_contrasts(cells).set_index("variant")
    assert list(got.quantity) == ["pos Delta_Sup", "pos Delta_Sup"]  # Delta_Mono is not contrasted
    assert got.loc["mlm+align", "difference"] == pytest.approx(0.20)
    # independent sides: se = sqrt(0.01² + 0.01²), the normal quantile (df inf)
    assert got.loc["mlm+align", "ci_low"] == pytest.approx(0.20 - 1.959964 * 0.01 * 2 ** 0.5, abs=1e-5)
    assert got.loc["mlm+align", "moved"] == "raised" and got.loc["mlm+tlm", "moved"] == "unclear"
    assert variant_contrasts(cells, baseline="absent").empty


def test_a_when_set_field_enters_the_key_only_away_from_its_default():
    @dataclasses.dataclass(frozen=True)
    class Group:
        old: int = _f(1, "a field from before")
        new: float = _f(0.0, "a field added later", key="when_set")
        never: int = _f(5, "cannot change a number", key=False)

    cfg = types.SimpleNamespace(g=Group())
    assert key_dict(cfg, ("g",)) == {"g": {"old": 1}}
    assert key_dict(types.SimpleNamespace(g=Group(new=0.5, never=7)), ("g",)) == {"g": {"old": 1, "new": 0.5}}
