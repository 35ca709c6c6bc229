"""The Ray executor (``run --executor ray``) on a local Ray cluster started here (2 CPUs, no dashboard):
the `test` grid gives the local runner's results.csv, dependencies hold while steps run side by side, a
failing step is recorded as the local runner records it, resources follow the table, and a pretraining
with two torchrun processes (gloo on the CPU) runs through a Ray task."""
import json
import os
import subprocess
import sys
from datetime import datetime

import pytest
import ray

from xlt_helpers import __main__ as cli
from xlt_helpers.config import REPO_ROOT
from xlt_helpers.config import runs_dir
from xlt_helpers.grid.plan import expand
from xlt_helpers.grid.ray_executor import run_steps_ray, step_resources, unplaceable
from xlt_helpers.grid.run import run_grid, status, to_run
from xlt_helpers.grid.spec import load_grid

pytestmark = pytest.mark.slow  # starts a Ray cluster

TEST_GRID = REPO_ROOT / "papermill_runs" / "grids" / "test.yaml"
# a failing pretraining (perm, below), one that is cached (inv) and fine-tuning with a new seed: the rest runs
FAILING_GRID = ("scale: test\nlanguages: [en]\ntransformations: [inv, perm]\ntasks: [pos]\nfinetune_seeds: [1]\n"
                "alignment: false\n")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def runs(shared_runs, cluster, tmp_path_factory):
    """The test grid under each executor: locally in the session's runs folder (the run that test_report and
    test_runner share), on Ray into a folder of its own (the session's cache). The Ray steps get the local
    kernels' thread count, so the numbers can be compared to the last digit (docs/outputs.md, folder keys)."""
    mp = pytest.MonkeyPatch()
    mp.setattr("xlt_helpers.grid.aggregate.render_report", lambda *a, **k: None)  # the report is the local path's, tested there
    folders, logs = {}, {}
    for executor in ("local", "ray"):
        if executor == "ray":
            mp.setenv("XLT_RUNS_DIR", str(tmp_path_factory.mktemp("ray_runs")))
            for var in ("XLT_THREADS", "OMP_NUM_THREADS"):
                mp.setenv(var, os.environ.get(var) or str(os.cpu_count()))
        logs[executor] = []
        run_grid(TEST_GRID, log=logs[executor].append, executor=executor)
        folders[executor] = runs_dir()
    yield folders, logs
    mp.undo()


def test_the_test_grid_gives_the_same_results_under_both_executors(runs):
    folders, logs = runs
    n = len(expand(load_grid(TEST_GRID)))
    assert any(f"on Ray: {n} done, 0 failed" in line for line in logs["ray"]), logs["ray"][-3:]
    local = (folders["local"] / "reports" / "test" / "results.csv").read_text()
    assert len(local.splitlines()) > 1
    assert (folders["ray"] / "reports" / "test" / "results.csv").read_text() == local
    for folder in folders.values():
        assert json.loads((folder / "reports" / "test" / "failures.json").read_text()) == []


def test_ray_runs_steps_side_by_side_after_their_dependencies(runs, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(runs[0]["ray"]))
    steps = expand(load_grid(TEST_GRID))

    def span(step):
        meta = json.loads((step.out_dir / step.notebook).read_text())["metadata"]["papermill"]
        return datetime.fromisoformat(meta["start_time"]), datetime.fromisoformat(meta["end_time"])

    spans = {s.out_dir: span(s) for s in steps}
    for s in steps:
        for d in s.deps:
            assert spans[d.out_dir][1] <= spans[s.out_dir][0], f"{s.name} started before {d.name} ended"
    overlapping = [(a, b) for a in spans.values() for b in spans.values() if a < b and b[0] < a[1]]
    assert overlapping, "two CPUs and one CPU a step: some steps should have run at the same time"


@pytest.fixture(scope="module")
def failing(runs, tmp_path_factory):
    """FAILING_GRID in each executor's runs folder, its perm pretraining made to fail at once (its partial
    notebook path is a folder, so papermill cannot write it; removed after, the folder may be the session's)."""
    grid = tmp_path_factory.mktemp("failing") / "failing.yaml"
    grid.write_text(FAILING_GRID)
    mp = pytest.MonkeyPatch()
    mp.setattr("xlt_helpers.grid.aggregate.render_report", lambda *a, **k: None)
    out = {}
    for executor in ("local", "ray"):
        mp.setenv("XLT_RUNS_DIR", str(runs[0][executor]))
        steps = expand(load_grid(grid))
        [broken] = [s for s in steps if s.kind == "pretrain" and s.cfg.data.transformation == "perm"]
        trap = broken.out_dir / f"partial.{broken.notebook}"
        trap.mkdir(parents=True)
        todo = {s.name for s in to_run(steps, log=lambda *a: None)}
        try:
            report = run_grid(grid, log=lambda *a: None, executor=executor)
        finally:
            trap.rmdir()
        errors = {s.name: json.loads(s.error.read_text()) for s in steps if s.error.exists()}
        out[executor] = {"todo": todo, "status": status(grid), "errors": errors, "broken": broken.name,
                         "runs": str(runs_dir()),
                         "failures": json.loads((report / "failures.json").read_text())}
    yield out
    mp.undo()


