"""Aggregation: tidy result rows in, the paper's tables and correlations out."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd
from scipy.stats import spearmanr

from .storage import read_json

SETTINGS = ("BS", "BZ", "MZ", "orig")


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


PAIR = "pair"  # the transformation label of natural language pairs (experiment.PAIR)


def _task_metrics(df: pd.DataFrame) -> pd.Series:
    """True for rows whose metric is one the task reports in the score tables (QA: f1 and em;
    retrieval: the mean of both directions; unknown tasks: every metric)."""
    from .tasks import TASKS

    return df.apply(lambda r: r.task not in TASKS or r.metric in TASKS[r.task].metrics, axis=1)


def _ordered(table: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """Rows in grid order (transformations as they first appear, natural pairs last)."""
    if table.empty or "transformation" not in table.index.names:
        return table
    order = list(dict.fromkeys(t for t in df.transformation if t != PAIR)) + [PAIR]
    key = {t: k for k, t in enumerate(order)}
    return table.sort_index(level="transformation", key=lambda idx: idx.map(lambda t: key.get(t, len(key))),
                            sort_remaining=False)


def scores_table(df: pd.DataFrame) -> pd.DataFrame:
    """BS / BZ / MZ / orig scores: one row per (language, transformation, task, metric)."""
    s = df[df.setting.isin(SETTINGS) & (df.task != "pretrain")]
    s = s[(s.transformation != "mono")]
    if s.empty:
        return pd.DataFrame()
    s = s[_task_metrics(s)]
    table = s.pivot_table(index=["language", "transformation", "task", "metric"], columns="setting", values="value",
                          aggfunc="mean").reindex(columns=[c for c in SETTINGS if c in set(s.setting)])
    return table


def delta_table(df: pd.DataFrame, by_language: bool = False) -> pd.DataFrame:
    """Delta_Sup and Delta_Mono by transformation x task (mean over seeds, and languages unless ``by_language``).

    Deltas use each task's primary metric (QA: F1; retrieval: mean accuracy@1, Delta_Mono only).
    Natural language pairs appear as the transformation ``pair`` (averaged over pairs).
    """
    d = df[df.setting == "delta"]
    if d.empty:
        return pd.DataFrame()
    index = ["language", "transformation"] if by_language else ["transformation"]
    table = d.pivot_table(index=index, columns=["metric", "task"], values="value", aggfunc="mean")
    return _ordered(table, df) if not by_language else table.sort_index(level="language", sort_remaining=False)


def coverage_table(df: pd.DataFrame) -> pd.DataFrame:
    """How many languages (or pairs) each cell of the main delta table averages over."""
    d = df[(df.setting == "delta")]
    if d.empty:
        return pd.DataFrame()
    return _ordered(d.pivot_table(index="transformation", columns=["metric", "task"], values="language",
                                  aggfunc="nunique"), df)


def pairs_table(df: pd.DataFrame) -> pd.DataFrame:
    """Natural language pairs: BS / BZ / MZ / orig and the deltas, one row per (pair, task, metric)."""
    p = df[(df.transformation == PAIR) & (df.task != "pretrain")]
    if p.empty:
        return pd.DataFrame()
    scores = scores_table(p).droplevel("transformation")
    deltas = p[p.setting == "delta"].pivot_table(index=["language", "task"], columns="metric", values="value",
                                                 aggfunc="mean")
    table = scores.join(deltas, on=["language", "task"])
    from .tasks import TASKS

    primary = [TASKS[t].metric if t in TASKS else m for _, t, m in table.index]
    secondary = [m != p for (_, _, m), p in zip(table.index, primary)]
    table.loc[secondary, list(deltas.columns)] = float("nan")  # deltas belong to the primary metric only
    return table


def retrieval_table(df: pd.DataFrame) -> pd.DataFrame:
    """Tatoeba accuracy@1 per direction and model (BZ: bilingual, MZ: monolingual)."""
    r = df[(df.task == "retrieval") & df.setting.isin(SETTINGS)]
    if r.empty:
        return pd.DataFrame()
    return _ordered(r.pivot_table(index=["language", "transformation"], columns=["setting", "metric"],
                                  values="value", aggfunc="mean"), df)


def alignment_vs_transfer(df: pd.DataFrame) -> pd.DataFrame:
    """One row per model and task (language, transformation, pretraining seed) with alignment P@1 and
    Delta_Sup side by side; Delta_Sup is the mean over the model's fine-tuning seeds."""
    keys = ["language", "transformation", "seed", "scale"]
    al = df[df.metric == "alignment_at_1"][keys + ["value"]].rename(columns={"value": "alignment_at_1"})
    ds = (df[df.metric == "delta_sup"].groupby(keys + ["task"], as_index=False, sort=False)["value"].mean()
          .rename(columns={"value": "delta_sup"}))
    return ds.merge(al, on=keys)


