"""Alignment beyond the input embeddings: linear CKA and contextual P@1 on cases with known answers, words
tracked through reorderings, embedding snapshots over pretraining (written, resumed, read back)."""
import numpy as np
import pytest
import torch

from xlt_helpers.alignment_measures import (ParallelSentence, contextual_report, history_report, interval_count,
                                            linear_cka, parallel_sentence, parallel_sentences)
from xlt_helpers.run_config import resolve
from xlt_helpers.transformations import EOS, N_SPECIAL, DerivedLanguage


# ---- linear CKA -------------------------------------------------------------------------------------

def test_cka_of_identical_rotated_and_scaled_representations_is_one():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    assert linear_cka(x, x) == pytest.approx(1.0)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))         # a random orthogonal map
    assert linear_cka(x, x @ q) == pytest.approx(1.0)
    assert linear_cka(x, 7.5 * x) == pytest.approx(1.0)     # isotropic scaling
    assert linear_cka(x, x + 3.0) == pytest.approx(1.0)     # a shift (CKA centres each side)


def test_cka_is_invariant_to_rotation_and_scaling_of_unrelated_representations():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 8)), rng.normal(size=(300, 12))
    base = linear_cka(x, y)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert linear_cka(x, 0.1 * y @ q) == pytest.approx(base)
    assert base < 0.15                                      # independent noise: far below 1
    stretched = x * np.r_[10.0, np.ones(7)]                 # an anisotropic scaling does change it
    assert linear_cka(x, stretched) < 0.99


def test_cka_refuses_mismatched_items_and_is_nan_when_undefined():
    with pytest.raises(ValueError, match="same n items"):
        linear_cka(np.zeros((5, 2)), np.zeros((4, 2)))
    assert np.isnan(linear_cka(np.ones((1, 3)), np.ones((1, 3))))
    assert np.isnan(linear_cka(np.ones((6, 3)), np.random.default_rng(0).normal(size=(6, 3))))


# ---- words tracked through a transformation ----------------------------------------------------------

V = 60
IDS = [10, 11, 12, 13, 14, 15, 16]          # four words: 10 11 | 12 | 13 14 15 | 16
WORDS = [0, 0, 1, 2, 2, 2, 3]


@pytest.mark.parametrize("spec", ["translit", "translit+inv", "translit+perm", "inv_word+translit",
                                  "translit+perm_word", "inv"])
def test_each_word_is_found_in_the_derived_sentence(spec):
    derived = DerivedLanguage(spec, V, seed=3)
    pair = parallel_sentence(IDS, WORDS, derived, max_len=32)
    assert len(pair.orig_spans) == len(pair.derived_spans) == 4
    assert pair.orig[0] == 0 and pair.orig[-1] == EOS and pair.derived[-1] == derived.eos
    for o, d in zip(pair.orig_spans, pair.derived_spans):
        twins = sorted(int(derived.table[pair.orig[p]]) for p in o)
        assert sorted(pair.derived[p] for p in d) == twins   # the same word's sub-words, wherever T put them
    if "inv" in spec and "word" not in spec:                 # sub-word Inversion: the last word comes first
        assert pair.derived_spans[3] == (1,) and pair.derived_spans[0] == (6, 7)


def test_a_word_cut_by_the_length_limit_is_left_out_on_both_sides():
    derived = DerivedLanguage("translit+inv", V)
    pair = parallel_sentence(IDS, WORDS, derived, max_len=2 + 5)   # 5 sub-words of 7 fit
    # the original keeps words 0 and 1 whole, word 2 in part; the inverted side words 3, 2 and 1 whole
    assert pair.orig_spans == ((3,),) and pair.derived_spans == ((5,),)
    assert pair.orig[3] == 12 and pair.derived[5] == derived.table[12]
    assert parallel_sentence(IDS, WORDS, derived, max_len=3) is None


# ---- contextual P@1 and CKA on a model whose twins are copies ------------------------------------------

