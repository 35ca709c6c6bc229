"""Issue 14's levers: the embeddings' share of the fine-tuning update, scoring on the dev split, and the
pretraining FLOPs of a configuration (the x axis of transfer against compute)."""
import pandas as pd
import pytest
import torch

from xlt_helpers import compute, experiment
from xlt_helpers.encoding import Encoded
from xlt_helpers.finetune import finetune
from xlt_helpers.model import build_mlm
from xlt_helpers.report.calibration import calibration_points, extrapolate, lever, variant_table
from xlt_helpers.report.targets import targets
from xlt_helpers.run_config import ConfigError, ModelConfig, resolve, step_key
from xlt_helpers.tasks import get_task


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    cfg = resolve("test", {})
    path = tmp_path_factory.mktemp("tiny") / "model"
    build_mlm(cfg.model, 2 * cfg.model.vocab_size, 0).save_pretrained(path)
    return path, cfg


def _finetuned(tiny_model, scale: float):
    path, cfg = tiny_model
    ft = resolve("test", {"finetune.embedding_lr_scale": scale, "finetune.seed": 0}).finetune
    spec = get_task("pos")
    data = [Encoded(tuple(range(5 + k, 15 + k)), tuple((k + j) % len(spec.labels) for j in range(10)))
            for k in range(32)]
    before = build_mlm(cfg.model, 2 * cfg.model.vocab_size, 0)
    return before, finetune(path, spec, data, ft, progress=False)


def test_frozen_embeddings_do_not_move_and_the_rest_does(tiny_model):
    before, after = _finetuned(tiny_model, 0.0)
    emb_before = before.roberta.embeddings.word_embeddings.weight
    assert torch.equal(after.roberta.embeddings.word_embeddings.weight, emb_before)
    layer = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(dict(after.roberta.named_parameters())[layer], dict(before.roberta.named_parameters())[layer])


def test_a_smaller_embedding_share_moves_the_embeddings_less(tiny_model):
    before = _finetuned(tiny_model, 1.0)[0].roberta.embeddings.word_embeddings.weight
    moved = {s: (_finetuned(tiny_model, s)[1].roberta.embeddings.word_embeddings.weight - before).norm().item()
             for s in (1.0, 0.1)}
    assert 0 < moved[0.1] < 0.5 * moved[1.0]


def test_new_finetune_fields_keep_old_folder_names_and_are_validated():
    plain = resolve("paper", {"data.transformation": "translit"})  # a preset that leaves the field at its default
    assert step_key(plain, ("finetune",)) == step_key(plain.replace(**{"finetune.embedding_lr_scale": 1.0}), ("finetune",))
    # the CPU presets freeze the word embeddings (the protocol grids' choice): their folders are the ones the
    # protocol grids' `frozen` variant wrote, and an explicit 1.0 gives back the folders of the trained protocol
    demo = resolve("demo", {"data.transformation": "translit"})
    frozen = resolve("demo", {"data.transformation": "translit", "finetune.embedding_lr_scale": 0.0})
    assert demo.finetune.embedding_lr_scale == 0.0 and step_key(demo, ("finetune",)) == step_key(frozen, ("finetune",))
    assert step_key(demo, ("finetune",)) != step_key(demo.replace(**{"finetune.embedding_lr_scale": 1.0}), ("finetune",))
    assert step_key(plain, ("finetune",)) != step_key(plain.replace(**{"finetune.eval_split": "dev"}), ("finetune",))
    with pytest.raises(ConfigError, match="finetune.embedding_lr_scale = -0.5"):
        resolve("demo", {"finetune.embedding_lr_scale": -0.5})
    with pytest.raises(ConfigError, match="allowed: test, dev"):
        resolve("demo", {"finetune.eval_split": "validation"})


def test_transfer_and_the_monolingual_model_score_the_split_the_config_names(monkeypatch, tmp_path):
    seen = []

    def fake_load(task, code, split, *args, **kw):
        seen.append(split)
        if split != "train":
            raise StopIteration  # the scored split is known: stop before any model is needed
        return []

    monkeypatch.setattr(experiment, "load_encoded", fake_load)
    monkeypatch.setattr(experiment, "model_languages", lambda *a: (None, None, type("D", (), {"needs_trees": False})()))
    cfg = resolve("test", {"data.transformation": "translit", "finetune.eval_split": "dev"})
    with pytest.raises(StopIteration):
        experiment.run_finetune_mono(cfg, "pos", tmp_path, tmp_path)
    with pytest.raises(StopIteration):
        experiment.run_transfer(cfg, "pos", tmp_path, tmp_path)
    assert seen == ["train", "dev", "train", "train", "dev"]


