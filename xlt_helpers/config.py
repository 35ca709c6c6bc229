"""Where data, caches and runs live, and the environment of the processes the toolkit starts. Resolved
once, overridable by environment.

Importing the package leaves the Hugging Face switches of the process alone: the toolkit's own loads
read local folders only (``local_files_only=True``), and the processes it starts for a grid (a step's
kernel, a torchrun pretraining) get the offline switches in their own environment (``process_env``),
unless ``XLT_ONLINE=1``. docs/install.md, "Working online".
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _project_root() -> Path:
    """The checkout the package runs from (its notebooks beside it), else the current directory (an
    installed package: runs, cache and data default to folders there)."""
    if (PACKAGE_ROOT / "notebooks").is_dir() and (PACKAGE_ROOT / "pyproject.toml").is_file():
        return PACKAGE_ROOT
    return Path.cwd()


REPO_ROOT = _project_root()

# What a process the toolkit starts gets unless XLT_ONLINE=1 (a value the user set wins).
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def process_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process the toolkit starts: ``base`` (default: this process's) with the
    Hugging Face offline switches, unless ``$XLT_ONLINE`` is 1. The calling process is not changed."""
    env = dict(os.environ if base is None else base)
    if env.get("XLT_ONLINE") != "1":
        for key, value in OFFLINE_ENV.items():
            env.setdefault(key, value)
    return env


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads that wait at a barrier sleep instead of spinning. On a shared machine (more runnable
# threads than cores) a spinning thread burns the time its descheduled partner needs: measured on the
# 2-core runners under load, training steps ran ~1.7x and a 512x512 SVD up to 100x faster with PASSIVE
# (benchmarks/README.md). Takes effect only if torch is imported after xlt_helpers; $OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def notebooks_dir() -> Path:
    """The step notebooks: ``notebooks/`` of the checkout, else the copy an installed wheel put in
    ``<prefix>/share/xlt_helpers/notebooks``."""
    here = PACKAGE_ROOT / "notebooks"
    if here.is_dir():
        return here
    installed = Path(sys.prefix) / "share" / "xlt_helpers" / "notebooks"
    if installed.is_dir():
        return installed
    raise FileNotFoundError(f"no step notebooks in {here} or {installed}: reinstall the package (pip install .)")


def data_dir() -> Path:
    """The data directory: $XLT_DATA_DIR, else ../shared/data beside the repository."""
    env = os.environ.get("XLT_DATA_DIR")
    if env:
        path = Path(env).expanduser().resolve()
    else:
        candidates = [REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "shared" / "data"]
        path = next((c for c in candidates if c.is_dir()), candidates[0])
    if not path.is_dir():
        raise FileNotFoundError(
            f"data directory {path} does not exist: set XLT_DATA_DIR to the folder holding "
            "pretrain/, nli/, ner/, pos_xtreme/, ud/ (see docs/data.md)"
        )
    return path


def cache_dir() -> Path:
    """Cache for trained tokenizers, parsers and tokenized corpora: $XLT_CACHE_DIR or .cache/."""
    path = Path(os.environ.get("XLT_CACHE_DIR", REPO_ROOT / ".cache")).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Where executed notebooks and results land: $XLT_RUNS_DIR or papermill_runs/."""
    path = Path(os.environ.get("XLT_RUNS_DIR", REPO_ROOT / "papermill_runs")).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
