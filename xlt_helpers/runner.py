"""The experiment runner: expand a grid into notebook steps, execute them with papermill, aggregate.

Each step is a parameterised notebook executed into its own folder under ``papermill_runs/``. A step is
done when its ``results.json`` exists (written atomically by the notebook's last cell); done steps are
never recomputed, and the folders are keyed by what the step computes (scale, language,
transformation, seed, options), not by the grid, so pretrained models are shared by every task and
every grid that needs them. A step that fails leaves ``error.json`` and does not stop the others.
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
from .experiment import MONO
from .storage import atomic_write_json, read_json
from .tokenizer import fingerprint
from .transformations import DerivedLanguage

NOTEBOOKS = REPO_ROOT / "notebooks"
GRID_KEYS = {"name", "scale", "seeds", "languages", "transformations", "tasks", "options", "overrides",
             "alignment", "description"}


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
    return grid


@dataclass
class Step:
    kind: str                 # pretrain | finetune_mono | transfer | alignment
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


def _model_dir(grid: Grid, lang: str, transformation: str, seed: int) -> Path:
    opts = {k: v for k, v in sorted(grid.options.items())}
    key = f"seed{seed}" + (f"_{fingerprint([opts, grid.overrides])}" if opts or grid.overrides else "")
    return runs_dir() / grid.scale / lang / transformation_dirname(transformation) / key


def transformation_dirname(transformation: str) -> str:
    """A portable folder name for a composition: 'syntax:fr+translit' -> 'syntax-fr_then_translit'."""
    return transformation.replace("+", "_then_").replace(":", "-").replace("@", "at").replace("~", "_")


def expand(grid: Grid) -> list[Step]:
    """All steps of the grid in an order that respects dependencies."""
    steps: list[Step] = []
    common = {"scale": grid.scale, "overrides": grid.overrides}
    for lang in grid.languages:
        for seed in grid.seeds:
            mono_dir = _model_dir(grid, lang, MONO, seed)
            mono = Step("pretrain", "01_pretrain.ipynb", mono_dir / "pretrain",
                        {"language": lang, "transformation": None, "seed": seed, "options": grid.options, **common})
            steps.append(mono)
            mono_tasks = {}
            for task in grid.tasks:
                st = Step("finetune_mono", "02_finetune_evaluate.ipynb", mono_dir / f"finetune_{task}",
                          {"language": lang, "transformation": None, "task": task, "seed": seed,
                           "pretrained": str(mono.out_dir / "model"), **common}, deps=[mono])
                mono_tasks[task] = st
                steps.append(st)
            for tr in grid.transformations:
                tdir = _model_dir(grid, lang, tr, seed)
                pre = Step("pretrain", "01_pretrain.ipynb", tdir / "pretrain",
                           {"language": lang, "transformation": tr, "seed": seed, "options": grid.options, **common})
                steps.append(pre)
                for task in grid.tasks:
                    steps.append(Step("transfer", "02_finetune_evaluate.ipynb", tdir / f"transfer_{task}",
                                      {"language": lang, "transformation": tr, "task": task, "seed": seed,
                                       "pretrained": str(pre.out_dir / "model"),
                                       "mono_task_dir": str(mono_tasks[task].out_dir), **common},
                                      deps=[pre, mono_tasks[task]]))
                if grid.alignment and DerivedLanguage(tr, 400).uses_transliteration:
                    steps.append(Step("alignment", "03_alignment.ipynb", tdir / "alignment",
                                      {"language": lang, "transformation": tr, "seed": seed,
                                       "pretrained": str(pre.out_dir / "model"), **common}, deps=[pre]))
    return steps


def execute_step(step: Step, log=print) -> bool:
    """Run one step's notebook with papermill; True on success. Never raises for a failing notebook."""
    import papermill as pm

    step.out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (step.results, step.error):
        stale.unlink(missing_ok=True)
    params = {**step.params, "out_dir": str(step.out_dir)}
    params = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in params.items()}
    partial = step.out_dir / ("partial." + step.notebook)
    t0 = time.time()
    try:
        pm.execute_notebook(str(NOTEBOOKS / step.notebook), str(partial), parameters=params,
                            kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOKS))
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
    steps = expand(grid)
    todo = [s for s in steps if not s.done]
    log(f"grid {grid.name}: {len(steps)} steps, {len(steps) - len(todo)} already done")
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
    return aggregate(grid, steps, log)


def aggregate(grid: Grid, steps: list[Step], log=print) -> Path:
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
    log(f"aggregate: {len(df)} result rows, {len(failures)} failed steps -> {report_dir / 'results.csv'}")
    render_report(report_dir, grid.name, log)
    return report_dir


def render_report(report_dir: Path, title: str, log=print) -> Path:
    """Execute the aggregate notebook on ``report_dir`` and export it to ``report.html``."""
    import papermill as pm
    from nbconvert import HTMLExporter

    executed = report_dir / "04_aggregate.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / "04_aggregate.ipynb"), str(executed),
                        parameters={"report_dir": str(report_dir), "title": title},
                        kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOKS))
    exporter = HTMLExporter()
    exporter.exclude_input = True
    body, _ = exporter.from_filename(str(executed))
    html = report_dir / "report.html"
    html.write_text(body)
    log(f"report: {html}")
    return html


def status(grid_path: str | Path) -> list[tuple[str, str]]:
    """(step, state) for every step of a grid: done, failed, or pending."""
    out = []
    for s in expand(load_grid(grid_path)):
        state = "done" if s.done else ("failed: " + read_json(s.error)["error"][:120] if s.error.exists() else "pending")
        out.append((s.name, state))
    return out
