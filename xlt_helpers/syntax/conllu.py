"""CoNLL-U reading (UD v1 labels mapped to v2) and writing, for the four columns a Tree keeps.

Why the mapping: the Arabic (PADT v1.3) and Hindi (HDTB 2015) files use UD v1 labels (dobj, nsubjpass, nmod for
oblique nominals, ...); ordering models and parsers must speak one label set or the languages cannot be compared.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from ..errors import DataFormatError
from .tree import Tree, is_tree

# Labels that exist only in UD v1 / only in UD v2 (base relation, before any ':subtype').
V1_ONLY = frozenset({"dobj", "nsubjpass", "csubjpass", "auxpass", "neg", "mwe", "name", "remnant", "foreign"})
V2_ONLY = frozenset({"obj", "obl", "flat", "fixed", "orphan"})

# One-to-one renames from v1 to v2 (nmod and neg depend on context, see v1_to_v2).
V1_RENAMES = {
    "dobj": "obj",
    "nsubjpass": "nsubj:pass",
    "csubjpass": "csubj:pass",
    "auxpass": "aux:pass",
    "mwe": "fixed",
    "name": "flat",
    "foreign": "flat:foreign",
    "remnant": "orphan",
}
# v2 attaches nominal dependents of predicates as obl; v1 used nmod for both.
OBLIQUE_HEAD_UPOS = frozenset({"VERB", "ADJ", "ADV", "AUX"})


def v1_to_v2(deprel: str, upos: str, head_upos: str | None, has_mark: bool = False) -> str:
    """The UD v2 label for a v1 label, given the dependent's UPOS, its head's (None for the root), and whether
    the dependent has a 'mark' child (HDTB v1 labels finite complement clauses 'dobj'; v2 calls them ccomp)."""
    base, _, sub = deprel.partition(":")
    if base == "dobj" and has_mark and upos in ("VERB", "AUX"):
        return "ccomp"
    if base in V1_RENAMES:
        return V1_RENAMES[base] + (f":{sub}" if sub and ":" not in V1_RENAMES[base] else "")
    if base == "neg":
        return "det" if upos == "DET" else "advmod"
    if base == "nmod" and sub != "poss" and head_upos in OBLIQUE_HEAD_UPOS:
        return "obl" + (f":{sub}" if sub else "")
    return deprel


def detect_ud_version(deprels: Iterable[str]) -> int:
    """1 if the labels include a v1-only relation and no v2-only one, else 2."""
    bases = {d.partition(":")[0] for d in deprels}
    return 1 if bases & V1_ONLY and not bases & V2_ONLY else 2


# A raw syntactic word: (form, upos, head, deprel); a range: (first id, last id, surface form).
_Row = tuple[str, str, int, str]
_Range = tuple[int, int, str]


def _raw_sentences(path: Path) -> Iterator[tuple[int, list[_Row], list[_Range]]]:
    """(line of the sentence's first word, syntactic words, multiword ranges) for each sentence; empty nodes skipped."""
    rows: list[_Row] = []
    ranges: list[_Range] = []
    start = 0
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line:
                if rows:
                    yield start, rows, ranges
                rows, ranges = [], []
                continue
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 10:
                raise DataFormatError(path, lineno, "10 tab-separated CoNLL-U columns", line)
            wid = cols[0]
            if "." in wid:  # empty node of enhanced UD
                continue
            if "-" in wid:
                first, _, last = wid.partition("-")
                if not (first.isdigit() and last.isdigit()):
                    raise DataFormatError(path, lineno, "a multiword range like '3-4'", wid)
                ranges.append((int(first), int(last), cols[1]))
                continue
            if not wid.isdigit() or int(wid) != len(rows) + 1:
                raise DataFormatError(path, lineno, f"word id {len(rows) + 1}", wid)
            if not cols[6].isdigit():
                raise DataFormatError(path, lineno, "an integer HEAD", cols[6])
            if not rows:
                start = lineno
            rows.append((cols[1], cols[3], int(cols[6]), cols[7]))
    if rows:
        yield start, rows, ranges


def _relabel(rows: list[_Row]) -> list[_Row]:
    """Rows with v1 labels mapped to v2."""
    marked = {head for _, _, head, rel in rows if rel.partition(":")[0] == "mark"}
    return [
        (form, upos, head, v1_to_v2(rel, upos, rows[head - 1][1] if head else None, i in marked))
        for i, (form, upos, head, rel) in enumerate(rows, 1)
    ]


def _depth(rows: list[_Row], word: int) -> int:
    """Number of arcs from a word up to the root (rows already checked to form a tree)."""
    d = 0
    while word:
        word = rows[word - 1][2]
        d += 1
    return d


def _merge_ranges(rows: list[_Row], ranges: list[_Range]) -> list[_Row]:
    """Rows where each multiword token is one word, speaking for its shallowest member.

    The shallowest member (first on ties) keeps its head, relation and UPOS; arcs into any member go to the token.
    No member can be an ancestor of the shallowest one, so contracting never creates a cycle.
    """
    n = len(rows)
    new_id = [0] * (n + 1)
    starts = {a: (min(b, n), form) for a, b, form in ranges if a <= n}
    merged: list[tuple[str, int]] = []  # (form, representative syntactic id)
    i = 1
    while i <= n:
        last, form = starts.get(i, (i, rows[i - 1][0]))
        members = range(i, last + 1)
        rep = min(members, key=lambda m: (_depth(rows, m), m))
        merged.append((form, rep))
        for m in members:
            new_id[m] = len(merged)
        i = last + 1
    return [
        (form, rows[r - 1][1], new_id[rows[r - 1][2]] if rows[r - 1][2] else 0, rows[r - 1][3]) for form, r in merged
    ]


def read_conllu(path: str | Path, *, ud_version: int | None = None, surface: bool = False) -> Iterator[Tree]:
    """Trees of a CoNLL-U file, labels in UD v2.

    Multiword-token ranges and empty nodes are skipped (syntactic words are kept). With surface=True each multiword
    token becomes one word instead (for parsers that see raw, unsplit text). ud_version None detects v1 files from
    their labels.
    """
    path = Path(path)
    if ud_version is None:
        ud_version = detect_ud_version(_file_deprels(path))
    for lineno, rows, ranges in _raw_sentences(path):
        if any(r[2] > len(rows) for r in rows):
            raise DataFormatError(path, lineno, f"HEAD values up to {len(rows)}", str([r[2] for r in rows])[:80])
        if ud_version == 1:
            rows = _relabel(rows)
        heads = [r[2] for r in rows]
        if not is_tree(heads):
            raise DataFormatError(path, lineno, "HEAD values forming a tree", str(heads)[:80])
        if surface and ranges:
            rows = _merge_ranges(rows, ranges)
            heads = [r[2] for r in rows]
        yield Tree(
            tuple(r[0] for r in rows), tuple(r[1] for r in rows), tuple(heads), tuple(r[3] for r in rows)
        )


def _file_deprels(path: Path) -> set[str]:
    """All DEPREL values of a file (for version detection)."""
    rels: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line and line[0].isdigit():
                cols = line.split("\t")
                if len(cols) > 7:
                    rels.add(cols[7])
    return rels


def to_conllu(trees: Iterable[Tree], forms: Iterable[tuple[str, ...]] | None = None) -> str:
    """CoNLL-U text for trees (LEMMA, XPOS, FEATS, DEPS, MISC left empty); forms optionally overridden."""
    out: list[str] = []
    form_iter = iter(forms) if forms is not None else None
    for tree in trees:
        words = next(form_iter) if form_iter is not None else tree.words
        for i, (w, u, h, d) in enumerate(zip(words, tree.upos, tree.heads, tree.deprels), 1):
            w = w.replace("\t", " ") or "_"
            out.append(f"{i}\t{w}\t_\t{u}\t_\t_\t{h}\t{d}\t_\t_")
        out.append("")
    return "\n".join(out) + ("\n" if out else "")
