"""Word-order models learned from a UD treebank: how a noun or verb head and its dependents are ordered.

The model (in the spirit of Galactic Dependencies' log-linear ordering model, but with pairwise features only):
for a head of class c (N: NOUN/PROPN/PRON, V: VERB) with elements e_1..e_m (the head itself plus its dependents,
each typed by relation and UPOS), an ordering pi has probability

    P(pi) proportional to  prod over pairs (a before b in pi) of  p_c(type_a precedes type_b)

where p_c(s precedes t) is the relative frequency, over the treebank's heads of class c, of s coming before t when
both occur under one head. Frequencies back off from (relation:subtype, UPOS) to (relation, UPOS) to the bare
relation (pseudo-count KAPPA at each level), and for pairs never seen together to the two types' separate
left-of-head preferences. For two elements it reproduces the treebank's precedence rate exactly; with more, it is a
log-linear model whose features are the pair orders. Dependents of the same type keep their original relative
order (a hard constraint: the model cannot tell them apart).

Cost: exact sampling enumerates all m! orders. It is used up to EXACT_MAX elements (5: 120 orders), and its
distribution is cached per (class, type sequence). Larger heads are sampled by a sequential approximation: the next
element is drawn with weight prod over the still unplaced elements j of p(i precedes j), which is O(m^2).
"""
from __future__ import annotations

import bisect
import itertools
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .tree import NOUN_UPOS, VERB_UPOS, Tree, children_lists

HEAD = "HEAD"
CLASSES = ("N", "V")
KAPPA = 1.0
EXACT_MAX = 5
_CACHE_LIMIT = 200_000
MODEL_FORMAT = 1

# The exact sampler's orders and, for each, the (earlier, later) index pairs it implies.
_PERMS = {m: list(itertools.permutations(range(m))) for m in range(2, EXACT_MAX + 1)}
_PERM_PAIRS = {
    m: [[(p[a], p[b]) for a in range(m) for b in range(a + 1, m)] for p in perms] for m, perms in _PERMS.items()
}


def head_class(upos: str) -> str | None:
    """'N' for nominal heads, 'V' for verbs, None for heads whose dependents are never reordered."""
    if upos in NOUN_UPOS:
        return "N"
    if upos in VERB_UPOS:
        return "V"
    return None


def element_type(deprel: str, upos: str) -> str:
    """The finest type of a dependent: 'relation:subtype|UPOS'."""
    return f"{deprel}|{upos}"


def _backoffs(t: str) -> tuple[str, str, str]:
    """A type at the three levels: full relation + UPOS, base relation + UPOS, base relation."""
    if t == HEAD:
        return HEAD, HEAD, HEAD
    rel, _, upos = t.rpartition("|")
    base = rel.partition(":")[0]
    return t, f"{base}|{upos}", base


