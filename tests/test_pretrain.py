"""Pretraining: packing, masking, resumption after a kill, determinism."""
import json
import numpy as np
import pytest
import torch

from xlt_helpers.corpus import pack, subword_overlap
from xlt_helpers.model import mask_tokens
from xlt_helpers.model import lr_at
from xlt_helpers.pretrain import batch_indices, pretrain
from xlt_helpers.run_config import resolve
from xlt_helpers.transformations import BOS, EOS, MASK, N_SPECIAL, DerivedLanguage

V = 50


def test_pack_fills_blocks_without_padding():
    blocks = pack([[5, 6, 7], [8, 9], [10, 11, 12, 13]], BOS, EOS, seq_len=4)
    assert blocks.tolist() == [[BOS, 5, 6, 7], [BOS, EOS, 8, 9], [BOS, EOS, 10, 11], [BOS, 12, 13, EOS]]
    with pytest.raises(ValueError, match="corpus too small"):
        pack([[5]], BOS, EOS, seq_len=8)


def test_subword_overlap():
    assert subword_overlap([[1, 2], [3]], [[3, 4]]) == pytest.approx(1 / 4)
    assert subword_overlap([[1, 2]], [[1, 2]]) == 1.0


def test_masking_rate_specials_and_language_of_random_replacements():
    orig, derived = DerivedLanguage("orig", V), DerivedLanguage("translit", V)
    tables = torch.from_numpy(np.stack([orig.table, derived.table]))
    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(N_SPECIAL, V, (400, 64))
    rows[:, 0] = BOS
    rows[200:] = torch.from_numpy(derived.table)[rows[200:]]   # second half: derived-language blocks
    langs = torch.tensor([0] * 200 + [1] * 200)
    inputs, pos, targets = mask_tokens(rows, langs, tables, V, gen)
    assert 0.13 < len(pos) / rows[:, 1:].numel() < 0.17
    assert (rows.view(-1)[pos] == targets).all()
    assert not (pos % 64 == 0).any(), "the <s> position must never be chosen"
    flat_in = inputs.view(-1)[pos]
    assert 0.77 < (flat_in == MASK).float().mean() < 0.83
    changed = (flat_in != MASK) & (flat_in != targets)
    in_derived = pos >= 200 * 64
    # random replacements stay inside the vocabulary of the block's own language
    assert (flat_in[changed & ~in_derived] < V).all() and (flat_in[changed & in_derived] >= V).all()
    assert changed.float().mean() > 0.05


def test_lr_schedule_and_batches_are_deterministic():
    assert lr_at(0, 1.0, 10, 100) == pytest.approx(0.1)
    assert lr_at(9, 1.0, 10, 100) == pytest.approx(1.0)
    assert lr_at(100, 1.0, 10, 100) == 0.0
    a = batch_indices(7, 16, 50, seed=1)
    assert (a == batch_indices(7, 16, 50, seed=1)).all() and len(set(a.tolist())) == 16
    # one full epoch visits every block exactly once
    epoch = np.concatenate([batch_indices(s, 10, 50, 0) for s in range(5)])
    assert sorted(epoch.tolist()) == list(range(50))


