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
from xlt_helpers.grid.keys import model_dir
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
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 6


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
    """A finished step's files: results.json, and the model folder of the kinds whose dependants read one."""
    from xlt_helpers.step_kinds import KINDS

    for name in KINDS[step.kind].outputs:
        (step.out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (step.out_dir / name).write_text("{}")
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


# ---- issue 29: refused before anything runs, one line each -------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("pretrain.lr", float("inf")), ("finetune.epochs", float("inf")), ("pretrain.lr", float("nan")),
    ("model.init_range", float("inf")), ("pretrain.betas", [0.9, float("nan")]), ("finetune.lr", float("-inf")),
])
def test_infinite_and_nan_floats_are_refused(field, value):
    with pytest.raises(ValueError) as err:
        resolve("test", {field: value}, where="g.yaml: overrides")
    shown = tuple(value) if isinstance(value, list) else value
    assert str(err.value) == f"g.yaml: overrides: {field} = {shown!r}: expected a finite number"


@pytest.mark.parametrize("arg, shown", [("pretrain.lr=Infinity", "inf"), ("finetune.epochs=NaN", "nan"),
                                        ("pretrain.betas=[0.9,-Infinity]", "(0.9, -inf)")])
def test_config_command_refuses_infinity_in_one_line(capsys, arg, shown):
    assert cli.main(["config", "test", arg]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        f"error: command line: {arg.split('=')[0]} = {shown}: expected a finite number\n")


@pytest.mark.parametrize("field, value", [("pretrain.seed", 2**63), ("pretrain.seed", 2**32), ("pretrain.seed", -1),
                                          ("finetune.seed", 2**64), ("finetune.seed", -5)])
def test_seeds_outside_every_generators_range_are_refused(field, value):
    with pytest.raises(ValueError) as err:
        resolve("test", {field: value})
    assert str(err.value).startswith(f"config: {field} = {value}: expected ") and \
        "a whole number from 0 to 4294967295" in str(err.value)


def test_the_largest_seed_is_accepted():
    assert resolve("test", {"pretrain.seed": 2**32 - 1}).finetune.seed == 2**32 - 1


@pytest.mark.parametrize("max_len", [1, 2, 5])
def test_finetune_max_len_below_one_token_per_text_is_refused(max_len):
    with pytest.raises(ValueError) as err:
        resolve("test", {"finetune.max_len": max_len})
    assert str(err.value).startswith(f"config: finetune.max_len = {max_len}: expected at least 6: ")
    assert resolve("test", {"finetune.max_len": 6}).finetune.max_len == 6


def test_a_block_without_a_token_is_refused():
    with pytest.raises(ValueError, match=r"^config: pretrain.seq_len = 1: expected at least 2"):
        resolve("test", {"pretrain.seq_len": 1})


@pytest.mark.parametrize("spelling, canonical", [
    ("translit1.0", "translit"), ("translit1", "translit"), ("translit + inv", "translit+inv"),
    ("translit0.50", "translit0.5"), ("syntax:fr@V~fr@N", "syntax:fr"), ("syntax:hi@V~fr@N", "syntax:fr@N~hi@V"),
])
def test_two_spellings_of_a_transformation_are_one_model(spelling, canonical):
    a = resolve("test", {"data.transformation": spelling})
    b = resolve("test", {"data.transformation": canonical})
    assert a.data.transformation == canonical and model_dir(a) == model_dir(b)


def test_a_duplicate_key_in_the_registry_is_refused_with_its_line(tmp_path, monkeypatch):
    from xlt_helpers import data

    again = "\nen:\n  pretrain: {path: x.txt, format: sentence_per_line}\n"
    reg = _registry_copy(tmp_path, monkeypatch, lambda t: t + again)
    with pytest.raises(DataFormatError) as err:
        data.languages()
    lines = reg.read_text().splitlines()
    first, second = [k + 1 for k, line in enumerate(lines) if line == "en:"]
    assert str(err.value) == (f"{reg}:{second}: expected valid YAML with each key once, found \"key 'en' given "
                              f"twice (first on line {first})\"")


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.txt", "pretrain/../../outside.txt", "./../x"])
def test_registry_paths_that_leave_the_data_directory_are_refused(tmp_path, monkeypatch, bad):
    from xlt_helpers import data

    original = data.language_spec("en")["pretrain"]["paths"][0]
    reg = _registry_copy(tmp_path, monkeypatch, lambda t: t.replace(original, bad, 1))
    with pytest.raises(DataFormatError) as err:
        data.languages()
    assert str(err.value) == (f"{reg}: expected en.pretrain.path: a path relative to the data directory that "
                              f"stays inside it, found {bad!r}")


