"""``tlm``: XLM's translation LM on a derived language: blocks in which every sentence stands beside its
derived twin, masked together (the loss is ``mlm.loss`` on them).

A TLM block is ``<s>`` followed by units ``s </s> T(s) </s>'`` (``</s>'``: the derived language's end of
sentence) and padded with ``<pad>`` at its end. A unit always lies whole in one block, so each sentence is
next to its twin. A sentence too long for the room left in a block is cut into pieces: the piece that fits
(if the room holds ``MIN_PIECE`` tokens or more; otherwise the block is closed) and the rest in the next
blocks, each piece with the transformation of that piece as its twin (the transformations are functions
of a sentence, so a piece and its transformation are a parallel pair too). Only token-level
transformations (inv, perm, translit and their compositions) can do that; Syntax is refused. Positions
are not reset for the twin (XLM resets them, and adds language embeddings, which this model has not),
and the padding is attended to like any token (the model has no attention mask in pretraining).
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from ..transformations import PAD, DerivedLanguage

MIN_PIECE = 8   # the shortest piece a sentence is cut into to fill the end of a block


class TlmPacker:
    """Packs the original sentences, chunk by chunk, into TLM blocks of ``seq_len`` (see the module); the
    open block is carried to the next chunk. ``langs`` gives each position's language (0 original, 1
    derived; padding 0), for the random replacements of masking."""

    def __init__(self, original: DerivedLanguage, derived: DerivedLanguage, seq_len: int):
        self.original, self.derived, self.seq_len = original, derived, seq_len
        self.min_piece = min(MIN_PIECE, (seq_len - 3) // 2)
        if self.min_piece < 1:
            raise ValueError(f"pretrain.seq_len {seq_len} is too short for a TLM block (at least 5)")
        self.fill = 1                                   # the open block: <s> and its units so far
        self.units: list[np.ndarray] = []           # its units: s </s> T(s) </s>'

    def add(self, flat: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The blocks and position languages completed by these sentences (``flat``: their ids concatenated)."""
        # 1. cut the sentences into pieces that fit: (start, length, whether a block closes before it)
        pieces, start = [], 0
        for n in lengths.tolist():
            a, left, close = start, n, False
            while left > 0:
                room = (self.seq_len - self.fill - 2) // 2   # a piece's tokens that fit beside its twin and two </s>
                if room < min(left, self.min_piece):
                    close, self.fill = True, 1
                    continue
                p = min(left, room)
                pieces.append((a, p, close))
                self.fill += 2 * p + 2
                a, left, close = a + p, left - p, False
            start += n
        if not pieces:
            return self._empty()
        # 2. every piece's twin, in one call
        lens = np.array([p for _, p, _ in pieces], dtype=np.int64)
        originals = np.concatenate([flat[a:a + p] for a, p, _ in pieces]).astype(np.int64)
        twins = self.derived.transform_flat(originals, lens)
        # 3. the units into blocks
        rows, langs = [], []
        for (_, p, close), lo in zip(pieces, (np.cumsum(lens) - lens).tolist()):
            if close:
                row, lang = self._close()
                rows.append(row)
                langs.append(lang)
            self.units.append(np.concatenate([originals[lo:lo + p], [self.original.eos],
                                              twins[lo:lo + p], [self.derived.eos]]))
        if not rows:
            return self._empty()
        return np.stack(rows), np.stack(langs)

    def pack(self, chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``add`` of every chunk, then ``finish``: all the blocks of a corpus."""
        for flat, lengths in chunks:
            yield self.add(flat, lengths)
        yield self.finish()

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The last, partly filled block (padded), if it holds a unit."""
        if not self.units:
            return self._empty()
        row, lang = self._close()
        return row[None], lang[None]

    def _close(self) -> tuple[np.ndarray, np.ndarray]:
        """The open block, padded, and its positions' languages (each unit: original half, then derived)."""
        row = np.full(self.seq_len, PAD, dtype=np.int64)
        lang = np.zeros(self.seq_len, dtype=np.int8)
        body = np.concatenate([[self.original.bos]] + self.units)
        row[:len(body)] = body
        lang[1:len(body)] = np.concatenate([np.repeat(np.int8([0, 1]), len(u) // 2) for u in self.units])
        self.units = []
        return row, lang

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((0, self.seq_len), dtype=np.int64), np.zeros((0, self.seq_len), dtype=np.int8)
