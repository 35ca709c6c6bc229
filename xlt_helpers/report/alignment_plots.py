"""The alignment study's figures (docs/alignment.md): the paper's scatter of Delta_Sup against alignment
with its configurations labelled, the dial's dose-response, alignment over pretraining and by layer.
Tables of ``alignment_study`` in, a matplotlib figure out (None when there is nothing to draw)."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..stats import format_interval
from .alignment_study import measure_label


def _errors(value: pd.Series, low: pd.Series, high: pd.Series) -> np.ndarray:
    return np.nan_to_num(np.vstack([value - low, high - value]).clip(min=0))


def _mean_and_interval(g: pd.DataFrame, col: str, bounds: tuple[float, float]) -> tuple[float, list]:
    """Mean over seeds and its 95% t interval cut to ``bounds``, as error-bar lengths ``[[below], [above]]``
    (none for one seed)."""
    from ..stats import t_interval

    v = g[col].dropna()
    mean = float(v.mean())
    if len(v) < 2:
        return mean, [[0.0], [0.0]]
    low, high = t_interval(mean, float(v.sem()), len(v) - 1)
    return mean, [[mean - max(low, bounds[0])], [min(high, bounds[1]) - mean]]


def scatter_figure(models: pd.DataFrame, measure: str = "alignment_at_1", associations: pd.DataFrame | None = None):
    """Delta_Sup against ``measure``, one panel per task (one protocol's models): each model a small dot,
    each configuration's mean over seeds a labelled marker with 95% t intervals over seeds on both axes;
    the panel title gives Spearman's rho over models with its interval over configurations
    (``associations``: ``association_tables`` rows of this protocol) and n."""
    g = models.dropna(subset=[measure, "delta_sup"])
    if g.empty:
        return None
    tasks = list(dict.fromkeys(g.task))
    configs = list(dict.fromkeys(g.configuration))
    colours = dict(zip(configs, sns.color_palette("tab10", len(configs))))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        t = g[g.task == task]
        for c, sub in t.groupby("configuration", sort=False):
            ax.scatter(sub[measure], sub.delta_sup, s=10, color=colours[c], alpha=0.45)
            (x, dx), (y, dy) = _mean_and_interval(sub, measure, (0.0, 1.0)), _mean_and_interval(sub, "delta_sup", (-1.0, 1.0))
            ax.errorbar([x], [y], xerr=dx, yerr=dy, color=colours[c], marker="o", capsize=2)
            ax.annotate(c, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        title = task
        if associations is not None and len(associations):
            r = associations[(associations.task == task) & (associations.measure == measure)
                             & (associations.statistic == "spearman_rho")]
            if len(r):
                r = r.iloc[0]
                title += (f": rho {format_interval(r.estimate, r.ci_low, r.ci_high)}\n"
                          f"{r.n_models} models, {r.n_configurations} configurations")
        ax.set_title(title, fontsize=9)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel(measure_label(measure))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("Delta_Sup = BZ - BS (task score, 0-1)")
    fig.tight_layout()
    return fig


def dial_figure(dose: pd.DataFrame):
    """The dial's dose-response (``dose_response`` of one protocol), one column per task: Delta_Sup against
    the ALIGN-MLM weight (log axis; plain MLM, weight 0, drawn one decade left of the smallest weight and
    labelled 0), and Delta_Sup against the static P@1 the weight achieved; 95% t intervals over seeds."""
    if dose.empty:
        return None
    tasks = list(dict.fromkeys(dose.task))
    positive = dose.align_weight[dose.align_weight > 0]
    zero_at = positive.min() / 10 if len(positive) else 1e-3
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.4 * len(tasks), 7.0), squeeze=False)
    for j, task in enumerate(tasks):
        for (lang, tr), d in dose[dose.task == task].groupby(["language", "transformation"], sort=False):
            d = d.sort_values("align_weight")
            x = d.align_weight.where(d.align_weight > 0, zero_at)
            axes[0][j].errorbar(x, d.delta_sup, yerr=_errors(d.delta_sup, d.delta_sup_low, d.delta_sup_high),
                                marker="o", capsize=2, label=f"{lang} {tr}")
            axes[1][j].errorbar(d.alignment_at_1, d.delta_sup,
                                xerr=_errors(d.alignment_at_1, d.alignment_at_1_low, d.alignment_at_1_high),
                                yerr=_errors(d.delta_sup, d.delta_sup_low, d.delta_sup_high), marker="o", capsize=2,
                                label=f"{lang} {tr}")
            for w, px, py in zip(d.align_weight, d.alignment_at_1, d.delta_sup):
                axes[1][j].annotate(f"{w:g}", (px, py), textcoords="offset points", xytext=(4, 4), fontsize=7)
        top, bottom = axes[0][j], axes[1][j]
        top.set_xscale("log")
        ticks = [zero_at, *sorted(positive.unique())]
        top.set_xticks(ticks, ["0 (mlm)", *[f"{t:g}" for t in ticks[1:]]])
        top.set_title(f"{task}: Delta_Sup against the weight", fontsize=9)
        top.set_xlabel("ALIGN-MLM weight")
        bottom.set_title(f"{task}: against the alignment it achieved", fontsize=9)
        bottom.set_xlabel("static P@1 (0-1; labels: weight)")
        for ax in (top, bottom):
            ax.axhline(0, color="black", lw=0.8)
            ax.grid(alpha=0.3)
            ax.set_ylabel("Delta_Sup = BZ - BS")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


DISTINCT = plt.cm.tab20.colors  # 20 colours: the paper's seven configurations and a dial in one panel, none twice


def training_figure(curves: pd.DataFrame):
    """Static P@1 over pretraining steps (``training_curves``), one panel per language, one line per
    configuration with its 95% band over seeds."""
    if curves.empty:
        return None
    langs = list(dict.fromkeys(curves.language))
    fig, axes = plt.subplots(1, len(langs), figsize=(5.6 * len(langs), 4.0), squeeze=False, sharey=True)
    for ax, lang in zip(axes[0], langs):
        ax.set_prop_cycle(color=DISTINCT)
        for c, d in curves[curves.language == lang].groupby("configuration", sort=False):
            line, = ax.plot(d.step, d.value, marker=".", label=c)
            if d.ci_low.notna().any():
                ax.fill_between(d.step, d.ci_low, d.ci_high, color=line.get_color(), alpha=0.2)
        ax.set_title(f"{lang}: alignment P@1 during pretraining", fontsize=9)
        ax.set_xlabel("pretraining step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("static P@1 (0-1)")
    fig.tight_layout()
    return fig


def layer_figure(profile: pd.DataFrame):
    """Contextual P@1 and CKA by layer (``layer_profile``), one panel per measure kind and language, one line
    per configuration with 95% t intervals over seeds."""
    if profile.empty:
        return None
    panels = list(dict.fromkeys(zip(profile.language, profile.kind)))
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows), squeeze=False)
    names = {"contextual_at_1": "contextual P@1", "cka": "linear CKA (words)", "cka_sentence": "linear CKA (sentences)"}
    for ax, (lang, kind) in zip(axes.flat, panels):
        ax.set_prop_cycle(color=DISTINCT)
        for c, d in profile[(profile.language == lang) & (profile.kind == kind)].groupby("configuration", sort=False):
            d = d.sort_values("layer")
            ax.errorbar(d.layer, d.value, yerr=_errors(d.value, d.ci_low, d.ci_high), marker="o", capsize=2, label=c)
        ax.set_title(f"{lang}: {names.get(kind, kind)}", fontsize=9)
        ax.set_xlabel("layer (0: embedding output)")
        ax.set_xticks(sorted(profile.layer.unique()))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
