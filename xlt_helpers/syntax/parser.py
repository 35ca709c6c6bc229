"""Dependency trees for text without them: a UDPipe 1 tagger+parser trained offline from the language's UD files.

Trained once per language (small settings, affordable on 2 CPU cores) and cached under cache_dir()/parsers/ with a
JSON card holding its options and held-out scores. Input is pre-tokenised words, so no tokenizer is trained; the
tagger supplies the UPOS that the parser and the reordering need. Training uses surface tokens (a multiword token
such as French 'du' stays one word) because running text arrives unsplit. Words are returned exactly as given;
per-language form normalisation (Arabic diacritics) only affects what the model sees.

Command line (run it nice'd): python -m xlt_helpers.syntax parser train en fr ar hi [--max-train-sentences N]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from ..config import cache_dir
from ..fingerprint import files_fingerprint
from .conllu import read_conllu, to_conllu
from .tree import Tree
from .treebanks import form_normalizer, treebank_files

PARSER_FORMAT = 1
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u0640\u064b-\u065f\u0670\u06d6-\u06ed]")
NORMALIZERS = {None: lambda w: w, "strip_arabic_diacritics": lambda w: _ARABIC_MARKS.sub("", w) or w}


@dataclass(frozen=True)
class ParserOptions:
    """Training settings; the defaults keep one language to a few minutes on 2 cores."""

    max_train_sentences: int | None = 3000
    tagger_iterations: int = 5
    parser_iterations: int = 4
    hidden_layer: int = 128

    def tagger(self) -> str:
        """UDPipe tagger option string: one UPOS tagger, no lemmas, XPOS or features."""
        return (
            f"models=1;templates_1=tagger;iterations={self.tagger_iterations};guesser_suffix_rules=6;"
            "use_lemma=0;provide_lemma=0;use_xpostag=0;provide_xpostag=0;use_feats=0;provide_feats=0"
        )

    def parser(self) -> str:
        """UDPipe parser option string: projective transitions (the reordering needs projective trees)."""
        return (
            f"iterations={self.parser_iterations};hidden_layer={self.hidden_layer};embedding_upostag=20;"
            "embedding_feats=0;embedding_xpostag=0;embedding_form=50;embedding_lemma=0;embedding_deprel=20;"
            "transition_system=projective;transition_oracle=dynamic;structured_interval=0;single_root=1"
        )


def _udpipe():
    """The ufal.udpipe module (imported lazily: only parsing needs it)."""
    from ..extras import require

    return require("ufal.udpipe", "syntax", "the Syntax transformation's parser")


def spread_sample(items: Sequence, k: int | None) -> list:
    """k items evenly spaced over the sequence (all of it when k is None or large), so every file contributes."""
    if k is None or k >= len(items):
        return list(items)
    return [items[(i * len(items)) // k] for i in range(k)]


def _sentences(trees: Sequence[Tree], normalize: str | None):
    """UDPipe Sentences holding the trees (forms normalised)."""
    udpipe = _udpipe()
    norm = NORMALIZERS[normalize]
    fmt = udpipe.InputFormat.newConlluInputFormat()
    fmt.setText(to_conllu(trees, ([norm(w) for w in t.words] for t in trees)))
    out, sent, err = udpipe.Sentences(), udpipe.Sentence(), udpipe.ProcessingError()
    while fmt.nextSentence(sent, err):
        out.push_back(sent)
        sent = udpipe.Sentence()
    if err.occurred():
        raise RuntimeError(f"UDPipe could not read the training trees: {err.message}")
    return out


def train_udpipe(trees: Sequence[Tree], options: ParserOptions, normalize: str | None = None) -> bytes:
    """A serialised UDPipe model (tagger + parser) trained on the trees."""
    udpipe = _udpipe()
    err = udpipe.ProcessingError()
    model = udpipe.Trainer.train(
        "morphodita_parsito", _sentences(trees, normalize), udpipe.Sentences(), "none",
        options.tagger(), options.parser(), err,
    )
    if err.occurred() or not model:
        raise RuntimeError(f"UDPipe training failed: {err.message}")
    return model if isinstance(model, bytes) else model.encode("utf-8", "surrogateescape")


def load_udpipe(path: str | Path):
    """A UDPipe model from a file; ValueError when it cannot be loaded."""
    model = _udpipe().Model.load(str(path))
    if model is None:
        raise ValueError(f"{path} is not a loadable UDPipe model")
    return model


def parse_with(model, sentences: Iterable[Sequence[str]], normalize: str | None = None) -> list[Tree]:
    """Tag and parse pre-tokenised sentences with a loaded model; the trees keep the words exactly as given."""
    udpipe = _udpipe()
    norm = NORMALIZERS[normalize]
    out: list[Tree] = []
    for words in sentences:
        words = tuple(words)
        if not words:
            out.append(Tree((), (), (), ()))
            continue
        sent = udpipe.Sentence()
        for w in words:
            sent.addWord(norm(w).replace(" ", "_") or "_")
        if not (model.tag(sent, udpipe.Model.DEFAULT) and model.parse(sent, udpipe.Model.DEFAULT)):
            raise RuntimeError("UDPipe failed to tag or parse a sentence")
        nodes = list(sent.words)[1:]
        out.append(
            Tree(words, tuple(w.upostag for w in nodes), tuple(w.head for w in nodes), tuple(w.deprel for w in nodes))
        )
    return out


def attachment_scores(gold: Sequence[Tree], pred: Sequence[Tree]) -> dict[str, float]:
    """UPOS accuracy, UAS and LAS (relations compared without subtypes, as in the CoNLL 2018 shared task)."""
    n = upos = uas = las = 0
    for g, p in zip(gold, pred, strict=True):
        for gu, gh, gd, pu, ph, pd in zip(g.upos, g.heads, g.deprels, p.upos, p.heads, p.deprels, strict=True):
            n += 1
            upos += gu == pu
            if gh == ph:
                uas += 1
                las += gd.partition(":")[0] == pd.partition(":")[0]
    return {"words": n, "upos": upos / max(n, 1), "uas": uas / max(n, 1), "las": las / max(n, 1)}


def _fingerprint(language: str, options: ParserOptions) -> str:
    """Changes with the training files, the options, the normaliser or the format."""
    return files_fingerprint(treebank_files(language, "train"),
                             salt=[PARSER_FORMAT, asdict(options), form_normalizer(language)])


def parser_path(language: str, options: ParserOptions = ParserOptions()) -> Path:
    """Where the language's parser with these options is cached (.udpipe; its card is the .json beside it)."""
    folder = cache_dir() / "parsers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{language}-{_fingerprint(language, options)}.udpipe"


