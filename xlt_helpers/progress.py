"""Live progress of a grid: the kernel reports where a step is, the runner shows it with the grid's own bar.

Kernel side: ``report(phase, done, total, **fields)`` writes a small JSON file named by ``$XLT_PROGRESS_FILE``
(set by the runner for the step's kernel), at most once a second; without the variable it does nothing,
so notebooks run by hand are unaffected. Runner side: ``GridProgress`` keeps the overall count (done /
total, elapsed, ETA from the durations of the steps finished so far) and a ``Ticker`` thread reads the
step's file while it runs: one refreshing line on a terminal, a plain line every 30 seconds otherwise
(CI, logs). Neither side changes any number: this module only reads and writes these files.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable, TextIO

ENV = "XLT_PROGRESS_FILE"
_last_write = [0.0]


def report(phase: str, done: int, total: int, force: bool = False, **fields: float | int | str | None) -> None:
    """Tell the runner where the step is (``phase``: e.g. "pretrain", ``done`` of ``total`` units, and
    any short fields such as ``loss``); throttled to one write a second unless ``force``."""
    path = os.environ.get(ENV)
    now = time.monotonic()
    if not path or (not force and now - _last_write[0] < 1.0):
        return
    _last_write[0] = now
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump({"phase": phase, "done": done, "total": total, **fields}, f)
    os.replace(tmp, path)


def read(path: Path) -> dict | None:
    """The last report written to ``path`` (None: none yet, or unreadable mid-replace)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def describe(state: dict | None) -> str:
    """One short phrase for a kernel report: 'pretrain 120/6000 loss 5.21 tok/s 140,000'."""
    if not state:
        return "starting"
    parts = [f"{state.get('phase', '?')} {state.get('done', '?')}/{state.get('total', '?')}"]
    for key, value in state.items():
        if key in ("phase", "done", "total") or value is None:
            continue
        shown = f"{value:,.0f}" if isinstance(value, float) and abs(value) >= 1000 else \
            f"{value:.3f}" if isinstance(value, float) else str(value)
        parts.append(f"{key.replace('_', ' ')} {shown}")
    return " ".join(parts)


def clock(seconds: float | None) -> str:
    """``1:02:03`` / ``2:03``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class GridProgress:
    """The overall bar: steps done of total, elapsed time and an ETA from the measured step durations
    (mean per step kind; the mean over all kinds for a kind not yet measured)."""

    def __init__(self, kinds: list[str]):
        self.kinds = list(kinds)         # kind of every step still to run, in order
        self.total = len(kinds)
        self.finished = 0
        self.t0 = time.monotonic()
        self.durations: dict[str, list[float]] = {}

    def step_done(self, kind: str, seconds: float) -> None:
        self.durations.setdefault(kind, []).append(seconds)
        self.finished += 1

    def eta(self, running_for: float = 0.0) -> float | None:
        """Seconds left for the steps not finished (the running one counted as started ``running_for`` ago)."""
        measured = [d for ds in self.durations.values() for d in ds]
        if not measured:
            return None
        overall = sum(measured) / len(measured)
        mean = lambda k: sum(self.durations[k]) / len(self.durations[k]) if k in self.durations else overall  # noqa: E731
        left = sum(mean(k) for k in self.kinds[self.finished:])
        return max(0.0, left - running_for)

    def line(self, running_for: float = 0.0) -> str:
        width = 20
        filled = int(width * self.finished / self.total) if self.total else width
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.finished}/{self.total} steps "
                f"elapsed {clock(time.monotonic() - self.t0)} ETA {clock(self.eta(running_for))}")


class Ticker:
    """While a step runs, every ``interval`` seconds: the grid's bar and the step's own progress on one
    line. On a terminal (``tty``) the line is rewritten in place on stdout and ``log`` lines are printed
    above it (use ``ticker.log``); otherwise it goes to ``log`` as a plain line every ``every`` seconds."""

    def __init__(self, grid: GridProgress, path: Path, label: str, log: Callable[[str], None] = print,
                 tty: bool = False, interval: float = 1.0, every: float = 30.0, stream: TextIO | None = None):
        self.grid, self.path, self.label, self._log, self.tty = grid, path, label, log, tty
        self.interval, self.every = interval, every
        self.stream = stream or sys.stdout
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._width = 0

    def text(self) -> str:
        running = time.monotonic() - self.t0
        return f"{self.grid.line(running)} | {self.label}: {describe(read(self.path))} ({clock(running)})"

    def _clear(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _emit(self) -> None:
        text = self.text()
        with self._lock:
            if self.tty:
                self.stream.write("\r" + text.ljust(self._width))
                self.stream.flush()
                self._width = len(text)
            else:
                self._log(text)

    def log(self, message: str) -> None:
        """``log(message)`` without mixing it into the refreshing line."""
        with self._lock:
            self._clear()
            self._log(message)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.interval):
            if self.tty or time.monotonic() - last >= self.every:
                self._emit()
                last = time.monotonic()

    def __enter__(self) -> "Ticker":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._clear()


def step_env(path: Path) -> Callable[[], None]:
    """Point ``$XLT_PROGRESS_FILE`` at ``path`` for the kernel about to start; returns the undo."""
    old = os.environ.get(ENV)
    os.environ[ENV] = str(path)

    def undo() -> None:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old
    return undo
