"""The findings scorecard: METHOD.md's five findings as tests on the language-averaged cells."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import stats
from ..labels import DEFAULT_VARIANT, PAIR
from .intervals import CELL, stored_interval
from .verdicts import VERDICTS, verdict_above, verdict_below, verdict_within


MARGINS = {
    "near_zero": 0.05,          # finding 1: Delta_Sup of Transliteration within ±0.05 of 0
    "strongly_negative": -0.10,  # finding 1: Delta_Mono of Transliteration below -0.10
    "moderate": -0.25,          # finding 2: Delta_Sup of a word-order change above -0.25
    "order": 0.0,               # findings 2 and 4: an ordering of two Delta_Sup (or alignment) values
    "far_more": -0.05,          # finding 3: a composition's Delta_Sup at least 0.05 below each part's
    "strong_rho": 0.5,          # finding 5: Spearman's rho above 0.5
}


CORPUS_ORDER = ("parallel", "nonparallel", "other_domain")


def components(transformation: str) -> list[str]:
    return [p.split(":", 1)[0] for p in str(transformation).split("+")]


def _is_word_order(transformation: str) -> bool:
    parts = components(transformation)
    return len(parts) == 1 and parts[0] in ("inv", "perm", "syntax")


SCORECARD_COLUMNS = ["finding", "test", "task", "estimate", "ci_low", "ci_high", "criterion", "verdict", "uses"]
# uses: the cells a test is computed from, as (transformation, corpus_setting, task, metric) tuples; the
# chance gate (``chance.gate``) reads it to find the classifiers behind each test.


@dataclass(frozen=True)
class _Used:
    """An interval and the cells it was computed from."""
    iv: "stats.Interval"
    cells: tuple[tuple[str, str, str, str], ...]


def scorecard(cells: pd.DataFrame, correlations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every test of the five findings that the grid allows, one row each: finding, test, task, the
    estimate and its 95% interval, the criterion, and the verdict. ``cells``: ``average_languages``
    output (deltas, and alignment for finding 4); ``correlations``: ``spearman_by_task`` output.
    Differences between two models treat their intervals as independent (``stats.combine``).
    A grid with several variants gets findings 1-4 tested per variant (a ``variant`` column) and
    finding 5 once, over all its models (``all models``)."""

    variants = list(dict.fromkeys(cells.variant)) if "variant" in cells and len(cells) else [DEFAULT_VARIANT]
    parts = []
    for v in variants:
        one = _findings_1_to_4(cells[cells.variant == v] if "variant" in cells else cells)
        parts.append(one.assign(variant=v) if len(variants) > 1 else one)
    rows = []
    for r in (correlations if correlations is not None else pd.DataFrame()).itertuples():  # finding 5
        if r.n_models >= 4:
            iv = stats.Interval(r.spearman_rho, r.ci_low, r.ci_high, np.nan, np.inf, r.n_models, 1, "bootstrap")
            models = cells[(cells.metric == "delta_sup") & (cells.task == r.task)] if len(cells) else cells
            uses = tuple(dict.fromkeys((t, c, r.task, "delta_sup") for t, c in zip(models.transformation,
                                                                                    models.corpus_setting)))
            rows.append(_test_row(5, f"Spearman rho({r.predictor}, Delta_Sup), {r.n_models} models", r.task,
                                  _Used(iv, uses), f"> {MARGINS['strong_rho']}", verdict_above, MARGINS["strong_rho"]))
    five = pd.DataFrame(rows, columns=SCORECARD_COLUMNS)
    parts.append(five.assign(variant="all models") if len(variants) > 1 else five)
    tests = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else five
    if len(variants) > 1:
        tests = tests.reindex(columns=["variant", *SCORECARD_COLUMNS])
    return tests


def _test_row(finding: int, name: str, task: str, used: _Used, criterion: str, verdict_fn, threshold: float) -> dict:
    iv = used.iv
    return {"finding": finding, "test": name, "task": task, "estimate": iv.estimate, "ci_low": iv.low,
            "ci_high": iv.high, "criterion": criterion, "verdict": verdict_fn(iv.low, iv.high, threshold),
            "uses": used.cells}


