"""Which UD files train the ordering models and parsers, and which are held out, per language.

Paths are relative to data_dir(). The big canonical train files of GSD, PADT and HDTB could not be staged (see the
data MANIFEST), so smaller treebanks and dev splits stand in:

- en: LinES train + ParTUT train + EWT train (rebuilt from EWT's sources); held out: the three test files.
- fr: Sequoia train + ParTUT train + GSD dev; held out: Sequoia, ParTUT and GSD test.
- ar: PADT UD v1.3 dev (v1 labels, mapped to v2 when read); held out: PADT v1.3 test. Forms are vocalised while
  running Arabic text is not, so the parser strips Arabic diacritics from forms (training and parsing alike).
- hi: HDTB UD v1 (2015) dev (v1 labels, mapped); held out: HDTB v1 test.

Any other language falls back to ud/<lang>/*train*.conllu (else *dev*) for training and *test* (PUD excluded) for
held-out evaluation, so nothing depends on these four.
"""
from __future__ import annotations

from pathlib import Path

from ..config import data_dir

TREEBANKS: dict[str, dict[str, tuple[str, ...] | str | None]] = {
    "en": {
        "train": (
            "ud/en/en_lines-ud-train.conllu",
            "ud/en/en_partut-ud-train.conllu",
            "ud/en/en_ewt-ud-train.conllu",
        ),
        "test": ("ud/en/en_lines-ud-test.conllu", "ud/en/en_partut-ud-test.conllu", "ud/en/en_ewt-ud-test.conllu"),
        "normalize": None,
    },
    "fr": {
        "train": (
            "ud/fr/fr_sequoia-ud-train.conllu",
            "ud/fr/fr_partut-ud-train.conllu",
            "ud/fr/fr_gsd-ud-dev.conllu",
        ),
        "test": (
            "ud/fr/fr_sequoia-ud-test.conllu",
            "ud/fr/fr_partut-ud-test.conllu",
            "ud/fr/fr_gsd-ud-test.conllu",
        ),
        "normalize": None,
    },
    "ar": {
        "train": ("ud/ar/ar_padt-ud1.3-2016-dev.conllu",),
        "test": ("ud/ar/ar_padt-ud1.3-2016-test.conllu",),
        "normalize": "strip_arabic_diacritics",
    },
    "hi": {
        "train": ("ud/hi/hi_hdtb-ud1-2015-dev.conllu",),
        "test": ("ud/hi/hi_hdtb-ud1-2015-test.conllu",),
        "normalize": None,
    },
}


def treebank_files(language: str, split: str) -> list[Path]:
    """Absolute paths of a language's 'train' or 'test' CoNLL-U files; FileNotFoundError if there are none."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = data_dir()
    entry = TREEBANKS.get(language)
    if entry is not None:
        paths = [root / p for p in entry[split]]  # type: ignore[union-attr]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"UD files for {language} {split} are missing: {', '.join(missing)}")
        return paths
    folder = root / "ud" / language
    found = sorted(p for p in folder.glob(f"*{split}*.conllu") if "_pud-" not in p.name)
    if not found and split == "train":
        found = sorted(p for p in folder.glob("*dev*.conllu") if "_pud-" not in p.name)
    if not found:
        raise FileNotFoundError(f"no UD {split} files for language {language!r} under {folder}")
    return found


def form_normalizer(language: str) -> str | None:
    """Name of the form normalisation the parser applies for this language (None: forms as they are)."""
    entry = TREEBANKS.get(language)
    return entry.get("normalize") if entry else None  # type: ignore[return-value]
