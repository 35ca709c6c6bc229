"""Reference measurements: what other grids measured at a scale, read from the committed
``docs/results/reference.csv`` and shown in the report only beside this grid's own numbers, each labelled
with the grid, commit and date it comes from.

A row is either a *cell* (``finding`` empty: a transformation x task quantity such as BS, Delta_Sup or
alignment P@1) or a scorecard *test* (``finding`` and ``test`` set, named exactly as ``scorecard``
names it, with the verdict it got). Every number has its 95% interval and n; a test whose interval was
not recorded has only its verdict and says so in ``note``. ``commit`` is the commit that recorded the
numbers in this repository.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import REPO_ROOT
from ..stats import format_interval
from .verdicts import VERDICTS

REFERENCE_FILE = REPO_ROOT / "docs" / "results" / "reference.csv"
COLUMNS = ["scale", "grid", "commit", "date", "split", "language", "finding", "test", "transformation", "task",
           "quantity", "estimate", "ci_low", "ci_high", "n", "n_unit", "pretrain_seeds", "finetune_seeds", "verdict",
           "note"]
REQUIRED = ("scale", "grid", "commit", "date", "language", "transformation", "task", "quantity")
NUMBERS = ("estimate", "ci_low", "ci_high", "n", "pretrain_seeds", "finetune_seeds")


def load_reference(path: str | Path = REFERENCE_FILE) -> pd.DataFrame:
    """The reference rows, checked: every column of ``COLUMNS``, the identifying ones filled, numbers
    numeric, an estimate with both ends of its interval and its n, a test with a known verdict.
    A bad row raises ``ValueError`` naming the file and line."""
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}:1: expected the columns {', '.join(COLUMNS)}; missing {', '.join(missing)}")
        rows = []
        for line, row in enumerate(reader, start=2):
            rows.append(_checked(row, f"{path}:{line}"))
    return pd.DataFrame(rows, columns=COLUMNS)


def _checked(row: dict, where: str) -> dict:
    """One CSV row with its numbers parsed (``ValueError`` at ``where`` otherwise)."""
    for c in REQUIRED:
        if not (row.get(c) or "").strip():
            raise ValueError(f"{where}: expected a value in column {c!r}")
    out = dict(row)
    for c in NUMBERS:
        text = (row.get(c) or "").strip()
        try:
            out[c] = float(text) if text else np.nan
        except ValueError:
            raise ValueError(f"{where}: column {c!r} expected a number, got {text!r}") from None
    if np.isfinite(out["estimate"]) and not (np.isfinite(out["ci_low"]) and np.isfinite(out["ci_high"])
                                             and np.isfinite(out["n"])):
        raise ValueError(f"{where}: an estimate needs its 95% interval (ci_low, ci_high) and n")
    if np.isfinite(out["estimate"]) and not out["ci_low"] <= out["estimate"] <= out["ci_high"]:
        raise ValueError(f"{where}: estimate {out['estimate']} outside its interval [{out['ci_low']}, {out['ci_high']}]")
    finding = (row.get("finding") or "").strip()
    if finding:
        out["finding"] = int(finding) if finding.isdigit() else finding
        if not (row.get("test") or "").strip() or row.get("verdict") not in VERDICTS[:3]:
            raise ValueError(f"{where}: a test row (finding {finding}) needs its test name and a verdict among "
                             f"{', '.join(VERDICTS[:3])}")
    else:
        out["finding"] = None
    return out


def for_scales(reference: pd.DataFrame, scales) -> pd.DataFrame:
    """The reference rows of the grid's scale(s)."""
    return reference[reference.scale.isin(list(dict.fromkeys(scales)))].reset_index(drop=True)


def label(rows: pd.DataFrame) -> list[str]:
    """One line per source: ``reference: grid X at commit Y on date Z`` with its scale, split, languages
    and seeds (what a reader needs to see that the numbers are not this grid's)."""
    out = []
    for (scale, grid, commit, date, split), g in rows.groupby(["scale", "grid", "commit", "date", "split"], sort=False):
        seeds = f"{int(g.pretrain_seeds.max())} pretraining x {int(g.finetune_seeds.max())} fine-tuning seed(s)"
        out.append(f"reference: grid {grid} at commit {commit} on {date} ({scale} scale, {split} split, "
                   f"{', '.join(dict.fromkeys(g.language))}, {seeds}; {len(g)} rows of {REFERENCE_FILE.name})")
    return out


def shown(r) -> str:
    """A reference row as the report prints it: ``estimate [low, high] verdict (grid @ commit, date)``."""
    signed = str(r.quantity).startswith("Delta")  # differences signed, scores and P@1 not
    value = format_interval(r.estimate, r.ci_low, r.ci_high, signed) if np.isfinite(r.estimate) else "no interval recorded"
    verdict = f" {r.verdict}" if isinstance(r.verdict, str) and r.verdict else ""
    return f"{value}{verdict} ({r.grid} @ {r.commit}, {r.date})"


def beside_tests(tests: pd.DataFrame, reference: pd.DataFrame) -> pd.Series:
    """For each scorecard test, the reference test of the same finding, name and task (``shown``; empty
    where none), the language(s) of the reference in the text when there are several."""
    refs = reference[reference.finding.notna()]
    by_key: dict[tuple, list[str]] = {}
    for r in refs.itertuples():
        by_key.setdefault((r.finding, r.test, r.task), []).append(
            shown(r) if refs.language.nunique() == 1 else f"{r.language}: {shown(r)}")
    return pd.Series(["; ".join(by_key.get((t.finding, t.test, t.task), [])) for t in tests.itertuples()],
                     index=tests.index, dtype=str)


def beside_cells(cells: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Every reference cell of the grid's scale beside this grid's own cell of the same transformation,
    task and quantity (language-averaged ``cells``; '–' where this grid has none)."""
    from ..tasks import TASKS

    refs = reference[reference.finding.isna()]
    if refs.empty:
        return pd.DataFrame()
    quantity = {("BS", None): "BS", ("BZ", None): "BZ", ("MZ", None): "MZ", ("delta", "delta_sup"): "Delta_Sup",
                ("delta", "delta_mono"): "Delta_Mono", ("none", "alignment_at_1"): "alignment P@1",
                ("none", "alignment_at_1_procrustes"): "alignment P@1 (Procrustes)"}
    own: dict[tuple, str] = {}
    if len(cells):
        primary = cells.task.map(lambda t: TASKS[t].metric if t in TASKS else None)
        for c, is_primary in zip(cells.itertuples(), primary == cells.metric):
            q = quantity.get((c.setting, None)) if is_primary and c.setting in ("BS", "BZ", "MZ") else \
                quantity.get((c.setting, c.metric))
            if q and c.corpus_setting == "parallel":
                key = (getattr(c, "variant", None), c.transformation, c.task, q)
                own.setdefault(key, format_interval(c.value, c.ci_low, c.ci_high, signed=q.startswith("Delta")))
    variants = list(dict.fromkeys(cells.variant)) if len(cells) and "variant" in cells else [None]
    out = []
    for r in refs.itertuples():
        row = {"transformation": r.transformation, "task": r.task, "quantity": r.quantity}
        for v in variants:
            name = "this grid" if len(variants) == 1 else f"this grid: {v}"
            row[name] = own.get((v, r.transformation, r.task, r.quantity), "–")
        row.update({"reference": shown(r), "reference language": r.language,
                    "n (reference)": f"{int(r.n)} {r.n_unit}"})
        out.append(row)
    return pd.DataFrame(out)