def test_flops_per_token_by_hand():
    # hidden 2, 1 layer, FFN 4, V = 3 (6 rows with the twins), blocks of 4, half the tokens masked:
    # layer 4*2*2 + 2*2*4 = 32, attention 2*4*2 = 16, MLM head 2*2 + 2*6 = 16 at masked tokens only
    # -> 6 * (32 + 16 + 0.5 * 16) = 336 FLOPs a token
    model = ModelConfig(vocab_size=3, layers=1, hidden=2, heads=1, ffn=4)  # shapes only: not validated
    assert compute.flops_per_token(model, seq_len=4, mask_prob=0.5) == 336.0
    demo = resolve("demo", {"data.transformation": "translit"})
    assert compute.pretrain_flops(demo) == compute.flat_pretrain_flops(demo.flat())
    deeper = demo.replace(**{"model.layers": 4})
    # at `demo` scale the MLM head (2V x h at 15% of the tokens) is a third of a 1-layer model's cost, so
    # 4 layers cost (4 * 65,536 + 39,014) / (65,536 + 39,014) = 2.88 times as much, not 4
    assert compute.pretrain_flops(deeper) / compute.pretrain_flops(demo) == pytest.approx(2.88, abs=0.01)


def test_calibration_points_join_each_variant_to_its_compute():
    def cell(variant, task, setting, metric, v):
        return {"language": "en", "transformation": "translit", "corpus_setting": "parallel", "variant": variant,
                "task": task, "setting": setting, "metric": metric, "value": v, "ci_low": v - .05, "ci_high": v + .05,
                "n_seeds": 1}
    cells = pd.DataFrame([cell("demo", "pos", "BZ", "accuracy", .2), cell("layers=4", "pos", "BZ", "accuracy", .4),
                          cell("demo", "pos", "delta", "delta_sup", -.5),
                          cell("demo", "alignment", "none", "alignment_at_1", .01)])
    compute_table = pd.DataFrame({"variant": ["demo", "layers=4"], "lever": ["base", "layers"],
                                  "pretrain_flops": [1e13, 2.4e13], "pretrain_seconds": [300.0, 700.0],
                                  "n_models": [1, 1]})
    points = calibration_points(cells, compute_table)
    got = points.set_index(["variant", "quantity"]).value.to_dict()
    assert got == {("demo", "pos BZ"): .2, ("layers=4", "pos BZ"): .4, ("demo", "pos Delta_Sup"): -.5,
                   ("demo", "alignment P@1"): .01}
    assert points.set_index("variant").loc["layers=4", "pretrain_flops"] == 2.4e13
    assert lever("layers=4") == "layers" and lever("demo") == "base"
    table = variant_table(points)
    assert table.loc["demo", "pos Delta_Sup"].startswith("-0.500") and table.loc["layers=4", "pretrain_flops"] == "2.40e+13"


def test_extrapolation_solves_the_log_linear_trend_for_the_target():
    # 0.2 at 1e13 and 0.3 at 1e14: +0.1 a decade, so 0.5 is reached at 1e16 (100x the largest run)
    points = pd.DataFrame({"lever": ["base", "steps", "steps"], "quantity": ["pos BZ"] * 3,
                           "pretrain_flops": [1e13, 1e14, 1e14], "value": [0.2, 0.3, 0.3]})
    got = extrapolate(points, "steps", "pos BZ", 0.5)
    assert got["pretrain_flops"] == pytest.approx(1e16) and got["times_the_largest_run"] == pytest.approx(100)
    assert extrapolate(points, "steps", "pos BZ", 0.1) is None  # behind us: not an extrapolation
    assert extrapolate(points[:1], "steps", "pos BZ", 0.5) is None  # one point: no trend
    near = points.assign(pretrain_flops=[1e13, 1.2e13, 1.2e13])  # same compute, give or take: no trend either
    assert extrapolate(near, "steps", "pos BZ", 0.5) is None


def test_targets_on_hand_made_cells():
    def cell(tr, task, setting, metric, v, half=0.02):
        return {"language": "en", "variant": "cpu", "transformation": tr, "corpus_setting": "parallel", "task": task,
                "setting": setting, "metric": metric, "value": v, "ci_low": v - half, "ci_high": v + half,
                "se": half / 1.96, "df": float("inf"), "n_examples": 1000, "n_seeds": 3, "interval": "made by hand"}
    cells = pd.DataFrame([cell("translit", "pos", "BS", "accuracy", 0.74), cell("translit", "pos", "BZ", "accuracy", 0.70),
                          cell("translit", "pos", "MZ", "accuracy", 0.10), cell("translit", "ner", "BZ", "f1", 0.12),
                          cell("translit", "ner", "MZ", "f1", 0.10), cell("translit", "xnli", "BS", "accuracy", 0.45),
                          cell("translit", "pos", "delta", "delta_sup", -0.04),
                          cell("translit+inv", "pos", "delta", "delta_sup", -0.30)])
    got = targets(cells).set_index("target").verdict
    assert got["POS: BZ - 0.85 x BS > 0"] == "met"          # 0.70 - 0.629 = 0.071, se 0.013
    assert got["POS: BZ - MZ > 0.3"] == "met"
    assert got["NER: BZ above MZ, intervals apart"] == "unclear"   # [0.10, 0.14] against [0.08, 0.12]
    assert got["XNLI: BS > 0.5"] == "not met"
    assert got["POS: Delta_Sup(translit+inv) below Delta_Sup(translit), intervals apart"] == "met"
