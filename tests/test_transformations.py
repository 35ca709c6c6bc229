"""Property tests of the transformations: they must define proper derived languages."""
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xlt_helpers.transformations import (
    BOS, EOS, MASK, N_SPECIAL, PAD, DerivedLanguage, Segment, bio_to_entities, entities_to_bio, invert,
    permute, sentence_seed, transliterate, transliteration_table, word_level_order,
)

V = 300
sentences = st.lists(st.integers(N_SPECIAL, V - 1), min_size=0, max_size=40)


@given(sentences)
def test_inverting_twice_is_identity(s):
    assert invert(invert(s)) == s
    assert DerivedLanguage("inv+inv", V).transform_tokens(s) == s


@given(sentences, st.integers(0, 2**31))
def test_permutation_keeps_multiset_and_repeats_from_seed(s, seed):
    p = permute(s, seed)
    assert Counter(p) == Counter(s)
    assert permute(s, seed) == p
    lang = DerivedLanguage("perm", V, seed=seed)
    assert lang.transform_tokens(s) == DerivedLanguage("perm", V, seed=seed).transform_tokens(s)


def test_permutation_depends_on_seed_and_is_not_identity():
    s = list(range(N_SPECIAL, N_SPECIAL + 30))
    outs = {tuple(DerivedLanguage("perm", V, seed=k).transform_tokens(s)) for k in range(5)}
    assert len(outs) == 5 and tuple(s) not in outs
    assert sentence_seed(0, s) != sentence_seed(1, s)


def test_transliteration_is_a_bijection_with_zero_overlap():
    table = transliteration_table(V)
    words = table[N_SPECIAL:]
    assert len(set(words.tolist())) == V - N_SPECIAL                     # injective
    assert set(words.tolist()).isdisjoint(range(V))                       # 0 overlap with the original
    assert (words == np.arange(N_SPECIAL, V) + V).all()                   # id -> id + V
    assert [table[i] for i in (BOS, PAD, EOS, MASK)] == [BOS, PAD, EOS, MASK]  # specials shared


def test_shift_special_moves_boundaries_but_never_the_mask():
    table = transliteration_table(V, shift_special=True)
    assert table[BOS] == BOS + V and table[EOS] == EOS + V and table[PAD] == PAD + V
    assert table[MASK] == MASK
    lang = DerivedLanguage("translit", V, shift_special=True)
    assert (lang.bos, lang.eos) == (BOS + V, EOS + V)


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_partial_transliteration_maps_an_exact_fraction(fraction):
    table = transliteration_table(V, fraction, seed=3)
    moved = int((table[N_SPECIAL:] >= V).sum())
    assert moved == round(fraction * (V - N_SPECIAL))
    assert (transliteration_table(V, fraction, seed=3) == table).all()


@given(sentences)
def test_transliteration_round_trips(s):
    t = transliterate(s, transliteration_table(V))
    assert [x - V for x in t] == s


@given(sentences)
def test_composition_order_is_respected(s):
    ti = DerivedLanguage("translit+inv", V).transform_tokens(s)
    assert ti == invert(transliterate(s, transliteration_table(V)))
    # with a seeded reordering, the order of steps matters for the sentence seed, so compare explicitly
    tp = DerivedLanguage("translit+perm", V, seed=1).transform_tokens(s)
    tr = transliterate(s, transliteration_table(V))
    assert tp == permute(tr, sentence_seed(1, tr))
    pt = DerivedLanguage("perm+translit", V, seed=1).transform_tokens(s)
    assert pt == transliterate(permute(s, sentence_seed(1, s)), transliteration_table(V))


@given(st.lists(st.tuples(st.integers(N_SPECIAL, V - 1), st.sampled_from(["a", "b", None])), max_size=30),
       st.sampled_from(["inv", "perm", "translit+perm", "perm+inv"]))
def test_labels_stay_attached_to_their_tokens(pairs, spec):
    tokens = tuple(p[0] for p in pairs)
    labels = tuple((p[1], k) for k, p in enumerate(pairs))  # unique tags: each label names its token
    out = DerivedLanguage(spec, V, seed=2)(Segment(tokens, tuple(range(len(tokens))), labels))
    table = DerivedLanguage(spec, V).table
    for tok, (_, k) in zip(out.tokens, out.labels):
        assert tok == table[tokens[k]]