def _cfg(**kw):
    return resolve("test", {"data.transformation": "translit", "pretrain.steps": 6, "pretrain.checkpoint_every": 3,
                            **kw})


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_model(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    full = pretrain(_cfg(), tmp_path / "full", progress=False)
    # a run "killed" after its step-3 checkpoint: train 3 steps of a 6-step schedule, then resume
    import xlt_helpers.pretrain as P

    real_save = P.atomic_torch_save
    calls = {"n": 0}

    def kill_after_first_checkpoint(obj, path):
        real_save(obj, path)
        calls["n"] += 1
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "atomic_torch_save", kill_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        pretrain(_cfg(), tmp_path / "killed", progress=False)
    monkeypatch.setattr(P, "atomic_torch_save", real_save)
    assert torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["step"] == 3
    resumed = pretrain(_cfg(), tmp_path / "killed", progress=False)
    assert resumed["final_loss"] == pytest.approx(full["final_loss"], rel=1e-5)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    log = (tmp_path / "killed" / "loss_log.csv").read_text().splitlines()
    assert [int(line.split(",")[0]) for line in log[1:]] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_same_seed_same_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    a = pretrain(_cfg(**{"pretrain.steps": 3}), tmp_path / "a", progress=False)
    b = pretrain(_cfg(**{"pretrain.steps": 3}), tmp_path / "b", progress=False)
    assert a["final_loss"] == b["final_loss"]
    assert a["subword_overlap"] == 0.0


@pytest.mark.slow
def test_corpus_settings(tmp_path, monkeypatch):
    from xlt_helpers.corpus import build_pretraining_data

    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    cfg = resolve("test", {"data.transformation": "inv"})
    _, full = build_pretraining_data(cfg)
    n_orig = int((full.langs == 0).sum())
    assert int((full.langs == 1).sum()) == n_orig  # parallel: same text, same length
    _, half = build_pretraining_data(cfg.replace(**{"data.derived_fraction": 0.5}))
    # half of the sentences (not of the blocks: sentence lengths vary)
    assert 0.3 * n_orig < int((half.langs == 1).sum()) < 0.7 * n_orig
    _, nonpar = build_pretraining_data(cfg.replace(**{"data.corpus_setting": "nonparallel"}))
    assert 0.3 * n_orig < int((nonpar.langs == 0).sum()) < 0.7 * n_orig
    # the derived half is the inverted *second* half: not the inversion of the first half
    first = nonpar.blocks[nonpar.langs == 0][0, 1:].tolist()
    assert nonpar.blocks[nonpar.langs == 1][-1, 1:].tolist()[::-1] != first
    with pytest.raises(ValueError, match="derived_fraction"):
        cfg.replace(**{"data.derived_fraction": 0.0})
    with pytest.raises(ValueError, match="corpus_setting = 'shuffled' is not allowed"):
        cfg.replace(**{"data.corpus_setting": "shuffled"})


def test_fast_masked_lm_matches_the_transformers_forward():
    """mlm_loss's own layer loop (SDPA, last layer only at the masked positions) computes the HF model's numbers."""
    from xlt_helpers.model import build_mlm, masked_hidden_states, mlm_loss
    from xlt_helpers.transformations import PAD

    cfg = resolve("test", {"model.layers": 3, "model.hidden": 32, "model.heads": 4, "model.ffn": 64,
                           "pretrain.seq_len": 24, "model.dropout": 0.0})
    model = build_mlm(cfg.model, 40, seed=0).eval()
    gen = torch.Generator().manual_seed(0)
    blocks = torch.randint(N_SPECIAL, 80, (6, 24), generator=gen)
    blocks[:, 0] = BOS
    blocks[2, 15:] = PAD                        # padding shifts RoBERTa's position ids
    langs, tables = torch.zeros(6, dtype=torch.long), torch.arange(80)[None]
    inputs, pos, targets = mask_tokens(blocks, langs, tables, 80, gen, prob=0.3)
    pos = pos[(pos // 24) != 4]                 # a row without any masked position
    targets = blocks.view(-1)[pos]
    ref_hidden = model.roberta(input_ids=inputs).last_hidden_state.reshape(-1, 32)[pos]
    torch.testing.assert_close(masked_hidden_states(model, inputs, pos), ref_hidden, rtol=1e-5, atol=1e-5)
    shuffled = pos[torch.randperm(len(pos), generator=gen)]   # any order of positions, not only mask_tokens'
    torch.testing.assert_close(masked_hidden_states(model, inputs, shuffled),
                               model.roberta(input_ids=inputs).last_hidden_state.reshape(-1, 32)[shuffled],
                               rtol=1e-5, atol=1e-5)
    labels = torch.full((6 * 24,), -100)
    labels[pos] = targets
    ref = model(input_ids=inputs, labels=labels.view(6, 24)).loss
    loss = mlm_loss(model, inputs, pos, targets)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    # and the same gradients (the fast path trains the same model)
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads):
        torch.testing.assert_close(g if g is not None else torch.zeros_like(r), r, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
def test_two_process_data_parallel_equals_one_process(tmp_path, monkeypatch):
    """torchrun --nproc_per_node=2 on gloo: each rank half of every batch, the same model as one process."""
    import os
    import subprocess
    import sys

    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    cfg = resolve("test", {"data.transformation": "translit", "pretrain.steps": 3, "model.dropout": 0.0})
    one = pretrain(cfg, tmp_path / "one", progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the grid's own torchrun entry point (executors: --pretrain-procs), which ends the process group it used
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "xlt_helpers.grid.ray_executor", "pretrain", json.dumps(cfg.to_dict()),
                           str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "terminate called" not in proc.stderr, proc.stderr[-3000:]
    meta = json.loads((tmp_path / "two" / "model" / "xlt_meta.json").read_text())
    assert meta["world_size"] == 2
    assert meta["final_loss"] == pytest.approx(one["final_loss"], rel=1e-5)
    log = (tmp_path / "two" / "loss_log.csv").read_text().splitlines()
    assert len(log) == 4, "only rank 0 writes the log"
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6, msg=k)


def test_cpu_dropout_rate_scale_and_gradient():
    from xlt_helpers.model import dropout

    torch.manual_seed(0)
    x = torch.ones(400, 1000, requires_grad=True)
    y = dropout(x, 0.1)
    kept = y != 0
    assert 0.898 < kept.float().mean() < 0.902
    scale = y.detach()[kept].unique()
    assert len(scale) == 1 and abs(float(scale) * float(kept.float().mean()) - 1) < 0.003  # E[y] = x
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())             # gradient = the same mask times the scale
    assert dropout(x, 0.0) is x
    assert not torch.equal(dropout(x, 0.5), dropout(x, 0.5))  # a fresh mask every call


def test_scale_init_range_sets_the_initial_weight_scale():
    """``model.init_range`` is the std of the freshly initialised weights (demo uses a larger one)."""
    from xlt_helpers.model import build_mlm

    for std in (0.02, 0.06):
        model = build_mlm(resolve("test", {"model.hidden": 64, "model.ffn": 256, "model.init_range": std}).model,
                          500, seed=0)
        w = model.roberta.encoder.layer[0].intermediate.dense.weight
        assert float(w.detach().std()) == pytest.approx(std, rel=0.05)
