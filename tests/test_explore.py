"""The exploration notebooks' helpers (xlt_helpers/explore/, docs/explore.md): labels stay with their words
after any reordering, twins that coincide are drawn as one point, a word is its own nearest neighbour, a
corpus overlaps itself fully, a verdict's evidence is the cells its interval was computed from; and a
papermill execution of each exploration notebook at the `test` scale."""
import contextlib
import json
import os
import signal
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import psutil
import pytest

from xlt_helpers.data import TaggedSentence, load_task
from xlt_helpers.explore import languages as lg
from xlt_helpers.explore import model as md
from xlt_helpers.explore import results as rs
from xlt_helpers.hf_tokenizer import TWIN_MARK
from xlt_helpers.transformations import N_SPECIAL


@pytest.fixture(scope="module")
def en(tmp_path_factory):
    """English at the test scale: its tokenizer (trained in well under a second) in a private cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XLT_CACHE_DIR", str(tmp_path_factory.mktemp("explore_cache")))
    lg.setup.cache_clear()
    yield lg.setup("en", "test")
    lg.setup.cache_clear()
    mp.undo()


# ------------------------------------------------------------------------------------ languages

REORDERINGS = ["inv", "translit+inv", "perm", "inv_word", "perm_word", "translit0.5+perm"]


@pytest.mark.parametrize("spec", REORDERINGS)
def test_pos_labels_stay_with_their_words_after_a_reordering(en, spec):
    derived = en.derived(spec)
    for sentence in load_task("pos", "en", "test", max_examples=6):
        pair = lg.derive_sentence(en, derived, sentence.words, sentence.tags, "pos")
        words = lg.word_table(en, pair)
        assert list(words["original label"]) == list(sentence.tags)
        assert list(words["derived label"]) == list(sentence.tags)  # each word's label arrived with it
        assert sorted(pair.derived_ids) == sorted(derived.table[list(pair.orig_ids)].tolist())
        assert sorted(words["derived position"]) == list(range(len(sentence.words)))


def test_inversion_reverses_sub_words_and_ner_tags_are_repaired_as_in_training(en):
    sentence = TaggedSentence(("New", "York", "is", "big"), ("B-LOC", "I-LOC", "O", "O"))
    pair = lg.derive_sentence(en, en.derived("inv"), sentence.words, sentence.tags, "ner")
    assert pair.derived_ids == pair.orig_ids[::-1] and pair.derived_words == pair.orig_words[::-1]
    words = lg.word_table(en, pair).set_index("word")
    assert list(words["derived position"]) == [3, 2, 1, 0]
    # York now comes first: it begins the entity, New continues it
    assert words.loc["York", "derived label"] == "B-LOC" and words.loc["New", "derived label"] == "I-LOC"
    assert words.loc["big", "derived label"] == words.loc["is", "derived label"] == "O"
    lines = lg.sentence_lines(en, pair)
    assert lines.loc["derived", "words"] == "big is York New"


def test_transliteration_shows_twins_position_by_position(en):
    derived = en.derived("translit")
    pair = lg.derive_sentence(en, derived, ["The", "cat", "sat", "."])
    table = lg.subword_table(en, pair)
    V = en.vocab_size
    assert (table["derived", "id"] == table["original", "id"] + V).all()
    assert (table["derived", "word"] == table["original", "word"]).all()
    assert all(d == TWIN_MARK + o for o, d in zip(table["original", "sub-word"], table["derived", "sub-word"]))
    assert lg.piece(en.tok, 0) == "<s>" and lg.piece(en.tok, V + N_SPECIAL - 1) == TWIN_MARK + "<mask>"


def test_an_xnli_pair_keeps_its_label_and_is_read_as_two_transformed_texts(en):
    pair = lg.task_examples("en", "xnli", 1)[0]
    table = lg.nli_inputs(en, en.derived("translit+inv"), pair)
    assert table.loc["original", "label"] == table.loc["derived", "label"]
    orig, derived = table.loc["original", "model input"].split(), table.loc["derived", "model input"].split()
    assert len(orig) == len(derived) and orig[0] == derived[0] == "<s>"
    assert derived.count("</s>") == 3 and all(t.startswith(TWIN_MARK) for t in derived if t not in ("<s>", "</s>"))


def test_overlap_of_a_corpus_with_itself_is_one_and_with_its_transliteration_zero(en):
    corpus = [[5, 6, 7], [7, 8]]
    assert lg.overlap_table(corpus, corpus)["overlap (Jaccard)"].iloc[0] == 1.0
    assert lg.overlap_table(corpus, [[9]])["overlap (Jaccard)"].iloc[0] == 0.0
    overlap = {spec: lg.corpus_overlap(en, en.derived(spec), 60).iloc[0] for spec in ("inv", "translit", "translit0.5")}
    assert overlap["inv"]["overlap (Jaccard)"] == 1.0 and overlap["translit"]["overlap (Jaccard)"] == 0.0
    assert 0.2 < overlap["translit0.5"]["overlap (Jaccard)"] < 0.5  # half the types moved: about a third
    assert overlap["inv"]["sentences"] == 60 and overlap["inv"]["shared types"] == overlap["inv"]["original types"]


def test_word_order_needs_a_syntax_step():
    assert lg.syntax_steps("translit+syntax:fr@N~hi@V") == ["syntax:fr@N~hi@V"]
    assert lg.word_order_table("en", "translit+inv") is None


@pytest.mark.slow
def test_word_order_of_english_moves_towards_hindi():
    table = lg.word_order_table("en", "translit+syntax:hi", max_sentences=200)
    obj = table.loc["object before verb"]
    assert obj["target language"] == "hi" and obj["source"] < 0.1 and obj["target"] > 0.9 and obj["transformed"] > 0.8


# ------------------------------------------------------------------------------------ a model

def test_pca_keeps_the_distances_of_points_in_a_plane_and_twins_that_coincide_are_one_point():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(2, 6))
    points = rng.normal(size=(10, 2)) @ plane + 3.0
    xy = md.pca_2d(points, points)
    dist = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)  # noqa: E731
    assert np.allclose(dist(xy), dist(points))
    emb = rng.normal(size=(20, 6))
    same = md.twin_points(emb, ["a", "b", "c"], [[5], [6, 7], [8]], [[5], [6, 7], [8]], np.arange(20))
    orig, twin = same[same.language == "original"], same[same.language == "derived"]
    assert np.allclose(orig[["x", "y"]].to_numpy(), twin[["x", "y"]].to_numpy())
    assert np.allclose(same["cosine with twin"], 1.0)
    apart = md.twin_points(emb, ["a"], [[5]], [[15]], np.arange(20))
    assert not np.allclose(apart.x.iloc[0], apart.x.iloc[1]) or not np.allclose(apart.y.iloc[0], apart.y.iloc[1])


def test_a_word_is_its_own_nearest_neighbour():
    emb = np.random.default_rng(1).normal(size=(50, 8))
    for i in (5, 17, 49):
        found = md.neighbours(emb, emb[i], np.arange(N_SPECIAL, 50), k=3)
        assert found.id.iloc[0] == i and found.cosine.iloc[0] == pytest.approx(1.0)
        assert found.cosine.is_monotonic_decreasing
    twice = np.concatenate([emb, emb[[7]]])  # a tie: the lower id first
    assert md.neighbours(twice, emb[7], np.arange(51), k=2).id.tolist() == [7, 50]


@pytest.fixture(scope="module")
def model_dir(shared_runs):
    return md.cached_model()  # the test scale's Transliteration model, trained once into the session's cache


def test_a_fresh_clone_trains_a_test_model_once(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "empty_runs"))
    assert md.run_models() == [] and md.choose_model() == model_dir  # reused from the cache, not retrained
    assert md.model_meta(model_dir)["transformation"] == "translit"
    log = md.loss_log(model_dir)
    assert len(log) == 12 and set(log.transformation) == {"translit"}  # the test scale's 12 steps
    assert md.loss_figure(model_dir) is not None
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        md.choose_model(tmp_path)


def test_run_folders_with_transliteration_come_first(test_report):
    found = md.run_models(test_report.parent.parent)
    kinds = [md.model_meta(f)["transformation"] for f in found]
    assert kinds == ["translit", "inv", None]  # the test grid's models: twins of their own, then a reordering, mono
    assert md.choose_model() == found[0]


def test_the_model_views_on_a_trained_model(model_dir):
    p = md.load(model_dir)
    V = p.derived.language.vocab_size
    ids, twins = md.word_twins(p, "the")
    assert twins == [i + V for i in ids]
    near = md.word_neighbours(p, "the", k=4)
    assert list(near.vocabulary) == ["original"] * 4 + ["derived"] * 4
    if len(ids) == 1:  # a word of one sub-word is its own nearest neighbour
        assert near.id.iloc[0] == ids[0] and near.cosine.iloc[0] == pytest.approx(1.0, abs=1e-5)
    assert (near[near.vocabulary == "derived"].id >= V).all()
    points = md.model_twin_points(p, ["the", " of", "city", ""])
    assert list(points.word) == ["the", "of", "city"] * 2
    fill = md.fill_mask(p, "The city was founded in 1850 .", "city", k=3)
    assert list(fill.language) == ["original"] * 3 + ["derived"] * 3
    assert fill.groupby("language").probability.apply(lambda s: s.is_monotonic_decreasing).all()
    with pytest.raises(ValueError, match="not a word of the sentence"):
        md.fill_mask(p, "The city .", "town")
    layers = md.layer_similarity(p, "The city was founded in 1850 .")
    assert list(layers.layer) == list(range(p.model.config.num_hidden_layers + 1))
    assert layers[["sentence cosine", "mean word cosine"]].abs().le(1 + 1e-6).all().all()
    itself = md.layer_similarity(p, "The city was founded in 1850 .", p.derived.original)
    assert np.allclose(itself[["sentence cosine", "mean word cosine"]], 1.0, atol=1e-5)


# ------------------------------------------------------------------------------------ results

SUMMARY = pd.DataFrame([
    {"language": lang, "transformation": t, "corpus_setting": "parallel", "variant": "default", "task": task,
     "setting": "delta", "metric": "delta_sup", "value": v, "ci_low": v - 0.1, "ci_high": v + 0.1, "se": 0.05,
     "df": np.inf, "n_examples": 100, "n_seeds": 1, "n_runs": 1, "pretrain_seeds": 1, "finetune_seeds": 1,
     "interval": "bootstrap"}
    for lang, t, task, v in [("en", "translit", "pos", -0.2), ("fr", "translit", "pos", -0.4),
                             ("en", "inv", "pos", -0.1), ("en", "translit", "ner", 0.0)]])


def test_filters_keep_the_chosen_cells_and_average_the_chosen_languages():
    assert rs.choices(SUMMARY)["language"] == ["en", "fr"]
    assert len(rs.filter_cells(SUMMARY, {"language": rs.ALL, "task": None, "setting": []})) == 4
    pos = rs.filter_cells(SUMMARY, {"transformation": "translit", "task": ["pos"]})
    assert sorted(pos.language) == ["en", "fr"]
    cells = rs.chosen_cells(SUMMARY, {"transformation": "translit", "task": "pos"})
    assert len(cells) == 1 and cells.value.iloc[0] == pytest.approx(-0.3) and cells.n_languages.iloc[0] == 2
    one = rs.chosen_cells(SUMMARY, {"language": "fr"})
    assert one.value.iloc[0] == pytest.approx(-0.4) and one.ci_low.iloc[0] == pytest.approx(-0.5)
    assert "-0.300 [" in rs.cell_table(cells).iloc[0, 0]
    assert rs.chosen_cells(SUMMARY, {"language": "hi"}).empty


def test_a_report_is_chosen_once_the_runner_exits_even_if_its_children_live_on(tmp_path, monkeypatch):
    """The test grid's runner may leave a process behind (a kernel slow to die) that still holds the
    runner's output: choose_report returns when the runner exits, without waiting for it."""
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path))
    left = tmp_path / "left_behind.pid"
    runner = ("import os, subprocess, sys, pathlib\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
              f"pathlib.Path({str(left)!r}).write_text(str(child.pid))\n"
              f"folder = pathlib.Path({str(tmp_path)!r}) / 'reports' / 'test'\n"
              "folder.mkdir(parents=True); (folder / 'summary.csv').write_text('x')\n"
              "print('grid test: done')\n")
    monkeypatch.setattr(rs, "test_grid_command", lambda: [sys.executable, "-c", runner])
    lines = []
    try:
        assert rs.choose_report(log=lines.append) == tmp_path / "reports" / "test"
        pid = int(left.read_text())
        assert psutil.pid_exists(pid), "choose_report waited for the child"
        assert lines == ["grid test: done"]
    finally:
        if left.exists():
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(int(left.read_text()), signal.SIGTERM)


