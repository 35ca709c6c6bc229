"""The experiment runner: expand a grid into notebook steps, execute them with papermill, aggregate.

Each step is a parameterised notebook executed into its own folder under ``papermill_runs/``. A step is
done when its ``results.json`` exists (written atomically by the notebook's last cell); done steps are
never recomputed, and the folders are keyed by what the step computes (scale, language,
transformation, seed, options), not by the grid, so pretrained models are shared by every task and
every grid that needs them. A step that fails leaves ``error.json`` and does not stop the others.

Cells the data or the method do not allow (a language without data for a task, Permutation with QA,
retrieval between a natural pair without parallel sentences) are not steps: ``plan`` returns them as
``Skip`` records with the reason, ``run_grid`` prints them and the report lists them.

Grid keys: ``languages`` x ``transformations`` x ``tasks`` (synthetic derived languages), ``pairs``
(natural language pairs ``"en-fr"``: pretrain on both, fine-tune on the first, test on the second),
``seeds``, ``scale``, ``options`` (pretraining), ``overrides`` (Scale fields), ``alignment``.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import REPO_ROOT, runs_dir
from .experiment import MONO, PAIR, pair_name
from .storage import atomic_write_json, read_json
from .tokenizer import fingerprint
from .transformations import DerivedLanguage

NOTEBOOKS = REPO_ROOT / "notebooks"
# The kernel logs only errors: ipykernel's per-start warning about unencrypted local TCP would otherwise
# fill the grid log once per step. Cell errors still reach the executed notebook and error.json.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]
GRID_KEYS = {"name", "scale", "seeds", "languages", "transformations", "tasks", "options", "overrides",
             "alignment", "description", "pairs"}


@dataclass
class Grid:
    name: str
    scale: str
    languages: list[str]
    transformations: list[str]
    tasks: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    options: dict = field(default_factory=dict)     # pretraining options (corpus_setting, shift_special, ...)
    overrides: dict = field(default_factory=dict)   # Scale fields to override
    alignment: bool = True
    description: str = ""
    pairs: list[str] = field(default_factory=list)  # natural language pairs "first-second", e.g. "en-fr"


def load_grid(path: str | Path) -> Grid:
    """Read and validate a grid YAML file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"grid file {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = set(raw) - GRID_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown grid keys {sorted(unknown)}; allowed: {sorted(GRID_KEYS)}")
    missing = {"scale", "languages", "transformations", "tasks"} - set(raw)
    if missing:
        raise ValueError(f"{path}: missing grid keys {sorted(missing)}")
    raw.setdefault("name", path.stem)
    grid = Grid(**raw)
    from .data import languages
    from .scales import get_scale
    from .tasks import get_task
    from .transformations import parse_spec
    get_scale(grid.scale, **grid.overrides)
    for lang in grid.languages:
        if lang not in languages():
            raise ValueError(f"{path}: unknown language {lang!r}; known: {languages()}")
    for t in grid.tasks:
        get_task(t)
    for t in grid.transformations:
        parse_spec(t)
    for pair in grid.pairs:
        parse_pair(pair, path)
    return grid


def parse_pair(pair: str, where: str | Path = "grid") -> tuple[str, str]:
    """``"en-fr"`` -> ``("en", "fr")``, both registered and different (``ValueError`` otherwise)."""
    from .data import languages

    parts = str(pair).split("-")
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise ValueError(f"{where}: bad language pair {pair!r}: write two different language codes, e.g. 'en-fr'")
    for lang in parts:
        if lang not in languages():
            raise ValueError(f"{where}: unknown language {lang!r} in pair {pair!r}; known: {languages()}")
    return parts[0], parts[1]


@dataclass
class Step:
    kind: str                 # pretrain | finetune_mono | transfer | alignment | retrieval
    notebook: str
    out_dir: Path
    params: dict[str, Any]
    deps: list["Step"] = field(default_factory=list)

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
    def done(self) -> bool:
        return self.results.exists()


# Pretraining options that only choose the derived side's sentences: the monolingual model is the same
# whatever they are, so its steps are keyed (and shared across grids) without them. (`shift_special`
# stays: MZ retrieval builds the derived test set from the monolingual model's own settings.)
DERIVED_SIDE_OPTIONS = ("corpus_setting", "derived_fraction")


