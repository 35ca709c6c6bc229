"""Planning: a grid expanded into its steps (each with its resolved config and folder), dependencies first,
and the cells that are skipped.

Cells the data or the method do not allow (a language without data for a task, Permutation with QA,
retrieval between a natural pair without parallel sentences) are not steps: ``plan`` returns them as
``Skip`` records with the reason, ``run.run_grid`` prints them and the report lists them.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..labels import DEFAULT_VARIANT, pair_name
from ..run_config import RunConfig
from ..step_kinds import KINDS
from ..transformations import traits
from .keys import step_dir
from .spec import Grid, parse_pair
from .step import Step


@dataclass(frozen=True)
class Skip:
    """A grid cell that is not run, and why."""

    cell: str
    reason: str


def missing_data_reason(task: str, language: str, splits: tuple[str, ...]) -> str | None:
    """Why ``language`` cannot serve ``task`` with ``splits`` (None: it can)."""
    from ..data import has_task, language_spec

    if has_task(task, language, splits):
        return None
    note = (language_spec(language).get("missing") or {}).get(task)
    return (f"no {task} data ({'/'.join(splits)}) registered for {language!r} in languages.yaml"
            + (f": {note}" if note else ""))


def plan(grid: Grid) -> tuple[list[Step], list[Skip]]:
    """All steps of the grid, each with its resolved config, in an order that respects dependencies, and
    the cells that are skipped. Every config is resolved (and validated) here, before anything runs."""
    from ..data import has_parallel
    from ..qa import unsupported_reason
    from ..tasks import get_task

    if grid.blocks:
        return _plan_blocks(grid)
    steps: dict[Path, Step] = {}
    skips: list[Skip] = []

    variant = DEFAULT_VARIANT

    def add(kind: str, cfg: RunConfig, task: str | None = None, deps: tuple[Step, ...] = (), **params: Any) -> Step:
        out = step_dir(cfg, kind, task)
        params = {"task": task, **params} if KINDS[kind].task_parameter else params
        step = steps.setdefault(out, Step(kind, out, cfg, params, list(deps), task=task))
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
        mono = add("pretrain", mono_cfg)
        tasks = {}
        for task in grid.tasks:
            if get_task(task).finetuned and not missing_data_reason(task, mono_cfg.data.language, ("train", "test")):
                tasks[task] = add("finetune_mono", mono_cfg, task, (mono,),
                                  pretrained=str(mono.out_dir / "model"), mono_task_dir=None)
        return mono, tasks

    for lang in grid.languages:
        for task in grid.tasks:
            splits = ("train", "test") if get_task(task).finetuned else ("test",)
            reason = missing_data_reason(task, lang, splits)
            if reason:
                skip(f"{lang} x {task} (every transformation)", reason)
        for variant, seed in itertools.product(grid.variants, grid.seeds):
            for tr, corpus, ft_seed in [(tr, corpus, ft_seed) for tr in grid.transformations
                                        for corpus in grid.corpus_settings_of(tr)
                                        for ft_seed in grid.finetune_seeds or [None]]:
                cfg = grid.config(lang, seed, tr, finetune_seed=ft_seed, corpus_setting=corpus, variant=variant)
                mono, mono_tasks = mono_steps(cfg)
                pre = add("pretrain", cfg)
                for task in grid.tasks:
                    spec = get_task(task)
                    if not spec.finetuned:  # no fine-tuning: one retrieval step whatever the fine-tuning seeds
                        if not missing_data_reason(task, lang, ("test",)):
                            add("retrieval", no_finetune(cfg), task, (pre, mono),
                                pretrained=str(pre.out_dir / "model"), mono_pretrained=str(mono.out_dir / "model"))
                        continue
                    if task not in mono_tasks:
                        continue  # no data: skipped above
                    reason = unsupported_reason(tr) if spec.kind == "span" else None
                    if reason:
                        skip(f"{lang} x {tr} x {task}", reason)
                        continue
                    add("transfer", cfg, task, (pre, mono_tasks[task]),
                        pretrained=str(pre.out_dir / "model"), mono_task_dir=str(mono_tasks[task].out_dir))
                if grid.alignment and traits(tr).id_map:
                    add("alignment", cfg, None, (pre,), pretrained=str(pre.out_dir / "model"))
                elif grid.alignment and any(part.strip().startswith("translit") for part in tr.split("+")):
                    skip(f"{lang} x {tr} x alignment", "it moves no token to a twin (a transliterated share of 0): "
                                                       "no pair to align")

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
            pre = add("pretrain", cfg)
            for task in grid.tasks:
                if not get_task(task).finetuned:
                    if has_parallel(first, second):
                        add("retrieval", no_finetune(cfg), task, (pre, mono),
                            pretrained=str(pre.out_dir / "model"), mono_pretrained=str(mono.out_dir / "model"))
                    continue
                if task not in mono_tasks or missing_data_reason(task, second, ("test",)):
                    continue
                add("transfer", cfg, task, (pre, mono_tasks[task]),
                    pretrained=str(pre.out_dir / "model"), mono_task_dir=str(mono_tasks[task].out_dir))
    return list(steps.values()), skips


def _plan_blocks(grid: Grid) -> tuple[list[Step], list[Skip]]:
    """The union of the blocks' plans: a step planned by two blocks runs once and serves the variants of both."""
    steps: dict[Path, Step] = {}
    skips: list[Skip] = []
    for part in grid.blocks:
        part_steps, part_skips = plan(part)
        for s in part_steps:
            kept = steps.setdefault(s.out_dir, s)
            kept.variants += [v for v in s.variants if v not in kept.variants]
            s.deps = [steps.get(d.out_dir, d) for d in s.deps]
        skips += [sk for sk in part_skips if sk not in skips]
    return list(steps.values()), skips


def expand(grid: Grid) -> list[Step]:
    """All steps of the grid in an order that respects dependencies (skipped cells: ``plan``)."""
    return plan(grid)[0]


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
