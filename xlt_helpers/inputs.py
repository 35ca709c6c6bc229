"""The files a pretraining reads, listed once: the corpus code opens the corpora of this list, and the
model folder's key (``grid.keys.pretraining_data_key``) hashes the content of everything on it, so a
new input of the corpus code cannot be missed by the key."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .run_config import RunConfig


@dataclass(frozen=True)
class Corpus:
    """A registered pretraining corpus: ``languages.yaml``'s ``pretrain`` (domain ``main``) or
    ``pretrain_<domain>`` entry of ``language``."""

    language: str
    domain: str = "main"


@dataclass(frozen=True)
class PretrainingInputs:
    corpora: tuple[Corpus, ...]   # the main corpus of each language, then the derived side's own corpus (if any)
    treebanks: bool               # Syntax: the UD treebanks (its parser; the word orders it borrows)
    dictionary: Path | None       # a natural pair's word-pair file (pretrain.dictionary)

    @property
    def main(self) -> list[Corpus]:
        """The corpora the tokenizer is trained on, one a language, in order."""
        return [c for c in self.corpora if c.domain == "main"]

    @property
    def derived_source(self) -> Corpus | None:
        """The corpus the derived language is made from when it is not the original's (other_domain)."""
        return next((c for c in self.corpora if c.domain != "main"), None)


def pretraining_inputs(cfg: RunConfig) -> PretrainingInputs:
    """What the pretraining of ``cfg`` reads: its languages' corpora (and the other-domain corpus of the
    ``other_domain`` setting), the treebanks when the derived language reorders by syntax, and a natural
    pair's dictionary file."""
    from .transformations import traits

    d, kind = cfg.data, cfg.data.model_kind
    corpora = [Corpus(d.language)] + ([Corpus(d.second_language)] if kind == "pair" else [])
    if kind == "derived" and d.corpus_setting == "other_domain":
        corpora.append(Corpus(d.language, "other_domain"))
    dictionary = None
    if cfg.pretrain.dictionary is not None:
        from .objectives.dictionary import file_path

        dictionary = file_path(cfg.pretrain.dictionary, d.language, d.second_language)
    return PretrainingInputs(tuple(corpora), kind == "derived" and traits(d.transformation).needs_tree, dictionary)
