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


def scores_table(df: pd.DataFrame) -> pd.DataFrame:
    """BS / BZ / MZ / orig scores: one row per (language, transformation, task)."""
    s = df[df.setting.isin(SETTINGS) & (df.task != "pretrain")]
    s = s[s.transformation != "mono"]
    return s.pivot_table(index=["language", "transformation", "task"], columns="setting", values="value",
                         aggfunc="mean").reindex(columns=[c for c in SETTINGS if c in set(s.setting)])


def delta_table(df: pd.DataFrame, by_language: bool = False) -> pd.DataFrame:
    """Delta_Sup and Delta_Mono by transformation x task (mean over seeds, and languages unless ``by_language``)."""
    d = df[df.setting == "delta"]
    index = ["language", "transformation"] if by_language else ["transformation"]
    return d.pivot_table(index=index, columns=["metric", "task"], values="value", aggfunc="mean")


def alignment_vs_transfer(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (language, transformation, task, seed) with alignment P@1 and Delta_Sup side by side."""
    keys = ["language", "transformation", "seed", "scale"]
    al = df[df.metric == "alignment_at_1"][keys + ["value"]].rename(columns={"value": "alignment_at_1"})
    ds = df[df.metric == "delta_sup"][keys + ["task", "value"]].rename(columns={"value": "delta_sup"})
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
        return pd.DataFrame(columns=["language", "transformation", "task", "setting", "metric", "value", "seed", "scale"])
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=["language", "transformation", "task", "setting", "metric", "value", "seed", "scale"])
