"""Derived languages: Inversion, Permutation, Transliteration and their compositions.

Every transformation is a pure function of one sentence. Reorderings are expressed as an *order*
(a permutation of positions), so the same order can be applied to the tokens and to anything attached
to them (labels, word indices): labels stay with their tokens by construction.

Token ids follow the tokenizer's layout: ids ``0 .. N_SPECIAL-1`` are special tokens
(``<s> <pad> </s> <unk> <mask>``), ids ``N_SPECIAL .. V-1`` are sub-words. Transliteration maps a
sub-word ``i`` to ``i + V`` (a disjoint vocabulary of the same size), so a bilingual model with
Transliteration has ``2V`` embeddings.
"""
from __future__ import annotations

import _random
import hashlib
import itertools
import random
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

import numpy as np

T = TypeVar("T")

BOS, PAD, EOS, UNK, MASK = 0, 1, 2, 3, 4
N_SPECIAL = 5
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
SHIFTABLE_SPECIALS = (BOS, PAD, EOS, UNK)  # the mask token always stays shared


# --------------------------------------------------------------------------------------------
# Pure functions on one sentence
# --------------------------------------------------------------------------------------------
def invert(seq: Sequence[T]) -> list[T]:
    """Inversion: the sentence read backwards."""
    return list(seq)[::-1]


def invert_order(n: int) -> list[int]:
    """Positions of an inverted sentence of length ``n``."""
    return list(range(n - 1, -1, -1))


def sentence_seed(seed: int, tokens: Sequence[int]) -> int:
    """A per-sentence seed that depends only on the global seed and the sentence's content.

    The same sentence is therefore shuffled the same way wherever it occurs (pretraining corpus,
    task data), which makes Permutation a well-defined language, reproducible from ``seed``.
    """
    h = hashlib.blake2b(np.asarray(tokens, dtype=np.int64).tobytes(), digest_size=8,
                        key=int(seed).to_bytes(8, "little", signed=True))
    return int.from_bytes(h.digest(), "little")


def permute_order(n: int, seed: int) -> list[int]:
    """A uniformly random order of ``n`` positions, fully determined by ``seed``."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def permute(seq: Sequence[T], seed: int) -> list[T]:
    """Permutation: the sentence's items shuffled reproducibly from ``seed``."""
    return apply_order(seq, permute_order(len(seq), seed))


def apply_order(seq: Sequence[T], order: Sequence[int]) -> list[T]:
    """Reorder ``seq`` so that position ``k`` holds ``seq[order[k]]``."""
    return [seq[i] for i in order]


def word_level_order(word_ids: Sequence[int], word_order: Sequence[int]) -> list[int]:
    """Lift an order over words to an order over their sub-word tokens (sub-words keep their order)."""
    groups: dict[int, list[int]] = {}
    for pos, w in enumerate(word_ids):
        groups.setdefault(w, []).append(pos)
    return [pos for w in word_order for pos in groups.get(w, ())]


def transliteration_table(vocab_size: int, fraction: float = 1.0, seed: int = 0,
                          shift_special: bool = False) -> np.ndarray:
    """The id map of (partial) Transliteration: ``table[i]`` is the derived id of original id ``i``.

    Exactly ``round(fraction * (V - N_SPECIAL))`` sub-word types are moved to ``i + V`` (chosen without
    replacement from ``seed``); the rest stay shared. Specials other than ``<mask>`` move only with
    ``shift_special``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"transliteration fraction must be in [0, 1], got {fraction}")
    table = np.arange(vocab_size, dtype=np.int64)
    words = np.arange(N_SPECIAL, vocab_size)
    k = int(round(fraction * len(words)))
    if k == len(words):
        chosen = words
    else:
        chosen = np.random.default_rng(seed).choice(words, size=k, replace=False)
    table[chosen] += vocab_size
    if shift_special:
        table[list(SHIFTABLE_SPECIALS)] += vocab_size
    return table


def transliterate(tokens: Sequence[int], table: np.ndarray) -> list[int]:
    """Transliteration: every token id replaced by its twin in the derived vocabulary."""
    return table[np.asarray(tokens, dtype=np.int64)].tolist() if len(tokens) else []


# --------------------------------------------------------------------------------------------
# The same functions on a whole corpus at once (pretraining data): one flat array of all tokens,
# sentence ``s`` at ``flat[starts[s] : starts[s] + lengths[s]]``. A reordering returns a gather
# index ``idx`` such that ``flat[idx]`` holds every sentence reordered exactly as the per-sentence
# function reorders it (tests/test_transformations.py checks the equality).
# --------------------------------------------------------------------------------------------
def invert_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Gather index of Inversion applied to every sentence."""
    total = int(lengths.sum())
    return np.repeat(2 * starts + lengths - 1, lengths) - np.arange(total, dtype=np.int64)


