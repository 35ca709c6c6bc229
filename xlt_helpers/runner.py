"""The experiment runner: expand a grid into resolved configs and notebook steps, run them, aggregate.

Each step is a parameterised notebook executed into its own folder under ``papermill_runs/``; it gets
its fully resolved ``RunConfig`` as one parameter. A step is done when its ``results.json`` exists
(written atomically by the notebook's last cell, with the config and the fingerprint of the code that
computed it). Folders are keyed by what the step computes (the config groups it reads and the data
files it reads, see ``model_dir`` and ``Step``), not by the grid, so pretrained models are shared by
every task and every grid that needs them. A done step whose code has changed since is ``stale``: it
is reused with a warning line, or redone with ``rerun_stale``. A step that fails leaves ``error.json``
and does not stop the others.

Cells the data or the method do not allow (a language without data for a task, Permutation with QA,
retrieval between a natural pair without parallel sentences) are not steps: ``plan`` returns them as
``Skip`` records with the reason, ``run_grid`` prints them and the report lists them.

Grid keys: ``languages`` x ``transformations`` x ``tasks`` (synthetic derived languages), ``pairs``
(natural language pairs ``"en-fr"``: pretrain on both, fine-tune on the first, test on the second),
``seeds`` (pretraining), ``corpus_settings`` (one model per derived-corpus setting), ``finetune_seeds``
(fine-tuning only, each reusing the pretrained models;
default: the pretraining seed), ``scale`` (a preset of run_config.PRESETS), ``overrides`` (any config field
by its dotted name, e.g. ``pretrain.steps: 500``), ``alignment``, ``description``.
"""
from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Iterator

import yaml

from .config import REPO_ROOT, runs_dir
from .fingerprint import code_fingerprint, fingerprint
from .labels import DEFAULT_VARIANT, MONO, PAIR, pair_name
from .progress import GridProgress, Ticker, step_env
from .run_config import GRID_SET, ConfigError, RunConfig, _closest, flatten_overrides, resolve, step_key
from .storage import atomic_write_json, read_json
from .transformations import DerivedLanguage

NOTEBOOKS = REPO_ROOT / "notebooks"
# The kernel logs only errors: ipykernel's per-start warning about unencrypted local TCP would otherwise
# fill the grid log once per step. Cell errors still reach the executed notebook and error.json.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]
GRID_KEYS = {"name", "scale", "seeds", "finetune_seeds", "corpus_settings", "languages", "transformations", "tasks",
             "overrides", "variants",
             "alignment", "description", "pairs"}
LIST_KEYS = {"seeds": int, "finetune_seeds": int, "corpus_settings": str, "languages": str, "transformations": str,
             "tasks": str, "pairs": str}


@dataclass
class Grid:
    name: str
    scale: str                                      # a preset of run_config.PRESETS
    languages: list[str]
    transformations: list[str]
    tasks: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    finetune_seeds: list[int] | None = None         # None: each model fine-tuned with its pretraining seed
    corpus_settings: list[str] | None = None        # None: data.corpus_setting from the preset and overrides
    overrides: dict = field(default_factory=dict)   # dotted config fields -> values
    variants: dict[str, dict] = field(default_factory=lambda: {DEFAULT_VARIANT: {}})  # name -> more overrides
    alignment: bool = True
    description: str = ""
    pairs: list[str] = field(default_factory=list)  # natural language pairs "first-second", e.g. "en-fr"
    path: str = "grid"                              # the file it came from (for messages)

    def config(self, language: str, seed: int, transformation: str | None = None,
               second_language: str | None = None, finetune_seed: int | None = None,
               corpus_setting: str | None = None, variant: str | None = None) -> RunConfig:
        """The resolved config of one model of the grid (``finetune_seed`` None: the pretraining seed;
        ``corpus_setting`` None: the one of the preset and overrides; ``variant`` None: the first)."""
        corpus = {"data.corpus_setting": corpus_setting} if corpus_setting else {}
        name = next(iter(self.variants)) if variant is None else variant
        where = f"{self.path}: " + (f"variants: {name}" if self.variants[name] else "overrides")
        return resolve(self.scale, {**self.overrides, **self.variants[name], "data.language": language,
                                    "data.transformation": transformation, "data.second_language": second_language,
                                    "pretrain.seed": seed, "finetune.seed": finetune_seed, **corpus}, where=where)