def test_word_level_inversion_keeps_subwords_of_a_word_together():
    seg = Segment((10, 11, 12, 13, 14), (0, 0, 1, 2, 2), ("B", None, "C", "D", None))
    out = DerivedLanguage("inv_word", V)(seg)
    assert out.tokens == (13, 14, 12, 10, 11)
    assert out.labels == ("D", None, "C", "B", None)
    assert word_level_order((0, 0, 1), [1, 0]) == [2, 0, 1]


def test_bio_is_repaired_after_inversion():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    ents = bio_to_entities(tags)
    assert entities_to_bio(invert(ents)) == ["B-LOC", "I-LOC", "B-LOC", "O", "B-PER", "I-PER"]
    assert entities_to_bio(ents) == tags  # round trip
    # unlabelled continuation positions (None) do not break an entity
    assert entities_to_bio(bio_to_entities(["B-ORG", None, "I-ORG"])) == ["B-ORG", None, "I-ORG"]


@given(st.lists(st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]), max_size=25), st.integers(0, 1000))
def test_repaired_bio_is_always_valid(tags, seed):
    out = entities_to_bio(permute(bio_to_entities(tags), seed))
    for k, t in enumerate(out):
        if t.startswith("I-"):
            assert k > 0 and out[k - 1][2:] == t[2:], out
    assert sorted(t[2:] for t in out if t != "O") == sorted(t[2:] for t in tags if t != "O")


def test_unknown_transformation_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown transformation 'flip'"):
        DerivedLanguage("translit+flip", V)
    with pytest.raises(ValueError, match="fraction"):
        DerivedLanguage("translit1.5", V)


# ---- corpus-level (batch) path: exactly the per-sentence output ---------------------------------
corpora = st.lists(st.lists(st.integers(0, V - 1), min_size=0, max_size=60), min_size=0, max_size=25)
TOKEN_LEVEL_SPECS = ["inv", "perm", "translit", "translit+inv", "translit+perm", "perm+translit", "inv+perm",
                     "perm+perm", "translit0.5+perm+inv"]


@settings(max_examples=60, deadline=None)
@given(corpora, st.sampled_from(TOKEN_LEVEL_SPECS), st.integers(0, 2**31))
def test_transform_corpus_equals_per_sentence(corpus, spec, seed):
    lang = DerivedLanguage(spec, V, seed=seed)
    assert lang.transform_corpus(corpus) == [lang.transform_tokens(s) for s in corpus]


def test_transform_corpus_long_and_repeated_sentences():
    rng = np.random.default_rng(1)
    corpus = [rng.integers(N_SPECIAL, V, size=n).tolist() for n in (0, 1, 2, 3, 300, 700, 2, 64, 65, 129)]
    corpus += corpus[:5]  # identical sentences are permuted identically
    for spec in ("perm", "translit+perm+inv"):
        lang = DerivedLanguage(spec, V, seed=7)
        assert lang.transform_corpus(corpus) == [lang.transform_tokens(s) for s in corpus]


def test_permutation_batch_falls_back_when_draws_run_out(monkeypatch):
    """With too few generator outputs per sentence the per-sentence function must take over, exactly."""
    import xlt_helpers.transformations as tr

    calls = {"n": 0}
    real = tr.permute_order

    def counting(n, seed):
        calls["n"] += 1
        return real(n, seed)

    rng = np.random.default_rng(2)
    corpus = [rng.integers(N_SPECIAL, V, size=n).tolist() for n in rng.integers(2, 80, size=200)]
    lang = DerivedLanguage("perm", V, seed=3)
    expected = [lang.transform_tokens(s) for s in corpus]
    monkeypatch.setattr(tr, "permute_order", counting)
    monkeypatch.setattr(tr, "PERM_EXTRA_DRAWS", -30)  # fewer draws than any shuffle of >16 tokens needs
    assert lang.transform_corpus(corpus) == expected
    assert calls["n"] > 50, "the fallback was not exercised"
    calls["n"] = 0
    monkeypatch.setattr(tr, "PERM_EXTRA_DRAWS", 16)
    assert lang.transform_corpus(corpus) == expected
    assert calls["n"] < 5, "the vectorised path should handle almost every sentence"


def test_transform_corpus_word_level_steps_go_sentence_by_sentence():
    corpus, words = [[10, 11, 12, 13, 14], [20, 21]], [[0, 0, 1, 2, 2], [0, 1]]
    lang = DerivedLanguage("inv_word", V)
    assert lang.transform_corpus(corpus, words) == [[13, 14, 12, 10, 11], [21, 20]]
    with pytest.raises(ValueError, match="word_ids"):
        lang.transform_corpus(corpus)
