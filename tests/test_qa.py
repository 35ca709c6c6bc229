"""QA: SQuAD EM/F1 on hand-worked cases, exact answer spans under Inversion / Transliteration, the SQuAD
JSON loader, and the refusal of Permutation."""
import json

import numpy as np
import pytest

from xlt_helpers import data as D
from xlt_helpers.encoding import load_encoded
from xlt_helpers.errors import DataFormatError
from xlt_helpers.metrics import exact_match, qa_scores, squad_f1, squad_normalize
from xlt_helpers.qa import encode_qa, predict_answers, sentence_starts, unsupported_reason, windows, word_spans
from xlt_helpers.tasks import get_task
from xlt_helpers.tokenizer import split_words, train_tokenizer
from xlt_helpers.transformations import DerivedLanguage

# ------------------------------------------------------------------------------------ EM / F1


def test_word_spans_follow_the_project_segmentation():
    texts = [CONTEXT, "  «Bonjour», dit-il…  (ok)!", "नन्दा देवी। क्या?", "قال: «نعم»، ثم ذهب."]
    texts += [e.context for e in D.load_task("qa", "hi", "test", max_examples=30)]
    for text in texts:
        assert [text[a:b] for a, b in word_spans(text)] == split_words(text)


def test_squad_normalisation_by_hand():
    assert squad_normalize("The  Cat's hat!") == "cats hat"
    assert squad_normalize("An apple, a day.") == "apple day"
    assert squad_normalize("theatre Anthem") == "theatre anthem"  # articles only as whole words
    assert squad_normalize("  A\tthe\nan ") == ""


def test_exact_match_and_f1_by_hand():
    assert exact_match("the Denver Broncos", "Denver Broncos!") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0
    # pred {denver, broncos, won} vs gold {denver, broncos}: P = 2/3, R = 1, F1 = 0.8
    assert squad_f1("Denver Broncos won", "the Denver Broncos") == pytest.approx(0.8)
    # repeated tokens count with multiplicity: common = {y: 2}; P = R = 2/3
    assert squad_f1("x y y", "y y z") == pytest.approx(2 / 3)
    assert squad_f1("1920s", "the 1930s") == 0.0
    # both empty after normalisation: EM 1, F1 0 (the official script's behaviour)
    assert exact_match("a", "the") == 1.0 and squad_f1("a", "the") == 0.0
    # the best gold answer counts: (1 + 0) / 2 for EM; F1 (1 + 2/3 * ... ) worked below
    scores = qa_scores(["Broncos", "in the 1920s"], [["Denver Broncos", "Broncos"], ["1920s", "late 1920s"]])
    assert scores["em"] == pytest.approx(0.5)
    # q1: F1 1 (second gold); q2: pred {in, 1920s} vs {1920s}: P 1/2, R 1 -> 2/3; vs {late, 1920s}: 1/2
    assert scores["f1"] == pytest.approx((1 + 2 / 3) / 2)
    with pytest.raises(ValueError):
        qa_scores(["x"], [])


# ------------------------------------------------------------------------------------ spans

CONTEXT = ("Quantum field theory began in the 1920s. It was developed by Paul Dirac, who lived in "
           "Cambridge! Was it useful? Yes, it predicted the positron (an anti-electron) in 1931.")
ANSWERS = ["1920s", "Paul Dirac", "Cambridge", "the positron", "1931", "Quantum field theory",
           "anti-electron", "It was developed"]


def example(answer: str, k: int = 0) -> D.QAExample:
    return D.QAExample(f"q{k}", f"Which fact number {k}?", CONTEXT, ((answer, CONTEXT.index(answer)),))


@pytest.fixture(scope="module")
def tok():
    corpus = [CONTEXT, "Which fact number one two three?", "the cat sat on the mat .", "Paris is big. It is old."] * 20
    return train_tokenizer(corpus, 400)


def words(text: str) -> str:
    """The text as the tokenizer sees it (words of split_words joined by spaces): what decoding gives back."""
    return " ".join(split_words(text))


