"""Provenance: which code, libraries, machine and grid file produced a report, for its header."""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ..config import REPO_ROOT

LIBRARIES = ("torch", "transformers", "tokenizers")


def git_state(repo: str | Path = REPO_ROOT) -> dict:
    """The commit checked out in ``repo`` and whether its tracked files differ from it (``dirty``); both
    None outside a git checkout (or without git)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows) and its core count."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, {os.cpu_count()} cores"


def gpu_model() -> str:
    """The CUDA GPUs torch sees, by name, or ``none``."""
    import torch

    if not torch.cuda.is_available():
        return "none"
    return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes (the grid file a report was built from)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def provenance(grid_file: str | Path | None = None, repo: str | Path = REPO_ROOT,
               now: datetime | None = None) -> dict:
    """What produced this report: git commit and dirty flag, Python and library versions, CPU and GPU,
    threads (``$XLT_THREADS``, else every core: ``model.set_threads``), the date, and the grid file with
    its sha256. A grid file that does not exist is named with hash ``missing``."""
    import torch

    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    threads = os.environ.get("XLT_THREADS")
    threads = f"{threads} ($XLT_THREADS)" if threads else f"{os.cpu_count()} (every core; torch now {torch.get_num_threads()})"
    out = {**git_state(repo), "python": sys.version.split()[0], **versions, "cpu": cpu_model(), "gpu": gpu_model(),
           "threads": threads, "date": (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")}
    if grid_file is not None:
        path = Path(grid_file)
        out["grid_file"] = str(path)
        out["grid_sha256"] = file_hash(path) if path.is_file() else "missing"
    return out