def load_grid(path: str | Path) -> Grid:
    """Read and validate a grid YAML file: every key, every override and every model's config."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"grid file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}{f':{mark.line + 1}' if mark else ''}: not valid YAML "
                          f"({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of grid keys, found {type(raw).__name__}")
    if "options" in raw:
        raise ConfigError(f"{path}: `options` is gone: write its fields under `overrides` with their group, "
                          "e.g. overrides: {data.corpus_setting: nonparallel, data.shift_special: true}")
    for key in set(raw) - GRID_KEYS:
        raise ConfigError(f"{path}: unknown grid key {key!r}{_closest(str(key), sorted(GRID_KEYS))} "
                          f"(allowed: {', '.join(sorted(GRID_KEYS))})")
    missing = {"scale", "languages", "transformations", "tasks"} - set(raw)
    if missing:
        raise ConfigError(f"{path}: missing grid keys {sorted(missing)}")
    for key, kind in LIST_KEYS.items():
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{path}: {key} must be a list of {kind.__name__}s, found {value!r}")
    for key in ("seeds", "finetune_seeds", "corpus_settings"):
        if key in raw and not raw[key]:
            raise ConfigError(f"{path}: {key} must not be empty (leave the key out for the default)")
    for key in ("seeds", "finetune_seeds"):
        if any(v < 0 for v in raw.get(key, [])):
            raise ConfigError(f"{path}: {key} must be non-negative integers, found {raw[key]!r}")
    for key, kind in (("alignment", bool), ("name", str), ("description", str), ("scale", str)):
        if key in raw and not isinstance(raw[key], kind):
            raise ConfigError(f"{path}: {key} must be a {kind.__name__}, found {raw[key]!r}")
    raw.setdefault("name", path.stem)
    overrides = flatten_overrides(raw.pop("overrides", None) or {}, f"{path}: overrides")
    if raw.get("corpus_settings") and "data.corpus_setting" in overrides:
        raise ConfigError(f"{path}: data.corpus_setting is set both by `corpus_settings` and in `overrides`: "
                          "expected one of the two")
    variants = _load_variants(raw.pop("variants", None), path)
    for where, names in [("overrides", overrides)] + [(f"variants: {v}", o) for v, o in variants.items()]:
        for name in names:
            if name in GRID_SET:
                raise ConfigError(f"{path}: {where}: {name} is set by the grid's `{GRID_SET[name]}` key, not here")
            if name == "data.corpus_setting" and raw.get("corpus_settings") and where != "overrides":
                raise ConfigError(f"{path}: {where}: data.corpus_setting is also set by `corpus_settings`: "
                                  "expected one of the two")
    grid = Grid(**raw, overrides=overrides, variants=variants, path=str(path))
    from .data import language_spec, languages
    from .tasks import get_task
    from .transformations import parse_spec

    for lang in grid.languages:
        if lang not in languages():
            raise ConfigError(f"{path}: unknown language {lang!r}{_closest(lang, languages())}; "
                              f"known: {languages()}")
    for t in grid.tasks:
        try:
            get_task(t)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    for t in grid.transformations:
        try:
            parse_spec(t)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        check_transformation(t, path)
    for pair in grid.pairs:
        parse_pair(pair, path)
    for lang in {*grid.languages, *(lang for pair in grid.pairs for lang in parse_pair(pair, path))}:
        if "pretrain" not in language_spec(lang):
            raise ConfigError(f"{path}: language {lang!r} has no `pretrain` corpus in xlt_helpers/languages.yaml: "
                              "expected one to pretrain its models on")
    first = grid.languages[0] if grid.languages else parse_pair(grid.pairs[0], path)[0] if grid.pairs else None
    if first is not None:  # the overrides, checked now; plan() resolves every model's config
        for corpus in grid.corpus_settings or []:
            resolve(grid.scale, {"data.corpus_setting": corpus}, where=f"{path}: corpus_settings")
        for corpus, variant in itertools.product(grid.corpus_settings or [None], grid.variants):
            grid.config(first, grid.seeds[0], grid.transformations[0] if grid.transformations else None,
                        corpus_setting=corpus, variant=variant)
        if len(grid.variants) > 1:  # two variants that build the same models would count every run twice
            seen: dict[str, str] = {}
            for variant in grid.variants:
                cfg = grid.config(first, grid.seeds[0], grid.transformations[0] if grid.transformations else None,
                                  variant=variant)
                key = step_key(cfg, tuple(GROUPS_OF_A_RUN))
                if key in seen:
                    raise ConfigError(f"{path}: variants {seen[key]!r} and {variant!r} resolve to the same "
                                      "configuration: expected each variant to change something")
                seen[key] = variant
    return grid


GROUPS_OF_A_RUN = ("model", "data", "pretrain", "finetune", "evaluate")


def _load_variants(raw: Any, path: Path) -> dict[str, dict]:
    """The grid's ``variants``: an ordered mapping of names to overrides (dotted or grouped), each applied
    on top of the grid's ``overrides``; without the key, one variant named ``default`` with none."""
    if raw is None:
        return {DEFAULT_VARIANT: {}}
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: variants must be a non-empty mapping of names to overrides, e.g. "
                          f"variants: {{small: {{model.layers: 1}}, deep: {{model.layers: 4}}}}, found {raw!r}")
    out = {}
    for name, overrides in raw.items():
        if not isinstance(name, str) or not name or any(c in name for c in "/\\,\n"):
            raise ConfigError(f"{path}: variants: bad name {name!r}: expected a short string without / , or newlines")
        out[name] = flatten_overrides(overrides or {}, f"{path}: variants: {name}")
    return out