PERM_EXTRA_DRAWS = 16  # generator outputs drawn beyond 2(n-1) per sentence (a sentence needing more is redone alone)


def permute_index(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray, seed: int) -> np.ndarray:
    """Gather index of Permutation: ``permute(s, sentence_seed(seed, s))`` for every sentence ``s``.

    ``random.Random(seed).shuffle`` is reproduced bit for bit: each sentence's generator is seeded by
    CPython itself and its raw 32-bit outputs taken with one ``getrandbits`` call; the Fisher-Yates
    swaps with ``_randbelow``'s rejection sampling (``getrandbits(k) = output >> (32 - k)``, redrawn
    while ``>= i + 1``) then run for all sentences in lock-step with numpy. A sentence whose draws
    run out is permuted by the per-sentence function instead. Seeding (CPython's init_by_array) is
    the floor of the cost: a few microseconds per sentence.
    """
    flat = np.ascontiguousarray(flat, dtype=np.int64)
    idx = np.arange(len(flat), dtype=np.int64)
    rows = np.flatnonzero(lengths > 1)
    if not len(rows):
        return idx
    rows = rows[np.argsort(-lengths[rows], kind="stable")]  # longest first: the rows still shuffling are a prefix
    n, st = lengths[rows].astype(np.int64), starts[rows].astype(np.int64)
    draws = np.maximum(2 * (n - 1) + PERM_EXTRA_DRAWS, 1)
    buf = memoryview(flat).cast("B")
    key = int(seed).to_bytes(8, "little", signed=True)
    gen, reseed, getrandbits = _random.Random(), _random.Random.seed, _random.Random.getrandbits
    blake, from_bytes = hashlib.blake2b, int.from_bytes
    words = []
    for s, k, d in zip(st.tolist(), n.tolist(), draws.tolist()):  # == sentence_seed + random.Random(seed)
        reseed(gen, from_bytes(blake(buf[8 * s: 8 * (s + k)], digest_size=8, key=key).digest(), "little"))
        words.append(getrandbits(gen, 32 * d).to_bytes(4 * d, "little"))
    raw = np.frombuffer(b"".join(words), dtype="<u4").astype(np.int64)
    end = np.cumsum(draws)
    ptr = end - draws                      # next output of each sentence
    last = len(raw) - 1
    off = np.cumsum(n) - n                 # each sentence's slice of X
    X = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(off, n)  # the orders being shuffled: 0..n-1
    shift = np.array([32] + [32 - m.bit_length() for m in range(1, int(n[0]) + 1)], dtype=np.int64)
    neg = -n
    for t in range(int(n[0]) - 1):        # shuffle's loop: i = n-1-t down to 1, j = randbelow(i + 1)
        a = int(np.searchsorted(neg, -(t + 2), side="right"))  # sentences with i >= 1
        m = n[:a] - t                      # i + 1
        sh = shift[m]
        p = ptr[:a]
        r = raw[p] >> sh
        bad = np.flatnonzero(r >= m)
        while len(bad):                    # rejection: draw again (stop at the end of a sentence's draws)
            pb = np.minimum(p[bad] + 1, end[bad])
            p[bad] = pb
            rb = raw[np.minimum(pb, last)] >> sh[bad]
            r[bad] = rb
            bad = bad[(rb >= m[bad]) & (pb < end[bad])]
        p += 1
        fi, fj = off[:a] + m - 1, off[:a] + r
        xi = X[fi]
        X[fi] = X[fj]
        X[fj] = xi
    ok = ptr <= end                        # every output read was the sentence's own
    pos = np.arange(len(X), dtype=np.int64) - np.repeat(off, n)
    base = np.repeat(st, n)
    keep = np.repeat(ok, n)
    idx[(base + pos)[keep]] = (base + X)[keep]
    for r_ in np.flatnonzero(~ok).tolist():
        s, k = int(st[r_]), int(n[r_])
        idx[s:s + k] = s + np.asarray(permute_order(k, sentence_seed(seed, flat[s:s + k].tolist())), dtype=np.int64)
    return idx


