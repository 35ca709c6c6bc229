"""Pretraining corpora: original and derived text, tokenized, packed into fixed-length blocks."""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from tokenizers import Tokenizer

from .config import cache_dir
from .fingerprint import code_fingerprint, fingerprint
from .inputs import pretraining_inputs
from .objectives.tlm import TlmPacker
from .run_config import DataConfig, RunConfig
from .token_store import FORMAT, CorpusText, TokenStore, default_workers, token_store, tokenizer_key, training_text
from .tokenizer import batched, encode_words_batch, load_or_train_tokenizer, split_words, vocab_size_of
from .transformations import N_SPECIAL, DerivedLanguage
from .trees import tree_parser

CORPUS_SETTINGS = ("parallel", "nonparallel", "other_domain")


@dataclass
class PretrainingData:
    """Packed blocks ready for masked-LM training (memory-mapped from the cache: read lazily)."""

    blocks: np.ndarray          # (N, seq_len) token ids (int32; a memory map when built by build_pretraining_data)
    langs: np.ndarray           # (N,) index into ``languages``
    languages: list[DerivedLanguage]  # language 0 is the original
    vocab_size: int             # V, the tokenizer's size; the model has 2V embeddings
    overlap: float              # sub-word overlap of the corpora (|E1 n E2| / |E1 u E2|)
    tlm_blocks: np.ndarray | None = None  # (M, seq_len) TLM blocks (objectives/tlm.py), with the tlm objective
    tlm_langs: np.ndarray | None = None   # (M, seq_len) int8: the language of each of their positions

    @property
    def n_tokens(self) -> int:
        return int(self.blocks.size)


