"""Extractive QA in a (derived) language: windowed encoding with exact answer spans, span decoding, scoring.

Input layout (RoBERTa pairs, as for XNLI): ``<s> question </s></s> context-window </s>``.

* Text is segmented into words by ``tokenizer.split_words`` (as pretraining text), then sub-words.
  The question is one sentence; the context is split into sentences after ``. ! ? ؟ ।`` followed by
  whitespace (``SENTENCE_END``). Each sentence is transformed on its own, exactly like a line of the
  pretraining corpus, so an inverted context keeps its sentence order and reverses each sentence.
  For training examples, sentences that a gold answer straddles are merged first so the answer stays
  contiguous; test contexts are split without looking at the answers.
* Every context token remembers its original index (``QAFeature.source``), so a span predicted in
  the derived language maps back to the original text: the prediction is the original context from
  the first to the last character of the tokens it covers, and EM/F1 compare it with the gold text.
* Supported transformations: Transliteration (an id map: spans do not move) and Inversion (``inv``,
  ``inv_word``: a span inside a sentence stays contiguous). Permutation is refused: a shuffled
  sentence has no contiguous answer span (Deshpande et al. 2022 leave QA out for it as well).
* Long contexts: sliding windows (doc stride). A window holds ``max_len - 4 - len(question)`` context
  tokens; consecutive windows overlap by a third of that. The question is cut to ``max_len // 4``
  tokens. Training keeps every window containing the whole answer plus at most one window without it
  (labelled with the ``<s>`` position, as in the SQuAD recipe); evaluation scores every window and keeps
  the best span (start logit + end logit, at most ``MAX_ANSWER_TOKENS`` long) over all windows.
"""
from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from .data import QAExample
from .tokenizer import encode_words_batch, split_words
from .transformations import DerivedLanguage, Segment, parse_spec

MAX_ANSWER_TOKENS = 30
SENTENCE_END = re.compile(r"(?<=[.!?\u061f\u0964])\s+")
SUPPORTED_REORDERINGS = ("inv", "inv_word")
PERMUTATION_MESSAGE = ("Permutation is not supported for QA: a shuffled context has no contiguous answer span "
                       "(as in Deshpande et al. 2022)")


def unsupported_reason(spec: str | None) -> str | None:
    """Why QA cannot be run in the derived language ``spec`` (None: it can)."""
    if spec in (None, "orig", "mono"):
        return None
    for name in parse_spec(spec):
        if name.startswith("translit") or name in SUPPORTED_REORDERINGS:
            continue
        if name.startswith("perm"):
            return PERMUTATION_MESSAGE + f" ({spec!r})"
        return (f"transformation {name!r} is not supported for QA (answer spans are kept exact only under "
                f"{', '.join(SUPPORTED_REORDERINGS)} and translit*)")
    return None


def check_supported(lang: DerivedLanguage) -> None:
    """Raise ``ValueError`` if QA answer spans cannot be kept exact in ``lang``."""
    reason = unsupported_reason(lang.spec)
    if reason:
        raise ValueError(reason)


@dataclass(frozen=True, eq=False)
class QAContext:
    """A question's context as the model sees it: the example and each original token's character span."""

    example: QAExample
    spans: tuple[tuple[int, int], ...]

    def text(self, first: int, last: int) -> str:
        """The original context from original token ``first`` to ``last`` (inclusive)."""
        return self.example.context[self.spans[first][0]:self.spans[last][1]]


@dataclass(frozen=True, eq=False)
class QAFeature:
    """One window: ``label`` = (start, end) input positions of the answer, (0, 0) if not inside."""

    input_ids: tuple[int, ...]
    label: tuple[int, int]
    context: QAContext
    offset: int                   # input position of the window's first context token
    source: tuple[int, ...]       # original context-token index of each context token in the window


