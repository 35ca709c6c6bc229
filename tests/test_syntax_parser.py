"""End-to-end test of the local parser on a tiny UDPipe model (200 sentences, 1 iteration: a few seconds).

The full per-language parsers are trained once with `python -m xlt_helpers.syntax parser train LANG` (minutes);
set XLT_TEST_FULL_PARSER=1 to also check a cached full English parser's held-out LAS.
"""
from __future__ import annotations

import itertools
import json
import os

import pytest

from xlt_helpers.config import data_dir
from xlt_helpers.syntax import apply_order, learn_ordering_model, read_conllu, reorder
from xlt_helpers.syntax import parser as P
from xlt_helpers.syntax.tree import is_projective, is_tree

pytest.importorskip("ufal.udpipe")

TINY = P.ParserOptions(max_train_sentences=200, tagger_iterations=1, parser_iterations=1, hidden_layer=32)


@pytest.fixture(scope="module")
def trees():
    return list(itertools.islice(read_conllu(data_dir() / "ud/en/en_lines-ud-train.conllu", surface=True), 400))


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory, trees):
    path = tmp_path_factory.mktemp("parser") / "tiny.udpipe"
    path.write_bytes(P.train_udpipe(P.spread_sample(trees, TINY.max_train_sentences), TINY))
    return path


@pytest.mark.slow
def test_tiny_parser_end_to_end(tiny_model_path, trees):
    model = P.load_udpipe(tiny_model_path)
    held_out = trees[200:260]
    sentences = [list(t.words) for t in held_out] + [["Dogs", "bark", "."], ["Hello"], []]
    parsed = P.parse_with(model, sentences)
    assert [list(t.words) for t in parsed] == sentences  # words come back exactly as given
    for tree in parsed[:-1]:
        assert is_tree(tree.heads) and is_projective(tree.heads)  # projective transition system
        assert sum(h == 0 for h in tree.heads) == 1
        assert all(tree.upos) and all(tree.deprels)
    scores = P.attachment_scores(held_out, parsed[: len(held_out)])
    assert scores["words"] == sum(map(len, held_out))
    assert scores["upos"] > 0.5 and scores["uas"] > 0.2  # even a one-iteration model beats chance by far
    # the parsed trees feed the reordering directly
    model_hi = learn_ordering_model("hi", read_conllu(data_dir() / "ud/hi/hi_hdtb-ud1-2015-dev.conllu"))
    for tree in parsed[:20]:
        order = reorder(tree, "en~hi@N~hi@V", 0, models={"hi": model_hi})
        assert sorted(apply_order(tree, order).words) == sorted(tree.words)


def test_parse_api_uses_the_cached_parser(tiny_model_path, monkeypatch, tmp_path):
    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path))
    P.load_parser.cache_clear()
    target = P.parser_path("en")
    assert target.parent == tmp_path / "parsers"
    target.write_bytes(tiny_model_path.read_bytes())  # stands in for the trained-once English parser
    try:
        (tree,) = P.parse("en", [["The", "cat", "sleeps", "."]])
    finally:
        P.load_parser.cache_clear()
    assert tree.words == ("The", "cat", "sleeps", ".") and is_tree(tree.heads)


def test_arabic_forms_are_normalised_but_returned_unchanged():
    strip = P.NORMALIZERS["strip_arabic_diacritics"]
    assert strip("اَلبَصرَةَ") == "البصرة"
    assert strip("ـَ") == "ـَ"  # never reduced to nothing


def test_spread_sample_covers_the_whole_list():
    assert P.spread_sample(list(range(10)), 3) == [0, 3, 6]
    assert P.spread_sample(list(range(3)), None) == [0, 1, 2]


@pytest.mark.skipif(os.environ.get("XLT_TEST_FULL_PARSER") != "1", reason="set XLT_TEST_FULL_PARSER=1 (needs a cached parser)")
def test_cached_full_parser_card():
    card = json.loads(P.parser_path("en").with_suffix(".json").read_text(encoding="utf-8"))
    assert card["las"] > 0.6
