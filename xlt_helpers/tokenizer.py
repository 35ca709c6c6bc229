"""Byte-level BPE tokenizers, one per language (or per language pair), trained once and cached."""
from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path
from typing import Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from .config import cache_dir
from .transformations import N_SPECIAL, SPECIAL_TOKENS


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def split_words(text: str) -> list[str]:
    """The project's one word segmentation: whitespace, then punctuation peeled off both ends of a word.

    Works for every script (combining marks stay inside words). Pretraining text, XNLI sentences and the
    tokenizer's training text all go through it, so word-level transformations (Syntax) and the
    sub-word encoding always agree on what a word is.
    """
    words: list[str] = []
    for chunk in text.split():
        i, j = 0, len(chunk)
        while i < j and _is_punct(chunk[i]):
            i += 1
        while j > i and _is_punct(chunk[j - 1]):
            j -= 1
        words += list(chunk[:i])
        if i < j:
            words.append(chunk[i:j])
        words += list(chunk[j:])
    return words


def tokenizer_path(languages: Sequence[str], vocab_size: int, corpora: Sequence[Sequence[str]]) -> Path:
    """Keyed by the training text itself: a replaced or edited corpus never reuses an old tokenizer."""
    h = hashlib.sha1()
    for corpus in corpora:
        for sentence in corpus:
            h.update(sentence.encode("utf-8"))
            h.update(b"\n")
        h.update(b"\0")
    n = sum(len(c) for c in corpora)
    return cache_dir() / "tokenizers" / f"{'-'.join(languages)}_v{vocab_size}_n{n}_{h.hexdigest()[:12]}.json"


def train_tokenizer(corpus: Sequence[str], vocab_size: int) -> Tokenizer:
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


def load_or_train_tokenizer(languages: Sequence[str], corpora: Sequence[Sequence[str]], vocab_size: int) -> Tokenizer:
    """The cached tokenizer for these languages and size; trained on ``corpora`` (one per language) if absent.

    Pair tokenizers (natural language pairs) are trained on the concatenation of both corpora.
    """
    path = tokenizer_path(languages, vocab_size, corpora)
    if path.exists():
        return Tokenizer.from_file(str(path))
    tok = train_tokenizer([" ".join(split_words(s)) for c in corpora for s in c], vocab_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tok.save(str(tmp))
    os.replace(tmp, path)
    return tok


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
