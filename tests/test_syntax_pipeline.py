"""Syntax inside the pipeline: labels follow reordered words; a Syntax grid runs through every notebook."""
import pandas as pd

from xlt_helpers.config import REPO_ROOT
from xlt_helpers.grid.run import run_grid
from xlt_helpers.syntax import Tree
from xlt_helpers.transformations import DerivedLanguage, Segment, transliteration_table

V = 300


def _tree() -> Tree:
    # "John eats red apples": eats is the root; John subject, apples object, red modifies apples
    return Tree(words=("John", "eats", "red", "apples"), upos=("PROPN", "VERB", "ADJ", "NOUN"),
                heads=(2, 0, 4, 2), deprels=("nsubj", "root", "amod", "obj"))


def test_syntax_moves_words_with_their_subwords_and_labels():
    seg = Segment(tokens=(10, 11, 12, 13, 14, 15), word_ids=(0, 1, 2, 3, 3, 3),
                  labels=("B-PER", "O", "O", "O", None, None), tree=_tree())
    out = DerivedLanguage("syntax:hi", V, seed=0)(seg)
    words = list(dict.fromkeys(out.word_ids))
    # Hindi is verb-final: the verb ends up after its object; the object's sub-words stay together, in order
    assert words.index(1) > words.index(3)
    k = out.word_ids.index(3)
    assert out.tokens[k:k + 3] == (13, 14, 15)
    assert sorted(out.tokens) == sorted(seg.tokens)
    assert dict(zip(out.tokens, out.labels)) == dict(zip(seg.tokens, seg.labels))
    # French puts the adjective after its noun
    fr = DerivedLanguage("syntax:fr", V, seed=0)(seg)
    fr_words = list(dict.fromkeys(fr.word_ids))
    assert fr_words.index(2) > fr_words.index(3)


def test_transliteration_after_syntax():
    seg = Segment(tokens=(10, 11, 12, 13), word_ids=(0, 1, 2, 3), tree=_tree())
    reordered = DerivedLanguage("syntax:hi", V, seed=0)(seg).tokens
    both = DerivedLanguage("syntax:hi+translit", V, seed=0)(seg).tokens
    assert list(both) == transliteration_table(V)[list(reordered)].tolist()


def test_task_trees_take_gold_ud_trees_and_parse_only_the_rest():
    """POS data that comes as CoNLL-U (hi: HDTB) is reordered over its gold trees; other text is parsed."""
    from xlt_helpers.data import load_task
    from xlt_helpers.trees import gold_trees, with_gold_trees

    gold = gold_trees("pos", "hi", "train")
    sentences = load_task("pos", "hi", "train", max_examples=30)
    assert len(gold) > 1000 and all(s.words in gold for s in sentences)
    assert all(len(gold[s.words].heads) == len(s.words) for s in sentences)
    assert gold_trees("pos", "en", "train") == {}      # English POS is token TSV: no trees to take
    calls = []

    def fake_parse(batch):
        calls.append([tuple(s) for s in batch])
        return [("parsed", tuple(s)) for s in batch]

    other = ("not", "a", "treebank", "sentence")
    out = with_gold_trees(fake_parse, gold)([s.words for s in sentences[:3]] + [other])
    assert out[:3] == [gold[s.words] for s in sentences[:3]]
    assert out[3] == ("parsed", other) and calls == [[other]]


def test_syntax_grid_runs_every_notebook(shared_runs):
    report = run_grid(REPO_ROOT / "papermill_runs" / "grids" / "syntax_test.yaml", log=lambda *a: None)
    df = pd.read_csv(report / "results.csv")
    assert set(df[df.metric == "delta_sup"].transformation) == {"syntax:fr", "syntax:fr+translit"}
    assert set(df[df.setting == "BZ"].task) == {"xnli", "ner", "pos"}
    overlap = df[df.metric == "subword_overlap"].set_index("transformation").value
    assert overlap["syntax:fr"] == 1.0 and overlap["syntax:fr+translit"] == 0.0
    assert (report / "report.html").exists()
