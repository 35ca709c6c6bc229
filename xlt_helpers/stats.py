"""Intervals from saved per-example predictions: each score is a ratio of per-example sums, resampled
over test examples (whole sentences for tagging, whole questions for QA) with ``scipy.stats.bootstrap``.

Every metric of the study is ``sum(num) / sum(den)`` over examples:
accuracy (XNLI): correct / 1; token accuracy (POS): correct tags / tags of the sentence; entity F1
(NER, micro, as seqeval): 2 x true positives / (predicted + gold entities); SQuAD F1 / EM: the
question's score / 1; retrieval accuracy@1: mean of both directions' hits / 1. Resampling examples and
recomputing the ratio is the paired bootstrap of the paper's metric, not of a per-example average.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import bootstrap
from seqeval.metrics.sequence_labeling import get_entities

from .metrics import exact_match, squad_f1

CONFIDENCE = 0.95
N_RESAMPLES = 2000


def example_scores(task_kind: str, metric: str, table: dict[str, list]) -> tuple[np.ndarray, np.ndarray]:
    """Per-example numerators and denominators of ``metric`` from a predictions table
    (``tasks.predictions_table`` or ``retrieval.retrieval_predictions``)."""
    if task_kind == "retrieval":
        hits = {k: np.asarray(table[f"hit_{k}"], dtype=float) for k in ("src_to_tgt", "tgt_to_src")}
        num = (hits["src_to_tgt"] + hits["tgt_to_src"]) / 2 if metric == "accuracy" else hits[metric[len("accuracy_"):]]
        return num, np.ones_like(num)
    gold, pred = table["gold"], table["pred"]
    if task_kind == "sequence":
        num = np.asarray([float(p == g) for p, g in zip(pred, gold, strict=True)])
        return num, np.ones_like(num)
    if task_kind == "span":
        fn = {"f1": squad_f1, "em": exact_match}[metric]
        num = np.asarray([max(fn(p, g) for g in gs) for p, gs in zip(pred, gold, strict=True)])
        return num, np.ones_like(num)
    if metric == "f1":  # entity-level: 2 TP / (|pred| + |gold|) summed over sentences is seqeval's micro F1
        num, den = [], []
        for p, g in zip(pred, gold, strict=True):
            pe, ge = set(get_entities(list(p))), set(get_entities(list(g)))
            num.append(2 * len(pe & ge))
            den.append(len(pe) + len(ge))
        return np.asarray(num, float), np.asarray(den, float)
    num = np.asarray([sum(a == b for a, b in zip(p, g, strict=True)) for p, g in zip(pred, gold, strict=True)], float)
    return num, np.asarray([len(g) for g in gold], float)


def ratio(num: np.ndarray, den: np.ndarray, axis: int = -1) -> np.ndarray:
    """sum(num) / sum(den) along ``axis`` (0/0: NaN, as an F1 with no entity anywhere)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(num, axis=axis) / np.sum(den, axis=axis)


def _interval(samples: Sequence[np.ndarray], statistic, seed: int) -> tuple[float, float, float]:
    """(estimate, low, high): a percentile bootstrap over examples, paired across ``samples``."""
    estimate = float(statistic(*samples, axis=-1))
    if len(samples[0]) < 2 or not np.isfinite(estimate):
        return estimate, float("nan"), float("nan")
    res = bootstrap(tuple(samples), statistic, paired=True, vectorized=True, n_resamples=N_RESAMPLES,
                    confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed))
    return estimate, float(res.confidence_interval.low), float(res.confidence_interval.high)


def score_interval(num: np.ndarray, den: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """A score and its 95% interval over test examples."""
    return _interval([num, den], ratio, seed)


def delta_interval(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], paired: bool = True,
                   seed: int = 0) -> tuple[float, float, float]:
    """score(a) - score(b) and its 95% interval. ``paired``: both were scored on the same test examples
    (BZ and BS on the derived test set), so each resample draws the same examples for both; unpaired
    resamples the two independently (for comparison)."""
    if paired:
        if len(a[0]) != len(b[0]):
            raise ValueError(f"a paired difference needs the same examples: {len(a[0])} against {len(b[0])}")
        return _interval([a[0], a[1], b[0], b[1]], lambda n1, d1, n2, d2, axis: ratio(n1, d1, axis) - ratio(n2, d2, axis),
                         seed)
    estimate = float(ratio(*a) - ratio(*b))
    rng = np.random.default_rng(seed)
    draws = []
    for num, den in (a, b):
        res = bootstrap((num, den), ratio, paired=True, vectorized=True, n_resamples=N_RESAMPLES,
                        method="percentile", rng=rng)
        draws.append(res.bootstrap_distribution)
    low, high = np.quantile(draws[0] - draws[1], [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return estimate, float(low), float(high)
