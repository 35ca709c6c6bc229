"""The report's statistics on hand-made tables: regression against numpy, and each scorecard verdict."""
import numpy as np
import pandas as pd
import pytest

from xlt_helpers.report.intervals import average_languages, summarize
from xlt_helpers.report.regressions import pooled_regression, regression_by_task
from xlt_helpers.report.results import RESULT_COLUMNS, TIMING_METRICS
from xlt_helpers.report.scorecard import scorecard, scorecard_summary

WORD_ORDER = ["inv", "perm", "translit", "translit+inv", "syntax:hi"]


def _cells(values: dict[tuple[str, str, str], tuple[float, float]], corpus: str = "parallel") -> pd.DataFrame:
    """Language-averaged cells from {(transformation, task, metric): (value, half-width)}."""
    rows = []
    for (tr, task, metric), (v, half) in values.items():
        setting = "delta" if metric.startswith("delta") else "none"
        rows.append({"transformation": tr, "corpus_setting": corpus, "task": task, "setting": setting, "metric": metric,
                     "value": v, "ci_low": v - half, "ci_high": v + half, "se": half / 1.96, "df": np.inf,
                     "n_examples": 500, "n_seeds": 1, "interval": "made by hand"})
    return pd.DataFrame(rows)


def _verdicts(tests: pd.DataFrame, finding: int) -> list[str]:
    return list(tests[tests.finding == finding].verdict)


def test_ols_slope_equals_numpy_least_squares():
    rng = np.random.default_rng(0)
    x = rng.random(9)
    y = 0.8 * x - 0.5 + rng.normal(0, 0.05, 9)
    models = pd.DataFrame({"task": "pos", "language": "en", "alignment_at_1": x, "delta_sup": y})
    fit = regression_by_task(models).iloc[0]
    slope, intercept = np.linalg.lstsq(np.column_stack([x, np.ones_like(x)]), y, rcond=None)[0]
    assert fit.slope == pytest.approx(slope) and fit.n == 9
    assert fit.ci_low < slope < fit.ci_high
    assert fit.r2 == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)


def test_pooled_regression_with_task_effects_and_a_mixed_model_per_language():
    rng = np.random.default_rng(1)
    rows = []
    for lang, shift in (("en", 0.0), ("fr", 0.1), ("ar", -0.1), ("hi", 0.05)):
        for task, offset in (("pos", 0.0), ("ner", -0.2)):
            x = rng.random(5)
            rows += [{"language": lang, "task": task, "alignment_at_1": xi,
                      "delta_sup": 0.5 * xi + offset + shift + rng.normal(0, 0.02)} for xi in x]
    fits = pooled_regression(pd.DataFrame(rows))
    assert list(fits.model) == ["OLS, task fixed effects", "MixedLM, random intercept per language"]
    for f in fits.itertuples():
        assert f.ci_low < 0.5 < f.ci_high and f.n == 40


def test_scorecard_finding_one_each_verdict():
    reproduced = _cells({("translit", "pos", "delta_sup"): (-0.01, 0.02), ("translit", "pos", "delta_mono"): (-0.4, 0.05)})
    contradicted = _cells({("translit", "pos", "delta_sup"): (-0.4, 0.05), ("translit", "pos", "delta_mono"): (0.0, 0.02)})
    inconclusive = _cells({("translit", "pos", "delta_sup"): (-0.04, 0.03), ("translit", "pos", "delta_mono"): (-0.1, 0.05)})
    assert _verdicts(scorecard(reproduced), 1) == ["reproduced", "reproduced"]
    assert _verdicts(scorecard(contradicted), 1) == ["contradicted", "contradicted"]
    assert _verdicts(scorecard(inconclusive), 1) == ["inconclusive", "inconclusive"]
    summary = scorecard_summary(scorecard(inconclusive)).set_index("finding").verdict
    assert summary[1] == "inconclusive" and set(summary[[2, 3, 4, 5]]) == {"not in this grid"}


def test_scorecard_word_order_and_compositions():
    v = {("inv", "pos", "delta_sup"): (-0.05, 0.02), ("perm", "pos", "delta_sup"): (-0.15, 0.02),
         ("syntax:hi", "pos", "delta_sup"): (-0.01, 0.02), ("translit", "pos", "delta_sup"): (-0.02, 0.02),
         ("translit+inv", "pos", "delta_sup"): (-0.30, 0.02),
         ("inv", "ner", "delta_sup"): (-0.15, 0.02), ("perm", "ner", "delta_sup"): (-0.22, 0.02)}
    tests = scorecard(_cells(v))
    f2 = tests[tests.finding == 2]
    assert set(f2.verdict) == {"reproduced"} and len(f2) == 5 + 2 + 2 + 2  # bounds, perm below inv, syntax above both, NER below POS
    f3 = tests[tests.finding == 3]
    assert list(f3.verdict) == ["reproduced", "reproduced"]
    v[("translit+inv", "pos", "delta_sup")] = (0.0, 0.02)  # the composition hurts less: contradicted
    v[("perm", "pos", "delta_sup")] = (-0.05, 0.05)         # perm vs inv: straddles 0
    tests = scorecard(_cells(v))
    assert set(tests[tests.finding == 3].verdict) == {"contradicted"}
    assert tests[tests.test.str.contains("Permutation hurts more") & (tests.task == "pos")].verdict.item() == "inconclusive"
    assert scorecard_summary(tests).set_index("finding").verdict[3] == "contradicted"


