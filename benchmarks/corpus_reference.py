"""The pretraining-corpus path before streaming (whole corpus in memory, Python lists), kept as the oracle of
tests/test_corpus_stream.py and the "before" of benchmarks/bench_data.py. Not used by the package."""
import unicodedata

import numpy as np

from xlt_helpers.corpus import derive
from xlt_helpers.data import load_pretraining_corpus
from xlt_helpers.tokenizer import encode_words_batch, train_tokenizer, vocab_size_of
from xlt_helpers.transformations import DerivedLanguage


def old_split_words(text):
    words = []
    for chunk in text.split():
        i, j = 0, len(chunk)
        while i < j and unicodedata.category(chunk[i]).startswith("P"):
            i += 1
        while j > i and unicodedata.category(chunk[j - 1]).startswith("P"):
            j -= 1
        words += list(chunk[:i])
        if i < j:
            words.append(chunk[i:j])
        words += list(chunk[j:])
    return words


def old_pack(sentences, bos, eos, seq_len):
    stream = [t for s in sentences for t in (*s, eos)]
    body = seq_len - 1
    n = len(stream) // body
    arr = np.asarray(stream[: n * body], dtype=np.int64).reshape(n, body)
    return np.concatenate([np.full((n, 1), bos, dtype=np.int64), arr], axis=1)


def reference_blocks(cfg):
    """The previous build_pretraining_data: (blocks, langs, overlap)."""
    d = cfg.data
    langs = [d.language] + ([d.second_language] if d.second_language else [])
    corpora = [load_pretraining_corpus(lang, max_sentences=d.pretrain_sentences) for lang in langs]
    tok = train_tokenizer([" ".join(old_split_words(s)) for c in corpora for s in c], cfg.model.vocab_size)
    V = vocab_size_of(tok)
    original = DerivedLanguage("orig", V)
    words = [old_split_words(s) for s in corpora[0]]
    encoded = encode_words_batch(tok, words)
    ids = [e[0] for e in encoded]
    if d.second_language:
        second = encode_words_batch(tok, [old_split_words(s) for s in corpora[1]])
        parts = [(original, ids), (original, [e[0] for e in second])]
    elif d.transformation is None:
        parts = [(original, ids)]
    else:
        derived = DerivedLanguage(d.transformation, V, seed=cfg.pretrain.seed, shift_special=d.shift_special)
        src_words, src_encoded, src_orig = words, encoded, ids
        if d.corpus_setting == "nonparallel":
            half = len(ids) // 2
            src_orig, src_words, src_encoded = ids[:half], words[half:], encoded[half:]
        elif d.corpus_setting == "other_domain":
            other = load_pretraining_corpus(d.language, domain="other_domain", max_sentences=len(ids))
            src_words = [old_split_words(s) for s in other]
            src_encoded = encode_words_batch(tok, src_words)
        keep = max(1, int(round(d.derived_fraction * len(src_encoded))))
        src_words, src_encoded = src_words[:keep], src_encoded[:keep]
        parts = [(original, src_orig), (derived, derive(derived, src_encoded, src_words, d.language, d))]
    blocks = [old_pack(s, lang.bos, lang.eos, cfg.pretrain.seq_len) for lang, s in parts]
    block_langs = [np.full(len(b), k, dtype=np.int64) for k, b in enumerate(blocks)]
    overlap = 1.0
    if len(parts) > 1:
        a, b = set().union(*map(set, parts[0][1])), set().union(*map(set, parts[1][1]))
        overlap = len(a & b) / max(1, len(a | b))
    return np.concatenate(blocks), np.concatenate(block_langs), overlap