# --------------------------------------------------------------------------------------------
# Composable derived languages
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    """One sentence as the transformations see it.

    ``tokens``: sub-word ids (no sentence specials). ``word_ids``: the word each token belongs to.
    ``labels``: anything attached to tokens (task labels), moved with them. ``tree``: an optional
    dependency tree over the words, needed only by word-order transformations such as Syntax.
    """

    tokens: tuple[int, ...]
    word_ids: tuple[int, ...] | None = None
    labels: tuple | None = None
    tree: object | None = None

    def reordered(self, order: Sequence[int]) -> "Segment":
        return Segment(
            tokens=tuple(apply_order(self.tokens, order)),
            word_ids=None if self.word_ids is None else tuple(apply_order(self.word_ids, order)),
            labels=None if self.labels is None else tuple(apply_order(self.labels, order)),
            tree=self.tree,
        )


@dataclass(frozen=True)
class Step:
    """One transformation in a composition: either a reordering or an id map."""

    name: str
    order: Callable[[Segment], list[int]] | None = None  # reorderings
    table: np.ndarray | None = field(default=None, compare=False)  # transliteration
    needs_tree: bool = False  # the order is computed from the segment's dependency tree (Syntax)
    # token-level reorderings only: (flat, starts, lengths) -> gather index over a whole corpus
    corpus_order: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = field(default=None,
                                                                                          compare=False)

    @property
    def corpus_level(self) -> bool:
        """Whether ``DerivedLanguage.transform_corpus`` can run this step on a whole corpus at once."""
        return self.table is not None or self.corpus_order is not None

    def __call__(self, seg: Segment) -> Segment:
        if self.table is not None:
            return Segment(tuple(transliterate(seg.tokens, self.table)), seg.word_ids, seg.labels, seg.tree)
        assert self.order is not None
        return seg.reordered(self.order(seg))


@dataclass(frozen=True)
class Traits:
    """What a transformation is, known from its name alone (no vocabulary, nothing built): the grid and
    the configuration ask these before any model exists."""

    id_map: bool = False        # maps token ids to a new vocabulary (Transliteration of a share above 0)
    needs_tree: bool = False    # reorders words by their dependency tree (Syntax)
    corpus_level: bool = False  # runs on a whole corpus at once (id maps and sub-word reorderings)


@dataclass(frozen=True)
class Recipe:
    """A parsed step of a composition: its traits, and how to build it for a vocabulary."""

    traits: Traits
    build: Callable[[int, int, bool], Step]  # (vocab_size, seed, shift_special) -> Step


Parser = Callable[[str], Recipe]
_REGISTRY: dict[str, Parser] = {}


def register(prefix: str) -> Callable[[Parser], Parser]:
    """Register a transformation under a name prefix (``inv``, ``perm``, ``translit``, ...).

    A parser gets the step's name (``translit0.5``, ``syntax:fr``), checks its arguments (``ValueError``
    naming what is allowed) and returns a ``Recipe``: the step's ``Traits`` and a builder that makes the
    ``Step`` for a vocabulary. New transformations plug in here without touching the rest of the pipeline.
    """

    def deco(parser: Parser) -> Parser:
        _REGISTRY[prefix] = parser
        return parser

    return deco


