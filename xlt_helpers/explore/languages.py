"""A language and its derived form, seen sentence by sentence (notebooks/explore_languages.ipynb).

Everything goes through the code the study runs: the tokenizer a pretraining of the chosen scale trains
(``corpus.pretraining_tokenizer``), ``DerivedLanguage`` as pretraining builds it (seed, specials), the task
encoders (``encoding.encode_tagged``, ``encode_nli``: the labels shown are the labels a model is trained
on), ``corpus.derive`` and ``corpus.subword_overlap`` for the corpora, and ``syntax.stats`` for word order.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import pandas as pd
from tokenizers import Tokenizer

from ..corpus import derive, pretraining_tokenizer, subword_overlap
from ..data import NLIPair, TaggedSentence, has_task, load_pretraining_corpus, load_task
from ..encoding import IGNORE, encode_nli, encode_tagged
from ..hf_tokenizer import TWIN_MARK
from ..run_config import RunConfig, resolve
from ..tasks import NLI_LABELS, get_task
from ..tokenizer import encode_words, encode_words_batch, split_words, vocab_size_of
from ..transformations import N_SPECIAL, SPECIAL_TOKENS, DerivedLanguage, Segment, canonical_spec, parse_spec
from ..trees import TreeFn, task_trees, tree_parser

# Offered in the notebook's dropdown; its text box takes any other composition (transformations.parse_spec).
TRANSFORMATIONS = ("translit+inv", "inv", "perm", "translit", "translit0.5", "inv_word", "perm_word",
                   "translit+perm", "syntax:fr", "syntax:hi", "translit+syntax:hi", "syntax:fr@N~hi@V")
TASK_CHOICES = ("pos", "ner", "xnli")  # the tasks whose labels ride on words (pos, ner) or on a pair (xnli)
WORD_START = "▁"  # a sub-word that starts a word (byte-level BPE's leading space), as SentencePiece shows it


@dataclass(frozen=True)
class Setup:
    """A language at a scale: its resolved configuration and the tokenizer its models are pretrained with."""

    language: str
    cfg: RunConfig
    tok: Tokenizer

    @property
    def vocab_size(self) -> int:
        return vocab_size_of(self.tok)

    def derived(self, spec: str) -> DerivedLanguage:
        """The derived language ``spec`` over this tokenizer, with the pretraining's seed and specials."""
        return DerivedLanguage(canonical_spec(spec), self.vocab_size, seed=self.cfg.pretrain.seed,
                               shift_special=self.cfg.data.shift_special)

    def original(self) -> DerivedLanguage:
        return DerivedLanguage("orig", self.vocab_size)


@lru_cache(maxsize=8)
def setup(language: str, preset: str = "demo", seed: int = 0) -> Setup:
    """The language at ``preset``'s scale: the (cached) tokenizer a pretraining of that scale trains, so the
    sub-words and ids shown are the ones such a model reads."""
    cfg = resolve(preset, {"data.language": language, "pretrain.seed": seed})
    tok, _ = pretraining_tokenizer([language], cfg)
    return Setup(language, cfg, tok)


def trees_for(s: Setup, derived: DerivedLanguage, task: str | None = None) -> TreeFn | None:
    """The tree function Syntax needs (None for other transformations): a task's gold trees where its data
    has them, else the scale's parser (``trees.task_trees``, ``tree_parser``), as the steps use them."""
    if not derived.needs_trees:
        return None
    return task_trees(task, s.language, s.cfg.data) if task else tree_parser(s.language, s.cfg.data)


def piece(tok: Tokenizer, token_id: int) -> str:
    """One sub-word as text: decoded alone, ``▁`` for the space that starts a word, ``ᵀ`` before a twin
    (an id ``i >= V`` of a transliterated language is the twin of ``i - V``); a piece of a character (bytes
    that decode to nothing alone) as the byte-level BPE writes it."""
    V = vocab_size_of(tok)
    base, twin = int(token_id) % V, int(token_id) >= V
    text = SPECIAL_TOKENS[base] if base < N_SPECIAL else tok.decode([base])
    if "\ufffd" in text:
        raw = tok.id_to_token(base)
        text = " " + raw[1:] if raw.startswith("Ġ") else raw  # byte-level BPE writes the leading space as Ġ
    text = WORD_START + text[1:] if text.startswith(" ") else text
    return (TWIN_MARK if twin else "") + text


