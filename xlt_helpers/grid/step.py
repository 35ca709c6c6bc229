"""One step of a grid: a notebook, its folder and resolved config, and its state (done, stale, failed,
interrupted, pending) read from the files in its folder."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..config import runs_dir
from ..fingerprint import code_fingerprint
from ..run_config import RunConfig
from ..step_kinds import KINDS
from ..storage import read_json


@dataclass
class Step:
    kind: str                 # a row of step_kinds.KINDS: pretrain | finetune_mono | transfer | alignment | retrieval
    out_dir: Path
    cfg: RunConfig
    params: dict[str, Any]    # the notebook's other parameters (task, the folders it reads)
    deps: list["Step"] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)  # the grid's variants it serves (a step can serve several)
    task: str | None = None   # the task it serves (kinds: finetune_mono, transfer, retrieval)

    @property
    def notebook(self) -> str:
        return KINDS[self.kind].notebook

    @property
    def name(self) -> str:
        return str(self.out_dir.relative_to(runs_dir()))

    @property
    def results(self) -> Path:
        return self.out_dir / "results.json"

    @property
    def error(self) -> Path:
        return self.out_dir / "error.json"

    @property
    def interrupted(self) -> Path:
        """Written when Ctrl-C (or SIGTERM) stopped the runner during this step: it is pending, not failed."""
        return self.out_dir / "interrupted.json"

    @property
    def progress(self) -> Path:
        """Where the step's kernel reports its progress (``progress.report``)."""
        return self.out_dir / "progress.json"

    def results_problem(self) -> str | None:
        """Why ``results.json`` does not make the step done (None: it does): absent, unreadable (e.g.
        truncated by a full disk), without rows, with a value that is not a finite number (NaN: nothing
        was scored), or beside a missing output that the steps after it read (a removed ``model/``)."""
        try:
            saved = read_json(self.results)
        except FileNotFoundError:
            return "no results.json"
        except (ValueError, OSError) as exc:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
            return f"{self.results}: unreadable, expected JSON ({type(exc).__name__}: {exc})"
        if not isinstance(saved, dict) or not isinstance(saved.get("rows"), list) or not saved["rows"]:
            return f"{self.results}: expected a mapping with a non-empty list 'rows'"
        for row in saved["rows"]:
            value = row.get("value") if isinstance(row, dict) else None
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                what = f"{row.get('metric')} ({row.get('setting')})" if isinstance(row, dict) else repr(row)[:60]
                return (f"{self.results}: {what} is {value!r}: expected a finite number (NaN: nothing was "
                        "scored, e.g. a test set or finetune.max_len too small)")
        for name in KINDS[self.kind].outputs:
            if not (self.out_dir / name).is_file():
                return f"{self.out_dir / name} is missing: expected it beside results.json (the steps after it read it)"
        return None

    @property
    def done(self) -> bool:
        return self.results_problem() is None

    @property
    def notebook_params(self) -> dict[str, Any]:
        """What papermill passes; a tqdm bar is off (the runner shows the step's progress)."""
        quiet = {"progress": False} if KINDS[self.kind].progress_parameter else {}
        return {"config": json.dumps(self.cfg.to_dict()), **self.params, "out_dir": str(self.out_dir), **quiet}

    @cached_property
    def code(self) -> str:
        """The fingerprint of today's code for this kind of step."""
        return code_fingerprint(self.kind)

    def recorded_code(self) -> str | None:
        """The code fingerprint its results were computed with (None: not done, or saved before fingerprints)."""
        try:
            saved = read_json(self.results)
        except (OSError, ValueError):
            return None
        return saved.get("code_fingerprint") if isinstance(saved, dict) else None

    def state(self) -> str:
        """done | stale (done by older code) | failed: <error, one line> | interrupted | pending."""
        problem = self.results_problem()
        if problem is None:
            return "done" if self.recorded_code() == self.code else "stale"
        if self.results.exists():
            return "failed: " + _one_line(problem)
        if self.error.exists():
            try:
                return "failed: " + _one_line(exception_line(str(read_json(self.error).get("error", ""))))
            except (OSError, ValueError, AttributeError):
                return f"failed: {self.error} is unreadable"
        if self.interrupted.exists():
            return "interrupted"
        return "pending"


def exception_line(error: str) -> str:
    """The exception of a recorded error: itself, or for one recorded with papermill's whole banner
    (``PapermillExecutionError: ---- Exception encountered at "In [3]": ...``, before issue 29) its last
    line that names an exception (``ValueError: ...``), colour codes removed."""
    if not error.startswith("PapermillExecutionError"):
        return error
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", error).splitlines() if ln.strip()]
    named = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b:?", ln)]
    return named[-1] if named else error


def _one_line(text: str, width: int = 400) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``width`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
