"""Warm kernels: one kernel per runner thread that executes that thread's steps one after the other, so that
torch, transformers and the package are imported once per thread instead of once per step.

A step's kernel used to start, import (5-25 s of a 2-core machine's CPU, more under load) and shut down for
each step, seconds of work that computed nothing. A warm kernel starts once (``kernel_state.warm_up``
imports what every step notebook imports), then before each step ``kernel_state.fresh_start`` gives it the
state a fresh kernel has after those imports: an empty namespace, no figures, torch's random state and thread count as they were right
after the imports, the step's environment (its progress file), the phase timings at zero. Every step seeds
its own random numbers (``finetune.load_for_task``, ``model``, ``pretrain``), so its numbers are those of a
fresh kernel (``tests/test_jobs.py`` compares the ``test`` grid's results.csv byte for byte). A step that
fails or is interrupted takes its kernel with it: the next step of that thread starts a fresh one.

Runner side: inside ``serving(env)``, ``ready(env)`` gives this thread's warm kernel, fresh, for the next
step (``execute.execute_step`` passes it to ``notebooks.execute_notebook``; outside, None: a kernel of its
own, as the Ray executor and the report do); ``discard`` drops it after a failure; ``close_all`` shuts every
warm kernel down at the end of a run. What runs inside the kernel is ``kernel_state`` (``warm_up``,
``fresh_start``), sent as code: the runner never imports the step code. The kernels are registered like any
step kernel (``notebooks._KERNELS``), so Ctrl-C kills them.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator

from .notebooks import KERNEL_ARGS, NOTEBOOKS, step_kernel_manager

_local = threading.local()        # .kernel: this thread's WarmKernel; .serving: the environment of its steps
_all: list["WarmKernel"] = []     # every warm kernel of this process, for ``close_all``
_all_lock = threading.Lock()
STATS = {"starts": 0, "start_s": 0.0, "imports_s": 0.0, "resets": 0, "reset_s": 0.0}  # runner side, this run


class WarmKernel:
    """A kernel (``notebooks.step_kernel_manager``) that runs several notebooks, with a fresh start before
    each. Used only by the thread that started it: its sockets belong to that thread's event loop."""

    def __init__(self, env: dict[str, str]):
        manager = step_kernel_manager(env)

        class Manager(manager):  # one kernel client at a time: the previous one's channels closed
            _client = None

            def client(self, **kw):
                if self._client is not None:
                    self._client.stop_channels()
                self._client = super().client(**kw)
                return self._client

        self.km = Manager(kernel_name="python3")
        with _all_lock:
            _all.append(self)
        try:
            t0 = time.monotonic()
            self.run("pass")  # starts the kernel
            t1 = time.monotonic()
            self.run('__import__("xlt_helpers.grid.kernel_state").grid.kernel_state.warm_up()')
        except BaseException:
            self.close()
            raise
        with _all_lock:
            STATS["starts"] += 1
            STATS["start_s"] += t1 - t0
            STATS["imports_s"] += time.monotonic() - t1

    def run(self, code: str) -> None:
        """Execute ``code`` in the kernel (``nbclient.CellExecutionError`` if it raises)."""
        import nbformat
        from nbclient import NotebookClient

        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        NotebookClient(nb, km=self.km, kernel_name="python3", extra_arguments=KERNEL_ARGS, timeout=None,
                       startup_timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()

    def alive(self) -> bool:
        process = getattr(self.km.provisioner, "process", None)
        return process is not None and process.poll() is None

    def fresh_start(self, env: dict[str, str]) -> None:
        """Before a step: the state of a fresh kernel after ``kernel_state.warm_up``, with ``env`` in its
        environment."""
        t0 = time.monotonic()
        self.run(f'__import__("xlt_helpers.grid.kernel_state").grid.kernel_state.fresh_start({env!r})')
        with _all_lock:
            STATS["resets"] += 1
            STATS["reset_s"] += time.monotonic() - t0

    def close(self) -> None:
        """Shut the kernel down (at once: it is idle, its steps' results are written) and free its files."""
        from jupyter_core.utils import run_sync

        with _all_lock:
            if self in _all:
                _all.remove(self)
        if self.km._client is not None:
            self.km._client.stop_channels()
            self.km._client = None
        with contextlib.suppress(Exception):  # a kernel killed by Ctrl-C: only its files are left
            run_sync(self.km.shutdown_kernel)(now=True)


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[None]:
    """While inside, notebooks executed by this thread run in its warm kernel (started with ``env``)."""
    _local.serving = env
    try:
        yield
    finally:
        _local.serving = None


def current() -> WarmKernel | None:
    """This thread's warm kernel, started if it has none or it died; None outside ``serving``."""
    env = getattr(_local, "serving", None)
    if env is None:
        return None
    kernel = getattr(_local, "kernel", None)
    if kernel is None or not kernel.alive():
        if kernel is not None:
            kernel.close()
        kernel = _local.kernel = WarmKernel(env)
    return kernel


def ready(env: dict[str, str]) -> WarmKernel | None:
    """This thread's warm kernel after ``fresh_start(env)``, for its next step (a new one if the old one
    cannot restart); None outside ``serving``. KeyboardInterrupt when Ctrl-C killed it meanwhile."""
    from .notebooks import INTERRUPTED

    for attempt in (1, 2):
        kernel = current()
        if kernel is None:
            return None
        try:
            kernel.fresh_start(env)
            return kernel
        except Exception:
            discard()
            if INTERRUPTED.is_set():
                raise KeyboardInterrupt from None
            if attempt == 2:
                raise
    return None


def discard() -> None:
    """This thread's warm kernel is not to be reused (its step failed or was interrupted): close it."""
    kernel = getattr(_local, "kernel", None)
    _local.kernel = None
    if kernel is not None:
        kernel.close()


def reset_stats() -> None:
    """Zero ``STATS`` (a run begins)."""
    STATS.update(dict.fromkeys(STATS, 0))


def close_all() -> None:
    """Shut down every warm kernel (the end of a run, whatever thread started them)."""
    with _all_lock:
        kernels = list(_all)
    for kernel in kernels:
        kernel.close()
