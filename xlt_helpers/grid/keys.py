"""Folder keys: a model's folder and a step's folder, named by what they compute (the config groups they
read and the content of the data files they read), so that pretrained models are shared by every task
and every grid that needs them, and a changed setting or corpus never silently reuses one."""
from __future__ import annotations

from pathlib import Path

from ..config import runs_dir
from ..fingerprint import fingerprint
from ..labels import MONO, PAIR, pair_name
from ..run_config import RunConfig, step_key
from ..transformations import DerivedLanguage


def _data_key(kind: str, cfg: RunConfig, task: str | None = None) -> str:
    """The data files (their content) and registry entries a step reads, as a short hash."""
    from ..data import registry_fingerprint

    d = cfg.data
    langs = [d.language] + ([d.second_language] if d.second_language else [])
    if kind == "pretrain":
        parts = [registry_fingerprint(lang, "pretrain") for lang in langs]
        if d.transformation and d.corpus_setting == "other_domain":
            parts.append(registry_fingerprint(d.language, "pretrain_other_domain"))
        if d.transformation and DerivedLanguage(d.transformation, 400).needs_trees:
            parts.append(_treebanks_key())
        if cfg.pretrain.dictionary is not None:  # a natural pair's word pairs: their content, not only the path
            parts.append(_dictionary_key(cfg))
        return fingerprint(parts)
    return fingerprint([registry_fingerprint(lang, "tasks", task) for lang in langs])


def _dictionary_key(cfg: RunConfig) -> str:
    """The content of a natural pair's dictionary file (a missing file: the pretraining step says so)."""
    from ..fingerprint import files_fingerprint
    from ..objectives.dictionary import file_path

    path = file_path(cfg.pretrain.dictionary, cfg.data.language, cfg.data.second_language)
    return files_fingerprint([path], "dictionary") if path.is_file() else f"missing:{path}"


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
    label = pair_name(d.language, d.second_language) if d.second_language else d.language
    tdir = PAIR if d.second_language else transformation_dirname(d.transformation) if d.transformation else MONO
    key = step_key(cfg, ("model", "data", "pretrain"), _data_key("pretrain", cfg))
    return runs_dir() / cfg.preset / label / tdir / f"seed{cfg.pretrain.seed}_{key}"


def step_dir(cfg: RunConfig, kind: str, task: str | None = None) -> Path:
    """A step's folder inside its model's: the name says what it is, the key what it read beyond the model."""
    if kind == "pretrain":
        return model_dir(cfg) / "pretrain"
    if kind == "alignment":
        return model_dir(cfg) / f"alignment_{step_key(cfg, ('evaluate',))}"
    groups = ("finetune", "evaluate") if kind == "retrieval" else ("finetune",)
    prefix = {"finetune_mono": "finetune_", "transfer": "transfer_", "retrieval": ""}[kind]
    return model_dir(cfg) / f"{prefix}{task}_{step_key(cfg, groups, _data_key(kind, cfg, task))}"


def transformation_dirname(transformation: str) -> str:
    """A portable folder name for a composition: 'syntax:fr+translit' -> 'syntax-fr_then_translit'."""
    return transformation.replace("+", "_then_").replace(":", "-").replace("@", "at").replace("~", "_")
