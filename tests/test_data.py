"""Tests for xlt_helpers.data: the registry, the real staged data, and every bad-input case."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from xlt_helpers import data as D
from xlt_helpers import tasks
from xlt_helpers.config import data_dir
from xlt_helpers.errors import DataFormatError


@pytest.fixture(autouse=True)
def _default_registry(monkeypatch):
    monkeypatch.delenv("XLT_LANGUAGES_FILE", raising=False)


def _real_data_available() -> bool:
    try:
        return (data_dir() / "MANIFEST.md").is_file()
    except FileNotFoundError:
        return False


needs_data = pytest.mark.skipif(not _real_data_available(), reason="staged data dir (../shared/data) not found")


def _registered() -> list[tuple[str, str, str]]:
    return [(task, lang, split)
            for lang in D.languages()
            for task, splits in D.language_spec(lang)["tasks"].items()
            for split in splits]


def _assert_error(excinfo: pytest.ExceptionInfo, filename: str, line: int | None, *expect: str) -> None:
    """The DataFormatError names the file, the 1-based line and the expectation."""
    err = excinfo.value
    assert isinstance(err, DataFormatError)
    msg = str(err)
    assert filename in msg, msg
    assert Path(err.path).name == Path(filename).name
    assert err.line == line, msg
    if line is not None:
        assert f"{filename}:{line}" in msg, msg
    for piece in expect:
        assert piece in msg, msg


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


# ------------------------------------------------------------------------------------ constants

def test_label_inventories():
    assert tasks.NLI_LABELS == ("entailment", "neutral", "contradiction")
    assert tasks.NER_TAGS == ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
    assert len(tasks.UPOS_TAGS) == 17 and len(set(tasks.UPOS_TAGS)) == 17
    assert {"X", "SYM", "CCONJ", "PROPN"} <= set(tasks.UPOS_TAGS)
    assert "_" not in tasks.UPOS_TAGS and "CONJ" not in tasks.UPOS_TAGS
    assert D.label_names("xnli") == tasks.NLI_LABELS
    assert D.label_names("ner") == tasks.NER_TAGS
    assert D.label_names("pos") == tasks.UPOS_TAGS
    assert D.label_names("qa") == () and D.label_names("retrieval") == ()  # spans and retrieval: no labels
    with pytest.raises(ValueError, match="xnli, ner, pos, qa, retrieval"):
        D.label_names("parse")


# ------------------------------------------------------------------------------------- registry

def test_registry_languages_and_choices():
    assert D.languages() == ["en", "fr", "ar", "hi"]
    en = D.language_spec("en")
    assert en["pretrain"]["paths"] == ["pretrain/en/enwiki_wikiextractor_sample.txt"]
    assert en["pretrain_other_domain"]["paths"] == ["pretrain/en/eltec_eng_novels.txt"]
    assert [Path(p).name for p in D.language_spec("fr")["pretrain"]["paths"]] == [
        "cv_fr_debats-assemblee-nationale.txt", "cv_fr_wikisource.txt", "cv_fr_gutenberg.txt"]
    hi_pre = D.language_spec("hi")["pretrain"]["paths"]
    assert len(hi_pre) == 4 and all(p.endswith(".txt") and "COPYING" not in p for p in hi_pre)
    for lang in D.languages():
        xnli = D.language_spec(lang)["tasks"]["xnli"]
        assert xnli["train"]["paths"] == [f"nli/{lang}/xnli.test.{lang}.tsv"]  # MANIFEST stand-in
        assert xnli["test"]["paths"] == [f"nli/{lang}/xnli.dev.{lang}.tsv"]
        pos = D.language_spec(lang)["tasks"]["pos"]
        assert pos["test"]["paths"] == [f"pos_xtreme/{lang}/udpos.test.{lang}.tsv"]
    fr = D.language_spec("fr")["tasks"]
    assert fr["ner"]["test"]["paths"] == ["ner/fr/panx.dev.fr.tsv"] and "dev" not in fr["ner"]
    assert fr["pos"]["train"]["format"] == "conllu" and len(fr["pos"]["train"]["paths"]) == 2
    hi = D.language_spec("hi")["tasks"]["pos"]
    assert hi["train"]["paths"] == ["ud/hi/hi_hdtb-ud1-2015-dev.conllu"] and "dev" not in hi
    # language_spec hands out copies: mutating one does not corrupt the registry
    en["tasks"]["xnli"]["train"]["paths"].append("oops")
    assert D.language_spec("en")["tasks"]["xnli"]["train"]["paths"] == ["nli/en/xnli.test.en.tsv"]
    for lang in D.languages():
        assert set(D.language_spec(lang)["hub"]) == {"xnli", "ner", "pos"} | ({"qa"} if lang != "fr" else set())


@needs_data
def test_every_registered_file_exists():
    root = data_dir()
    for lang in D.languages():
        spec = D.language_spec(lang)
        entries = [v for k, v in spec.items() if k.startswith("pretrain")]
        entries += [e for splits in spec["tasks"].values() for e in splits.values()]
        for entry in entries:
            for rel in entry["paths"]:
                assert (root / rel).is_file(), rel


def test_unknown_names_list_valid_choices():
    with pytest.raises(ValueError, match=r"unknown language 'de'.*en, fr, ar, hi"):
        D.language_spec("de")
    with pytest.raises(ValueError, match=r"unknown language 'de'.*en, fr, ar, hi"):
        D.load_task("xnli", "de", "train")
    with pytest.raises(ValueError, match=r"unknown task 'nli'.*xnli, ner, pos"):
        D.load_task("nli", "en", "train")
    with pytest.raises(ValueError, match=r"unknown split 'valid'.*train, dev, test"):
        D.load_task("ner", "en", "valid")
    with pytest.raises(ValueError, match=r"unknown split 'dev'.*train, test"):
        D.load_task("pos", "hi", "dev")
    with pytest.raises(ValueError, match=r"unknown source 'web'.*local, hub"):
        D.load_task("ner", "en", "train", source="web")
    with pytest.raises(ValueError, match=r"unknown pretraining domain 'news'.*main, other_domain"):
        D.load_pretraining_corpus("en", domain="news")
    with pytest.raises(ValueError, match=r"valid domains are main$"):
        D.load_pretraining_corpus("ar", domain="other_domain")
    with pytest.raises(ValueError, match="non-negative"):
        D.load_task("ner", "en", "train", max_examples=-1)


# ------------------------------------------------------------------------------ real data: shapes

@needs_data
@pytest.mark.parametrize("task,language,split", _registered())
def test_load_every_registered_split(task, language, split):
    examples = D.load_task(task, language, split, max_examples=7)
    assert len(examples) == 7
    labels = D.label_names(task)
    if task == "qa":
        for ex in examples:
            assert isinstance(ex, D.QAExample) and ex.question and ex.answers
            assert all(ex.context[s:s + len(t)] == t and t for t, s in ex.answers)
    elif task == "retrieval":
        assert all(isinstance(s, str) and s and s == s.strip() for s in examples)
    elif task == "xnli":
        for ex in examples:
            assert isinstance(ex, D.NLIPair)
            assert ex.premise and ex.hypothesis
            assert ex.premise == ex.premise.strip() and "\r" not in ex.hypothesis
            assert 0 <= ex.label < len(tasks.NLI_LABELS)
    else:
        for ex in examples:
            assert isinstance(ex, D.TaggedSentence)
            assert isinstance(ex.words, tuple) and isinstance(ex.tags, tuple)
            assert len(ex.words) == len(ex.tags) > 0
            assert set(ex.tags) <= set(labels)
            assert all(w and "\t" not in w for w in ex.words)
            assert not any(w.startswith(f"{language}:") for w in ex.words)  # WikiANN prefix stripped


@needs_data
def test_real_data_contents():
    # XNLI dev files have CRLF line ends; labels must still parse, and the split is balanced
    pairs = D.load_task("xnli", "en", "test")
    assert len(pairs) == 2490
    assert [sum(p.label == i for p in pairs) for i in range(3)] == [830, 830, 830]
    assert pairs[0] == D.NLIPair("And he said, Mama, I'm home.",
                                 "He called his mom as soon as the school bus dropped him off.", 1)
    assert len(D.load_task("xnli", "fr", "train")) == 5010
    ner = D.load_task("ner", "en", "dev", max_examples=1)[0]
    assert ner.words[:2] == ("Sioux", "Falls") and ner.tags[:2] == ("B-ORG", "I-ORG")
    # French POS train = Sequoia train followed by ParTUT train, multiword tokens skipped
    root = data_dir()
    seq = D.read_conllu(root / "ud/fr/fr_sequoia-ud-train.conllu")
    par = D.read_conllu(root / "ud/fr/fr_partut-ud-train.conllu")
    fr_train = D.load_task("pos", "fr", "train")
    assert fr_train == seq + par
    assert D.load_task("pos", "fr", "train", max_examples=len(seq) + 3) == seq + par[:3]
    # 50,502 + 24,107 syntactic words: the 1,360 + 806 multiword-token range lines are not words
    assert sum(len(s.words) for s in fr_train) == 74609
    # Hindi POS train is UD v1: CONJ is renamed to CCONJ, and the words are NFC like XTREME's
    hi_train = D.load_task("pos", "hi", "train")
    assert len(hi_train) == 1659 and any("CCONJ" in s.tags for s in hi_train)
    hi_xtreme_dev = D.read_token_tsv(root / "pos_xtreme/hi/udpos.dev.hi.tsv", tasks.UPOS_TAGS)
    assert [s.words for s in hi_train] == [s.words for s in hi_xtreme_dev]
    with pytest.raises(DataFormatError) as exc:  # without the registry's tag_map the UD v1 tag is refused
        D.read_conllu(root / "ud/hi/hi_hdtb-ud1-2015-dev.conllu")
    assert exc.value.found == "CONJ"


@needs_data
def test_ner_train_loads_whole():  # its speed is a benchmark's business (benchmarks/), not a timed unit test's
    sents = D.load_task("ner", "en", "train")
    assert len(sents) == 20000 and sum(len(s.words) for s in sents) == 160394


@needs_data
def test_pretraining_corpus():
    for lang in D.languages():
        sents = D.load_pretraining_corpus(lang, max_sentences=50)
        assert len(sents) == 50
        assert all(s and s == s.strip() for s in sents)
    other = D.load_pretraining_corpus("en", "other_domain", max_sentences=10)
    assert len(other) == 10 and other != D.load_pretraining_corpus("en", max_sentences=10)
    assert D.load_pretraining_corpus("hi", max_sentences=0) == []


# --------------------------------------------------------------------- bad input (own tmp files)

@pytest.fixture
def fake_root(tmp_path, monkeypatch) -> Path:
    """An empty data dir used with the real registry: tests write registry paths into it."""
    monkeypatch.setenv("XLT_DATA_DIR", str(tmp_path))
    return tmp_path


def test_missing_file(fake_root):
    with pytest.raises(DataFormatError) as exc:
        D.load_task("xnli", "en", "train")
    _assert_error(exc, "xnli.test.en.tsv", None, "expected an existing file")
    with pytest.raises(DataFormatError) as exc:
        D.load_pretraining_corpus("ar", max_sentences=3)
    _assert_error(exc, "saudinewsnet.txt", None, "existing file")


def test_xnli_bad_inputs(fake_root):
    rel = "nli/en/xnli.test.en.tsv"
    good = "P one.\tH one.\tentailment\r\nP two.\tH two.\tcontradiction\n"
    _write(fake_root, rel, good + "P three.\tH three.\tneutral\textra\n")
    assert D.load_task("xnli", "en", "train", max_examples=2) == [
        D.NLIPair("P one.", "H one.", 0), D.NLIPair("P two.", "H two.", 2)]
    with pytest.raises(DataFormatError) as exc:
        D.load_task("xnli", "en", "train")
    _assert_error(exc, "xnli.test.en.tsv", 3, "3 tab-separated columns", "premise<TAB>hypothesis<TAB>label")

    _write(fake_root, rel, good + "\nP three.\tH three.\tmaybe\n")
    with pytest.raises(DataFormatError) as exc:
        D.load_task("xnli", "en", "train")
    _assert_error(exc, "xnli.test.en.tsv", 4, "entailment|neutral|contradiction", "'maybe'")

    _write(fake_root, rel, "P one.\tH one.\n")  # XTREME-style test file: labels stripped
    with pytest.raises(DataFormatError) as exc:
        D.load_task("xnli", "en", "train")
    _assert_error(exc, "xnli.test.en.tsv", 1, "3 tab-separated columns", "unlabelled")

    _write(fake_root, rel, "P one.\t \tneutral\n")
    with pytest.raises(DataFormatError) as exc:
        D.load_task("xnli", "en", "train")
    _assert_error(exc, "xnli.test.en.tsv", 1, "non-empty premise and hypothesis")


def test_wikiann_bad_inputs(fake_root):
    rel = "ner/hi/wikiann_rahimi.train.hi.iob"
    _write(fake_root, rel, "hi:नन्दा\tB-LOC\nhi:देवी\tI-LOC\n\nhi:x\tO\n")
    assert D.load_task("ner", "hi", "train") == [
        D.TaggedSentence(("नन्दा", "देवी"), ("B-LOC", "I-LOC")), D.TaggedSentence(("x",), ("O",))]
    cases = [
        ("hi:a\tO\nhi:b\tB-MISC\n", 2, ("a tag in", "B-PER"), "B-MISC"),
        ("hi:a\tO\n\nhi:b\tO\tO\n", 3, ("2 tab-separated columns", "token<TAB>tag"), None),
        ("hi:a\tO\nen:b\tO\n", 2, ("a token starting with 'hi:'",), "en:b"),
        ("hi:a\n", 1, ("2 tab-separated columns", "unlabelled"), None),
        ("hi:\tO\n", 1, ("non-empty token",), None),
    ]
    for text, line, expect, found in cases:
        _write(fake_root, rel, text)
        with pytest.raises(DataFormatError) as exc:
            D.load_task("ner", "hi", "train")
        _assert_error(exc, "wikiann_rahimi.train.hi.iob", line, *expect)
        if found is not None:
            assert exc.value.found == found


def test_unlabelled_ner_file_where_labels_needed(fake_root):
    # the French registry entry for train pointed at an unlabelled PAN-X test-style file
    _write(fake_root, "ner/fr/panx.train.fr.tsv", "Saxifrage\tB-LOC\n\n'\n''\n")
    with pytest.raises(DataFormatError) as exc:
        D.load_task("ner", "fr", "train")
    _assert_error(exc, "panx.train.fr.tsv", 3, "unlabelled", "a labelled file is needed")


def test_token_tsv_pos_bad_tags(fake_root):
    rel = "pos_xtreme/ar/udpos.test.ar.tsv"
    _write(fake_root, rel, "سوريا\tX\n:\tPUNCT\n\na\t_\n")
    with pytest.raises(DataFormatError) as exc:
        D.load_task("pos", "ar", "test")
    _assert_error(exc, "udpos.test.ar.tsv", 4, "a tag in ADJ|ADP")
    assert D.load_task("pos", "ar", "test", max_examples=1) == [D.TaggedSentence(("سوريا", ":"), ("X", "PUNCT"))]


CONLLU_OK = (
    "# sent_id = 1\n# text = Il va au marché.\n"
    "1\tIl\til\tPRON\t_\t_\t2\tnsubj\t_\t_\n"
    "2\tva\taller\tVERB\t_\t_\t0\troot\t_\t_\n"
    "3-4\tau\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "3\tà\tà\tADP\t_\t_\t5\tcase\t_\t_\n"
    "4\tle\tle\tDET\t_\t_\t5\tdet\t_\t_\n"
    "4.1\tvite\tvite\tADV\t_\t_\t_\t_\t2:advmod\t_\n"
    "5\tmarché\tmarché\tNOUN\t_\t_\t2\tobl\t_\t_\n"
    "6\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_\n\n"
)


def test_conllu_parsing_and_bad_inputs(fake_root):
    rel = "ud/fr/fr_sequoia-ud-train.conllu"
    _write(fake_root, rel, CONLLU_OK)
    _write(fake_root, "ud/fr/fr_partut-ud-train.conllu", "1\tet\tet\tCCONJ\t_\t_\t0\troot\t_\t_\n")
    got = D.load_task("pos", "fr", "train")
    assert got == [D.TaggedSentence(("Il", "va", "à", "le", "marché", "."),
                                    ("PRON", "VERB", "ADP", "DET", "NOUN", "PUNCT")),
                   D.TaggedSentence(("et",), ("CCONJ",))]
    cases = [
        (CONLLU_OK + "1\tun\tun\tDET\t_\t_\t0\troot\t_\n", 12, ("10 tab-separated columns", "CoNLL-U")),
        (CONLLU_OK + "1 un un DET _ _ 0 root _ _\n", 12, ("10 tab-separated columns",)),
        (CONLLU_OK + "1\tun\tun\tDT\t_\t_\t0\troot\t_\t_\n", 12, ("a UPOS tag in",)),
        (CONLLU_OK + "1\tun\tun\t_\t_\t_\t0\troot\t_\t_\n", 12, ("a UPOS tag in",)),
        (CONLLU_OK + "a\tun\tun\tDET\t_\t_\t0\troot\t_\t_\n", 12, ("an integer word ID",)),
    ]
    for text, line, expect in cases:
        _write(fake_root, rel, text)
        with pytest.raises(DataFormatError) as exc:
            D.load_task("pos", "fr", "train")
        _assert_error(exc, "fr_sequoia-ud-train.conllu", line, *expect)


def test_conllu_tag_map_and_nfc(tmp_path):
    # UD v1 CONJ is only accepted through a tag_map; precomposed nukta (U+095C) comes back NFC
    path = _write(tmp_path, "x.conllu", "1\t\u095c\t_\tNOUN\t_\t_\t0\troot\t_\t_\n2\tऔर\t_\tCONJ\t_\t_\t1\tcc\t_\t_\n")
    with pytest.raises(DataFormatError) as exc:
        D.read_conllu(path)
    _assert_error(exc, "x.conllu", 2, "a UPOS tag in")
    [sent] = D.read_conllu(path, tag_map={"CONJ": "CCONJ"})
    assert sent.tags == ("NOUN", "CCONJ")
    assert sent.words[0] == "\u0921\u093c"


def test_pretraining_stops_early_and_reports_bad_bytes(fake_root):
    path = fake_root / "pretrain/ar/saudinewsnet.txt"
    path.parent.mkdir(parents=True)
    path.write_bytes("  one  \n\n".encode() + b"two\nthree\nfour\nfive\n\xff\xfe broken\n")
    assert D.load_pretraining_corpus("ar", max_sentences=5) == ["one", "two", "three", "four", "five"]
    with pytest.raises(DataFormatError) as exc:  # only reached when reading past the 5th sentence
        D.load_pretraining_corpus("ar")
    _assert_error(exc, "saudinewsnet.txt", 7, "UTF-8")


# ------------------------------------------------------------------------------ registry handling

def test_new_language_is_just_a_registry_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_DATA_DIR", str(tmp_path))
    _write(tmp_path, "nli/de/dev.tsv", "Er kam.\tEr ging.\tcontradiction\n")
    _write(tmp_path, "ner/de/train.iob", "de:Berlin\tB-LOC\n")
    _write(tmp_path, "pretrain/de/a.txt", "Satz eins.\n")
    _write(tmp_path, "pretrain/de/b.txt", "\nSatz zwei.\n")
    reg = _write(tmp_path, "registry.yaml", """