def check_transformation(spec: str, where: str | Path = "grid") -> None:
    """Refuse what ``parse_spec`` lets through: an empty step (``translit+``, which would name a folder
    ``translit_then_``) and a Syntax target without a treebank (which fails only after a parser trained)."""
    import re

    from .syntax.treebanks import treebank_files

    from .transformations import DerivedLanguage

    if any(not part.strip() for part in spec.split("+")):
        raise ConfigError(f"{where}: transformations: {spec!r} has an empty step: expected steps joined by '+', "
                          "e.g. 'translit+inv'")
    try:
        DerivedLanguage(spec, 400)  # the steps' own arguments (translit0.5, syntax:fr@N~hi@V)
    except ValueError as exc:
        raise ConfigError(f"{where}: transformations: {spec!r}: {exc}") from None
    for part in spec.split("+"):
        name, _, target = part.strip().partition(":")
        if name != "syntax" or not target:
            continue
        for lang in sorted(set(re.findall(r"([^~@]+)@[NV]", target)) if "@" in target else {target}):
            try:
                treebank_files(lang, "train")
            except (FileNotFoundError, ValueError):
                raise ConfigError(f"{where}: transformations: {spec!r}: no UD treebank for {lang!r}: expected "
                                  "a language with ud/<lang>/ files (Syntax reorders by its treebank)") from None


def parse_pair(pair: str, where: str | Path = "grid") -> tuple[str, str]:
    """``"en-fr"`` -> ``("en", "fr")``, both registered and different (``ValueError`` otherwise)."""
    from .data import languages

    parts = str(pair).split("-")
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise ConfigError(f"{where}: bad language pair {pair!r}: write two different language codes, e.g. 'en-fr'")
    for lang in parts:
        if lang not in languages():
            raise ConfigError(f"{where}: unknown language {lang!r} in pair {pair!r}; known: {languages()}")
    return parts[0], parts[1]


@dataclass
class Step:
    kind: str                 # pretrain | finetune_mono | transfer | alignment | retrieval
    notebook: str
    out_dir: Path
    cfg: RunConfig
    params: dict[str, Any]    # the notebook's other parameters (task, the folders it reads)
    deps: list["Step"] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)  # the grid's variants it serves (a step can serve several)

    @property
    def name(self) -> str:
        return str(self.out_dir.relative_to(runs_dir()))

    @property
    def results(self) -> Path:
        return self.out_dir / "results.json"

    @property
    def error(self) -> Path:
        return self.out_dir / "error.json"

    @property
    def interrupted(self) -> Path:
        """Written when Ctrl-C (or SIGTERM) stopped the runner during this step: it is pending, not failed."""
        return self.out_dir / "interrupted.json"

    @property
    def progress(self) -> Path:
        """Where the step's kernel reports its progress (``progress.report``)."""
        return self.out_dir / "progress.json"

    def results_problem(self) -> str | None:
        """Why ``results.json`` does not make the step done (None: it does): absent, unreadable (e.g.
        truncated by a full disk) or without rows."""
        try:
            saved = read_json(self.results)
        except FileNotFoundError:
            return "no results.json"
        except (ValueError, OSError) as exc:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
            return f"{self.results}: unreadable, expected JSON ({type(exc).__name__}: {exc})"
        if not isinstance(saved, dict) or not isinstance(saved.get("rows"), list) or not saved["rows"]:
            return f"{self.results}: expected a mapping with a non-empty list 'rows'"
        return None

    @property
    def done(self) -> bool:
        return self.results_problem() is None

    @property
    def notebook_params(self) -> dict[str, Any]:
        """What papermill passes; pretraining's tqdm bar is off (the runner shows the step's progress)."""
        quiet = {"progress": False} if self.kind == "pretrain" else {}
        return {"config": json.dumps(self.cfg.to_dict()), **self.params, "out_dir": str(self.out_dir), **quiet}

    @cached_property
    def code(self) -> str:
        """The fingerprint of today's code for this kind of step."""
        return code_fingerprint(self.kind)

    def recorded_code(self) -> str | None:
        """The code fingerprint its results were computed with (None: not done, or saved before fingerprints)."""
        try:
            saved = read_json(self.results)
        except (OSError, ValueError):
            return None
        return saved.get("code_fingerprint") if isinstance(saved, dict) else None

    def state(self) -> str:
        """done | stale (done by older code) | failed: <error, one line> | interrupted | pending."""
        problem = self.results_problem()
        if problem is None:
            return "done" if self.recorded_code() == self.code else "stale"
        if self.results.exists():
            return "failed: " + _one_line(problem)
        if self.error.exists():
            try:
                return "failed: " + _one_line(str(read_json(self.error).get("error", "")))
            except (OSError, ValueError, AttributeError):
                return f"failed: {self.error} is unreadable"
        if self.interrupted.exists():
            return "interrupted"
        return "pending"