@dataclass
class OrderingModel:
    """Precedence counts for one language: counts[c][level][(s, t)] = times type s preceded t under a c head."""

    language: str
    counts: dict[str, list[dict[tuple[str, str], int]]]
    n_trees: int = 0
    _prob: dict[tuple[str, str, str], float] = field(default_factory=dict, repr=False)
    _dist: dict[tuple[str, tuple[str, ...]], tuple[list, list[float]]] = field(default_factory=dict, repr=False)

    def prob(self, cls: str, s: str, t: str) -> float:
        """p(type s precedes type t | head class), backed off and smoothed; p(s,t) + p(t,s) = 1."""
        key = (cls, s, t)
        p = self._prob.get(key)
        if p is None:
            p = self._compute_prob(cls, s, t)
            self._prob[key] = p
            self._prob[(cls, t, s)] = 1.0 - p
        return p

    def _compute_prob(self, cls: str, s: str, t: str) -> float:
        levels = self.counts[cls]
        sb, tb = _backoffs(s), _backoffs(t)
        p = self._side_fallback(cls, sb[2], tb[2])
        for lev in (2, 1, 0):
            table = levels[lev]
            st = table.get((sb[lev], tb[lev]), 0)
            ts = table.get((tb[lev], sb[lev]), 0)
            p = (st + KAPPA * p) / (st + ts + KAPPA)
        return p

    def left_share(self, cls: str, base: str) -> float:
        """Smoothed share of dependents with this bare relation placed before a c head."""
        if base == HEAD:
            return 0.5
        table = self.counts[cls][2]
        left, right = table.get((base, HEAD), 0), table.get((HEAD, base), 0)
        return (left + 1.0) / (left + right + 2.0)

    def _side_fallback(self, cls: str, s: str, t: str) -> float:
        """p(s before t) from where each sits relative to the head, for pairs never seen together."""
        ls, lt = self.left_share(cls, s), self.left_share(cls, t)
        return ls * (1.0 - lt) + 0.5 * (ls * lt + (1.0 - ls) * (1.0 - lt))

    def sample(self, cls: str, types: Sequence[str], rng: random.Random) -> Sequence[int]:
        """A sampled order (indices into `types`, which are given in the original word order)."""
        m = len(types)
        if m <= 1:
            return range(m)
        if m > EXACT_MAX:
            return self._sample_sequential(cls, types, rng)
        key = (cls, tuple(types))
        dist = self._dist.get(key)
        if dist is None:
            dist = self._exact_distribution(cls, key[1])
            if len(self._dist) >= _CACHE_LIMIT:
                self._dist.clear()
            self._dist[key] = dist
        perms, cum = dist
        return perms[bisect.bisect_right(cum, rng.random() * cum[-1])]

    def _pair_matrix(self, cls: str, types: Sequence[str]) -> list[list[float]]:
        """P[i][j] = p(element i precedes element j); same-type elements keep their original order."""
        m = len(types)
        mat = [[0.0] * m for _ in range(m)]
        for i in range(m):
            for j in range(i + 1, m):
                p = 1.0 if types[i] == types[j] else self.prob(cls, types[i], types[j])
                mat[i][j], mat[j][i] = p, 1.0 - p
        return mat

    def _exact_distribution(self, cls: str, types: tuple[str, ...]) -> tuple[list, list[float]]:
        """All orders with non-zero probability and their cumulative (unnormalised) weights."""
        mat = self._pair_matrix(cls, types)
        perms, cum, total = [], [], 0.0
        for perm, pairs in zip(_PERMS[len(types)], _PERM_PAIRS[len(types)]):
            w = 1.0
            for a, b in pairs:
                w *= mat[a][b]
                if w == 0.0:
                    break
            if w > 0.0:
                total += w
                perms.append(perm)
                cum.append(total)
        return perms, cum

    def _sample_sequential(self, cls: str, types: Sequence[str], rng: random.Random) -> list[int]:
        """Approximate sampling for big heads: place elements left to right, each drawn given the unplaced ones."""
        m = len(types)
        mat = self._pair_matrix(cls, types)
        logs = [[math.log(x) if x > 0.0 else -math.inf for x in row] for row in mat]
        score = [sum(logs[i][j] for j in range(m) if j != i) for i in range(m)]
        left = list(range(m))
        out: list[int] = []
        while left:
            top = max(score[i] for i in left)
            weights = [math.exp(score[i] - top) if score[i] > -math.inf else 0.0 for i in left]
            u = rng.random() * sum(weights)
            k = 0
            acc = weights[0]
            while acc < u and k + 1 < len(left):
                k += 1
                acc += weights[k]
            chosen = left.pop(k)
            out.append(chosen)
            for i in left:
                score[i] -= logs[i][chosen]
        return out

    # -- persistence -------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        """A JSON-ready dict (pair keys joined by a tab)."""
        return {
            "format": MODEL_FORMAT,
            "language": self.language,
            "n_trees": self.n_trees,
            "counts": {
                c: [{f"{s}\t{t}": n for (s, t), n in lev.items()} for lev in self.counts[c]] for c in CLASSES
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> "OrderingModel":
        """Inverse of to_json."""
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"ordering model format {data.get('format')!r}, expected {MODEL_FORMAT}")
        counts = {
            c: [{tuple(k.split("\t")): n for k, n in lev.items()} for lev in data["counts"][c]] for c in CLASSES
        }
        return cls(data["language"], counts, data.get("n_trees", 0))  # type: ignore[arg-type]

    def save(self, path: Path) -> None:
        """Write as JSON (atomically)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json()), encoding="utf-8")
        tmp.replace(path)


def learn_ordering_model(language: str, trees: Iterable[Tree]) -> OrderingModel:
    """Count, for every N/V head, which typed element preceded which (all pairs, at the three backoff levels)."""
    counts: dict[str, list[dict[tuple[str, str], int]]] = {c: [{}, {}, {}] for c in CLASSES}
    n_trees = 0
    for tree in trees:
        n_trees += 1
        kids = children_lists(tree.heads)
        for i, upos in enumerate(tree.upos):
            cls = head_class(upos)
            node = i + 1
            if cls is None or not kids[node]:
                continue
            elems = sorted([node] + kids[node])
            typed = [
                _backoffs(HEAD if e == node else element_type(tree.deprels[e - 1], tree.upos[e - 1])) for e in elems
            ]
            levels = counts[cls]
            for a in range(len(typed)):
                for b in range(a + 1, len(typed)):
                    for lev in range(3):
                        key = (typed[a][lev], typed[b][lev])
                        levels[lev][key] = levels[lev].get(key, 0) + 1
    return OrderingModel(language, counts, n_trees)
