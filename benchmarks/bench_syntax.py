"""Throughput of the Syntax transformation: reordering (sentences/s, one core) and parsing with the cached parsers.

Usage: python benchmarks/bench_syntax.py [--sentences 5000] [--parse-sentences 1000] [--languages en fr ar hi]
Reordering is timed twice over the same trees: cold (per-configuration order distributions not yet cached) and warm.
Parsing is timed only for languages whose parser is already cached (train with python -m xlt_helpers.syntax parser
train LANG), unless --train is given.
"""
from __future__ import annotations

import argparse
import itertools
import time

from xlt_helpers.syntax import load_ordering_model, read_conllu, reorder
from xlt_helpers.syntax.parser import load_udpipe, parse_with, parser_path, train_parser
from xlt_helpers.syntax.treebanks import form_normalizer, treebank_files

SPECS = ("en~fr@N~fr@V", "en~hi@N~hi@V", "en~ar@N~ar@V", "en~fr@N~hi@V")


def bench_reorder(n_sentences: int) -> None:
    """Print reordering throughput per spec, cold and warm."""
    trees = list(itertools.islice((t for p in treebank_files("en", "test") for t in read_conllu(p)), n_sentences))
    words = sum(len(t) for t in trees)
    print(f"reordering {len(trees)} English test sentences ({words / len(trees):.1f} words each), one core")
    for spec in SPECS:
        for lang in {s.split("@")[0] for s in spec.split("~")[1:]}:
            load_ordering_model(lang)._dist.clear()  # cold start for this spec's models
        for label in ("cold", "warm"):
            start = time.perf_counter()
            for seed, tree in enumerate(trees):
                reorder(tree, spec, seed)
            sec = time.perf_counter() - start
            print(f"  {spec:<16} {label}: {len(trees) / sec:>9,.0f} sentences/s  {words / sec:>10,.0f} words/s")


def bench_parse(languages: list[str], n_sentences: int, train: bool) -> None:
    """Print parsing throughput for each language with a cached (or, with train, freshly trained) parser."""
    for lang in languages:
        path = parser_path(lang)
        if not path.is_file():
            if not train:
                print(f"parsing {lang}: skipped, no cached parser at {path}")
                continue
            train_parser(lang)
        model = load_udpipe(path)
        sents = [t.words for t in itertools.islice(
            (t for p in treebank_files(lang, "test") for t in read_conllu(p, surface=True)), n_sentences)]
        start = time.perf_counter()
        parse_with(model, sents, form_normalizer(lang))
        sec = time.perf_counter() - start
        words = sum(map(len, sents))
        print(f"parsing {lang}: {len(sents) / sec:,.0f} sentences/s, {words / sec:,.0f} words/s ({len(sents)} sentences)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=5000)
    ap.add_argument("--parse-sentences", type=int, default=1000)
    ap.add_argument("--languages", nargs="*", default=["en", "fr", "ar", "hi"])
    ap.add_argument("--train", action="store_true", help="train missing parsers first (minutes per language)")
    args = ap.parse_args()
    bench_reorder(args.sentences)
    bench_parse(args.languages, args.parse_sentences, args.train)


if __name__ == "__main__":
    main()
