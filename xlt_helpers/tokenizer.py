"""Byte-level BPE tokenizers, one per language (or per language pair), trained once and cached."""
from __future__ import annotations

import hashlib
import itertools
import os
import re
import sys
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from .config import cache_dir
from .transformations import N_SPECIAL, SPECIAL_TOKENS

SAVED_NAME = "xlt_tokenizer.json"  # the tokenizer's file in a saved model folder (pretrained.py)


@lru_cache(maxsize=None)
def _word_patterns() -> tuple[re.Pattern, re.Pattern]:
    """The word regex (Unicode punctuation, category P, built from ``unicodedata`` once), and the same
    regex that also matches each line end, so many sentences split in one pass."""
    punct = re.escape("".join(c for c in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(c)[0] == "P"))
    # a punctuation character alone, or a run of non-space characters that starts and ends with no punctuation
    word = rf"[{punct}]|[^\s{punct}](?:\S*[^\s{punct}])?"
    return re.compile(word), re.compile("\n|" + word)


def split_words(text: str) -> list[str]:
    """The project's one word segmentation: whitespace, then punctuation peeled off both ends of a word.

    Works for every script (combining marks stay inside words). Pretraining text, XNLI sentences and the
    tokenizer's training text all go through it, so word-level transformations (Syntax) and the
    sub-word encoding always agree on what a word is.
    """
    return _word_patterns()[0].findall(text)


def split_lines(sentences: Sequence[str]) -> list[str]:
    """``split_words`` of many sentences in one regex pass: their words, each sentence closed by ``"\n"``.

    Sentences must not contain a line end (pretraining sentences are lines).
    """
    text = "\n".join(sentences) + "\n"
    if text.count("\n") != len(sentences):
        raise ValueError("split_lines: a sentence contains a line end")
    return _word_patterns()[1].findall(text) if sentences else []


def joined_words(sentences: Sequence[str]) -> list[str]:
    """``" ".join(split_words(s))`` for every sentence (the tokenizer's training text), in one pass."""
    out = (" ".join(split_lines(sentences)) + " ").split(" \n ")[:-1] if sentences else []
    if len(out) != len(sentences):  # a sentence without words: the one-pass split cannot mark it
        out = [" ".join(split_words(s)) for s in sentences]
    return out


def tokenizer_path(languages: Sequence[str], vocab_size: int, corpora: Sequence[Iterable[str]]) -> Path:
    """Keyed by the training text itself: a replaced or edited corpus never reuses an old tokenizer.

    ``corpora`` may be streams (read once here)."""
    h = hashlib.sha1()
    n = 0
    for corpus in corpora:
        for sentence in corpus:
            h.update(sentence.encode("utf-8"))
            h.update(b"\n")
            n += 1
        h.update(b"\0")
    return cache_dir() / "tokenizers" / f"{'-'.join(languages)}_v{vocab_size}_n{n}_{h.hexdigest()[:12]}.json"


def train_tokenizer(corpus: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE with the project's special tokens at ids 0..4 (<s> <pad> </s> <unk> <mask>)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i, "special tokens must occupy ids 0..4"
    return tok


def load_or_train_tokenizer(languages: Sequence[str], corpora: Sequence[Iterable[str]], vocab_size: int,
                            training_text: Callable[[], Iterable[str]] | None = None) -> Tokenizer:
    """The cached tokenizer for these languages and size; trained on ``corpora`` (one per language) if absent.

    Pair tokenizers (natural language pairs) are trained on the concatenation of both corpora. Each corpus
    is read twice (key, then training), so it may be any re-iterable, e.g. a corpus streamed from disk.
    ``training_text``: the same text as ``joined_words`` of the corpora, made faster elsewhere (in parallel).
    """
    path = tokenizer_path(languages, vocab_size, corpora)
    if path.exists():
        return Tokenizer.from_file(str(path))
    if training_text is None:
        text: Iterable[str] = (j for c in corpora for b in batched(c, 10_000) for j in joined_words(b))
    else:
        text = training_text()
    tok = train_tokenizer(text, vocab_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tok.save(str(tmp))
    os.replace(tmp, path)
    return tok


def batched(items: Iterable, n: int) -> Iterable[list]:
    """Lists of ``n`` consecutive items (the last one shorter)."""
    it = iter(items)
    while batch := list(itertools.islice(it, n)):
        yield batch


def vocab_size_of(tok: Tokenizer) -> int:
    return tok.get_vocab_size(with_added_tokens=True)


def encode_words(tok: Tokenizer, words: Sequence[str]) -> tuple[list[int], list[int]]:
    """Sub-word ids of a pre-split sentence and, for each id, the index of its word.

    A word that yields no sub-word (empty string) is represented by ``<unk>`` so every word keeps a
    position for its label.
    """
    enc = tok.encode(list(words), is_pretokenized=True, add_special_tokens=False)
    ids, wids = list(enc.ids), [w for w in enc.word_ids]
    present = set(wids)
    if len(present) != len(words):  # words that produced no token
        merged: list[tuple[int, int]] = list(zip(wids, ids))
        merged += [(w, 3) for w in range(len(words)) if w not in present]
        merged.sort(key=lambda p: p[0])
        wids, ids = [w for w, _ in merged], [i for _, i in merged]
    return ids, wids


def encode_words_batch(tok: Tokenizer, sentences: Sequence[Sequence[str]]) -> list[tuple[list[int], list[int]]]:
    """``encode_words`` for many sentences at once (fast path through the batch encoder)."""
    encs = tok.encode_batch([list(s) for s in sentences], is_pretokenized=True, add_special_tokens=False)
    out = []
    for words, enc in zip(sentences, encs):
        wids = list(enc.word_ids)
        if len(set(wids)) != len(words):
            out.append(encode_words(tok, words))
        else:
            out.append((list(enc.ids), wids))
    return out


assert N_SPECIAL == len(SPECIAL_TOKENS)
