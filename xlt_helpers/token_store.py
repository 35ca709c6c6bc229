"""Tokenized pretraining corpora on disk: read in chunks, encoded once (in parallel processes for large
corpora), stored as a token file with the length of every sentence, cached by what they
depend on (corpus files, sentence limit, tokenizer). Memory stays bounded by the chunk size, whatever
the corpus size.

Sentences and ids are exactly those of ``data.load_pretraining_corpus`` + ``tokenizer.split_words`` +
``tokenizer.encode_words_batch`` (tests/test_corpus_stream.py): a pre-split sentence is encoded word by
word by the byte-level BPE, so each distinct word is encoded once and looked up afterwards.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import shutil
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from tokenizers import Tokenizer

from .config import cache_dir, data_dir
from .data import TEXT_NORMALIZATION, language_spec, load_pretraining_corpus, normalize_text, pretrain_key
from .errors import DataFormatError
from .fingerprint import files_fingerprint, fingerprint
from .tokenizer import joined_words, split_lines
from .transformations import UNK

FORMAT = 1                    # bump when the files' layout or content changes
CHUNK_BYTES = 4 << 20         # text read per chunk (about a million tokens)
MAX_WORD_TYPES = 1_000_000    # the word cache is emptied beyond this, so memory does not grow with the corpus
PARALLEL_MIN_BYTES = 64 << 20  # smaller corpora are encoded in this process (starting workers costs seconds)
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RawChunk:
    """Whole lines of one corpus file, undecoded: ``first_line`` is the 1-based number of the first."""

    path: str
    first_line: int
    data: bytes


def decode_sentences(chunk: RawChunk, budget: int | None = None) -> list[str] | None:
    """Non-blank lines of a chunk, stripped and normalised (as ``data.read_sentence_lines``), at most
    ``budget``. ``None`` if the chunk has a bad byte and no budget: the caller decides with the budget."""
    try:
        lines = chunk.data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        if budget is None:
            return None
        lines = []
        for k, raw in enumerate(chunk.data.split(b"\n")):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                if sum(1 for s in lines if s.strip()) >= budget:
                    break
                raise DataFormatError(chunk.path, chunk.first_line + k, "UTF-8 text", str(exc)) from exc
    out = [normalize_text(s) for s in map(str.strip, lines) if s]
    return out if budget is None else out[:budget]


class CorpusText:
    """The sentences of a registered pretraining corpus streamed from its files (re-iterable)."""

    def __init__(self, language: str, domain: str = "main", max_sentences: int | None = None):
        load_pretraining_corpus(language, domain, max_sentences=0)  # checks language, domain and the limit
        self.language, self.domain, self.max_sentences = language, domain, max_sentences
        self.paths = [data_dir() / p for p in language_spec(language)[pretrain_key(domain)]["paths"]]

    def key(self) -> str:
        """Changes with the files (name and content), the sentence limit and the text normalisation."""
        return files_fingerprint(self.paths, [self.language, self.domain, self.max_sentences, TEXT_NORMALIZATION])

    def raw_chunks(self, size: int | None = None) -> Iterator[RawChunk]:
        """Whole lines of the files in order, about ``size`` bytes at a time (None: ``CHUNK_BYTES``)."""
        size = size or CHUNK_BYTES
        for path in self.paths:
            if not path.is_file():
                load_pretraining_corpus(self.language, self.domain)  # raises the loaders' missing-file error
            with open(path, "rb") as handle:
                line = 1
                while lines := handle.readlines(size):
                    data = b"".join(lines)
                    if line == 1 and data.startswith(BOM):
                        data = data[len(BOM):]
                    yield RawChunk(str(path), line, data)
                    line += len(lines)

    def chunks(self, size: int | None = None) -> Iterator[list[str]]:
        """The sentences, one list per chunk of the files, stopping at ``max_sentences``."""
        left = self.max_sentences
        for raw in self.raw_chunks(size):
            if left == 0:
                return
            sentences = decode_sentences(raw, _budget(left))
            if left is not None:
                left -= len(sentences)
            if sentences:
                yield sentences

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self.chunks())


class WordEncoder:
    """Sub-word ids of many sentences at once through a cache of word types (each new word encoded once).

    A word that yields no sub-word is ``<unk>``, as in ``tokenizer.encode_words``.
    """

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        self._reset()

    def _reset(self) -> None:
        self.index: dict[str, int] = {"\n": 0}   # type 0: the end of a sentence, no tokens
        self.lens = np.zeros(1, dtype=np.int64)
        self.starts = np.zeros(1, dtype=np.int64)
        self.flat = np.zeros(0, dtype=np.int32)

    def _add(self, words: list[str]) -> None:
        encs = self.tok.encode_batch([[w] for w in words], is_pretokenized=True, add_special_tokens=False)
        ids = [e.ids or [UNK] for e in encs]
        lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        self.starts = np.concatenate([self.starts, len(self.flat) + np.cumsum(lens) - lens])
        self.lens = np.concatenate([self.lens, lens])
        self.flat = np.concatenate([self.flat, np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32,
                                                           count=int(lens.sum()))])
        self.index.update(zip(words, range(len(self.index), len(self.index) + len(words))))

    def encode(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, lengths)``: every sentence's ids, concatenated, and the number of ids of each."""
        if len(self.index) > MAX_WORD_TYPES:
            self._reset()
        words = split_lines(sentences)
        new = [w for w in dict.fromkeys(words) if w not in self.index]
        if new:
            self._add(new)
        types = np.fromiter(map(self.index.__getitem__, words), dtype=np.int64, count=len(words))
        n = self.lens[types]
        ends = np.cumsum(n)
        tokens = self.flat[np.repeat(self.starts[types] - (ends - n), n) + np.arange(int(ends[-1]) if len(ends) else 0)]
        lengths = np.diff(ends[types == 0], prepend=0)
        return tokens, lengths


