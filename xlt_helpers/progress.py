"""Live progress of a grid: the kernel reports where a step is, the runner shows it with the grid's own bar.

Kernel side: ``report(phase, done, total, **fields)`` writes a small JSON file named by ``$XLT_PROGRESS_FILE``
(set by the runner for the step's kernel), at most once a second; without the variable it does nothing,
so notebooks run by hand are unaffected. Runner side: ``GridProgress`` keeps the overall count (done /
total, elapsed, ETA from the durations of the steps finished so far) and a ``Ticker`` thread reads the
running steps' files: on a terminal one refreshing line (the grid's bar and the step's progress), or, with
several steps running side by side, the bar and one line per step; plain lines every 30 seconds otherwise
(CI, logs). Neither side changes any number: this module only reads and writes these files.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections import Counter
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
    (mean per step kind; the mean over all kinds for a kind not yet measured), shared by ``jobs`` steps
    running side by side."""

    def __init__(self, kinds: list[str], jobs: int = 1):
        self.left = Counter(kinds)       # how many steps of each kind are still to finish
        self.total = len(kinds)
        self.jobs = max(1, jobs)
        self.finished = 0
        self.t0 = time.monotonic()
        self.durations: dict[str, list[float]] = {}

    def step_done(self, kind: str, seconds: float) -> None:
        self.durations.setdefault(kind, []).append(seconds)
        self.left[kind] -= 1
        self.finished += 1

    def eta(self, running_for: float | list[float] = 0.0) -> float | None:
        """Seconds left for the steps not finished (the running ones counted as started ``running_for``
        seconds ago: one number, or one per running step), their work spread over the jobs."""
        measured = [d for ds in self.durations.values() for d in ds]
        if not measured:
            return None
        overall = sum(measured) / len(measured)
        mean = lambda k: sum(self.durations[k]) / len(self.durations[k]) if k in self.durations else overall  # noqa: E731
        left = sum(mean(k) * n for k, n in self.left.items() if n > 0)
        running = running_for if isinstance(running_for, (int, float)) else sum(running_for)
        return max(0.0, left - running) / min(self.jobs, max(1, self.total - self.finished))

    def line(self, running_for: float | list[float] = 0.0) -> str:
        width = 20
        filled = int(width * self.finished / self.total) if self.total else width
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.finished}/{self.total} steps "
                f"elapsed {clock(time.monotonic() - self.t0)} ETA {clock(self.eta(running_for))}")


class Ticker:
    """While steps run, every ``interval`` seconds: the grid's bar and each running step's own progress
    (``add``/``remove`` a step as it starts and ends; ``path``, ``label``: one step running from the start).
    With one step running, one line: the bar, then the step. With several, the bar and one line per step.
    On a terminal (``tty``) the lines are rewritten in place on stdout and ``log`` lines are printed above
    them (use ``ticker.log``); otherwise they go to ``log`` as plain lines every ``every`` seconds."""

    def __init__(self, grid: GridProgress, path: Path | None = None, label: str | None = None,
                 log: Callable[[str], None] = print, tty: bool = False, interval: float = 1.0, every: float = 30.0,
                 stream: TextIO | None = None):
        self.grid, self._log, self.tty = grid, log, tty
        self.interval, self.every = interval, every
        self.stream = stream or sys.stdout
        self.running: dict[Path, tuple[str, float]] = {}  # progress file -> (label, started)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lines = 0   # lines drawn on the terminal
        self._width = 0   # width of the last one
        if path is not None:
            self.add(path, label or "")

    def add(self, path: Path, label: str) -> None:
        """A step started: show it (``path``: its progress file)."""
        with self._lock:
            self.running[path] = (label, time.monotonic())

    def remove(self, path: Path) -> None:
        """A step ended: its line goes."""
        with self._lock:
            self.running.pop(path, None)

    def text(self) -> str:
        now = time.monotonic()
        steps = [(label, now - t0, describe(read(path))) for path, (label, t0) in list(self.running.items())]
        bar = self.grid.line([running for _, running, _ in steps])
        if len(steps) == 1:
            label, running, state = steps[0]
            return f"{bar} | {label}: {state} ({clock(running)})"
        return "\n".join([bar] + [f"  {label}: {state} ({clock(running)})" for label, running, state in steps])

    def _clear(self) -> None:
        if self._lines:
            up = "\x1b[1A\x1b[2K" * (self._lines - 1)  # the lines above the cursor, from the last one up
            self.stream.write("\r" + " " * self._width + "\r" + up + "\r")
            self.stream.flush()
            self._lines = self._width = 0

    def _emit(self) -> None:
        text = self.text()
        with self._lock:
            if self.tty:
                self._clear()
                if self.stream.isatty():  # a line wider than the terminal would wrap, and not be cleared
                    width = shutil.get_terminal_size().columns - 1
                    text = "\n".join(line[:width] for line in text.split("\n"))
                self.stream.write(text)
                self.stream.flush()
                lines = text.split("\n")
                self._lines, self._width = len(lines), len(lines[-1])
            else:
                for line in text.split("\n"):
                    self._log(line)

    def log(self, message: str) -> None:
        """``log(message)`` without mixing it into the refreshing lines."""
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
