"""`make bench-data` on a tiny corpus, so the benchmark cannot rot: both paths run and give the same blocks."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # benchmarks

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_data.py"


def test_bench_data_runs_on_a_tiny_corpus(tmp_path):
    out = tmp_path / "figures.json"
    run = subprocess.run([sys.executable, str(BENCH), "--mb", "1", "--before-mb", "0.25", "0.5", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads(out.read_text())
    before = [r for r in rows if r["mode"] == "before"]
    after = {r["mb"]: r for r in rows if r["mode"] == "after"}
    assert len(before) == 2 and set(after) == {0.25, 0.5, 1}
    for b in before:                                                        # the same corpus, the same blocks
        assert b["block_tokens"] == after[b["mb"]]["block_tokens"] > 0
    assert after[1]["block_tokens"] > 1.8 * after[0.5]["block_tokens"]       # the corpus was really grown
    assert all(r["peak_rss_mib"] > 0 and r["tokens_per_s"] > 0 for r in rows)
    assert "EXTRAPOLATED" in run.stdout and "RSS on the line through 0.25 and 0.5 MB" in run.stdout
