"""Intervals from per-example predictions: the per-example sums give back each metric, and the
bootstrap behaves as a 95% interval should on cases with a known answer."""
import numpy as np
import pytest

from xlt_helpers import stats
from xlt_helpers.metrics import accuracy, entity_f1, qa_scores, token_accuracy
from xlt_helpers.storage import atomic_write_json, read_json
from xlt_helpers.tasks import TASKS

RNG = np.random.default_rng(0)
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _tag_table(n=60, noise=0.3):
    gold = [list(RNG.choice(TAGS, size=RNG.integers(1, 9))) for _ in range(n)]
    pred = [[t if RNG.random() > noise else str(RNG.choice(TAGS)) for t in g] for g in gold]
    return {"id": list(range(n)), "gold": gold, "pred": pred}


def test_per_example_sums_give_back_each_metric():
    t = _tag_table()
    assert stats.ratio(*TASKS["ner"].scorer("f1").examples(t)) == pytest.approx(entity_f1(t["pred"], t["gold"]))
    assert stats.ratio(*TASKS["pos"].scorer("accuracy").examples(t)) == pytest.approx(
        token_accuracy(t["pred"], t["gold"]))
    nli = {"gold": list(RNG.integers(0, 3, 50)), "pred": list(RNG.integers(0, 3, 50))}
    assert stats.ratio(*TASKS["xnli"].scorer("accuracy").examples(nli)) == pytest.approx(
        accuracy(nli["pred"], nli["gold"]))
    qa = {"pred": ["the Broncos", "1920s", "x"], "gold": [["Denver Broncos"], ["late 1920s", "1920s"], ["y"]]}
    want = qa_scores(qa["pred"], qa["gold"])
    for m in ("f1", "em"):
        assert stats.ratio(*TASKS["qa"].scorer(m).examples(qa)) == pytest.approx(want[m])
    hits = {"hit_src_to_tgt": [True, False, True, True], "hit_tgt_to_src": [False, False, True, True]}
    assert stats.ratio(*TASKS["retrieval"].scorer("accuracy").examples(hits)) == pytest.approx((0.75 + 0.5) / 2)
    assert stats.ratio(*TASKS["retrieval"].scorer("accuracy_tgt_to_src").examples(hits)) == pytest.approx(0.5)


def test_a_task_scores_a_table_with_its_metrics():
    t = _tag_table()
    assert TASKS["ner"].score(t) == {"f1": pytest.approx(entity_f1(t["pred"], t["gold"]))}
    hits = {"hit_src_to_tgt": [True, False, True, True], "hit_tgt_to_src": [False, False, True, True]}
    assert TASKS["retrieval"].score(hits) == {"accuracy": 0.625, "accuracy_src_to_tgt": 0.75,
                                              "accuracy_tgt_to_src": 0.5}
    with pytest.raises(ValueError, match="no metric 'em'"):
        TASKS["pos"].scorer("em")


@pytest.mark.slow
def test_bootstrap_interval_covers_a_known_mean_at_about_the_nominal_rate():
    p, n, trials = 0.7, 200, 200
    rng = np.random.default_rng(1)
    covered = 0
    for k in range(trials):
        x = (rng.random(n) < p).astype(float)
        _, low, high = stats.score_interval(x, np.ones(n), seed=k)
        covered += low <= p <= high
    assert 0.88 <= covered / trials <= 0.99  # nominal 0.95; 200 trials: sd about 0.015


def test_paired_interval_of_a_difference_is_narrower_on_correlated_scores():
    n = 400
    rng = np.random.default_rng(2)
    hard = rng.random(n)  # examples differ in difficulty; both models see the same ones
    a = (rng.random(n) > hard * 0.9).astype(float)
    b = np.where(rng.random(n) < 0.9, a, 1 - a)
    one = np.ones(n)
    est, lo_p, hi_p = stats.delta_interval((a, one), (b, one), paired=True)
    est_u, lo_u, hi_u = stats.delta_interval((a, one), (b, one), paired=False)
    assert est == pytest.approx(a.mean() - b.mean()) == pytest.approx(est_u)
    assert lo_p <= est <= hi_p
    assert hi_p - lo_p < 0.6 * (hi_u - lo_u)


def test_paired_difference_refuses_different_test_sets():
    with pytest.raises(ValueError, match="same examples"):
        stats.delta_interval((np.ones(3), np.ones(3)), (np.ones(4), np.ones(4)))


