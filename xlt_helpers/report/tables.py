"""Cells shaped for display: pivots of ``value [low, high]`` in grid order, the cells of one kind, and
per-model quantities over seeds."""
from __future__ import annotations

import pandas as pd

from ..labels import PAIR
from ..stats import format_interval
from .results import SETTINGS, task_metrics


def _ordered(table: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """Rows in grid order (transformations as they first appear, natural pairs last)."""
    if table.empty or "transformation" not in table.index.names:
        return table
    order = list(dict.fromkeys(t for t in df.transformation if t != PAIR)) + [PAIR]
    key = {t: k for k, t in enumerate(order)}
    return table.sort_index(level="transformation", key=lambda idx: idx.map(lambda t: key.get(t, len(key))),
                            sort_remaining=False)


MODEL_AXES = ("corpus_setting", "variant")  # what tells two models of one transformation apart in a grid


def model_axes(cells: pd.DataFrame) -> list[str]:
    """The columns of ``MODEL_AXES`` that take more than one value in ``cells`` (a table's extra index)."""
    return [k for k in MODEL_AXES if k in cells and cells[k].nunique() > 1]


def first_variant(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells of the grid's first variant (all of them in a grid without variants)."""
    if "variant" not in cells or cells.empty:
        return cells
    return cells[cells.variant == cells.variant.iloc[0]]


def interval_table(cells: pd.DataFrame, index: list[str], columns: list[str], signed: bool = False) -> pd.DataFrame:
    """A pivot of ``value [ci_low, ci_high]`` strings (rows in grid order)."""
    if cells.empty:
        return pd.DataFrame()
    cells = cells.assign(shown=[format_interval(v, lo, hi, signed) for v, lo, hi in
                                zip(cells.value, cells.ci_low, cells.ci_high)])
    table = cells.pivot_table(index=index, columns=columns, values="shown", aggfunc="first", sort=False)
    return _ordered(table, cells)


def delta_cells(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[(cells.setting == "delta") & (cells.transformation != "mono")]


def score_cells(cells: pd.DataFrame) -> pd.DataFrame:
    s = cells[cells.setting.isin(SETTINGS) & (cells.transformation != "mono") & ~cells.task.isin(["alignment"])]
    return s[task_metrics(s)] if len(s) else s


def seeds_line(cells: pd.DataFrame) -> str:
    """What the intervals of ``cells`` are made of, in one line for the report."""
    if cells.empty:
        return "no intervals"
    pre, ft = int(cells.pretrain_seeds.max()), int(cells.finetune_seeds.max())
    kinds = sorted(set(cells.interval))
    return (f"{pre} pretraining seed(s) x {ft} fine-tuning seed(s) per cell; n_examples: test examples per run; "
            f"intervals: {' | '.join(kinds)}")


def seed_table(rows: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """Per-model quantities without a test set (pretraining loss, overlap): the mean over pretraining
    seeds with a t interval over them (none for one seed), and n (models)."""
    from ..stats import t_interval

    out = []
    for key, g in rows.groupby(index, sort=False, dropna=False):
        v = g.groupby("seed").value.mean()
        low, high = t_interval(v.mean(), v.sem(), len(v) - 1) if len(v) > 1 else (float("nan"), float("nan"))
        out.append({**dict(zip(index, key)), "mean [95% interval over seeds]": format_interval(v.mean(), low, high),
                    "n_models": len(v)})
    return pd.DataFrame(out).set_index(index) if out else pd.DataFrame()
