"""Where data, caches and runs live; offline switches. Resolved once, overridable by environment."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Never reach for the network unless the user explicitly opts in (XLT_ONLINE=1).
if os.environ.get("XLT_ONLINE") != "1":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads that wait at a barrier sleep instead of spinning. On a shared machine (more runnable
# threads than cores) a spinning thread burns the time its descheduled partner needs: measured on the
# 2-core runners under load, training steps ran ~1.7x and a 512x512 SVD up to 100x faster with PASSIVE
# (benchmarks/README.md). Takes effect only if torch is imported after xlt_helpers; $OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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
