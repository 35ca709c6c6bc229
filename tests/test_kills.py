"""A runner killed (SIGKILL) at many moments, then run again, ends with the same results.csv as a run that
was never interrupted: right after a pretraining checkpoint is written, right after a step's predictions
are written (its results.json comes next), and at seeded random moments."""
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # kills grids

GRID = "scale: test\nlanguages: [en]\ntransformations: [translit]\ntasks: [pos]\n"  # 5 steps: 2 pretrainings
KERNEL_GRACE_S = 1.5  # a killed runner's kernel notices within a second (ipykernel polls its parent)


def _env(runs: Path, cache: Path) -> dict:
    return {**os.environ, "XLT_RUNS_DIR": str(runs), "XLT_CACHE_DIR": str(cache)}


def _cmd(grid: Path) -> list[str]:
    return [sys.executable, "-m", "xlt_helpers", "run", str(grid)]


def _results(runs: Path) -> pd.DataFrame:
    df = pd.read_csv(runs / "reports" / "g" / "results.csv")
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def _kill_when(grid: Path, env: dict, runs: Path, ready) -> bool:
    """Start a runner, SIGKILL it as soon as ``ready(runs)`` holds; False if the grid finished first."""
    proc = subprocess.Popen(_cmd(grid), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and not ready(runs):
        time.sleep(0.02)
    finished = proc.poll() is not None
    proc.kill()
    proc.wait()
    time.sleep(KERNEL_GRACE_S)
    return not finished


def _newer_than(pattern: str, since: float):
    return lambda runs: any(p.stat().st_mtime > since for p in runs.rglob(pattern))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, shared_runs):
    base = tmp_path_factory.mktemp("uninterrupted")
    (base / "g.yaml").write_text(GRID)
    done = subprocess.run(_cmd(base / "g.yaml"), env=_env(base / "runs", shared_runs / "cache"), capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    return _results(base / "runs")


def test_kills_at_many_moments_resume_to_the_same_results(tmp_path, shared_runs, uninterrupted):
    grid = tmp_path / "g.yaml"
    grid.write_text(GRID)
    runs, env = tmp_path / "runs", _env(tmp_path / "runs", shared_runs / "cache")
    runs.mkdir()
    kills = 0
    # right after a checkpoint, twice (the first pretraining's, then a later one), and after predictions
    for pattern in ("checkpoint.pt", "checkpoint.pt", "predictions.json.gz"):
        kills += _kill_when(grid, env, runs, _newer_than(pattern, time.time()))
    rng = random.Random(0)
    for delay in sorted(rng.uniform(1.0, 12.0) for _ in range(4)):
        start = time.time()
        kills += _kill_when(grid, env, runs, lambda _: time.time() - start > delay)
    assert kills >= 5
    final = subprocess.run(_cmd(grid), env=env, capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stdout[-3000:]
    pd.testing.assert_frame_equal(_results(runs), uninterrupted, check_exact=True)