def train_parser(language: str, options: ParserOptions = ParserOptions(), log=sys.stderr) -> dict:
    """Train, evaluate on the held-out test files, cache; returns the card (options, sizes, seconds, scores)."""
    normalize = form_normalizer(language)
    all_train = [t for p in treebank_files(language, "train") for t in read_conllu(p, surface=True)]
    train = spread_sample(all_train, options.max_train_sentences)
    print(f"[syntax] training {language} parser on {len(train)}/{len(all_train)} sentences ...", file=log)
    start = time.time()
    blob = train_udpipe(train, options, normalize)
    seconds = time.time() - start
    path = parser_path(language, options)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    test_files = treebank_files(language, "test")
    gold = [t for p in test_files for t in read_conllu(p, surface=True)]
    start = time.time()
    pred = parse_with(load_udpipe(path), [t.words for t in gold], normalize)
    parse_seconds = time.time() - start
    card = {
        "language": language,
        "options": asdict(options),
        "train_sentences": len(train),
        "train_words": sum(len(t) for t in train),
        "train_seconds": round(seconds, 1),
        "test_files": [p.name for p in test_files],
        "test_sentences": len(gold),
        "parse_sentences_per_second": round(len(gold) / max(parse_seconds, 1e-9), 1),
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in attachment_scores(gold, pred).items()},
    }
    path.with_suffix(".json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    print(f"[syntax] {language}: LAS {card['las']:.3f} UAS {card['uas']:.3f} UPOS {card['upos']:.3f}", file=log)
    return card


@lru_cache(maxsize=None)
def load_parser(language: str, options: ParserOptions = ParserOptions()):
    """The language's cached parser, trained first (a few minutes) if it is not in the cache yet."""
    path = parser_path(language, options)
    if not path.is_file():
        train_parser(language, options)
    return load_udpipe(path)


def parse(language: str, sentences: list[list[str]], options: ParserOptions = ParserOptions()) -> list[Tree]:
    """Trees (UPOS, heads, UD v2 relations) for pre-tokenised sentences, from the language's cached parser."""
    return parse_with(load_parser(language, options), sentences, form_normalizer(language))


def main(argv: list[str]) -> int:
    """`train LANG... [--max-train-sentences N] [--force]`: train and report; `card LANG...`: print cached cards."""
    ap = argparse.ArgumentParser(prog="python -m xlt_helpers.syntax parser", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["train", "card"])
    ap.add_argument("languages", nargs="+")
    ap.add_argument("--max-train-sentences", type=int, default=ParserOptions.max_train_sentences)
    ap.add_argument("--tagger-iterations", type=int, default=ParserOptions.tagger_iterations)
    ap.add_argument("--parser-iterations", type=int, default=ParserOptions.parser_iterations)
    ap.add_argument("--force", action="store_true", help="retrain even if a cached parser exists")
    args = ap.parse_args(argv)
    options = ParserOptions(args.max_train_sentences, args.tagger_iterations, args.parser_iterations)
    for lang in args.languages:
        path = parser_path(lang, options)
        card_path = path.with_suffix(".json")
        if args.command == "train" and (args.force or not path.is_file()):
            train_parser(lang, options)
        if not card_path.is_file():
            print(f"{lang}: no cached parser with these options ({path.name})")
            continue
        print(card_path.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
