"""Alignment beyond the input embeddings (docs/alignment.md): contextual word alignment and linear CKA at
every layer on held-out parallel sentences, and the static P@1 of the input embeddings over pretraining.

A derived language is parallel to its original by construction: each held-out sentence ``s`` is encoded
as it is and as ``T(s)``. Every sub-word carries the index of the word it belongs to, and a reordering
moves that index with its token (``Segment.word_ids``), so word ``w`` of ``s`` is found in ``T(s)`` under
Inversion, Permutation and Syntax alike. At layer ``k`` (0: the embedding output, 1..L: the transformer
layers) a word's vector is the mean of its sub-words' hidden states; a sentence's is the mean over its
sub-words (``<s>`` and ``</s>`` left out). Metrics (one result row each):

* ``contextual_at_1_layer{k}``: the share of original words whose cosine-nearest vector among ALL the
  derived words of the sentence set is their own counterpart (chance: 1 / number of words);
* ``cka_layer{k}``: linear CKA between the original and the derived word vectors (matched rows);
* ``cka_sentence_layer{k}``: linear CKA between the mean-pooled original and derived sentence vectors;
* ``alignment_at_1_step{n}``: the paper's P@1 of the input embeddings at pretraining step ``n``
  (``snapshots``; 0: the initial weights).

Torch is imported inside the functions that need it: the report reads ``interval_count`` without it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .transformations import BOS, EOS, PAD, DerivedLanguage, Segment

CONTEXTUAL = "contextual_at_1_layer{}"
CKA_WORDS = "cka_layer{}"
CKA_SENTENCES = "cka_sentence_layer{}"
STEP = "alignment_at_1_step{}"
# proportions get an interval over the items they count (analysis.run_samples); CKA is not a proportion
COUNTS = {CONTEXTUAL: "n_words", STEP: "n_pairs"}


def interval_count(metric: str) -> str | None:
    """The report key that holds the number of items a proportion metric of this module is measured on
    (``n_words``, ``n_pairs``); None for CKA and for metrics of other modules."""
    for pattern, key in COUNTS.items():
        prefix = pattern[:-2]
        if metric.startswith(prefix) and metric[len(prefix):].isdigit():
            return key
    return None


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) of two representations of the same ``n`` items (rows):
    ``||Yc' Xc||_F^2 / (||Xc' Xc||_F ||Yc' Yc||_F)`` with column-centred ``Xc``, ``Yc``. 1 for identical
    representations, unchanged by an orthogonal map or an isotropic scaling of either side; NaN with
    fewer than 2 items or a constant side."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"linear CKA needs two (n, d) arrays over the same n items, got {x.shape} and {y.shape}")
    if len(x) < 2:
        return float("nan")
    x, y = x - x.mean(0), y - y.mean(0)
    denominator = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(np.linalg.norm(y.T @ x) ** 2 / denominator) if denominator > 0 else float("nan")


@dataclass(frozen=True)
class ParallelSentence:
    """One sentence and its derived form as model inputs, and where each of its words is in both.

    ``orig``, ``derived``: ``<s> sub-words </s>``; ``orig_spans[j]``, ``derived_spans[j]``: the positions
    of the j-th kept word in each (a word is kept when all its sub-words fit in both inputs)."""

    orig: tuple[int, ...]
    derived: tuple[int, ...]
    orig_spans: tuple[tuple[int, ...], ...]
    derived_spans: tuple[tuple[int, ...], ...]


def _positions(word_ids: Sequence[int]) -> dict[int, list[int]]:
    """Each word's positions in an input whose sub-words start after ``<s>`` (position 1)."""
    out: dict[int, list[int]] = {}
    for pos, w in enumerate(word_ids, start=1):
        out.setdefault(w, []).append(pos)
    return out


def parallel_sentence(ids: Sequence[int], word_ids: Sequence[int], derived: DerivedLanguage, max_len: int,
                      tree: object | None = None) -> ParallelSentence | None:
    """A sentence's sub-words ``ids`` (each of word ``word_ids[i]``) beside their form in ``derived``, cut to
    ``max_len`` inputs; None when no word fits whole in both."""
    seg = derived(Segment(tuple(ids), tuple(word_ids), None, tree))
    body = max_len - 2
    whole = Counter(word_ids)
    o, d = _positions(list(word_ids)[:body]), _positions(list(seg.word_ids)[:body])
    kept = [w for w in dict.fromkeys(word_ids) if len(o.get(w, ())) == whole[w] == len(d.get(w, ()))]
    if not kept:
        return None
    return ParallelSentence((BOS, *ids[:body], EOS), (derived.bos, *seg.tokens[:body], derived.eos),
                            tuple(tuple(o[w]) for w in kept), tuple(tuple(d[w]) for w in kept))


