"""Does alignment predict transfer, and does forcing it cause transfer? The analysis of docs/alignment.md
(the report's section ``alignment_study``).

Words used here:

* a *model* is one pretrained bilingual model: language, transformation, corpus setting, the model part
  of its variant, pretraining seed;
* a *configuration* is a model without its seed: the unit the bootstrap resamples, so the seeds of one
  configuration always move together;
* a variant named ``protocol:tag`` (``trained``, ``frozen:half``, ``trained:align0.1``) is read as the
  fine-tuning *protocol* before the colon and a model *tag* after it; a variant without a colon is a
  protocol with no tag. Associations are computed per protocol, never across protocols (the same model
  fine-tuned two ways is one configuration, not two).

Tables in: ``results.csv`` rows (``report.results.load_results``), and optionally ``configs.csv`` (the ALIGN-MLM
weight of each model) and ``intervals.csv`` (each run's Delta_Sup standard error, the WLS weights).
Statistics: Spearman's rho (scipy.stats.spearmanr), OLS and WLS slopes and R² (statsmodels), intervals
from ``scipy.stats.bootstrap`` over configurations (percentile, 95%), t intervals over seeds
(``stats.t_interval``).
"""
from __future__ import annotations

import ast
import math
import re
import warnings
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..stats import CONFIDENCE, MAX_UNDEFINED, t_interval

KEYS = ["language", "transformation", "corpus_setting", "variant", "seed"]
MODEL = ["language", "transformation", "corpus_setting", "tag", "seed"]  # a model, whatever its protocol
NOT_MEASURES = {"chance", "contextual_chance"}
STEP_METRIC = re.compile(r"^alignment_at_1_step(\d+)$")
LAYER_METRIC = re.compile(r"^(contextual_at_1|cka|cka_sentence)_layer(\d+)$")
STATIC = ("alignment_at_1", "alignment_at_1_procrustes")
STATISTICS = ("spearman_rho", "spearman_rho_configurations", "ols_slope", "ols_r2", "wls_slope", "wls_r2")
MIN_CONFIGURATIONS = 4   # fewer configurations: no association is estimated
N_RESAMPLES = 1000       # per (protocol, language, task): every measure and statistic from the same resamples
MEASURE_LABEL = {"alignment_at_1": "static P@1", "alignment_at_1_procrustes": "static P@1 (Procrustes)",
                 "alignment_at_1_heldout": "static P@1 (held-out pairs)",
                 "alignment_at_1_dict": "static P@1 (dictionary pairs)", "align_weight": "ALIGN-MLM weight",
                 "log10_align_weight": "log10 ALIGN-MLM weight"}


def split_variant(variant: str) -> tuple[str, str]:
    """``"frozen:align0.1"`` -> ``("frozen", "align0.1")``; ``"trained"`` -> ``("trained", "")``."""
    protocol, _, tag = str(variant).partition(":")
    return protocol, tag


def measure_label(measure: str) -> str:
    """A measure's name in tables and figures (``contextual_at_1_layer1`` -> ``contextual P@1, layer 1``)."""
    m = LAYER_METRIC.match(measure)
    if m:
        kind = {"contextual_at_1": "contextual P@1", "cka": "CKA (words)", "cka_sentence": "CKA (sentences)"}[m[1]]
        return f"{kind}, layer {m[2]}"
    return MEASURE_LABEL.get(measure, measure)


def configuration_label(language: str, transformation: str, corpus_setting: str, tag: str) -> str:
    """``en translit``, ``en translit nonparallel half``: what the figures write beside a configuration."""
    parts = [language, transformation] + ([corpus_setting] if corpus_setting != "parallel" else []) + ([tag] if tag else [])
    return " ".join(str(p) for p in parts)


def _with_axes(df: pd.DataFrame) -> pd.DataFrame:
    df = df if "corpus_setting" in df else df.assign(corpus_setting="parallel")
    return df if "variant" in df else df.assign(variant="default")


