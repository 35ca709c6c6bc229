"""The run configuration: resolution, validation, folder keys, code and data fingerprints, stale steps."""
import json

import pytest

from xlt_helpers import fingerprint
from xlt_helpers.__main__ import main
from xlt_helpers.config import REPO_ROOT
from xlt_helpers.run_config import (GROUPS, PRESETS, ConfigError, field_names, from_dict, load, resolve,
                                    step_key)
from xlt_helpers.grid.keys import model_dir, step_dir
from xlt_helpers.step_kinds import KINDS
from xlt_helpers.grid.plan import expand
from xlt_helpers.grid.run import status, to_run
from xlt_helpers.grid.spec import load_grid
from xlt_helpers.storage import atomic_write_json

TEST_GRID = REPO_ROOT / "papermill_runs" / "grids" / "test.yaml"


def test_resolve_fills_every_auto_field(monkeypatch):
    monkeypatch.delenv("XLT_CPU_BF16", raising=False)
    monkeypatch.delenv("XLT_COMPILE", raising=False)
    cfg = resolve("test", {"pretrain.seed": 7, "pretrain.device": "cpu", "finetune.device": "cpu"})
    assert cfg.finetune.seed == 7                                   # follows the pretraining seed
    assert cfg.model.max_positions == max(cfg.pretrain.seq_len, cfg.finetune.max_len) + 2
    assert cfg.pretrain.precision == cfg.finetune.precision == "fp32" and cfg.pretrain.compile is False
    assert resolve("test", {"pretrain.seed": 7, "finetune.seed": 2}).finetune.seed == 2
    monkeypatch.setenv("XLT_CPU_BF16", "1")
    monkeypatch.setenv("XLT_COMPILE", "1")
    bf16 = resolve("test", {"pretrain.seed": 7, "pretrain.device": "cpu", "finetune.device": "cpu"})
    assert bf16.pretrain.precision == "bf16" and bf16.pretrain.compile is True
    # the environment switches reach the folder key: bf16 and fp32 runs never share a folder
    groups = ("model", "data", "pretrain")
    assert step_key(bf16, groups) != step_key(cfg, groups)


def test_presets_and_overrides():
    assert set(PRESETS) == {"test", "demo", "cpu", "gpu_small", "paper"}
    paper = resolve("paper")
    for g, cls in GROUPS.items():  # `paper` is the defaults themselves
        for name, value in PRESETS["paper"].get(g, {}).items():
            assert getattr(getattr(paper, g), name) == value
    demo = resolve("demo", {"pretrain.steps": 50})
    assert demo.pretrain.steps == 50 and demo.model.layers == PRESETS["demo"]["model"]["layers"]
    assert resolve("demo", {"pretrain": {"steps": 50}}) == demo     # grouped and dotted forms agree
    assert resolve("demo", {"pretrain.lr": 1}).pretrain.lr == 1.0 and isinstance(
        resolve("demo", {"pretrain.lr": 1}).pretrain.lr, float)
    assert step_key(resolve("demo", {"pretrain.lr": 1}), ("pretrain",)) == step_key(
        resolve("demo", {"pretrain.lr": 1.0}), ("pretrain",))


@pytest.mark.parametrize("overrides, message", [
    ({"pretrain.stpes": 5}, "pretrain has no field 'stpes'; did you mean 'steps'"),
    ({"layers": 2}, "did you mean 'model.layers'"),
    ({"modle.layers": 2}, "unknown field 'modle.layers'"),
    ({"pretrain.steps": True}, "pretrain.steps must be int"),
    ({"model.dropout": "none"}, "model.dropout must be float"),
    ({"pretrain.batch_size": 0}, "pretrain.batch_size = 0: expected a positive integer"),
    ({"pretrain.grad_accum": 3}, "expected a divisor of pretrain.batch_size"),
    ({"pretrain.objectives": ["mlm", "xlm"]}, "'xlm' is not allowed"),
    ({"pretrain.optimizer": "adam"}, "did you mean 'adamw'"),
    ({"data.language": "xx"}, "'xx' is not a registered language"),
    ({"data.transformation": "flip"}, "unknown transformation 'flip'"),
    ({"data.derived_fraction": 1.5}, "expected a share in (0, 1]"),
    ({"evaluate.retrieval_layer": 9}, "expected null or a layer in 0..1"),
    ({"model.max_positions": 10}, "model.max_positions = 10"),
])
def test_bad_values_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as err:
        resolve("test", overrides, where="g.yaml: overrides")
    text = str(err.value)
    assert message in text and text.startswith("g.yaml: overrides") and "\n" not in text


