"""Saved model folders: their languages (what the steps read) and the drop-in files that make them plain
``transformers`` checkpoints (``loading.load_pretrained`` gives a model back with both of its languages).

A model folder holds ``config.json`` and ``model.safetensors`` (``save_pretrained``), ``xlt_meta.json``
(what the toolkit knows of it), ``xlt_tokenizer.json`` (the bare BPE the toolkit encodes words with;
older folders have it as ``tokenizer.json``) and, written by ``save_drop_in``: the original language's
``transformers`` tokenizer (``tokenizer.json``, ``tokenizer_config.json``: ``hf_tokenizer``), the derived
language's in ``derived/``, and the model card ``README.md`` (``model_card``).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from tokenizers import Tokenizer

from . import hf_tokenizer
from .model_card import model_card
from .storage import atomic_write_json, atomic_write_text, read_json
from .tokenizer import SAVED_NAME
from .transformations import DerivedLanguage

META = "xlt_meta.json"
XLT_TOKENIZER = SAVED_NAME
ALIGNMENT = "xlt_alignment.json"   # the alignment measured on the folder's model (for its card)
DERIVED = "derived"                # subfolder of the derived language's tokenizer
CARD = "README.md"


def model_meta(model_dir: str | Path) -> dict:
    """The folder's ``xlt_meta.json``."""
    return read_json(Path(model_dir) / META)


def toolkit_tokenizer(model_dir: str | Path) -> Tokenizer:
    """The BPE the toolkit encodes pre-split words with (``tokenizer.encode_words``)."""
    path = Path(model_dir) / XLT_TOKENIZER
    return Tokenizer.from_file(str(path if path.exists() else Path(model_dir) / "tokenizer.json"))


def model_languages(model_dir: str | Path, transformation: str | None = None
                    ) -> tuple[Tokenizer, DerivedLanguage, DerivedLanguage]:
    """The toolkit tokenizer, the original language and the derived language ``transformation`` (None:
    the original again) of the model in ``model_dir``, with the vocabulary, seed and specials it was
    trained with (``xlt_meta.json``)."""
    meta = model_meta(model_dir)
    V = meta["vocab_size"]
    derived = DerivedLanguage(transformation or "orig", V, seed=meta["seed"], shift_special=meta["shift_special"])
    return toolkit_tokenizer(model_dir), DerivedLanguage("orig", V), derived


def copy_model_files(src: str | Path, dst: str | Path, meta: dict | None = None) -> None:
    """The toolkit tokenizer and ``xlt_meta.json`` (``meta``: instead of ``src``'s) of ``src`` into ``dst``,
    a folder where a model derived from it was saved."""
    dst = Path(dst)
    atomic_write_text(toolkit_tokenizer(src).to_str(), dst / XLT_TOKENIZER)
    atomic_write_json(model_meta(src) if meta is None else meta, dst / META)


def embedding_sizes(model_dir: str | Path) -> tuple[int, int]:
    """(position embeddings, embedding rows) from the folder's ``config.json``."""
    config = read_json(Path(model_dir) / "config.json")
    return int(config["max_position_embeddings"]), int(config["vocab_size"])


def original_tokenizer(model_dir: str | Path):
    """The original language's ``transformers`` tokenizer of a folder, built from its toolkit tokenizer."""
    model_dir = Path(model_dir)
    n_positions, _ = embedding_sizes(model_dir)
    return hf_tokenizer.fast_tokenizer(hf_tokenizer.original_backend(toolkit_tokenizer(model_dir)),
                                       hf_tokenizer.max_length(n_positions))


def derived_tokenizer(model_dir: str | Path, language: DerivedLanguage):
    """The derived language's ``transformers`` tokenizer (readable tokens separated by spaces)."""
    model_dir = Path(model_dir)
    n_positions, rows = embedding_sizes(model_dir)
    tokens = hf_tokenizer.readable_tokens(toolkit_tokenizer(model_dir), rows)
    backend = hf_tokenizer.derived_backend(tokens, language.table)
    return hf_tokenizer.fast_tokenizer(backend, hf_tokenizer.max_length(n_positions), language.table, tokens)


def _save_tokenizer(tokenizer, folder: Path) -> None:
    """``save_pretrained``, then the class name that transformers 4 and 5 both load."""
    tokenizer.save_pretrained(str(folder))
    config_path = folder / "tokenizer_config.json"
    config = read_json(config_path)
    config["tokenizer_class"] = hf_tokenizer.TOKENIZER_CLASS
    atomic_write_json(config, config_path)


def _losses(model_dir: Path) -> list[float]:
    """The pretraining loss per step from ``loss_log.csv`` beside the folder (empty if there is none)."""
    log = model_dir.parent / "loss_log.csv"
    if not log.exists():
        return []
    rows = [line.split(",") for line in log.read_text().splitlines()[1:]]
    return [float(row[1]) for row in rows if len(row) > 1 and row[1]]


def write_card(model_dir: str | Path, alignment: dict | None = None) -> None:
    """(Re)write the folder's model card; ``alignment`` (an ``alignment_report``) is kept beside it. A
    fine-tuned model's card takes the loss and alignment of the pretrained folder it names (``from``)."""
    model_dir = Path(model_dir)
    if alignment is not None:
        atomic_write_json(alignment, model_dir / ALIGNMENT)
    meta = model_meta(model_dir)
    finetuned = meta.get("finetuned")
    source = Path(finetuned["from"]) if finetuned and finetuned.get("from") else model_dir
    if alignment is None and (source / ALIGNMENT).exists():
        alignment = read_json(source / ALIGNMENT)
    atomic_write_text(model_card(meta, _losses(source), alignment, finetuned), model_dir / CARD)


def save_drop_in(model_dir: str | Path) -> None:
    """Make a saved model folder a drop-in ``transformers`` checkpoint: the original language's tokenizer
    (``AutoTokenizer`` then gives the toolkit's ids), the derived language's in ``derived/`` (models with
    a derived language) and the model card. An older folder's toolkit ``tokenizer.json`` is kept first
    as ``xlt_tokenizer.json``."""
    model_dir = Path(model_dir)
    if not (model_dir / XLT_TOKENIZER).exists():
        shutil.copyfile(model_dir / "tokenizer.json", model_dir / XLT_TOKENIZER)
    meta = model_meta(model_dir)
    _save_tokenizer(original_tokenizer(model_dir), model_dir)
    if meta.get("transformation"):
        _, _, derived = model_languages(model_dir, meta["transformation"])
        _save_tokenizer(derived_tokenizer(model_dir, derived), model_dir / DERIVED)
    write_card(model_dir)