@pytest.fixture(scope="module")
def test_report(shared_runs):
    from xlt_helpers.grid.run import run_grid

    return run_grid(rs.TEST_GRID, log=lambda *a: None)  # steps shared with test_report's run


def test_each_verdict_shows_the_cells_its_interval_was_computed_from(test_report):
    report = rs.load(test_report)
    tests = report.tests
    labels = rs.verdict_labels(tests)
    assert len(labels) == len(tests) > 0 and all(t.verdict in label for t, label in zip(tests.itertuples(), labels))
    for k, t in enumerate(tests.itertuples()):
        found = rs.evidence(report, k)
        assert found["test"]["verdict"].iloc[0] == t.verdict
        assert len(found["cells"]) == len(t.uses) and len(found["per language"]) == len(t.uses)  # one language
        if len(t.uses) == 1:  # a test of one cell: its estimate and interval are the cell's
            cell = found["cells"].iloc[0]
            assert (cell.value, cell.ci_low, cell.ci_high) == pytest.approx((t.estimate, t.ci_low, t.ci_high))
    everything = rs.chosen_cells(report.summary, {})
    drawn = rs.figures(everything)
    assert len(everything) == len(report.cells) and len(drawn) == 2
    plt.close("all")


# ------------------------------------------------------------------------------------ the notebooks

