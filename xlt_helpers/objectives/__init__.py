"""Pretraining objectives: what each one needs, and which loss term it adds (README, "Pretraining objectives").

``pretrain.objectives`` lists them; every objective is one term of a step's loss, and the training loop
of ``pretrain.py`` sums the terms with their weights (``pretrain.align_weight`` for ``align``, 1 for the
others):

* ``mlm`` (objectives/mlm.py): cross-entropy of the masked tokens of the packed corpus (the default);
* ``dict_mlm`` (objectives/dict_mlm.py): the same masked positions, where a token in the dictionary is to
  be predicted as its twin with probability ``pretrain.dict_mlm_prob`` (DICT-MLM);
* ``tlm`` (objectives/tlm.py): cross-entropy of the masked tokens of TLM blocks, each sentence beside its
  derived twin (XLM's translation LM); steps alternate between corpus and TLM blocks when ``mlm`` or
  ``dict_mlm`` is on too;
* ``align`` (objectives/align.py): ``-mean cos(E[i], E[j])`` over the dictionary's token pairs of the input
  embeddings, every step (ALIGN-MLM's auxiliary loss).

The dictionary (objectives/dictionary.py) is a derived language's twins or a natural pair's word-pair
file; a seeded share of it is used in training, the rest held out for the alignment step.
This module imports no torch: the run configuration checks the objectives against it.
"""
from __future__ import annotations

from dataclasses import dataclass

# What an objective can need, and how the run configuration says it when it is missing.
NEEDS = {
    "bilingual": "a bilingual model (a data.transformation or data.second_language)",
    "dictionary": "a dictionary: a derived language with Transliteration (each token and its twin) or a "
                  "natural pair with pretrain.dictionary",
    "parallel": "sentence-aligned text: a derived language with token-level steps (inv, perm, translit...) "
                "in data.corpus_setting parallel",
}


@dataclass(frozen=True)
class Objective:
    name: str
    job: str                  # one line: what its loss term is
    needs: tuple[str, ...]    # keys of NEEDS
    blocks: str | None        # the blocks its term is computed on: "corpus", "tlm", or None (embeddings only)


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("mlm", "cross-entropy of the masked tokens of the packed corpus", (), "corpus"),
    Objective("dict_mlm", "the masked tokens of the corpus, those in the dictionary predicted as their twin "
                          "with probability pretrain.dict_mlm_prob", ("bilingual", "dictionary"), "corpus"),
    Objective("tlm", "cross-entropy of the masked tokens of TLM blocks (each sentence beside its derived twin)",
              ("bilingual", "parallel"), "tlm"),
    Objective("align", "-mean cos(E[i], E[j]) of the input embeddings over the dictionary's pairs",
              ("bilingual", "dictionary"), None),
)}
DEFAULT = ("mlm",)

# pretrain fields that only some objectives read: a config that sets one without them is refused
FIELDS: dict[str, tuple[str, ...]] = {
    "align_weight": ("align",),
    "dictionary_fraction": ("align", "dict_mlm"),
    "dictionary": ("align", "dict_mlm"),
    "dict_mlm_prob": ("dict_mlm",),
}


def batch_kinds(objectives: tuple[str, ...]) -> list[str]:
    """The blocks the steps train on, in turn: ``["corpus"]`` (plain MLM), ``["tlm"]`` or ``["corpus", "tlm"]``
    (even steps corpus blocks, odd steps TLM blocks, as XLM alternates MLM and TLM batches)."""
    return [kind for kind in ("corpus", "tlm") if any(OBJECTIVES[o].blocks == kind for o in objectives)]


def needs_dictionary(objectives: tuple[str, ...]) -> bool:
    return any("dictionary" in OBJECTIVES[o].needs for o in objectives)


def weights(objectives: tuple[str, ...], align_weight: float) -> dict[str, float]:
    """The weight of each objective's term in a step's loss."""
    return {o: align_weight if o == "align" else 1.0 for o in objectives}
