"""Alignment against transfer: one row per model, OLS and mixed-model regressions, Spearman's rho."""
from __future__ import annotations

import pandas as pd

from ..labels import DEFAULT_VARIANT
from .intervals import ALIGNMENT_N


def alignment_vs_transfer(df: pd.DataFrame) -> pd.DataFrame:
    """One row per model and task (language, transformation, corpus setting, variant, pretraining seed) with
    alignment P@1 (without mapping and after Procrustes) and Delta_Sup, the mean over the model's
    fine-tuning seeds."""
    df = df if "corpus_setting" in df else df.assign(corpus_setting="parallel")
    df = df if "variant" in df else df.assign(variant=DEFAULT_VARIANT)
    keys = ["language", "transformation", "corpus_setting", "variant", "seed", "scale"]
    al = df[df.metric.isin(list(ALIGNMENT_N))].pivot_table(index=keys, columns="metric", values="value").reset_index()
    ds = (df[df.metric == "delta_sup"].groupby(keys + ["task"], as_index=False, sort=False)["value"].mean()
          .rename(columns={"value": "delta_sup"}))
    if al.empty or ds.empty:
        return pd.DataFrame(columns=keys + ["task", "delta_sup", *ALIGNMENT_N])
    al.columns.name = None
    return ds.merge(al, on=keys)


def predictors(models: pd.DataFrame) -> list[str]:
    """The alignment measures (``ALIGNMENT_N``) that ``alignment_vs_transfer`` found in the grid: the
    dictionary and held-out P@1 exist only for models pretrained with a dictionary."""
    return [p for p in ALIGNMENT_N if p in models and models[p].notna().any()]


def _fit_row(fit, predictor: str, **extra) -> dict:
    low, high = fit.conf_int(alpha=0.05).loc[predictor]
    return {**extra, "predictor": predictor, "slope": fit.params[predictor], "ci_low": low, "ci_high": high,
            "p_value": fit.pvalues[predictor], "n": int(fit.nobs)}


def regression_by_task(models: pd.DataFrame, predictor: str = "alignment_at_1") -> pd.DataFrame:
    """OLS of Delta_Sup on ``predictor`` per task (statsmodels): slope, its 95% CI, p, R² and n
    (tasks with fewer than 3 models or a constant predictor are left out)."""
    import statsmodels.formula.api as smf

    out = []
    for task, g in models.dropna(subset=[predictor, "delta_sup"]).groupby("task", sort=False):
        if len(g) >= 3 and g[predictor].nunique() > 1:
            fit = smf.ols(f"delta_sup ~ {predictor}", data=g).fit()
            out.append({**_fit_row(fit, predictor, model="OLS", task=task), "r2": fit.rsquared})
    return pd.DataFrame(out)


def pooled_regression(models: pd.DataFrame, predictor: str = "alignment_at_1") -> pd.DataFrame:
    """Every task in one OLS with task fixed effects (``delta_sup ~ predictor + C(task)``); and, with two
    or more languages, a mixed model with a random intercept per language (statsmodels MixedLM)."""
    import statsmodels.formula.api as smf

    g = models.dropna(subset=[predictor, "delta_sup"])
    if g[predictor].nunique() < 3:  # fewer than 3 distinct models: no slope worth fitting
        return pd.DataFrame()
    formula = f"delta_sup ~ {predictor}" + (" + C(task)" if g.task.nunique() > 1 else "")
    fit = smf.ols(formula, data=g).fit()
    out = [{**_fit_row(fit, predictor, model="OLS, task fixed effects", task="all"), "r2": fit.rsquared}]
    if g.language.nunique() >= 2:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mixed = smf.mixedlm(formula, data=g, groups=g["language"]).fit()
        warned = "with warnings (" + str(caught[0].message).split(";")[0][:60] + ")" if caught else ""
        state = "converged" if mixed.converged else "did not converge"
        out.append({**_fit_row(mixed, predictor, model="MixedLM, random intercept per language", task="all"),
                    "r2": float("nan"), "note": f"{state} {warned}".strip()})
    return pd.DataFrame(out)


def spearman_by_task(models: pd.DataFrame, predictor: str = "alignment_at_1") -> pd.DataFrame:
    """Spearman's rho between ``predictor`` and Delta_Sup per task, with a 95% bootstrap interval over
    models (NaN below 4 models, with a constant variable, or when over 5% of the resamples are all tied:
    ``undefined_resamples``)."""
    from ..stats import spearman_interval

    out = []
    for task, g in models.dropna(subset=[predictor, "delta_sup"]).groupby("task", sort=False):
        rho, low, high, undefined = spearman_interval(g[predictor].to_numpy(), g.delta_sup.to_numpy())
        out.append({"task": task, "predictor": predictor, "n_models": len(g), "spearman_rho": rho,
                    "ci_low": low, "ci_high": high, "undefined_resamples": undefined})
    return pd.DataFrame(out)