def undo(ids: list[int], spec: str, V: int) -> list[int]:
    """Independent inverse of the derived language, written out by hand: shift back, then un-reverse."""
    if "translit" in spec:
        assert all(i >= V for i in ids), "a transliterated span must use only the new vocabulary"
        ids = [i - V for i in ids]
    if "inv" in spec:
        ids = ids[::-1]
    return ids


@pytest.mark.parametrize("spec", ["orig", "inv", "translit", "translit+inv", "inv+translit"])
@pytest.mark.parametrize("max_len", [256, 24])
def test_gold_answer_is_recovered_from_the_transformed_span(tok, spec, max_len):
    V = tok.get_vocab_size()
    lang = DerivedLanguage(spec, V)
    for k, answer in enumerate(ANSWERS):
        for train in (True, False):
            feats = encode_qa([example(answer, k)], tok, lang, max_len, train=train)
            positive = [f for f in feats if f.label != (0, 0)]
            assert positive, (spec, answer)
            for f in positive:
                s, e = f.label
                assert f.offset <= s <= e < len(f.input_ids) - 1
                assert tok.decode(undo(list(f.input_ids[s:e + 1]), spec, V)).strip() == words(answer)
            if max_len == 256:
                assert len(feats) == 1


@pytest.mark.parametrize("spec", ["orig", "inv", "inv_word", "translit", "translit+inv", "translit0.5+inv_word"])
def test_a_perfect_span_prediction_scores_exact_match_one(tok, spec):
    """One-hot logits on the gold positions of one window decode back to the gold text in the original."""
    lang = DerivedLanguage(spec, tok.get_vocab_size())
    examples = [example(a, k) for k, a in enumerate(ANSWERS)]
    feats = encode_qa(examples, tok, lang, 24, train=False)
    logits, chosen = [], set()
    for f in feats:
        start, end = np.zeros(len(f.input_ids)), np.zeros(len(f.input_ids))
        if f.label != (0, 0) and id(f.context) not in chosen:
            chosen.add(id(f.context))
            start[f.label[0]] = end[f.label[1]] = 10.0
        logits.append((start, end))
    answers, contexts = predict_answers(feats, logits)
    assert [c.example.id for c in contexts] == [e.id for e in examples]
    assert answers == ANSWERS
    assert qa_scores(answers, [[a] for a in ANSWERS]) == {"em": 1.0, "f1": 1.0}


def test_windows_cover_the_context_and_training_keeps_one_negative(tok):
    lang = DerivedLanguage("inv", tok.get_vocab_size())
    test_feats = encode_qa([example("1931")], tok, lang, 20, train=False)
    n_tokens = len(tok.encode(split_words(CONTEXT), is_pretokenized=True, add_special_tokens=False).ids)
    assert len(test_feats) > 3
    assert sorted({i for f in test_feats for i in f.source}) == list(range(n_tokens))
    assert all(len(f.input_ids) <= 20 for f in test_feats)
    train_feats = encode_qa([example("1931")], tok, lang, 20, train=True, seed=3)
    negatives = [f for f in train_feats if f.label == (0, 0)]
    assert len(negatives) == 1 and len(train_feats) == 1 + sum(f.label != (0, 0) for f in test_feats)
    assert windows(10, 4) == [0, 3, 6] and windows(4, 4) == [0]


def test_answers_across_a_sentence_boundary_stay_contiguous_for_training(tok):
    ctx = "Paris is big. It is old."
    ex = D.QAExample("x", "What?", ctx, (("big. It", 9),))
    assert sentence_starts(ctx) == [0, 14] and sentence_starts(ctx, [(9, 16)]) == [0]
    V = tok.get_vocab_size()
    for spec in ("inv", "translit+inv"):
        [f] = encode_qa([ex], tok, DerivedLanguage(spec, V), 64, train=True)
        s, e = f.label
        assert tok.decode(undo(list(f.input_ids[s:e + 1]), spec, V)).strip() == "big . It"