def test_a_parallel_path_that_leaves_the_data_directory_is_refused(tmp_path, monkeypatch):
    import yaml

    from xlt_helpers import data

    def edit(text):
        raw = yaml.safe_load(text)
        entry = raw["fr"]["tasks"]["retrieval"]["test"]
        other = next(iter(entry["parallel"]))
        entry["parallel"][other] = "/tmp/elsewhere.txt"
        return yaml.safe_dump(raw, sort_keys=False)
    reg = _registry_copy(tmp_path, monkeypatch, edit)
    with pytest.raises(DataFormatError, match=r"retrieval\.test\.parallel\.\w+: a path relative to the data "
                                              r"directory that stays inside it, found '/tmp/elsewhere.txt'"):
        data.languages()
    assert reg.exists()


@pytest.mark.parametrize("content, found", [("", "an empty file"), ("\n  \n\n", "only blank lines")])
def test_an_empty_pretraining_corpus_is_refused_naming_its_file(data_with_empty, content, found):
    from xlt_helpers import data

    paths = [data_with_empty(rel) for rel in data.language_spec("fr")["pretrain"]["paths"]]
    for path in paths:
        path.write_text(content)
    expected = (f"{', '.join(map(str, paths))}: expected at least one sentence in the fr.pretrain corpus (one sentence "
                f"per line), found {found!r}")
    for call in (lambda: data.check_pretraining_corpus("fr"), lambda: data.load_pretraining_corpus("fr")):
        with pytest.raises(DataFormatError) as err:
            call()
        assert str(err.value) == expected


def test_a_batch_no_memory_can_hold_is_refused():
    from xlt_helpers.memory import memory_problem

    assert memory_problem(resolve("test", {})) is None
    problem = memory_problem(resolve("test", {"pretrain.batch_size": 10**9, "pretrain.device": "cpu"}))
    assert problem.startswith("pretrain.batch_size = 1000000000: one training batch (a micro-batch of 1000000000 "
                              "blocks of 32; ") and "GiB, the cpu has " in problem and "\n" not in problem
    assert memory_problem(resolve("test", {"pretrain.batch_size": 10**9, "pretrain.grad_accum": 10**7})) is None


# ---- digests, checkpoints, atomic writes ----------------------------------------------------------

def test_a_digest_notices_an_in_place_edit_whose_times_were_restored(tmp_path, monkeypatch):
    """``cp -p``, ``rsync -a`` and ``tar x`` set the modification time back; the inode change time they cannot."""
    from xlt_helpers import fingerprint as fp

    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "corpus.txt"
    path.write_text("the same size\n")
    before = fp.content_digest(path)
    st = path.stat()
    time.sleep(0.02)
    path.write_text("a same size!\n ")  # as many bytes, new content
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    fp._digests.clear()  # a new process: only the memo in the cache folder remembers
    assert fp.content_digest(path) != before
    assert fp.content_digest(path) == fp.content_digest(path)


def test_a_crafted_checkpoint_is_never_unpickled(tmp_path, capsys):
    """A pickle that would run code when loaded (here: make a folder) is refused before it runs."""
    from xlt_helpers.pretrain import _load_checkpoint

    marker = tmp_path / "payload_ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "checkpoint.pt"
    torch.save({"run_id": "anything", "step": 3, "model": Payload()}, path)
    assert _load_checkpoint(path, torch.device("cpu")) is None
    assert not marker.exists()
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [f"{path}: unreadable checkpoint (UnsafePickleError: it holds objects other than tensors and "
                       "plain values: refused without unpickling them (a checkpoint written by this toolkit holds "
                       "none)); set aside as checkpoint.unreadable.pt, pretraining starts from step 0"]
    torch.load(path, weights_only=False)  # what the old loader did: the payload runs
    assert marker.exists()


