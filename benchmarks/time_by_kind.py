"""Where a grid's wall time goes: ``python benchmarks/time_by_kind.py RUNS_DIR [--grid NAME] [--json FILE]``.

Reads a runs folder after ``python -m xlt_helpers run`` (use a fresh ``XLT_RUNS_DIR`` per measurement, so
every step in it ran in the run measured) and prints a markdown table of seconds by kind of work:

* kernel start-up: from papermill's start to the notebook's first cell (kernel process, handshake), and
  the start of each warm kernel (``xlt_helpers.grid.kernels``: one per job, recorded in ``timing.json``);
* imports: the step cell less the step function (``import xlt_helpers...`` and loading the config), and
  each warm kernel's ``warm_up``; a warm kernel's ``fresh_start`` before each step is its own row;
* the step function's phases, from ``results.json`` ``timing`` (``xlt_helpers.timing``): pretraining,
  fine-tuning, evaluation, task data (reading and encoding a task's splits), alignment, retrieval, and
  the rest of the step function (loading models and tokenizers, the embedding drift, saving a model);
* the notebook's other cells (tables, plots, ``save_results``) and the kernel's shutdown;
* aggregation (results.csv and the interval tables) and rendering (the report notebook and its HTML),
  from the report folder's ``timing.json`` and the executed ``04_aggregate.ipynb``.

The sum over steps is CPU-side wall time of each step; with ``--jobs N`` > 1 steps overlap, so the sum
exceeds the grid's wall time, which is shown beside it (with the load average and the run's own CPU).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

NOTEBOOKS = ("01_pretrain.ipynb", "02_finetune_evaluate.ipynb", "03_alignment.ipynb", "05_retrieval.ipynb")
PHASES = ("pretraining", "fine-tuning", "evaluation", "task data", "alignment", "retrieval")
CATEGORIES = ("kernel start-up", "imports", "warm kernel reset before a step", *PHASES, "rest of the step function",
              "other cells (tables, plots, saving)", "kernel shutdown", "aggregation",
              "rendering (report notebook, HTML)")


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def notebook_times(path: Path) -> dict:
    """From an executed notebook's papermill metadata: its duration, the time before its first cell, the
    duration of the cell that calls the step function (``= run_``), of the other cells, and after the last."""
    nb = json.loads(path.read_text())
    meta = nb["metadata"]["papermill"]
    start, end = _time(meta["start_time"]), _time(meta["end_time"])
    cells = [c for c in nb["cells"] if c["metadata"].get("papermill", {}).get("start_time")]
    first = min(_time(c["metadata"]["papermill"]["start_time"]) for c in cells)
    last = max(_time(c["metadata"]["papermill"]["end_time"]) for c in cells)
    step_cells = [c for c in cells if c["cell_type"] == "code" and "= run_" in "".join(c["source"])]
    step_cell = sum(c["metadata"]["papermill"]["duration"] for c in step_cells)
    others = sum(c["metadata"]["papermill"]["duration"] for c in cells if c not in step_cells)
    return {"duration": (end - start).total_seconds(), "startup": (first - start).total_seconds(),
            "step_cell": step_cell, "other_cells": others, "shutdown": (end - last).total_seconds()}


def step_folders(runs: Path, grid: str | None) -> list[Path]:
    """Every finished step folder under ``runs`` (not the reports); with ``grid``, those of that grid's
    configs.csv only."""
    if grid:
        import csv

        with open(runs / "reports" / grid / "configs.csv") as f:
            return [runs / row["step"] for row in csv.DictReader(f) if (runs / row["step"] / "results.json").exists()]
    return sorted(p.parent for p in runs.rglob("results.json") if "reports" not in p.relative_to(runs).parts)


def time_by_kind(runs: Path, grid: str | None = None) -> dict:
    """Seconds per category (``CATEGORIES``), per step kind, and the run's record (``timing.json``)."""
    seconds: dict[str, float] = defaultdict(float)
    kinds: dict[str, list[float]] = defaultdict(list)
    unsplit = 0
    for folder in step_folders(runs, grid):
        notebook = next((folder / n for n in NOTEBOOKS if (folder / n).exists()), None)
        if notebook is None:
            continue
        results = json.loads((folder / "results.json").read_text())
        t = notebook_times(notebook)
        phases = results.get("timing") or {}
        seconds["kernel start-up"] += t["startup"]
        if "step" in phases:
            seconds["imports"] += max(0.0, t["step_cell"] - phases["step"])
            for name in PHASES:
                seconds[name] += phases.get(name, 0.0)
            inside = sum(phases.get(n, 0.0) for n in PHASES)
            seconds["rest of the step function"] += max(0.0, phases["step"] - inside)
        else:  # computed before the phases were recorded: imports and compute in one
            seconds["imports and step (not split)"] += t["step_cell"]
            unsplit += 1
        seconds["other cells (tables, plots, saving)"] += t["other_cells"]
        seconds["kernel shutdown"] += t["shutdown"]
        kinds[results.get("kind", "?")].append(t["duration"])
    run: dict = {}
    for report in [runs / "reports" / grid] if grid else sorted((runs / "reports").glob("*")):
        executed = report / "04_aggregate.ipynb"
        render = notebook_times(executed)["duration"] if executed.exists() else 0.0
        seconds["rendering (report notebook, HTML)"] += render
        if (report / "timing.json").exists():  # written by `run` since --jobs; without it, no aggregation time
            run = json.loads((report / "timing.json").read_text())
            seconds["aggregation"] += max(0.0, run.get("aggregate_s", 0.0) - render)
            warm = run.get("warm_kernels") or {}
            seconds["kernel start-up"] += warm.get("start_s", 0.0)
            seconds["imports"] += warm.get("imports_s", 0.0)
            if warm.get("resets"):
                seconds["warm kernel reset before a step"] += warm["reset_s"]
    return {"seconds": dict(seconds), "kinds": {k: v for k, v in kinds.items()}, "run": run, "unsplit": unsplit}


