"""The dictionary of ``align`` and ``dict_mlm``: token-id pairs ``(original, twin)``.

* A derived language with Transliteration: every sub-word ``i`` that the transformation moves and its twin
  ``table[i]`` (the dictionary is known).
* A natural pair: ``pretrain.dictionary``, a UTF-8 file of word pairs, one a line, two tab-separated
  columns (a word of ``data.language``, its translation in ``data.second_language``); blank lines and lines
  starting with ``#`` are skipped. A word is mapped to a token id with the pair model's tokenizer as the
  corpus reads it (Unicode-normalised, split into words by ``tokenizer.split_words``, each word encoded
  on its own); pairs whose two words are one word and one token each are kept, the others (and pairs of one token with itself) dropped, repeats kept once.

A share ``pretrain.dictionary_fraction`` of these candidate pairs, drawn with the pretraining seed, is the
training dictionary; the held-out pairs are the others minus any pair with a token of the training
dictionary, so no held-out token is ever trained on. Both go to ``model/dictionary.tsv``
(``orig_id``, ``twin_id``, ``split`` = train or heldout) for the alignment step.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import data_dir
from ..data import _lines, normalize_text
from ..errors import DataFormatError
from ..tokenizer import split_words

FILE = "dictionary.tsv"           # beside the model: model/dictionary.tsv
HEADER = "orig_id\ttwin_id\tsplit"
STREAM = 0xD1C7                   # the sample's random stream beside the pretraining seed


@dataclass(frozen=True)
class Dictionary:
    train: np.ndarray     # (n, 2) int64 token-id pairs used in training
    heldout: np.ndarray   # (m, 2) pairs none of whose tokens is in ``train``

    def save(self, path: str | Path) -> None:
        lines = [HEADER] + [f"{a}\t{b}\t{split}" for split, pairs in (("train", self.train), ("heldout", self.heldout))
                            for a, b in pairs.tolist()]
        Path(path).write_text("\n".join(lines) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Dictionary":
        rows: dict[str, list[tuple[int, int]]] = {"train": [], "heldout": []}
        for lineno, line in _lines(Path(path)):
            if lineno == 1 and line == HEADER:
                continue
            cols = line.split("\t")
            if len(cols) != 3 or cols[2] not in rows or not (cols[0].isdigit() and cols[1].isdigit()):
                raise DataFormatError(path, lineno, "orig_id<TAB>twin_id<TAB>train|heldout", line)
            rows[cols[2]].append((int(cols[0]), int(cols[1])))
        return cls(*(np.asarray(rows[s], dtype=np.int64).reshape(-1, 2) for s in ("train", "heldout")))


def twin_pairs(table: np.ndarray, n_special: int) -> np.ndarray:
    """``(i, table[i])`` for every sub-word that ``table`` moves (``(n, 2)``, by ``i``)."""
    ids = np.arange(n_special, len(table))
    moved = ids[table[ids] != ids]
    return np.stack([moved, table[moved]], axis=1).astype(np.int64)


def split(candidates: np.ndarray, fraction: float, seed: int) -> Dictionary:
    """The training share of ``candidates`` (``round(fraction * n)`` pairs drawn without replacement with
    ``seed``, kept in their order) and the held-out rest (pairs with a training token left out)."""
    n = len(candidates)
    chosen = np.sort(np.random.default_rng([seed, STREAM]).choice(n, size=max(1, round(fraction * n)), replace=False))
    train = candidates[chosen]
    rest = np.delete(candidates, chosen, axis=0)
    trained = np.union1d(train[:, 0], train[:, 1])
    return Dictionary(train, rest[~np.isin(rest, trained).any(axis=1)])


def file_path(template: str, language: str, second_language: str | None) -> Path:
    """``pretrain.dictionary`` with ``{language}`` and ``{second_language}`` filled in, relative to the data
    directory unless absolute."""
    path = Path(template.format(language=language, second_language=second_language)).expanduser()
    return path if path.is_absolute() else data_dir() / path


def read_word_pairs(path: str | Path) -> list[tuple[str, str, int]]:
    """The word pairs of a dictionary file, each with its line number; a malformed line is refused with its
    file and line."""
    out = []
    for lineno, line in _lines(Path(path)):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 2 or not all(c.strip() for c in cols):
            raise DataFormatError(path, lineno, "two tab-separated columns: a word and its translation", line)
        out.append((cols[0].strip(), cols[1].strip(), lineno))
    if not out:
        raise DataFormatError(path, None, "at least one word pair (two tab-separated columns)", "none")
    return out


def word_pair_ids(pairs: list[tuple[str, str, int]], tok) -> np.ndarray:
    """Token-id pairs of the word pairs whose two words are single tokens of ``tok`` (distinct ones, first
    occurrence kept)."""
    words = sorted({w for a, b, _ in pairs for w in (normalize_text(a), normalize_text(b))
                    if split_words(w) == [w]})     # one word as the corpus splits text (no punctuation inside)
    encs = tok.encode_batch([[w] for w in words], is_pretokenized=True, add_special_tokens=False)
    single = {w: enc.ids[0] for w, enc in zip(words, encs) if len(enc.ids) == 1}
    ids = [(single[a], single[b]) for a, b in ((normalize_text(a), normalize_text(b)) for a, b, _ in pairs)
           if a in single and b in single and single[a] != single[b]]
    return np.asarray(list(dict.fromkeys(ids)), dtype=np.int64).reshape(-1, 2)


def for_model(data_cfg, pretrain_cfg, tok, derived_table: np.ndarray, n_special: int) -> Dictionary:
    """The dictionary of a model: its derived language's twins, or its natural pair's file (see above)."""
    if data_cfg.second_language:
        path = file_path(pretrain_cfg.dictionary, data_cfg.language, data_cfg.second_language)
        pairs = read_word_pairs(path)
        candidates = word_pair_ids(pairs, tok)
        if len(candidates) == 0:
            raise DataFormatError(path, None, f"word pairs whose two words are single tokens of the "
                                              f"{data_cfg.language}-{data_cfg.second_language} tokenizer",
                                  f"none of {len(pairs)} pairs")
    else:
        candidates = twin_pairs(derived_table, n_special)
    return split(candidates, pretrain_cfg.dictionary_fraction, pretrain_cfg.seed)
