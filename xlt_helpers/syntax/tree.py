"""The dependency tree value type and small pure helpers over it (children, projectivity, re-indexing)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

NOUN_UPOS = frozenset({"NOUN", "PROPN", "PRON"})
VERB_UPOS = frozenset({"VERB"})


@dataclass(frozen=True)
class Tree:
    """One sentence: words with UPOS, 1-based heads (0 = root) and UD v2 relations, all of equal length."""

    words: tuple[str, ...]
    upos: tuple[str, ...]
    heads: tuple[int, ...]
    deprels: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.words)
        if not (len(self.upos) == len(self.heads) == len(self.deprels) == n):
            raise ValueError(
                f"Tree fields differ in length: words {n}, upos {len(self.upos)}, "
                f"heads {len(self.heads)}, deprels {len(self.deprels)}"
            )
        for i, h in enumerate(self.heads):
            if not 0 <= h <= n or h == i + 1:
                raise ValueError(f"Tree word {i + 1} has invalid head {h} (sentence of {n} words)")

    def __len__(self) -> int:
        return len(self.words)


def make_tree(
    words: Sequence[str], upos: Sequence[str], heads: Sequence[int], deprels: Sequence[str]
) -> Tree:
    """Build a Tree from any sequences (lists from parsers, readers)."""
    return Tree(tuple(words), tuple(upos), tuple(int(h) for h in heads), tuple(deprels))


def children_lists(heads: Sequence[int]) -> list[list[int]]:
    """Children of each node, 0-based node ids; index 0 is the artificial root, word i is node i+1."""
    kids: list[list[int]] = [[] for _ in range(len(heads) + 1)]
    for i, h in enumerate(heads):
        kids[h].append(i + 1)
    return kids


def is_tree(heads: Sequence[int]) -> bool:
    """True when every word reaches the root (0) without a cycle."""
    n = len(heads)
    state = [0] * (n + 1)  # 0 unknown, 1 on current path, 2 known to reach root
    state[0] = 2
    for start in range(1, n + 1):
        path = []
        node = start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node - 1]
        if state[node] == 1:
            return False
        for p in path:
            state[p] = 2
    return True


def is_projective(heads: Sequence[int]) -> bool:
    """True when no two arcs cross (the root arc included)."""
    arcs = [(min(i + 1, h), max(i + 1, h)) for i, h in enumerate(heads)]
    for a, (l1, r1) in enumerate(arcs):
        for l2, r2 in arcs[a + 1 :]:
            if l1 < l2 < r1 < r2 or l2 < l1 < r2 < r1:
                return False
    return True


def subtree_spans_contiguous(heads: Sequence[int]) -> bool:
    """True when every word's subtree occupies a contiguous stretch of positions."""
    kids = children_lists(heads)
    n = len(heads)
    lo = list(range(n + 1))
    hi = list(range(n + 1))
    size = [1] * (n + 1)
    for node in reversed(_preorder(kids)):
        for c in kids[node]:
            lo[node] = min(lo[node], lo[c])
            hi[node] = max(hi[node], hi[c])
            size[node] += size[c]
    return all(hi[v] - lo[v] + 1 == size[v] for v in range(1, n + 1))


def _preorder(kids: list[list[int]]) -> list[int]:
    """Nodes of the tree under the root in pre-order (parents before children)."""
    out, stack = [], [0]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(kids[node])
    return out


def apply_order(tree: Tree, order: Sequence[int]) -> Tree:
    """The tree with its words in `order` (0-based old indices, new position = list position); heads re-indexed."""
    n = len(tree)
    if sorted(order) != list(range(n)):
        raise ValueError(f"order is not a permutation of range({n}): {list(order)[:20]}")
    new_pos = [0] * n
    for new, old in enumerate(order):
        new_pos[old] = new + 1
    heads = tuple(0 if tree.heads[old] == 0 else new_pos[tree.heads[old] - 1] for old in order)
    return Tree(
        tuple(tree.words[o] for o in order),
        tuple(tree.upos[o] for o in order),
        heads,
        tuple(tree.deprels[o] for o in order),
    )
