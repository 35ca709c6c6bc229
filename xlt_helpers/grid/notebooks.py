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


_KERNELS: list = []  # the kernel processes (Popen) of the notebook being executed


@lru_cache(maxsize=None)
def kernel_manager_class() -> type:
    """jupyter_client's AsyncKernelManager, except that shutting a kernel down does not interrupt it first.

    jupyter_client sends SIGINT before every shutdown request, and papermill shuts the kernel down right
    after the reply to its last request (``kernel_info``). A kernel still inside that request's handler
    when the signal lands (a loaded machine is enough) logs ``[IPKernelApp] ERROR | KeyboardInterrupt
    caught in kernel.`` although the notebook succeeded. The shutdown request alone stops an idle kernel;
    one that does not stop is still terminated, then killed, after ``shutdown_wait_time``. Started kernels
    are remembered in ``_KERNELS`` so that an interrupted runner kills them (``kill_kernels``). A kernel's
    environment is ``config.process_env``'s: Hugging Face offline unless $XLT_ONLINE=1.
    """
    from jupyter_client.manager import AsyncKernelManager

    class StepKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

        async def start_kernel(self, **kw: Any) -> None:
            kw["env"] = process_env(kw.get("env"))  # offline in the kernel only (config.process_env)
            await super().start_kernel(**kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None:
                _KERNELS.append(process)

    return StepKernelManager


def kill_kernels() -> int:
    """Kill the running notebook's kernel and whatever it started (its own session); returns how many.
    Only processes this runner started and that are still its unreaped children, so a recycled pid is
    never hit. Safe in a signal handler (no blocking wait: jupyter_client reaps the process)."""
    killed = 0
    for process in _KERNELS:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
                killed += 1
    return killed


@contextlib.contextmanager
def _ctrl_c_kills_the_kernel() -> Iterator[list[int]]:
    """While a notebook runs, Ctrl-C (SIGINT) kills its kernel at once; the returned list records the
    signal. Raised inside papermill's event loop, KeyboardInterrupt would leave the busy kernel to a
    racy shutdown that prints its tracebacks; a killed kernel ends the notebook with a dead-kernel error
    instead, which ``execute_notebook`` turns back into KeyboardInterrupt. Before a kernel exists,
    Ctrl-C raises KeyboardInterrupt as usual."""
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


def execute_notebook(notebook: str, output: Path, parameters: dict) -> None:
    """Execute ``notebooks/<notebook>`` with papermill into ``output`` (raises if a cell fails). On Ctrl-C
    the kernel is killed and KeyboardInterrupt raised: a kernel must not outlive its runner."""
    import papermill as pm

    with _ctrl_c_kills_the_kernel() as interrupted:
        try:
            pm.execute_notebook(str(NOTEBOOKS / notebook), str(output), parameters=parameters, kernel_name="python3",
                                progress_bar=False, cwd=str(NOTEBOOKS), extra_arguments=KERNEL_ARGS,
                                kernel_manager_class=kernel_manager_class())
        except Exception:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
        except KeyboardInterrupt:
            kill_kernels()
            raise
        finally:
            _KERNELS.clear()
    if interrupted:  # the notebook ended as Ctrl-C came: the grid stops all the same
        raise KeyboardInterrupt
