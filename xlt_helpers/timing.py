"""Where a step's time goes: seconds per phase (pretraining, fine-tuning, evaluation, ...) inside its kernel.

``phase(name)`` (a context manager and a decorator) adds the wall time of what it wraps to ``totals()[name]``;
``experiment.save_results`` writes the totals into ``results.json`` under ``timing``, and
``benchmarks/time_by_kind.py`` adds the kernel's start-up and imports (from the papermill timestamps of the
executed notebook) to give a grid's wall time by kind. Phases may nest (``step`` holds the others); a
phase never changes a number.
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict

_totals: dict[str, float] = defaultdict(float)
_open: list[str] = []  # the phases running now, outermost first: a phase nested in itself counts once


class phase(contextlib.ContextDecorator):
    """Count the wall time of the ``with`` block (or of each call of the decorated function) to ``name``."""

    def __init__(self, name: str):
        self.name = name
        self._t0: list[float | None] = []

    def __enter__(self) -> "phase":
        self._t0.append(None if self.name in _open else time.perf_counter())
        _open.append(self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        _open.remove(self.name)
        t0 = self._t0.pop()
        if t0 is not None:
            _totals[self.name] += time.perf_counter() - t0


def totals() -> dict[str, float]:
    """Seconds per phase so far in this process, rounded to milliseconds."""
    return {name: round(seconds, 3) for name, seconds in _totals.items()}


def reset() -> None:
    """Forget the totals (a test, or a process that runs several steps)."""
    _totals.clear()
