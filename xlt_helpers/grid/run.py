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

from pathlib import Path
from typing import Any

from ..config import runs_dir
from .aggregate import aggregate
from .local_executor import run_steps
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
             **ray_options: Any) -> Path:
    """Run every step of a grid that is not done yet (and the stale ones with ``rerun_stale``), then
    aggregate; returns the report folder. Every config is resolved and checked before any step runs."""
    grid = load_grid(grid_path)
    return run_plan(grid, *plan(grid), log=log, rerun_stale=rerun_stale, executor=executor, **ray_options)


def run_plan(grid: Grid, steps: list[Step], skips: list[Skip], log=print, rerun_stale: bool = False,
             executor: str = "local", **ray_options: Any) -> Path:
    """``run_grid`` on a grid already planned (``plan.plan``), so that the caller can read its steps'
    states afterwards without planning again; returns the report folder.
    ``executor``: ``local`` runs the steps one at a time here (``run_steps``); ``ray`` submits them as
    Ray tasks (``ray_executor.run_steps_ray``, which takes ``ray_options``: address, cpus_per_step,
    pretrain_procs)."""
    if executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {executor!r}: expected local or ray")
    if executor == "local" and ray_options:
        raise ValueError(f"{', '.join(sorted(ray_options))}: only with executor ray")
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
            run_steps(todo, log)
    except KeyboardInterrupt:
        log(f"grid {grid.name}: interrupted; finished steps are kept, run again to resume")
        raise
    return aggregate(grid, steps, log, skips)


def status(grid_path: str | Path) -> list[tuple[str, str]]:
    """(step, state) for every step of a grid: done, stale, failed, or pending; then the skipped cells."""
    steps, skips = plan(load_grid(grid_path))
    return [(s.name, s.state()) for s in steps] + [(sk.cell, f"skipped: {sk.reason}") for sk in skips]
