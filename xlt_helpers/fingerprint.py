"""Fingerprints: of JSON values (cache keys), of files (name and content) and of the code a step runs.

The code fingerprint of a step kind hashes the sources of the modules that compute its numbers: the
modules its root modules import, followed through the package (``from .x import`` anywhere in a
file, lazy imports included), plus those of the steps it depends on (a transfer reads a pretrained
model). Modules that never change a number (paths, storage, the grid and report wings) are left out,
so editing them marks nothing stale. Any other edit, a comment included, does: the price of a
fingerprint nobody has to remember to bump is an occasional recompute, never a silent reuse.
"""
from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from .step_kinds import KINDS

PACKAGE = Path(__file__).resolve().parent

# Modules that cannot change a result: where files live, how they are written, how steps are run and shown.
NEUTRAL = frozenset({"__init__", "__main__", "config", "storage", "errors", "strict_yaml", "memory", "run_config",
                     "fingerprint", "stats", "docgen", "progress", "timing", "compute", "step_kinds", "syntax.__init__", "syntax.__main__",
                     "syntax.stats",
                     "hf_tokenizer", "model_card", "loading",  # a model folder's transformers files
                     "extras"})
# Packages whose every module is neutral: the grid runs steps, the report reads their results, the exploration
# notebooks' helpers only look (no step imports them).
NEUTRAL_WINGS = ("grid", "report", "explore")
# What each step kind computes with (besides ``experiment``, the step functions, which every kind runs) and
# the kinds whose results it reads: the step-kind table's columns.
ROOTS: dict[str, tuple[str, ...]] = {k.name: k.roots for k in KINDS.values()}
DEPENDS_ON: dict[str, tuple[str, ...]] = {k.name: k.depends_on for k in KINDS.values()}


def fingerprint(obj: object) -> str:
    """A short stable hash of a JSON-serialisable object (cache keys)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def files_fingerprint(paths: Iterable[Path], salt: object = None) -> str:
    """Changes when a file's name or content changes, or the salt does. Not its modification time: a fresh
    copy of the same data (a new clone, a new machine) keeps every run folder it keyed."""
    h = hashlib.sha1(json.dumps(salt, sort_keys=True, default=str).encode())
    for p in paths:
        h.update(f"{Path(p).name}:{content_digest(Path(p))}".encode())
    return h.hexdigest()[:12]


def content_digest(path: Path) -> str:
    """The SHA-1 of a file's bytes, remembered (in memory and in the cache folder) per path, size,
    modification time, inode and inode change time, so a multi-GB corpus is read once per copy, not once
    per plan. The change time (ctime) is the one the file system sets itself on every write and that no
    tool can set back: an in-place edit whose modification time was restored (``cp -p``, ``rsync -a``,
    ``tar x``, ``touch -r``) still changes it, and so is read again."""
    st = path.stat()
    stamp = [str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    key = tuple(stamp)
    if key in _digests:
        return _digests[key]
    from .config import cache_dir
    from .storage import atomic_write_json, read_json

    memo = cache_dir() / "file_digests" / f"{fingerprint(stamp[0])}.json"
    try:
        saved = read_json(memo)
        digest = saved["sha1"] if saved.get("stamp") == stamp else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        digest = None
    if digest is None:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
        digest = h.hexdigest()
        atomic_write_json({"stamp": stamp, "sha1": digest}, memo)
    _digests[key] = digest
    return digest


_digests: dict[tuple, str] = {}


def package_sources() -> dict[str, str]:
    """``{"pretrain": <source>, "syntax.parser": <source>, ...}`` for every module of the package."""
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p.read_text(encoding="utf-8")
            for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(module: str, source: str, known: set[str]) -> set[str]:
    """The package modules ``module`` imports (relative imports, at any depth of the file)."""
    package = module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            candidates = [target] + [f"{target}.{a.name}" if target else a.name for a in node.names]
            out |= {c for c in candidates if c in known}
            if target and f"{target}.__init__" in known:
                out.add(f"{target}.__init__")
    return out


def modules_of(kind: str, sources: Mapping[str, str]) -> list[str]:
    """The modules whose sources make up ``kind``'s code fingerprint (its own and its dependencies')."""
    known = set(sources)
    todo = ["experiment", "labels", *(r for k in (kind, *DEPENDS_ON[kind]) for r in ROOTS[k])]
    seen: set[str] = set()
    while todo:
        m = todo.pop()
        if m in seen or m not in known:
            continue
        seen.add(m)
        if m != "experiment":  # the hub imports every step's modules; only its own source counts
            todo += sorted(_imports(m, sources[m], known))
    return sorted(m for m in seen if not is_neutral(m))


def is_neutral(module: str) -> bool:
    """Whether ``module`` (a dotted name inside the package) cannot change a number (``NEUTRAL``)."""
    return module in NEUTRAL or module.split(".")[0] in NEUTRAL_WINGS


def code_fingerprint(kind: str, sources: Mapping[str, str] | None = None) -> str:
    """The fingerprint of the code that computes a step of ``kind`` (``sources``: for tests)."""
    if sources is None:
        return _current(kind)
    return fingerprint({m: hashlib.sha1(sources[m].encode()).hexdigest() for m in modules_of(kind, sources)})


@lru_cache(maxsize=None)
def _current(kind: str) -> str:
    return code_fingerprint(kind, package_sources())