def markdown(result: dict) -> str:
    """The category table, the per-kind table and the run's wall time, load and CPU."""
    seconds, run = result["seconds"], result["run"]
    total = sum(seconds.values())
    order = [c for c in CATEGORIES if c in seconds] + [c for c in seconds if c not in CATEGORIES]
    lines = ["| where the time goes | seconds | share |", "|---|---:|---:|"]
    lines += [f"| {c} | {seconds[c]:.1f} | {100 * seconds[c] / total:.1f}% |" for c in order if seconds[c] >= 0.05]
    lines.append(f"| **sum** | **{total:.1f}** | 100% |")
    lines += ["", "| step kind | steps | seconds (notebooks) | mean per step |", "|---|---:|---:|---:|"]
    for kind, durations in sorted(result["kinds"].items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"| {kind} | {len(durations)} | {sum(durations):.1f} | {sum(durations) / len(durations):.1f} |")
    if run:
        cores = f", {run['cpu_s'] / run['wall_s']:.2f} cores busy with it" if run.get("cpu_s") else ""
        warm = run.get("warm_kernels") or {}
        kernels = f"{warm['starts']:.0f} warm kernel(s)" if warm.get("starts") else "a kernel per step"
        lines += ["", f"grid `{run['grid']}`, {run['steps_run']} of {run['steps']} steps run, jobs {run['jobs']} "
                      f"on {run['cores']} cores, started {run['started']}: wall {run['wall_s']:.1f} s (steps "
                      f"{run['steps_s']:.1f} s, aggregation and rendering {run['aggregate_s']:.1f} s), {kernels}"
                      f"{cores}; load average {run['load_before'][0]:.1f} before, {run['load_after'][0]:.1f} after"]
    if result["unsplit"]:
        lines.append(f"{result['unsplit']} step(s) computed before phases were recorded: imports and step not split")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, help="the runs folder (XLT_RUNS_DIR of the run)")
    parser.add_argument("--grid", help="only this grid's steps (its report folder's configs.csv)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        print(f"error: {args.runs}: no such runs folder", file=sys.stderr)
        return 2
    result = time_by_kind(args.runs, args.grid)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