def _require_words(seg: Segment, name: str) -> tuple[int, ...]:
    if seg.word_ids is None:
        raise ValueError(f"transformation {name!r} works on words: the segment has no word_ids")
    return seg.word_ids


@register("inv")
def _inversion(name: str) -> Recipe:
    if name == "inv":
        return Recipe(Traits(corpus_level=True), lambda V, seed, shift: Step(
            name, order=lambda s: invert_order(len(s.tokens)),
            corpus_order=lambda flat, starts, lengths: invert_index(starts, lengths)))
    if name == "inv_word":
        def order(s: Segment) -> list[int]:
            words = _require_words(s, name)
            return word_level_order(words, invert(list(dict.fromkeys(words))))
        return Recipe(Traits(), lambda V, seed, shift: Step(name, order=order))
    raise ValueError(f"unknown inversion variant {name!r}: use 'inv' (sub-words) or 'inv_word'")


@register("perm")
def _permutation(name: str) -> Recipe:
    if name == "perm":
        return Recipe(Traits(corpus_level=True), lambda V, seed, shift: Step(
            name, order=lambda s: permute_order(len(s.tokens), sentence_seed(seed, s.tokens)),
            corpus_order=lambda flat, starts, lengths: permute_index(flat, starts, lengths, seed)))
    if name == "perm_word":
        def build(V: int, seed: int, shift: bool) -> Step:
            def order(s: Segment) -> list[int]:
                words = list(dict.fromkeys(_require_words(s, name)))
                return word_level_order(s.word_ids, permute(words, sentence_seed(seed, s.tokens)))
            return Step(name, order=order)
        return Recipe(Traits(), build)
    raise ValueError(f"unknown permutation variant {name!r}: use 'perm' (sub-words) or 'perm_word'")


@register("translit")
def _transliteration(name: str) -> Recipe:
    rest = name[len("translit"):]
    try:
        fraction = float(rest) if rest else 1.0
    except ValueError:
        raise ValueError(f"bad transliteration {name!r}: use 'translit' or e.g. 'translit0.5'") from None
    if not 0.0 <= fraction <= 1.0:  # NaN too: known from the name, before any vocabulary exists
        raise ValueError(f"bad transliteration {name!r}: expected the fraction of the vocabulary transliterated, "
                         "in [0, 1], e.g. 'translit0.5'")
    return Recipe(Traits(id_map=fraction > 0, corpus_level=True), lambda V, seed, shift: Step(
        name, table=transliteration_table(V, fraction, seed, shift)))


@register("syntax")
def _syntax(name: str) -> Recipe:
    """Syntax: ``syntax:fr`` (French noun and verb order) or ``syntax:fr@N~hi@V`` (mixed).

    Words are reordered by the target language's ordering models over the sentence's dependency tree
    (``xlt_helpers.syntax``); sub-words of a word stay together and in order.
    """
    from .syntax import parse_spec as parse_syntax_spec
    from .syntax import reorder

    target = name.partition(":")[2]
    if not target:
        raise ValueError(f"syntax needs a target, e.g. 'syntax:fr' or 'syntax:fr@N~hi@V', got {name!r}")
    spec = parse_syntax_spec("xx~" + (target if "@" in target else f"{target}@N~{target}@V"))

    def build(V: int, seed: int, shift: bool) -> Step:
        def order(s: Segment) -> list[int]:
            words = _require_words(s, name)
            if len(set(words)) < 2:
                return list(range(len(s.tokens)))
            if s.tree is None:
                raise ValueError(f"transformation {name!r} needs a dependency tree for every sentence")
            return word_level_order(words, reorder(s.tree, spec, seed))
        return Step(name, order=order, needs_tree=True)

    return Recipe(Traits(needs_tree=True), build)


