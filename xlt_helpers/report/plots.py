"""The report's figures, every value with its 95% interval as an error bar: cells in (``intervals``
tables), a matplotlib figure out."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .scorecard import CORPUS_ORDER, components

DELTA_LABEL = {"delta_sup": "Delta_Sup = BZ - BS", "delta_mono": "Delta_Mono = MZ - BZ"}


def _bars(ax, cells: pd.DataFrame, groups: list[str], bars: list[str], group_key: str, bar_key: str) -> None:
    """Grouped bars with asymmetric 95% error bars; a missing cell leaves a gap."""
    width = 0.8 / max(len(bars), 1)
    for k, bar in enumerate(bars):
        sub = cells[cells[bar_key] == bar].set_index(group_key).reindex(groups)
        x = np.arange(len(groups)) + (k - (len(bars) - 1) / 2) * width
        err = np.vstack([sub.value - sub.ci_low, sub.ci_high - sub.value]).clip(min=0)
        ax.bar(x, sub.value, width, yerr=np.nan_to_num(err), capsize=3, label=bar)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.axhline(0, color="black", lw=0.8)
    ax.grid(axis="y", alpha=0.3)


def delta_figure(cells: pd.DataFrame):
    """Delta_Sup and Delta_Mono of every transformation, one panel each, bars per task."""
    d = cells[(cells.setting == "delta") & (cells.corpus_setting == "parallel")]
    if d.empty:
        return None
    metrics = [m for m in DELTA_LABEL if m in set(d.metric)]
    trs = list(dict.fromkeys(d.transformation))
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(5.5, 1.4 * len(trs)) * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        sub = d[d.metric == metric]
        _bars(ax, sub, trs, list(dict.fromkeys(sub.task)), "transformation", "task")
        ax.set_title(DELTA_LABEL[metric])
        ax.set_ylabel("difference in task score (0-1)")
        ax.tick_params(axis="x", rotation=20)
    axes[0][-1].legend(title="task", fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def score_figure(cells: pd.DataFrame):
    """The scores behind the deltas: BS, BZ, MZ (and ``orig``) of every transformation on each task's primary
    metric (parallel corpora, as ``delta_figure``), one panel per task, bars per setting."""
    from ..tasks import TASKS

    primary = [TASKS[t].metric if t in TASKS else m for t, m in zip(cells.task, cells.metric)]
    d = cells[cells.setting.isin(["BS", "BZ", "MZ", "orig"]) & (cells.metric == primary)
              & (cells.corpus_setting == "parallel") & (cells.transformation != "mono")]
    if d.empty:
        return None
    tasks = list(dict.fromkeys(d.task))
    trs = list(dict.fromkeys(d.transformation))
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(4.5, 1.3 * len(trs)) * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sub = d[d.task == task]
        _bars(ax, sub, trs, [s for s in ("BS", "BZ", "MZ", "orig") if s in set(sub.setting)], "transformation",
              "setting")
        ax.set_title(f"{task}: {sub.metric.iloc[0]}")
        ax.set_ylabel("task score (0-1)")
        ax.tick_params(axis="x", rotation=20)
    axes[0][-1].legend(title="setting", fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def composition_figure(cells: pd.DataFrame):
    """The paper's composition figure: for each word-order change x with a ``translit+x`` model, Delta_Sup
    of Transliteration, of x and of the composition, per task (one panel per x)."""
    d = cells[(cells.metric == "delta_sup") & (cells.corpus_setting == "parallel")]
    comps = [t for t in dict.fromkeys(d.transformation) if len(str(t).split("+")) == 2 and "translit" in components(t)]
    if not comps:
        return None
    fig, axes = plt.subplots(1, len(comps), figsize=(5 * len(comps), 3.8), squeeze=False, sharey=True)
    for ax, comp in zip(axes[0], comps):
        x = [p for p in comp.split("+") if p != "translit"][0]
        sub = d[d.transformation.isin(["translit", x, comp])]
        _bars(ax, sub, list(dict.fromkeys(sub.task)), [t for t in ("translit", x, comp) if t in set(sub.transformation)],
              "task", "transformation")
        ax.set_title(f"Transliteration, {x}, and both")
        ax.legend(fontsize=8, loc="lower left")
    axes[0][0].set_ylabel("Delta_Sup = BZ - BS (task score, 0-1)")
    fig.tight_layout()
    return fig


def corpus_figure(cells: pd.DataFrame):
    """The corpus-setting figure: Delta_Sup per task and alignment P@1, by how the derived corpus relates
    to the original (parallel / non-parallel / other domain), when the grid has two or more."""
    settings = [s for s in CORPUS_ORDER if s in set(cells.corpus_setting)]
    if len(settings) < 2:
        return None
    d = cells[cells.metric.isin(["delta_sup", "alignment_at_1"])]
    d = d.assign(quantity=[f"{t}: {'Delta_Sup' if m == 'delta_sup' else 'alignment P@1'} {task if m == 'delta_sup' else ''}"
                           for t, m, task in zip(d.transformation, d.metric, d.task)])
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * d.quantity.nunique()), 3.8))
    _bars(ax, d, list(dict.fromkeys(d.quantity)), settings, "quantity", "corpus_setting")
    ax.set_ylabel("score difference or P@1 (0-1)")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(title="derived corpus", fontsize=8)
    fig.tight_layout()
    return fig


def alignment_figure(models: pd.DataFrame, predictor: str = "alignment_at_1"):
    """Delta_Sup against alignment, one point per model, an OLS line and its 95% band per task."""
    g = models.dropna(subset=[predictor, "delta_sup"])
    if g.empty:
        return None
    grid = sns.lmplot(data=g, x=predictor, y="delta_sup", col="task", hue=None, height=3.2, aspect=1.1,
                      ci=95, n_boot=2000, seed=0, facet_kws={"sharey": False, "sharex": True})
    for ax in grid.axes.flat:
        ax.axhline(0, color="black", lw=0.8)
    grid.set_axis_labels(f"{predictor} (P@1, 0-1)", "Delta_Sup (BZ - BS)")
    grid.figure.tight_layout()
    return grid.figure


def compute_figure(points: pd.DataFrame, extrapolations: pd.DataFrame | None = None):
    """Transfer against pretraining compute (``calibration.calibration_points``): one panel per task (BZ
    solid, BS dashed, MZ dotted) and one for alignment (P@1 solid, after Procrustes dashed), x = estimated
    pretraining FLOPs (log), one colour per lever, each line starting at the base variant (black).
    Levers that leave pretraining as it is (the fine-tuning protocol) sit at the base's FLOPs, spread
    a little sideways so that their error bars do not hide each other. ``extrapolations``: rows (lever,
    quantity, pretrain_flops, value) drawn as hollow markers labelled 'extrapolated'."""
    if points.empty:
        return None
    tasks = list(dict.fromkeys(q[: -len(" BZ")] for q in points.quantity if q.endswith(" BZ")))
    align = {"alignment P@1": "-", "alignment P@1 (Procrustes)": "--"}
    panels = tasks + (["alignment"] if points.quantity.isin(list(align)).any() else [])
    levers = [lv for lv in dict.fromkeys(points.lever) if lv != "base"]
    colours = dict(zip(levers, sns.color_palette("tab10", max(len(levers), 1))))
    base = points[points.lever == "base"]
    base_flops = base.pretrain_flops.iloc[0] if len(base) else np.nan
    same = [lv for lv in levers if (points[points.lever == lv].pretrain_flops == base_flops).all()]  # spread sideways
    base_model = base.pretraining.iloc[0] if len(base) and "pretraining" in base else None
    finetune_only = [lv for lv in same if (points[points.lever == lv].get("pretraining") == base_model).all()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 4.0), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        lines = align if panel == "alignment" else {f"{panel} {s}": st for s, st in (("BZ", "-"), ("BS", "--"),
                                                                                       ("MZ", ":"))}
        for q, style in lines.items():
            b = base[base.quantity == q]
            for lv in levers:
                sub = points[(points.lever == lv) & (points.quantity == q)].sort_values("pretrain_flops")
                if sub.empty or (panel == "alignment" and lv in finetune_only):  # alignment is the base's
                    continue
                x = sub.pretrain_flops * (1 + 0.03 * (same.index(lv) + 1) if lv in same else 1)
                if lv not in same and len(b):
                    ax.plot([b.pretrain_flops.iloc[0], x.iloc[0]], [b.value.iloc[0], sub.value.iloc[0]],
                            color=colours[lv], ls=style, lw=1)
                err = np.vstack([sub.value - sub.ci_low, sub.ci_high - sub.value]).clip(min=0)
                first = style in ("-",)
                ax.errorbar(x, sub.value, yerr=np.nan_to_num(err), color=colours[lv], ls="none" if lv in same else style,
                            marker="o" if first else ".", capsize=2, label=lv if first else None)
            if len(b):
                err = np.vstack([b.value - b.ci_low, b.ci_high - b.value]).clip(min=0)
                ax.errorbar(b.pretrain_flops, b.value, yerr=np.nan_to_num(err), color="black", ls="none",
                            marker="s" if style == "-" else ".", capsize=2,
                            label=f"{b.variant.iloc[0]} (base)" if style == "-" else None)
        if extrapolations is not None and len(extrapolations):
            mine = extrapolations[extrapolations.quantity.isin(list(lines))]
            for e in mine.itertuples():
                ax.scatter([e.pretrain_flops], [e.value], facecolors="none", edgecolors=colours.get(e.lever, "grey"),
                           s=70, label=f"{e.lever}: {e.quantity} (extrapolated)")
        ax.set_xscale("log")
        ax.set_title("alignment: P@1 solid, Procrustes dashed" if panel == "alignment"
                     else f"{panel}: BZ solid, BS dashed, MZ dotted")
        ax.set_xlabel("pretraining FLOPs (estimated)")
        ax.set_ylabel("P@1 (0-1)" if panel == "alignment" else "task score (0-1)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(title="lever", fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def variants_figure(points: pd.DataFrame):
    """Variants that are not a lever on compute (pretraining objectives, say) side by side
    (``calibration.calibration_points``): one panel per task's Delta_Sup and one per alignment P@1 measured
    (all pairs; dictionary and held-out pairs where a dictionary was trained on), bars per variant,
    grouped by transformation."""
    if points.empty:
        return None
    panels = [q for q in dict.fromkeys(points.quantity) if q.endswith(" Delta_Sup")]
    panels += [q for q in ("alignment P@1", "alignment P@1 (held-out pairs)") if q in set(points.quantity)]
    if not panels:
        return None
    trs = list(dict.fromkeys(points.transformation))
    variants = list(dict.fromkeys(points.variant))
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.0, 1.2 * len(trs) * len(variants) / 2) * len(panels) / 1.5, 3.8),
                             squeeze=False)
    for ax, q in zip(axes[0], panels):
        _bars(ax, points[points.quantity == q], trs, variants, "transformation", "variant")
        ax.set_title(q)
        ax.set_ylabel("BZ - BS (task score, 0-1)" if q.endswith("Delta_Sup") else "P@1 (0-1)")
        ax.tick_params(axis="x", rotation=20)
    axes[0][-1].legend(title="variant", fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


def _smooth(loss: pd.Series) -> pd.Series:
    """A centred rolling mean over a twentieth of the steps (at least 1): the trend under per-batch noise."""
    return loss.rolling(max(1, len(loss) // 20), center=True, min_periods=1).mean()


def pretraining_curves(logs: pd.DataFrame):
    """The pretraining loss of every model (``curves.pretraining_logs``): one panel per transformation
    (``mono``: the monolingual model), one line per seed (and corpus setting or variant where the grid has
    several), raw loss faint and its rolling mean solid."""
    if logs.empty:
        return None
    trs = list(dict.fromkeys(logs.transformation))
    cols = min(len(trs), 4)
    rows = -(-len(trs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, sharey=True)
    extra = [k for k in ("language", "corpus_setting", "variant") if logs[k].nunique() > 1]
    for ax, tr in zip(axes.flat, trs):
        for key, g in logs[logs.transformation == tr].groupby(["seed", *extra], sort=False):
            key = key if isinstance(key, tuple) else (key,)
            name = ", ".join([f"seed {key[0]}", *map(str, key[1:])])
            line, = ax.plot(g.step, _smooth(g.loss), lw=1.2, label=name)
            ax.plot(g.step, g.loss, lw=0.5, alpha=0.25, color=line.get_color())
        ax.set_title(tr)
        ax.set_xlabel("pretraining step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(trs):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("pretraining loss")
    fig.tight_layout()
    return fig


def finetune_curves(logs: pd.DataFrame, title: str):
    """The fine-tuning loss of one cell (``curves.finetune_logs``): one panel per fine-tuned classifier
    (BZ: on the original language; BS: on the derived one; MZ: the monolingual model), one line per run
    (pretraining and fine-tuning seed, variant where several), raw faint and its rolling mean solid."""
    if logs.empty:
        return None
    settings = [s for s in ("BZ", "BS", "MZ") if s in set(logs.setting)]
    fig, axes = plt.subplots(1, len(settings), figsize=(4.2 * len(settings), 3.2), squeeze=False, sharey=True)
    extra = ["variant"] if logs.variant.nunique() > 1 else []
    for ax, setting in zip(axes[0], settings):
        for key, g in logs[logs.setting == setting].groupby(["seed", "finetune_seed", *extra], sort=False):
            name = f"seeds {key[0]}/{key[1]}" + (f", {key[2]}" if extra else "")
            line, = ax.plot(g.step, _smooth(g.loss), lw=1.2, label=name)
            ax.plot(g.step, g.loss, lw=0.5, alpha=0.25, color=line.get_color())
        ax.set_title(f"{title}: {setting}")
        ax.set_xlabel("fine-tuning step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="pretrain/fine-tune seed", title_fontsize=7)
    axes[0][0].set_ylabel("training loss")
    fig.tight_layout()
    return fig


def save_figure(fig, folder, name: str) -> list:
    """``fig`` as ``<folder>/<name>.png`` and ``.svg`` (paths returned), for a paper or a slide."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.svg"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    with plt.rc_context({"svg.hashsalt": name}):  # the same figure gives the same file: no date, fixed ids
        fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None})
    return paths