def _tokenizer_and_sentences():
    from xlt_helpers.tokenizer import train_tokenizer

    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghij"))
    sentences = [" ".join("".join(rng.choice(letters, 5)) for _ in range(5)) for _ in range(40)]
    return train_tokenizer(sentences, 300), sentences


def _copied_twin_model(tok):
    """A test-scale encoder whose derived embedding rows copy the original ones: both languages read alike."""
    from xlt_helpers.model import build_mlm

    V_ = tok.get_vocab_size()
    model = build_mlm(resolve("test").model, V_, seed=0)
    with torch.no_grad():
        E = model.roberta.embeddings.word_embeddings.weight
        E[V_ + N_SPECIAL:2 * V_] = E[N_SPECIAL:V_]
    return model.roberta.eval(), V_


def test_identical_representations_give_contextual_p_at_1_and_cka_one():
    tok, sentences = _tokenizer_and_sentences()
    encoder, V_ = _copied_twin_model(tok)
    pairs = parallel_sentences(tok, DerivedLanguage("translit", V_), sentences, max_len=32)
    assert len(pairs) == 40
    rep = contextual_report(encoder, pairs, batch_size=7)
    assert rep["n_words"] == 200 and rep["n_sentences"] == 40 and rep["contextual_chance"] == 1 / 200
    for k in (0, 1):                                         # the test scale has 1 layer: layers 0 and 1
        assert rep[f"contextual_at_1_layer{k}"] == 1.0
        assert rep[f"cka_layer{k}"] == pytest.approx(1.0, abs=1e-6)
        assert rep[f"cka_sentence_layer{k}"] == pytest.approx(1.0, abs=1e-6)


def test_a_shuffled_word_correspondence_drops_contextual_p_at_1_to_chance():
    tok, sentences = _tokenizer_and_sentences()
    encoder, V_ = _copied_twin_model(tok)
    pairs = parallel_sentences(tok, DerivedLanguage("translit", V_), sentences, max_len=32)
    # each original word paired with the next word of its sentence: never its own counterpart
    shuffled = [ParallelSentence(p.orig, p.derived, p.orig_spans, p.derived_spans[1:] + p.derived_spans[:1])
                for p in pairs]
    rep = contextual_report(encoder, shuffled)
    for k in (0, 1):
        assert rep[f"contextual_at_1_layer{k}"] <= 5 * rep["contextual_chance"]
        assert rep[f"cka_layer{k}"] < 0.9


def test_untrained_twins_are_not_aligned_in_context():
    tok, sentences = _tokenizer_and_sentences()
    from xlt_helpers.model import build_mlm

    V_ = tok.get_vocab_size()
    encoder = build_mlm(resolve("test").model, V_, seed=0).roberta.eval()   # twins drawn independently
    pairs = parallel_sentences(tok, DerivedLanguage("translit", V_), sentences, max_len=32)
    assert contextual_report(encoder, pairs)["contextual_at_1_layer0"] < 0.5


def test_proportions_get_their_item_count_and_cka_none():
    assert interval_count("contextual_at_1_layer3") == "n_words"
    assert interval_count("alignment_at_1_step500") == "n_pairs"
    assert interval_count("cka_layer1") is None and interval_count("cka_sentence_layer0") is None
    assert interval_count("alignment_at_1") is None and interval_count("contextual_chance") is None


# ---- snapshots over pretraining -----------------------------------------------------------------------

def _cfg(**kw):
    return resolve("test", {"data.transformation": "translit", "pretrain.steps": 6, "pretrain.checkpoint_every": 3,
                            "pretrain.embedding_snapshots": 2, "pretrain.device": "cpu", **kw})


