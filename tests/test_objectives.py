"""Pretraining objectives (xlt_helpers/objectives/): the align loss by hand, DICT-MLM targets, TLM blocks,
dictionaries and held-out pairs, the refused combinations, and the default run against the code before them."""
import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from xlt_helpers.config import REPO_ROOT, data_dir
from xlt_helpers.errors import DataFormatError
from xlt_helpers.model import mask_tokens
from xlt_helpers.objectives import align, batch_kinds, dict_mlm
from xlt_helpers.objectives.dictionary import Dictionary, read_word_pairs, split, twin_pairs, word_pair_ids
from xlt_helpers.objectives.tlm import TlmPacker
from xlt_helpers.run_config import ConfigError, key_dict, resolve
from xlt_helpers.transformations import BOS, EOS, N_SPECIAL, PAD, DerivedLanguage

V = 50


def test_align_loss_on_a_hand_worked_pair_of_embeddings():
    # Pair 1: a = (1, 0), b = (1, 1): cos = 1/sqrt2. Pair 2: c = (0, 2), d = (0, -1): cos = -1.
    # The term is -mean cos = -(1/sqrt2 - 1) / 2 = 0.146447; with lambda = 10 the loss is 1.464466.
    # d cos(x, y) / dx = y / (|x||y|) - cos(x, y) x / |x|^2, and the loss is -lambda / 2 times the sum over pairs:
    #   dL/da = -5 ((1, 1)/sqrt2 - (1/sqrt2)(1, 0))       = -5 (0, 1/sqrt2)        = (0, -3.535534)
    #   dL/db = -5 ((1, 0)/sqrt2 - (1/sqrt2)(1, 1)/2)     = -5 (1, -1)/(2 sqrt2)   = (-1.767767, 1.767767)
    #   dL/dc = -5 ((0, -1)/2 - (-1)(0, 2)/4) = -5 (0, 0) = 0, and dL/dd = -5 ((0, 2)/2 - (-1)(0, -1)/1) = 0:
    #   opposite vectors sit at a stationary point of the cosine.
    E = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [0.0, -1.0], [3.0, 4.0]], requires_grad=True)
    loss = 10 * align.loss(E, torch.tensor([[0, 1], [2, 3]]))
    loss.backward()
    assert loss.item() == pytest.approx(1.464466, abs=1e-6)
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[0.0, -5 * r], [-2.5 * r, 2.5 * r], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    torch.testing.assert_close(E.grad, expected, atol=1e-6, rtol=0)


def test_dict_mlm_targets():
    partner = dict_mlm.partner_table(np.array([[5, 55], [6, 56], [7, 57], [7, 58]]), 2 * V)
    assert partner[5] == 55 and partner[55] == 5 and partner[9] == -1
    assert partner[7] == 57 and partner[58] == 7        # a token in two pairs keeps its first
    masked = torch.tensor([5, 6, 9, 55, 56, 59])
    always = dict_mlm.targets(masked, partner, 1.0, torch.Generator().manual_seed(0))
    assert always.tolist() == [55, 56, 9, 5, 6, 59]      # every token with a twin predicts it; others keep theirs
    many = torch.tensor([5, 9] * 5000)
    half = dict_mlm.targets(many, partner, 0.5, torch.Generator().manual_seed(0))
    swapped = half != many
    assert 0.47 < swapped[0::2].float().mean() < 0.53 and not swapped[1::2].any()
    assert set(half[0::2].tolist()) == {5, 55}


