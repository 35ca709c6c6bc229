"""Checks before a grid runs: what would otherwise fail only after steps ran, or write where it must not.

Each check raises ``ConfigError`` (a ``ValueError``) with one line naming the grid file, the key and what
is expected; the runner calls them after planning and before the first step (``check_before_run``),
and ``report_folder`` before any report file is written. They read files (the corpora's first lines, the
report folder's record) but never run a step.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

from ..run_config import MAX_SEED, ConfigError

REPORTS = "reports"
OWNER_FILE = "grid_file.json"  # in a report folder: the grid file whose report it is
_NAME = re.compile(r"\w[\w .+=@~-]*")  # \w: letters and digits of any script, and _


def check_name(name: Any, where: str, limit: int = 255) -> None:
    """A grid's ``name``: one plain folder name (the report goes to ``<runs>/reports/<name>``), never a path:
    no separator, not ``.`` or ``..``, not empty, not hidden, no control or shell-special character."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"{where}: name {name!r}: expected a plain folder name of letters, digits, spaces and "
                          "_ . + = @ ~ - (not starting with . or -; the report goes to <runs>/reports/<name>)")
    if len(name.encode()) > limit:
        raise ConfigError(f"{where}: name is {len(name.encode())} bytes long: expected at most {limit} (the file "
                          "system's longest file name)")


def check_axes(raw: dict, where: str) -> None:
    """Axes that would plan no step, or the same step twice: an empty ``tasks``, no model at all (neither
    ``languages`` x ``transformations`` nor ``pairs``), an entry listed twice, a seed out of range."""
    if not raw.get("tasks"):
        raise ConfigError(f"{where}: tasks is empty: expected at least one task (the grid would run nothing)")
    if not (raw.get("languages") and raw.get("transformations")) and not raw.get("pairs"):
        raise ConfigError(f"{where}: no model to train: expected languages and transformations both non-empty, "
                          "or pairs (the grid would run nothing)")
    settings = raw.get("corpus_settings")  # a list, or a mapping from some transformations to lists
    lists = [(key, raw.get(key) or []) for key in ("languages", "transformations", "tasks", "pairs", "seeds",
                                                   "finetune_seeds")]
    lists += [(f"corpus_settings of {t}", v) for t, v in settings.items() if isinstance(v, list)] \
        if isinstance(settings, dict) else [("corpus_settings", settings or [])]
    for key, values in lists:
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise ConfigError(f"{where}: {key} lists {twice[0]!r} twice: expected each once")
    for key in ("seeds", "finetune_seeds"):
        bad = [v for v in raw.get(key) or [] if not 0 <= v <= MAX_SEED]
        if bad:
            raise ConfigError(f"{where}: {key}: {bad[0]}: expected whole numbers from 0 to {MAX_SEED} (2**32 - 1)")


def canonical_transformations(specs: list[str], where: str) -> list[str]:
    """The grid's transformations in their one spelling (``transformations.canonical_spec``); two spellings
    of one derived language in the same grid are refused (they would be one model counted twice)."""
    from ..transformations import canonical_spec

    seen: dict[str, str] = {}
    out = []
    for spec in specs:
        try:
            canonical = canonical_spec(spec)
        except ValueError:
            canonical = spec  # the grid's own check names the problem
        if canonical in seen:
            raise ConfigError(f"{where}: transformations: {seen[canonical]!r} and {spec!r} are one derived language "
                              f"({canonical}): expected each once")
        seen[canonical] = spec
        out.append(canonical)
    return out


