"""YAML as the toolkit reads its own files (grids, the language registry): safe, and strict about keys.

PyYAML's safe loader builds plain data only (no object is ever constructed from a tag), but a key
written twice in one mapping silently keeps the last value: a grid with two ``overrides:`` blocks runs
without the first. ``load`` refuses that, naming the file, the line and the key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one mapping; ``line`` is 1-based."""

    def __init__(self, key: Any, line: int, first: int):
        self.key, self.line, self.first = key, line, first
        super().__init__(f"key {key!r} given twice (first on line {first})")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with a repeated key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged keys (<<) may be overridden on purpose: only keys written here count
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class says so
                break
            if first is not None:
                raise DuplicateKeyError(key, key_node.start_mark.line + 1, first)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def load(text: str) -> Any:
    """The data of one YAML document (``yaml.YAMLError`` on bad YAML or a repeated key)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def error_line(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(1-based line or None, what is wrong) of a YAML error, for a one-line message."""
    if isinstance(exc, DuplicateKeyError):
        return exc.line, str(exc)
    mark = getattr(exc, "problem_mark", None)
    return (mark.line + 1 if mark else None), str(getattr(exc, "problem", None) or exc)


def load_file(path: str | Path) -> Any:
    """``load`` of a UTF-8 file."""
    return load(Path(path).read_text(encoding="utf-8"))
