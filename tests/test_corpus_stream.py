"""Streaming corpus preparation gives exactly the blocks of the in-memory path it replaced.

``benchmarks/corpus_reference.py`` keeps the previous ``build_pretraining_data`` (whole corpus in memory,
Python lists) as the oracle; ``STORED`` holds hashes of blocks computed with the code before the change
(commit 3cc241a) at ``demo`` scale, where the reference would be slow.
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xlt_helpers import corpus
from xlt_helpers import token_store as TS
from xlt_helpers.corpus import build_pretraining_data, pack
from xlt_helpers.data import load_pretraining_corpus
from xlt_helpers.errors import DataFormatError
from xlt_helpers.run_config import resolve
from xlt_helpers.tokenizer import encode_words_batch, joined_words, load_or_train_tokenizer, split_lines, split_words

pytestmark = pytest.mark.slow  # tokenizes and packs corpora

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from corpus_reference import old_pack as _old_pack  # noqa: E402
from corpus_reference import old_split_words as _old_split_words  # noqa: E402
from corpus_reference import reference_blocks as _reference  # noqa: E402


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))


# ---------------------------------------------------------------- word segmentation: one regex pass
def test_regex_word_classes_match_str_split_and_unicode_punctuation():
    import re
    space = re.compile(r"\s")
    for i in range(sys.maxunicode + 1):
        c = chr(i)
        assert (space.match(c) is not None) == c.isspace(), hex(i)
    text = "".join(chr(i) for i in range(0x20, 0x3000) if not chr(i).isspace())
    assert split_words(text) == _old_split_words(text)


_ALPHABET = st.sampled_from(list("ab é\u0301-.,'\"!?()«»¿。、\t\u00a0\u2028\u3000xyz1") + ["--", "...", " \u200b"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_ALPHABET, max_size=12).map("".join), min_size=1, max_size=6))
def test_split_words_and_batch_splits_equal_the_old_segmentation(sentences):
    sentences = [s.replace("\u2028", " ") for s in sentences]
    for s in sentences:
        assert split_words(s) == _old_split_words(s)
    assert joined_words(sentences) == [" ".join(_old_split_words(s)) for s in sentences]
    flat = [w for s in sentences for w in (*_old_split_words(s), "\n")]
    assert split_lines(sentences) == flat


def test_split_on_real_corpora():
    for lang in ("en", "fr", "ar", "hi"):
        sentences = load_pretraining_corpus(lang, max_sentences=3000)
        assert [split_words(s) for s in sentences] == [_old_split_words(s) for s in sentences], lang
        assert joined_words(sentences) == [" ".join(_old_split_words(s)) for s in sentences], lang


# ---------------------------------------------------------------- the token store
def test_token_store_equals_encode_words_batch_in_one_or_two_processes():
    text = TS.CorpusText("hi", max_sentences=4000)
    sentences = list(text)
    assert sentences == load_pretraining_corpus("hi", max_sentences=4000)
    tok = load_or_train_tokenizer(["hi"], [text], 400)
    ref = encode_words_batch(tok, [split_words(s) for s in sentences])
    for workers, chunk in ((1, None), (1, 20_000), (2, 50_000)):
        got = list(TS.encode_corpus(tok, text, workers=workers, chunk_bytes=chunk))
        assert len(got) > 1 or chunk is None
        lengths = np.concatenate([g[1] for g in got])
        assert lengths.tolist() == [len(r[0]) for r in ref], (workers, chunk)
        assert np.concatenate([g[0] for g in got]).tolist() == [t for r in ref for t in r[0]]
    joined = [" ".join(_old_split_words(s)) for s in sentences]
    assert list(TS.training_text(text, workers=2, chunk_bytes=50_000)) == joined
    assert list(TS.training_text(TS.CorpusText("hi", max_sentences=1234), workers=2, chunk_bytes=50_000)) == joined[:1234]
    store = TS.token_store(tok, text, workers=1)
    assert store.n_sentences == len(sentences)
    flat, lengths = zip(*store.chunks(10, 3000, sentences=512))
    assert np.concatenate(flat).tolist() == [t for r in ref[10:3000] for t in r[0]]


def test_corpus_text_reports_bad_bytes_only_when_reached(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "pretrain/ar").mkdir(parents=True)
    (root / "pretrain/ar/saudinewsnet.txt").write_bytes(
        "  one  \n\n".encode() + b"two\nthree\nfour\nfive\n\xff\xfe broken\n")
    monkeypatch.setenv("XLT_DATA_DIR", str(root))
    assert list(TS.CorpusText("ar", max_sentences=5)) == ["one", "two", "three", "four", "five"]
    with pytest.raises(DataFormatError, match=r"saudinewsnet.txt:7: expected UTF-8"):
        list(TS.CorpusText("ar"))
    with pytest.raises(ValueError, match="valid domains"):
        TS.CorpusText("ar", domain="nope")


def test_pack_carries_sentences_across_chunks():
    sentences = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14], [15, 16, 17, 18, 19, 20, 21]]
    assert np.array_equal(pack(sentences, 0, 2, 4), _old_pack(sentences, 0, 2, 4))


# ---------------------------------------------------------------- the identity: same blocks, same order
CASES = [
    {},
    {"data.transformation": "translit"},
    {"data.transformation": "translit+inv"},
    {"data.transformation": "inv+perm", "pretrain.seed": 1},
    {"data.transformation": "translit", "data.corpus_setting": "nonparallel"},
    {"data.transformation": "translit", "data.corpus_setting": "other_domain"},
    {"data.transformation": "translit+inv", "data.derived_fraction": 0.5},
    {"data.transformation": "translit", "data.shift_special": True, "pretrain.seed": 3},
    {"data.second_language": "fr"},
    {"data.transformation": "syntax:fr"},
]


@pytest.mark.parametrize("overrides", CASES, ids=lambda o: json.dumps(o, sort_keys=True))
def test_streamed_blocks_equal_the_in_memory_blocks(overrides):
    cfg = resolve("test", overrides)
    _, data = build_pretraining_data(cfg)
    blocks, langs, overlap = _reference(cfg)
    assert isinstance(data.blocks, np.memmap)
    assert np.array_equal(data.blocks, blocks) and np.array_equal(data.langs, langs)
    assert data.overlap == overlap
    assert data.n_tokens == blocks.size


def test_streamed_blocks_equal_with_several_chunks_and_workers(monkeypatch):
    cfg = resolve("test", {"data.transformation": "translit+perm", "data.pretrain_sentences": 3000,
                           "data.corpus_setting": "nonparallel", "pretrain.seq_len": 64})
    monkeypatch.setattr(TS, "CHUNK_BYTES", 30_000)
    monkeypatch.setattr(corpus, "default_workers", lambda text: 2)  # the tokenizer's training text in 2 processes
    _, data = build_pretraining_data(cfg, workers=2)
    assert len(list(TS.CorpusText("en", max_sentences=3000).chunks())) > 5
    blocks, langs, overlap = _reference(cfg)
    assert np.array_equal(data.blocks, blocks) and np.array_equal(data.langs, langs) and data.overlap == overlap


# Hashes of (blocks as int64, langs as int64), block count and overlap from the code before streaming, on
# the `demo` corpus of that time (5,000 sentences; `demo` has 2,000 since 2026-12-03, hence the override).
STORED = {
    'demo {"data.transformation": "translit"}': ['8199ca9aa9ac0e011108c03e014483d8c81758d5', 3180, '0.0'],
    'demo {"data.transformation": "translit+inv", "pretrain.seed": 2}': ['17d0d8e487fc559a0b0bc0b704bc6e6c6ec08ccb', 3180, '0.0'],
    'demo {}': ['b1712039f83a95f8ce5397b29f553f03080c2c97', 1590, '1.0'],
}


@pytest.mark.parametrize("key", list(STORED))
def test_demo_blocks_equal_those_of_the_previous_code(key):
    preset, overrides = key.split(" ", 1)
    _, data = build_pretraining_data(resolve(preset, {"data.pretrain_sentences": 5000, **json.loads(overrides)}))
    h = hashlib.sha1(np.ascontiguousarray(data.blocks, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(data.langs, dtype=np.int64).tobytes())
    assert [h.hexdigest(), data.blocks.shape[0], repr(data.overlap)] == STORED[key]


def test_cached_blocks_are_reused_and_keyed_by_the_config():
    cfg = resolve("test", {"data.transformation": "translit"})
    _, a = build_pretraining_data(cfg)
    _, b = build_pretraining_data(cfg)
    assert a.blocks.filename == b.blocks.filename
    _, c = build_pretraining_data(resolve("test", {"data.transformation": "translit", "pretrain.seq_len": 16}))
    assert c.blocks.filename != a.blocks.filename and c.blocks.shape[1] == 16