@pytest.mark.parametrize("spec", ["translit+inv", "translit+perm", "inv"])
def test_tlm_blocks_keep_each_sentence_next_to_its_twin(spec):
    orig, derived = DerivedLanguage("orig", V), DerivedLanguage(spec, V, seed=3)
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, size=40)           # many longer than a block's room: cut into pieces
    flat = rng.integers(N_SPECIAL, V, size=int(lengths.sum()))
    packer = TlmPacker(orig, derived, seq_len=24)
    cut = 17                                          # two chunks: the open block is carried over
    chunks = [(flat[:lengths[:cut].sum()], lengths[:cut]), (flat[lengths[:cut].sum():], lengths[cut:])]
    out = list(packer.pack(chunks))
    blocks, langs = np.concatenate([b for b, _ in out]), np.concatenate([g for _, g in out])
    assert blocks.shape[1] == 24 and (blocks[:, 0] == BOS).all()
    pieces = []
    for row, lang in zip(blocks, langs):
        body = row[1:]
        n = len(body) - int(np.argmax(body[::-1] != PAD))   # padding only at the end
        assert (body[n:] == PAD).all() and (body[:n] != PAD).all()
        k = 0
        while k < n:                                      # units: piece </s> twin </s>', halves of equal length
            end = k + int(np.argmax(body[k:n] == EOS))
            p = end - k
            piece, twin = body[k:end], body[end + 1:end + 1 + p]
            assert body[end] == EOS and body[end + 1 + p] == derived.eos
            assert twin.tolist() == derived.transform_tokens(piece.tolist())
            assert (lang[1 + k:2 + end] == 0).all() and (lang[2 + end:3 + end + p] == 1).all()
            pieces.append(piece)
            k = end + 2 + p
    assert np.concatenate(pieces).tolist() == flat.tolist()   # every token once, in order
    # masking TLM blocks draws random replacements from each position's own language
    tables = torch.from_numpy(np.stack([orig.table, derived.table]))
    b, g = torch.from_numpy(blocks), torch.from_numpy(langs).long()
    inputs, pos, targets = mask_tokens(b, g, tables, V, torch.Generator().manual_seed(0), prob=0.5,
                                       mask_share=0.0, random_share=1.0)
    if derived.uses_transliteration:
        replaced = inputs.view(-1)[pos]
        assert ((replaced >= V) == (g.view(-1)[pos] == 1)).all()


def test_heldout_pairs_are_never_in_the_dictionary(tmp_path):
    table = DerivedLanguage("translit", V).table
    pairs = twin_pairs(table, N_SPECIAL)
    assert pairs.tolist() == [[i, i + V] for i in range(N_SPECIAL, V)]
    d = split(pairs, 0.5, seed=1)
    assert len(d.train) == round(0.5 * len(pairs)) and len(d.train) + len(d.heldout) == len(pairs)
    assert not set(d.train.ravel()) & set(d.heldout.ravel())
    assert (split(pairs, 0.5, seed=1).train == d.train).all() and not np.array_equal(split(pairs, 0.5, 2).train, d.train)
    # a natural pair's pairs share tokens: a held-out pair with a token of the training dictionary is dropped
    many = np.array([[10, 20], [10, 21], [11, 20], [12, 22], [13, 23], [14, 24]])
    for seed in range(20):
        s = split(many, 0.5, seed)
        assert not set(s.train.ravel()) & set(s.heldout.ravel())
    d.save(tmp_path / "dictionary.tsv")
    back = Dictionary.load(tmp_path / "dictionary.tsv")
    assert (back.train == d.train).all() and (back.heldout == d.heldout).all()


def test_a_dictionary_file_is_read_with_file_and_line(tmp_path):
    from xlt_helpers.tokenizer import train_tokenizer

    good = tmp_path / "en-fr.tsv"
    good.write_text("# en\tfr\nthe\tle\n\ncat\tchat\nthe cat\tle chat\nzebra-like\tzz\n")
    pairs = read_word_pairs(good)
    assert [(a, b) for a, b, _ in pairs][:2] == [("the", "le"), ("cat", "chat")] and pairs[0][2] == 2
    tok = train_tokenizer(["the cat le chat"] * 50 + ["the le cat chat"] * 50, 300)
    ids = word_pair_ids(pairs, tok)      # single-token words only: "the cat" is two words, "zebra-like" pieces
    assert ids.tolist() == [[tok.token_to_id("Ġthe"), tok.token_to_id("Ġle")],
                            [tok.token_to_id("Ġcat"), tok.token_to_id("Ġchat")]]
    bad = tmp_path / "bad.tsv"
    bad.write_text("the\tle\ncat chat\n")
    with pytest.raises(DataFormatError, match=r"bad.tsv:2: expected two tab-separated columns"):
        read_word_pairs(bad)
    (tmp_path / "empty.tsv").write_text("# nothing\n")
    with pytest.raises(DataFormatError, match="expected at least one word pair"):
        read_word_pairs(tmp_path / "empty.tsv")


