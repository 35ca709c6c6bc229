"""Intervals from saved per-example predictions: each score is a ratio of per-example sums, resampled
over test examples (whole sentences for tagging, whole questions for QA) with ``scipy.stats.bootstrap``.

Every metric of the study is ``sum(num) / sum(den)`` over examples (``metrics``, where each metric says
what its numerator and denominator are). Resampling examples and recomputing the ratio is the paired
bootstrap of the paper's metric, not of a per-example average.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.stats import bootstrap, spearmanr
from scipy.stats import t as student_t

from .metrics import ratio

CONFIDENCE = 0.95
N_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A 95% interval and what it is made of: ``se`` combines the test-example bootstrap with the spread
    over seeds; ``df`` is the t quantile's degrees of freedom (inf: test examples only, no seed spread)."""

    estimate: float
    low: float
    high: float
    se: float
    df: float
    n_examples: int
    n_seeds: int          # seed units the spread is taken over (1: none)
    method: str

    def __str__(self) -> str:
        return format_interval(self.estimate, self.low, self.high)


def format_interval(value: float, low: float, high: float, signed: bool = False) -> str:
    """``0.512 [0.480, 0.545]`` (``signed``: ``+0.012 [-0.010, +0.030]``); a missing interval shows as ``[–]``."""
    f = "{:+.3f}" if signed else "{:.3f}"
    if not np.isfinite(value):
        return "–"
    bounds = f"[{f.format(low)}, {f.format(high)}]" if np.isfinite(low) and np.isfinite(high) else "[–]"
    return f"{f.format(value)} {bounds}"


def t_interval(estimate: float, se: float, df: float) -> tuple[float, float]:
    """estimate ± t(df) x se at CONFIDENCE (the normal quantile when df is inf)."""
    half = float(student_t.ppf((1 + CONFIDENCE) / 2, df)) * se
    return estimate - half, estimate + half


