"""The command line (`xlt`, `python -m xlt_helpers`): help on every command, --version, --set, exit codes,
a closed pipe."""
import json
import os
import subprocess
import sys

import pytest

from xlt_helpers import __main__ as cli
from xlt_helpers import __version__
from xlt_helpers.grid import run as grid_run
from xlt_helpers.config import REPO_ROOT

TEST_GRID = REPO_ROOT / "papermill_runs" / "grids" / "test.yaml"
COMMANDS = ["run", "status", "report", "config", "export", "syntax-stats"]


@pytest.fixture(autouse=True)
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))


@pytest.mark.parametrize("argv", [["--help"], ["-h"]] + [[c, "--help"] for c in COMMANDS])
def test_help_on_every_command_exits_0(argv, capsys):
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "Traceback" not in out
    if argv[0] in COMMANDS[:3]:
        assert "--set FIELD=VALUE" in out
    if argv[0] == "run":  # every option of the former command line is still there
        for option in ("--rerun-stale", "--executor", "--address", "--cpus-per-step", "--pretrain-procs"):
            assert option in out


def test_version_and_no_command(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip().endswith(__version__)
    assert cli.main([]) == 2
    assert capsys.readouterr().err.startswith("usage:")


def status_lines(argv, capsys) -> list[str]:
    assert cli.main(["status", *argv]) == 0
    return capsys.readouterr().out.splitlines()


def test_set_enters_the_folder_keys_like_a_grids_overrides(tmp_path, capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text(TEST_GRID.read_text() + "overrides: {pretrain.steps: 500, data.shift_special: true}\n")
    from_file = status_lines([str(grid)], capsys)
    from_cli = status_lines([str(TEST_GRID), "--set", "pretrain.steps=500", "--set", "data.shift_special=true"], capsys)
    assert from_cli == [line.replace(str(grid), str(TEST_GRID)) for line in from_file]
    assert from_cli != status_lines([str(TEST_GRID)], capsys)
    # repeated: the last value wins, and it wins over the grid's own overrides
    assert status_lines([str(grid), "--set", "pretrain.steps=7", "--set", "pretrain.steps=500"], capsys) == from_file
    assert status_lines([str(grid), "--set", "pretrain.steps=7"], capsys) != from_file


def test_run_hands_its_options_to_the_runner(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(grid_run, "run_plan", lambda grid, steps, skips, **kw: calls.append((grid, steps, kw)))
    assert cli.main(["run", str(TEST_GRID), "--set", "pretrain.steps=500", "--rerun-stale"]) == 0
    grid, steps, options = calls[-1]
    assert options == {"rerun_stale": True, "jobs": None, "warm_kernels": True} and grid.overrides["pretrain.steps"] == 500
    assert all(s.cfg.pretrain.steps == 500 for s in steps)
    assert cli.main(["run", str(TEST_GRID), "--executor", "ray", "--cpus-per-step", "3", "--address", "auto"]) == 0
    assert calls[-1][2] == {"rerun_stale": False, "jobs": None, "warm_kernels": True, "executor": "ray",
                            "cpus_per_step": 3, "address": "auto"}
    assert cli.main(["run", str(TEST_GRID), "--jobs", "2", "--fresh-kernels"]) == 0
    assert calls[-1][2] == {"rerun_stale": False, "jobs": 2, "warm_kernels": False}


@pytest.mark.parametrize("argv, message", [
    (["run", str(TEST_GRID), "--set", "pretrain.steps"], "'pretrain.steps': write group.field=value"),
    (["run", str(TEST_GRID), "--set", "pretrain.stepz=3"], "did you mean 'steps'"),
    (["run", str(TEST_GRID), "--set", "data.language=fr"], "set by the grid's `languages` key"),
    (["run", str(TEST_GRID), "--set", "pretrain.steps=many"], "pretrain.steps must be int, found 'many'"),
    (["status", "no_such_grid.yaml"], "grid file no_such_grid.yaml does not exist"),
    (["run"], "the following arguments are required: GRID"),
    (["run", str(TEST_GRID), "--pretrain-procs", "x"], "--pretrain-procs: expects a whole number, found 'x'"),
    (["config"], "expected a PRESET (or --table)"),
    (["config", "huge"], "unknown scale 'huge'"),
    (["config", "test", "pretrain.steps"], "write group.field=value"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["export", "/nonexistent"], "expected a model folder saved by the toolkit"),
])
def test_bad_input_ends_in_one_line_and_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_config_takes_fields_as_arguments_or_set(capsys):
    assert cli.main(["config", "test", "pretrain.steps=3", "--set", "model.layers=2"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["pretrain"]["steps"] == 3 and cfg["model"]["layers"] == 2
    assert cli.main(["config", "--table"]) == 0
    assert capsys.readouterr().out.startswith("| field |")


def test_an_interrupted_run_exits_130(monkeypatch, capsys):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(grid_run, "run_plan", interrupted)
    assert cli.main(["run", str(TEST_GRID)]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    with pytest.raises(ValueError):  # --debug: the traceback instead of one line
        cli.main(["config", "test", "model.layers=0", "--debug"])


def test_a_closed_pipe_ends_quietly(tmp_path):
    """The reader goes away before `status` writes (as `status GRID | head -1` does): no traceback, 141."""
    env = {**os.environ, "XLT_RUNS_DIR": str(tmp_path / "runs")}
    proc = subprocess.Popen([sys.executable, "-m", "xlt_helpers", "status", str(TEST_GRID)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # before the plan is made: every write of the command meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and err == ""
    head = subprocess.run(f"{sys.executable} -m xlt_helpers status {TEST_GRID} | head -1", shell=True, env=env,
                          capture_output=True, text=True)
    assert head.stdout.startswith("pending") and head.stdout.count("\n") == 1 and head.stderr == ""


def test_a_missing_extra_is_named_in_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    assert cli.main(["run", str(TEST_GRID), "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--executor ray needs ray" in err[0] and 'pip install "xlt_helpers[ray]"' in err[0]
    monkeypatch.setitem(sys.modules, "ufal.udpipe", None)
    from xlt_helpers.extras import MissingExtra
    from xlt_helpers.syntax.parser import _udpipe

    with pytest.raises(MissingExtra, match=r"xlt_helpers\[syntax\]"):
        _udpipe()
