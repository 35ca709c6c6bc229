"""Dependency trees for text that has none, at the parser settings of a scale (for Syntax)."""
from __future__ import annotations

from typing import Callable, Sequence

from .scales import Scale

TreeFn = Callable[[Sequence[Sequence[str]]], list]


def tree_parser(language: str, scale: Scale) -> TreeFn:
    """A function from word lists to trees (``None`` for empty sentences), from the cached local parser."""
    from .syntax.parser import ParserOptions, parse

    options = ParserOptions(max_train_sentences=scale.parser_sentences, tagger_iterations=scale.parser_iterations,
                            parser_iterations=scale.parser_iterations)

    def trees(sentences: Sequence[Sequence[str]]) -> list:
        keep = [k for k, s in enumerate(sentences) if len(s)]
        parsed = parse(language, [list(sentences[k]) for k in keep], options) if keep else []
        out: list = [None] * len(sentences)
        for k, t in zip(keep, parsed):
            out[k] = t
        return out

    return trees