def measures_table(df: pd.DataFrame, configs: pd.DataFrame | None = None,
                   intervals: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per model, protocol and task: Delta_Sup (mean over fine-tuning seeds), its standard error
    over test examples (root mean square of the runs' ``se`` in ``intervals``; NaN without it), and one
    column per alignment measure of the model (static P@1, contextual P@1 and CKA per layer; P@1 per
    pretraining step is left to ``training_curves``). With ``configs``: ``align_weight`` (0 for a model
    pretrained without ALIGN-MLM) and ``log10_align_weight``."""
    df = _with_axes(df)
    align = df[(df.task == "alignment") & ~df.metric.isin(NOT_MEASURES) & ~df.metric.str.match(STEP_METRIC)]
    deltas = df[df.metric == "delta_sup"]
    if align.empty or deltas.empty:
        return pd.DataFrame()
    wide = align.pivot_table(index=KEYS, columns="metric", values="value", aggfunc="mean").reset_index()
    wide.columns.name = None
    out = (deltas.groupby(KEYS + ["task"], as_index=False, sort=False)
           .agg(delta_sup=("value", "mean"), n_finetune_seeds=("value", "size")))
    if intervals is not None and len(intervals) and "se" in intervals:
        iv = _with_axes(intervals)
        se = (iv[iv.metric == "delta_sup"].groupby(KEYS + ["task"], sort=False).se
              .apply(lambda s: float(np.sqrt(np.mean(np.square(s))))).rename("delta_sup_se").reset_index())
        out = out.merge(se, on=KEYS + ["task"], how="left")
    else:
        out = out.assign(delta_sup_se=np.nan)
    out = out.merge(wide, on=KEYS)
    split = out.variant.map(split_variant)
    out = out.assign(protocol=split.str[0], tag=split.str[1])
    out["configuration"] = [configuration_label(*r) for r in
                            out[["language", "transformation", "corpus_setting", "tag"]].itertuples(index=False)]
    if configs is not None and len(configs) and "step" in df:
        out = out.merge(_align_weights(df, configs), on=KEYS, how="left")
        out["log10_align_weight"] = np.log10(out.align_weight.where(out.align_weight > 0))
    return out


def _align_weights(df: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    """Each model's ALIGN-MLM weight, read from the config of its alignment step (0 without ``align``)."""
    steps = df[df.task == "alignment"][KEYS + ["step"]].drop_duplicates(KEYS)
    conf = configs.set_index("step")

    def weight(step: str) -> float:
        if step not in conf.index:
            return np.nan
        objectives = conf.at[step, "pretrain.objectives"]
        objectives = ast.literal_eval(objectives) if isinstance(objectives, str) else objectives
        return float(conf.at[step, "pretrain.align_weight"]) if "align" in objectives else 0.0

    return steps.assign(align_weight=steps.step.map(weight)).drop(columns="step")


def measures(models: pd.DataFrame) -> list[str]:
    """The alignment measures ``measures_table`` found: static P@1 first, then by kind and layer."""
    def order(m: str) -> tuple:
        lm = LAYER_METRIC.match(m)
        kinds = ("contextual_at_1", "cka", "cka_sentence")
        return (1, kinds.index(lm[1]), int(lm[2])) if lm else (0, STATIC.index(m) if m in STATIC else 9, 0)

    found = [c for c in models.columns if c.startswith("alignment_at_1") or LAYER_METRIC.match(c)]
    return sorted((c for c in found if models[c].notna().any()), key=order)


# ---------------------------------------------------------------------------------------------------
# The bootstrap over configurations

def configuration_bootstrap(configurations: Sequence, statistic: Callable[[np.ndarray], np.ndarray],
                            n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``statistic`` of all configurations, and its bootstrap distribution ``(k, n_resamples)``.

    ``configurations``: the distinct configurations; ``statistic(idx)`` computes k numbers from the
    configurations drawn (indices into ``configurations``, with repeats), taking every row of each drawn
    configuration. ``scipy.stats.bootstrap`` draws the indices; the same ``seed`` draws the same
    resamples, so two statistics bootstrapped separately on the same configurations stay paired."""
    from scipy.stats import bootstrap

    idx = np.arange(len(configurations))
    estimate = np.atleast_1d(np.asarray(statistic(idx), dtype=float))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = bootstrap((idx,), lambda i: np.atleast_1d(np.asarray(statistic(i.astype(int)), dtype=float)),
                        vectorized=False, n_resamples=n_resamples, method="percentile",
                        confidence_level=CONFIDENCE, rng=np.random.default_rng(seed))
    return estimate, np.atleast_2d(res.bootstrap_distribution)


def percentile_interval(distribution: np.ndarray) -> tuple[float, float, float]:
    """The 95% percentile interval of a bootstrap distribution and the share of resamples where the
    statistic is undefined; above ``stats.MAX_UNDEFINED`` the interval is NaN (leaving those resamples out
    would bias it)."""
    distribution = np.asarray(distribution, dtype=float)
    defined = np.isfinite(distribution)
    undefined = 1.0 - float(defined.mean()) if len(distribution) else 1.0
    if undefined > MAX_UNDEFINED:
        return math.nan, math.nan, undefined
    low, high = np.quantile(distribution[defined], [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return float(low), float(high), undefined


def _fit(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """Slope and R² of ``y ~ x`` by OLS, or by WLS with ``weights`` (statsmodels); NaN when x is constant."""
    import statsmodels.api as sm

    if len(x) < 3 or np.ptp(x) == 0:
        return math.nan, math.nan
    X = sm.add_constant(x, has_constant="add")
    fit = sm.OLS(y, X).fit() if weights is None else sm.WLS(y, X, weights=weights).fit()
    return float(fit.params[1]), float(fit.rsquared)


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def _statistics(x: np.ndarray, y: np.ndarray, w: np.ndarray | None, cx: np.ndarray, cy: np.ndarray) -> list[float]:
    """``STATISTICS`` of one measure: over models (x, y; WLS weights w), and rho over configuration means."""
    ols = _fit(x, y)
    wls = _fit(x, y, w) if w is not None else (math.nan, math.nan)
    return [_rho(x, y), _rho(cx, cy), ols[0], ols[1], wls[0], wls[1]]


def association(models: pd.DataFrame, measure_names: Sequence[str], n_resamples: int = N_RESAMPLES,
                seed: int = 0) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Spearman's rho, OLS and WLS of Delta_Sup on each measure over ``models`` (one task and protocol),
    with 95% intervals from one bootstrap over configurations shared by every measure (so measures can be
    compared pair by pair: ``compare_measures``).

    Only models with Delta_Sup and every measure are used; WLS weights each model by 1 / its Delta_Sup
    standard error squared and is NaN when one is missing. Returns the table (one row per measure and
    statistic: estimate, ci_low, ci_high, undefined_resamples, n_models, n_configurations) and the
    distributions (measure -> ``(len(STATISTICS), n_resamples)``). Fewer than ``MIN_CONFIGURATIONS``
    configurations: an empty table."""
    cols = list(measure_names)
    data = models.dropna(subset=["delta_sup", *cols]).reset_index(drop=True)
    configs = list(dict.fromkeys(data.configuration)) if len(data) else []
    if len(configs) < MIN_CONFIGURATIONS or not cols:
        return pd.DataFrame(), {}
    rows_of = [np.flatnonzero(data.configuration.to_numpy() == c) for c in configs]
    y = data.delta_sup.to_numpy(float)
    se = data.delta_sup_se.to_numpy(float) if "delta_sup_se" in data else np.full(len(data), np.nan)
    w = 1.0 / se ** 2 if np.all(np.isfinite(se) & (se > 0)) else None
    xs = {m: data[m].to_numpy(float) for m in cols}
    means = {m: np.array([xs[m][r].mean() for r in rows_of]) for m in cols}
    y_means = np.array([y[r].mean() for r in rows_of])

    def statistic(idx: np.ndarray) -> np.ndarray:
        rows = np.concatenate([rows_of[i] for i in idx])
        return np.array([s for m in cols for s in _statistics(xs[m][rows], y[rows], None if w is None else w[rows],
                                                               means[m][idx], y_means[idx])])

    estimate, dist = configuration_bootstrap(configs, statistic, n_resamples, seed)
    k = len(STATISTICS)
    out, distributions = [], {}
    for j, m in enumerate(cols):
        distributions[m] = dist[j * k:(j + 1) * k]
        for s, name in enumerate(STATISTICS):
            low, high, undefined = percentile_interval(distributions[m][s])
            out.append({"measure": m, "statistic": name, "estimate": estimate[j * k + s], "ci_low": low,
                        "ci_high": high, "undefined_resamples": undefined, "n_models": len(data),
                        "n_configurations": len(configs), "n_resamples": n_resamples})
    return pd.DataFrame(out), distributions


def compare_measures(table: pd.DataFrame, distributions: dict[str, np.ndarray],
                     statistics: Sequence[str] = ("spearman_rho", "ols_r2")) -> pd.DataFrame:
    """Which measure predicts Delta_Sup best: for each statistic, the measure with the highest estimate
    against every other, the difference (best - other) with its 95% paired-bootstrap interval (the same
    resampled configurations for both: ``association``). An interval above 0: the best is better."""
    out = []
    for name in statistics:
        s = STATISTICS.index(name)
        est = table[table.statistic == name].set_index("measure").estimate.dropna()
        if len(est) < 2:
            continue
        best = est.idxmax()
        for other in est.index.drop(best):
            low, high, undefined = percentile_interval(distributions[best][s] - distributions[other][s])
            out.append({"statistic": name, "best": best, "other": other, "difference": est[best] - est[other],
                        "ci_low": low, "ci_high": high, "undefined_resamples": undefined,
                        "n_configurations": int(table.n_configurations.iloc[0])})
    return pd.DataFrame(out)


def correlation_models(models: pd.DataFrame) -> pd.DataFrame:
    """The models whose alignment is observed, not set: every model but those pretrained with ALIGN-MLM."""
    if "align_weight" not in models:
        return models
    return models[models.align_weight.fillna(0) == 0]


def association_tables(models: pd.DataFrame, measure_names: Sequence[str] | None = None,
                       by: Sequence[str] = ("protocol", "language"), n_resamples: int = N_RESAMPLES,
                       seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``association`` and ``compare_measures`` for every group of ``by`` and task (the measures a group has
    on all its models; by default every measure of ``measures``). Two tables, each with the group's columns
    and ``task`` first."""
    assoc, comp = [], []
    for key, g in models.groupby([*by, "task"], sort=False):
        where = dict(zip([*by, "task"], key))
        names = [m for m in (measure_names or measures(models)) if m in g and g[m].notna().all()]
        table, dist = association(g, names, n_resamples, seed)
        if len(table):
            assoc.append(table.assign(**where))
            comp.append(compare_measures(table, dist).assign(**where))
    first = [*by, "task"]

    def tidy(parts: list[pd.DataFrame]) -> pd.DataFrame:
        if not parts or all(p.empty for p in parts):
            return pd.DataFrame()
        t = pd.concat([p for p in parts if len(p)], ignore_index=True)
        return t[first + [c for c in t.columns if c not in first]]

    return tidy(assoc), tidy(comp)


def best_measure(associations: pd.DataFrame, exclude: Sequence[str] = STATIC,
                 statistic: str = "spearman_rho") -> str | None:
    """The measure (other than ``exclude``) with the highest ``statistic`` averaged over the tasks and groups
    of ``associations``: the "best contextual measure" the report draws beside static P@1."""
    t = associations[(associations.statistic == statistic) & ~associations.measure.isin(list(exclude))]
    means = t.groupby("measure").estimate.mean().dropna()
    return str(means.idxmax()) if len(means) else None


def scorecard_correlations(associations: pd.DataFrame, protocol: str | None = None,
                           measure: str = "alignment_at_1") -> pd.DataFrame:
    """Finding 5's input to ``analysis.scorecard`` (the columns of ``analysis.spearman_by_task``): Spearman's
    rho of ``measure`` per task and language for one protocol (default: the first), with its interval over
    configurations."""
    t = associations[(associations.statistic == "spearman_rho") & (associations.measure == measure)]
    if t.empty:
        return pd.DataFrame()
    protocol = protocol or t.protocol.iloc[0]
    t = t[t.protocol == protocol]
    return pd.DataFrame({"task": t.task, "predictor": [f"{measure}, {lang}, {protocol}" for lang in t.language],
                         "n_models": t.n_models, "spearman_rho": t.estimate, "ci_low": t.ci_low, "ci_high": t.ci_high,
                         "undefined_resamples": t.undefined_resamples}).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------
# The dial: ALIGN-MLM weights set by the experimenter

def dial_models(models: pd.DataFrame) -> pd.DataFrame:
    """The dial: models of a (language, transformation, corpus setting) that has ALIGN-MLM models, with
    their plain-MLM counterpart of the same protocol and no tag (weight 0)."""
    if "align_weight" not in models or not (models.align_weight > 0).any():
        return pd.DataFrame()
    dialed = models[models.align_weight > 0][["language", "transformation", "corpus_setting"]].drop_duplicates()
    sub = models.merge(dialed, on=["language", "transformation", "corpus_setting"])
    return sub[(sub.align_weight > 0) | ((sub.align_weight == 0) & (sub.tag == ""))].reset_index(drop=True)


def _seed_interval(values: pd.Series, bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float, float, int]:
    """Mean over seeds with a t interval over them cut to ``bounds`` (P@1 and CKA in [0, 1], Delta_Sup in
    [-1, 1]; NaN bounds for one seed), and n."""
    v = values.dropna()
    if len(v) < 2:
        return float(v.mean()) if len(v) else math.nan, math.nan, math.nan, len(v)
    low, high = t_interval(float(v.mean()), float(v.sem()), len(v) - 1)
    return float(v.mean()), max(low, bounds[0]), min(high, bounds[1]), len(v)


def dose_response(dial: pd.DataFrame) -> pd.DataFrame:
    """Per protocol, language, transformation, task and ALIGN-MLM weight: Delta_Sup and the alignment it
    achieved (static P@1 over all pairs, and over pairs held out of the dictionary where there are some),
    each the mean over pretraining seeds with a 95% t interval over them."""
    out = []
    keys = ["protocol", "language", "transformation", "task", "align_weight"]
    for key, g in dial.groupby(keys, sort=True):
        row = dict(zip(keys, key))
        for col in ("delta_sup", "alignment_at_1", "alignment_at_1_heldout"):
            if col in g:
                est, low, high, n = _seed_interval(g.groupby("seed")[col].mean(),
                                                   (-1.0, 1.0) if col == "delta_sup" else (0.0, 1.0))
                row.update({col: est, f"{col}_low": low, f"{col}_high": high})
        row["n_seeds"] = g.seed.nunique()
        out.append(row)
    return pd.DataFrame(out)


def dial_trends(dial: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Delta_Sup against the weight and against the alignment achieved, per protocol, language,
    transformation and task, with 95% intervals over configurations (one per weight): Spearman's rho on
    the weight (plain MLM as weight 0) and on static P@1; OLS and WLS per decade of the weight over the
    positive weights only, and on P@1 over pairs held out of the dictionary."""
    parts = []
    for key, g in dial.groupby(["protocol", "language", "transformation", "task"], sort=False):
        where = dict(zip(["protocol", "language", "transformation", "task"], key))
        every = [m for m in ("align_weight", "alignment_at_1") if m in g and g[m].notna().all()]
        positive = g[g.align_weight > 0]
        dialed = [m for m in ("log10_align_weight", "alignment_at_1_heldout") if m in positive
                  and positive[m].notna().all()]
        for sub, names in ((g, every), (positive, dialed)):
            table, _ = association(sub, names, n_resamples, seed)
            if len(table):
                parts.append(table.assign(**where, models="with plain MLM" if sub is g else "ALIGN-MLM only"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


# ---------------------------------------------------------------------------------------------------
# Alignment over pretraining, and by layer

def _models_once(df: pd.DataFrame) -> pd.DataFrame:
    """Alignment rows once per model: a step shared by several protocols is counted in each variant."""
    df = _with_axes(df)
    a = df[df.task == "alignment"]
    a = a.assign(tag=a.variant.map(lambda v: split_variant(v)[1]))
    return a.drop_duplicates(MODEL + ["metric"])


def _over_seeds(values: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = []
    for key, g in values.groupby(keys, sort=False):
        est, low, high, n = _seed_interval(g.groupby("seed").value.mean())
        out.append({**dict(zip(keys, key)), "value": est, "ci_low": low, "ci_high": high, "n_seeds": n})
    return pd.DataFrame(out)


def training_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Static P@1 at every pretraining snapshot, per configuration: the mean over pretraining seeds with a
    95% t interval over them (``alignment_at_1_step{n}`` rows)."""
    a = _models_once(df)
    steps = a.metric.str.extract(STEP_METRIC, expand=False)
    a = a[steps.notna()].assign(step=steps.dropna().astype(int))
    if a.empty:
        return pd.DataFrame()
    a = a.assign(configuration=[configuration_label(*r) for r in
                                a[["language", "transformation", "corpus_setting", "tag"]].itertuples(index=False)])
    return _over_seeds(a, ["language", "configuration", "step"]).sort_values(["language", "configuration", "step"],
                                                                             kind="stable", ignore_index=True)


def layer_profile(df: pd.DataFrame) -> pd.DataFrame:
    """Contextual P@1 and CKA at every layer, per configuration: mean over pretraining seeds, 95% t interval."""
    a = _models_once(df)
    found = a.metric.str.extract(LAYER_METRIC)
    a = a[found[0].notna()].assign(kind=found[0].dropna(), layer=found[1].dropna().astype(int))
    if a.empty:
        return pd.DataFrame()
    a = a.assign(configuration=[configuration_label(*r) for r in
                                a[["language", "transformation", "corpus_setting", "tag"]].itertuples(index=False)])
    return _over_seeds(a, ["language", "configuration", "kind", "layer"])


def interval_text(table: pd.DataFrame, value: str = "estimate") -> list[str]:
    """``value [ci_low, ci_high]`` for every row (signed, 3 decimals)."""
    from ..stats import format_interval

    return [format_interval(v, lo, hi, signed=True) for v, lo, hi in zip(table[value], table.ci_low, table.ci_high)]
