"""Ordering models learned once per language from its UD train files, cached in memory and under cache_dir()."""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from ..config import cache_dir
from ..fingerprint import files_fingerprint
from .conllu import read_conllu
from .model import MODEL_FORMAT, OrderingModel, learn_ordering_model
from .treebanks import treebank_files


def _fingerprint(paths: list[Path]) -> str:
    """Changes when a training file (name, size, mtime), the model format or the reading/learning code changes."""
    code = [hashlib.sha1((Path(__file__).parent / module).read_bytes()).hexdigest()  # cheap to relearn, so any
            for module in ("conllu.py", "model.py")]                                   # code change invalidates
    return files_fingerprint(paths, salt=[f"format={MODEL_FORMAT}", code])


def model_path(language: str) -> Path:
    """Where the cached model of a language lives."""
    paths = treebank_files(language, "train")
    folder = cache_dir() / "syntax"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"ordering-{language}-{_fingerprint(paths)}.json"


@lru_cache(maxsize=None)
def load_ordering_model(language: str) -> OrderingModel:
    """The language's ordering model: from the disk cache, else learned from its UD train files and cached."""
    path = model_path(language)
    if path.is_file():
        try:
            return OrderingModel.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError):
            pass  # stale or damaged cache: learn again
    trees = (t for p in treebank_files(language, "train") for t in read_conllu(p))
    model = learn_ordering_model(language, trees)
    model.save(path)
    return model
