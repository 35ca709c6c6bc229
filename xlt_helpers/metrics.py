"""Metrics: arrays in, numbers out."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from seqeval.metrics import f1_score


def accuracy(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Share of exact matches (XNLI)."""
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predictions for {len(gold)} gold labels")
    return float(np.mean(np.asarray(pred) == np.asarray(gold))) if len(gold) else float("nan")


def token_accuracy(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    """Share of correctly tagged tokens over all sentences (POS)."""
    hits = total = 0
    for p, g in zip(pred, gold, strict=True):
        if len(p) != len(g):
            raise ValueError(f"sentence with {len(p)} predicted tags for {len(g)} gold tags")
        hits += sum(a == b for a, b in zip(p, g))
        total += len(g)
    return hits / total if total else float("nan")


def entity_f1(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    """Entity-level F1 over BIO sequences (seqeval, CoNLL evaluation; NER)."""
    return float(f1_score([list(g) for g in gold], [list(p) for p in pred]))


def delta_sup(bz: float, bs: float) -> float:
    """Delta_Sup = BZ - BS: 0 means zero-shot transfer as good as supervised training."""
    return bz - bs


def delta_mono(mz: float, bz: float) -> float:
    """Delta_Mono = MZ - BZ: strongly negative means bilingual pretraining helps a lot."""
    return mz - bz