def test_scorecard_corpus_settings_and_correlation():
    cells = pd.concat([_cells({("translit", "pos", "delta_sup"): (-0.02, 0.01), ("translit", "alignment", "alignment_at_1"): (0.7, 0.05)}, "parallel"),
                       _cells({("translit", "pos", "delta_sup"): (-0.30, 0.01), ("translit", "alignment", "alignment_at_1"): (0.01, 0.01)}, "nonparallel")])
    corr = pd.DataFrame([{"task": "pos", "predictor": "alignment_at_1", "n_models": 8, "spearman_rho": 0.9,
                          "ci_low": 0.6, "ci_high": 1.0},
                         {"task": "ner", "predictor": "alignment_at_1", "n_models": 8, "spearman_rho": 0.1,
                          "ci_low": -0.5, "ci_high": 0.6},
                         {"task": "xnli", "predictor": "alignment_at_1", "n_models": 3, "spearman_rho": np.nan,
                          "ci_low": np.nan, "ci_high": np.nan}])
    tests = scorecard(cells, corr)
    assert _verdicts(tests, 4) == ["reproduced", "reproduced"]
    assert _verdicts(tests, 5) == ["reproduced", "inconclusive"]  # xnli: too few models, no test
    summary = scorecard_summary(tests).set_index("finding")
    assert summary.verdict[4] == "reproduced" and summary.verdict[5] == "inconclusive" and summary.tests[5] == 2


def _samples(rng, pretrain_seeds, finetune_seeds, n=200):
    """run_samples-like records of one POS cell: BZ scores of every (pretraining, fine-tuning) seed."""
    from xlt_helpers import stats

    hard = rng.random(n)
    out = []
    for s in pretrain_seeds:
        shift = rng.normal(0, 0.1)
        for f in finetune_seeds:
            hits = (hard < 0.5 + shift + rng.normal(0, 0.01)).astype(float)
            out.append({"language": "en", "transformation": "translit", "corpus_setting": "parallel", "task": "pos",
                        "setting": "BZ", "metric": "accuracy", "seed": s, "finetune_seed": f, "step_dir": f"{s}/{f}",
                        "arrays": (hits, np.ones(n)), "statistic": stats.ratio})
    return out


def test_summary_takes_the_spread_over_pretraining_seeds_when_there_are_several():
    rng = np.random.default_rng(3)
    both = summarize(_samples(rng, [0, 1, 2], [0, 1, 2])).iloc[0]
    assert both.n_runs == 9 and both.n_seeds == 3 and both.df == 2 and "3 pretraining seeds" in both.interval
    ft_only = summarize(_samples(rng, [0], [0, 1, 2])).iloc[0]
    assert ft_only.n_seeds == 3 and "3 fine-tuning seeds" in ft_only.interval
    one = summarize(_samples(rng, [0], [0])).iloc[0]
    assert one.n_seeds == 1 and one.interval == "bootstrap over test examples" and one.ci_low < one.value < one.ci_high


def test_cells_of_different_test_sets_are_refused():
    rng = np.random.default_rng(4)
    samples = _samples(rng, [0], [0]) + _samples(rng, [1], [0], n=150)
    with pytest.raises(ValueError, match="different test sets"):
        summarize(samples)


def test_language_average_combines_independent_intervals():
    rng = np.random.default_rng(5)
    en, fr = _samples(rng, [0], [0]), _samples(rng, [0], [0])
    for s in fr:
        s["language"] = "fr"
    summary = summarize(en + fr)
    avg = average_languages(summary).iloc[0]
    assert avg.n_languages == 2 and avg.value == pytest.approx(summary.value.mean())
    assert avg.se == pytest.approx(np.sqrt((summary.se ** 2).sum()) / 2)


def test_results_csv_columns_extend_the_step_rows():
    from xlt_helpers.experiment import ROW_COLUMNS

    assert RESULT_COLUMNS[:len(ROW_COLUMNS)] == list(ROW_COLUMNS)
    assert "tokens_per_s" in TIMING_METRICS
