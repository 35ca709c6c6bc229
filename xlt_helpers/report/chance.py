"""Classifiers that learned nothing: each evaluation's chance level, the runs that collapsed to one
output, and the gate that turns a scorecard test built on such a classifier into ``inconclusive``.

A Delta_Sup computed from a classifier that never learned its task says nothing about transfer: both
sides sit at chance and the difference is near 0, which the scorecard would read as "transfer as good as
supervision". The rule (docs/report.md, "Classifiers at chance"):

* **chance** of an evaluation is the score of the best constant predictor: the most frequent gold output
  (XNLI: label; NER, POS: tag; QA: answer text) predicted for every example, scored by the task's primary
  metric on the same test set. XNLI: the majority class share (1/3 on a balanced set); POS: the majority
  tag's share; NER: 0 (all ``O`` finds no entity); QA: about 0.
* a run **collapsed** when one of its evaluations predicts a single output for every example (every
  scored token).
* each fine-tuned classifier is judged on its own language's test set, where it was supervised: BS on
  the derived test set (setting ``BS``), BZ on the original (``orig``), MZ (the monolingual model) on the
  original (the ``mono`` cells' ``orig``). A classifier passes when the lower end of its cell's 95%
  interval is above chance and none of its runs collapsed there. Zero-shot evaluations (BZ and MZ on the
  derived test set) may sit at chance: that is a measurement of transfer, not a broken classifier.
* a test whose Delta_Sup (BZ - BS) or Delta_Mono (MZ - BZ) uses a classifier that does not pass is
  ``inconclusive``, and its ``why`` says which classifier and why.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..labels import DEFAULT_VARIANT, MONO, PREDICTIONS
from ..storage import read_json

# The fine-tuned classifier an evaluation (setting of a transfer step) comes from, and whether the test set
# is its own language's (supervised) or the other one (zero-shot). The monolingual step's ``orig`` is MZ's own.
CLASSIFIER = {"BS": ("BS", True), "orig": ("BZ", True), "BZ": ("BZ", False), "MZ": ("MZ", False)}
# Which classifiers each delta is computed from.
DELTA_CLASSIFIERS = {"delta_sup": ("BZ", "BS"), "delta_mono": ("MZ", "BZ")}
CHECK_COLUMNS = ["step", "language", "transformation", "corpus_setting", "variant", "task", "seed", "finetune_seed",
                 "setting", "classifier", "supervised", "score", "chance", "distinct_outputs", "top_output",
                 "top_share", "collapsed"]


def _flat(outputs: Iterable, kind: str) -> list:
    """Every scored output: one per example (XNLI, QA), one per token (NER, POS)."""
    if kind == "token":
        return [tag for sentence in outputs for tag in sentence]
    return [tuple(o) if isinstance(o, list) else o for o in outputs]


def constant_score(task: str, gold: list) -> float:
    """The task's primary metric of the best constant predictor on ``gold``: its most frequent output
    (QA: the most frequent first gold answer) predicted for every example, or every token."""
    from ..tasks import TASKS

    spec = TASKS[task]
    if not gold:
        return float("nan")
    if spec.kind == "token":
        top = Counter(_flat(gold, "token")).most_common(1)[0][0]
        pred = [[top] * len(g) for g in gold]
    elif spec.kind == "span":
        top = Counter(g[0] for g in gold if g).most_common(1)[0][0] if any(gold) else ""
        pred = [top] * len(gold)
    else:
        top = Counter(gold).most_common(1)[0][0]
        pred = [top] * len(gold)
    return float(spec.score({"pred": pred, "gold": gold})[spec.metric])


def evaluation_check(task: str, table: dict[str, list]) -> dict:
    """One evaluation (a setting's ``predictions_table``): its score, chance level, how many distinct
    outputs it predicted, the most frequent one and its share, and whether it collapsed (one output)."""
    from ..tasks import TASKS

    spec = TASKS[task]
    outputs = _flat(table["pred"], spec.kind)
    counts = Counter(outputs)
    top, top_n = counts.most_common(1)[0] if counts else (None, 0)
    return {"score": float(spec.score(table)[spec.metric]), "chance": constant_score(task, table["gold"]),
            "distinct_outputs": len(counts), "top_output": top if top is None or isinstance(top, (str, int)) else str(top),
            "top_share": top_n / len(outputs) if outputs else float("nan"), "collapsed": len(counts) == 1}


def step_checks(step_dir: str | Path) -> list[dict]:
    """``evaluation_check`` of every setting in a step's ``predictions.json.gz`` (none without it, or for
    steps that fine-tune nothing: alignment, retrieval)."""
    from ..tasks import TASKS

    path = Path(step_dir) / PREDICTIONS
    if not path.exists():
        return []
    saved = read_json(path)
    task = saved.get("task")
    if task not in TASKS or not TASKS[task].finetuned:
        return []
    return [{"setting": setting, **evaluation_check(task, table)} for setting, table in saved["settings"].items()]


def classifier_checks(df: pd.DataFrame, runs_dir: str | Path) -> pd.DataFrame:
    """``step_checks`` of every fine-tuning step in ``results.csv`` (``df``), one row per step, variant and
    setting, with the run's cell (language, transformation, corpus setting, variant, task, seeds) and the
    classifier it evaluates (``CLASSIFIER``)."""
    from ..tasks import TASKS

    out = []
    tuned = df[df.task.isin([t for t, spec in TASKS.items() if spec.finetuned]) & (df.setting != "delta")]
    keys = ["step", "language", "transformation", "corpus_setting", "variant", "task", "seed", "finetune_seed"]
    runs = tuned.drop_duplicates(["step", "variant"])[keys] if len(tuned) else pd.DataFrame(columns=keys)
    for run in runs.to_dict("records"):
        for check in step_checks(Path(runs_dir) / run["step"]):
            mono = run["transformation"] == MONO
            classifier, supervised = ("MZ", True) if mono else CLASSIFIER.get(check["setting"], (check["setting"], False))
            out.append({**run, **check, "classifier": classifier, "supervised": supervised})
    return pd.DataFrame(out, columns=CHECK_COLUMNS)


def classifier_health(cells: pd.DataFrame, checks: pd.DataFrame) -> pd.DataFrame:
    """Per classifier (transformation, corpus setting, variant, task; BS, BZ or MZ), judged on its own
    language's test set: its score cell with the 95% interval (language-averaged ``cells``), the mean
    chance level of its runs, whether the interval is above chance, and how many of its runs collapsed.
    ``passes``: above chance and no collapsed run. MZ rows carry the transformation ``mono``."""
    from ..tasks import TASKS

    own = checks[checks.supervised] if len(checks) else checks
    if own.empty or cells.empty:
        return pd.DataFrame(columns=["transformation", "corpus_setting", "variant", "task", "classifier", "value",
                                     "ci_low", "ci_high", "n_runs", "chance", "collapsed_runs", "above_chance", "passes"])
    keys = ["transformation", "corpus_setting", "variant", "task", "classifier"]
    primary = cells.task.map(lambda t: TASKS[t].metric if t in TASKS else None)
    scores = cells[(cells.metric == primary) & cells.setting.isin(["BS", "orig"])]
    scores = scores.assign(classifier=np.where(scores.transformation == MONO, "MZ",
                                               scores.setting.map({"BS": "BS", "orig": "BZ"})))
    runs = own.assign(variant=own.variant.fillna(DEFAULT_VARIANT)).groupby(keys, sort=False).agg(
        chance=("chance", "mean"), collapsed_runs=("collapsed", "sum"), n_runs=("collapsed", "size")).reset_index()
    health = runs.merge(scores[keys + ["value", "ci_low", "ci_high"]], on=keys, how="left")
    health = health.assign(above_chance=health.ci_low > health.chance, collapsed_runs=health.collapsed_runs.astype(int))
    return health.assign(passes=health.above_chance & (health.collapsed_runs == 0))


def _name(h) -> str:
    """A classifier in a few words: ``BZ of translit (pos)``, with its variant where it is not the default."""
    return f"{h.classifier} of {h.transformation} ({h.task}" + (f", {h.variant}" if h.variant != DEFAULT_VARIANT else "") + ")"


def _why(h) -> str:
    """Why a classifier does not pass, in words, with its numbers."""
    where = _name(h)
    reasons = []
    if not h.above_chance:
        reasons.append(f"{h.value:.3f} [{h.ci_low:.3f}, {h.ci_high:.3f}] not above chance {h.chance:.3f}"
                       if np.isfinite(h.value) else "no score on its own test set")
    if h.collapsed_runs:
        reasons.append(f"{h.collapsed_runs} of {h.n_runs} runs predict one class")
    return f"{where}: {' and '.join(reasons)}"


def gate(tests: pd.DataFrame, health: pd.DataFrame) -> pd.DataFrame:
    """``tests`` (``scorecard.scorecard``) with each test built on a classifier that does not pass made
    ``inconclusive``: ``why`` says which classifier and why, ``gated_by`` names the classifiers only, and
    ``verdict_before_gate`` keeps the interval's own verdict. Tests of alignment alone use no classifier
    and pass through."""
    if tests.empty:
        return tests.assign(why=pd.Series(dtype=str), gated_by=pd.Series(dtype=str),
                            verdict_before_gate=pd.Series(dtype=str))
    keyed = {} if health.empty else {(h.transformation, h.corpus_setting, h.variant, h.task, h.classifier): h
                                     for h in health.itertuples()}
    whys, names = [], []
    for t in tests.itertuples():
        variant = getattr(t, "variant", None)  # no column: a grid of one variant
        variants = None if variant in (None, "all models") else {variant}
        reasons, failing = [], []
        for transformation, corpus, task, metric in (t.uses or ()):
            for classifier in DELTA_CLASSIFIERS.get(metric, ()):
                model = MONO if classifier == "MZ" else transformation
                for key, h in keyed.items():
                    if (key[0], key[3], key[4]) == (model, task, classifier) and (model == MONO or key[1] == corpus) \
                            and (variants is None or key[2] in variants) and not h.passes:
                        reasons.append(_why(h))
                        failing.append(_name(h))
        whys.append("; ".join(dict.fromkeys(reasons)))
        names.append(", ".join(dict.fromkeys(failing)))
    gated = pd.Series(whys, index=tests.index).ne("")
    return tests.assign(verdict_before_gate=tests.verdict, why=whys, gated_by=names,
                        verdict=tests.verdict.where(~gated, "inconclusive"))


def collapsed_runs(checks: pd.DataFrame) -> pd.DataFrame:
    """The evaluations that predicted a single output for every example, own test set or zero-shot: the
    report's table of collapsed runs (a collapsed BZ or MZ on the derived test set alone does not gate)."""
    if checks.empty:
        return checks
    return checks[checks.collapsed].reset_index(drop=True)
