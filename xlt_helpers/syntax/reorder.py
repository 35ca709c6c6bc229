"""Re-linearise a dependency tree with another language's noun and verb ordering.

Every head is placed among its dependents, and every dependent's whole subtree moves as one block, so the result is
projective (a non-projective input comes out projectivised). Noun heads follow the spec's @N language, verb heads its
@V language; other heads, and heads whose category the spec leaves out, keep their original order. Words are only
permuted. The random draws are seeded from (seed, the sentence's words and arcs), so a call is deterministic while
different sentences under one seed still get independent draws.
"""
from __future__ import annotations

import hashlib
import random
from typing import Mapping

from .model import HEAD, OrderingModel, head_class
from .spec import SyntaxSpec, parse_spec
from .store import load_ordering_model
from .tree import Tree


def _models_for(spec: SyntaxSpec, models: Mapping[str, OrderingModel] | None) -> dict[str, OrderingModel]:
    """Head class -> ordering model, for the classes the spec reorders."""
    out: dict[str, OrderingModel] = {}
    for cls, lang in (("N", spec.noun), ("V", spec.verb)):
        if lang:
            out[cls] = models[lang] if models is not None and lang in models else load_ordering_model(lang)
    return out


def sentence_seed(tree: Tree, seed: int) -> int:
    """A stable 64-bit seed from the run seed and the tree (independent of Python's hash randomisation)."""
    text = "\x1f".join(tree.words) + "\x1e" + ",".join(map(str, tree.heads)) + "\x1e" + str(seed)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def reorder(
    tree: Tree, spec: SyntaxSpec | str, seed: int, *, models: Mapping[str, OrderingModel] | None = None
) -> list[int]:
    """The new word order as 0-based old indices (new position = list position); `models` overrides loading."""
    if isinstance(spec, str):
        spec = parse_spec(spec)
    n = len(tree.words)
    by_class = _models_for(spec, models)
    if not by_class or n < 2:
        return list(range(n))
    heads, upos, deprels = tree.heads, tree.upos, tree.deprels
    kids: list[list[int]] = [[] for _ in range(n + 1)]
    for i, h in enumerate(heads):
        kids[h].append(i + 1)
    rng = random.Random(sentence_seed(tree, seed))
    out: list[int] = []
    # Stack entries: node > 0 to expand, -node to emit (the head itself, once its dependents are arranged).
    stack = list(reversed(kids[0]))
    while stack:
        node = stack.pop()
        if node < 0:
            out.append(-node - 1)
            continue
        deps = kids[node]
        if not deps:
            out.append(node - 1)
            continue
        elems = deps[:]
        bisect_insert(elems, node)
        cls = head_class(upos[node - 1])
        model = by_class.get(cls) if cls else None
        if model is not None:
            types = [HEAD if e == node else f"{deprels[e - 1]}|{upos[e - 1]}" for e in elems]
            elems = [elems[k] for k in model.sample(cls, types, rng)]  # type: ignore[arg-type]
        for e in reversed(elems):
            stack.append(-e if e == node else e)
    return out


def bisect_insert(sorted_ids: list[int], x: int) -> None:
    """Insert x into an ascending list in place (dependent lists are short)."""
    k = len(sorted_ids)
    while k and sorted_ids[k - 1] > x:
        k -= 1
    sorted_ids.insert(k, x)
