"""Running a grid: what ``python -m xlt_helpers run|status|report`` calls.

Each step is a parameterised notebook executed into its own folder under ``papermill_runs/``; it gets
its fully resolved ``RunConfig`` as one parameter. A step is done when its ``results.json`` exists
(written atomically by the notebook's last cell, with the config and the fingerprint of the code that
computed it). Folders are keyed by what the step computes (``keys``), not by the grid, so pretrained
models are shared by every task and every grid that needs them. A done step whose code has changed since
is ``stale``: it is reused with a warning line, or redone with ``rerun_stale``. A step that fails leaves
``error.json`` and does not stop the others.
"""
from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any, Mapping

from ..config import runs_dir
from ..storage import atomic_write_json
from . import kernels
from .aggregate import aggregate
from .local_executor import default_jobs, run_steps, usable_cores
from .plan import Skip, plan
from .preflight import check_before_run
from .spec import Grid, load_grid
from .step import Step


def to_run(steps: list[Step], rerun_stale: bool = False, log=print) -> list[Step]:
    """The steps that are not done, and the stale ones if ``rerun_stale`` (else each is named in a warning
    line and its results are reused)."""
    todo = []
    for s in steps:
        state = s.state()
        if state == "done":
            continue
        if state == "stale":
            if not rerun_stale:
                log(f"  stale  {s.name}: computed by older code (fingerprint {s.recorded_code()} != {s.code}); "
                    "results reused (run --rerun-stale to redo)")
                continue
            log(f"  rerun  {s.name}: stale, computed by older code")
        todo.append(s)
    return todo


def run_grid(grid_path: str | Path, log=print, rerun_stale: bool = False, executor: str = "local",
             set_overrides: Mapping[str, Any] | None = None, jobs: int | None = 1, warm_kernels: bool = True,
             **ray_options: Any) -> Path:
    """Run every step of a grid that is not done yet (and the stale ones with ``rerun_stale``), then
    aggregate; returns the report folder. Every config is resolved and checked before any step runs.
    ``set_overrides``: more config fields by dotted name, as the grid's ``overrides`` (``spec.load_grid``)."""
    grid = load_grid(grid_path, set_overrides)
    return run_plan(grid, *plan(grid), log=log, rerun_stale=rerun_stale, executor=executor, jobs=jobs,
                    warm_kernels=warm_kernels, **ray_options)


def run_plan(grid: Grid, steps: list[Step], skips: list[Skip], log=print, rerun_stale: bool = False,
             executor: str = "local", jobs: int | None = 1, warm_kernels: bool = True, **ray_options: Any) -> Path:
    """``run_grid`` on a grid already planned (``plan.plan``), so that the caller can read its steps'
    states afterwards without planning again; returns the report folder.
    ``executor``: ``local`` runs the steps here, ``jobs`` of them side by side (``run_steps``; None: what
    the machine can use, ``local_executor.default_jobs``), each thread's in one warm kernel unless
    ``warm_kernels`` is False (``kernels``); ``ray`` submits them as Ray tasks
    (``ray_executor.run_steps_ray``, which takes ``ray_options``: address, cpus_per_step, pretrain_procs).
    The run's wall time goes to the report folder's ``timing.json`` (``benchmarks/time_by_kind.py``)."""
    if executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {executor!r}: expected local or ray")
    if executor == "local" and ray_options:
        raise ValueError(f"{', '.join(sorted(ray_options))}: only with executor ray")
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, found {jobs}")
    if executor == "ray" and jobs not in (1, None):
        raise ValueError("jobs: only with executor local (Ray places steps by their resources)")
    jobs = (default_jobs() if jobs is None else jobs) if executor == "local" else None
    t0, load, cpu = time.time(), os.getloadavg(), _cpu_seconds()
    check_before_run(grid, steps, runs_dir())  # what would fail only after steps ran: refused now
    todo = to_run(steps, rerun_stale, log)
    log(f"grid {grid.name}: {len(steps)} steps, {len(steps) - len(todo)} already done, {len(skips)} cells skipped")
    for sk in skips:
        log(f"  skipped {sk.cell}: {sk.reason}")
    try:
        if executor == "ray":
            from .ray_executor import run_steps_ray

            run_steps_ray(todo, log, **ray_options)
        else:
            run_steps(todo, log, jobs, warm_kernels)
    except KeyboardInterrupt:
        log(f"grid {grid.name}: interrupted; finished steps are kept, run again to resume")
        raise
    t1 = time.time()
    report_dir = aggregate(grid, steps, log, skips)
    now = time.time()
    record = {"grid": grid.name, "executor": executor, "jobs": jobs, "cores": usable_cores(),
              "steps": len(steps), "steps_run": len(todo),
              "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0)),
              "steps_s": round(t1 - t0, 1), "aggregate_s": round(now - t1, 1), "wall_s": round(now - t0, 1),
              "cpu_s": round(_cpu_seconds() - cpu, 1), "load_before": load, "load_after": os.getloadavg(),
              "warm_kernels": {k: round(v, 1) for k, v in kernels.STATS.items()} if jobs else None}
    atomic_write_json(_keep_steps_record(record, report_dir / "timing.json"), report_dir / "timing.json")
    return report_dir


def _keep_steps_record(record: dict, path: Path) -> dict:
    """The run's timing record; when it ran no step, the record of the last run that did, with this
    aggregation added as ``last_aggregation`` (a report-only rerun must not erase the steps' timings)."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return record
    if record["steps_run"] or not previous.get("steps_run"):
        return record
    again = {k: record[k] for k in ("started", "aggregate_s", "wall_s")}
    return {**previous, "last_aggregation": again}


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its ended children (the steps' kernels, once reaped)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def status(grid_path: str | Path, set_overrides: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """(step, state) for every step of a grid: done, stale, failed, or pending; then the skipped cells."""
    steps, skips = plan(load_grid(grid_path, set_overrides))
    return [(s.name, s.state()) for s in steps] + [(sk.cell, f"skipped: {sk.reason}") for sk in skips]
