"""Intervals: each run's 95% intervals over test examples (intervals.csv), each cell's over its seeds
(summary.csv), and cells averaged over languages."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import stats
from ..alignment_measures import interval_count
from ..labels import DEFAULT_VARIANT, PREDICTIONS
from ..storage import read_json
from ..tasks import TASKS


CELL = ["language", "transformation", "corpus_setting", "variant", "task", "setting", "metric"]
DELTA_SIDES = {"delta_sup": ("BZ", "BS"), "delta_mono": ("MZ", "BZ")}
ALIGNMENT_N = {"alignment_at_1": "n_pairs", "alignment_at_1_procrustes": "n_procrustes_test",
               "alignment_at_1_dict": "n_dict_pairs", "alignment_at_1_heldout": "n_heldout_pairs"}


def run_samples(step_dir: str | Path, variant: str = DEFAULT_VARIANT) -> list[dict]:
    """What the intervals of one finished step are computed from: one record per score row with its cell,
    seeds and either per-example arrays and the statistic that scores them (``arrays``,
    ``statistic``), or, for alignment, a proportion over ``n`` token pairs. Rows without a test-set
    estimate (pretraining loss and overlap, chance levels, CKA) are left out. ``variant``: the grid variant
    the step's rows are counted in (the runner's ``Step.variants``)."""
    step_dir = Path(step_dir)
    if not (step_dir / "results.json").exists():
        return []
    result = read_json(step_dir / "results.json")
    corpus = (result.get("config") or {}).get("data", {}).get("corpus_setting", "parallel")
    tables = read_json(step_dir / PREDICTIONS)["settings"] if (step_dir / PREDICTIONS).exists() else None
    sums: dict[tuple[str, str], tuple] = {}  # (setting, metric) -> per-example sums, computed once

    def example_scores(spec, metric: str, setting: str) -> tuple:
        if (setting, metric) not in sums:
            sums[setting, metric] = spec.scorer(metric).examples(tables[setting])
        return sums[setting, metric]

    out = []
    for r in result["rows"]:
        base = {**{k: r.get(k) for k in CELL}, "corpus_setting": corpus, "variant": variant, "seed": r.get("seed"),
                "finetune_seed": r.get("finetune_seed"), "step_dir": str(step_dir)}
        count = ALIGNMENT_N.get(r["metric"]) or interval_count(r["metric"])  # contextual P@1, P@1 per step
        if count:
            n = int((result.get("report") or {}).get(count, 0))
            out.append({**base, "value": r["value"], "n": n})
        elif tables is not None and r["task"] in TASKS:
            spec = TASKS[r["task"]]
            if r["setting"] == "delta":
                a, b = DELTA_SIDES[r["metric"]]
                if a in tables and b in tables:
                    out.append({**base, "arrays": example_scores(spec, spec.metric, a)
                                + example_scores(spec, spec.metric, b), "statistic": stats.difference})
            elif r["setting"] in tables:
                out.append({**base, "arrays": example_scores(spec, r["metric"], r["setting"]),
                            "statistic": stats.ratio})
    return out


def _cell(sample: dict) -> dict:
    """A sample's cell (``CELL``); one built before variants counts in the default variant."""
    return {k: sample.get(k, DEFAULT_VARIANT) if k == "variant" else sample[k] for k in CELL}


def _bounds(setting: str) -> tuple[float, float]:
    """The range of a cell's values: deltas in [-1, 1], scores and P@1 in [0, 1]."""
    return (-1.0, 1.0) if setting == "delta" else (0.0, 1.0)


def _interval(samples: list[dict], units: list) -> "stats.Interval":  # noqa: F821

    if "arrays" not in samples[0]:
        iv = stats.proportion_interval([s["value"] for s in samples], min(s["n"] for s in samples), units)
    elif len({len(s["arrays"][0]) for s in samples}) > 1:
        raise ValueError(f"runs of one cell scored on different test sets: {[s['step_dir'] for s in samples]}")
    else:
        iv = stats.combined_interval([s["arrays"] for s in samples], samples[0]["statistic"], units)
    return stats.clip(iv, *_bounds(samples[0]["setting"]))