def test_a_config_travels_as_json():
    cfg = resolve("test", {"data.transformation": "translit", "pretrain.steps": 3})
    assert from_dict(cfg.to_dict()) == cfg
    assert load(json.dumps(cfg.to_dict())) == cfg
    assert load('{"preset": "test", "data.transformation": "translit", "pretrain.steps": 3}') == cfg
    assert set(cfg.flat()) == set(field_names())
    with pytest.raises(ConfigError, match="not valid JSON"):
        load("{preset: test")


def test_each_step_is_keyed_by_what_it_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    base = resolve("test", {"data.transformation": "translit"})
    dirs = lambda cfg: {k: step_dir(cfg, k, "pos" if k in ("transfer",) else None)  # noqa: E731
                        for k in ("pretrain", "transfer", "alignment")}
    same_model = dirs(base.replace(**{"pretrain.checkpoint_every": 1}))   # does not change a number
    assert same_model == dirs(base)
    ft = dirs(base.replace(**{"finetune.lr": 0.5}))                        # a fine-tuning setting
    assert ft["pretrain"] == dirs(base)["pretrain"] and ft["transfer"] != dirs(base)["transfer"]
    ev = dirs(base.replace(**{"evaluate.alignment_heldout": 0.3}))
    assert ev["pretrain"] == dirs(base)["pretrain"] and ev["alignment"] != dirs(base)["alignment"]
    assert dirs(base.replace(**{"pretrain.steps": 13}))["pretrain"] != dirs(base)["pretrain"]
    assert dirs(base.replace(**{"pretrain.mask_prob": 0.2}))["pretrain"] != dirs(base)["pretrain"]


def _edited(module: str) -> dict:
    sources = fingerprint.package_sources()
    sources[module] += "\n# an edit\n"
    return sources


@pytest.mark.slow
def test_code_fingerprints_follow_the_modules_each_step_runs():
    kinds = list(fingerprint.ROOTS)
    now = {k: fingerprint.code_fingerprint(k, fingerprint.package_sources()) for k in kinds}
    changed = lambda module: {k for k in kinds if fingerprint.code_fingerprint(k, _edited(module)) != now[k]}  # noqa: E731
    assert changed("encoding") == {"finetune_mono", "transfer", "retrieval"}
    assert changed("tasks") == set(kinds)            # the task table says which files serve a task
    assert changed("alignment") == {"alignment", "retrieval"}
    assert changed("pretrain") == set(kinds)          # every step reads a pretrained model
    assert changed("syntax.reorder") == set(kinds)    # Syntax builds the pretraining corpus
    sources = fingerprint.package_sources()
    wings = sorted(m for m in sources if m.split(".")[0] in ("grid", "report"))
    assert "grid.run" in wings and "report.intervals" in wings
    for module in [*wings, "storage"]:  # running steps and reading their results changes no number
        assert changed(module) == set(), module
    # every module is either followed from a step or declared unable to change a number
    reached = set().union(*(fingerprint.modules_of(k, sources) for k in kinds))
    assert {m for m in set(sources) - reached if not fingerprint.is_neutral(m)} == set()