@pytest.mark.slow
def test_snapshots_survive_a_kill_and_match_an_uninterrupted_run(tmp_path, monkeypatch):
    from xlt_helpers import pretrain as P
    from xlt_helpers import snapshots

    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    P.pretrain(_cfg(), tmp_path / "full", progress=False)
    full = dict(snapshots.history(tmp_path / "full" / "model"))
    assert sorted(full) == [0, 2, 4, 6]
    final = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["model"]
    np.testing.assert_array_equal(full[6], final["roberta.embeddings.word_embeddings.weight"].numpy())
    assert not (tmp_path / "full" / snapshots.FOLDER).exists()        # packed, then removed

    real_save = P.atomic_torch_save

    def kill_after_first_checkpoint(obj, path):
        real_save(obj, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "atomic_torch_save", kill_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        P.pretrain(_cfg(), tmp_path / "killed", progress=False)        # checkpoint at step 3, snapshots 0 and 2
    monkeypatch.setattr(P, "atomic_torch_save", real_save)
    snapshots.save(np.full((3, 3), 9.0), tmp_path / "killed", 5)      # a snapshot past the checkpoint: dropped
    P.pretrain(_cfg(), tmp_path / "killed", progress=False)
    resumed = dict(snapshots.history(tmp_path / "killed" / "model"))
    assert sorted(resumed) == [0, 2, 4, 6]
    for step in full:
        np.testing.assert_allclose(resumed[step], full[step], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_the_alignment_step_reports_p_at_1_per_snapshot_and_contextual_measures(tmp_path, monkeypatch):
    from xlt_helpers.report.intervals import run_intervals, run_samples
    from xlt_helpers.experiment import run_alignment, run_pretrain, save_results

    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    cfg = _cfg(**{"data.transformation": "translit+inv", "evaluate.contextual": True,
                  "evaluate.contextual_sentences": 60})
    run_pretrain(cfg, tmp_path / "pretrain", progress=False)
    result = run_alignment(cfg, tmp_path / "pretrain" / "model")
    rep, metrics = result["report"], [r["metric"] for r in result["rows"]]
    assert [m for m in metrics if m.startswith("alignment_at_1_step")] == [f"alignment_at_1_step{s}" for s in (0, 2, 4, 6)]
    assert rep["alignment_at_1_step6"] == rep["alignment_at_1"]       # the last snapshot is the final model
    for k in (0, 1):
        assert 0 <= rep[f"contextual_at_1_layer{k}"] <= 1 and 0 < rep[f"cka_layer{k}"] <= 1 + 1e-9
        assert f"cka_sentence_layer{k}" in metrics
    assert 50 <= rep["n_sentences"] <= 60 and rep["n_words"] > rep["n_sentences"]
    save_results(result, tmp_path / "alignment", cfg)
    samples = {s["metric"]: s for s in run_samples(tmp_path / "alignment")}
    assert samples["contextual_at_1_layer1"]["n"] == rep["n_words"] and samples["alignment_at_1_step2"]["n"] == rep["n_pairs"]
    assert "cka_layer1" not in samples                                 # no interval for CKA
    assert len(run_intervals(list(samples.values()))) == len(samples)
    # without the options the step is the one it always was
    plain = run_alignment(cfg.replace(**{"evaluate.contextual": False}), tmp_path / "pretrain" / "model")
    assert not any(r["metric"].startswith(("contextual", "cka")) for r in plain["rows"])
    assert history_report(tmp_path / "nowhere", DerivedLanguage("translit", 320).table, N_SPECIAL) == {}


def test_the_new_fields_change_folders_only_when_set(tmp_path, monkeypatch):
    from xlt_helpers.grid import keys as runner
    from xlt_helpers.run_config import step_key

    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    base = resolve("test", {"data.transformation": "translit"})
    assert runner.step_dir(base, "alignment") == runner.model_dir(base) / f"alignment_{step_key(base, ('evaluate',))}"
    ctx = base.replace(**{"evaluate.contextual": True})
    assert runner.model_dir(ctx) == runner.model_dir(base) and runner.step_dir(ctx, "alignment") != runner.step_dir(base, "alignment")
    snap = base.replace(**{"pretrain.embedding_snapshots": 500})
    assert runner.model_dir(snap) != runner.model_dir(base)
    assert runner.model_dir(snap.monolingual()) == runner.model_dir(base.monolingual())  # MZ shared
    with pytest.raises(ValueError, match="pretrain.embedding_snapshots"):
        resolve("test", {"pretrain.embedding_snapshots": -1})
