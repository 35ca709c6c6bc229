"""The local executor: a grid's steps one after the other in this process, with the grid's progress."""
from __future__ import annotations

import sys
import time

from ..progress import GridProgress, Ticker
from .execute import run_one
from .step import Step


def run_steps(todo: list[Step], log=print) -> dict[str, int]:
    """Execute steps in order, each under its folder's lock (``run_one``); while one runs, the grid's
    progress and the step's own are shown (``progress.Ticker``: one refreshing line when ``log`` is
    print on a terminal, else a line every 30 s). Returns how many steps ended done and failed."""
    t0 = time.time()
    grid = GridProgress([s.kind for s in todo])
    tty = log is print and sys.stdout.isatty()
    counts = {"done": 0, "failed": 0}
    for k, step in enumerate(todo, 1):
        log(f"[{k}/{len(todo)}] {step.kind}: {step.name}")
        started = time.monotonic()
        with Ticker(grid, step.progress, step.kind, log, tty) as ticker:
            ok = run_one(step, ticker.log)
        counts["done" if ok else "failed"] += 1
        grid.step_done(step.kind, time.monotonic() - started)
        log(f"  {grid.line()}")
    log(f"grid steps finished in {time.time() - t0:.0f}s: {counts['done']} done, {counts['failed']} failed")
    return counts
