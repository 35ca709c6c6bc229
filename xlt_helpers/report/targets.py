"""The `cpu` scale's targets (issue 14): what a CPU model must show for the first finding to be visible."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import stats
from .intervals import stored_interval
from .verdicts import verdict_above


# Issue 14's targets for the `cpu` scale (English, Transliteration): finding 1 visible on a CPU.
CPU_TARGETS = {
    "pos_bz_share": 0.85,   # POS: BZ at least 0.85 x BS
    "pos_bz_over_mz": 0.30,  # POS: BZ - MZ at least 0.3
    "xnli_bs": 0.50,         # XNLI: BS at least 0.50 (chance 0.33)
}


def targets(cells: pd.DataFrame) -> pd.DataFrame:
    """The four targets of the `cpu` scale, per language and variant where ``cells`` has them, each with
    its estimate, 95% interval and verdict (``met`` when the whole interval is on the target's side,
    ``not met`` when it is all on the other, ``unclear`` otherwise). Combinations of two cells treat them
    as independent (``stats.combine``: conservative for BZ and BS, which share test sentences)."""

    t = CPU_TARGETS
    rows = []
    keys = [k for k in ("language", "variant") if k in cells]
    for key, g in (cells.groupby(keys, sort=False) if keys else [((), cells)]):
        where = dict(zip(keys, key if isinstance(key, tuple) else (key,)))

        def get(tr: str, task: str, setting: str, metric: str):
            c = g[(g.transformation == tr) & (g.task == task) & (g.setting == setting) & (g.metric == metric)]
            return stored_interval(next(c.itertuples())) if len(c) else None

        def add(name: str, iv, threshold: float) -> None:
            if iv is not None:
                verdict = verdict_above(iv.low, iv.high, threshold)
                rows.append({**where, "target": name, "estimate": iv.estimate, "ci_low": iv.low, "ci_high": iv.high,
                             "verdict": {"reproduced": "met", "contradicted": "not met"}.get(verdict, "unclear")})

        bz, bs, mz = (get("translit", "pos", s, "accuracy") for s in ("BZ", "BS", "MZ"))
        if bz and bs:
            add(f"POS: BZ - {t['pos_bz_share']} x BS > 0", stats.combine([bz, bs], [1, -t["pos_bz_share"]]), 0.0)
        if bz and mz:
            add(f"POS: BZ - MZ > {t['pos_bz_over_mz']}", stats.combine([bz, mz], [1, -1]), t["pos_bz_over_mz"])
        ner_bz, ner_mz = get("translit", "ner", "BZ", "f1"), get("translit", "ner", "MZ", "f1")
        if ner_bz and ner_mz:
            add("NER: BZ above MZ, intervals apart", _apart(ner_bz, ner_mz), 0.0)
        add(f"XNLI: BS > {t['xnli_bs']}", get("translit", "xnli", "BS", "accuracy"), t["xnli_bs"])
        one, both = get("translit", "pos", "delta", "delta_sup"), get("translit+inv", "pos", "delta", "delta_sup")
        if one and both:
            add("POS: Delta_Sup(translit+inv) below Delta_Sup(translit), intervals apart", _apart(one, both), 0.0)
    return pd.DataFrame(rows)


def _apart(a, b) -> "stats.Interval":  # noqa: F821
    """``a`` against ``b`` as one interval whose low end is above 0 exactly when ``a``'s interval lies wholly
    above ``b``'s (a.low - b.high) and whose high end is below 0 when it lies wholly below."""
    from ..stats import Interval

    return Interval(a.estimate - b.estimate, a.low - b.high, a.high - b.low, np.nan, np.inf, a.n_examples,
                    min(a.n_seeds, b.n_seeds), "one interval against the other")