def parse_spec(spec: str) -> list[str]:
    """Split a composition ``'translit+inv'`` into its steps, applied left to right."""
    names = [p.strip() for p in spec.split("+") if p.strip()]
    if not names:
        raise ValueError("empty transformation spec")
    for n in names:
        if _parser_for(n) is None:
            raise ValueError(f"unknown transformation {n!r} in {spec!r}; known: {sorted(_REGISTRY)}")
    return names


def canonical_spec(spec: str) -> str:
    """The one spelling of a derived language, so that two spellings of it name one model: steps without
    spaces, ``translit1.0`` as ``translit`` and fractions as Python writes them (``translit.50`` ->
    ``translit0.5``), ``syntax:fr@V~fr@N`` as ``syntax:fr`` and mixed targets nouns first. The order of
    the steps is kept (it is part of the language). ``ValueError`` for a spec that is not valid as written
    (an empty step, a bad argument): it is refused in the user's spelling, never fixed silently."""
    if any(not part.strip() for part in spec.split("+")):
        raise ValueError(f"{spec!r} has an empty step")
    recipes(spec)  # every step's own arguments
    out = []
    for name in parse_spec(spec):
        base, colon, target = name.partition(":")
        if base.startswith("translit") and not colon:
            rest = base[len("translit"):].strip()
            fraction = float(rest) if rest else 1.0  # a bad number: DerivedLanguage says so
            name = "translit" if fraction == 1.0 else f"translit{fraction!r}"
        elif base == "syntax" and "@" in target:
            chosen = dict(reversed(part.strip().split("@", 1)) for part in target.split("~") if "@" in part)
            if chosen.get("N") and chosen.get("N") == chosen.get("V"):
                name = f"syntax:{chosen['N']}"
            elif set(chosen) <= {"N", "V"} and len(chosen) == target.count("@"):
                name = "syntax:" + "~".join(f"{chosen[c]}@{c}" for c in ("N", "V") if c in chosen)
        out.append(name)
    return "+".join(out)


def _parser_for(name: str) -> Parser | None:
    base = name.split(":", 1)[0]
    matches = [p for p in _REGISTRY if base == p or base.startswith(p)]
    return _REGISTRY[max(matches, key=len)] if matches else None


def recipes(spec: str) -> list[Recipe]:
    """The parsed steps of a composition (``orig``/``mono``: none); every step's arguments are checked."""
    return [] if spec in ("orig", "mono") else [_parser_for(n)(n) for n in parse_spec(spec)]  # type: ignore[misc]


def traits(spec: str) -> Traits:
    """The traits of a whole composition: an id map or a tree if any step has one, corpus-level if all are."""
    steps = [r.traits for r in recipes(spec)]
    return Traits(id_map=any(s.id_map for s in steps), needs_tree=any(s.needs_tree for s in steps),
                  corpus_level=all(s.corpus_level for s in steps))


