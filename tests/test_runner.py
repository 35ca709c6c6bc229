"""The runner: grid validation, step sharing, a real papermill run of every notebook, failure isolation."""
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from xlt_helpers.config import REPO_ROOT
from xlt_helpers.experiment import ROW_COLUMNS
from xlt_helpers.grid.execute import execute_step
from xlt_helpers.step_kinds import KINDS
from xlt_helpers.grid.plan import expand
from xlt_helpers.grid.run import run_grid
from xlt_helpers.grid.spec import load_grid
from xlt_helpers.grid.step import Step
from xlt_helpers.run_config import resolve
from xlt_helpers.storage import atomic_write_json

TEST_GRID = REPO_ROOT / "papermill_runs" / "grids" / "test.yaml"


def write_grid(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "g.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, message", [
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\ncolour: red\n", "unknown grid key 'colour'"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\nseed: [1]\n", "did you mean 'seeds'"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\noptions: {shift_special: true}\n",
     "`options` is gone"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\noverrides: {pretrain.stpes: 5}\n",
     "pretrain has no field 'stpes'; did you mean 'steps'"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\noverrides: {steps: 5}\n",
     "did you mean 'pretrain.steps'"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\noverrides: {pretrain.steps: many}\n",
     "pretrain.steps must be int, found 'many'"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\noverrides: {model.heads: 3}\n",
     "model.heads = 3: expected a divisor of model.hidden"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\noverrides: {pretrain.precision: fp16}\n",
     "allowed: auto, fp32, bf16"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\noverrides: {pretrain.seed: 3}\n",
     "set by the grid's `seeds`"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\nseeds: 0\n", "seeds must be a list"),
    ("scale: test\nlanguages: [en\n", "not valid YAML"),
    ("scale: test\nlanguages: [xx]\ntransformations: [inv]\ntasks: [pos]\n", "unknown language 'xx'"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [parse]\n", "unknown task 'parse'"),
    ("scale: test\nlanguages: [en]\ntransformations: [flip]\ntasks: [pos]\n", "unknown transformation 'flip'"),
    ("scale: huge\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\n", "unknown scale 'huge'"),
    ("scale: dmeo\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\n", "did you mean 'demo'"),
    ("languages: [en]\ntransformations: [inv]\ntasks: [pos]\n", "missing grid keys"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\nseeds: [-1]\n", "seeds: -1: expected whole numbers from 0 to 4294967295"),
    ("scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\nalignment: maybe\n", "alignment must be a bool"),
    ("scale: test\nlanguages: [en]\ntransformations: [translit0.x]\ntasks: [pos]\n", "bad transliteration"),
    ("scale: test\nlanguages: [en]\ntransformations: [syntax:fr@Q]\ntasks: [pos]\n", "unknown category 'Q'"),
])
def test_bad_grids_are_rejected_clearly(tmp_path, text, message):
    path = write_grid(tmp_path, text)
    with pytest.raises(ValueError, match=re.escape(message) if "`" in message or "(" in message else message) as err:
        load_grid(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)  # one line naming the grid file


def test_expand_shares_pretrained_models(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    steps = expand(load_grid(TEST_GRID))
    kinds = [s.kind for s in steps]
    # mono + 2 derived languages pretrained once each; 3 mono fine-tunes; 2 x 3 transfers; 1 alignment
    assert kinds.count("pretrain") == 3 and kinds.count("finetune_mono") == 3
    assert kinds.count("transfer") == 6 and kinds.count("alignment") == 1
    mono = steps[0]
    assert all(mono in s.deps for s in steps if s.kind == "finetune_mono")
    assert len({s.out_dir for s in steps}) == len(steps)
    for k, s in enumerate(steps):  # dependencies always come first
        assert all(steps.index(d) < k for d in s.deps)


def test_derived_side_options_share_the_monolingual_model(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    base = "scale: test\nlanguages: [en]\ntransformations: [translit]\ntasks: [pos]\n"
    plain = expand(load_grid(write_grid(tmp_path, base)))
    other = expand(load_grid(write_grid(tmp_path, base + "overrides: {data.corpus_setting: other_domain}\n")))
    by_kind = lambda steps, kind: {s.out_dir for s in steps if s.kind == kind}
    mono = lambda steps: {s.out_dir for s in steps if s.cfg.data.transformation is None}
    assert mono(plain) == mono(other) and len(mono(plain)) == 2          # mono pretrain + its POS fine-tune
    assert by_kind(plain, "transfer").isdisjoint(by_kind(other, "transfer"))   # the bilingual models differ
    [mono_pretrain] = [s for s in other if s.kind == "pretrain" and s.cfg.data.transformation is None]
    assert mono_pretrain.cfg.data.corpus_setting == "parallel"
    shifted = expand(load_grid(write_grid(tmp_path, base + "overrides: {data.shift_special: true}\n")))
    assert mono(shifted).isdisjoint(mono(plain))    # MZ reads the derived language's settings from its model


@pytest.fixture(scope="module")
def executed_grid(shared_runs):
    """Run the test grid once: every notebook through papermill at `test` scale."""
    return run_grid(TEST_GRID, log=lambda *a: None)


def test_every_notebook_runs_and_the_report_renders(executed_grid):
    df = pd.read_csv(executed_grid / "results.csv")
    assert set(ROW_COLUMNS) <= set(df.columns)
    transfer = df[df.setting.isin(["BS", "BZ", "MZ"])]
    assert len(transfer) == 2 * 3 * 3
    assert set(df[df.metric == "delta_sup"].transformation) == {"translit", "inv"}
    assert (df[df.metric == "subword_overlap"].set_index("transformation").value.to_dict()
            == {"mono": 1.0, "translit": 0.0, "inv": 1.0})
    assert df[df.metric == "alignment_at_1"].shape[0] == 1
    html = (executed_grid / "report.html").read_text()
    for r in df[df.metric == "delta_sup"].itertuples():  # each Delta_Sup of the grid is in the report's tables
        assert f"{r.value:+.3f} [" in html, r
    assert json.loads((executed_grid / "failures.json").read_text()) == []
    for step in expand(load_grid(TEST_GRID)):
        assert (step.out_dir / step.notebook).exists(), step.name


def test_the_config_travels_with_the_results(executed_grid):
    steps = expand(load_grid(TEST_GRID))
    for step in steps:
        saved = json.loads(step.results.read_text())
        assert saved["config"] == step.cfg.to_dict() and saved["code_fingerprint"] == step.code
        assert step.state() == "done"
    pre = next(s for s in steps if s.kind == "pretrain")
    meta = json.loads((pre.out_dir / "model" / "xlt_meta.json").read_text())
    assert meta["config"] == pre.cfg.to_dict()
    results = pd.read_csv(executed_grid / "results.csv")
    configs = pd.read_csv(executed_grid / "configs.csv")
    joined = results.merge(configs, on="step", how="left", validate="many_to_one")
    assert joined["kind"].notna().all() and len(configs) == len(steps)
    assert (joined["pretrain.seed"] == joined["seed"]).all() and set(configs.state) == {"done"}


def test_finished_steps_are_never_recomputed(executed_grid, shared_runs, monkeypatch):
    def fail(*a, **k):
        raise AssertionError("a finished step was executed again")
    monkeypatch.setattr("xlt_helpers.grid.execute.execute_step", fail)
    monkeypatch.setattr("xlt_helpers.grid.aggregate.render_report", lambda *a, **k: None)
    run_grid(TEST_GRID, log=lambda *a: None)


@pytest.mark.slow
def test_a_failing_step_is_recorded_and_does_not_stop_the_others(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    ran = []

    def fake_execute(step, log=print, env=None):
        ran.append(step.name)
        if step.kind == "pretrain" and step.cfg.data.transformation == "inv":
            atomic_write_json({"step": step.name, "error": "RuntimeError: boom"}, step.error)
            return False
        atomic_write_json({"code_fingerprint": step.code,
                           "rows": [{"language": "en", "transformation": step.cfg.data.transformation or "mono",
                                     "task": step.params.get("task", "pretrain"), "setting": "BZ",
                                     "metric": "accuracy", "value": 0.5, "seed": 0, "scale": "test"}]},
                          step.results)
        for name in KINDS[step.kind].outputs:  # the model folder its dependants read: part of being done
            (step.out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (step.out_dir / name).write_text("{}")
        return True

    monkeypatch.setattr("xlt_helpers.grid.execute.execute_step", fake_execute)
    monkeypatch.setattr("xlt_helpers.grid.aggregate.render_report", lambda *a, **k: None)
    report = run_grid(TEST_GRID, log=lambda *a: None)
    steps = expand(load_grid(TEST_GRID))
    inv_transfers = [s for s in steps if s.kind == "transfer" and s.cfg.data.transformation == "inv"]
    assert all(s.name not in ran and s.error.exists() for s in inv_transfers)
    assert "dependency failed" in json.loads(inv_transfers[0].error.read_text())["error"]
    assert all(s.done for s in steps if s.cfg.data.transformation != "inv")
    failures = json.loads((report / "failures.json").read_text())
    assert len(failures) == 1 + len(inv_transfers)
    assert len(pd.read_csv(report / "results.csv")) == len(steps) - len(failures)


@pytest.mark.slow
def test_execute_step_records_a_notebook_error(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    step = Step("alignment", tmp_path / "runs" / "broken", resolve("test", {"data.transformation": "translit"}),
                {"pretrained": str(tmp_path / "no_such_model")})
    assert execute_step(step, log=lambda *a: None) is False
    err = json.loads(step.error.read_text())
    assert "no_such_model" in err["error"] + err["traceback"] and not step.results.exists()
    # the kernel's start-up warnings stay out of the grid log; the error above still came through
    assert "IPKernelApp" not in capfd.readouterr().err


@pytest.mark.slow
def test_status_does_not_load_torch(tmp_path):
    """`status` reads folders and resolves configs only: no torch, transformers or scikit-learn (seconds each)."""
    import subprocess
    import sys

    code = ("import sys; from xlt_helpers.grid.run import status; status(sys.argv[1]); "
            "print(sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(TEST_GRID)], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "XLT_RUNS_DIR": str(tmp_path / "runs")})
    assert out.stdout.strip() == "[]"
