"""Running one step: under its folder's lock, after its dependencies, its notebook executed into its folder;
a failure recorded in ``error.json``, an interruption in ``interrupted.json``. Both executors (local and
Ray) run every step through ``run_one``."""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
import traceback
from typing import Iterator

from ..progress import ENV as PROGRESS_ENV
from ..storage import atomic_write_json
from . import kernels
from .notebooks import INTERRUPTED, execute_notebook
from .step import Step


def execute_step(step: Step, log=print, env: dict[str, str] | None = None) -> bool:
    """Run one step's notebook with papermill, its kernel given ``env`` (its threads, ``thread_environment``)
    and its progress file; True on success. Never raises for a failing notebook; on Ctrl-C the step is
    recorded as interrupted (it stays pending, not failed) and KeyboardInterrupt goes on.
    The caller holds the step's lock (``step_lock``)."""
    step.out_dir.mkdir(parents=True, exist_ok=True)
    for old in (step.results, step.error, step.interrupted, step.progress):
        old.unlink(missing_ok=True)
    partial = step.out_dir / ("partial." + step.notebook)
    t0 = time.time()
    kernel_env = {**(env or {}), PROGRESS_ENV: str(step.progress)}
    try:
        kernel = kernels.ready(kernel_env)  # this thread's warm kernel (``kernels.serving``), else None: a new one
        execute_notebook(step.notebook, partial, step.notebook_params, kernel_env, kernel and kernel.km)
        problem = step.results_problem()
        if problem:
            raise RuntimeError(f"notebook finished without a valid results.json: {problem}")
        partial.replace(step.out_dir / step.notebook)
    except KeyboardInterrupt:
        _record_interrupted(step, t0, log)
        raise
    except Exception as exc:  # a failing step is recorded, the grid goes on
        if INTERRUPTED.is_set():  # its kernel was killed by Ctrl-C (while starting, warming up or running)
            _record_interrupted(step, t0, log)
            raise KeyboardInterrupt from None
        kernels.discard()  # the next step gets a fresh kernel
        step.results.unlink(missing_ok=True)
        error, where = exception_of(exc)
        atomic_write_json({"step": step.name, "kind": step.kind, "params": step.params, "config": step.cfg.to_dict(),
                           "error": error, "where": where, "traceback": where_traceback(exc)[-4000:],
                           "seconds": time.time() - t0}, step.error)
        log(f"  FAILED {step.name}: {' '.join(error.split())[:400]}")
        return False
    finally:
        step.progress.unlink(missing_ok=True)
    log(f"  done   {step.name} ({time.time() - t0:.0f}s)")  # outside the try: a log that fails cannot fail the step
    return True


def _record_interrupted(step: Step, t0: float, log) -> None:
    """Ctrl-C reached ``step``: ``interrupted.json`` (it stays pending) and its thread's kernel dropped."""
    kernels.discard()
    if not step.done:
        atomic_write_json({"step": step.name, "seconds": time.time() - t0,
                           "at": time.strftime("%Y-%m-%d %H:%M:%S")}, step.interrupted)
    log(f"  interrupted {step.name} after {time.time() - t0:.0f}s: it stays pending; run again to resume")


def exception_of(exc: BaseException) -> tuple[str, str | None]:
    """(``"ValueError: message"``, where) of a failed step: for a notebook cell's exception the cell's own
    exception (papermill's ``ename`` and ``evalue``) and ``In [n]``, not papermill's banner; else the
    exception itself."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return f"{exc.ename}: {str(exc.evalue)[-2000:]}", f"In [{exc.exec_count}]"
    return f"{type(exc).__name__}: {str(exc)[-2000:]}", None


def where_traceback(exc: BaseException) -> str:
    """The traceback worth keeping: the notebook cell's (colour codes removed) or the runner's own."""
    from papermill.exceptions import PapermillExecutionError, strip_color

    if isinstance(exc, PapermillExecutionError):
        return strip_color("\n".join(exc.traceback))
    return traceback.format_exc()


@contextlib.contextmanager
def step_lock(step: Step, log=print) -> Iterator[None]:
    """Hold the lock of the step's folder (``.lock``, flock): a second runner on the same folder waits here,
    with a line saying so, instead of running the step twice or deleting the other's results. The
    operating system releases it when the runner ends, however it ends."""
    step.out_dir.mkdir(parents=True, exist_ok=True)
    with open(step.out_dir / ".lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"  wait   {step.name}: another runner is running it")
            while not _try_lock(f):  # polled: Ctrl-C must reach a runner's thread that waits here
                if INTERRUPTED.is_set():
                    raise KeyboardInterrupt from None
                time.sleep(LOCK_POLL_S)
        yield  # closing the file releases the lock


LOCK_POLL_S = 0.2


def _try_lock(f) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def run_one(step: Step, log=print, launch=None, env: dict[str, str] | None = None) -> bool:
    """Run ``step`` unless it is done by the time its lock is held (another runner may have run it);
    True when it ends done. A dependency another runner is running is waited for; one that is not done
    then makes the step fail with "dependency failed", without running it. ``launch(step, log)``, when
    given, runs first under the lock (the Ray executor's torchrun phase of a multi-process pretraining,
    ``ray_executor.torchrun_pretrain``); the problem it returns, if any, fails the step before its notebook.
    ``env``: what its kernel gets on top of this process's environment (``execute_step``)."""
    for dep in step.deps:
        if not dep.done:
            with step_lock(dep, log):
                pass
    with step_lock(step, log):
        if step.state() == "done":
            log(f"  done   {step.name}: finished by another runner")
            return True
        failed = [d for d in step.deps if not d.done]
        if failed:
            record_error(step, f"dependency failed: {', '.join(d.name for d in failed)}")
            log(f"  skipped {step.name}: a dependency failed")
            return False
        problem = launch(step, log) if launch is not None else None
        if problem:
            record_error(step, problem)
            log(f"  FAILED {step.name}: {problem}")
            return False
        return execute_step(step, log, env)


def record_error(step: Step, error: str) -> None:
    """Record ``step`` as failed for ``error`` without a notebook run (a failed dependency, a failed torchrun
    launch, a Ray worker lost): ``error.json`` as ``status`` reads it. Hold the step's lock."""
    step.interrupted.unlink(missing_ok=True)
    atomic_write_json({"step": step.name, "kind": step.kind, "params": step.params, "error": error}, step.error)


def thread_environment(threads: int) -> dict[str, str]:
    """``XLT_THREADS`` and ``OMP_NUM_THREADS`` for a step's kernel: ``threads`` (``model.set_threads`` and
    torch's default read them), or the value set where the runner runs, which wins."""
    return {var: os.environ.get(var, str(threads)) for var in ("XLT_THREADS", "OMP_NUM_THREADS")}
