"""Crash-safe writes: a file is either absent or complete, never half-written."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write ``text`` (gzip-compressed when ``path`` ends in ``.gz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    data = text.encode()
    with open(tmp, "wb") as f:
        f.write(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(obj: Any, path: str | Path) -> None:
    """JSON, indented (compact and gzipped when ``path`` ends in ``.gz``)."""
    if Path(path).suffix == ".gz":
        atomic_write_text(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str), path)
    else:
        atomic_write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    import torch  # here, not at the top: the runner's `status` must not load torch

    path = Path(path)
    tmp = _tmp(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def read_json(path: str | Path) -> Any:
    """A JSON file (gzip-compressed when its name ends in ``.gz``)."""
    with (gzip.open(path, "rt") if Path(path).suffix == ".gz" else open(path)) as f:
        return json.load(f)