de:
  name: German
  pretrain: {paths: [pretrain/de/a.txt, pretrain/de/b.txt], format: sentence_per_line}
  tasks:
    xnli: {test: {path: nli/de/dev.tsv, format: xnli_tsv}}
    ner: {train: {path: ner/de/train.iob, format: wikiann_iob}}
""")
    monkeypatch.setenv("XLT_LANGUAGES_FILE", str(reg))
    assert D.languages() == ["de"]
    assert D.load_task("xnli", "de", "test") == [D.NLIPair("Er kam.", "Er ging.", 2)]
    assert D.load_task("ner", "de", "train") == [D.TaggedSentence(("Berlin",), ("B-LOC",))]
    assert D.load_pretraining_corpus("de") == ["Satz eins.", "Satz zwei."]
    with pytest.raises(ValueError, match=r"no 'pos' data"):
        D.load_task("pos", "de", "train")


@pytest.mark.parametrize("body,expect", [
    ("de:\n  tasks:\n    ner: {train: {path: a.iob}}\n", "de.tasks.ner.train"),
    ("de:\n  tasks:\n    ner: {train: {path: a.iob, format: conllu}}\n", "'format' (one of wikiann_iob, token_tsv)"),
    ("de:\n  tasks:\n    parse: {train: {path: a.json, format: conllu}}\n", "task names among xnli, ner, pos, qa"),
    ("de:\n  tasks:\n    qa: {train: {path: a.json, format: squad}}\n", "'format' (one of squad_json)"),
    ("de:\n  tasks:\n    retrieval: {test: {path: a.txt, format: sentence_per_line, parallel: [en]}}\n",
     "de.tasks.retrieval.test.parallel"),
    ("de:\n  pretrain: {format: sentence_per_line}\n", "de.pretrain"),
])
def test_bad_registry(tmp_path, monkeypatch, body, expect):
    reg = _write(tmp_path, "bad.yaml", body)
    monkeypatch.setenv("XLT_LANGUAGES_FILE", str(reg))
    with pytest.raises(DataFormatError) as exc:
        D.languages()
    _assert_error(exc, "bad.yaml", None, expect)


def test_registry_yaml_syntax_error(tmp_path, monkeypatch):
    reg = _write(tmp_path, "broken.yaml", "de:\n  name: German\n  tasks: [unclosed\n")
    monkeypatch.setenv("XLT_LANGUAGES_FILE", str(reg))
    with pytest.raises(DataFormatError) as exc:
        D.languages()
    assert "broken.yaml:" in str(exc.value) and "valid YAML" in str(exc.value)
    assert isinstance(exc.value.line, int) and exc.value.line >= 3


# ------------------------------------------------------------------------------------ hub path

def test_hub_without_datasets_gives_instructions(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail even if installed
    with pytest.raises(ImportError) as exc:
        D.load_task("xnli", "fr", "train", max_examples=3, source="hub")
    assert "pip install datasets" in str(exc.value) and "XLT_ONLINE=1" in str(exc.value)
    with pytest.raises(ValueError, match=r"unknown split 'dev'.*train, test"):
        D.load_task("xnli", "fr", "dev", source="hub")
