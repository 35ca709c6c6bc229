"""Calibration: variants side by side, transfer against pretraining compute (one line per lever: grid
variants named ``lever=value``), each variant against plain mlm, and extrapolations to a target."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import stats
from ..stats import format_interval
from ..storage import read_json
from ..tasks import TASKS
from .intervals import ALIGNMENT_N, stored_interval
from .targets import CPU_TARGETS
from .verdicts import verdict_above


def lever(variant: str) -> str:
    """The lever a variant named ``lever=value`` moves (the base variant, without ``=``: ``base``)."""
    return variant.split("=", 1)[0] if "=" in str(variant) else "base"


def variant_compute(df: pd.DataFrame, configs: pd.DataFrame, runs_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per variant: the estimated FLOPs of pretraining its bilingual model(s)
    (``compute.flat_pretrain_flops``) and, where the runs folder is given, the mean wall seconds of that
    pretraining as recorded in its results.json (machine and load dependent)."""
    from ..compute import flat_pretrain_flops

    pre = df[(df.task == "pretrain") & (df.transformation != "mono")][["variant", "step"]].drop_duplicates()
    if pre.empty or configs.empty:
        return pd.DataFrame(columns=["variant", "lever", "pretrain_flops", "pretrain_seconds", "n_models", "pretraining"])
    rows = []
    for variant, g in pre.groupby("variant", sort=False):
        conf = configs.set_index("step").loc[list(g.step)]
        flops = [flat_pretrain_flops(r) for r in conf.to_dict("records")]
        found = [Path(runs_dir) / s / "results.json" for s in g.step] if runs_dir is not None else []
        seconds = [read_json(f).get("seconds", np.nan) if f.is_file() else np.nan for f in found] or [np.nan]
        rows.append({"variant": variant, "lever": lever(variant), "pretrain_flops": float(np.mean(flops)),
                     "pretrain_seconds": float(np.nanmean(seconds)) if np.isfinite(seconds).any() else np.nan,
                     "n_models": len(g), "pretraining": " ".join(sorted(g.step))})
    return pd.DataFrame(rows)


ALIGNMENT_LABEL = {"alignment_at_1": "alignment P@1", "alignment_at_1_procrustes": "alignment P@1 (Procrustes)",
                   "alignment_at_1_dict": "alignment P@1 (dictionary pairs)",
                   "alignment_at_1_heldout": "alignment P@1 (held-out pairs)"}


def variant_table(points: pd.DataFrame) -> pd.DataFrame:
    """The variants side by side: each quantity of ``calibration_points`` as ``value [low, high]``, with
    the variant's estimated pretraining FLOPs and measured pretraining seconds. Rows with their own
    ``n_runs`` (``drift_points``) say it: ``value [low, high] n=3``."""
    if points.empty:
        return pd.DataFrame()
    signed = points.quantity.str.endswith("Delta_Sup")
    runs = points.n_runs if "n_runs" in points else pd.Series(np.nan, index=points.index)
    shown = points.assign(shown=[format_interval(v, lo, hi, sg) + (f" n={int(n)}" if n == n else "") for v, lo, hi, sg, n
                                 in zip(points.value, points.ci_low, points.ci_high, signed, runs)])
    index = ["variant", "transformation"] if points.transformation.nunique() > 1 else ["variant"]
    table = shown.pivot_table(index=index, columns="quantity", values="shown", aggfunc="first", sort=False)
    extra = points.drop_duplicates(index).set_index(index)[["pretrain_flops", "pretrain_seconds", "n_seeds"]]
    extra = extra.assign(pretrain_flops=extra.pretrain_flops.map(lambda f: f"{f:.2e}"),
                         pretrain_seconds=extra.pretrain_seconds.round(0))
    return extra.join(table)


def variant_contrasts(cells: pd.DataFrame, baseline: str = "mlm") -> pd.DataFrame:
    """Each variant against ``baseline`` on the same transformation: the difference in each task's
    Delta_Sup and in alignment P@1 (all pairs), with its 95% interval and which way it went (``raised`` /
    ``lowered`` when the interval excludes 0, else ``unclear``). The two sides are combined as independent
    (``stats.combine``), which is conservative: the variants share seeds and test sentences."""

    if "variant" not in cells or baseline not in set(cells.variant):
        return pd.DataFrame()
    sub = cells[((cells.metric == "delta_sup") | (cells.metric == "alignment_at_1")) & (cells.transformation != "mono")]
    sub = sub.assign(quantity=np.where(sub.metric == "delta_sup", sub.task + " Delta_Sup", ALIGNMENT_LABEL["alignment_at_1"]))
    base = {(r.transformation, r.quantity): stored_interval(r) for r in sub[sub.variant == baseline].itertuples()}
    rows = []
    for r in sub[sub.variant != baseline].itertuples():
        b = base.get((r.transformation, r.quantity))
        if b is None:
            continue
        iv = stats.combine([stored_interval(r), b], [1, -1])
        way = verdict_above(iv.low, iv.high, 0.0)
        rows.append({"variant": r.variant, "transformation": r.transformation, "quantity": r.quantity,
                     "variant_value": r.value, "baseline_value": b.estimate, "difference": iv.estimate,
                     "ci_low": iv.low, "ci_high": iv.high, "n_seeds": min(int(r.n_seeds), b.n_seeds),
                     "moved": {"reproduced": "raised", "contradicted": "lowered"}.get(way, "unclear")})
    return pd.DataFrame(rows)