_WORKER: WordEncoder | None = None


def _start_worker(tokenizer_json: str | None) -> None:
    global _WORKER
    _WORKER = None if tokenizer_json is None else WordEncoder(Tokenizer.from_str(tokenizer_json))


def _encode_in_worker(chunk: RawChunk) -> tuple[np.ndarray, np.ndarray] | None:
    sentences = decode_sentences(chunk)
    return None if sentences is None else _WORKER.encode(sentences)  # type: ignore[union-attr]


def _join_in_worker(chunk: RawChunk) -> list[str] | None:
    sentences = decode_sentences(chunk)
    return None if sentences is None else joined_words(sentences)


def default_workers(text: CorpusText) -> int:
    """Processes for encoding: one for small corpora, else every CPU this process may use."""
    size = sum(p.stat().st_size for p in text.paths if p.is_file())
    if size < PARALLEL_MIN_BYTES or (text.max_sentences is not None and text.max_sentences < 200_000):
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _in_workers(text: CorpusText, workers: int, chunk_bytes: int | None, job: Callable, tokenizer_json: str | None,
                ) -> Iterator[tuple[RawChunk, Any]]:
    """``(chunk, job(chunk))`` for the raw chunks of ``text`` in order, computed by ``workers`` processes
    (a few chunks ahead, so memory stays bounded)."""
    ctx = multiprocessing.get_context("spawn")  # never fork a process that may hold torch's threads
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker, initargs=(tokenizer_json,)) as pool:
        pending: deque = deque()
        try:
            for raw in text.raw_chunks(chunk_bytes):
                pending.append((raw, pool.submit(job, raw)))
                if len(pending) > 2 * workers:
                    r, fut = pending.popleft()
                    yield r, fut.result()
            while pending:
                r, fut = pending.popleft()
                yield r, fut.result()
        finally:
            for _, fut in pending:
                fut.cancel()


def _budget(left: int | None) -> int:
    return left if left is not None else 1 << 62


