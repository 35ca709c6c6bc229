"""The report folder's tables as read and written: result rows, their columns, the configurations."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from ..storage import read_json
from ..tasks import TASKS


SETTINGS = ("BS", "BZ", "MZ", "orig")
# results.csv: the rows of every step in this column order; timings stay in each step's results.json, so
# the same configuration and seed give the same file.
RESULT_COLUMNS = ["language", "transformation", "task", "setting", "metric", "value", "seed", "scale",
                  "finetune_seed", "corpus_setting", "variant", "step"]
TIMING_METRICS = frozenset({"tokens_per_s"})


def collect(step_dirs: Iterable[Path]) -> tuple[list[dict], list[dict]]:
    """Rows of every finished step and a record of every failed one (missing steps are ignored)."""
    rows, failures = [], []
    for d in step_dirs:
        d = Path(d)
        if (d / "results.json").exists():
            rows += read_json(d / "results.json")["rows"]
        elif (d / "error.json").exists():
            err = read_json(d / "error.json")
            failures.append({"step": err.get("step", str(d)), "error": err.get("error", "")})
    return rows, failures


def task_metrics(df: pd.DataFrame) -> pd.Series:
    """True for rows whose metric is one the task reports in the score tables (QA: f1 and em;
    retrieval: the mean of both directions; unknown tasks: every metric)."""
    return df.apply(lambda r: r.task not in TASKS or r.metric in TASKS[r.task].metrics, axis=1)


def load_results(report_dir: str | Path) -> pd.DataFrame:
    """results.csv of a report folder (an empty table with its columns when there is none yet)."""
    path = Path(report_dir) / "results.csv"
    try:
        return pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame(columns=RESULT_COLUMNS)


def varying_config(configs: pd.DataFrame) -> pd.DataFrame:
    """configs.csv reduced to what tells its steps apart beyond the grid's own axes (language,
    transformation, pair, seeds; those are in every result row): the config fields that take more than
    one value, one row per kind, state and combination of them, with its number of steps."""
    from ..run_config import GRID_SET

    if configs.empty:
        return configs
    varying = [c for c in configs.columns if "." in c and c not in GRID_SET and configs[c].astype(str).nunique() > 1]
    keys = ["kind", "state", *varying]
    return configs[keys].astype(str).groupby(keys, sort=False).size().rename("steps").reset_index()