# ------------------------------------------------------------------------------------ one sentence

@dataclass(frozen=True)
class SentencePair:
    """One sentence and its derived form, position by position: each sub-word's id, the index of the word
    it belongs to, and the task label it carries (``""`` where none: a label sits on a word's first
    sub-word of the original sentence and moves with that sub-word)."""

    words: tuple[str, ...]
    orig_ids: tuple[int, ...]
    orig_words: tuple[int, ...]
    orig_labels: tuple[str, ...]
    derived_ids: tuple[int, ...]
    derived_words: tuple[int, ...]
    derived_labels: tuple[str, ...]


def derive_sentence(s: Setup, derived: DerivedLanguage, words: Sequence[str], tags: Sequence[str] | None = None,
                    task: str = "pos", trees: TreeFn | None = None) -> SentencePair:
    """``words`` (one pre-split sentence) in the original and the derived language. With ``tags`` (a
    ``task`` of token labels), the labels are those ``encoding.encode_tagged`` gives a model, BIO tags
    repaired after reordering as in training. ``trees``: the tree function Syntax needs (default: ``trees_for``
    the task)."""
    words = tuple(words)
    ids, wids = encode_words(s.tok, words)
    trees = trees or trees_for(s, derived, task if tags is not None else None)
    tree = trees([list(words)])[0] if derived.needs_trees else None
    seg = derived(Segment(tuple(ids), tuple(wids), None, tree))
    if tags is None:
        blank = ("",) * len(ids)
        return SentencePair(words, tuple(ids), tuple(wids), blank, seg.tokens, seg.word_ids, blank)
    spec = get_task(task)
    sentence = [TaggedSentence(words, tuple(tags))]
    max_len = len(ids) + 2  # nothing cut
    orig = encode_tagged(sentence, spec, s.tok, s.original(), max_len)[0]
    one_tree = (lambda sentences: [tree]) if derived.needs_trees else None
    der = encode_tagged(sentence, spec, s.tok, derived, max_len, one_tree)[0]

    def names(labels: Sequence[int]) -> tuple[str, ...]:
        return tuple("" if y == IGNORE else spec.labels[y] for y in labels[1:-1])

    return SentencePair(words, orig.input_ids[1:-1], tuple(wids), names(orig.label), der.input_ids[1:-1],
                        seg.word_ids, names(der.label))


def _word_label(labels: Sequence[str], word_ids: Sequence[int], w: int) -> str:
    """The label the sub-words of word ``w`` carry (one of them does; ``""`` without labels)."""
    return next((lab for lab, k in zip(labels, word_ids) if k == w and lab), "")


def word_table(s: Setup, pair: SentencePair) -> pd.DataFrame:
    """One row per word, in the original order: its sub-words and label in the original sentence, and where
    it went in the derived one (its position among the derived words, its sub-words there, the label that
    arrived with it)."""
    derived_order = {w: k for k, w in enumerate(dict.fromkeys(pair.derived_words))}
    rows = []
    for w, word in enumerate(pair.words):
        orig = [piece(s.tok, i) for i, k in zip(pair.orig_ids, pair.orig_words) if k == w]
        der = [piece(s.tok, i) for i, k in zip(pair.derived_ids, pair.derived_words) if k == w]
        rows.append({"word": word, "original sub-words": " ".join(orig),
                     "original label": _word_label(pair.orig_labels, pair.orig_words, w),
                     "derived position": derived_order.get(w), "derived sub-words": " ".join(der),
                     "derived label": _word_label(pair.derived_labels, pair.derived_words, w)})
    return pd.DataFrame(rows).rename_axis("original position")


def subword_table(s: Setup, pair: SentencePair) -> pd.DataFrame:
    """One row per position: the original sentence's sub-word there (its word, text, id, label) beside the
    derived sentence's (what a model reads at that position in each language)."""
    def side(ids: Sequence[int], wids: Sequence[int], labels: Sequence[str]) -> pd.DataFrame:
        return pd.DataFrame({"word": [pair.words[w] for w in wids], "sub-word": [piece(s.tok, i) for i in ids],
                             "id": list(ids), "label": list(labels)})

    table = pd.concat({"original": side(pair.orig_ids, pair.orig_words, pair.orig_labels),
                       "derived": side(pair.derived_ids, pair.derived_words, pair.derived_labels)}, axis=1)
    return table.rename_axis("position")


