"""`make bench` end to end on a tiny slice: it prints the figures the issue asks for, and its baseline and
our step compute the same loss when dropout is off (so the speed comparison is like for like)."""
import importlib.util
import json

import pytest

from xlt_helpers.config import REPO_ROOT

pytestmark = pytest.mark.slow  # benchmarks


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_train", REPO_ROOT / "benchmarks" / "bench_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_compares_like_with_like(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    figures = tmp_path / "bench.json"
    bench = load_bench()
    assert bench.main(["--steps", "2", "--sentences", "600", "--only", "pretrain,transform", "--transform-sentences",
                       "300", "--dropout", "0", "--no-noise-reference", "--json", str(figures)]) == 0
    printed = capsys.readouterr().out
    assert "speedup_vs_hf_baseline: " in printed and "matmul peak (measured now)" in printed

    result = json.loads(figures.read_text())
    pre = result["pretrain"]
    baseline, ours = pre["rows"]
    assert baseline["variant"].startswith("hf baseline") and ours["variant"].startswith("ours")
    assert len(baseline["loss_curve"]) == len(ours["loss_curve"]) == 3          # 1 untimed + 2 timed steps
    assert max(abs(a - b) for a, b in zip(baseline["loss_curve"], ours["loss_curve"])) < 1e-3
    assert ours["loss_curve"][-1] < ours["loss_curve"][0]                          # it trains
    assert pre["speedup_vs_hf_baseline"] > 0 and 0 < ours["mfu"] < 1.5
    assert ours["peak_memory_bytes"] > 0 and ours["tokens_per_s"] > 0
    assert [row["spec"] for row in result["transform"]] == ["inv", "perm", "translit", "translit+inv"]
