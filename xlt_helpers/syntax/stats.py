"""Word-order statistics of treebanks, and the `syntax-stats SPEC` command that checks a transformation with them.

For a spec like en~hi@N~hi@V it measures each statistic on the source treebank, on the treebank of the language the
spec takes that head class from, and on the transformed source, so one can see the source move towards the target.
"""
from __future__ import annotations

import argparse
import itertools
from typing import Callable, Iterable, NamedTuple

import pandas as pd

from .conllu import read_conllu
from .reorder import reorder
from .spec import SyntaxSpec, parse_spec
from .tree import NOUN_UPOS, VERB_UPOS, Tree, apply_order
from .treebanks import treebank_files


class Stat(NamedTuple):
    """Share of dependents matching `dep` (relation, UPOS) that precede a head of class `cls`.

    Objects count only when nominal (NOUN, PROPN, PRON), so clausal objects do not blur the verb-object order.
    """

    name: str
    cls: str  # 'N' or 'V'
    dep: Callable[[str, str], bool]


def _rel(*bases: str) -> Callable[[str, str], bool]:
    return lambda rel, upos: rel.partition(":")[0] in bases


STATS: tuple[Stat, ...] = (
    Stat("object before verb", "V", lambda rel, upos: rel.partition(":")[0] == "obj" and upos in NOUN_UPOS),
    Stat("subject before verb", "V", _rel("nsubj")),
    Stat("oblique before verb", "V", _rel("obl")),
    Stat("auxiliary before verb", "V", _rel("aux")),
    Stat("adverb before verb", "V", _rel("advmod")),
    Stat("adjective before noun", "N", _rel("amod")),
    Stat("adposition before noun", "N", lambda rel, upos: rel.partition(":")[0] == "case" and upos == "ADP"),
    Stat("determiner before noun", "N", _rel("det")),
    Stat("numeral before noun", "N", _rel("nummod")),
    Stat("genitive/nmod before noun", "N", _rel("nmod")),
    Stat("clause (acl) before noun", "N", _rel("acl")),
)
_CLASS_UPOS = {"N": NOUN_UPOS, "V": VERB_UPOS}


def word_order_stats(trees: Iterable[Tree]) -> dict[str, tuple[int, int]]:
    """For each statistic: (dependents before their head, all such dependents)."""
    counts = {s.name: [0, 0] for s in STATS}
    for tree in trees:
        for i, (h, rel, upos) in enumerate(zip(tree.heads, tree.deprels, tree.upos)):
            if h == 0:
                continue
            head_upos = tree.upos[h - 1]
            for s in STATS:
                if head_upos in _CLASS_UPOS[s.cls] and s.dep(rel, upos):
                    c = counts[s.name]
                    c[1] += 1
                    c[0] += i + 1 < h
    return {k: (v[0], v[1]) for k, v in counts.items()}


def share(pair: tuple[int, int]) -> float:
    """before / total (nan when there are none)."""
    return pair[0] / pair[1] if pair[1] else float("nan")


def load_trees(language: str, max_sentences: int | None = None) -> list[Tree]:
    """The language's UD train trees (the ones its ordering model is learned from), optionally the first N."""
    trees = (t for p in treebank_files(language, "train") for t in read_conllu(p))
    return list(itertools.islice(trees, max_sentences))


def transform(trees: Iterable[Tree], spec: SyntaxSpec | str, seed: int) -> list[Tree]:
    """Each tree re-linearised by the spec."""
    return [apply_order(t, reorder(t, spec, seed)) for t in trees]


def stats_frame(spec: SyntaxSpec, seed: int = 0, max_sentences: int | None = None) -> pd.DataFrame:
    """One row per statistic: its share on the source treebank, on the treebank of the language the spec takes
    that head class from (``target``), and on the source re-linearised by the spec (``transformed``), with the
    number of source dependents it counts."""
    source = load_trees(spec.source, max_sentences)
    src = word_order_stats(source)
    out = word_order_stats(transform(source, spec, seed))
    targets = {"N": spec.noun or spec.source, "V": spec.verb or spec.source}
    tgt = {lang: word_order_stats(load_trees(lang, max_sentences)) for lang in set(targets.values())}
    rows = [{"statistic": s.name, "source": share(src[s.name]), "target language": targets[s.cls],
             "target": share(tgt[targets[s.cls]][s.name]), "transformed": share(out[s.name]),
             "n source": src[s.name][1]} for s in STATS]
    return pd.DataFrame(rows).set_index("statistic").rename_axis(None).assign(**{"n sentences": len(source)})


def stats_table(spec: SyntaxSpec, seed: int = 0, max_sentences: int | None = None) -> str:
    """The printed comparison: source, target (per head class) and transformed source (``stats_frame``)."""
    table = stats_frame(spec, seed, max_sentences)
    n = int(table["n sentences"].iloc[0]) if len(table) else 0
    lines = [
        f"Word order of {spec} (seed {seed}; {n} source sentences): share of dependents before their head",
        f"{'statistic':<27} {'source ' + spec.source:>10} {'target':>10} {'transformed':>12} {'n source':>9}",
    ]
    for name, r in table.iterrows():
        target = f"{r['target']:.3f} {r['target language']}"
        lines.append(f"{name:<27} {r['source']:>10.3f} {target:>10} {r['transformed']:>12.3f} {int(r['n source']):>9}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """`syntax-stats SPEC [--seed S] [--max-sentences N]`: print the word-order table; 0 on success."""
    ap = argparse.ArgumentParser(prog="python -m xlt_helpers syntax-stats", description=__doc__.splitlines()[0])
    ap.add_argument("spec", help="e.g. en~hi@N~hi@V (source~lang@N~lang@V)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-sentences", type=int, default=None, help="use only the first N trees of each treebank")
    args = ap.parse_args(argv)
    try:
        spec = parse_spec(args.spec)
    except ValueError as exc:
        ap.error(str(exc))
    print(stats_table(spec, args.seed, args.max_sentences))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
