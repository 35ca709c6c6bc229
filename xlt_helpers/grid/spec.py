"""The grid file: its keys, their checks, and the resolved config of each model of the grid.

Grid keys: ``languages`` x ``transformations`` x ``tasks`` (synthetic derived languages), ``pairs``
(natural language pairs ``"en-fr"``: pretrain on both, fine-tune on the first, test on the second),
``seeds`` (pretraining), ``corpus_settings`` (one model per derived-corpus setting: a list for every
transformation, or a mapping ``{translit: [parallel, nonparallel]}`` for the listed ones), ``finetune_seeds``
(fine-tuning only, each reusing the pretrained models; default: the pretraining seed), ``scale`` (a
preset of run_config.PRESETS), ``overrides`` (any config field by its dotted name, e.g.
``pretrain.steps: 500``), ``variants`` (named sets of further overrides), ``alignment``, ``description``,
and ``blocks`` (a list of blocks, each the top level with some keys replaced: the union of their steps, for
a design that is not a product of axes; docs/alignment.md).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .. import strict_yaml
from ..labels import DEFAULT_VARIANT
from ..run_config import GRID_SET, ConfigError, RunConfig, _closest, flatten_overrides, resolve, step_key
from .preflight import canonical_transformations, check_axes, check_name


GRID_KEYS = {"name", "scale", "seeds", "finetune_seeds", "corpus_settings", "languages", "transformations", "tasks",
             "overrides", "variants",
             "alignment", "description", "pairs", "blocks"}
BLOCK_KEYS = GRID_KEYS - {"name", "scale", "description", "blocks"}  # what one block of a grid may set
LIST_KEYS = {"seeds": int, "finetune_seeds": int, "languages": str, "transformations": str, "tasks": str,
             "pairs": str}


@dataclass
class Grid:
    name: str
    scale: str                                      # a preset of run_config.PRESETS
    languages: list[str]
    transformations: list[str]
    tasks: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    finetune_seeds: list[int] | None = None         # None: each model fine-tuned with its pretraining seed
    # None: data.corpus_setting from the preset and overrides; a list: these for every transformation; a
    # mapping: these for the transformations it lists, the preset's for the others
    corpus_settings: list[str] | dict[str, list[str]] | None = None
    overrides: dict = field(default_factory=dict)   # dotted config fields -> values
    variants: dict[str, dict] = field(default_factory=lambda: {DEFAULT_VARIANT: {}})  # name -> more overrides
    alignment: bool = True
    description: str = ""
    pairs: list[str] = field(default_factory=list)  # natural language pairs "first-second", e.g. "en-fr"
    path: str = "grid"                              # the file it came from (for messages)
    blocks: list["Grid"] = field(default_factory=list)  # a grid of blocks: the union of their steps (``plan``)

    def corpus_settings_of(self, transformation: str) -> list[str | None]:
        """The corpus settings of ``transformation``'s models, one model each (None: the preset's)."""
        if isinstance(self.corpus_settings, dict):
            return list(self.corpus_settings.get(transformation) or [None])
        return list(self.corpus_settings or [None])

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


def load_grid(path: str | Path, set_overrides: Mapping[str, Any] | None = None) -> Grid:
    """Read and validate a grid YAML file: every key, every override and every model's config.
    ``set_overrides`` (dotted names: the command line's ``--set``) join the grid's ``overrides`` and win over
    them: they enter the folder keys exactly as if the file had them."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"grid file {path} does not exist")
    if not path.is_file():
        found = "a directory" if path.is_dir() else "a special file"
        raise ConfigError(f"{path}: expected a grid YAML file, found {found}")
    try:
        raw = strict_yaml.load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: expected UTF-8 text, found byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start}") from None
    except yaml.YAMLError as exc:
        line, problem = strict_yaml.error_line(exc)
        raise ConfigError(f"{path}{f':{line}' if line else ''}: not valid YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of grid keys, found {type(raw).__name__}")
    if "blocks" in raw:
        return _load_blocks(raw, path, set_overrides)
    return _grid_from_mapping(raw, path, set_overrides)


def _load_blocks(raw: dict, path: Path, set_overrides: Mapping[str, Any] | None = None) -> Grid:
    """A grid of ``blocks``: each block is the top level with the block's keys in place of its own
    (``overrides`` merged, the block's on top), validated as a grid of its own; the grid runs the union of
    their steps, a step shared by two blocks once. For designs a product of axes cannot express: some
    transformations with more seeds, a variant on one transformation only, a language with one seed."""
    blocks = raw.pop("blocks")
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, dict) for b in blocks):
        raise ConfigError(f"{path}: blocks must be a non-empty list of mappings of grid keys, found {blocks!r}")
    for k, block in enumerate(blocks):
        for key in set(block) - BLOCK_KEYS:
            raise ConfigError(f"{path}: blocks[{k}]: {key!r} cannot be set per block"
                              f"{_closest(str(key), sorted(BLOCK_KEYS))} (allowed: {', '.join(sorted(BLOCK_KEYS))})")
    raw.setdefault("name", path.stem)
    top = flatten_overrides(raw.get("overrides") or {}, f"{path}: overrides")
    parts = []
    for k, block in enumerate(blocks):
        merged = {**raw, **block}
        merged["overrides"] = {**top, **flatten_overrides(block.get("overrides") or {}, f"{path}: blocks[{k}]: overrides")}
        parts.append(_grid_from_mapping(merged, Path(f"{path}#blocks[{k}]"), set_overrides))
    union = lambda key: list(dict.fromkeys(v for p in parts for v in getattr(p, key)))  # noqa: E731
    return Grid(name=raw["name"], scale=parts[0].scale, languages=union("languages"),
                transformations=union("transformations"), tasks=union("tasks"), seeds=union("seeds"),
                description=raw.get("description", ""), pairs=union("pairs"), path=str(path), blocks=parts)


