"""Folder keys: a model's folder and a step's folder, named by what they compute (the config groups they
read and the content of the data files they read), so that pretrained models are shared by every task
and every grid that needs them, and a changed setting or corpus never silently reuses one."""
from __future__ import annotations

from pathlib import Path

from ..config import runs_dir
from ..fingerprint import fingerprint
from ..inputs import pretraining_inputs
from ..labels import MONO, PAIR, pair_name
from ..run_config import RunConfig, step_key
from ..step_kinds import KINDS


def pretraining_data_key(cfg: RunConfig) -> str:
    """The data files (their content) and registry entries a pretraining reads (``inputs.pretraining_inputs``),
    as a short hash."""
    from ..data import pretrain_key, registry_fingerprint
    from ..fingerprint import files_fingerprint

    inputs = pretraining_inputs(cfg)
    parts = [registry_fingerprint(c.language, pretrain_key(c.domain)) for c in inputs.corpora]
    if inputs.treebanks:
        parts.append(_treebanks_key())
    if inputs.dictionary is not None:  # a natural pair's word pairs: their content, not only the path
        path = inputs.dictionary  # a missing file: the pretraining step says so
        parts.append(files_fingerprint([path], "dictionary") if path.is_file() else f"missing:{path}")
    return fingerprint(parts)


def task_data_key(cfg: RunConfig, task: str) -> str:
    """The registry entries and data files of ``task`` in the model's language(s), as a short hash."""
    from ..data import registry_fingerprint

    d = cfg.data
    langs = [d.language] + ([d.second_language] if d.second_language else [])
    return fingerprint([registry_fingerprint(lang, "tasks", task) for lang in langs])


def _treebanks_key() -> str:
    """Syntax reads treebanks (its parser, the word-order statistics of the languages it borrows from)."""
    from ..data import languages
    from ..fingerprint import files_fingerprint
    from ..syntax.treebanks import treebank_files

    paths = []
    for lang in languages():
        try:
            paths += treebank_files(lang, "train")
        except (FileNotFoundError, ValueError):
            continue
    return files_fingerprint(paths, "treebanks")


def model_dir(cfg: RunConfig) -> Path:
    """A model's folder: keyed by every field of the groups pretraining reads (model, data, pretrain) and
    by its data files, so a changed setting or corpus never silently reuses a model."""
    d = cfg.data
    label = pair_name(d.language, d.second_language) if d.model_kind == "pair" else d.language
    tdir = {"pair": PAIR, "monolingual": MONO}.get(d.model_kind) or transformation_dirname(d.transformation)
    key = step_key(cfg, ("model", "data", "pretrain"), pretraining_data_key(cfg))
    return runs_dir() / cfg.preset / label / tdir / f"seed{cfg.pretrain.seed}_{key}"


def step_dir(cfg: RunConfig, kind: str, task: str | None = None) -> Path:
    """A step's folder inside its model's: the name says what it is, the key what it read beyond the model
    (``step_kinds.KINDS``: the config groups, and the task's data files for a step that serves a task)."""
    k = KINDS[kind]
    if not k.groups:
        return model_dir(cfg) / k.folder
    if k.task:
        return model_dir(cfg) / f"{k.folder}{task}_{step_key(cfg, k.groups, task_data_key(cfg, task))}"
    # the alignment step's contextual measures read Tatoeba sentences: their file's content too
    extra = (task_data_key(cfg, "retrieval"),) if kind == "alignment" and cfg.evaluate.contextual else ()
    return model_dir(cfg) / f"{k.folder}{step_key(cfg, k.groups, *extra)}"


def transformation_dirname(transformation: str) -> str:
    """A portable folder name for a composition: 'syntax:fr+translit' -> 'syntax-fr_then_translit'."""
    return transformation.replace("+", "_then_").replace(":", "-").replace("@", "at").replace("~", "_")
