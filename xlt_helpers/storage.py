"""Crash-safe writes: a file is either absent or complete, never half-written; and loads that run no code.

Every write goes to a temporary file of its own in the target's folder (a name no other process or
thread uses at the same moment), which then replaces the target in one atomic rename: two writers of
one file (two ``report`` commands) each leave a complete file, the last rename wins, and a kill leaves
at most a stray ``.<stem>.<pid>.<random>.tmp<suffix>``. Checkpoints are read with ``weights_only`` loading,
which builds tensors and plain containers only: a file in a runs folder never runs code.
"""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import secrets
from pathlib import Path
from typing import Any, Callable, Iterator


def _tmp(path: Path) -> Path:
    """A temporary name beside ``path`` that no other writer uses (pid and 64 random bits), with ``path``'s
    suffix, so that a writer that infers the format from the name (pandas, papermill) infers the same."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(8)}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to (by any writer: pandas, nbconvert, torch);
    on leaving the block it atomically replaces ``path``, or is removed if the block raised."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path``, flushed to disk before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write ``text`` (gzip-compressed when ``path`` ends in ``.gz``)."""
    data = text.encode()
    atomic_write_bytes(gzip.compress(data, mtime=0) if Path(path).suffix == ".gz" else data, path)


def atomic_write_json(obj: Any, path: str | Path) -> None:
    """JSON, indented (compact and gzipped when ``path`` ends in ``.gz``)."""
    if Path(path).suffix == ".gz":
        atomic_write_text(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str), path)
    else:
        atomic_write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def atomic_write_with(write: Callable[[Path], Any], path: str | Path) -> None:
    """``write(tmp)`` writes the file (e.g. ``table.to_csv``), then it replaces ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    import torch  # here, not at the top: the runner's `status` must not load torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class UnsafePickleError(ValueError):
    """A torch file that holds objects other than tensors and plain values (refused before any is built)."""


def safe_torch_load(path: str | Path, map_location: Any = None) -> Any:
    """A file written by ``atomic_torch_save``, loaded with ``weights_only=True``: tensors, numbers,
    strings and containers only. A pickle that would build any other object (and so could run code)
    raises ``UnsafePickleError`` before anything of it is built."""
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # a foreign pickle protocol: the refusal below says enough
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" not in str(exc).lower():
            raise
        raise UnsafePickleError("it holds objects other than tensors and plain values: refused without "
                                "unpickling them (a checkpoint written by this toolkit holds none)") from None


def read_json(path: str | Path) -> Any:
    """A JSON file (gzip-compressed when its name ends in ``.gz``)."""
    with (gzip.open(path, "rt") if Path(path).suffix == ".gz" else open(path)) as f:
        return json.load(f)
