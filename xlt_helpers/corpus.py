"""Pretraining corpora: original and derived text, tokenized, packed into fixed-length blocks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from tokenizers import Tokenizer

from .data import load_pretraining_corpus
from .run_config import DataConfig, RunConfig
from .tokenizer import encode_words_batch, load_or_train_tokenizer, split_words, vocab_size_of
from .transformations import DerivedLanguage, Segment
from .trees import tree_parser

CORPUS_SETTINGS = ("parallel", "nonparallel", "other_domain")


@dataclass
class PretrainingData:
    """Packed blocks ready for masked-LM training."""

    blocks: np.ndarray          # (N, seq_len) token ids
    langs: np.ndarray           # (N,) index into ``languages``
    languages: list[DerivedLanguage]  # language 0 is the original
    vocab_size: int             # V, the tokenizer's size; the model has 2V embeddings
    overlap: float              # sub-word overlap of the corpora (|E1 n E2| / |E1 u E2|)

    @property
    def n_tokens(self) -> int:
        return int(self.blocks.size)


def pack(sentences: Iterable[Sequence[int]], bos: int, eos: int, seq_len: int) -> np.ndarray:
    """Pack sentences (each closed by ``eos``) into blocks of ``seq_len`` starting with ``bos``.

    No padding is wasted: sentences run on into the next block, as in RoBERTa's FULL-SENTENCES.
    A trailing partial block is dropped.
    """
    stream = [t for s in sentences for t in (*s, eos)]
    body = seq_len - 1
    n = len(stream) // body
    if n == 0:
        raise ValueError(f"corpus too small: {len(stream)} tokens cannot fill one block of {seq_len}")
    arr = np.asarray(stream[: n * body], dtype=np.int64).reshape(n, body)
    return np.concatenate([np.full((n, 1), bos, dtype=np.int64), arr], axis=1)


def subword_overlap(corpus_a: Iterable[Sequence[int]], corpus_b: Iterable[Sequence[int]]) -> float:
    """Jaccard overlap of the sub-word types used by two tokenized corpora."""
    a = set().union(*map(set, corpus_a))
    b = set().union(*map(set, corpus_b))
    return len(a & b) / max(1, len(a | b))


def derive(derived: DerivedLanguage, encoded: Sequence[tuple[list[int], list[int]]],
           words: Sequence[Sequence[str]], language: str, data: DataConfig) -> list[list[int]]:
    """The derived corpus: every sentence transformed (parsed first if the transformation needs trees)."""
    trees = tree_parser(language, data)(words) if derived.needs_trees else [None] * len(encoded)
    return derived.transform_corpus([i for i, _ in encoded], [w for _, w in encoded], trees)


def pretraining_tokenizer(languages: Sequence[str], cfg: RunConfig) -> tuple[Tokenizer, list[list[str]]]:
    """The (cached) tokenizer for ``languages`` under ``cfg``, and the raw corpora it was trained on."""
    corpora = [load_pretraining_corpus(lang, max_sentences=cfg.data.pretrain_sentences) for lang in languages]
    return load_or_train_tokenizer(languages, corpora, cfg.model.vocab_size), corpora


def build_pretraining_data(cfg: RunConfig) -> tuple[Tokenizer, PretrainingData]:
    """Tokenize the corpus of ``data.language`` and add its derived copy (or a second natural language).

    ``data.transformation=None`` gives the monolingual corpus. ``data.corpus_setting`` chooses how the
    derived corpus relates to the original: the same sentences (parallel), a disjoint half
    (nonparallel), or a corpus of another domain (other_domain). ``data.derived_fraction`` keeps only
    that share of the derived corpus (its first sentences), for the derived-corpus-size experiments.
    The derived vocabulary is drawn with the pretraining seed.
    """
    d = cfg.data
    language, transformation, second_language = d.language, d.transformation, d.second_language
    setting, derived_fraction = d.corpus_setting, d.derived_fraction
    if setting not in CORPUS_SETTINGS:
        raise ValueError(f"unknown corpus setting {setting!r}; known: {CORPUS_SETTINGS}")
    langs = [language] + ([second_language] if second_language else [])
    tok, corpora = pretraining_tokenizer(langs, cfg)
    V = vocab_size_of(tok)
    original = DerivedLanguage("orig", V)
    words = [split_words(s) for s in corpora[0]]
    encoded = encode_words_batch(tok, words)
    ids = [e[0] for e in encoded]
    parts: list[tuple[DerivedLanguage, list[list[int]]]] = []
    if second_language:
        second = encode_words_batch(tok, [split_words(s) for s in corpora[1]])
        parts = [(original, ids), (DerivedLanguage("orig", V), [e[0] for e in second])]
    elif transformation is None:
        parts = [(original, ids)]
    else:
        derived = DerivedLanguage(transformation, V, seed=cfg.pretrain.seed, shift_special=d.shift_special)
        src_words, src_encoded = words, encoded
        if setting == "parallel":
            src_orig = ids
        elif setting == "nonparallel":
            half = len(ids) // 2
            src_orig, src_words, src_encoded = ids[:half], words[half:], encoded[half:]
        else:
            other = load_pretraining_corpus(language, domain="other_domain", max_sentences=len(ids))
            src_orig, src_words = ids, [split_words(s) for s in other]
            src_encoded = encode_words_batch(tok, src_words)
        if not 0.0 < derived_fraction <= 1.0:
            raise ValueError(f"derived_fraction must be in (0, 1], got {derived_fraction}")
        keep = max(1, int(round(derived_fraction * len(src_encoded))))
        src_words, src_encoded = src_words[:keep], src_encoded[:keep]
        parts = [(original, src_orig), (derived, derive(derived, src_encoded, src_words, language, d))]
    blocks, block_langs = [], []
    for k, (lang, sents) in enumerate(parts):
        b = pack(sents, lang.bos, lang.eos, cfg.pretrain.seq_len)
        blocks.append(b)
        block_langs.append(np.full(len(b), k, dtype=np.int64))
    overlap = subword_overlap(parts[0][1], parts[1][1]) if len(parts) > 1 else 1.0
    data = PretrainingData(np.concatenate(blocks), np.concatenate(block_langs), [p[0] for p in parts], V, overlap)
    return tok, data