def _findings_1_to_4(cells: pd.DataFrame) -> pd.DataFrame:
    """The scorecard's tests of findings 1 to 4 on the cells of one variant."""

    rows: list[dict] = []
    cells = cells if len(cells) else pd.DataFrame(columns=CELL + ["value"])

    def get(transformation: str, task: str, metric: str = "delta_sup", corpus: str = "parallel") -> _Used | None:
        c = cells[(cells.transformation == transformation) & (cells.task == task) & (cells.metric == metric)
                  & (cells.corpus_setting == corpus)]
        return _Used(stored_interval(next(c.itertuples())), ((transformation, corpus, task, metric),)) if len(c) else None

    def test(finding: int, name: str, task: str, used: _Used, criterion: str, verdict_fn, threshold: float) -> None:
        rows.append(_test_row(finding, name, task, used, criterion, verdict_fn, threshold))

    def diff(a: _Used, b: _Used) -> _Used:
        return _Used(stats.combine([a.iv, b.iv], [1, -1]), a.cells + b.cells)

    deltas = cells[cells.metric == "delta_sup"]
    tasks = list(dict.fromkeys(deltas.task))
    trs = list(dict.fromkeys(deltas.transformation))
    word_order = [t for t in trs if _is_word_order(t)]
    m = MARGINS
    for task in tasks:  # finding 1
        sup, mono = get("translit", task), get("translit", task, "delta_mono")
        if sup:
            test(1, "Delta_Sup(translit) near 0", task, sup, f"within ±{m['near_zero']}", verdict_within, m["near_zero"])
        if mono:
            test(1, "Delta_Mono(translit) strongly negative", task, mono, f"< {m['strongly_negative']}", verdict_below,
                 m["strongly_negative"])
    for task in tasks:  # finding 2
        got = {t: iv for t in word_order if (iv := get(t, task))}
        for t, iv in got.items():
            test(2, f"Delta_Sup({t}) little to moderate", task, iv, f"> {m['moderate']}", verdict_above, m["moderate"])
        if "perm" in got and "inv" in got:
            test(2, "Delta_Sup(perm) - Delta_Sup(inv): Permutation hurts more", task, diff(got["perm"], got["inv"]),
                 "< 0", verdict_below, m["order"])
        for s in [t for t in got if components(t)[0] == "syntax"]:
            for other in ("inv", "perm"):
                if other in got:
                    test(2, f"Delta_Sup({s}) - Delta_Sup({other}): Syntax hurts least", task, diff(got[s], got[other]),
                         "> 0", verdict_above, m["order"])
    for t in word_order:  # finding 2: NER is the most order-sensitive task
        ner = get(t, "ner")
        for task in tasks:
            other = get(t, task)
            if ner and other and task != "ner":
                test(2, f"Delta_Sup_ner({t}) - Delta_Sup_{task}({t}): NER most order-sensitive", f"ner vs {task}",
                     diff(ner, other), "< 0", verdict_below, m["order"])
    for c in trs:  # finding 3
        parts = str(c).split("+")
        if len(parts) != 2 or "translit" not in parts:
            continue
        x = parts[1] if parts[0] == "translit" else parts[0]
        for task in tasks:
            comp = get(c, task)
            for part in ("translit", x):
                one = get(part, task)
                if comp and one:
                    test(3, f"Delta_Sup({c}) - Delta_Sup({part}): the composition hurts far more", task,
                         diff(comp, one), f"< {m['far_more']}", verdict_below, m["far_more"])
    settings = [s for s in CORPUS_ORDER if s in set(cells.corpus_setting)]
    if len(settings) >= 2:  # finding 4
        for t in sorted(set(cells.transformation) - {"mono", PAIR}):
            for task, metric in [(task, "delta_sup") for task in tasks] + [("alignment", "alignment_at_1")]:
                for better, worse in zip(settings, settings[1:]):
                    a, b = get(t, task, metric, better), get(t, task, metric, worse)
                    if a and b:
                        test(4, f"{metric}({t}): {better} - {worse}", task, diff(a, b), "> 0", verdict_above,
                             m["order"])
    return pd.DataFrame(rows, columns=SCORECARD_COLUMNS)


FINDINGS = {
    1: "Transliteration alone barely hurts zero-shot transfer; Delta_Mono strongly negative",
    2: "Word order with shared vocabulary hurts little to moderately (Perm > Inv > Syntax; NER most)",
    3: "Transliteration composed with a word-order change hurts far more than either alone",
    4: "Transfer and alignment fall from parallel to non-parallel to other-domain corpora",
    5: "Alignment and Delta_Sup correlate strongly across models (Spearman, per task)",
}


def scorecard_summary(tests: pd.DataFrame) -> pd.DataFrame:
    """One verdict per finding (and variant, where ``tests`` has several): ``not in this grid`` without
    tests; ``contradicted`` if any test is; ``reproduced`` if every test is; ``inconclusive`` otherwise;
    with the count of each verdict."""
    by_variant = "variant" in tests and len(tests)
    out = []
    variants = list(dict.fromkeys([*tests.variant, "all models"])) if by_variant else [None]
    for variant in variants:
        for k, text in FINDINGS.items():
            if by_variant and (k == 5) != (variant == "all models"):
                continue
            mine = tests[(tests.finding == k) & ((tests.variant == variant) if by_variant else True)]
            v = mine.verdict if len(tests) else pd.Series(dtype=str)
            counts = v.value_counts()
            verdict = ("not in this grid" if v.empty else "contradicted" if counts.get("contradicted", 0)
                       else "reproduced" if counts.get("reproduced", 0) == len(v) else "inconclusive")
            out.append({**({"variant": variant} if by_variant else {}), "finding": k, "claim": text,
                        "verdict": verdict, "tests": len(v), **{name: int(counts.get(name, 0)) for name in VERDICTS[:3]}})
    return pd.DataFrame(out)