def _malformed(tmp_path):
    path = tmp_path / "en-fr.tsv"
    path.write_text("the\tle\n\tchat\n")
    return str(path)


@pytest.mark.parametrize("overrides, message", [
    ({"pretrain.objectives": ["mlm", "align"]}, "align needs a bilingual model"),
    ({"data.transformation": "inv", "pretrain.objectives": ["mlm", "dict_mlm"]},
     "dict_mlm needs a dictionary: a derived language with Transliteration"),
    ({"data.second_language": "fr", "pretrain.objectives": ["mlm", "align"]},
     "align needs a dictionary: a derived language with Transliteration (each token and its twin) or a natural "
     "pair with pretrain.dictionary; found the natural pair en-fr"),
    ({"data.transformation": "translit", "data.corpus_setting": "nonparallel", "pretrain.objectives": ["mlm", "tlm"]},
     "tlm needs sentence-aligned text"),
    ({"data.second_language": "fr", "pretrain.objectives": ["mlm", "tlm"]}, "tlm needs sentence-aligned text"),
    ({"data.transformation": "syntax:fr", "pretrain.objectives": ["mlm", "tlm"]}, "token-level steps"),
    ({"data.transformation": "translit", "pretrain.objectives": ["align"]}, "expected mlm, dict_mlm or tlm beside align"),
    ({"data.transformation": "translit", "pretrain.align_weight": 5}, "unless pretrain.objectives has align"),
    ({"data.transformation": "translit", "pretrain.objectives": ["mlm", "align"], "pretrain.dictionary": "x.tsv"},
     "pretrain.dictionary = 'x.tsv': expected null for a derived language"),
    ({"data.second_language": "fr", "pretrain.objectives": ["mlm", "align"], "pretrain.dictionary": "no/such.tsv"},
     "expected an existing file of word pairs"),
    ({"data.second_language": "fr", "pretrain.objectives": ["mlm", "align"], "pretrain.dictionary": _malformed},
     "en-fr.tsv:2: expected two tab-separated columns"),
    ({"data.transformation": "translit", "pretrain.objectives": ["mlm", "align"], "pretrain.dictionary_fraction": 0},
     "expected a share in (0, 1]"),
    ({"pretrain.objectives": ["mlm", "xlm"]}, "'xlm' is not allowed"),
])
def test_objectives_that_cannot_run_are_refused_in_one_line(overrides, message, tmp_path):
    overrides = {k: v(tmp_path) if callable(v) else v for k, v in overrides.items()}
    with pytest.raises(ConfigError) as err:
        resolve("test", overrides, where="g.yaml: variants: x")
    text = str(err.value)
    assert message in text and text.startswith("g.yaml: variants: x") and "\n" not in text


def test_new_fields_keep_folder_names_and_the_monolingual_model_is_plain_mlm():
    cfg = resolve("test", {"data.transformation": "translit"})
    new = {"align_weight", "dictionary_fraction", "dictionary", "dict_mlm_prob"}
    assert not new & set(key_dict(cfg, ("pretrain",))["pretrain"])   # left at their defaults: not in the key
    other = resolve("test", {"data.transformation": "translit", "pretrain.objectives": ["mlm", "align", "dict_mlm"],
                             "pretrain.align_weight": 5, "pretrain.dict_mlm_prob": 0.25})
    assert {"align_weight", "dict_mlm_prob"} <= set(key_dict(other, ("pretrain",))["pretrain"])
    assert other.monolingual() == cfg.monolingual() and other.monolingual().pretrain.objectives == ("mlm",)
    assert batch_kinds(("mlm",)) == ["corpus"] and batch_kinds(("mlm", "tlm", "align")) == ["corpus", "tlm"]