def test_interval_is_seeded_and_undefined_below_two_examples():
    x = (RNG.random(100) < 0.5).astype(float)
    assert stats.score_interval(x, np.ones(100), seed=3) == stats.score_interval(x, np.ones(100), seed=3)
    est, low, high = stats.score_interval(np.ones(1), np.ones(1))
    assert est == 1.0 and np.isnan(low) and np.isnan(high)


def test_gzipped_json_round_trips(tmp_path):
    obj = {"settings": {"BZ": {"id": [0, 1], "gold": [["O"], ["B-PER"]], "pred": [["O"], ["O"]]}}}
    atomic_write_json(obj, tmp_path / "predictions.json.gz")
    assert (tmp_path / "predictions.json.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert read_json(tmp_path / "predictions.json.gz") == obj


def _seeded_runs(rng, mu, k, n, seed_sd):
    """k runs on one shared test set of n examples: each seed shifts the success rate by N(0, seed_sd)."""
    hard = rng.random(n)
    return [((hard < np.clip(mu + rng.normal(0, seed_sd), 0, 1)).astype(float), np.ones(n)) for _ in range(k)]


@pytest.mark.slow
def test_interval_over_seeds_covers_the_mean_over_seeds_and_test_sets_at_about_the_nominal_rate():
    mu, trials, covered = 0.6, 150, 0
    rng = np.random.default_rng(5)
    for k in range(trials):
        iv = stats.combined_interval(_seeded_runs(rng, mu, 4, 150, 0.05), stats.ratio, seed=k)
        covered += iv.low <= mu <= iv.high
        assert iv.n_seeds == 4 and iv.df == 3
    assert 0.88 <= covered / trials <= 1.0


def test_seed_spread_widens_the_interval_and_one_seed_gives_the_bootstrap_alone():
    rng = np.random.default_rng(6)
    runs = _seeded_runs(rng, 0.5, 3, 300, 0.15)
    one = stats.combined_interval(runs[:1], stats.ratio)
    assert one.method == "bootstrap over test examples" and one.df == np.inf
    assert (one.estimate, one.low, one.high) == stats.score_interval(*runs[0])
    three = stats.combined_interval(runs, stats.ratio)
    assert three.estimate == pytest.approx(np.mean([r[0].mean() for r in runs]))
    assert three.high - three.low > one.high - one.low
    # runs of one unit (fine-tuning seeds of one pretraining seed) are averaged first: one unit, no seed spread
    assert stats.combined_interval(runs, stats.ratio, units=[0, 0, 0]).n_seeds == 1


def test_wilson_interval_and_combination_of_independent_estimates():
    iv = stats.proportion_interval([0.5], 100)
    assert (round(iv.low, 3), round(iv.high, 3)) == (0.404, 0.596)
    a = stats.Interval(0.5, 0.4, 0.6, 0.05, np.inf, 100, 1, "x")
    b = stats.Interval(0.2, 0.1, 0.3, 0.05, np.inf, 100, 1, "x")
    d = stats.combine([a, b], [1, -1])
    assert d.estimate == pytest.approx(0.3) and d.se == pytest.approx(0.05 * np.sqrt(2))
    assert d.high - d.low == pytest.approx(2 * 1.959964 * 0.05 * np.sqrt(2), rel=1e-4)


def test_spearman_interval_on_known_cases():
    x = np.arange(12.0)
    rho, low, high, undefined = stats.spearman_interval(x, 2 * x + 1)
    assert rho == 1.0 and low == pytest.approx(1.0) and undefined == 0
    rng = np.random.default_rng(7)
    rho, low, high, _ = stats.spearman_interval(rng.random(40), rng.random(40))
    assert low < 0 < high and low <= rho <= high
    assert np.isnan(stats.spearman_interval([1, 2, 3], [1, 2, 3])[0])  # below 4 models
    # mostly tied x (6 models at P@1 0): many resamples have no defined rho, so no interval is given
    rho, low, high, undefined = stats.spearman_interval([0, 0, 0, 0, 0, 0, 0.3, 0.5], rng.random(8))
    assert np.isfinite(rho) and undefined > stats.MAX_UNDEFINED and np.isnan(low) and np.isnan(high)


def test_intervals_are_cut_to_the_metric_range():
    iv = stats.clip(stats.Interval(0.01, -0.05, 0.07, 0.03, 1, 100, 2, "x"), 0, 1)
    assert (iv.low, iv.high, iv.estimate) == (0, 0.07, 0.01)