def _fake_done(step, code=None):
    row = {"language": "en", "transformation": "mono", "task": "pos", "setting": "BZ", "metric": "accuracy",
           "value": 0.5, "seed": 0, "scale": "test"}  # a results.json without rows is not done
    atomic_write_json({"rows": [row], "config": step.cfg.to_dict(), "code_fingerprint": code or step.code},
                      step.results)
    for name in KINDS[step.kind].outputs:  # the model folder its dependants read: part of being done
        (step.out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (step.out_dir / name).write_text("{}")


def test_a_code_change_marks_exactly_the_affected_steps_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    steps = expand(load_grid(TEST_GRID))
    for s in steps:
        _fake_done(s)
    assert {state for _, state in status(TEST_GRID)} == {"done"}
    edited = _edited("encoding")  # fine-tuning's inputs: no pretraining or alignment reads them
    monkeypatch.setattr(fingerprint, "package_sources", lambda: edited)
    fingerprint._current.cache_clear()
    try:
        states = dict(status(TEST_GRID))
        by_kind = {s.kind: states[s.name] for s in steps}
        assert by_kind == {"pretrain": "done", "alignment": "done", "finetune_mono": "stale", "transfer": "stale"}
        lines = []
        fresh = expand(load_grid(TEST_GRID))
        assert to_run(fresh, rerun_stale=False, log=lines.append) == []
        stale = [s for s in fresh if s.kind in ("finetune_mono", "transfer")]
        assert len(lines) == len(stale) and all("stale" in ln and "--rerun-stale" in ln for ln in lines)
        assert [s.name for s in to_run(fresh, rerun_stale=True, log=lambda *a: None)] == [s.name for s in stale]
    finally:
        fingerprint._current.cache_clear()


def test_results_without_a_fingerprint_are_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    step = expand(load_grid(TEST_GRID))[0]
    _fake_done(step, code="0ld")
    assert step.state() == "stale"


def _tiny_registry(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "c").mkdir(parents=True)
    (data / "c" / "en.txt").write_text("one sentence\n")
    reg = tmp_path / "languages.yaml"
    reg.write_text("en:\n  name: English\n  pretrain: {path: c/en.txt, format: sentence_per_line}\n  tasks: {}\n")
    monkeypatch.setenv("XLT_DATA_DIR", str(data))
    monkeypatch.setenv("XLT_LANGUAGES_FILE", str(reg))
    return data / "c" / "en.txt", reg


def test_a_replaced_corpus_gets_a_new_model_folder(tmp_path, monkeypatch):
    import os

    corpus, reg = _tiny_registry(tmp_path, monkeypatch)
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    cfg = resolve("test")
    before = model_dir(cfg)
    corpus.write_text("another, longer sentence\n")
    os.utime(corpus, (1_700_000_000, 1_700_000_000))
    after = model_dir(cfg)
    assert after != before
    # the registry entry counts too (here: the corpus read twice)
    reg.write_text(reg.read_text().replace("{path: c/en.txt,", "{paths: [c/en.txt, c/en.txt],"))
    os.utime(reg, (1_700_000_100, 1_700_000_100))
    assert model_dir(cfg) != after


def test_a_fresh_copy_of_the_same_data_keeps_its_run_folders(tmp_path, monkeypatch):
    import os

    corpus, _ = _tiny_registry(tmp_path, monkeypatch)
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    cfg = resolve("test")
    before = model_dir(cfg)
    os.utime(corpus, (1_800_000_000, 1_800_000_000))  # a new copy: same bytes, a new modification time
    assert model_dir(cfg) == before
    # same size, same modification time, other bytes: the folder changes (content, not stamps, is the key)
    st = corpus.stat()
    corpus.write_text("one sentencE\n")
    os.utime(corpus, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setattr("xlt_helpers.fingerprint._digests", {})
    import shutil
    shutil.rmtree(tmp_path / "cache" / "file_digests")
    assert model_dir(cfg) != before


def test_the_tokenizer_cache_follows_the_corpus(tmp_path, monkeypatch):
    from xlt_helpers.tokenizer import tokenizer_path

    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path))
    assert tokenizer_path(["en"], 320, [["a b"]]) != tokenizer_path(["en"], 320, [["a c"]])
    assert tokenizer_path(["en"], 320, [["a b"]]) == tokenizer_path(["en"], 320, [["a b"]])


def test_the_cli_refuses_a_bad_grid_in_one_line(tmp_path, capsys):
    grid = tmp_path / "typo.yaml"
    grid.write_text("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\n"
                    "overrides: {finetune.epoch: 2}\n")
    assert main(["run", str(grid)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "typo.yaml" in err and "did you mean 'epochs'" in err
    assert "Traceback" not in err
    assert main(["config", "test", "pretrain.steps=3"]) == 0
    assert json.loads(capsys.readouterr().out)["pretrain"]["steps"] == 3


def test_finetune_seeds_reuse_the_pretrained_models(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    base = "scale: test\nseeds: [0]\nlanguages: [en]\ntransformations: [translit]\ntasks: [pos, retrieval]\n"
    one = expand(load_grid(_grid(tmp_path, base)))
    two = expand(load_grid(_grid(tmp_path, base + "finetune_seeds: [0, 5]\n")))
    kinds = lambda steps, kind: {s.out_dir for s in steps if s.kind == kind}  # noqa: E731
    for kind in ("pretrain", "alignment", "retrieval"):       # no fine-tuning: shared by both seeds
        assert kinds(two, kind) == kinds(one, kind)
    for kind in ("finetune_mono", "transfer"):
        assert kinds(one, kind) < kinds(two, kind) and len(kinds(two, kind)) == 2 * len(kinds(one, kind))
    assert {s.cfg.finetune.seed for s in two if s.kind == "transfer"} == {0, 5}
    for s in two:  # a transfer reads the monolingual fine-tune of its own seed
        if s.kind == "transfer":
            assert s.deps[1].cfg.finetune.seed == s.cfg.finetune.seed
    with pytest.raises(ConfigError, match="set by the grid's `finetune_seeds`"):
        load_grid(_grid(tmp_path, base + "overrides: {finetune.seed: 1}\n"))


def _grid(tmp_path, text):
    path = tmp_path / f"g{abs(hash(text))}.yaml"
    path.write_text(text)
    return path