def _one_line(text: str, width: int = 400) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``width`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _data_key(kind: str, cfg: RunConfig, task: str | None = None) -> str:
    """The data files (their content) and registry entries a step reads, as a short hash."""
    from .data import registry_fingerprint

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
    from .fingerprint import files_fingerprint
    from .objectives.dictionary import file_path

    path = file_path(cfg.pretrain.dictionary, cfg.data.language, cfg.data.second_language)
    return files_fingerprint([path], "dictionary") if path.is_file() else f"missing:{path}"


def _treebanks_key() -> str:
    """Syntax reads treebanks (its parser, the word-order statistics of the languages it borrows from)."""
    from .data import languages
    from .fingerprint import files_fingerprint
    from .syntax.treebanks import treebank_files

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


@dataclass(frozen=True)
class Skip:
    """A grid cell that is not run, and why."""

    cell: str
    reason: str


def missing_data_reason(task: str, language: str, splits: tuple[str, ...]) -> str | None:
    """Why ``language`` cannot serve ``task`` with ``splits`` (None: it can)."""
    from .data import has_task, language_spec

    if has_task(task, language, splits):
        return None
    note = (language_spec(language).get("missing") or {}).get(task)
    return (f"no {task} data ({'/'.join(splits)}) registered for {language!r} in languages.yaml"
            + (f": {note}" if note else ""))


def plan(grid: Grid) -> tuple[list[Step], list[Skip]]:
    """All steps of the grid, each with its resolved config, in an order that respects dependencies, and
    the cells that are skipped. Every config is resolved (and validated) here, before anything runs."""
    from .data import has_parallel
    from .qa import unsupported_reason
    from .tasks import get_task

    steps: dict[Path, Step] = {}
    skips: list[Skip] = []

    variant = DEFAULT_VARIANT

    def add(kind: str, notebook: str, cfg: RunConfig, task: str | None = None, deps: tuple[Step, ...] = (),
            **params: Any) -> Step:
        out = step_dir(cfg, kind, task)
        params = {"task": task, **params} if kind in ("finetune_mono", "transfer") else params
        step = steps.setdefault(out, Step(kind, notebook, out, cfg, params, list(deps)))
        if variant not in step.variants:
            step.variants.append(variant)
        return step

    def skip(cell: str, reason: str) -> None:
        if Skip(cell, reason) not in skips:
            skips.append(Skip(cell, reason))

    def no_finetune(cfg: RunConfig) -> RunConfig:
        return cfg.replace(**{"finetune.seed": cfg.pretrain.seed})

    def mono_steps(cfg: RunConfig) -> tuple[Step, dict[str, Step]]:
        """The monolingual model beside ``cfg``'s (shared across grids) and its fine-tuning per task."""
        mono_cfg = cfg.monolingual()
        mono = add("pretrain", "01_pretrain.ipynb", mono_cfg)
        tasks = {}
        for task in grid.tasks:
            if get_task(task).finetuned and not missing_data_reason(task, mono_cfg.data.language, ("train", "test")):
                tasks[task] = add("finetune_mono", "02_finetune_evaluate.ipynb", mono_cfg, task, (mono,),
                                  pretrained=str(mono.out_dir / "model"), mono_task_dir=None)
        return mono, tasks

    for lang in grid.languages:
        for task in grid.tasks:
            splits = ("train", "test") if get_task(task).finetuned else ("test",)
            reason = missing_data_reason(task, lang, splits)
            if reason:
                skip(f"{lang} x {task} (every transformation)", reason)
        for variant, seed in itertools.product(grid.variants, grid.seeds):
            for tr, corpus, ft_seed in itertools.product(grid.transformations, grid.corpus_settings or [None],
                                                         grid.finetune_seeds or [None]):
                cfg = grid.config(lang, seed, tr, finetune_seed=ft_seed, corpus_setting=corpus, variant=variant)
                mono, mono_tasks = mono_steps(cfg)
                pre = add("pretrain", "01_pretrain.ipynb", cfg)
                for task in grid.tasks:
                    spec = get_task(task)
                    if not spec.finetuned:  # no fine-tuning: one retrieval step whatever the fine-tuning seeds
                        if not missing_data_reason(task, lang, ("test",)):
                            add("retrieval", "05_retrieval.ipynb", no_finetune(cfg), task, (pre, mono),
                                pretrained=str(pre.out_dir / "model"), mono_pretrained=str(mono.out_dir / "model"))
                        continue
                    if task not in mono_tasks:
                        continue  # no data: skipped above
                    reason = unsupported_reason(tr) if spec.kind == "span" else None
                    if reason:
                        skip(f"{lang} x {tr} x {task}", reason)
                        continue
                    add("transfer", "02_finetune_evaluate.ipynb", cfg, task, (pre, mono_tasks[task]),
                        pretrained=str(pre.out_dir / "model"), mono_task_dir=str(mono_tasks[task].out_dir))
                if grid.alignment and DerivedLanguage(tr, 400).uses_transliteration:
                    add("alignment", "03_alignment.ipynb", cfg, None, (pre,), pretrained=str(pre.out_dir / "model"))

    for pair in grid.pairs:
        first, second = parse_pair(pair, grid.path)
        name = pair_name(first, second)
        for task in grid.tasks:
            if not get_task(task).finetuned:
                if not has_parallel(first, second):
                    skip(f"{name} x {task}", f"no parallel {task} sentences between {first!r} and {second!r} "
                                             "(languages.yaml `parallel:`; the Tatoeba English sides differ per pair)")
                continue
            reason = (missing_data_reason(task, first, ("train", "test"))
                      or missing_data_reason(task, second, ("test",)))
            if reason:
                skip(f"{name} x {task}", reason)
        for variant, seed, ft_seed in itertools.product(grid.variants, grid.seeds, grid.finetune_seeds or [None]):
            cfg = grid.config(first, seed, second_language=second, finetune_seed=ft_seed, variant=variant)
            mono, mono_tasks = mono_steps(cfg)
            pre = add("pretrain", "01_pretrain.ipynb", cfg)
            for task in grid.tasks:
                if not get_task(task).finetuned:
                    if has_parallel(first, second):
                        add("retrieval", "05_retrieval.ipynb", no_finetune(cfg), task, (pre, mono),
                            pretrained=str(pre.out_dir / "model"), mono_pretrained=str(mono.out_dir / "model"))
                    continue
                if task not in mono_tasks or missing_data_reason(task, second, ("test",)):
                    continue
                add("transfer", "02_finetune_evaluate.ipynb", cfg, task, (pre, mono_tasks[task]),
                    pretrained=str(pre.out_dir / "model"), mono_task_dir=str(mono_tasks[task].out_dir))
    return list(steps.values()), skips


def expand(grid: Grid) -> list[Step]:
    """All steps of the grid in an order that respects dependencies (skipped cells: ``plan``)."""
    return plan(grid)[0]


_KERNELS: list = []  # the kernel processes (Popen) of the notebook being executed


@lru_cache(maxsize=None)
def kernel_manager_class() -> type:
    """jupyter_client's AsyncKernelManager, except that shutting a kernel down does not interrupt it first.

    jupyter_client sends SIGINT before every shutdown request, and papermill shuts the kernel down right
    after the reply to its last request (``kernel_info``). A kernel still inside that request's handler
    when the signal lands (a loaded machine is enough) logs ``[IPKernelApp] ERROR | KeyboardInterrupt
    caught in kernel.`` although the notebook succeeded. The shutdown request alone stops an idle kernel;
    one that does not stop is still terminated, then killed, after ``shutdown_wait_time``. Started kernels
    are remembered in ``_KERNELS`` so that an interrupted runner kills them (``kill_kernels``).
    """
    from jupyter_client.manager import AsyncKernelManager

    class StepKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

        async def start_kernel(self, **kw: Any) -> None:
            await super().start_kernel(**kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None:
                _KERNELS.append(process)

    return StepKernelManager


def kill_kernels() -> int:
    """Kill the running notebook's kernel and whatever it started (its own session); returns how many.
    Only processes this runner started and that are still its unreaped children, so a recycled pid is
    never hit. Safe in a signal handler (no blocking wait: jupyter_client reaps the process)."""
    killed = 0
    for process in _KERNELS:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
                killed += 1
    return killed


@contextlib.contextmanager
def _ctrl_c_kills_the_kernel() -> Iterator[list[int]]:
    """While a notebook runs, Ctrl-C (SIGINT) kills its kernel at once; the returned list records the
    signal. Raised inside papermill's event loop, KeyboardInterrupt would leave the busy kernel to a
    racy shutdown that prints its tracebacks; a killed kernel ends the notebook with a dead-kernel error
    instead, which ``execute_notebook`` turns back into KeyboardInterrupt. Before a kernel exists,
    Ctrl-C raises KeyboardInterrupt as usual."""
    hit: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield hit
        return

    def on_interrupt(signum: int, frame: object) -> None:
        hit.append(signum)
        logging.getLogger("papermill").disabled = True  # its "kernel died" lines are expected now
        if not kill_kernels():
            raise KeyboardInterrupt

    before = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield hit
    finally:
        signal.signal(signal.SIGINT, before)
        logging.getLogger("papermill").disabled = False


def execute_notebook(notebook: str, output: Path, parameters: dict) -> None:
    """Execute ``notebooks/<notebook>`` with papermill into ``output`` (raises if a cell fails). On Ctrl-C
    the kernel is killed and KeyboardInterrupt raised: a kernel must not outlive its runner."""
    import papermill as pm

    with _ctrl_c_kills_the_kernel() as interrupted:
        try:
            pm.execute_notebook(str(NOTEBOOKS / notebook), str(output), parameters=parameters, kernel_name="python3",
                                progress_bar=False, cwd=str(NOTEBOOKS), extra_arguments=KERNEL_ARGS,
                                kernel_manager_class=kernel_manager_class())
        except Exception:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
        except KeyboardInterrupt:
            kill_kernels()
            raise
        finally:
            _KERNELS.clear()
    if interrupted:  # the notebook ended as Ctrl-C came: the grid stops all the same
        raise KeyboardInterrupt


def execute_step(step: Step, log=print) -> bool:
    """Run one step's notebook with papermill; True on success. Never raises for a failing notebook; on
    Ctrl-C the step is recorded as interrupted (it stays pending, not failed) and KeyboardInterrupt goes on.
    The caller holds the step's lock (``step_lock``)."""
    step.out_dir.mkdir(parents=True, exist_ok=True)
    for old in (step.results, step.error, step.interrupted, step.progress):
        old.unlink(missing_ok=True)
    partial = step.out_dir / ("partial." + step.notebook)
    t0 = time.time()
    undo_env = step_env(step.progress)
    try:
        execute_notebook(step.notebook, partial, step.notebook_params)
        problem = step.results_problem()
        if problem:
            raise RuntimeError(f"notebook finished without a valid results.json: {problem}")
        partial.replace(step.out_dir / step.notebook)
        log(f"  done   {step.name} ({time.time() - t0:.0f}s)")
        return True
    except KeyboardInterrupt:
        if not step.done:
            atomic_write_json({"step": step.name, "seconds": time.time() - t0,
                               "at": time.strftime("%Y-%m-%d %H:%M:%S")}, step.interrupted)
        log(f"  interrupted {step.name} after {time.time() - t0:.0f}s: it stays pending; run again to resume")
        raise
    except Exception as exc:  # a failing step is recorded, the grid goes on
        step.results.unlink(missing_ok=True)
        atomic_write_json({"step": step.name, "kind": step.kind, "params": step.params, "config": step.cfg.to_dict(),
                           "error": f"{type(exc).__name__}: {str(exc)[-2000:]}",
                           "traceback": traceback.format_exc()[-4000:], "seconds": time.time() - t0},
                          step.error)
        log(f"  FAILED {step.name}: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}")
        return False
    finally:
        undo_env()
        step.progress.unlink(missing_ok=True)


@contextlib.contextmanager
def step_lock(step: Step, log=print) -> Iterator[None]:
    """Hold the lock of the step's folder (``.lock``, flock): a second runner on the same folder waits here,
    with a line saying so, instead of running the step twice or deleting the other's results. The
    operating system releases it when the runner ends, however it ends."""
    step.out_dir.mkdir(parents=True, exist_ok=True)
    with open(step.out_dir / ".lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"  wait   {step.name}: another runner is running it")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def to_run(steps: list[Step], rerun_stale: bool = False, log=print) -> list[Step]:
    """The steps that are not done, and the stale ones if ``rerun_stale`` (else each is named in a warning
    line and its results are reused)."""
    todo = []
    for s in steps:
        state = s.state()
        if state == "done":
            continue
        if state == "stale":
            if not rerun_stale:
                log(f"  stale  {s.name}: computed by older code (fingerprint {s.recorded_code()} != {s.code}); "
                    "results reused (run --rerun-stale to redo)")
                continue
            log(f"  rerun  {s.name}: stale, computed by older code")
        todo.append(s)
    return todo


def run_grid(grid_path: str | Path, log=print, rerun_stale: bool = False, executor: str = "local",
             **ray_options: Any) -> Path:
    """Run every step of a grid that is not done yet (and the stale ones with ``rerun_stale``), then
    aggregate; returns the report folder. Every config is resolved and checked before any step runs.
    ``executor``: ``local`` runs the steps one at a time here (``run_steps``); ``ray`` submits them as
    Ray tasks (``executors.run_steps_ray``, which takes ``ray_options``: address, cpus_per_step,
    pretrain_procs)."""
    if executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {executor!r}: expected local or ray")
    if executor == "local" and ray_options:
        raise ValueError(f"{', '.join(sorted(ray_options))}: only with executor ray")
    grid = load_grid(grid_path)
    steps, skips = plan(grid)
    todo = to_run(steps, rerun_stale, log)
    log(f"grid {grid.name}: {len(steps)} steps, {len(steps) - len(todo)} already done, {len(skips)} cells skipped")
    for sk in skips:
        log(f"  skipped {sk.cell}: {sk.reason}")
    try:
        if executor == "ray":
            from .executors import run_steps_ray

            run_steps_ray(todo, log, **ray_options)
        else:
            run_steps(todo, log)
    except KeyboardInterrupt:
        log(f"grid {grid.name}: interrupted; finished steps are kept, run again to resume")
        raise
    return aggregate(grid, steps, log, skips)


def with_dependencies(steps: list[Step]) -> list[Step]:
    """``steps`` and everything they depend on, dependencies first (for running part of a grid)."""
    out: dict[Path, Step] = {}

    def visit(step: Step) -> None:
        for d in step.deps:
            visit(d)
        out.setdefault(step.out_dir, step)

    for s in steps:
        visit(s)
    return list(out.values())


def run_steps(todo: list[Step], log=print) -> dict[str, int]:
    """Execute steps in order, each under its folder's lock (``run_one``); while one runs, the grid's
    progress and the step's own are shown (``progress.Ticker``: one refreshing line when ``log`` is
    print on a terminal, else a line every 30 s). Returns how many steps ended done and failed."""
    t0 = time.time()
    grid = GridProgress([s.kind for s in todo])
    tty = log is print and sys.stdout.isatty()
    counts = {"done": 0, "failed": 0}
    for k, step in enumerate(todo, 1):
        log(f"[{k}/{len(todo)}] {step.kind}: {step.name}")
        started = time.monotonic()
        with Ticker(grid, step.progress, step.kind, log, tty) as ticker:
            ok = run_one(step, ticker.log)
        counts["done" if ok else "failed"] += 1
        grid.step_done(step.kind, time.monotonic() - started)
        log(f"  {grid.line()}")
    log(f"grid steps finished in {time.time() - t0:.0f}s: {counts['done']} done, {counts['failed']} failed")
    return counts


def run_one(step: Step, log=print, launch=None) -> bool:
    """Run ``step`` unless it is done by the time its lock is held (another runner may have run it);
    True when it ends done. A dependency another runner is running is waited for; one that is not done
    then makes the step fail with "dependency failed", without running it. ``launch(step, log)``, when
    given, runs first under the lock (the Ray executor's torchrun phase of a multi-process pretraining,
    ``executors.torchrun_pretrain``); the problem it returns, if any, fails the step before its notebook."""
    for dep in step.deps:
        if not dep.done:
            with step_lock(dep, log):
                pass
    with step_lock(step, log):
        if step.state() == "done":
            log(f"  done   {step.name}: finished by another runner")
            return True
        failed = [d for d in step.deps if not d.done]
        if failed:
            record_error(step, f"dependency failed: {', '.join(d.name for d in failed)}")
            log("  skipped: a dependency failed")
            return False
        problem = launch(step, log) if launch is not None else None
        if problem:
            record_error(step, problem)
            log(f"  FAILED {step.name}: {problem}")
            return False
        return execute_step(step, log)


def config_rows(steps: list[Step]) -> list[dict]:
    """One row per step: its name, kind, state, code fingerprints and every config field (configs.csv)."""
    return [{"step": s.name, "kind": s.kind, "task": s.params.get("task") or (s.out_dir.name.rsplit("_", 1)[0] if s.kind == "retrieval" else None), "state": s.state().split(":")[0],
             "code_fingerprint": s.recorded_code(), "code_fingerprint_now": s.code, **s.cfg.flat()} for s in steps]


def aggregate(grid: Grid, steps: list[Step], log=print, skips: list[Skip] | None = None) -> Path:
    """Gather every step's rows into results.csv (with a ``step`` column that joins configs.csv and the
    step's results.json, and the model's ``corpus_setting``), each run's 95% intervals into
    intervals.csv (``analysis.run_intervals``) and each cell's, over its seeds, into summary.csv
    (``analysis.summarize``), then render the aggregate notebook to HTML."""
    import pandas as pd

    from .analysis import RESULT_COLUMNS, TIMING_METRICS, collect, run_intervals, run_samples, summarize

    report_dir = runs_dir() / "reports" / grid.name
    report_dir.mkdir(parents=True, exist_ok=True)
    rows, failures, intervals, samples = [], [], [], []
    for s in steps:
        step_rows, step_failures = collect([s.out_dir])
        for variant in s.variants or [DEFAULT_VARIANT]:  # a step shared by two variants counts in each
            rows += [{**r, "corpus_setting": s.cfg.data.corpus_setting, "variant": variant, "step": s.name}
                     for r in step_rows if r["metric"] not in TIMING_METRICS]
            step_samples = run_samples(s.out_dir, variant)
            intervals += [{**r, "step": s.name} for r in run_intervals(step_samples)]
            samples += step_samples
        failures += step_failures
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    for name, table in (("results.csv", df), ("configs.csv", pd.DataFrame(config_rows(steps))),
                        ("intervals.csv", pd.DataFrame(intervals)), ("summary.csv", summarize(samples))):
        tmp = report_dir / f".{name}.tmp"
        table.to_csv(tmp, index=False)
        tmp.replace(report_dir / name)
    atomic_write_json(failures, report_dir / "failures.json")
    skips = plan(grid)[1] if skips is None else skips
    atomic_write_json([{"cell": sk.cell, "reason": sk.reason} for sk in skips], report_dir / "skipped.json")
    log(f"aggregate: {len(df)} result rows, {len(failures)} failed steps -> {report_dir / 'results.csv'}")
    render_report(report_dir, grid.name, log)
    return report_dir


def render_report(report_dir: Path, title: str, log=print) -> Path:
    """Execute the aggregate notebook on ``report_dir`` and export it to ``report.html``."""
    from nbconvert import HTMLExporter

    executed = report_dir / "04_aggregate.ipynb"
    execute_notebook("04_aggregate.ipynb", executed, {"report_dir": str(report_dir), "title": title})
    exporter = HTMLExporter()
    exporter.exclude_input = True
    body, _ = exporter.from_filename(str(executed))
    html = report_dir / "report.html"
    html.write_text(body)
    log(f"report: {html}")
    return html


def status(grid_path: str | Path) -> list[tuple[str, str]]:
    """(step, state) for every step of a grid: done, stale, failed, or pending; then the skipped cells."""
    steps, skips = plan(load_grid(grid_path))
    return [(s.name, s.state()) for s in steps] + [(sk.cell, f"skipped: {sk.reason}") for sk in skips]


def record_error(step: Step, error: str) -> None:
    """Record ``step`` as failed for ``error`` without a notebook run (a failed dependency, a failed torchrun
    launch, a Ray worker lost): ``error.json`` as ``status`` reads it. Hold the step's lock."""
    step.interrupted.unlink(missing_ok=True)
    atomic_write_json({"step": step.name, "kind": step.kind, "params": step.params, "error": error}, step.error)