# The commit before the objectives existed: the default run must compute exactly what it computed.
REFERENCE_COMMIT = "3f189b7"
_RUN = """
import hashlib, json, sys
import torch
import xlt_helpers.pretrain as P
from xlt_helpers.run_config import resolve
losses, real = [], P.train_step
P.train_step = lambda *a, **k: losses.append(real(*a, **k)) or losses[-1]
cfg = resolve("test", {"data.transformation": "translit", "pretrain.device": "cpu"})
meta = P.pretrain(cfg, sys.argv[1], progress=False)
state = torch.load(sys.argv[1] + "/checkpoint.pt", weights_only=True)["model"]
h = hashlib.sha256()
for k in sorted(state):
    h.update(k.encode() + state[k].contiguous().numpy().tobytes())
print(json.dumps({"losses": losses, "final": meta["final_loss"], "state": h.hexdigest()}))
"""


def _run(pythonpath, out, cache, cwd):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pythonpath), "XLT_THREADS": "1", "XLT_DATA_DIR": str(data_dir()),
           "XLT_CACHE_DIR": str(cache), "HOME": str(cache)}
    done = subprocess.run([sys.executable, "-c", _RUN, str(out)], env=env, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_default_mlm_run_is_bit_identical_to_the_code_before_objectives(tmp_path):
    """Per-step losses and the final weights of a `test`-scale pretraining (one thread: thread counts move the
    last bits), computed by the code of REFERENCE_COMMIT (taken from git history) and by today's code."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the reference code comes from the repository's history")
    old = tmp_path / "old"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", REFERENCE_COMMIT, "xlt_helpers"],
                             capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"commit {REFERENCE_COMMIT} is not in this clone's history (a shallow clone?)")
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    reference = _run(old, tmp_path / "run_old", tmp_path / "cache", old)
    today = _run(REPO_ROOT, tmp_path / "run_new", tmp_path / "cache", REPO_ROOT)
    assert len(reference["losses"]) == 12
    assert today == reference


@pytest.mark.slow
@pytest.mark.parametrize("objectives", [["mlm", "align"], ["mlm", "dict_mlm"], ["mlm", "tlm"],
                                        ["dict_mlm", "tlm", "align"]])
def test_each_objective_pretrains_at_test_scale(objectives, tmp_path, monkeypatch):
    from xlt_helpers.experiment import run_alignment, run_pretrain

    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    cfg = resolve("test", {"data.transformation": "translit+inv", "pretrain.objectives": objectives,
                           "pretrain.steps": 4, "pretrain.device": "cpu"})
    result = run_pretrain(cfg, tmp_path / "pretrain", progress=False)
    losses = {r["metric"]: r["value"] for r in result["rows"] if r["metric"].startswith("final_")}
    assert set(losses) == {f"final_{o}_loss" for o in objectives}
    assert all(math.isfinite(v) for v in losses.values())
    log = (tmp_path / "pretrain" / "loss_log.csv").read_text().splitlines()
    assert log[0] == ",".join(["step", "loss", "lr", "tokens_per_s", *objectives]) and len(log) == 5
    model_dir = tmp_path / "pretrain" / "model"
    if "align" in objectives or "dict_mlm" in objectives:
        d = Dictionary.load(model_dir / "dictionary.tsv")
        assert len(d.train) and len(d.heldout) and not set(d.train.ravel()) & set(d.heldout.ravel())
        report = run_alignment(cfg, model_dir)["report"]
        assert report["n_dict_pairs"] == len(d.train) and report["n_heldout_pairs"] == len(d.heldout)
        assert 0 <= report["alignment_at_1_dict"] <= 1 and 0 <= report["alignment_at_1_heldout"] <= 1
    else:
        assert not (model_dir / "dictionary.tsv").exists()


def test_a_dictionary_files_content_is_in_the_model_folder_key(tmp_path, monkeypatch):
    from xlt_helpers.grid.keys import model_dir

    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    pairs = tmp_path / "en-fr.tsv"
    pairs.write_text("house\tmaison\n")
    cfg = resolve("test", {"data.second_language": "fr", "pretrain.objectives": ["mlm", "align"],
                           "pretrain.dictionary": str(pairs)})
    before = model_dir(cfg)
    assert model_dir(cfg) == before
    pairs.write_text("house\tmaison\ncat\tchat\n")
    assert model_dir(cfg) != before