def parallel_sentences(tok, derived: DerivedLanguage, sentences: Sequence[str], max_len: int,
                       trees: Callable | None = None) -> list[ParallelSentence]:
    """``parallel_sentence`` of every sentence with a kept word: words (``split_words``), sub-words, then
    ``derived`` (``trees``: a parser, needed when ``derived`` reorders by Syntax)."""
    from .tokenizer import encode_words_batch, split_words

    words = [split_words(s) for s in sentences]
    if derived.needs_trees and trees is None:
        raise ValueError(f"{derived.spec!r} reorders by syntax: pass a tree parser (xlt_helpers.trees.tree_parser)")
    parsed = trees(words) if derived.needs_trees else [None] * len(words)
    out = []
    for (ids, wids), tree in zip(encode_words_batch(tok, words), parsed):
        if ids:
            pair = parallel_sentence(ids, wids, derived, max_len, tree)
            if pair is not None:
                out.append(pair)
    return out


def span_means(model, inputs: Sequence[Sequence[int]], spans: Sequence[Sequence[Sequence[int]]],
               batch_size: int = 64, precision: str = "fp32"):
    """``(layers + 1, total spans, hidden)``: for every input (in order) and each of its spans (a list of
    positions), the mean of the encoder's hidden states over the span, at every layer (0: embeddings).
    ``model``: a RoBERTa encoder in eval mode (no dropout)."""
    import torch

    from .model import autocast

    device = next(model.parameters()).device
    n_layers, hidden = model.config.num_hidden_layers + 1, model.config.hidden_size
    first = np.concatenate([[0], np.cumsum([len(s) for s in spans])])
    out = torch.zeros(n_layers, int(first[-1]), hidden)
    order = np.argsort([len(x) for x in inputs], kind="stable")  # similar lengths together: little padding
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = max(len(inputs[i]) for i in idx)
            ids = torch.full((len(idx), width), PAD, dtype=torch.long)
            att = torch.zeros((len(idx), width), dtype=torch.long)
            rows = [first[i] + j for i in idx for j in range(len(spans[i]))]
            pool = torch.zeros(len(rows), len(idx) * width)  # each span's row averages its positions
            r = 0
            for k, i in enumerate(idx):
                ids[k, :len(inputs[i])] = torch.tensor(inputs[i])
                att[k, :len(inputs[i])] = 1
                for span in spans[i]:
                    pool[r, [k * width + p for p in span]] = 1.0 / len(span)
                    r += 1
            with autocast(device, precision):
                states = model(input_ids=ids.to(device), attention_mask=att.to(device),
                               output_hidden_states=True).hidden_states
            flat = torch.stack(states).float().cpu().reshape(n_layers, len(idx) * width, hidden)
            out[:, torch.as_tensor(rows)] = torch.matmul(pool, flat)
    return out


def contextual_report(model, pairs: Sequence[ParallelSentence], batch_size: int = 64,
                      precision: str = "fp32") -> dict[str, float]:
    """Contextual P@1, word-level and sentence-level linear CKA at every layer of ``model`` (a RoBERTa
    encoder) on ``pairs``, with the counts they are measured on."""
    import torch

    from .alignment import alignment_at_1

    if not pairs:
        raise ValueError("contextual alignment needs at least one sentence with a word in both languages")
    reps = {}
    for side in ("orig", "derived"):
        inputs = [getattr(p, side) for p in pairs]
        spans = [[*getattr(p, f"{side}_spans"), tuple(range(1, len(x) - 1))] for p, x in zip(pairs, inputs)]
        means = span_means(model, inputs, spans, batch_size, precision)
        is_sentence = np.zeros(means.shape[1], dtype=bool)
        is_sentence[np.cumsum([len(s) for s in spans]) - 1] = True  # the last span of each input: its body
        reps[side] = (means[:, torch.from_numpy(~is_sentence)], means[:, torch.from_numpy(is_sentence)])
    (ow, osent), (dw, dsent) = reps["orig"], reps["derived"]
    n_words = ow.shape[1]
    report: dict[str, float] = {"n_words": n_words, "n_sentences": len(pairs), "contextual_chance": 1.0 / n_words}
    own = torch.arange(n_words)
    for k in range(ow.shape[0]):
        report[CONTEXTUAL.format(k)] = alignment_at_1(ow[k], dw[k], own)
        report[CKA_WORDS.format(k)] = linear_cka(ow[k].numpy(), dw[k].numpy())
        report[CKA_SENTENCES.format(k)] = linear_cka(osent[k].numpy(), dsent[k].numpy())
    return report


def history_report(model_dir: str | Path, table: np.ndarray, n_special: int) -> dict[int, float]:
    """``{step: P@1 of the input embeddings}`` at every snapshot of a pretrained model (``snapshots``;
    empty when it was pretrained without ``pretrain.embedding_snapshots``)."""
    import torch

    from .alignment import alignment_at_1, twin_candidates
    from .snapshots import history

    moved, candidates, twin = twin_candidates(table, n_special)
    return {step: alignment_at_1(torch.from_numpy(E[moved]), torch.from_numpy(E[candidates]), twin)
            for step, E in history(model_dir)}
