"""``load_pretrained``: a saved model folder back as its model, its original language's tokenizer and its
derived language as text (``DerivedText``), for use outside the grid (no step reads this module)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Sequence

from . import hf_tokenizer
from .data import normalize_text
from .pretrained import DERIVED, META, embedding_sizes, derived_tokenizer, model_languages, model_meta, original_tokenizer


class DerivedText:
    """A model's derived language as text: running text -> derived ids (words, sub-words, then T, exactly as
    the toolkit builds its data), derived ids <-> readable tokens (``hf_tokenizer.readable_tokens``), and
    the derived text the ``transformers`` tokenizer ``hf`` reads (tokens separated by spaces)."""

    def __init__(self, model_dir: str | Path, hf=None):
        model_dir = Path(model_dir)
        self.meta = model_meta(model_dir)
        self.bpe, self.original, self.language = model_languages(model_dir, self.meta.get("transformation"))
        n_positions, rows = embedding_sizes(model_dir)
        self.max_length = hf_tokenizer.max_length(n_positions)
        self.readable = hf_tokenizer.readable_tokens(self.bpe, rows)
        self._index = {t: i for i, t in enumerate(self.readable)}
        self.hf = hf if hf is not None else derived_tokenizer(model_dir, self.language)
        self._trees = None

    def _tree_fn(self):
        """The Syntax parser of the model's language and settings (only Syntax needs one)."""
        if self._trees is None and self.language.needs_trees:
            from .run_config import DataConfig
            from .trees import tree_parser

            self._trees = tree_parser(self.meta["language"], DataConfig(**self.meta["config"]["data"]))
        return self._trees

    def encode_batch(self, texts: Sequence[str], truncate: bool = True) -> list[list[int]]:
        """``<s> T(text) </s>`` in derived ids for every text (cut to ``max_length`` with ``truncate``)."""
        from .encoding import transform_texts

        body = self.max_length - 2 if truncate else None
        lang = self.language
        return [[lang.bos, *ids[:body], lang.eos]
                for ids in transform_texts([normalize_text(t) for t in texts], self.bpe, lang, self._tree_fn())]

    def encode(self, text: str, truncate: bool = True) -> list[int]:
        """``<s> T(text) </s>`` in derived ids."""
        return self.encode_batch([text], truncate)[0]

    def tokens(self, ids: Sequence[int]) -> list[str]:
        """Derived ids -> readable tokens (a twin is ``ᵀ`` + its original's token)."""
        return [self.readable[int(i)] for i in ids]

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """Readable tokens -> derived ids (the inverse of ``tokens``)."""
        unknown = [t for t in tokens if t not in self._index]
        if unknown:
            raise ValueError(f"not a token of this model's vocabulary: {unknown[0]!r}")
        return [self._index[t] for t in tokens]

    def write(self, text: str, truncate: bool = True) -> str:
        """``text`` in the derived language as the ``hf`` tokenizer reads it: the readable tokens of
        ``T(text)``, separated by spaces, without ``<s>``/``</s>`` (``hf`` adds them)."""
        return " ".join(self.tokens(self.encode(text, truncate)[1:-1]))

    def __repr__(self) -> str:
        return f"DerivedText({self.language.spec!r}, V={self.language.vocab_size}, max_length={self.max_length})"


class Pretrained(NamedTuple):
    """What ``load_pretrained`` returns."""

    model: Any        # the folder's transformers model (its own architecture: masked LM, or a task head)
    tokenizer: Any    # the original language's transformers tokenizer
    derived: DerivedText


def load_pretrained(folder: str | Path) -> Pretrained:
    """The model of a saved folder (pretrained or fine-tuned), its original language's tokenizer (the
    toolkit's ids) and its derived language (text -> derived ids -> readable tokens; the original
    language again for a monolingual model or a natural pair). Reads the local folder only."""
    import transformers

    folder = Path(folder)
    if not (folder / META).exists():
        raise FileNotFoundError(f"{folder}: expected a model folder saved by xlt_helpers (with {META})")
    config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    architecture = (config.architectures or ["RobertaForMaskedLM"])[0]
    model = getattr(transformers, architecture).from_pretrained(str(folder), local_files_only=True).eval()
    if (folder / "tokenizer_config.json").exists():
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    else:  # a folder saved before drop-in files existed
        tokenizer = original_tokenizer(folder)
    hf = None
    if (folder / DERIVED / "tokenizer_config.json").exists():
        hf = transformers.AutoTokenizer.from_pretrained(str(folder / DERIVED), local_files_only=True)
    return Pretrained(model, tokenizer, DerivedText(folder, hf))