def _grid_from_mapping(raw: dict, path: Path, set_overrides: Mapping[str, Any] | None = None) -> Grid:
    """A grid from its YAML mapping, every key, override and model config checked (``path``: for messages)."""
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
    if "corpus_settings" in raw:
        raw["corpus_settings"] = _load_corpus_settings(raw["corpus_settings"], raw["transformations"], path)
    for key in ("seeds", "finetune_seeds", "corpus_settings"):
        if key in raw and not raw[key]:
            raise ConfigError(f"{path}: {key} must not be empty (leave the key out for the default)")
    for key, kind in (("alignment", bool), ("name", str), ("description", str), ("scale", str)):
        if key in raw and not isinstance(raw[key], kind):
            raise ConfigError(f"{path}: {key} must be a {kind.__name__}, found {raw[key]!r}")
    check_axes(raw, str(path))
    raw.setdefault("name", path.stem)
    check_name(raw["name"], str(path))
    raw["transformations"] = canonical_transformations(raw["transformations"], str(path))
    overrides = flatten_overrides(raw.pop("overrides", None) or {}, f"{path}: overrides")
    given = flatten_overrides(set_overrides, "command line: --set")
    overrides.update(given)
    if raw.get("corpus_settings") and "data.corpus_setting" in overrides:
        raise ConfigError(f"{path}: data.corpus_setting is set both by `corpus_settings` and in `overrides`: "
                          "expected one of the two")
    variants = _load_variants(raw.pop("variants", None), path)
    for where, names in [("--set", given), ("overrides", overrides)] + [(f"variants: {v}", o)
                                                                         for v, o in variants.items()]:
        for name in names:
            if name in GRID_SET:
                raise ConfigError(f"{path}: {where}: {name} is set by the grid's `{GRID_SET[name]}` key, not here")
            if name == "data.corpus_setting" and raw.get("corpus_settings") and where != "overrides":
                raise ConfigError(f"{path}: {where}: data.corpus_setting is also set by `corpus_settings`: "
                                  "expected one of the two")
    grid = Grid(**raw, overrides=overrides, variants=variants, path=str(path))
    from ..data import language_spec, languages
    from ..tasks import get_task
    from ..transformations import parse_spec

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
        settings = grid.corpus_settings or []
        for corpus in dict.fromkeys(settings if isinstance(settings, list) else itertools.chain(*settings.values())):
            resolve(grid.scale, {"data.corpus_setting": corpus}, where=f"{path}: corpus_settings")
        models = [(t, c) for t in grid.transformations for c in grid.corpus_settings_of(t) if c is not None]
        for (tr, corpus), variant in itertools.product(
                models or [(grid.transformations[0] if grid.transformations else None, None)], grid.variants):
            grid.config(first, grid.seeds[0], tr, corpus_setting=corpus, variant=variant)
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


def _load_corpus_settings(raw: Any, transformations: Any, path: Path) -> list[str] | dict[str, list[str]]:
    """The grid's ``corpus_settings``: a list of settings for every transformation, or a mapping from some
    of the grid's transformations to their lists (``{translit: [parallel, nonparallel, other_domain]}``)."""
    form = ("expected a list of corpus settings, e.g. [parallel, nonparallel, other_domain], or a mapping of "
            "transformations to such lists, e.g. {translit: [parallel, nonparallel]}")
    is_list = lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)  # noqa: E731
    if is_list(raw):
        return raw
    if not isinstance(raw, dict) or not all(isinstance(k, str) and is_list(v) for k, v in raw.items()):
        raise ConfigError(f"{path}: corpus_settings: {form}, found {raw!r}")
    known = transformations if isinstance(transformations, list) else []
    for tr, settings in raw.items():
        if tr not in known:
            raise ConfigError(f"{path}: corpus_settings: {tr!r} is not one of the grid's transformations "
                              f"({', '.join(map(str, known)) or 'none'}): expected a transformation listed in "
                              "`transformations`")
        if not settings:
            raise ConfigError(f"{path}: corpus_settings: {tr}: must not be empty (leave the transformation out "
                              "for the preset's setting)")
    return raw


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

    from ..syntax.treebanks import treebank_files
    from ..transformations import recipes

    if any(not part.strip() for part in spec.split("+")):
        raise ConfigError(f"{where}: transformations: {spec!r} has an empty step: expected steps joined by '+', "
                          "e.g. 'translit+inv'")
    try:
        recipes(spec)  # the steps' own arguments (translit0.5, syntax:fr@N~hi@V)
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
    from ..data import languages

    parts = str(pair).split("-")
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise ConfigError(f"{where}: bad language pair {pair!r}: write two different language codes, e.g. 'en-fr'")
    for lang in parts:
        if lang not in languages():
            raise ConfigError(f"{where}: unknown language {lang!r} in pair {pair!r}; known: {languages()}")
    return parts[0], parts[1]
