"""Faults a user meets: kills at awkward moments, truncated files, empty data, two runners, Ctrl-C.

Each case ends in one line naming the file or step and what was expected, and loses no finished work.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from xlt_helpers import __main__ as cli
from xlt_helpers.config import data_dir
from xlt_helpers.data import load_task
from xlt_helpers.errors import DataFormatError
from xlt_helpers.grid.execute import run_one
from xlt_helpers.grid.notebooks import KERNEL_ARGS, kernel_manager_class
from xlt_helpers.grid.plan import expand
from xlt_helpers.grid.run import to_run
from xlt_helpers.grid.spec import load_grid
from xlt_helpers.pretrain import pretrain
from xlt_helpers.run_config import resolve
from xlt_helpers.storage import atomic_write_json

GRID = "scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\nalignment: false\n"


def _cfg(**kw):
    return resolve("test", {"data.transformation": "translit", "pretrain.steps": 6, "pretrain.checkpoint_every": 3,
                            **kw})


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """An uninterrupted 6-step pretraining (its own cache)."""
    base = tmp_path_factory.mktemp("full")
    mp = pytest.MonkeyPatch()
    mp.setenv("XLT_CACHE_DIR", str(base / "cache"))
    meta = pretrain(_cfg(), base / "out", progress=False)
    yield base, meta
    mp.undo()


@pytest.mark.slow
def test_a_kill_right_after_the_final_checkpoint_resumes_to_the_same_result(full_run, tmp_path, monkeypatch):
    base, full = full_run
    monkeypatch.setenv("XLT_CACHE_DIR", str(base / "cache"))
    import xlt_helpers.pretrain as P

    real_save, saves = P.atomic_torch_save, []

    def kill_after_last_checkpoint(obj, path):
        real_save(obj, path)
        saves.append(obj["step"])
        if obj["step"] == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr(P, "atomic_torch_save", kill_after_last_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        pretrain(_cfg(), tmp_path / "killed", progress=False)
    assert saves == [3, 6] and not (tmp_path / "killed" / "model").exists()
    resumed = pretrain(_cfg(), tmp_path / "killed", progress=False)  # no step left: only the model is saved
    assert resumed["final_loss"] == full["final_loss"]
    assert resumed["tokens_per_s"] is not None
    assert (tmp_path / "killed" / "model" / "xlt_meta.json").exists()


@pytest.mark.slow
def test_a_truncated_checkpoint_is_set_aside_and_training_starts_over(full_run, tmp_path, monkeypatch, capsys):
    base, full = full_run
    monkeypatch.setenv("XLT_CACHE_DIR", str(base / "cache"))
    out = tmp_path / "trunc"
    out.mkdir()
    good = (base / "out" / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(good[: len(good) // 2])
    meta = pretrain(_cfg(), out, progress=False)
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and str(out / "checkpoint.pt") in printed[0] and "unreadable checkpoint" in printed[0]
    assert (out / "checkpoint.unreadable.pt").exists()
    assert meta["final_loss"] == full["final_loss"]
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 6


@pytest.fixture
def data_with_empty(tmp_path, monkeypatch):
    """A data directory that links to the real one, except for files the test empties."""
    real = data_dir()
    root = tmp_path / "data"
    root.mkdir()
    for entry in real.iterdir():
        (root / entry.name).symlink_to(entry)
    monkeypatch.setenv("XLT_DATA_DIR", str(root))

    def empty(rel: str) -> Path:
        parts = Path(rel).parts
        cur_real, cur = real, root
        for part in parts[:-1]:  # replace the linked folders on the way by real ones with linked entries
            cur_real, nxt = cur_real / part, cur / part
            if nxt.is_symlink():
                nxt.unlink()
                nxt.mkdir()
                for e in cur_real.iterdir():
                    (nxt / e.name).symlink_to(e)
            cur = nxt
        (cur / parts[-1]).unlink()
        (cur / parts[-1]).write_text("")
        return cur / parts[-1]
    return empty


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_empty_task_file_is_refused_with_its_name(data_with_empty, split):
    path = data_with_empty(f"pos_xtreme/en/udpos.{split}.en.tsv")
    with pytest.raises(DataFormatError) as err:
        load_task("pos", "en", split)
    assert str(err.value) == f"{path}: expected at least one pos example (en/{split}), found 'none'"


def test_fine_tuning_without_examples_stops_at_once():
    from xlt_helpers.finetune import finetune
    from xlt_helpers.tasks import get_task

    t0 = time.time()
    with pytest.raises(ValueError, match="fine-tuning pos: expected at least one training example, found none"):
        finetune("/nonexistent/model", get_task("pos"), [], resolve("test", {}).finetune)
    assert time.time() - t0 < 5


# ---- the runner: results files, exit codes, two runners -------------------------------------------

def _grid(tmp_path, monkeypatch, text=GRID):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    path = tmp_path / "g.yaml"
    path.write_text(text)
    return path, expand(load_grid(path))


def _fake_results(step):
    atomic_write_json({"code_fingerprint": step.code,
                       "rows": [{"language": "en", "transformation": step.cfg.data.transformation or "mono",
                                 "task": step.params.get("task", "pretrain"), "setting": "BZ",
                                 "metric": "accuracy", "value": 0.5, "seed": 0, "scale": "test"}]}, step.results)


@pytest.mark.parametrize("content, expected", [
    ('{"rows": [{"language": "en", "val', "unreadable, expected JSON"),
    ('{"rows": [], "code_fingerprint": "x"}', "expected a mapping with a non-empty list 'rows'"),
])
def test_a_truncated_or_empty_results_file_is_not_done(tmp_path, monkeypatch, content, expected):
    path, steps = _grid(tmp_path, monkeypatch)
    step = steps[0]
    step.out_dir.mkdir(parents=True)
    step.results.write_text(content)
    state = step.state()
    assert state.startswith(f"failed: {step.results}: ") and expected in state and "\n" not in state
    assert step in to_run(steps, log=lambda *a: None)  # recomputed by the next run
    rc = cli.main(["report", str(path)])
    assert rc == 2


def test_report_names_a_truncated_results_file(tmp_path, monkeypatch, capsys):
    path, steps = _grid(tmp_path, monkeypatch)
    steps[0].out_dir.mkdir(parents=True)
    steps[0].results.write_text('{"rows": [')
    assert cli.main(["report", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {steps[0].results}: unreadable, expected JSON")


def test_run_exits_non_zero_when_a_step_failed(tmp_path, monkeypatch, capsys):
    path, steps = _grid(tmp_path, monkeypatch)

    def fake_execute(step, log=print, env=None):
        if step.kind == "pretrain" and step.cfg.data.transformation == "inv":
            atomic_write_json({"step": step.name, "error": "RuntimeError: boom\nsecond line"}, step.error)
            return False
        _fake_results(step)
        return True

    monkeypatch.setattr("xlt_helpers.grid.execute.execute_step", fake_execute)
    monkeypatch.setattr("xlt_helpers.grid.run.aggregate", lambda *a, **k: tmp_path)
    assert cli.main(["run", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 2 step(s) failed, first ") and "boom second line" in err[0]
    assert cli.main(["status", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == len(steps)  # one line per step, the failed one's error included


def test_a_second_runner_waits_for_the_step_and_keeps_its_results(tmp_path, monkeypatch):
    """Runner A holds a step's lock and finishes it while runner B waits; B must not run or delete it."""
    _, steps = _grid(tmp_path, monkeypatch)
    step = steps[0]
    step.out_dir.mkdir(parents=True)
    import fcntl

    held = open(step.out_dir / ".lock", "a")
    fcntl.flock(held, fcntl.LOCK_EX)
    ran, lines = [], []
    monkeypatch.setattr("xlt_helpers.grid.execute.execute_step", lambda s, log=print, env=None: ran.append(s) or True)
    other = threading.Thread(target=lambda: lines.append(run_one(step, log=lines.append)))
    other.start()
    time.sleep(0.5)
    assert lines == [f"  wait   {step.name}: another runner is running it"] and other.is_alive()
    _fake_results(step)   # runner A finishes the step, then releases the lock
    held.close()
    other.join(5)
    assert not ran and lines[-1] is True and "finished by another runner" in lines[-2]
    assert step.state() == "done"