def _model_dir(grid: Grid, lang: str, transformation: str, seed: int, options: dict | None = None) -> Path:
    """Keyed by everything that changes the numbers: the full scale (after overrides) and the options.

    Changing a scale's definition therefore never silently reuses results computed under the old one.
    """
    from .scales import get_scale

    scale = get_scale(grid.scale, **grid.overrides).to_dict()
    options = grid.options if options is None else options
    key = f"seed{seed}_{fingerprint([scale, dict(sorted(options.items()))])}"
    return runs_dir() / grid.scale / lang / transformation_dirname(transformation) / key


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
    """All steps of the grid in an order that respects dependencies, and the cells that are skipped."""
    from .data import has_parallel
    from .qa import unsupported_reason
    from .tasks import get_task

    steps: dict[Path, Step] = {}
    skips: list[Skip] = []
    common = {"scale": grid.scale, "overrides": grid.overrides}

    def add(step: Step) -> Step:
        return steps.setdefault(step.out_dir, step)

    def skip(cell: str, reason: str) -> None:
        if Skip(cell, reason) not in skips:
            skips.append(Skip(cell, reason))

    def mono_steps(lang: str, seed: int) -> tuple[Step, dict[str, Step]]:
        options = {k: v for k, v in grid.options.items() if k not in DERIVED_SIDE_OPTIONS}
        mono_dir = _model_dir(grid, lang, MONO, seed, options)
        mono = add(Step("pretrain", "01_pretrain.ipynb", mono_dir / "pretrain",
                        {"language": lang, "transformation": None, "seed": seed, "options": options, **common}))
        tasks = {}
        for task in grid.tasks:
            if get_task(task).finetuned and not missing_data_reason(task, lang, ("train", "test")):
                tasks[task] = add(Step("finetune_mono", "02_finetune_evaluate.ipynb", mono_dir / f"finetune_{task}",
                                       {"language": lang, "transformation": None, "task": task, "seed": seed,
                                        "pretrained": str(mono.out_dir / "model"), **common}, deps=[mono]))
        return mono, tasks

    for lang in grid.languages:
        for task in grid.tasks:
            splits = ("train", "test") if get_task(task).finetuned else ("test",)
            reason = missing_data_reason(task, lang, splits)
            if reason:
                skip(f"{lang} x {task} (every transformation)", reason)
        for seed in grid.seeds:
            mono, mono_tasks = mono_steps(lang, seed)
            for tr in grid.transformations:
                tdir = _model_dir(grid, lang, tr, seed)
                pre = add(Step("pretrain", "01_pretrain.ipynb", tdir / "pretrain",
                               {"language": lang, "transformation": tr, "seed": seed, "options": grid.options,
                                **common}))
                for task in grid.tasks:
                    spec = get_task(task)
                    if not spec.finetuned:
                        if not missing_data_reason(task, lang, ("test",)):
                            add(Step("retrieval", "05_retrieval.ipynb", tdir / task,
                                     {"language": lang, "transformation": tr, "target_language": None, "seed": seed,
                                      "pretrained": str(pre.out_dir / "model"),
                                      "mono_pretrained": str(mono.out_dir / "model"), **common}, deps=[pre, mono]))
                        continue
                    if task not in mono_tasks:
                        continue  # no data: skipped above
                    reason = unsupported_reason(tr) if spec.kind == "span" else None
                    if reason:
                        skip(f"{lang} x {tr} x {task}", reason)
                        continue
                    add(Step("transfer", "02_finetune_evaluate.ipynb", tdir / f"transfer_{task}",
                             {"language": lang, "transformation": tr, "task": task, "seed": seed,
                              "pretrained": str(pre.out_dir / "model"),
                              "mono_task_dir": str(mono_tasks[task].out_dir), **common},
                             deps=[pre, mono_tasks[task]]))
                if grid.alignment and DerivedLanguage(tr, 400).uses_transliteration:
                    add(Step("alignment", "03_alignment.ipynb", tdir / "alignment",
                             {"language": lang, "transformation": tr, "seed": seed,
                              "pretrained": str(pre.out_dir / "model"), **common}, deps=[pre]))

    for pair in grid.pairs:
        first, second = parse_pair(pair)
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
        for seed in grid.seeds:
            mono, mono_tasks = mono_steps(first, seed)
            pdir = _model_dir(grid, name, PAIR, seed)
            pre = add(Step("pretrain", "01_pretrain.ipynb", pdir / "pretrain",
                           {"language": first, "transformation": None, "seed": seed,
                            "options": {**grid.options, "second_language": second}, **common}))
            for task in grid.tasks:
                if not get_task(task).finetuned:
                    if has_parallel(first, second):
                        add(Step("retrieval", "05_retrieval.ipynb", pdir / task,
                                 {"language": first, "transformation": None, "target_language": second,
                                  "seed": seed, "pretrained": str(pre.out_dir / "model"),
                                  "mono_pretrained": str(mono.out_dir / "model"), **common}, deps=[pre, mono]))
                    continue
                if task not in mono_tasks or missing_data_reason(task, second, ("test",)):
                    continue
                add(Step("transfer", "02_finetune_evaluate.ipynb", pdir / f"transfer_{task}",
                         {"language": first, "target_language": second, "transformation": PAIR, "task": task,
                          "seed": seed, "pretrained": str(pre.out_dir / "model"),
                          "mono_task_dir": str(mono_tasks[task].out_dir), **common},
                         deps=[pre, mono_tasks[task]]))
    return list(steps.values()), skips


