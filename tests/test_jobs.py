"""`run --jobs N`: steps side by side after their dependencies, threads per kernel, warm kernels, the live
progress of every running step, Ctrl-C with several steps running, and the same results.csv as one by one."""
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from xlt_helpers.step_kinds import KINDS

from xlt_helpers import progress
from xlt_helpers.config import REPO_ROOT
from xlt_helpers.grid import local_executor
from xlt_helpers.grid.local_executor import dependants, kernel_environment, run_steps, usable_cores
from xlt_helpers.grid.plan import expand
from xlt_helpers.grid.run import run_grid
from xlt_helpers.grid.spec import load_grid
from xlt_helpers.storage import atomic_write_json

TEST_GRID = REPO_ROOT / "papermill_runs" / "grids" / "test.yaml"


def _fake_results(step):
    atomic_write_json({"code_fingerprint": step.code,
                       "rows": [{"language": "en", "transformation": step.cfg.data.transformation or "mono",
                                 "task": step.params.get("task", "pretrain"), "setting": "BZ", "metric": "accuracy",
                                 "value": 0.5, "seed": 0, "scale": "test"}]}, step.results)
    for name in KINDS[step.kind].outputs:  # the files its dependants read: part of being done
        (step.out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (step.out_dir / name).write_text("{}")


def _steps(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    return expand(load_grid(TEST_GRID))


# ---- the scheduler, without kernels ----------------------------------------------------------------

def test_steps_run_side_by_side_after_their_dependencies(tmp_path, monkeypatch):
    steps = _steps(tmp_path, monkeypatch)
    spans, lock = {}, threading.Lock()

    def fake_execute(step, log=print, env=None):
        start = time.monotonic()
        time.sleep(0.2)
        if step.kind == "pretrain" and step.cfg.data.transformation == "inv":
            atomic_write_json({"step": step.name, "error": "RuntimeError: boom"}, step.error)
            ok = False
        else:
            _fake_results(step)
            ok = True
        with lock:
            spans[step.name] = (start, time.monotonic(), env)
        return ok

    monkeypatch.setattr("xlt_helpers.grid.execute.execute_step", fake_execute)
    lines = []
    counts = run_steps(steps, lines.append, jobs=2)
    inv = [s for s in steps if s.cfg.data.transformation == "inv"]
    assert counts == {"done": len(steps) - len(inv), "failed": len(inv)}
    for s in inv[1:]:  # the failed pretraining's dependants: recorded, never executed
        assert s.name not in spans and "dependency failed" in json.loads(s.error.read_text())["error"]
    for s in steps:
        for d in s.deps:
            if s.name in spans:
                assert spans[d.name][1] <= spans[s.name][0], (d.name, s.name)
    ordered = sorted(spans.values())
    assert any(b[0] < a[1] for a, b in zip(ordered, ordered[1:])), "no two steps ran at the same time"
    assert max(sum(a[0] <= t < a[1] for a in spans.values()) for t, _, _ in spans.values()) <= 2
    assert all(env == kernel_environment(2) for _, _, env in spans.values())
    assert any("2 jobs" in line and f"{len(inv)} failed" in line for line in lines)


def test_ready_steps_start_with_the_longest_chains():
    class S:
        def __init__(self, name, deps=()):
            self.out_dir, self.deps = Path(name), list(deps)

    a = S("a")
    b = S("b", [a])
    c = S("c", [b])
    d = S("d")
    assert dependants([a, b, c, d]) == [2, 1, 0, 0]


def test_threads_per_kernel(monkeypatch):
    monkeypatch.delenv("XLT_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert kernel_environment(1) == {}  # one job: every core, as a kernel of its own has by default
    n = str(max(1, usable_cores() // 2))
    assert kernel_environment(2) == {"XLT_THREADS": n, "OMP_NUM_THREADS": n}
    monkeypatch.setenv("XLT_THREADS", "3")  # set where the runner runs: that value wins
    assert kernel_environment(2)["XLT_THREADS"] == "3"
    assert 1 <= local_executor.default_jobs() <= min(usable_cores(), local_executor.MAX_DEFAULT_JOBS)


def test_jobs_must_be_positive(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        run_steps(_steps(tmp_path, monkeypatch), lambda *a: None, jobs=0)


# ---- progress of several running steps --------------------------------------------------------------

def test_eta_is_shared_by_the_jobs():
    one, two = progress.GridProgress(["pretrain"] * 4), progress.GridProgress(["pretrain"] * 4, jobs=2)
    for grid in (one, two):
        grid.step_done("pretrain", 100.0)
    assert one.eta() == 300 and two.eta() == 150 and two.eta([20.0, 40.0]) == 120


def test_ticker_one_line_per_running_step(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"phase": "pretrain", "done": 3, "total": 12}))
    lines = []
    ticker = progress.Ticker(progress.GridProgress(["pretrain", "transfer"], jobs=2), log=lines.append)
    ticker.add(a, "pretrain en inv seed 0")
    ticker.add(b, "transfer en translit pos seed 0/0")
    text = ticker.text().split("\n")
    assert len(text) == 3 and "0/2 steps" in text[0]
    assert text[1].startswith("  pretrain en inv seed 0: pretrain 3/12") and "transfer en translit pos" in text[2]
    ticker.remove(a)
    assert "\n" not in ticker.text() and "| transfer en translit pos seed 0/0: starting" in ticker.text()

    stream = io.StringIO()
    tty = progress.Ticker(progress.GridProgress(["pretrain", "transfer"], jobs=2), a, "one", tty=True,
                          stream=stream, log=lambda *x: None)
    tty.add(b, "two")
    tty._emit()
    tty._emit()  # the three lines drawn before are cleared first: two lines up, each erased
    assert stream.getvalue().count("\x1b[1A\x1b[2K") == 2


# ---- real kernels ------------------------------------------------------------------------------------

def _notebook_span(step) -> tuple[datetime, datetime]:
    meta = json.loads((step.out_dir / step.notebook).read_text())["metadata"]["papermill"]
    return datetime.fromisoformat(meta["start_time"]), datetime.fromisoformat(meta["end_time"])


@pytest.mark.slow
def test_two_jobs_give_the_same_results_csv_as_one(tmp_path, shared_runs, monkeypatch):
    """The test grid one step at a time in a kernel each (the runner before --jobs), then two at a time in warm
    kernels: results.csv byte for byte. The thread count is fixed (it can move the last digit of a float:
    README, determinism), as it is when the two runs are compared on one machine."""
    monkeypatch.setenv("XLT_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr("xlt_helpers.grid.aggregate.render_report", lambda *a, **k: None)
    reports = {}
    for jobs, warm in ((1, False), (2, True)):
        monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / f"jobs{jobs}"))
        reports[jobs] = run_grid(TEST_GRID, log=lambda *a: None, jobs=jobs, warm_kernels=warm)
        timing = json.loads((reports[jobs] / "timing.json").read_text())
        assert timing["jobs"] == jobs and timing["steps_run"] == timing["steps"]
        assert (timing["warm_kernels"]["starts"] > 0) == warm
    run_grid(TEST_GRID, log=lambda *a: None, jobs=2)  # every step done: only aggregation
    again = json.loads((reports[2] / "timing.json").read_text())
    assert again["steps_run"] == again["steps"] and again["warm_kernels"]["starts"] > 0  # the steps' record kept
    assert again["last_aggregation"]["aggregate_s"] >= 0
    one = (reports[1] / "results.csv").read_text()
    assert len(one.splitlines()) > 40 and (reports[2] / "results.csv").read_text() == one
    steps = expand(load_grid(TEST_GRID))  # in the jobs2 folder
    spans = {s.name: _notebook_span(s) for s in steps}
    for s in steps:
        assert all(spans[d.name][1] <= spans[s.name][0] for d in s.deps)
    ordered = sorted(spans.values())
    assert any(b[0] < a[1] for a, b in zip(ordered, ordered[1:])), "no two steps ran at the same time"
    for s in steps:  # each step's phases timed from zero, although a warm kernel ran other kinds before
        phases = set(json.loads(s.results.read_text())["timing"])
        finetuned = s.kind in ("finetune_mono", "transfer")
        assert ("pretraining" in phases) == (s.kind == "pretrain") and ("fine-tuning" in phases) == finetuned


@pytest.mark.slow
def test_ctrl_c_records_every_running_step_as_interrupted(tmp_path, shared_runs):
    grid = tmp_path / "g.yaml"  # three pretrainings ready at once, long enough to be caught running
    grid.write_text("scale: test\nlanguages: [en]\ntransformations: [inv, translit]\ntasks: [pos]\n"
                    "alignment: false\noverrides: {pretrain.steps: 3000}\n")
    env = {**os.environ, "XLT_RUNS_DIR": str(tmp_path / "runs"), "XLT_CACHE_DIR": str(shared_runs / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "xlt_helpers", "run", str(grid), "--jobs", "2"], env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while len(list((tmp_path / "runs").glob("test/en/*/*/pretrain/progress.json"))) < 2:
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.poll() is not None else ""
        time.sleep(0.5)
    import psutil

    kernels = [p for p in psutil.Process(proc.pid).children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
    assert len(kernels) == 2
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    time.sleep(0.5)
    assert not any(k.is_running() and k.status() != "zombie" for k in kernels), "a kernel outlived the runner"
    status = subprocess.run([sys.executable, "-m", "xlt_helpers", "status", str(grid)], env=env, text=True,
                            capture_output=True, check=True).stdout.splitlines()
    assert sum(line.startswith("interrupted") for line in status) == 2, status
    assert not any(line.startswith(("failed", "done")) for line in status), status


@pytest.mark.slow
def test_notebooks_side_by_side_leave_the_runners_directory_alone(tmp_path, monkeypatch):
    """Two notebooks executed at once in two threads: each kernel works in notebooks/, and the runner's own
    working directory never moves (papermill's ``cwd`` would chdir the whole process, racing threads)."""
    import nbformat
    from concurrent.futures import ThreadPoolExecutor

    from xlt_helpers.grid import notebooks

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("out = ''", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import os, time\ntime.sleep(1)\nopen(out, 'w').write(os.getcwd())")],
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
                  "language_info": {"name": "python"}})
    fake = tmp_path / "notebooks"
    fake.mkdir()
    nbformat.write(nb, fake / "cwd.ipynb")
    monkeypatch.setattr(notebooks, "NOTEBOOKS", fake)
    monkeypatch.chdir(tmp_path)
    seen = []

    def one(k: int) -> None:
        time.sleep(0.5 * (k % 2))  # the second starts while the first runs, and ends after it
        notebooks.execute_notebook("cwd.ipynb", tmp_path / f"run{k}.ipynb", {"out": str(tmp_path / f"cwd{k}")})
        seen.append(os.getcwd())

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(4)))
    assert [(tmp_path / f"cwd{k}").read_text() for k in range(4)] == [str(fake)] * 4
    assert seen == [str(tmp_path)] * 4 and os.getcwd() == str(tmp_path)