def test_a_dependency_that_another_runner_is_running_is_waited_for(tmp_path, monkeypatch):
    _, steps = _grid(tmp_path, monkeypatch)
    dep = steps[0]
    child = next(s for s in steps if dep in s.deps)
    dep.out_dir.mkdir(parents=True)
    import fcntl

    held = open(dep.out_dir / ".lock", "a")
    fcntl.flock(held, fcntl.LOCK_EX)
    ran, result = [], []
    monkeypatch.setattr("xlt_helpers.grid.execute.execute_step",
                        lambda s, log=print, env=None: ran.append(s.name) or True)
    t = threading.Thread(target=lambda: result.append(run_one(child, log=lambda *a: None)))
    t.start()
    time.sleep(0.5)
    assert t.is_alive() and not ran
    _fake_results(dep)
    held.close()
    t.join(5)
    assert result == [True] and ran == [child.name] and not child.error.exists()


# ---- real kernels: Ctrl-C, a killed runner, a quiet shutdown ---------------------------------------

def _kernels_of(pid: int) -> list:
    import psutil

    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


def _start_runner(tmp_path, shared_runs, grid_text=GRID):
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text)
    env = {**os.environ, "XLT_RUNS_DIR": str(tmp_path / "runs"), "XLT_CACHE_DIR": str(shared_runs / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "xlt_helpers", "run", str(grid)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return grid, env, proc


def _wait_for_kernel(proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        kernels = _kernels_of(proc.pid)
        if kernels:
            time.sleep(3)  # inside the notebook
            return kernels
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    raise AssertionError("no kernel started")


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_grid_and_the_step_resumes(tmp_path, shared_runs, how):
    grid, env, proc = _start_runner(tmp_path, shared_runs)
    kernels = _wait_for_kernel(proc)
    proc.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted" in out and "Traceback" not in out
    time.sleep(0.5)
    assert not any(k.is_running() and k.status() != "zombie" for k in kernels), "the kernel outlived the runner"
    status = subprocess.run([sys.executable, "-m", "xlt_helpers", "status", str(grid)], env=env, text=True,
                            capture_output=True, check=True).stdout
    assert "interrupted" in status and "failed" not in status, status
    if how == "ctrl-c":  # the next run goes on from there and finishes the grid
        rerun = subprocess.run([sys.executable, "-m", "xlt_helpers", "run", str(grid)], env=env, text=True,
                               capture_output=True, timeout=600)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        assert "0 failed" in rerun.stdout


def test_a_killed_runner_takes_its_kernel_with_it(tmp_path, shared_runs):
    _, _, proc = _start_runner(tmp_path, shared_runs)
    kernels = _wait_for_kernel(proc)
    proc.kill()
    proc.wait()
    deadline = time.time() + 5  # ipykernel polls its parent once a second
    while time.time() < deadline and any(k.is_running() and k.status() != "zombie" for k in kernels):
        time.sleep(0.1)
    assert not any(k.is_running() and k.status() != "zombie" for k in kernels)


def _shutdown_signals(manager_class) -> list[int]:
    """Start a kernel with ``manager_class``, shut it down as nbclient does; the signals it was sent."""
    import asyncio

    async def go():
        km = manager_class(kernel_name="python3")
        await km.start_kernel(extra_arguments=KERNEL_ARGS)
        sent, real = [], km.provisioner.send_signal

        async def spy(signum):
            sent.append(signum)
            await real(signum)
        km.provisioner.send_signal = spy
        await km.shutdown_kernel(now=False)
        assert not await km.is_alive()
        return sent
    return asyncio.run(go())


@pytest.mark.slow
def test_kernels_are_shut_down_without_an_interrupt():
    from jupyter_client.manager import AsyncKernelManager

    assert signal.SIGINT in _shutdown_signals(AsyncKernelManager)  # why a finished step logged KeyboardInterrupt
    assert signal.SIGINT not in _shutdown_signals(kernel_manager_class())


# ---- grids and the registry: refused up front, with one line ---------------------------------------

@pytest.mark.parametrize("transformations, message", [
    ("[translit+]", "transformations: 'translit+' has an empty step: expected steps joined by '+'"),
    ("[syntax:xx]", "transformations: 'syntax:xx': no UD treebank for 'xx'"),
    ("[syntax:fr@N~xx@V]", "transformations: 'syntax:fr@N~xx@V': no UD treebank for 'xx'"),
])
def test_transformations_that_cannot_run_are_refused_up_front(tmp_path, transformations, message):
    path = tmp_path / "g.yaml"
    path.write_text(f"scale: test\nlanguages: [en]\ntransformations: {transformations}\ntasks: [pos]\n")
    with pytest.raises(ValueError) as err:
        load_grid(path)
    assert str(err.value).startswith(f"{path}: {message}") and "\n" not in str(err.value)


def _registry_copy(tmp_path, monkeypatch, edit):
    from xlt_helpers import data

    text = edit(data.REGISTRY_PATH.read_text())
    reg = tmp_path / "languages.yaml"
    reg.write_text(text)
    monkeypatch.setenv("XLT_LANGUAGES_FILE", str(reg))  # the registry cache is keyed by the file
    return reg


def test_a_registry_split_typo_is_refused(tmp_path, monkeypatch):
    from xlt_helpers import data

    reg = _registry_copy(tmp_path, monkeypatch, lambda t: t.replace(
        "      train: {path: pos_xtreme/en/udpos.train.en.tsv", "      trian: {path: pos_xtreme/en/udpos.train.en.tsv"))
    with pytest.raises(DataFormatError) as err:
        data.languages()
    assert str(err.value) == f"{reg}: expected en.tasks.pos: splits among train, dev, test, found 'trian'"


def test_a_language_without_a_pretraining_corpus_is_refused(tmp_path, monkeypatch):
    import yaml

    def drop_fr_pretrain(text):
        raw = yaml.safe_load(text)
        for key in [k for k in raw["fr"] if k.startswith("pretrain")]:
            del raw["fr"][key]
        return yaml.safe_dump(raw)
    _registry_copy(tmp_path, monkeypatch, drop_fr_pretrain)
    path = tmp_path / "g.yaml"
    path.write_text("scale: test\nlanguages: [fr]\ntransformations: [inv]\ntasks: [pos]\n")
    with pytest.raises(ValueError, match=r"language 'fr' has no `pretrain` corpus in xlt_helpers/languages.yaml"):
        load_grid(path)


@pytest.mark.parametrize("ids, expected, found", [
    (("1", "-1"), "an integer word ID from 1, a range like 1-2 or an empty node like 1.1", "-1"),
    (("1", "1"), "word ID 2 (IDs count up from 1 in each sentence)", "1"),
    (("1", "3"), "word ID 2 (IDs count up from 1 in each sentence)", "3"),
])
def test_conllu_word_ids_must_count_up(tmp_path, ids, expected, found):
    from xlt_helpers.data import read_conllu

    path = tmp_path / "bad.conllu"
    path.write_text("".join(f"{i}\tword{k}\t_\tNOUN\t_\t_\t0\troot\t_\t_\n" for k, i in enumerate(ids)) + "\n")
    with pytest.raises(DataFormatError) as err:
        read_conllu(path)
    assert str(err.value) == f"{path}:2: expected {expected}, found {found!r}"


def test_conllu_ranges_and_empty_nodes_are_still_skipped(tmp_path):
    from xlt_helpers.data import read_conllu

    path = tmp_path / "ok.conllu"
    path.write_text("# c\n1-2\tdu\t_\t_\t_\t_\t_\t_\t_\t_\n1\tde\t_\tADP\t_\t_\t0\troot\t_\t_\n"
                    "2\tle\t_\tDET\t_\t_\t1\tdet\t_\t_\n2.1\tx\t_\t_\t_\t_\t_\t_\t_\t_\n\n"
                    "1\tnext\t_\tNOUN\t_\t_\t0\troot\t_\t_\n")
    assert [s.words for s in read_conllu(path)] == [("de", "le"), ("next",)]


@pytest.mark.parametrize("steps", [0, -3])
def test_pretraining_without_steps_is_refused_up_front(tmp_path, steps):
    path = tmp_path / "g.yaml"
    path.write_text(f"scale: test\nlanguages: [en]\ntransformations: [inv]\ntasks: [pos]\n"
                    f"overrides: {{pretrain.steps: {steps}}}\n")
    with pytest.raises(ValueError) as err:
        load_grid(path)
    assert str(err.value) == (f"{path}: overrides: pretrain.steps = {steps}: expected a positive integer "
                              "(a model needs at least one optimizer step)")
