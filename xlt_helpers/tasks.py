"""The task table: every task of the study once, with its kind, labels, the data formats that can serve it,
its fields on the hub and its metrics. Data loading (``data``), fine-tuning (``encoding``, ``finetune``),
planning (``grid.plan``) and the intervals (``report.intervals``) all read ``TASKS``.

Kinds: ``sequence`` (XNLI), ``token`` (NER, POS), ``span`` (extractive QA, ``qa.py``) and ``retrieval``
(Tatoeba, no fine-tuning, ``retrieval.py``). A task may report several metrics (QA: F1 and exact match);
the first is the primary one, used for Delta_Sup and Delta_Mono. Labels are what the data really contains
(``data``'s docstring gives the checks).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .metrics import (ACCURACY, ENTITY_F1, EXACT_MATCH, RETRIEVAL_ACCURACY, RETRIEVAL_BACKWARD, RETRIEVAL_FORWARD,
                      SQUAD_F1, TOKEN_ACCURACY, Metric, Table)

NLI_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
UPOS_TAGS: tuple[str, ...] = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)
NER_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
NO_LABELS: tuple[str, ...] = ()  # span extraction (qa) and retrieval have no label inventory


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: str                      # "sequence", "token", "span" (QA) or "retrieval" (no fine-tuning)
    labels: tuple[str, ...]
    formats: tuple[str, ...]       # data formats of languages.yaml that can serve it
    scorers: tuple[Metric, ...]    # its metrics, the primary one first
    hub_fields: dict[str, str] = field(default_factory=dict)  # default field names on the hub
    bio: bool = False              # labels are BIO tags that must be repaired after reordering

    @property
    def metric(self) -> str:
        """The primary metric's name (the deltas use it)."""
        return self.scorers[0].name

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric's name, the primary one first."""
        return tuple(m.name for m in self.scorers)

    @property
    def finetuned(self) -> bool:
        return self.kind != "retrieval"

    def scorer(self, metric: str) -> Metric:
        """The metric called ``metric`` (``ValueError`` naming the task's metrics otherwise)."""
        for m in self.scorers:
            if m.name == metric:
                return m
        raise ValueError(f"task {self.name!r} has no metric {metric!r}; it has {', '.join(self.metrics)}")

    def score(self, table: Table) -> dict[str, float]:
        """Every metric of a predictions table (``encoding.predictions_table``, ``retrieval_predictions``)."""
        return {m.name: m.score(table) for m in self.scorers}


TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("xnli", "sequence", NLI_LABELS, ("xnli_tsv",), (ACCURACY,),
             {"premise": "premise", "hypothesis": "hypothesis", "label": "label"}),
    TaskSpec("ner", "token", NER_TAGS, ("wikiann_iob", "token_tsv"), (ENTITY_F1,),
             {"words": "tokens", "tags": "ner_tags"}, bio=True),
    TaskSpec("pos", "token", UPOS_TAGS, ("token_tsv", "conllu"), (TOKEN_ACCURACY,),
             {"words": "tokens", "tags": "upos"}),
    TaskSpec("qa", "span", NO_LABELS, ("squad_json",), (SQUAD_F1, EXACT_MATCH),
             {"id": "id", "question": "question", "context": "context", "answers": "answers"}),
    TaskSpec("retrieval", "retrieval", NO_LABELS, ("sentence_per_line",),
             (RETRIEVAL_ACCURACY, RETRIEVAL_FORWARD, RETRIEVAL_BACKWARD)),
)}


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name]