def test_permutation_is_refused_for_qa(tok):
    V = tok.get_vocab_size()
    for spec in ("perm", "perm_word", "translit+perm"):
        assert "Permutation is not supported for QA" in unsupported_reason(spec)
        with pytest.raises(ValueError, match="Permutation is not supported for QA"):
            encode_qa([example("1931")], tok, DerivedLanguage(spec, V), 64)
        with pytest.raises(ValueError, match="Permutation is not supported for QA"):
            load_encoded("qa", "en", "test", tok, DerivedLanguage(spec, V), 64, 2)
    for spec in ("orig", "inv", "inv_word", "translit", "translit0.25+inv", None):
        assert unsupported_reason(spec) is None
    assert get_task("qa").metrics == ("f1", "em")


# ------------------------------------------------------------------------------------ loader

def _squad(tmp_path, obj) -> str:
    path = tmp_path / "q.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def _doc(context="Paris is big.", answers=None, **qa):
    answers = [{"text": "Paris", "answer_start": 0}] if answers is None else answers
    return {"data": [{"paragraphs": [{"context": context,
                                      "qas": [{"id": "a", "question": "Where?", "answers": answers, **qa}]}]}]}


def test_squad_loader_reads_and_normalises(tmp_path):
    assert D.read_squad_json(_squad(tmp_path, _doc())) == [
        D.QAExample("a", "Where?", "Paris is big.", (("Paris", 0),))]
    # a decomposed e-acute before the answer: NFC shortens the context, the start moves with it
    ctx = "Cafe\u0301 de Paris"
    [ex] = D.read_squad_json(_squad(tmp_path, _doc(ctx, [{"text": "Paris", "answer_start": 9}])))
    assert ex.context == "Caf\u00e9 de Paris" and ex.answers == (("Paris", 8),)
    assert ex.context[8:13] == "Paris"


@pytest.mark.parametrize("obj, line, expect", [
    ('{"data": [\n{"paragraphs": ]}', 2, "valid JSON"),
    ({"version": 1}, None, '"data" list'),
    ({"data": [{"paragraphs": [{"context": "x", "qas": "no"}]}]}, None, "data[0].paragraphs[0]"),
    (_doc(answers=[{"text": "", "answer_start": 0}]), None, "unlabelled"),
    (_doc(answers=[]), None, "non-empty \"answers\""),
    (_doc(answers=[{"text": "Paris", "answer_start": 3}]), None, "answer text at answer_start 3"),
    (_doc(answers=[{"text": "Paris", "answer_start": "0"}]), None, "int \"answer_start\""),
    (_doc(id=""), None, "qas[0]: a non-empty string \"id\""),
])
def test_squad_loader_bad_inputs(tmp_path, obj, line, expect):
    with pytest.raises(DataFormatError) as exc:
        D.read_squad_json(_squad(tmp_path, obj))
    assert exc.value.line == line and expect in str(exc.value) and "q.json" in str(exc.value)


def test_qa_registry_and_real_files():
    assert D.has_task("qa", "en") and D.has_task("qa", "ar") and D.has_task("qa", "hi")
    assert not D.has_task("qa", "fr")
    assert "MANIFEST" in D.language_spec("fr")["missing"]["qa"]
    with pytest.raises(ValueError, match="no 'qa' data"):
        D.load_task("qa", "fr", "test")
    root = D.data_dir()
    with pytest.raises(DataFormatError, match="unlabelled"):  # XTREME blanked the TyDiQA dev answers
        D.read_squad_json(root / "qa/ar/tydiqa.goldp.ar.dev.json")
    xquad = {lang: D.load_task("qa", lang, "test") for lang in ("en", "ar", "hi")}
    assert all(len(v) == 1190 for v in xquad.values())
    assert [e.id for e in xquad["en"]] == [e.id for e in xquad["hi"]]  # XQuAD is parallel
    assert len(D.load_task("qa", "en", "train")) == 3696
