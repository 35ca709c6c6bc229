"""Snapshots of the word-embedding matrix during pretraining, so the alignment step can say how alignment
grew over training (``pretrain.embedding_snapshots``: steps between two snapshots; 0: none).

``checkpoint.pt`` is overwritten at every checkpoint, so it cannot tell; a snapshot is only the input
embeddings (rows x hidden, float32: 1 MB at the `cpu` scale, 164 MB at the paper's). While training,
each snapshot is one ``.npy`` file in ``embedding_snapshots/`` beside the checkpoint (a resumed run drops
those after its checkpoint and writes them again: same seed, same numbers); at the end they are packed
into ``embeddings_history.npz`` in the model folder (one array per snapshot, named ``step_<n>``) and the
folder is removed.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np

FOLDER = "embedding_snapshots"
HISTORY_FILE = "embeddings_history.npz"
PREFIX = "step_"


def due(step: int, every: int, total: int) -> bool:
    """Whether a snapshot is taken after optimizer step ``step`` (0: the initial weights; the last step always)."""
    return every > 0 and (step % every == 0 or step == total)


def _path(out_dir: Path, step: int) -> Path:
    return Path(out_dir) / FOLDER / f"{PREFIX}{step:09d}.npy"


def save(embeddings: np.ndarray, out_dir: str | Path, step: int) -> None:
    """Write the snapshot of ``step`` (written to a temporary name, then renamed: never half a file)."""
    path = _path(Path(out_dir), step)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npy")
    np.save(tmp, np.asarray(embeddings, dtype=np.float32))
    os.replace(tmp, path)


def _steps(out_dir: Path) -> list[int]:
    folder = Path(out_dir) / FOLDER
    return sorted(int(p.stem[len(PREFIX):]) for p in folder.glob(f"{PREFIX}*.npy")) if folder.is_dir() else []


def trim(out_dir: str | Path, step: int) -> None:
    """Drop the snapshots taken after ``step`` (the step a run resumes from: they will be taken again)."""
    for s in _steps(Path(out_dir)):
        if s > step:
            _path(Path(out_dir), s).unlink(missing_ok=True)


def pack(out_dir: str | Path, model_dir: str | Path) -> Path | None:
    """Every snapshot of ``out_dir`` into ``model_dir/embeddings_history.npz``, then the folder removed.
    None when there is none (a run resumed after it packed keeps the file it wrote)."""
    out_dir, target = Path(out_dir), Path(model_dir) / HISTORY_FILE
    steps = _steps(out_dir)
    if not steps:
        return target if target.exists() else None
    arrays = {f"{PREFIX}{s}": np.load(_path(out_dir, s), mmap_mode="r") for s in steps}
    tmp = target.with_name(f".{target.stem}.tmp{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, target)
    shutil.rmtree(out_dir / FOLDER)
    return target


def history(model_dir: str | Path) -> Iterator[tuple[int, np.ndarray]]:
    """``(step, embeddings)`` of every snapshot of a pretrained model, by step (none without the file)."""
    path = Path(model_dir) / HISTORY_FILE
    if not path.exists():
        return
    with np.load(path) as npz:
        for name in sorted(npz.files, key=lambda n: int(n[len(PREFIX):])):
            yield int(name[len(PREFIX):]), npz[name]