@pytest.mark.slow
def test_a_real_checkpoint_loads_without_pickled_objects(full_run):
    from xlt_helpers.storage import safe_torch_load

    base, _ = full_run
    ckpt = safe_torch_load(base / "out" / "checkpoint.pt")
    assert ckpt["step"] == 6 and isinstance(ckpt["rng"], torch.Tensor) and "state" in ckpt["optimizer"]


def test_concurrent_writers_of_one_file_each_leave_a_complete_file(tmp_path):
    """Two ``report`` commands write the same files: no shared temporary name, no half file, no error."""
    from concurrent.futures import ThreadPoolExecutor

    from xlt_helpers.storage import atomic_write_text, atomic_write_with

    target = tmp_path / "results.csv"
    texts = [f"{k}," * 20_000 for k in range(8)]

    def write(k):
        if k % 2:
            atomic_write_text(texts[k], target)
        else:
            atomic_write_with(lambda tmp: Path(tmp).write_text(texts[k]), target)
    for _ in range(5):
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write, range(8)))
        assert target.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]  # no temporary file left


# ---- the command line: one line, no traceback ---------------------------------------------------------

@pytest.mark.slow
def test_a_closed_pipe_ends_quietly():
    """``status grid.yaml | head -1``: the reader is gone before the output ends; no traceback, exit 141
    (128 + SIGPIPE, what a shell reports for a writer whose reader left)."""
    read, write = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "xlt_helpers", "config", "--table"], stdout=write,
                            stderr=subprocess.PIPE, text=True)
    os.close(write)
    os.close(read)  # the reader leaves before the first byte
    _, err = proc.communicate(timeout=60)
    assert err == "" and proc.returncode == 141


# ---- issue 29: grids refused before any step runs -----------------------------------------------------