def encode_corpus(tok: Tokenizer, text: CorpusText, workers: int = 1,
                  chunk_bytes: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(tokens, lengths)`` chunk by chunk, in corpus order; ``workers`` > 1 encodes in that many processes
    (the same numbers: each chunk is encoded independently)."""
    if workers <= 1:
        enc = WordEncoder(tok)
        for sentences in text.chunks(chunk_bytes):
            yield enc.encode(sentences)
        return
    left = text.max_sentences
    for raw, out in _in_workers(text, workers, chunk_bytes, _encode_in_worker, tok.to_str()):
        if left == 0:
            return
        if out is None:  # a bad byte: decide here, where the sentence budget is known
            out = WordEncoder(tok).encode(decode_sentences(raw, _budget(left)))
        tokens, lengths = out
        if left is not None:
            if len(lengths) > left:
                lengths = lengths[:left]
                tokens = tokens[:int(lengths.sum())]
            left -= len(lengths)
        if len(lengths):
            yield tokens, lengths


def training_text(text: CorpusText, workers: int = 1, chunk_bytes: int | None = None) -> Iterator[str]:
    """The tokenizer's training text of ``text`` (``tokenizer.joined_words`` of every sentence), in order;
    ``workers`` > 1 splits the chunks in that many processes."""
    if workers <= 1:
        for sentences in text.chunks(chunk_bytes):
            yield from joined_words(sentences)
        return
    left = text.max_sentences
    for raw, out in _in_workers(text, workers, chunk_bytes, _join_in_worker, None):
        if left == 0:
            return
        if out is None:
            out = joined_words(decode_sentences(raw, _budget(left)))
        if left is not None:
            out = out[:left]
            left -= len(out)
        yield from out


class TokenStore:
    """A tokenized corpus on disk: ``tokens.bin`` (ids) and ``lengths.bin`` (ids per sentence), read in chunks
    with plain file reads (the page cache holds them, not this process)."""

    def __init__(self, folder: Path):
        meta = json.loads((folder / "meta.json").read_text())
        self.folder, self.n_tokens, self.n_sentences = folder, meta["n_tokens"], meta["n_sentences"]
        self.dtype = np.dtype(meta["dtype"])

    def _read(self, name: str, dtype: np.dtype, start: int, n: int) -> np.ndarray:
        return np.fromfile(self.folder / name, dtype=dtype, count=n, offset=start * dtype.itemsize).astype(np.int64)

    def chunks(self, start: int = 0, stop: int | None = None,
               sentences: int = 1 << 16) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(tokens, lengths)`` of sentences ``start:stop``, ``sentences`` at a time (int64 ids)."""
        stop = self.n_sentences if stop is None else min(stop, self.n_sentences)
        i32 = np.dtype(np.int32)
        offset = sum(int(self._read("lengths.bin", i32, a, min(sentences, start - a)).sum())
                     for a in range(0, start, sentences))
        for a in range(start, stop, sentences):
            lengths = self._read("lengths.bin", i32, a, min(sentences, stop - a))
            n = int(lengths.sum())
            yield self._read("tokens.bin", self.dtype, offset, n), lengths
            offset += n


def tokenizer_key(tok: Tokenizer) -> str:
    return hashlib.sha1(tok.to_str().encode()).hexdigest()[:12]


def token_store(tok: Tokenizer, text: CorpusText, workers: int | None = None) -> TokenStore:
    """The cached token store of ``text`` under ``tok``; encoded and written (atomically) if absent."""
    key = fingerprint({"format": FORMAT, "text": text.key(), "tokenizer": tokenizer_key(tok)})
    folder = cache_dir() / "corpora" / f"{text.language}_{text.domain}_{key}"
    if (folder / "meta.json").exists():
        return TokenStore(folder)
    dtype = "uint16" if tok.get_vocab_size(with_added_tokens=True) <= 1 << 16 else "int32"
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n_tokens = n_sentences = 0
    with open(tmp / "tokens.bin", "wb") as ft, open(tmp / "lengths.bin", "wb") as fl:
        for tokens, lengths in encode_corpus(tok, text, default_workers(text) if workers is None else workers):
            tokens.astype(dtype).tofile(ft)
            lengths.astype(np.int32).tofile(fl)
            n_tokens, n_sentences = n_tokens + len(tokens), n_sentences + len(lengths)
    (tmp / "meta.json").write_text(json.dumps({"n_tokens": n_tokens, "n_sentences": n_sentences, "dtype": dtype}))
    try:
        os.replace(tmp, folder)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return TokenStore(folder)
