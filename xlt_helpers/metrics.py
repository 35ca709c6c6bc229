"""Metrics: arrays in, numbers out."""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Sequence

import numpy as np


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
    from seqeval.metrics import f1_score  # here: seqeval loads scikit-learn, which `status` does not need
    return float(f1_score([list(g) for g in gold], [list(p) for p in pred]))


def delta_sup(bz: float, bs: float) -> float:
    """Delta_Sup = BZ - BS: 0 means zero-shot transfer as good as supervised training."""
    return bz - bs


def delta_mono(mz: float, bz: float) -> float:
    """Delta_Mono = MZ - BZ: strongly negative means bilingual pretraining helps a lot."""
    return mz - bz


# ------------------------------------------------------------------------------------ SQuAD (QA)
_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(text: str) -> str:
    """The official SQuAD v1.1 answer normalisation: lower-case, drop ASCII punctuation, drop the
    articles a/an/the (as whole words), collapse whitespace; applied in that order."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 if the normalised strings are equal, else 0.0."""
    return float(squad_normalize(prediction) == squad_normalize(gold))


def squad_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 of the normalised strings (0 when they share no token, as in the official script)."""
    pred, ref = squad_normalize(prediction).split(), squad_normalize(gold).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def qa_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and F1 over questions; each prediction scores its best gold answer."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} questions")
    if not golds:
        return {"em": float("nan"), "f1": float("nan")}
    em = [max(exact_match(p, g) for g in gs) for p, gs in zip(predictions, golds)]
    f1 = [max(squad_f1(p, g) for g in gs) for p, gs in zip(predictions, golds)]
    return {"em": float(np.mean(em)), "f1": float(np.mean(f1))}