def expand(grid: Grid) -> list[Step]:
    """All steps of the grid in an order that respects dependencies (skipped cells: ``plan``)."""
    return plan(grid)[0]


def execute_notebook(notebook: str, output: Path, parameters: dict) -> None:
    """Execute ``notebooks/<notebook>`` with papermill into ``output`` (raises if a cell fails)."""
    import papermill as pm

    pm.execute_notebook(str(NOTEBOOKS / notebook), str(output), parameters=parameters, kernel_name="python3",
                        progress_bar=False, cwd=str(NOTEBOOKS), extra_arguments=KERNEL_ARGS)


def execute_step(step: Step, log=print) -> bool:
    """Run one step's notebook with papermill; True on success. Never raises for a failing notebook."""
    step.out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (step.results, step.error):
        stale.unlink(missing_ok=True)
    params = {**step.params, "out_dir": str(step.out_dir)}
    params = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in params.items()}
    partial = step.out_dir / ("partial." + step.notebook)
    t0 = time.time()
    try:
        execute_notebook(step.notebook, partial, params)
        if not step.results.exists():
            raise RuntimeError("notebook finished without writing results.json")
        partial.replace(step.out_dir / step.notebook)
        log(f"  done   {step.name} ({time.time() - t0:.0f}s)")
        return True
    except Exception as exc:  # a failing step is recorded, the grid goes on
        step.results.unlink(missing_ok=True)
        atomic_write_json({"step": step.name, "kind": step.kind, "params": step.params,
                           "error": f"{type(exc).__name__}: {str(exc)[-2000:]}",
                           "traceback": traceback.format_exc()[-4000:], "seconds": time.time() - t0},
                          step.error)
        log(f"  FAILED {step.name}: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}")
        return False


def run_grid(grid_path: str | Path, log=print) -> Path:
    """Run every step of a grid that is not done yet, then aggregate; returns the report folder."""
    grid = load_grid(grid_path)
    steps, skips = plan(grid)
    todo = [s for s in steps if not s.done]
    log(f"grid {grid.name}: {len(steps)} steps, {len(steps) - len(todo)} already done, {len(skips)} cells skipped")
    for sk in skips:
        log(f"  skipped {sk.cell}: {sk.reason}")
    run_steps(todo, log)
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


def run_steps(todo: list[Step], log=print) -> None:
    """Execute steps in order; a step whose dependency is not done is recorded as failed, not run."""
    t0 = time.time()
    for k, step in enumerate(todo, 1):
        failed = [d for d in step.deps if not d.done]
        log(f"[{k}/{len(todo)}] {step.kind}: {step.name}")
        if failed:
            atomic_write_json({"step": step.name, "kind": step.kind, "params": step.params,
                               "error": f"dependency failed: {', '.join(d.name for d in failed)}"}, step.error)
            log("  skipped: a dependency failed")
            continue
        execute_step(step, log)
    log(f"grid steps finished in {time.time() - t0:.0f}s")


def aggregate(grid: Grid, steps: list[Step], log=print, skips: list[Skip] | None = None) -> Path:
    """Gather every step's rows into results.csv, then render the aggregate notebook to HTML."""
    import pandas as pd

    from .analysis import collect

    report_dir = runs_dir() / "reports" / grid.name
    report_dir.mkdir(parents=True, exist_ok=True)
    rows, failures = collect([s.out_dir for s in steps])
    df = pd.DataFrame(rows)
    tmp = report_dir / ".results.csv.tmp"
    df.to_csv(tmp, index=False)
    tmp.replace(report_dir / "results.csv")
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
    """(step, state) for every step of a grid: done, failed, or pending; then the skipped cells."""
    out = []
    steps, skips = plan(load_grid(grid_path))
    for s in steps:
        state = "done" if s.done else ("failed: " + read_json(s.error)["error"][:120] if s.error.exists() else "pending")
        out.append((s.name, state))
    return out + [(sk.cell, f"skipped: {sk.reason}") for sk in skips]