class BlockPacker:
    """Packs sentences, chunk by chunk, into blocks of ``seq_len`` starting with ``bos``, each sentence
    closed by ``eos`` (RoBERTa's FULL-SENTENCES: no padding; sentences run on into the next block)."""

    def __init__(self, bos: int, eos: int, seq_len: int):
        self.bos, self.eos, self.body = bos, eos, seq_len - 1
        self.carry = np.zeros(0, dtype=np.int64)
        self.n_stream = 0

    def add(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The blocks completed by these sentences (``flat``: their ids concatenated); the rest is carried."""
        stream = np.empty(len(self.carry) + len(flat) + len(lengths), dtype=np.int64)
        stream[:len(self.carry)] = self.carry
        body = stream[len(self.carry):]
        ends = np.cumsum(np.asarray(lengths, dtype=np.int64) + 1) - 1
        is_eos = np.zeros(len(body), dtype=bool)
        is_eos[ends] = True
        body[is_eos] = self.eos
        body[~is_eos] = flat
        self.n_stream += len(body)
        n = len(stream) // self.body
        self.carry = stream[n * self.body:].copy()
        out = np.empty((n, self.body + 1), dtype=np.int64)
        out[:, 0] = self.bos
        out[:, 1:] = stream[: n * self.body].reshape(n, self.body)
        return out

    def check(self, n_blocks: int) -> None:
        """A corpus that filled no block is an error (a trailing partial block is dropped)."""
        if n_blocks == 0:
            raise ValueError(f"corpus too small: {self.n_stream} tokens cannot fill one block of {self.body + 1}")


def pack(sentences: Iterable[Sequence[int]], bos: int, eos: int, seq_len: int) -> np.ndarray:
    """Pack sentences (each closed by ``eos``) into blocks of ``seq_len`` starting with ``bos``.

    No padding is wasted: sentences run on into the next block, as in RoBERTa's FULL-SENTENCES.
    A trailing partial block is dropped.
    """
    sentences = list(sentences)
    lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
    packer = BlockPacker(bos, eos, seq_len)
    out = packer.add(np.fromiter(itertools.chain.from_iterable(sentences), dtype=np.int64), lengths)
    packer.check(len(out))
    return out


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


Chunks = Iterator[tuple[np.ndarray, np.ndarray]]   # (ids of sentences concatenated, their lengths)


def derived_chunks(derived: DerivedLanguage, store: TokenStore, text: CorpusText, start: int, stop: int,
                   tok: Tokenizer, language: str, data: DataConfig) -> Chunks:
    """The derived corpus of sentences ``start:stop``, chunk by chunk: token-level transformations on the
    stored ids; word- or tree-level ones (Syntax) from the words of the text, as ``derive``."""
    if all(st.corpus_level for st in derived.steps):
        for flat, lengths in store.chunks(start, stop):
            yield derived.transform_flat(flat, lengths), lengths
        return
    sentences = itertools.islice(text, start, stop)
    for batch in batched(sentences, SENTENCES_PER_CHUNK):
        words = [split_words(s) for s in batch]
        out = derive(derived, encode_words_batch(tok, words), words, language, data)
        lengths = np.fromiter(map(len, out), dtype=np.int64, count=len(out))
        yield np.fromiter(itertools.chain.from_iterable(out), dtype=np.int64, count=int(lengths.sum())), lengths


SENTENCES_PER_CHUNK = 20_000  # word- and tree-level derivation (Syntax) works on this many sentences at a time


def pretraining_tokenizer(languages: Sequence[str], cfg: RunConfig) -> tuple[Tokenizer, list[CorpusText]]:
    """The (cached) tokenizer for ``languages`` under ``cfg``, and the corpora it was trained on (streamed)."""
    corpora = [CorpusText(lang, max_sentences=cfg.data.pretrain_sentences) for lang in languages]
    text = lambda: (j for c in corpora for j in training_text(c, default_workers(c)))  # noqa: E731
    return load_or_train_tokenizer(languages, corpora, cfg.model.vocab_size, text), corpora


def build_pretraining_data(cfg: RunConfig, workers: int | None = None) -> tuple[Tokenizer, PretrainingData]:
    """Tokenize the corpus of ``data.language`` and add its derived copy (or a second natural language).

    ``data.transformation=None`` gives the monolingual corpus. ``data.corpus_setting`` chooses how the
    derived corpus relates to the original: the same sentences (parallel), a disjoint half
    (nonparallel), or a corpus of another domain (other_domain). ``data.derived_fraction`` keeps only
    that share of the derived corpus (its first sentences), for the derived-corpus-size experiments.
    The derived vocabulary is drawn with the pretraining seed. With the ``tlm`` objective (a derived
    language, parallel setting) the TLM blocks of the sentences that have a derived twin come too.

    Streamed: each corpus is tokenized once into a cached token store (``token_store``); the derived
    corpus and the blocks are made from it chunk by chunk and written to a cached, memory-mapped block
    file, so memory does not grow with the corpus. ``workers``: encoding processes (None: by corpus size).
    """
    d, kind = cfg.data, cfg.data.model_kind
    language, transformation = d.language, d.transformation
    setting, derived_fraction = d.corpus_setting, d.derived_fraction
    if setting not in CORPUS_SETTINGS:
        raise ValueError(f"unknown corpus setting {setting!r}; known: {CORPUS_SETTINGS}")
    if kind == "derived" and not 0.0 < derived_fraction <= 1.0:
        raise ValueError(f"derived_fraction must be in (0, 1], got {derived_fraction}")
    inputs = pretraining_inputs(cfg)  # the corpora opened here are the ones the model folder's key hashes
    tok, texts = pretraining_tokenizer([c.language for c in inputs.main], cfg)
    V = vocab_size_of(tok)
    original = DerivedLanguage("orig", V)
    store = token_store(tok, texts[0], workers)
    n = store.n_sentences
    # each part: (language, chunks of its sentences)
    parts: list[tuple[DerivedLanguage, Callable[[], Chunks]]] = []
    tlm_source: Callable[[], Chunks] | None = None  # the original sentences with a twin (parallel setting)
    if kind == "pair":
        second = token_store(tok, texts[1], workers)
        parts = [(original, lambda: store.chunks()), (DerivedLanguage("orig", V), lambda: second.chunks())]
    elif kind == "monolingual":
        parts = [(original, lambda: store.chunks())]
    else:
        derived = DerivedLanguage(transformation, V, seed=cfg.pretrain.seed, shift_special=d.shift_special)
        src_store, src_text, first, n_src, orig_stop = store, texts[0], 0, n, n
        if setting == "nonparallel":
            orig_stop, first, n_src = n // 2, n // 2, n - n // 2
        elif setting == "other_domain":
            src = inputs.derived_source
            src_text = CorpusText(src.language, domain=src.domain, max_sentences=n)
            src_store = token_store(tok, src_text, workers)
            n_src = src_store.n_sentences
        keep = max(1, int(round(derived_fraction * n_src)))
        if setting == "parallel":
            tlm_source = lambda: store.chunks(0, keep)  # noqa: E731
        parts = [(original, lambda: store.chunks(0, orig_stop)),
                 (derived, lambda: derived_chunks(derived, src_store, src_text, first, first + keep, tok, language, d))]
    key = fingerprint({"format": FORMAT, "data": dataclasses.asdict(d), "seq_len": cfg.pretrain.seq_len,
                       "seed": cfg.pretrain.seed, "tokenizer": tokenizer_key(tok),
                       "texts": [t.key() for t in texts], "code": code_fingerprint("pretrain")})
    blocks, block_langs, overlap = _packed(cache_dir() / "corpora" / f"blocks_{key}", parts, cfg.pretrain.seq_len, V)
    data = PretrainingData(blocks, block_langs, [p[0] for p in parts], V, overlap)
    if "tlm" in cfg.pretrain.objectives:
        if tlm_source is None:
            raise ValueError("the tlm objective needs a derived language in the parallel corpus setting")
        data.tlm_blocks, data.tlm_langs = _tlm_packed(cache_dir() / "corpora" / f"tlm_{key}", tlm_source,
                                                      original, parts[1][0], cfg.pretrain.seq_len)
    return tok, data


def _packed(folder: Path, parts: Sequence[tuple[DerivedLanguage, Callable[[], Chunks]]], seq_len: int,
            V: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The blocks of every part, one part after the other, and the parts' sub-word overlap: read from
    ``folder`` if cached, else packed chunk by chunk and written there (atomically)."""
    def write(tmp: Path) -> dict:
        used = np.zeros((len(parts), 2 * V + N_SPECIAL), dtype=bool)
        counts = []
        with open(tmp / "blocks.bin", "wb") as fb, open(tmp / "langs.bin", "wb") as fl:
            for k, (lang, chunks) in enumerate(parts):
                packer, n_blocks = BlockPacker(lang.bos, lang.eos, seq_len), 0
                for flat, lengths in chunks():
                    used[k, flat] = True
                    rows = packer.add(flat, lengths)
                    rows.astype(np.int32).tofile(fb)
                    np.full(len(rows), k, dtype=np.int64).tofile(fl)
                    n_blocks += len(rows)
                packer.check(n_blocks)
                counts.append(n_blocks)
        overlap = float((used[0] & used[1]).sum() / max(1, (used[0] | used[1]).sum())) if len(parts) > 1 else 1.0
        return {"n_blocks": sum(counts), "seq_len": seq_len, "part_blocks": counts, "overlap": overlap}

    meta = _cached_folder(folder, write)
    shape = (meta["n_blocks"], meta["seq_len"])
    blocks = np.memmap(folder / "blocks.bin", dtype=np.int32, mode="c", shape=shape)
    langs = np.memmap(folder / "langs.bin", dtype=np.int64, mode="c", shape=(meta["n_blocks"],))
    return blocks, langs, meta["overlap"]


def _tlm_packed(folder: Path, chunks: Callable[[], Chunks], original: DerivedLanguage, derived: DerivedLanguage,
                seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The TLM blocks of the original sentences of ``chunks`` and their positions' languages: read from
    ``folder`` if cached, else packed chunk by chunk (``objectives.tlm.TlmPacker``) and written there."""
    def write(tmp: Path) -> dict:
        n_blocks = 0
        with open(tmp / "blocks.bin", "wb") as fb, open(tmp / "langs.bin", "wb") as fl:
            for rows, langs in TlmPacker(original, derived, seq_len).pack(chunks()):
                rows.astype(np.int32).tofile(fb)
                langs.tofile(fl)
                n_blocks += len(rows)
        if n_blocks == 0:
            raise ValueError("corpus too small: no sentence for a TLM block")
        return {"n_blocks": n_blocks, "seq_len": seq_len}

    meta = _cached_folder(folder, write)
    shape = (meta["n_blocks"], meta["seq_len"])
    return (np.memmap(folder / "blocks.bin", dtype=np.int32, mode="c", shape=shape),
            np.memmap(folder / "langs.bin", dtype=np.int8, mode="c", shape=shape))


def _cached_folder(folder: Path, write: Callable[[Path], dict]) -> dict:
    """The meta.json of ``folder``; if there is none, ``write`` fills a temporary folder (and returns its meta),
    which then becomes ``folder`` (atomically: a process that finishes second keeps the first one's copy)."""
    if not (folder / "meta.json").exists():
        tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / "meta.json").write_text(json.dumps(write(tmp)))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
    return json.loads((folder / "meta.json").read_text())