def spearman_by_task(pairs: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rho between alignment and Delta_Sup, one coefficient per task (NaN below 3 models)."""
    out = []
    for task, g in pairs.groupby("task"):
        if len(g) >= 3 and g.alignment_at_1.nunique() > 1 and g.delta_sup.nunique() > 1:
            rho, p = spearmanr(g.alignment_at_1, g.delta_sup)
        else:
            rho, p = float("nan"), float("nan")
        out.append({"task": task, "n_models": len(g), "spearman_rho": rho, "p_value": p})
    return pd.DataFrame(out)


def load_results(report_dir: str | Path) -> pd.DataFrame:
    path = Path(report_dir) / "results.csv"
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=["language", "transformation", "task", "setting", "metric", "value", "seed", "scale",
                                     "finetune_seed"])
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=["language", "transformation", "task", "setting", "metric", "value", "seed", "scale",
                                     "finetune_seed"])


def varying_config(configs: pd.DataFrame) -> pd.DataFrame:
    """configs.csv reduced to what tells its steps apart: step, kind, state and the config fields
    (dotted columns) that take more than one value in the grid."""
    if configs.empty:
        return configs
    varying = [c for c in configs.columns if "." in c and configs[c].astype(str).nunique() > 1]
    return configs[["step", "kind", "state", *varying]]


def step_intervals(step_dir: str | Path) -> list[dict]:
    """95% intervals over test examples of one step's scores (from its ``predictions.json.gz``): each
    setting's metrics, and Delta_Sup (BZ - BS) and Delta_Mono (MZ - BZ) of the primary metric, paired
    since both sides are scored on the same derived test set. One seed combination: no seed spread."""
    from . import stats
    from .experiment import PREDICTIONS
    from .tasks import TASKS

    step_dir = Path(step_dir)
    if not (step_dir / "results.json").exists() or not (step_dir / PREDICTIONS).exists():
        return []
    result, tables = read_json(step_dir / "results.json"), read_json(step_dir / PREDICTIONS)["settings"]
    units: dict[tuple[str, str], tuple] = {}  # (setting, metric) -> per-example sums, computed once

    def example_scores(kind: str, metric: str, setting: str) -> tuple:
        if (setting, metric) not in units:
            units[setting, metric] = stats.example_scores(kind, metric, tables[setting])
        return units[setting, metric]

    out = []
    for r in result["rows"]:
        spec = TASKS[r["task"]]
        if r["setting"] == "delta":
            a, b = {"delta_sup": ("BZ", "BS"), "delta_mono": ("MZ", "BZ")}[r["metric"]]
            if a not in tables or b not in tables:
                continue
            est, low, high = stats.delta_interval(example_scores(spec.kind, spec.metric, a),
                                                  example_scores(spec.kind, spec.metric, b))
            n = len(tables[a]["id"])
        else:
            est, low, high = stats.score_interval(*example_scores(spec.kind, r["metric"], r["setting"]))
            n = len(tables[r["setting"]]["id"])
        out.append({**r, "value": est, "ci_low": low, "ci_high": high, "n_examples": n,
                    "interval": "paired bootstrap over test examples" if r["setting"] == "delta"
                    else "bootstrap over test examples"})
    return out
