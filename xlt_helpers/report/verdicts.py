"""Verdicts: a 95% interval against a threshold or a margin."""
from __future__ import annotations

import numpy as np


VERDICTS = ("reproduced", "contradicted", "inconclusive", "not in this grid")


def verdict_above(low: float, high: float, threshold: float) -> str:
    """``reproduced`` when the whole interval is above ``threshold``, ``contradicted`` when it is all
    below, ``inconclusive`` when it straddles it (or is undefined)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    return "reproduced" if low > threshold else "contradicted" if high < threshold else "inconclusive"


def verdict_below(low: float, high: float, threshold: float) -> str:
    return verdict_above(-high, -low, -threshold)


def verdict_within(low: float, high: float, margin: float) -> str:
    """``reproduced`` when the interval lies inside ±margin, ``contradicted`` when it lies wholly outside."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if -margin <= low and high <= margin:
        return "reproduced"
    return "contradicted" if high < -margin or low > margin else "inconclusive"
