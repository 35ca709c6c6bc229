"""Dependency trees for Syntax: a local parser at a scale's settings, and gold UD trees where task data has them."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

from .data import has_task, normalize_text, task_files
from .run_config import DataConfig

TreeFn = Callable[[Sequence[Sequence[str]]], list]


def tree_parser(language: str, data: DataConfig) -> TreeFn:
    """A function from word lists to trees (``None`` for empty sentences), from the cached local parser
    trained with the ``data`` group's parser settings."""
    from .syntax.parser import ParserOptions, parse

    options = ParserOptions(max_train_sentences=data.parser_sentences, tagger_iterations=data.parser_iterations,
                            parser_iterations=data.parser_iterations)

    def trees(sentences: Sequence[Sequence[str]]) -> list:
        keep = [k for k, s in enumerate(sentences) if len(s)]
        parsed = parse(language, [list(sentences[k]) for k in keep], options) if keep else []
        out: list = [None] * len(sentences)
        for k, t in zip(keep, parsed):
            out[k] = t
        return out

    return trees


def gold_trees(task: str, language: str, split: str) -> dict[tuple[str, ...], object]:
    """The gold UD trees of a task split stored as CoNLL-U, keyed by their words (empty for other formats).

    The words are those the task loader returns for the same sentences (syntactic words, normalised).
    """
    fmt, paths = task_files(task, language, split)
    if fmt != "conllu":
        return {}
    from .syntax.conllu import read_conllu

    return {tuple(normalize_text(w) for w in t.words): t for path in paths for t in read_conllu(path)}


def with_gold_trees(parse: TreeFn, gold: Mapping[tuple[str, ...], object]) -> TreeFn:
    """A tree function that takes a sentence's gold tree when there is one and parses only the others."""
    def trees(sentences: Sequence[Sequence[str]]) -> list:
        out = [gold.get(tuple(s)) for s in sentences]
        missing = [k for k, t in enumerate(out) if t is None]
        if missing:
            for k, t in zip(missing, parse([sentences[k] for k in missing])):
                out[k] = t
        return out

    return trees


def task_trees(task: str, language: str, data: DataConfig) -> TreeFn:
    """Trees for a task's sentences: gold trees where its data comes as CoNLL-U (UD POS), else the parser."""
    gold: dict = {}
    for split in ("train", "test"):
        if has_task(task, language, (split,)):
            gold.update(gold_trees(task, language, split))
    return with_gold_trees(tree_parser(language, data), gold)
