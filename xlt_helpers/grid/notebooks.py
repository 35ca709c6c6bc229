"""Executing one notebook with papermill: the kernel that must not outlive its runner, and Ctrl-C."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from ..config import notebooks_dir, process_env

NOTEBOOKS = notebooks_dir()
# The kernel logs only errors: ipykernel's per-start warning about unencrypted local TCP would otherwise
# fill the grid log once per step. Cell errors still reach the executed notebook and error.json.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


_KERNELS: set = set()  # the kernel processes (Popen) of the notebooks being executed, in any thread
_KERNELS_LOCK = threading.Lock()
# Set by Ctrl-C (or SIGTERM) while ``run_steps`` runs steps in its threads: the running notebooks stop, their
# steps are recorded as interrupted, and no other notebook starts. ``run_steps`` clears it when it ends.
INTERRUPTED = threading.Event()


@lru_cache(maxsize=None)
def kernel_manager_class() -> type:
    """jupyter_client's AsyncKernelManager, except that shutting a kernel down does not interrupt it first.

    jupyter_client sends SIGINT before every shutdown request, and papermill shuts the kernel down right
    after the reply to its last request (``kernel_info``). A kernel still inside that request's handler
    when the signal lands (a loaded machine is enough) logs ``[IPKernelApp] ERROR | KeyboardInterrupt
    caught in kernel.`` although the notebook succeeded. The shutdown request alone stops an idle kernel;
    one that does not stop is still terminated, then killed, after ``shutdown_wait_time``. Started kernels
    are remembered in ``_KERNELS`` so that an interrupted runner kills them (``kill_kernels``); one that
    starts after an interruption is killed at once. A kernel's environment is ``config.process_env``'s
    (Hugging Face offline unless $XLT_ONLINE=1) plus ``step_env`` (a subclass's, ``step_kernel_manager``).
    """
    from jupyter_client.manager import AsyncKernelManager

    class StepKernelManager(AsyncKernelManager):
        step_env: dict[str, str] = {}

        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

        async def start_kernel(self, **kw: Any) -> None:
            # offline in the kernel only (config.process_env), with the job's threads (``step_env``)
            kw["env"] = process_env({**(kw.get("env") or os.environ), **(self.step_env or {})})
            await super().start_kernel(**kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None:
                with _KERNELS_LOCK:
                    _KERNELS.add(process)
                if INTERRUPTED.is_set():  # Ctrl-C came while it started
                    _kill(process)

    return StepKernelManager


def step_kernel_manager(env: dict[str, str] | None) -> type:
    """``kernel_manager_class()``, giving its kernels ``env`` on top of this process's environment (each
    step's own: its progress file, its threads; ``os.environ`` itself is shared by the runner's threads)."""
    base = kernel_manager_class()
    return type("StepKernelManager", (base,), {"step_env": dict(env)}) if env else base


def _kill(process) -> bool:
    """SIGKILL a kernel's session if it still runs (only this runner's unreaped children: no recycled pid)."""
    if process.poll() is not None:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
        return True
    return False


def kill_kernels() -> int:
    """Kill every running notebook's kernel and whatever it started (its own session); returns how many.
    Safe in a signal handler (no blocking wait: jupyter_client reaps the process)."""
    with _KERNELS_LOCK:
        processes = list(_KERNELS)
    return sum(_kill(p) for p in processes)


def interrupt() -> int:
    """What Ctrl-C does while steps run: mark the run interrupted and kill every running kernel; returns
    how many were killed. Their notebooks then end in ``execute_notebook`` with KeyboardInterrupt."""
    INTERRUPTED.set()
    logging.getLogger("papermill").disabled = True  # its "kernel died" lines are expected now
    return kill_kernels()


@contextlib.contextmanager
def _ctrl_c_kills_the_kernel() -> Iterator[list[int]]:
    """While a notebook runs in the main thread, Ctrl-C (SIGINT) kills its kernel at once; the returned
    list records the signal. Raised inside papermill's event loop, KeyboardInterrupt would leave the busy
    kernel to a racy shutdown that prints its tracebacks; a killed kernel ends the notebook with a
    dead-kernel error instead, which ``execute_notebook`` turns back into KeyboardInterrupt. Before a
    kernel exists, Ctrl-C raises KeyboardInterrupt as usual. In another thread (``run_steps``' workers)
    the main thread's handler does this for every running notebook (``interrupt``)."""
    hit: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield hit
        return

    def on_interrupt(signum: int, frame: object) -> None:
        hit.append(signum)
        logging.getLogger("papermill").disabled = True  # its "kernel died" lines are expected now
        if not kill_kernels():
            raise KeyboardInterrupt

    before = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield hit
    finally:
        signal.signal(signal.SIGINT, before)
        logging.getLogger("papermill").disabled = False


def execute_notebook(notebook: str, output: Path, parameters: dict, env: dict[str, str] | None = None,
                     km=None) -> None:
    """Execute ``notebooks/<notebook>`` with papermill into ``output`` (raises if a cell fails), in a new
    kernel given ``env`` on top of this process's environment, or in the running kernel of ``km`` (a warm
    kernel's manager, ``kernels.ready``: it has ``env`` already). On Ctrl-C the kernel is killed and
    KeyboardInterrupt raised: a kernel must not outlive its runner."""
    import papermill as pm

    if INTERRUPTED.is_set():
        raise KeyboardInterrupt
    kernel = {"km": km} if km is not None else {"kernel_manager_class": step_kernel_manager(env)}
    with _ctrl_c_kills_the_kernel() as interrupted:
        try:
            # the kernel starts in notebooks/ (nbclient's resources path); papermill's own ``cwd`` would chdir
            # this whole process, which races between the runner's threads and can leave it elsewhere
            pm.execute_notebook(str(NOTEBOOKS / notebook), str(output), parameters=parameters, kernel_name="python3",
                                progress_bar=False, resources={"metadata": {"path": str(NOTEBOOKS)}},
                                extra_arguments=KERNEL_ARGS, **kernel)
        except Exception:
            if interrupted or INTERRUPTED.is_set():
                raise KeyboardInterrupt from None
            raise
        except KeyboardInterrupt:
            kill_kernels()
            raise
        finally:
            _forget_kernels()
    if interrupted or INTERRUPTED.is_set():  # the notebook ended as Ctrl-C came: the grid stops all the same
        raise KeyboardInterrupt


def _forget_kernels() -> None:
    """Drop the kernels that have ended from ``_KERNELS`` (each notebook's kernel is shut down by papermill)."""
    with _KERNELS_LOCK:
        for process in [p for p in _KERNELS if p.poll() is not None]:
            _KERNELS.discard(process)