def _outcomes(run: dict, runs_folder: str) -> dict[str, str]:
    """The states of the steps a run had to run, its runs folder named ``runs_folder`` (stale counts as done:
    it only says that the package changed since, which a shared working tree may do during a test)."""
    return {k: "done" if v == "stale" else v.replace(run["runs"], runs_folder) for k, v in run["status"]
            if k in run["todo"]}


def test_a_failing_step_on_ray_is_recorded_as_a_local_failure(failing):
    local, on_ray = failing["local"], failing["ray"]
    states = _outcomes(on_ray, on_ray["runs"])
    broken = on_ray["broken"]
    assert "IsADirectoryError" in states[broken]
    dependents = [name for name in on_ray["todo"] if name.startswith(broken.rsplit("/", 1)[0]) and name != broken]
    assert dependents and all(states[d] == f"failed: dependency failed: {broken}" for d in dependents)
    ran = on_ray["todo"] - {broken, *dependents}
    assert ran and all(states[name] == "done" for name in ran)  # the rest of the grid still ran
    assert on_ray["todo"] == local["todo"]
    assert states == _outcomes(local, on_ray["runs"])
    assert {k: sorted(v) for k, v in on_ray["errors"].items()} == {k: sorted(v) for k, v in local["errors"].items()}
    assert on_ray["errors"][broken]["error"].split(":")[0] == local["errors"][broken]["error"].split(":")[0]
    assert len(on_ray["failures"]) == len(local["failures"]) == 1 + len(dependents)


def test_steps_ask_for_the_resources_of_their_kind(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    grid = tmp_path / "cuda.yaml"
    grid.write_text(TEST_GRID.read_text() + "overrides: {pretrain.device: cuda}\n")
    on_cpu = expand(load_grid(TEST_GRID))
    on_cuda = expand(load_grid(grid))
    assert all(step_resources(s, 1, 2)["num_gpus"] == 0 for s in on_cpu)
    for cpu_step, cuda_step in zip(on_cpu, on_cuda):
        one, two = step_resources(cuda_step, 1, 1), step_resources(cuda_step, 1, 2)
        if cuda_step.kind == "pretrain":  # a GPU a torchrun process
            assert one["num_gpus"] >= 1 and two["num_gpus"] == 2 * one["num_gpus"] and two["num_cpus"] >= 2
        else:  # fine-tuning reads finetune.device, still cpu here: the step stays on CPUs
            assert one == two == step_resources(cpu_step, 1, 1) and one["num_gpus"] == 0
        assert step_resources(cpu_step, 3, 1)["num_cpus"] == 3
    # the local cluster has 2 CPUs and no GPU: what cannot be placed is said before anything waits for it
    assert unplaceable(on_cpu) == []
    assert unplaceable(on_cpu, cpus_per_step=3) == on_cpu
    assert unplaceable(on_cuda) == [s for s in on_cuda if s.kind == "pretrain"]


def test_a_pretraining_under_torchrun_through_a_ray_task(shared_runs, cluster, tmp_path, monkeypatch):
    """--pretrain-procs 2: the task asks for 2 CPUs, trains under torchrun (gloo), then its notebook resumes
    the final checkpoint and writes the results."""
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))
    step = next(s for s in expand(load_grid(TEST_GRID)) if s.kind == "pretrain")
    lines = []
    counts = run_steps_ray([step], lines.append, pretrain_procs=2)
    assert counts == {"done": 1, "failed": 0}, lines
    ranks = [ln for ln in (step.out_dir / "torchrun.log").read_text().splitlines() if "world size" in ln]
    assert sorted(ln.split(":")[0] for ln in ranks) == ["rank 0", "rank 1"], ranks
    assert all("world size 2," in ln for ln in ranks)
    ddp_loss = float(ranks[0].split("final loss ")[1].split(",")[0])
    rows = json.loads(step.results.read_text())["rows"]
    assert [r["value"] for r in rows if r["metric"] == "final_mlm_loss"] == [ddp_loss]
    assert step.state() in ("done", "stale")  # stale: the package changed during the test (a shared tree)


@pytest.mark.parametrize("args, message", [
    (["--executor", "dask"], "unknown executor 'dask'"),
    (["--address", "auto"], "address: only with executor ray"),
    (["--executor", "ray", "--cpus-per-step", "two"], "--cpus-per-step: expects a whole number"),
    (["--executor"], "--executor: expected one argument"),
])
def test_bad_executor_flags_end_in_one_line(args, message, capsys):
    assert cli.main(["run", str(TEST_GRID), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_the_local_runner_does_not_import_ray(tmp_path):
    code = ("import sys; from xlt_helpers import __main__; from xlt_helpers.grid.run import status; status(sys.argv[1]); "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(TEST_GRID)], capture_output=True, text=True, check=True,
                         env={**os.environ, "XLT_RUNS_DIR": str(tmp_path / "runs")})
    assert out.stdout.strip() == "False"
