"""Galactic-Dependencies-style specs: 'en~fr@N~hi@V' = English words, French noun order, Hindi verb order."""
from __future__ import annotations

import re
from dataclasses import dataclass

_LANG = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
CATEGORIES = {"N": "noun", "V": "verb"}


@dataclass(frozen=True)
class SyntaxSpec:
    """Source language plus the language whose ordering is used for noun heads and for verb heads (None: keep)."""

    source: str
    noun: str | None = None
    verb: str | None = None

    def __str__(self) -> str:
        parts = [self.source]
        if self.noun:
            parts.append(f"{self.noun}@N")
        if self.verb:
            parts.append(f"{self.verb}@V")
        return "~".join(parts)

    @property
    def targets(self) -> tuple[str, ...]:
        """Languages whose ordering models this spec needs."""
        return tuple(dict.fromkeys(t for t in (self.noun, self.verb) if t))


def parse_spec(spec: str) -> SyntaxSpec:
    """Parse 'src~lang@N~lang@V' (either part optional, any order); ValueError naming the problem otherwise."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"syntax spec must be a non-empty string like 'en~fr@N~fr@V', got {spec!r}")
    parts = spec.strip().split("~")
    source = parts[0]
    if not _LANG.match(source):
        raise ValueError(f"bad source language {source!r} in syntax spec {spec!r} (expected e.g. 'en~fr@N~fr@V')")
    chosen: dict[str, str] = {}
    for part in parts[1:]:
        lang, at, cat = part.partition("@")
        if not at:
            raise ValueError(f"component {part!r} of syntax spec {spec!r} lacks '@N' or '@V' (e.g. 'fr@N')")
        if not _LANG.match(lang):
            raise ValueError(f"bad language {lang!r} in component {part!r} of syntax spec {spec!r}")
        if cat not in CATEGORIES:
            raise ValueError(f"unknown category {cat!r} in syntax spec {spec!r}: use N (nouns) or V (verbs)")
        if cat in chosen:
            raise ValueError(f"category @{cat} given twice in syntax spec {spec!r}")
        chosen[cat] = lang
    return SyntaxSpec(source, chosen.get("N"), chosen.get("V"))
