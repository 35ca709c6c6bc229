"""Metrics, each written once: per example, a numerator and a denominator (what the intervals resample,
``stats``), and the reported score, ``sum(num) / sum(den)`` over the examples.

Every metric of the study is such a ratio: accuracy (XNLI): correct / 1; token accuracy (POS): correct
tags / tags of the sentence; entity F1 (NER, micro, as seqeval): 2 x true positives / (predicted + gold
entities); SQuAD F1 / EM (QA): the question's score / 1; retrieval accuracy@1: hits / 1 per direction,
their mean for ``accuracy``. Two scores keep the formula of their reference, which equals the ratio up
to rounding: entity F1 is seqeval's CoNLL evaluation, retrieval ``accuracy`` the mean of its two
directions. A predictions table (``Table``) holds ``pred`` and ``gold`` per example, or for retrieval the
per-sentence hits ``hit_src_to_tgt`` and ``hit_tgt_to_src``.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

Table = Mapping[str, Sequence]
Examples = tuple[np.ndarray, np.ndarray]  # per-example numerators and denominators


def ratio(num: np.ndarray, den: np.ndarray, axis: int = -1) -> np.ndarray:
    """sum(num) / sum(den) along ``axis`` (0/0: NaN, as an F1 with no entity anywhere)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(num, axis=axis) / np.sum(den, axis=axis)


@dataclass(frozen=True)
class Metric:
    """One metric: its per-example sums and, where the reference formula differs from their ratio only by
    rounding, that formula (``reported``)."""

    name: str
    examples: Callable[[Table], Examples]
    reported: Callable[[Table], float] | None = None

    def score(self, table: Table) -> float:
        """The reported score of a predictions table."""
        if self.reported is not None:
            return self.reported(table)
        return float(ratio(*self.examples(table)))


# ------------------------------------------------------------------------------------ per example
def _ones(num: Sequence[float]) -> Examples:
    num = np.asarray(num, dtype=float)
    return num, np.ones_like(num)


def _accuracy(table: Table) -> Examples:
    pred, gold = table["pred"], table["gold"]
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predictions for {len(gold)} gold labels")
    return _ones([float(p == g) for p, g in zip(pred, gold)])


def _token_accuracy(table: Table) -> Examples:
    num, den = [], []
    for p, g in zip(table["pred"], table["gold"], strict=True):
        if len(p) != len(g):
            raise ValueError(f"sentence with {len(p)} predicted tags for {len(g)} gold tags")
        num.append(sum(a == b for a, b in zip(p, g)))
        den.append(len(g))
    return np.asarray(num, float), np.asarray(den, float)


def _entity_f1(table: Table) -> Examples:
    """2 TP / (|pred| + |gold|) per sentence: summed over sentences, seqeval's micro F1."""
    from seqeval.metrics.sequence_labeling import get_entities

    num, den = [], []
    for p, g in zip(table["pred"], table["gold"], strict=True):
        pe, ge = set(get_entities(list(p))), set(get_entities(list(g)))
        num.append(2 * len(pe & ge))
        den.append(len(pe) + len(ge))
    return np.asarray(num, float), np.asarray(den, float)


def _seqeval_f1(table: Table) -> float:
    from seqeval.metrics import f1_score  # here: seqeval loads scikit-learn, which `status` does not need

    return float(f1_score([list(g) for g in table["gold"]], [list(p) for p in table["pred"]]))


def _best_answer(fn: Callable[[str, str], float]) -> Callable[[Table], Examples]:
    """Per question, ``fn`` of the prediction against its best gold answer (SQuAD)."""
    def examples(table: Table) -> Examples:
        pred, golds = table["pred"], table["gold"]
        if len(pred) != len(golds):
            raise ValueError(f"{len(pred)} predictions for {len(golds)} questions")
        return _ones([max(fn(p, g) for g in gs) for p, gs in zip(pred, golds)])
    return examples


def _hits(direction: str) -> Callable[[Table], Examples]:
    return lambda table: _ones(table[f"hit_{direction}"])


def _both_directions(table: Table) -> Examples:
    return _ones((np.asarray(table["hit_src_to_tgt"], float) + np.asarray(table["hit_tgt_to_src"], float)) / 2)


def _mean_of_directions(table: Table) -> float:
    mean = lambda x: float(np.mean(x)) if len(x) else float("nan")  # noqa: E731
    return (mean(table["hit_src_to_tgt"]) + mean(table["hit_tgt_to_src"])) / 2


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


# ------------------------------------------------------------------------------------ the metrics
ACCURACY = Metric("accuracy", _accuracy)                        # XNLI: one label per example
TOKEN_ACCURACY = Metric("accuracy", _token_accuracy)            # POS: share of correct tags
ENTITY_F1 = Metric("f1", _entity_f1, _seqeval_f1)               # NER: entity-level F1 (CoNLL, seqeval)
SQUAD_F1 = Metric("f1", _best_answer(squad_f1))                 # QA
EXACT_MATCH = Metric("em", _best_answer(exact_match))           # QA
RETRIEVAL_ACCURACY = Metric("accuracy", _both_directions, _mean_of_directions)  # Tatoeba, both directions
RETRIEVAL_FORWARD = Metric("accuracy_src_to_tgt", _hits("src_to_tgt"))
RETRIEVAL_BACKWARD = Metric("accuracy_tgt_to_src", _hits("tgt_to_src"))


def _pairs(pred: Sequence, gold: Sequence) -> Table:
    return {"pred": pred, "gold": gold}


def accuracy(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Share of exact matches (XNLI)."""
    return ACCURACY.score(_pairs(pred, gold))


def token_accuracy(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    """Share of correctly tagged tokens over all sentences (POS)."""
    return TOKEN_ACCURACY.score(_pairs(pred, gold))


def entity_f1(pred: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    """Entity-level F1 over BIO sequences (seqeval, CoNLL evaluation; NER)."""
    return ENTITY_F1.score(_pairs(pred, gold))


def qa_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and F1 over questions; each prediction scores its best gold answer."""
    table = _pairs(predictions, golds)
    return {"em": EXACT_MATCH.score(table), "f1": SQUAD_F1.score(table)}


def delta_sup(bz: float, bs: float) -> float:
    """Delta_Sup = BZ - BS: 0 means zero-shot transfer as good as supervised training."""
    return bz - bs


def delta_mono(mz: float, bz: float) -> float:
    """Delta_Mono = MZ - BZ: strongly negative means bilingual pretraining helps a lot."""
    return mz - bz