class DerivedLanguage:
    """A derived language T(L): a composition of transformations applied left to right.

    ``DerivedLanguage('translit+inv', V)`` transliterates, then inverts. The original language is
    ``DerivedLanguage('orig', V)`` (no steps). Special-token ids of the derived language are given by
    ``bos``/``eos``/``pad``/``unk`` (shifted by V only with ``shift_special`` and Transliteration).
    """

    def __init__(self, spec: str, vocab_size: int, seed: int = 0, shift_special: bool = False):
        self.spec, self.vocab_size, self.seed, self.shift_special = spec, vocab_size, seed, shift_special
        self.steps = [r.build(vocab_size, seed, shift_special) for r in recipes(spec)]
        self.table = np.arange(vocab_size, dtype=np.int64)
        for st in self.steps:
            if st.table is not None:
                self.table = st.table[self.table]

    @property
    def needs_trees(self) -> bool:
        """Whether segments must carry dependency trees (some step reorders by syntax)."""
        return any(st.needs_tree for st in self.steps)

    @property
    def uses_transliteration(self) -> bool:
        return any(st.table is not None for st in self.steps)

    @property
    def is_identity(self) -> bool:
        return not self.steps

    def special(self, token_id: int) -> int:
        """The derived language's id for a special token."""
        return int(self.table[token_id])

    @property
    def bos(self) -> int:
        return self.special(BOS)

    @property
    def eos(self) -> int:
        return self.special(EOS)

    @property
    def pad(self) -> int:
        return self.special(PAD)

    def vocabulary(self) -> np.ndarray:
        """The sub-word ids this language uses (for random replacements during masking)."""
        return np.unique(self.table[N_SPECIAL:])

    def __call__(self, seg: Segment | Sequence[int]) -> Segment:
        if not isinstance(seg, Segment):
            seg = Segment(tuple(seg))
        for st in self.steps:
            seg = st(seg)
        return seg

    def transform_tokens(self, tokens: Sequence[int]) -> list[int]:
        """Transform a bare token sequence (pretraining text)."""
        return list(self(Segment(tuple(tokens))).tokens)

    def transform_corpus(self, sentences: Sequence[Sequence[int]], word_ids: Sequence[Sequence[int]] | None = None,
                         trees: Sequence[object] | None = None) -> list[list[int]]:
        """The tokens of every sentence transformed: ``[transform_tokens(s) for s in sentences]``, fast.

        Compositions of token-level steps (inv, perm, translit*) run on the whole corpus at once and
        give exactly the per-sentence output. Word- or tree-level steps (``inv_word``, ``perm_word``,
        ``syntax:``) go sentence by sentence through ``Segment(tokens, word_ids[k], None, trees[k])``.
        """
        if not all(st.corpus_level for st in self.steps):
            return [list(self(Segment(tuple(s), None if word_ids is None else tuple(word_ids[k]), None,
                                      None if trees is None else trees[k])).tokens)
                    for k, s in enumerate(sentences)]
        lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
        flat = np.fromiter(itertools.chain.from_iterable(sentences), dtype=np.int64, count=int(lengths.sum()))
        starts = np.cumsum(lengths) - lengths
        out = self.transform_flat(flat, lengths).tolist()
        return [out[a:a + n] for a, n in zip(starts.tolist(), lengths.tolist())]

    def transform_flat(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``transform_corpus`` on concatenated sentences (int64 ids, ``lengths`` per sentence); token-level
        steps only. Sentences are independent, so a corpus can be transformed chunk by chunk."""
        if not all(st.corpus_level for st in self.steps):
            raise ValueError(f"{self.spec!r} has word- or tree-level steps: use transform_corpus")
        starts = np.cumsum(lengths) - lengths
        for st in self.steps:
            flat = st.table[flat] if st.table is not None else flat[st.corpus_order(flat, starts, lengths)]
        return flat

    def __repr__(self) -> str:
        return f"DerivedLanguage({self.spec!r}, V={self.vocab_size}, seed={self.seed})"


# --------------------------------------------------------------------------------------------
# Labels under reordering
# --------------------------------------------------------------------------------------------
def bio_to_entities(tags: Sequence[str | None]) -> list[tuple[str, int] | str | None]:
    """Replace BIO tags by (type, entity index) so entity membership survives any reordering."""
    out: list[tuple[str, int] | str | None] = []
    eid, prev_type = -1, None
    for tag in tags:
        if tag is None or tag == "O" or "-" not in tag:
            out.append(tag)
            if tag is not None:
                prev_type = None
            continue
        prefix, etype = tag.split("-", 1)
        if prefix == "B" or prev_type != etype:
            eid += 1
        out.append((etype, eid))
        prev_type = etype
    return out


def entities_to_bio(items: Sequence[tuple[str, int] | str | None]) -> list[str | None]:
    """Back to BIO after reordering: each contiguous run of one entity starts with ``B-``."""
    out: list[str | None] = []
    prev = None
    for it in items:
        if isinstance(it, tuple):
            out.append(("I-" if it == prev else "B-") + it[0])
            prev = it
        else:
            out.append(it)
            if it is not None:
                prev = None
    return out