def _interval_columns(iv) -> dict:
    return {"value": iv.estimate, "ci_low": iv.low, "ci_high": iv.high, "se": iv.se, "df": iv.df,
            "n_examples": iv.n_examples, "n_seeds": iv.n_seeds, "interval": iv.method}


def run_intervals(samples: list[dict]) -> list[dict]:
    """95% intervals over test examples of each run's scores (``run_samples`` of one step: one
    pretraining and one fine-tuning seed): each setting's metrics, and Delta_Sup (BZ - BS) and
    Delta_Mono (MZ - BZ), paired since both sides are scored on the same derived test set.
    Alignment P@1: Wilson's interval over token pairs."""
    out = []
    for s in samples:
        iv = _interval([s], [0])
        method = "paired " + iv.method if s["setting"] == "delta" else iv.method
        out.append({**_cell(s), "seed": s["seed"], "finetune_seed": s["finetune_seed"], **_interval_columns(iv),
                    "interval": method})
    return out


def summarize(samples: list[dict]) -> pd.DataFrame:
    """One row per cell (language, transformation, corpus setting, task, setting, metric): the mean over
    its runs and a 95% interval that combines the test-example bootstrap (joint over runs, paired for
    deltas) with the spread over seeds: over pretraining seeds when there are two or more (fine-tuning
    seeds are averaged within each), else over fine-tuning seeds (``interval`` says which)."""
    if not samples:
        return pd.DataFrame(columns=CELL + ["value", "ci_low", "ci_high", "se", "df", "n_examples", "n_seeds",
                                            "n_runs", "pretrain_seeds", "finetune_seeds", "interval"])
    by_cell: dict[tuple, list[dict]] = {}
    for s in samples:
        by_cell.setdefault(tuple(_cell(s).values()), []).append(s)
    out = []
    for cell, runs in by_cell.items():
        pre = sorted({r["seed"] for r in runs})
        fts = sorted({r["finetune_seed"] for r in runs if r["finetune_seed"] is not None and r["finetune_seed"] == r["finetune_seed"]})
        unit_key = "seed" if len(pre) > 1 or len(fts) < 2 else "finetune_seed"
        iv = _interval(runs, [r[unit_key] for r in runs])
        what = ("pretraining" if unit_key == "seed" else "fine-tuning") if iv.n_seeds > 1 else None
        method = iv.method.replace("seeds", f"{what} seeds") if what else iv.method
        out.append({**dict(zip(CELL, cell)), **_interval_columns(iv), "interval": method, "n_runs": len(runs),
                    "pretrain_seeds": len(pre), "finetune_seeds": max(len(fts), 1)})
    return pd.DataFrame(out)


def stored_interval(row) -> "stats.Interval":  # noqa: F821
    from ..stats import Interval

    return Interval(row.value, row.ci_low, row.ci_high, row.se, row.df, int(row.n_examples), int(row.n_seeds),
                    row.interval)


def average_languages(summary: pd.DataFrame) -> pd.DataFrame:
    """Cells averaged over languages (each language's interval treated as independent): the main table's
    numbers, with ``n_languages``; a cell of one language keeps its own interval."""

    keys = [k for k in CELL if k != "language"]
    out = []
    for cell, g in summary.groupby(keys, sort=False, dropna=False):
        iv = stats.clip(stats.combine([stored_interval(r) for r in g.itertuples()], [1 / len(g)] * len(g)),
                        *_bounds(cell[keys.index("setting")]))
        out.append({**dict(zip(keys, cell)), **_interval_columns(iv), "n_languages": g.language.nunique(),
                    "n_runs": int(g.n_runs.sum()), "pretrain_seeds": int(g.pretrain_seeds.min()),
                    "finetune_seeds": int(g.finetune_seeds.min())})
    return pd.DataFrame(out)