def sentence_starts(text: str, keep_together: Sequence[tuple[int, int]] = ()) -> list[int]:
    """Character offsets where sentences start; no boundary falls strictly inside a ``keep_together`` span."""
    starts = [0] + [m.end() for m in SENTENCE_END.finditer(text)]
    return [s for s in starts if not any(a < s < b for a, b in keep_together)]


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the words of ``tokenizer.split_words(text)`` (the project's one segmentation)."""
    spans: list[tuple[int, int]] = []
    for m in re.finditer(r"\S+", text):
        a, b = m.start(), m.end()
        i, j = a, b
        while i < j and _is_punct(text[i]):
            i += 1
        while j > i and _is_punct(text[j - 1]):
            j -= 1
        spans += [(k, k + 1) for k in range(a, i)]
        if i < j:
            spans.append((i, j))
        spans += [(k, k + 1) for k in range(j, b)]
    return spans


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def transform_context(tokens: Sequence[int], words: Sequence[int], spans: Sequence[tuple[int, int]],
                      starts: Sequence[int], lang: DerivedLanguage) -> tuple[list[int], list[int]]:
    """Transform a context sentence by sentence; returns the derived tokens and each one's original index."""
    out_tokens: list[int] = []
    out_source: list[int] = []
    k = 0
    while k < len(tokens):
        sent = bisect.bisect_right(starts, spans[k][0]) - 1
        j = k
        while j < len(tokens) and bisect.bisect_right(starts, spans[j][0]) - 1 == sent:
            j += 1
        seg = lang(Segment(tuple(tokens[k:j]), tuple(words[k:j]), tuple(range(k, j))))
        out_tokens += seg.tokens
        out_source += seg.labels
        k = j
    return out_tokens, out_source


def answer_tokens(spans: Sequence[tuple[int, int]], start: int, text: str) -> list[int]:
    """Original token indices that overlap the answer's characters."""
    end = start + len(text)
    return [i for i, (a, b) in enumerate(spans) if a < end and b > start and b > a]


def windows(n: int, width: int) -> list[int]:
    """Start positions of windows of ``width`` over ``n`` tokens, overlapping by ``width // 3``."""
    step = max(1, width - width // 3)
    starts = [0]
    while starts[-1] + width < n:
        starts.append(starts[-1] + step)
    return starts


def encode_qa(examples: Sequence[QAExample], tok: Tokenizer, lang: DerivedLanguage, max_len: int,
              train: bool = False, seed: int = 0) -> list[QAFeature]:
    """Windows of every example in ``lang`` (see the module docstring for the layout and the choices)."""
    check_supported(lang)
    max_q = max(1, max_len // 4)
    questions = encode_words_batch(tok, [split_words(e.question) for e in examples])
    ctx_words = [word_spans(e.context) for e in examples]
    contexts = tok.encode_batch([[e.context[a:b] for a, b in ws] for e, ws in zip(examples, ctx_words)],
                                is_pretokenized=True, add_special_tokens=False)
    rng = np.random.default_rng(seed)
    out: list[QAFeature] = []
    for ex, (q_ids, q_words), c_enc, ws in zip(examples, questions, contexts, ctx_words):
        q = list(lang(Segment(tuple(q_ids), tuple(q_words))).tokens)[:max_q]
        c_words = list(c_enc.word_ids)
        spans = tuple((ws[w][0] + a, ws[w][0] + b) for w, (a, b) in zip(c_words, c_enc.offsets))
        info = QAContext(ex, spans)
        gold_text, gold_start = ex.answers[0]
        keep = [(gold_start, gold_start + len(gold_text))] if train else []
        starts = sentence_starts(ex.context, keep)
        ctx, source = transform_context(c_enc.ids, c_words, spans, starts, lang)
        position = {orig: k for k, orig in enumerate(source)}
        gold = [position[i] for i in answer_tokens(spans, gold_start, gold_text)]
        ts, te = (min(gold), max(gold)) if gold else (-1, -1)
        width = max(1, max_len - 4 - len(q))
        offset = len(q) + 3
        feats = []
        for w0 in windows(len(ctx), width):
            ids = (lang.bos, *q, lang.eos, lang.eos, *ctx[w0:w0 + width], lang.eos)
            inside = bool(gold) and w0 <= ts and te < w0 + width
            label = (offset + ts - w0, offset + te - w0) if inside else (0, 0)
            feats.append(QAFeature(ids, label, info, offset, tuple(source[w0:w0 + width])))
        if train:
            neg = [f for f in feats if f.label == (0, 0)]
            out += [f for f in feats if f.label != (0, 0)] + ([neg[int(rng.integers(len(neg)))]] if neg else [])
        else:
            out += feats
    return out


def best_span(feature: QAFeature, start_logits: np.ndarray, end_logits: np.ndarray) -> tuple[float, int, int]:
    """(score, first, last) of the best context span of one window, as original token indices."""
    n = len(feature.source)
    s = np.asarray(start_logits[feature.offset:feature.offset + n], dtype=np.float64)
    e = np.asarray(end_logits[feature.offset:feature.offset + n], dtype=np.float64)
    score = s[:, None] + e[None, :]
    i, j = np.indices(score.shape)
    score[(j < i) | (j - i >= MAX_ANSWER_TOKENS)] = -np.inf
    a, b = np.unravel_index(int(np.argmax(score)), score.shape)
    covered = feature.source[a:b + 1]
    return float(score[a, b]), min(covered), max(covered)


def predict_answers(features: Sequence[QAFeature], logits: Sequence[tuple[np.ndarray, np.ndarray]]
                    ) -> tuple[list[str], list[QAContext]]:
    """The best answer text of every question (over all its windows), and the questions in order."""
    best: dict[int, tuple[float, str]] = {}
    order: list[QAContext] = []
    for f, (s, e) in zip(features, logits, strict=True):
        if not f.source:
            continue
        score, first, last = best_span(f, s, e)
        key = id(f.context)
        if key not in best:
            order.append(f.context)
        if key not in best or score > best[key][0]:
            best[key] = (score, f.context.text(first, last))
    return [best[id(c)][1] for c in order], order