def sentence_lines(s: Setup, pair: SentencePair) -> pd.DataFrame:
    """The two sentences in one line each: as words (the derived words in the order their first sub-word
    appears) and as sub-words."""
    order = list(dict.fromkeys(pair.derived_words))
    return pd.DataFrame({"words": [" ".join(pair.words), " ".join(pair.words[w] for w in order)],
                         "sub-words": [" ".join(piece(s.tok, i) for i in pair.orig_ids),
                                       " ".join(piece(s.tok, i) for i in pair.derived_ids)]},
                        index=["original", "derived"])


# ------------------------------------------------------------------------------------ task examples

def task_examples(language: str, task: str, n: int) -> list:
    """The first ``n`` test examples of ``task`` in ``language`` (``ValueError`` when it has none)."""
    if not has_task(task, language, ("test",)):
        raise ValueError(f"{language} has no {task} test data (xlt_helpers/languages.yaml)")
    return load_task(task, language, "test", max_examples=n)


def nli_inputs(s: Setup, derived: DerivedLanguage, pair: NLIPair, trees: TreeFn | None = None) -> pd.DataFrame:
    """An XNLI pair as a model reads it in each language (``encoding.encode_nli``: premise and hypothesis
    transformed separately, ``<s> a </s></s> b </s>``), with its label, which no transformation changes."""
    body = sum(len(encode_words(s.tok, split_words(t))[0]) for t in (pair.premise, pair.hypothesis))
    rows = {}
    for name, lang in (("original", s.original()), ("derived", derived)):
        enc = encode_nli([pair], s.tok, lang, 4 + 2 * body, trees)[0]  # 4 + 2 * body: nothing cut
        rows[name] = {"model input": " ".join(piece(s.tok, i) for i in enc.input_ids),
                      "label": NLI_LABELS[enc.label]}
    return pd.DataFrame(rows).T


# ------------------------------------------------------------------------------------ corpora

def overlap_table(original: Sequence[Sequence[int]], derived: Sequence[Sequence[int]]) -> pd.DataFrame:
    """Sub-word types of two tokenized corpora, those they share, and their overlap (``corpus.subword_overlap``,
    the number pretraining records: 1 when the derived language reuses every type, 0 with full
    Transliteration)."""
    a, b = set(itertools.chain.from_iterable(original)), set(itertools.chain.from_iterable(derived))
    return pd.DataFrame([{"sentences": len(original), "original types": len(a), "derived types": len(b),
                          "shared types": len(a & b), "overlap (Jaccard)": subword_overlap(original, derived)}])


def corpus_overlap(s: Setup, derived: DerivedLanguage, n_sentences: int = 500) -> pd.DataFrame:
    """``overlap_table`` of the first ``n_sentences`` of the language's pretraining corpus and their derived
    form (``corpus.derive``: as the parallel pretraining corpus is made)."""
    sentences = load_pretraining_corpus(s.language, max_sentences=n_sentences)
    words = [split_words(t) for t in sentences]
    encoded = encode_words_batch(s.tok, words)
    return overlap_table([i for i, _ in encoded], derive(derived, encoded, words, s.language, s.cfg.data))


# ------------------------------------------------------------------------------------ word order

def syntax_steps(spec: str) -> list[str]:
    """The Syntax steps of a composition (``syntax:fr``, ``syntax:fr@N~hi@V``)."""
    return [name for name in parse_spec(spec) if name.split(":", 1)[0] == "syntax"]


def word_order_table(language: str, spec: str, seed: int = 0, max_sentences: int | None = 500) -> pd.DataFrame | None:
    """The `syntax-stats` table of the composition's (first) Syntax step with ``language`` as the source:
    each word-order statistic on the source treebank, on the target language's, and on the source
    re-linearised (``syntax.stats.stats_frame``); None when the composition has no Syntax step."""
    from ..syntax.spec import parse_spec as parse_syntax_spec
    from ..syntax.stats import stats_frame

    steps = syntax_steps(spec)
    if not steps:
        return None
    target = steps[0].partition(":")[2]
    return stats_frame(parse_syntax_spec(f"{language}~" + (target if "@" in target else f"{target}@N~{target}@V")),
                       seed, max_sentences)