def combined_interval(runs: Sequence[Sequence[np.ndarray]], statistic: Callable, units: Sequence | None = None,
                      seed: int = 0) -> Interval:
    """The mean of ``statistic`` over runs and its 95% interval.

    ``runs``: per run (a pretraining x fine-tuning seed), its per-example arrays, every run scored on the
    same test examples in the same order; ``statistic(*arrays, axis)``: the run's score from them;
    ``units``: the seed each run counts under (runs of one unit are averaged first; default: each run
    its own unit). Test examples are resampled jointly for every run (``scipy.stats.bootstrap`` over
    example indices, so pairs such as BZ and BS stay paired). One unit: the percentile interval. Two or
    more: se² = bootstrap se² of the mean + var(unit means) / k, and the interval is ± t(k-1) x se.
    """
    arrays = [np.stack([np.asarray(r[j], dtype=float) for r in runs]) for j in range(len(runs[0]))]
    k_runs, n = arrays[0].shape
    labels, inverse = np.unique(np.asarray(list(units) if units is not None else range(k_runs)), return_inverse=True)

    def unit_means(idx: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_run = statistic(*[a[:, idx] for a in arrays], axis=-1)  # (runs, *batch)
            return np.stack([per_run[inverse == u].mean(axis=0) for u in range(len(labels))])

    means = unit_means(np.arange(n))
    estimate = float(means.mean())
    nan = Interval(estimate, math.nan, math.nan, math.nan, math.nan, n, len(labels), "undefined (fewer than 2 examples)")
    if n < 2 or not np.isfinite(estimate):
        return nan
    res = bootstrap((np.arange(n),), lambda idx, axis: unit_means(idx).mean(axis=0), vectorized=True,
                    n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE, method="percentile", batch=250,
                    rng=np.random.default_rng(seed))
    se_examples = float(np.std(res.bootstrap_distribution, ddof=1))
    if len(labels) == 1:
        return Interval(estimate, float(res.confidence_interval.low), float(res.confidence_interval.high),
                        se_examples, math.inf, n, 1, "bootstrap over test examples")
    k = len(labels)
    se = math.sqrt(se_examples ** 2 + float(np.var(means, ddof=1)) / k)
    low, high = t_interval(estimate, se, k - 1)
    return Interval(estimate, low, high, se, k - 1, n, k,
                    f"bootstrap over test examples + spread over {k} seeds (t, {k - 1} df)")


def score_interval(num: np.ndarray, den: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """A score and its 95% interval over test examples."""
    iv = combined_interval([(num, den)], ratio, seed=seed)
    return iv.estimate, iv.low, iv.high


def difference(n1: np.ndarray, d1: np.ndarray, n2: np.ndarray, d2: np.ndarray, axis: int = -1) -> np.ndarray:
    """ratio(n1, d1) - ratio(n2, d2): a delta from the per-example sums of its two scores."""
    return ratio(n1, d1, axis) - ratio(n2, d2, axis)


def delta_interval(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], paired: bool = True,
                   seed: int = 0) -> tuple[float, float, float]:
    """score(a) - score(b) and its 95% interval. ``paired``: both were scored on the same test examples
    (BZ and BS on the derived test set), so each resample draws the same examples for both; unpaired
    resamples the two independently (for comparison)."""
    if paired:
        if len(a[0]) != len(b[0]):
            raise ValueError(f"a paired difference needs the same examples: {len(a[0])} against {len(b[0])}")
        iv = combined_interval([(a[0], a[1], b[0], b[1])], difference, seed=seed)
        return iv.estimate, iv.low, iv.high
    estimate = float(ratio(*a) - ratio(*b))
    rng = np.random.default_rng(seed)
    draws = []
    for num, den in (a, b):
        res = bootstrap((num, den), ratio, paired=True, vectorized=True, n_resamples=N_RESAMPLES,
                        method="percentile", rng=rng)
        draws.append(res.bootstrap_distribution)
    low, high = np.quantile(draws[0] - draws[1], [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return estimate, float(low), float(high)


def proportion_interval(values: Sequence[float], n: int, units: Sequence | None = None) -> Interval:
    """A proportion measured on ``n`` items per run (alignment P@1 over token pairs) and its 95% interval:
    Wilson's (statsmodels) for one run; for several seeds, the binomial se of the mean proportion
    combined with the spread over seeds as in ``combined_interval``."""
    from statsmodels.stats.proportion import proportion_confint

    values = np.asarray(values, dtype=float)
    labels, inverse = np.unique(np.asarray(list(units) if units is not None else range(len(values))),
                                return_inverse=True)
    means = np.array([values[inverse == u].mean() for u in range(len(labels))])
    p = float(means.mean())
    if n < 1 or not np.isfinite(p):
        return Interval(p, math.nan, math.nan, math.nan, math.nan, n, len(labels), "undefined (no items)")
    se_items = math.sqrt(p * (1 - p) / n)
    if len(labels) == 1:
        low, high = proportion_confint(round(p * n), n, alpha=1 - CONFIDENCE, method="wilson")
        return Interval(p, float(low), float(high), se_items, math.inf, n, 1, "Wilson interval over items")
    k = len(labels)
    se = math.sqrt(se_items ** 2 + float(np.var(means, ddof=1)) / k)
    low, high = t_interval(p, se, k - 1)
    return Interval(p, low, high, se, k - 1, n, k, f"binomial se over items + spread over {k} seeds (t, {k - 1} df)")


def combine(intervals: Sequence[Interval], weights: Sequence[float]) -> Interval:
    """sum(w_i x estimate_i) of independent estimates (e.g. a mean over languages, or a difference
    between two models: weights 1, -1), with se = sqrt(sum(w_i² se_i²)) and the smallest df."""
    if len(intervals) == 1 and weights[0] == 1:
        return intervals[0]
    est = float(sum(w * iv.estimate for w, iv in zip(weights, intervals, strict=True)))
    se = math.sqrt(sum((w * iv.se) ** 2 for w, iv in zip(weights, intervals)))
    df = min(iv.df for iv in intervals)
    low, high = t_interval(est, se, df) if np.isfinite(se) else (math.nan, math.nan)
    methods = sorted({iv.method for iv in intervals})
    return Interval(est, low, high, se, df, min(iv.n_examples for iv in intervals),
                    min(iv.n_seeds for iv in intervals), "; ".join(methods) + f"; {len(intervals)} independent parts")


MAX_UNDEFINED = 0.05  # the largest share of bootstrap resamples with an undefined rho that still gives an interval


def spearman_interval(x: Sequence[float], y: Sequence[float], seed: int = 0) -> tuple[float, float, float, float]:
    """Spearman's rho across models, its 95% percentile bootstrap interval over models, and the share of
    resamples where rho is undefined (a resample whose x or y values are all tied). Leaving those out
    would bias the interval, so above ``MAX_UNDEFINED`` (heavily tied data, e.g. many models at P@1 0)
    the interval is NaN. NaN throughout below 4 models."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan, math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(spearmanr(x, y).statistic)
        res = bootstrap((x, y), lambda a, b: spearmanr(a, b).statistic, paired=True, vectorized=False,
                        n_resamples=N_RESAMPLES, method="percentile", rng=np.random.default_rng(seed))
    defined = np.isfinite(res.bootstrap_distribution)
    undefined = 1 - float(defined.mean())
    if undefined > MAX_UNDEFINED:
        return rho, math.nan, math.nan, undefined
    low, high = np.quantile(res.bootstrap_distribution[defined], [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return rho, float(low), float(high), undefined


def clip(iv: Interval, low: float, high: float) -> Interval:
    """``iv`` with its bounds cut to the metric's range (scores and P@1 in [0, 1], deltas in [-1, 1]):
    a t interval around a mean near a bound can cross it."""
    if not (np.isfinite(iv.low) and np.isfinite(iv.high)):
        return iv
    return Interval(iv.estimate, max(iv.low, low), min(iv.high, high), iv.se, iv.df, iv.n_examples, iv.n_seeds,
                    iv.method)