def _write_grid(tmp_path, text, name="g.yaml"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _refused(path) -> str:
    with pytest.raises(ValueError) as err:
        load_grid(path)
    assert "\n" not in str(err.value)
    return str(err.value)


NAME_RULE = ("expected a plain folder name of letters, digits, spaces and _ . + = @ ~ - (not starting with . or -; "
             "the report goes to <runs>/reports/<name>)")


@pytest.mark.parametrize("name", ["/tmp/elsewhere", "../../escape", "a/b", "''", "..", ".", ".hidden", "a\\\\b",
                                  "-rf"])
def test_a_grid_name_that_is_a_path_is_refused(tmp_path, name):
    path = _write_grid(tmp_path, GRID + f"name: {name}\n")
    import yaml

    assert _refused(path) == f"{path}: name {yaml.safe_load('x: ' + name)['x']!r}: {NAME_RULE}"


def test_report_with_a_path_as_name_writes_nothing_outside_the_runs_folder(tmp_path, monkeypatch, capsys):
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    monkeypatch.setenv("XLT_RUNS_DIR", str(runs))
    path = _write_grid(tmp_path, GRID + f"name: {outside}\n")
    assert cli.main(["report", str(path)]) == 2
    assert capsys.readouterr().err == f"error: {path}: name {str(outside)!r}: {NAME_RULE}\n"
    assert not outside.exists() and not (runs / "reports").exists()


def test_a_grid_name_too_long_for_the_file_system_is_refused(tmp_path):
    path = _write_grid(tmp_path, GRID + f"name: {'x' * 300}\n")
    assert _refused(path) == (f"{path}: name is 300 bytes long: expected at most 255 (the file system's longest "
                              "file name)")


def test_a_folder_name_too_long_for_the_file_system_is_refused_before_a_step(tmp_path, monkeypatch):
    from xlt_helpers.config import runs_dir
    from xlt_helpers.grid.plan import plan
    from xlt_helpers.grid.preflight import check_before_run

    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    long = "+".join(["inv"] * 40)  # folder inv_then_inv_then_...: 40 x 3 + 39 x 6 = 354 bytes
    path = _write_grid(tmp_path, GRID.replace("[inv]", f"['{long}']"))
    grid = load_grid(path)
    with pytest.raises(ValueError) as err:
        check_before_run(grid, plan(grid)[0], runs_dir())
    assert str(err.value).startswith(f"{path}: the folder name 'inv_then_inv_then_") and \
        str(err.value).endswith("is 354 bytes long: expected at most 255 (shorten the name, transformation or "
                                "variant it is made of)")


def test_two_grids_of_one_name_do_not_share_a_report_folder(tmp_path, monkeypatch, capsys):
    """``a/default.yaml`` and ``b/default.yaml``: the second may not replace the first's report."""
    from xlt_helpers.config import runs_dir
    from xlt_helpers.grid import preflight

    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    first = _write_grid(tmp_path, GRID, "a/default.yaml")
    second = _write_grid(tmp_path, GRID.replace("[pos]", "[ner]"), "b/default.yaml")
    folder = preflight.report_folder(runs_dir(), "default", first, claim=True)
    assert json.loads((folder / "grid_file.json").read_text())["grid_file"] == str(first.resolve())
    expected = (f"{second}: name 'default': the report folder {folder} holds the report of another grid file, "
                f"{first.resolve()}: expected a `name:` of its own in this grid "
                f"(or remove {folder / 'grid_file.json'})")
    for command in ("report", "run"):
        assert cli.main([command, str(second)]) == 2
        assert capsys.readouterr().err == f"error: {expected}\n"
    assert not (folder / "results.csv").exists()
    moved = _write_grid(tmp_path, first.read_text(), "c/default.yaml")  # the same grid elsewhere: a new clone
    assert preflight.report_folder(runs_dir(), "default", moved, claim=False) == folder
    renamed = _write_grid(tmp_path, second.read_text() + "name: default_ner\n", "b/default.yaml")
    assert preflight.report_folder(runs_dir(), load_grid(renamed).name, renamed, claim=False).name == "default_ner"


def test_a_duplicate_key_in_a_grid_is_refused_with_its_line(tmp_path):
    path = _write_grid(tmp_path, GRID + "overrides: {pretrain.steps: 3}\noverrides: {pretrain.lr: 0.1}\n")
    assert _refused(path) == f"{path}:7: not valid YAML (key 'overrides' given twice (first on line 6))"
    nested = _write_grid(tmp_path, GRID + "overrides:\n  pretrain.steps: 3\n  pretrain.steps: 4\n", "n.yaml")
    assert _refused(nested) == f"{nested}:8: not valid YAML (key 'pretrain.steps' given twice (first on line 7))"


@pytest.mark.parametrize("edit, message", [
    (("tasks: [pos]", "tasks: []"), "tasks is empty: expected at least one task (the grid would run nothing)"),
    (("languages: [en]", "languages: []"), "no model to train: expected languages and transformations both "
                                           "non-empty, or pairs (the grid would run nothing)"),
    (("transformations: [inv]", "transformations: []"), "no model to train: expected languages and "
                                                        "transformations both non-empty, or pairs (the grid would "
                                                        "run nothing)"),
    (("tasks: [pos]", "tasks: [pos, ner, pos]"), "tasks lists 'pos' twice: expected each once"),
    (("languages: [en]", "languages: [en, en]"), "languages lists 'en' twice: expected each once"),
    (("transformations: [inv]", "transformations: [translit1.0, inv, translit]"),
     "transformations: 'translit1.0' and 'translit' are one derived language (translit): expected each once"),
    (("transformations: [inv]", "transformations: ['translit + inv', translit+inv]"),
     "transformations: 'translit + inv' and 'translit+inv' are one derived language (translit+inv): expected "
     "each once"),
    (("alignment: false", "alignment: false\nseeds: [0, 9223372036854775808]"),
     "seeds: 9223372036854775808: expected whole numbers from 0 to 4294967295 (2**32 - 1)"),
    (("alignment: false", "alignment: false\nfinetune_seeds: [4294967296]"),
     "finetune_seeds: 4294967296: expected whole numbers from 0 to 4294967295 (2**32 - 1)"),
    (("alignment: false", "alignment: false\nseeds: [1, 1]"), "seeds lists '1' twice: expected each once"),
])
def test_grid_axes_that_plan_nothing_or_twice_are_refused(tmp_path, edit, message):
    path = _write_grid(tmp_path, GRID.replace(*edit))
    assert _refused(path) == f"{path}: {message}"


def test_an_empty_grid_exits_non_zero_without_running(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    path = _write_grid(tmp_path, GRID.replace("languages: [en]", "languages: []"))
    assert cli.main(["run", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}: no model to train")
    assert not (tmp_path / "runs" / "test").exists()


def test_a_transformation_is_planned_in_its_one_spelling(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    odd = load_grid(_write_grid(tmp_path, GRID.replace("[inv]", "['translit1.0 + inv']")))
    plain = load_grid(_write_grid(tmp_path, GRID.replace("[inv]", "[translit+inv]"), "p.yaml"))
    assert odd.transformations == ["translit+inv"]
    assert [s.out_dir for s in expand(odd)] == [s.out_dir for s in expand(plain)]


@pytest.mark.parametrize("override, message", [
    ("pretrain.lr: .inf", "pretrain.lr = inf: expected a finite number"),
    ("finetune.epochs: .inf", "finetune.epochs = inf: expected a finite number"),
    ("pretrain.mask_prob: .nan", "pretrain.mask_prob = nan: expected a finite number"),
    ("finetune.max_len: 2", "finetune.max_len = 2: expected at least 6: room for one sub-word of each text of an "
                            "example, <s> a </s></s> b </s> (xnli, qa; <s> x </s> for pos and ner)"),
    ("pretrain.seed: 1", "pretrain.seed is set by the grid's `seeds` key, not here"),
])
def test_grid_overrides_that_cannot_run_are_refused_up_front(tmp_path, override, message):
    path = _write_grid(tmp_path, GRID + f"overrides: {{{override}}}\n")
    assert _refused(path) == f"{path}: overrides: {message}"


def test_transliterating_nothing_skips_alignment_and_refuses_align(tmp_path, monkeypatch):
    from xlt_helpers.grid.plan import plan

    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    grid = load_grid(_write_grid(tmp_path, GRID.replace("[inv]", "[translit0.0, translit0.5]")
                                 .replace("alignment: false", "alignment: true")))
    steps, skips = plan(grid)
    assert [s.cfg.data.transformation for s in steps if s.kind == "alignment"] == ["translit0.5"]
    assert [(sk.cell, sk.reason) for sk in skips] == [("en x translit0.0 x alignment", "it moves no token to a twin "
                                                       "(a transliterated share of 0): no pair to align")]
    with pytest.raises(ValueError, match=r"align needs a dictionary"):
        resolve("test", {"data.transformation": "translit0.0", "pretrain.objectives": ["mlm", "align"]})


@pytest.mark.parametrize("spec", ["translit2", "translit-0.5", "translitnan"])
def test_a_transliterated_share_outside_0_1_is_refused_by_name(tmp_path, spec):
    path = _write_grid(tmp_path, GRID.replace("[inv]", f"[{spec}]"))
    assert _refused(path) == (f"{path}: transformations: {spec!r}: bad transliteration {spec!r}: expected the fraction "
                              "of the vocabulary transliterated, in [0, 1], e.g. 'translit0.5'")


def test_an_empty_pretraining_corpus_stops_run_before_any_step(data_with_empty, tmp_path, monkeypatch, capsys):
    from xlt_helpers import data

    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    paths = [data_with_empty(rel) for rel in data.language_spec("fr")["pretrain"]["paths"]]
    ran = []
    monkeypatch.setattr("xlt_helpers.grid.execute.execute_step", lambda s, log=print: ran.append(s) or True)
    path = _write_grid(tmp_path, GRID.replace("[en]", "[fr]"))
    assert cli.main(["run", str(path)]) == 2
    assert capsys.readouterr().err == (f"error: {path}: {', '.join(map(str, paths))}: expected at least one sentence "
                                       "in the fr.pretrain corpus (one sentence per line), found 'an empty file'\n")
    assert not ran


def test_a_batch_no_memory_holds_stops_run_before_any_step(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    ran = []
    monkeypatch.setattr("xlt_helpers.grid.execute.execute_step", lambda s, log=print: ran.append(s) or True)
    path = _write_grid(tmp_path, GRID + "overrides: {pretrain.batch_size: 1000000000, pretrain.device: cpu}\n")
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: pretrain.batch_size = 1000000000: one training batch") and \
        err.endswith("GiB: expected a smaller batch\n") and err.count("\n") == 1 and not ran


def test_a_directory_given_as_the_grid_is_one_line(tmp_path, capsys):
    assert cli.main(["status", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: expected a grid YAML file, found a directory\n"


def test_a_grid_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "g.yaml"
    path.write_bytes(GRID.encode() + b"description: caf\xe9\n")
    assert cli.main(["status", str(path)]) == 2
    offset = len(GRID) + len("description: caf")
    assert capsys.readouterr().err == f"error: {path}: expected UTF-8 text, found byte 0xe9 at offset {offset}\n"


def _unwritable_folder(tmp_path) -> Path:
    """A folder this process cannot create files in (as root, chmod does not stop it: a /sys folder does)."""
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    folder = Path("/sys/fs")
    try:
        (folder / f"probe{os.getpid()}").touch()
    except OSError:
        return folder
    pytest.skip("no folder here refuses new files")


def test_a_read_only_runs_folder_stops_run_before_any_step(tmp_path, monkeypatch, capsys):
    runs = _unwritable_folder(tmp_path)
    monkeypatch.setenv("XLT_RUNS_DIR", str(runs))
    path = _write_grid(tmp_path, GRID)
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: runs folder {runs} is not writable (") and err.endswith(
        "): expected a folder this user can write (set XLT_RUNS_DIR to one)\n")


def test_a_runs_folder_that_cannot_be_made_is_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("XLT_RUNS_DIR", str(blocker / "runs"))
    assert cli.main(["status", str(_write_grid(tmp_path, GRID))]) == 2
    assert capsys.readouterr().err == f"error: {blocker / 'runs'}: Not a directory\n"


# ---- issue 29: nothing wrong recorded as done; failures in one line ---------------------------------------

def test_a_pretraining_without_its_model_folder_is_not_done(tmp_path, monkeypatch):
    import shutil

    _, steps = _grid(tmp_path, monkeypatch)
    pre = next(s for s in steps if s.kind == "pretrain")
    pre.out_dir.mkdir(parents=True)
    _fake_results(pre)
    assert pre.state() == "done"
    shutil.rmtree(pre.out_dir / "model")
    assert pre.state() == (f"failed: {pre.out_dir / 'model' / 'config.json'} is missing: expected it beside "
                           "results.json (the steps after it read it)")
    assert pre in to_run(steps, log=lambda *a: None)


def test_a_monolingual_fine_tuning_without_its_model_is_not_done(tmp_path, monkeypatch):
    _, steps = _grid(tmp_path, monkeypatch)
    mono = next(s for s in steps if s.kind == "finetune_mono")
    mono.out_dir.mkdir(parents=True)
    _fake_results(mono)
    (mono.out_dir / "model" / "model.safetensors").unlink()
    assert mono.state().startswith(f"failed: {mono.out_dir / 'model' / 'model.safetensors'} is missing")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None])
def test_a_result_that_is_not_a_number_is_not_done(tmp_path, monkeypatch, value):
    _, steps = _grid(tmp_path, monkeypatch)
    step = next(s for s in steps if s.kind == "transfer")
    step.out_dir.mkdir(parents=True)
    _fake_results(step)
    saved = json.loads(step.results.read_text())
    saved["rows"][0]["value"] = value
    step.results.write_text(json.dumps(saved))
    assert step.state() == (f"failed: {step.results}: accuracy (BZ) is {value!r}: expected a finite number (NaN: "
                            "nothing was scored, e.g. a test set or finetune.max_len too small)")


def _cell_error(ename="ValueError", evalue="finetune.max_len too small\nsecond line"):
    from papermill.exceptions import PapermillExecutionError

    return PapermillExecutionError(3, 3, "run()", ename, evalue,
                                   ["\x1b[0;31m---------\x1b[0m", "\x1b[0;31mValueError\x1b[0m: finetune.max_len"])


def test_a_failed_cell_is_recorded_as_its_own_exception(tmp_path, monkeypatch, capsys):
    path, steps = _grid(tmp_path, monkeypatch)
    step = steps[0]

    def failing(notebook, output, parameters, *kernel):
        raise _cell_error()
    monkeypatch.setattr("xlt_helpers.grid.execute.execute_notebook", failing)
    from xlt_helpers.grid.execute import execute_step

    lines = []
    assert execute_step(step, lines.append) is False
    recorded = json.loads(step.error.read_text())
    assert recorded["error"] == "ValueError: finetune.max_len too small\nsecond line" and recorded["where"] == "In [3]"
    assert "\x1b" not in recorded["traceback"] and "ValueError: finetune.max_len" in recorded["traceback"]
    assert lines == [f"  FAILED {step.name}: ValueError: finetune.max_len too small second line"]
    assert step.state() == "failed: ValueError: finetune.max_len too small second line"


def test_an_error_recorded_with_papermills_banner_shows_the_exception(tmp_path, monkeypatch):
    _, steps = _grid(tmp_path, monkeypatch)
    step = steps[0]
    step.out_dir.mkdir(parents=True)
    atomic_write_json({"error": f"PapermillExecutionError: {_cell_error(evalue='boom')}"}, step.error)
    assert step.state() == "failed: ValueError: finetune.max_len"


def test_run_names_the_real_exception_of_the_first_failed_step(tmp_path, monkeypatch, capsys):
    path, steps = _grid(tmp_path, monkeypatch)

    def notebook(name, output, parameters, *kernel):
        raise _cell_error("FloatingPointError", "pretraining diverged: loss nan")
    monkeypatch.setattr("xlt_helpers.grid.execute.execute_notebook", notebook)
    monkeypatch.setattr("xlt_helpers.grid.run.aggregate", lambda *a, **k: tmp_path)
    assert cli.main(["run", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and \
        ": FloatingPointError: pretraining diverged: loss nan (python -m xlt_helpers status" in err[0]
    assert "PapermillExecutionError" not in err[0] and "----" not in err[0]


def test_concurrent_reports_each_write_a_whole_report(tmp_path, monkeypatch):
    """Three ``report``s of one grid at once (the issue's case): none fails, no temporary file is left."""
    from xlt_helpers.grid import aggregate as agg
    from xlt_helpers.grid.plan import plan

    path, _ = _grid(tmp_path, monkeypatch)
    grid = load_grid(path)
    steps, skips = plan(grid)
    for s in steps:
        s.out_dir.mkdir(parents=True, exist_ok=True)
        _fake_results(s)

    def fake_render(report_dir, title, log=print, grid_file=None):  # the notebook's cost, without a kernel
        time.sleep(0.3)
        from xlt_helpers.storage import atomic_write_text
        atomic_write_text(f"<html>{title}</html>", report_dir / "report.html")
    monkeypatch.setattr(agg, "render_report", fake_render)
    errors, lines = [], []

    def report():
        try:
            agg.aggregate(grid, steps, lines.append, skips)
        except Exception as exc:  # noqa: BLE001 - the test counts them
            errors.append(exc)
    threads = [threading.Thread(target=report) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    folder = tmp_path / "runs" / "reports" / "g"
    assert errors == [] and sum("another report of this grid is being written" in ln for ln in lines) >= 1
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "configs.csv", "failures.json", "grid_file.json",
                                                        "intervals.csv", "report.html", "results.csv",
                                                        "skipped.json", "summary.csv"]
    assert len((folder / "results.csv").read_text().splitlines()) == len(steps) + 1


@pytest.mark.slow
def test_status_into_a_closed_pipe_ends_quietly(tmp_path):
    path = _write_grid(tmp_path, GRID)
    read, write = os.pipe()
    env = {**os.environ, "XLT_RUNS_DIR": str(tmp_path / "runs")}
    proc = subprocess.Popen([sys.executable, "-m", "xlt_helpers", "status", str(path)], stdout=write,
                            stderr=subprocess.PIPE, text=True, env=env)
    os.close(write)
    os.close(read)
    _, err = proc.communicate(timeout=120)
    assert err == "" and proc.returncode == 141


def test_a_report_folder_that_is_a_link_out_of_the_runs_folder_is_refused(tmp_path, monkeypatch, capsys):
    """A runs folder received from someone else may hold ``reports/<name>`` as a link to anywhere."""
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    outside.mkdir()
    (runs / "reports").mkdir(parents=True)
    (runs / "reports" / "g").symlink_to(outside)
    monkeypatch.setenv("XLT_RUNS_DIR", str(runs))
    path = _write_grid(tmp_path, GRID)
    assert cli.main(["report", str(path)]) == 2
    assert capsys.readouterr().err == (f"error: {path}: report folder {runs / 'reports' / 'g'} leads outside "
                                       f"{runs / 'reports'}: expected a folder, not a link\n")
    assert list(outside.iterdir()) == []