def calibration_points(cells: pd.DataFrame, compute: pd.DataFrame) -> pd.DataFrame:
    """The compute figure's points: per variant and quantity (BS, BZ, MZ of each task's primary metric;
    alignment P@1), the cell's value and 95% interval beside the variant's pretraining FLOPs."""
    if cells.empty or compute.empty:
        return pd.DataFrame()
    primary = cells.task.map(lambda t: TASKS[t].metric if t in TASKS else None)
    scores = cells[cells.setting.isin(["BS", "BZ", "MZ"]) & (cells.metric == primary)
                   & (cells.transformation != "mono")]
    scores = scores.assign(quantity=scores.task + " " + scores.setting)
    deltas = cells[cells.metric == "delta_sup"]
    deltas = deltas.assign(quantity=deltas.task + " Delta_Sup")
    align = cells[cells.metric.isin(list(ALIGNMENT_N))]
    align = align.assign(quantity=align.metric.map(ALIGNMENT_LABEL))
    points = pd.concat([scores, deltas, align], ignore_index=True)
    if "corpus_setting" in points and points.corpus_setting.nunique() > 1:  # one model per transformation and setting
        points = points.assign(transformation=[t if c == "parallel" else f"{t} {c}"
                                               for t, c in zip(points.transformation, points.corpus_setting)])
    keep = ["variant", "transformation", "quantity", "value", "ci_low", "ci_high", "n_seeds"]
    return points[keep].merge(compute, on="variant")


def extrapolations(points: pd.DataFrame) -> pd.DataFrame:
    """``extrapolate`` of POS BZ to the `cpu` target (``CPU_TARGETS``: 0.85 x the BS of the lever's largest
    run) for every lever with two or more distinct pretraining FLOPs."""
    out = []
    for lv in [lv for lv in dict.fromkeys(points.lever) if lv != "base"] if len(points) else []:
        mine = points[(points.lever == lv) & (points.quantity == "pos BS")]
        if mine.empty:
            continue
        bs = mine.loc[mine.pretrain_flops.idxmax(), "value"]
        got = extrapolate(points, lv, "pos BZ", CPU_TARGETS["pos_bz_share"] * bs)
        if got:
            out.append(got)
    return pd.DataFrame(out)


MIN_FLOPS_SPAN = 1.5  # extrapolate only along runs whose pretraining FLOPs differ by this factor or more


def extrapolate(points: pd.DataFrame, lever_name: str, quantity: str, target: float) -> dict | None:
    """Where ``quantity`` would reach ``target`` if it kept growing along ``lever_name`` as it did: a line
    in log10(FLOPs) through the base and the lever's points (scipy.stats.linregress), solved for the
    target. None when the runs' FLOPs span less than ``MIN_FLOPS_SPAN`` or the slope does not head for the target. An
    extrapolation, not a measurement: the report and the README label it so."""
    from scipy.stats import linregress

    sub = points[points.lever.isin(["base", lever_name]) & (points.quantity == quantity)].dropna(subset=["value"])
    if sub.empty or sub.pretrain_flops.max() < MIN_FLOPS_SPAN * sub.pretrain_flops.min():
        return None  # a lever that barely changes compute (shape, vocabulary) has no trend in it
    fit = linregress(np.log10(sub.pretrain_flops), sub.value)
    last = sub.loc[sub.pretrain_flops.idxmax()]
    if fit.slope == 0 or (target - last.value) / fit.slope < 0:
        return None
    flops = 10 ** ((target - fit.intercept) / fit.slope)
    return {"lever": lever_name, "quantity": quantity, "target": target, "pretrain_flops": float(flops),
            "value": target, "times_the_largest_run": float(flops / last.pretrain_flops),
            "slope_per_decade": float(fit.slope), "n_points": len(sub)}


def drift_points(df: pd.DataFrame, runs_dir: str | Path) -> pd.DataFrame:
    """The word-embedding drift of fine-tuning (``embedding_drift`` in each transfer step's results.json:
    the mean cosine of the rows the fine-tuning data uses, before against after; 1: unmoved) per variant,
    transformation, task and classifier (BZ, BS): the mean over runs with a t interval over them (none for
    one run) and n (``n_runs``: pretraining x fine-tuning seeds). Steps computed before drift was recorded
    are left out."""
    from ..stats import t_interval

    steps = df[df.setting == "BS"].drop_duplicates(["step", "variant"])
    rows = []
    for r in steps.to_dict("records"):
        path = Path(runs_dir) / r["step"] / "results.json"
        drift = read_json(path).get("embedding_drift") if path.is_file() else None
        for setting, value in (drift or {}).items():
            rows.append({"variant": r["variant"], "transformation": r["transformation"], "task": r["task"],
                         "quantity": f"{r['task']} {setting} embedding drift (cosine)", "run_value": value})
    if not rows:
        return pd.DataFrame(columns=["variant", "transformation", "quantity", "value", "ci_low", "ci_high", "n_runs"])
    out = []
    for (variant, tr, q), g in pd.DataFrame(rows).groupby(["variant", "transformation", "quantity"], sort=False):
        v = g.run_value.astype(float)
        low, high = t_interval(v.mean(), v.sem(), len(v) - 1) if len(v) > 1 else (np.nan, np.nan)
        out.append({"variant": variant, "transformation": tr, "quantity": q, "value": v.mean(), "ci_low": low,
                    "ci_high": high, "n_runs": len(v)})
    return pd.DataFrame(out)
