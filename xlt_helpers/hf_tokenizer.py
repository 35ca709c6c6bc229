"""``transformers`` tokenizers for a model's two languages, so a saved model folder reads text in plain
``transformers`` exactly as the toolkit does.

The original language: the toolkit's own BPE (``tokenizer.train_tokenizer``) with what the toolkit does
around it written into the ``tokenizers`` pipeline: Unicode normalisation as every loader applies it
(``data.TEXT_NORMALIZATION``), the word split of ``tokenizer.split_words`` as a ``Split`` pre-tokenizer,
then the same byte-level pre-tokenizer, and ``<s> ... </s>`` added as the task encoders add them.

The word split is a Python regex; ``tokenizers`` runs Oniguruma. Their ``\\s`` differ (Python's also
matches U+001C..U+001F) and a class written from ``re.escape`` output is not portable, so the pattern is
written out with explicit code-point ranges of the very sets Python uses: its ``\\s`` (every code point
``re`` matches with it) and Unicode punctuation (category P). The structure is the same
(``[P]|[^SP](?:[^S]*[^SP])?``, leftmost-first alternation, greedy with backtracking in both engines);
``Split(..., behavior="removed", invert=True)`` keeps every match as its own word and drops what lies
between matches, which is only whitespace (every other character starts a match): ``re.findall``.

The derived language has no text of its own: it is written as its tokens, one readable string per id,
separated by spaces (``readable_tokens``); its tokenizer is a word-level vocabulary over them.
"""
from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache
from typing import Sequence

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

from .data import TEXT_NORMALIZATION
from .transformations import BOS, EOS, MASK, PAD, SPECIAL_TOKENS, UNK

TWIN_MARK = "ᵀ"  # prefix of a derived (transliterated) token: outside the byte-level alphabet (<= U+0143)
TOKENIZER_CLASS = "PreTrainedTokenizerFast"  # the name transformers 4 and 5 both load a tokenizer.json with


def _ranges(code_points: Sequence[int]) -> str:
    """A character-class body of ``\\x{..}`` ranges (no character that needs escaping in any engine)."""
    out, start, prev = [], None, None
    for cp in sorted(code_points):
        if prev is not None and cp == prev + 1:
            prev = cp
            continue
        if start is not None:
            out.append((start, prev))
        start = prev = cp
    if start is not None:
        out.append((start, prev))
    return "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in out)


@lru_cache(maxsize=None)
def character_sets() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(punctuation, whitespace) code points as ``tokenizer.split_words`` sees them: Unicode category P,
    and every code point Python's ``\\s`` matches. Surrogates are left out (no UTF-8 text holds one)."""
    space = re.compile(r"\s")
    cps = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    punct = tuple(c for c in cps if unicodedata.category(chr(c))[0] == "P")
    white = tuple(c for c in cps if space.match(chr(c)))
    return punct, white


@lru_cache(maxsize=None)
def word_pattern() -> str:
    """``tokenizer.split_words``'s regex for Oniguruma (``tokenizers.Regex``), sets written out."""
    punct, white = character_sets()
    p, s = _ranges(punct), _ranges(white)
    return f"[{p}]|[^{s}{p}](?:[^{s}]*[^{s}{p}])?"


def word_splitter() -> pre_tokenizers.PreTokenizer:
    """A pre-tokenizer that splits text into the words of ``tokenizer.split_words``."""
    return pre_tokenizers.Split(Regex(word_pattern()), behavior="removed", invert=True)


def _specials(table: Sequence[int] | None = None) -> dict[str, int]:
    """Template entries: the (derived) ids of ``<s>`` and ``</s>``."""
    bos, eos = (BOS, EOS) if table is None else (int(table[BOS]), int(table[EOS]))
    return {"bos": bos, "eos": eos}


def original_backend(tok: Tokenizer) -> Tokenizer:
    """The toolkit's tokenizer with normalisation, word split and ``<s> ... </s>`` in its pipeline."""
    out = Tokenizer.from_str(tok.to_str())
    if TEXT_NORMALIZATION:
        out.normalizer = getattr(normalizers, TEXT_NORMALIZATION)()
    out.pre_tokenizer = pre_tokenizers.Sequence([word_splitter(), pre_tokenizers.ByteLevel(add_prefix_space=True)])
    out.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[(SPECIAL_TOKENS[BOS], BOS), (SPECIAL_TOKENS[EOS], EOS)])
    out.no_truncation()
    out.no_padding()
    return out


def readable_tokens(tok: Tokenizer, n_embeddings: int) -> list[str]:
    """One string per embedding row: id ``i < V`` is the tokenizer's token, ``i >= V`` its twin
    ``TWIN_MARK + token(i - V)``; none holds whitespace, all differ."""
    V = tok.get_vocab_size(with_added_tokens=True)
    vocab = [tok.id_to_token(i) for i in range(V)]
    out = [vocab[i] if i < V else TWIN_MARK + vocab[i - V] for i in range(n_embeddings)]
    if len(set(out)) != len(out) or any(s is None or not s or any(ch.isspace() for ch in s) for s in out):
        raise ValueError("readable tokens must be distinct, non-empty and without whitespace")
    return out


def derived_backend(tokens: Sequence[str], table: Sequence[int]) -> Tokenizer:
    """A word-level tokenizer over ``readable_tokens``: derived text (tokens separated by spaces) in,
    derived ids out, with the derived language's ``<s>`` and ``</s>`` around them (``table``: original id
    -> derived id, so a language with its own specials gets its own)."""
    vocab = {t: i for i, t in enumerate(tokens)}
    out = Tokenizer(models.WordLevel(vocab, unk_token=tokens[int(table[UNK])]))
    out.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    ids = _specials(table)
    out.post_processor = processors.TemplateProcessing(
        single=f"{tokens[ids['bos']]} $A {tokens[ids['eos']]}",
        pair=f"{tokens[ids['bos']]} $A {tokens[ids['eos']]} {tokens[ids['eos']]} $B {tokens[ids['eos']]}",
        special_tokens=[(tokens[ids["bos"]], ids["bos"]), (tokens[ids["eos"]], ids["eos"])])
    specials = sorted({int(table[s]) for s in (BOS, PAD, EOS, UNK)} | {MASK})
    from tokenizers import AddedToken

    out.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i in specials])
    return out


def fast_tokenizer(backend: Tokenizer, max_length: int, table: Sequence[int] | None = None,
                   tokens: Sequence[str] | None = None):
    """A ``transformers`` fast tokenizer over ``backend`` with the language's special tokens and
    ``model_max_length`` (``table``/``tokens``: those of a derived language)."""
    from transformers import PreTrainedTokenizerFast

    name = (lambda i: SPECIAL_TOKENS[i]) if table is None else (lambda i: tokens[int(table[i])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=max_length,
        bos_token=name(BOS), eos_token=name(EOS), cls_token=name(BOS), sep_token=name(EOS), pad_token=name(PAD),
        unk_token=name(UNK), mask_token=SPECIAL_TOKENS[MASK])


def max_length(n_positions: int) -> int:
    """Tokens a RoBERTa with ``n_positions`` position embeddings reads: positions start after the padding
    index (1), so two rows are never used."""
    return n_positions - PAD - 1