def _executed(name: str, tmp_path, parameters: dict) -> str:
    """Execute notebooks/<name> with papermill; the executed notebook (with its widgets' state) as text."""
    from xlt_helpers.grid.notebooks import execute_notebook

    out = tmp_path / name
    execute_notebook(name, out, parameters)
    nb = json.loads(out.read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return out.read_text()


def test_the_languages_notebook_runs_with_syntax_at_the_test_scale(shared_runs, tmp_path):
    text = _executed("explore_languages.ipynb", tmp_path, {
        "preset": "test", "transformation": "translit+syntax:hi", "task": "ner", "n_examples": 5,
        "overlap_sentences": 50, "syntax_sentences": 100})
    for shown in ("derived label", "sub-word overlap", "object before verb", "syntax:hi"):
        assert shown in text, shown


def test_the_model_notebook_runs_on_a_fresh_clone(shared_runs, tmp_path):
    text = _executed("explore_model.ipynb", tmp_path, {"k": 3})
    for shown in ("cosine with twin", "sentence cosine", "Loss curve"):
        assert shown in text, shown


def test_the_results_notebook_runs_on_a_fresh_clone(shared_runs, tmp_path, monkeypatch):
    """With no report folder, the notebook runs the test grid itself (a runs folder of its own: the command
    line's steps run side by side with one thread each, and other tests compare theirs to the last digit)."""
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    text = _executed("explore_results.ipynb", tmp_path, {})
    for shown in ("scorecard tests", "averaged over", "Delta_Sup(translit) near 0"):
        assert shown in text, shown
