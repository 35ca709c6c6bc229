"""The local executor: a grid's steps on this machine, up to ``jobs`` side by side, with the grid's progress.

Each step runs in a thread of a ``concurrent.futures.ThreadPoolExecutor`` (its notebook's kernel is a process
of its own, so the threads only wait) once every step it depends on has finished, in the order
``graphlib.TopologicalSorter`` releases them. Every step goes through ``execute.run_one`` as with one job:
the same caching, lock, atomic ``results.json`` and failure records (a failed step's dependants are
recorded "dependency failed", the rest runs). With ``jobs`` > 1 each kernel gets ``cores // jobs`` threads
(``execute.thread_environment``), so the steps do not oversubscribe the cores. Each thread runs its steps
in one warm kernel (``kernels``: the imports once per thread, not once per step) unless ``warm_kernels``
is False. Ctrl-C (or SIGTERM) kills every running kernel: each running step is recorded as interrupted, no
other starts, and KeyboardInterrupt goes on once they have all stopped.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from graphlib import TopologicalSorter
from typing import Iterator

from ..progress import GridProgress, Ticker
from . import kernels
from .execute import run_one, thread_environment
from .notebooks import INTERRUPTED, interrupt
from .step import Step

MAX_DEFAULT_JOBS = 8        # at most this many steps side by side unless asked for more
MEMORY_PER_JOB = 2 << 30    # what a step's kernel may hold (torch, a model, a task's data), for the default


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's limit)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_jobs() -> int:
    """Steps side by side when ``--jobs`` is not given: one per usable core, at most ``MAX_DEFAULT_JOBS``
    and at most one per ``MEMORY_PER_JOB`` of the machine's memory."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = MEMORY_PER_JOB * MAX_DEFAULT_JOBS
    return max(1, min(usable_cores(), MAX_DEFAULT_JOBS, memory // MEMORY_PER_JOB))


def kernel_environment(jobs: int) -> dict[str, str]:
    """What each step's kernel gets for ``jobs`` steps side by side: nothing with one (its kernel uses
    every core, as ``model.set_threads`` does by default), else ``cores // jobs`` threads each."""
    return {} if jobs == 1 else thread_environment(max(1, usable_cores() // jobs))


def label(step: Step) -> str:
    """A running step in one short phrase: 'transfer en translit pos seed 0/1'."""
    d = step.cfg.data
    model = f"{d.language}-{d.second_language}" if d.second_language else f"{d.language} {d.transformation or 'mono'}"
    finetuned = step.kind in ("finetune_mono", "transfer")
    seeds = f"seed {step.cfg.pretrain.seed}" + (f"/{step.cfg.finetune.seed}" if finetuned else "")
    return " ".join(part for part in (step.kind, model, step.task, seeds) if part)


def dependants(todo: list[Step]) -> list[int]:
    """How many steps of ``todo`` wait on each one, directly or not: the order among ready steps (most
    first, so that the long chains start early and no job idles at the end)."""
    index = {s.out_dir: k for k, s in enumerate(todo)}
    deps = {k: [index[d.out_dir] for d in s.deps if d.out_dir in index] for k, s in enumerate(todo)}
    below: list[set[int]] = [set() for _ in todo]
    for k in reversed(list(TopologicalSorter(deps).static_order())):  # a step's dependants before the step
        for d in deps[k]:
            below[d] |= below[k] | {k}
    return [len(b) for b in below]


def run_steps(todo: list[Step], log=print, jobs: int = 1, warm_kernels: bool = True) -> dict[str, int]:
    """Execute ``todo`` (dependencies first, as ``run.to_run`` gives them), up to ``jobs`` at a time, each
    under its folder's lock (``run_one``), in its thread's warm kernel (``warm_kernels``; else a kernel each);
    while they run the grid's progress and each step's own are shown (``progress.Ticker``: refreshing lines
    when ``log`` is print on a terminal, else lines every 30 s). Returns how many steps ended done and failed."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, found {jobs}")
    t0 = time.time()
    index = {s.out_dir: k for k, s in enumerate(todo)}  # a dependency outside ``todo`` is done already
    graph = TopologicalSorter({k: [index[d.out_dir] for d in s.deps if d.out_dir in index] for k, s in enumerate(todo)})
    graph.prepare()
    rank = dependants(todo)
    grid = GridProgress([s.kind for s in todo], jobs)
    tty = log is print and sys.stdout.isatty()
    env = kernel_environment(jobs)
    counts = {"done": 0, "failed": 0}
    ready: list[int] = []
    running: dict[Future, tuple[int, float]] = {}
    INTERRUPTED.clear()
    kernels.reset_stats()
    try:
        with ThreadPoolExecutor(jobs, thread_name_prefix="step") as pool, Ticker(grid, log=log, tty=tty) as ticker, \
                _ctrl_c_stops_every_step():
            try:
                while graph.is_active():
                    ready = sorted([*ready, *graph.get_ready()], key=lambda k: (-rank[k], k))
                    while ready and len(running) < jobs:
                        k = ready.pop(0)
                        step = todo[k]
                        ticker.log(f"[{counts['done'] + counts['failed'] + len(running) + 1}/{len(todo)}] "
                                   f"{step.kind}: {step.name}")
                        ticker.add(step.progress, label(step))
                        running[pool.submit(_run_step, step, ticker.log, env, warm_kernels)] = (k, time.monotonic())
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        k, started = running.pop(future)
                        ticker.remove(todo[k].progress)
                        ok = future.result()  # KeyboardInterrupt: the step was interrupted
                        counts["done" if ok else "failed"] += 1
                        grid.step_done(todo[k].kind, time.monotonic() - started)
                        graph.done(k)
                        ticker.log(f"  {grid.line()}")
            except KeyboardInterrupt:
                interrupt()  # every running kernel killed: their steps record themselves as interrupted
                wait(running)
                raise
    finally:
        kernels.close_all()  # the pool's threads have ended: the warm kernels are idle
        INTERRUPTED.clear()
    log(f"grid steps finished in {time.time() - t0:.0f}s ({jobs} job{'s' if jobs > 1 else ''}): "
        f"{counts['done']} done, {counts['failed']} failed")
    return counts


def _run_step(step: Step, log, env: dict[str, str], warm: bool) -> bool:
    """In a pool thread: ``run_one``, in the thread's warm kernel if ``warm``."""
    with kernels.serving(env) if warm else contextlib.nullcontext():
        return run_one(step, log, None, env)


@contextlib.contextmanager
def _ctrl_c_stops_every_step() -> Iterator[None]:
    """While steps run in the pool's threads, the first Ctrl-C (SIGINT; SIGTERM through ``__main__``)
    kills every running kernel and raises KeyboardInterrupt here, in the main thread; a second one while
    the steps wind down only kills again. Outside the main thread: nothing (the caller's handler stays)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: object) -> None:
        first = not INTERRUPTED.is_set()
        interrupt()
        if first:
            raise KeyboardInterrupt

    before = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        logging.getLogger("papermill").disabled = False
