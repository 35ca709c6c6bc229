"""Encoding: how examples of each task (``tasks.TASKS``) are turned into model inputs in a (derived)
language, and the predictions back into a table the task's metrics score.

Transformations act on each sentence exactly as on pretraining text; labels ride along with their
words' first sub-word and BIO tags are repaired after reordering.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from tokenizers import Tokenizer

from . import qa
from .data import NLIPair, TaggedSentence, load_task
from .tasks import TaskSpec, get_task
from .tokenizer import encode_words_batch, split_words
from .transformations import DerivedLanguage, Segment, bio_to_entities, entities_to_bio
from .trees import TreeFn

IGNORE = -100  # label of positions that are not scored (continuation sub-words, specials, padding)


@dataclass(frozen=True)
class Encoded:
    """One model input: token ids and either one label (sequence tasks) or one per token."""

    input_ids: tuple[int, ...]
    label: int | tuple[int, ...]


def _truncate(ids: list[int], labels: list[int] | None, max_len: int, lang: DerivedLanguage):
    body = max_len - 2
    ids = [lang.bos] + ids[:body] + [lang.eos]
    if labels is None:
        return ids, None
    return ids, [IGNORE] + labels[:body] + [IGNORE]


def _trees(lang: DerivedLanguage, trees: TreeFn | None, words: Sequence[Sequence[str]]) -> list:
    """Dependency trees when ``lang`` reorders by syntax (else None per sentence)."""
    if not lang.needs_trees:
        return [None] * len(words)
    if trees is None:
        raise ValueError(f"{lang.spec!r} reorders by syntax: pass a tree parser (xlt_helpers.trees.tree_parser)")
    return trees(words)


def encode_tagged(sentences: Sequence[TaggedSentence], task: TaskSpec, tok: Tokenizer, lang: DerivedLanguage,
                  max_len: int, trees: TreeFn | None = None) -> list[Encoded]:
    """Token-level task: label on each word's first sub-word, transformed together with the tokens."""
    index = {t: i for i, t in enumerate(task.labels)}
    out = []
    words = [s.words for s in sentences]
    for sent, (ids, wids), tree in zip(sentences, encode_words_batch(tok, words), _trees(lang, trees, words)):
        tags: list = list(sent.tags)
        if task.bio:
            tags = bio_to_entities(tags)
        first = [tags[w] if k == 0 or wids[k - 1] != w else None for k, w in enumerate(wids)]
        seg = lang(Segment(tuple(ids), tuple(wids), tuple(first), tree))
        labels = list(seg.labels)
        if task.bio:
            labels = entities_to_bio(labels)
        lab = [IGNORE if t is None else index[t] for t in labels]
        x, y = _truncate(list(seg.tokens), lab, max_len, lang)
        out.append(Encoded(tuple(x), tuple(y)))
    return out


def transform_texts(texts: Sequence[str], tok: Tokenizer, lang: DerivedLanguage,
                    trees: TreeFn | None = None) -> list[list[int]]:
    """Sentences of running text -> words -> sub-words, transformed exactly like pretraining text."""
    words = [split_words(t) for t in texts]
    return [list(lang(Segment(tuple(i), tuple(w), None, tree)).tokens)
            for (i, w), tree in zip(encode_words_batch(tok, words), _trees(lang, trees, words))]


def encode_nli(pairs: Sequence[NLIPair], tok: Tokenizer, lang: DerivedLanguage, max_len: int,
               trees: TreeFn | None = None) -> list[Encoded]:
    """Sentence-pair task: premise and hypothesis are transformed separately, then joined RoBERTa-style."""
    prem = transform_texts([p.premise for p in pairs], tok, lang, trees)
    hyp = transform_texts([p.hypothesis for p in pairs], tok, lang, trees)
    out = []
    half = (max_len - 4) // 2
    for p, a, b in zip(pairs, prem, hyp):
        a = a[:half]
        b = b[: max_len - 4 - len(a)]
        ids = [lang.bos, *a, lang.eos, lang.eos, *b, lang.eos]
        out.append(Encoded(tuple(ids), p.label))
    return out


def encode(task: TaskSpec, examples: Sequence, tok: Tokenizer, lang: DerivedLanguage, max_len: int,
           trees: TreeFn | None = None, *, train: bool = False, seed: int = 0) -> list:
    """Model inputs of ``examples`` in ``lang`` (``train``/``seed`` matter only for QA's windows)."""
    if task.kind == "sequence":
        return encode_nli(examples, tok, lang, max_len, trees)
    if task.kind == "span":
        return qa.encode_qa(examples, tok, lang, max_len, train=train, seed=seed)
    if task.kind == "token":
        return encode_tagged(examples, task, tok, lang, max_len, trees)
    raise ValueError(f"task {task.name!r} is not fine-tuned: it has no model inputs of its own (see retrieval.py)")


def load_encoded(task_name: str, language: str, split: str, tok: Tokenizer, lang: DerivedLanguage,
                 max_len: int, max_examples: int | None, trees: TreeFn | None = None, *, seed: int = 0) -> list:
    """Load a task split from the data directory and encode it in ``lang`` (``trees``: parser for Syntax)."""
    task = get_task(task_name)
    if task.kind == "span":
        qa.check_supported(lang)  # before reading any data
    return encode(task, load_task(task_name, language, split, max_examples=max_examples), tok, lang, max_len, trees,
                  train=split == "train", seed=seed)


def decode_gold(task: TaskSpec, data: Sequence[Encoded]) -> list:
    """Gold labels in the metric's space: class ids, or tag strings of the scored positions."""
    if task.kind == "sequence":
        return [e.label for e in data]
    return [[task.labels[y] for y in e.label if y != IGNORE] for e in data]


def predictions_table(task: TaskSpec, pred: Sequence, data: Sequence) -> dict[str, list]:
    """Per-example gold and prediction in the metric's space, with each example's position in its test
    split (``id``): what ``predictions.json.gz`` keeps, so intervals and error analysis need no re-run.

    Sequence tasks: class ids; token tasks: the tags of the scored positions; QA (``pred``: per-window
    logits): the predicted answer text and the gold answers of each question.
    """
    if task.kind == "span":
        answers, contexts = qa.predict_answers(data, pred)
        return {"id": list(range(len(answers))), "gold": [[t for t, _ in c.example.answers] for c in contexts],
                "pred": answers}
    return {"id": list(range(len(data))), "gold": decode_gold(task, data), "pred": list(pred)}