def name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` (or its nearest existing parent) takes."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            try:
                return int(os.pathconf(parent, "PC_NAME_MAX"))
            except (OSError, ValueError):
                return 255
    return 255


def check_paths(paths: Iterable[Path], root: Path, where: str) -> None:
    """Every folder name under ``root`` short enough for the file system (a long transformation or variant
    name, a long grid name), and every path within the system's limit."""
    limit, path_max = name_max(root), 4096
    for path in paths:
        for part in path.relative_to(root).parts:
            if len(part.encode()) > limit:
                raise ConfigError(f"{where}: the folder name {part[:60]!r}... is {len(part.encode())} bytes long: "
                                  f"expected at most {limit} (shorten the name, transformation or variant it is "
                                  "made of)")
        if len(str(path).encode()) >= path_max:
            raise ConfigError(f"{where}: {str(path)[:60]}... is {len(str(path).encode())} bytes long: expected under "
                              f"{path_max} (a shorter XLT_RUNS_DIR or grid name)")


def check_writable(folder: Path, what: str) -> None:
    """``folder`` exists (or can be made) and takes a new file: a read-only runs folder is refused before a
    step runs, not after the first one."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write_test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{what} {folder} is not writable ({exc.strerror or type(exc).__name__}): expected a "
                          "folder this user can write (set XLT_RUNS_DIR to one)") from None


def check_corpora(cfgs: Iterable[Any], where: str) -> None:
    """Every pretraining corpus the models read holds a sentence (an empty file fails after the steps
    before it ran, and named no file)."""
    from ..data import check_pretraining_corpus
    from ..errors import DataFormatError

    seen = set()
    for cfg in cfgs:
        d = cfg.data
        needed = [(d.language, "main")] + ([(d.second_language, "main")] if d.second_language else [])
        if d.transformation and d.corpus_setting == "other_domain":
            needed.append((d.language, "other_domain"))
        for item in needed:
            if item in seen:
                continue
            seen.add(item)
            try:
                check_pretraining_corpus(*item)
            except DataFormatError as exc:
                raise ConfigError(f"{where}: {exc}") from None


def check_memory(cfgs: Iterable[Any], where: str) -> None:
    """No batch larger than its device's memory can hold (``memory.memory_problem``, a lower bound)."""
    from ..memory import memory_problem

    seen = set()
    for cfg in cfgs:
        key = (cfg.model, cfg.pretrain.batch_size, cfg.pretrain.grad_accum, cfg.pretrain.seq_len, cfg.pretrain.device,
               cfg.finetune.batch_size, cfg.finetune.max_len, cfg.finetune.device)
        if key in seen:
            continue
        seen.add(key)
        problem = memory_problem(cfg)
        if problem:
            raise ConfigError(f"{where}: {problem}")


def report_folder(runs: Path, name: str, grid_file: str | Path, claim: bool) -> Path:
    """``<runs>/reports/<name>``, checked to be a folder of its own inside ``runs`` and to belong to this grid
    file. A report folder records the grid file it reports on (``grid_file.json``); another grid file of the
    same name (``a/default.yaml`` and ``b/default.yaml``) with other content is refused rather than allowed
    to replace that report. The same file moved (a new clone) or an unchanged copy keeps it. ``claim``:
    write the record (the report is about to be written)."""
    check_name(name, str(grid_file), name_max(runs))
    base = (runs / REPORTS).resolve()
    folder = base / name
    if folder.resolve().parent != base:  # a symbolic link planted where the report goes
        raise ConfigError(f"{grid_file}: report folder {folder} leads outside {base}: expected a folder, not a link")
    grid_path = Path(grid_file).resolve()
    digest = hashlib.sha1(grid_path.read_bytes()).hexdigest() if grid_path.is_file() else None
    record = folder / OWNER_FILE
    try:
        owner = json.loads(record.read_text())
    except (OSError, ValueError):
        owner = None
    if isinstance(owner, dict) and owner.get("grid_file") != str(grid_path) and owner.get("sha1") != digest:
        raise ConfigError(f"{grid_file}: name {name!r}: the report folder {folder} holds the report of another grid "
                          f"file, {owner.get('grid_file')}: expected a `name:` of its own in this grid (or remove "
                          f"{record})")
    if claim and owner != {"grid_file": str(grid_path), "sha1": digest}:
        from ..storage import atomic_write_json

        atomic_write_json({"grid_file": str(grid_path), "sha1": digest}, record)
    return folder


def check_before_run(grid: Any, steps: list, runs: Path) -> None:
    """Everything above that needs the plan, before the first step of ``grid`` runs: a writable runs folder,
    the report folder's owner (claimed now, so that another grid of the same name is refused before its
    steps, not after), folder names the file system takes, non-empty corpora, batches that fit."""
    where = str(grid.path)
    check_writable(runs, "runs folder")
    folder = report_folder(runs, grid.name, grid.path, claim=False)
    check_paths([s.out_dir for s in steps] + [folder / "report.html"], runs, where)
    check_corpora([s.cfg for s in steps if s.kind == "pretrain"], where)
    check_memory([s.cfg for s in steps], where)
    report_folder(runs, grid.name, grid.path, claim=True)
