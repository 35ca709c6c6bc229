"""`make gpu-check` refuses clearly without CUDA, and its code path runs (tiny shapes, CPU) so it cannot rot."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # trains at a tiny shape

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run for real")
def test_gpu_check_refuses_without_cuda():
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().startswith("error: gpu-check needs a CUDA GPU") and run.stdout == ""


def test_gpu_check_code_path_on_cpu_at_a_tiny_shape():
    run = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [ln.split() for ln in run.stdout.splitlines() if ln.split() and ln.split()[0] in ("gpu_small", "paper")]
    assert [r[0] for r in rows] == ["gpu_small", "paper"]
    for r in rows:
        tokens_per_s, mfu = float(r[-4].replace(",", "")), float(r[-2].rstrip("%"))
        assert tokens_per_s > 0 and 0 < mfu < 100
