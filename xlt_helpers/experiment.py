"""The study's steps as plain functions (the notebooks call these): pretrain, fine-tune, transfer, alignment.

Every step returns tidy result rows with the columns of ``ROW_COLUMNS`` so any set of runs aggregates
into one table.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from tokenizers import Tokenizer

from .alignment import alignment_report
from .finetune import FinetuneConfig, evaluate, finetune, load_finetuned
from .metrics import delta_mono, delta_sup
from .pretrain import PretrainConfig, pretrain
from .scales import get_scale
from .storage import atomic_write_json, read_json
from .tasks import get_task, load_encoded
from .transformations import N_SPECIAL, DerivedLanguage
from .trees import tree_parser

ROW_COLUMNS = ("language", "transformation", "task", "setting", "metric", "value", "seed", "scale")
MONO = "mono"


def row(language: str, transformation: str, task: str, setting: str, metric: str, value: float, seed: int,
        scale: str) -> dict:
    return dict(zip(ROW_COLUMNS, (language, transformation, task, setting, metric, float(value), seed, scale)))


def model_meta(model_dir: str | Path) -> dict:
    return read_json(Path(model_dir) / "xlt_meta.json")


def run_pretrain(language: str, transformation: str | None, scale: str, seed: int, out_dir: str | Path,
                 **options) -> dict:
    """Pretrain the bilingual model of ``language`` + T(language) (``transformation=None``: monolingual)."""
    cfg = PretrainConfig(language=language, transformation=transformation, scale=scale, seed=seed,
                         out_dir=str(out_dir), **options)
    t0 = time.time()
    meta = pretrain(cfg)
    name = transformation or MONO
    rows = [row(language, name, "pretrain", "none", "final_mlm_loss", meta["final_loss"], seed, scale),
            row(language, name, "pretrain", "none", "subword_overlap", meta["subword_overlap"], seed, scale),
            row(language, name, "pretrain", "none", "tokens_per_s", meta["tokens_per_s"], seed, scale)]
    return {"rows": rows, "model_dir": str(Path(out_dir) / "model"), "seconds": time.time() - t0, "meta": meta}


def _finetune_cfg(scale_name: str, seed: int, overrides: dict | None) -> tuple:
    scale = get_scale(scale_name, **(overrides or {}))
    cfg = FinetuneConfig(epochs=scale.ft_epochs, batch_size=scale.ft_batch_size, lr=scale.ft_lr, seed=seed)
    return scale, cfg


def _languages(model_dir: str | Path, transformation: str | None) -> tuple[Tokenizer, DerivedLanguage, DerivedLanguage]:
    meta = model_meta(model_dir)
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    V = meta["vocab_size"]
    orig = DerivedLanguage("orig", V)
    derived = DerivedLanguage(transformation or "orig", V, seed=meta["seed"], shift_special=meta["shift_special"])
    return tok, orig, derived


def run_finetune_mono(language: str, task: str, scale: str, seed: int, mono_dir: str | Path, out_dir: str | Path,
                      overrides: dict | None = None) -> dict:
    """Fine-tune the monolingual model on the original task data (shared by every MZ evaluation)."""
    spec = get_task(task)
    sc, cfg = _finetune_cfg(scale, seed, overrides)
    tok, orig, _ = _languages(mono_dir, None)
    train = load_encoded(task, language, "train", tok, orig, sc.ft_max_len, sc.ft_train_examples)
    test = load_encoded(task, language, "test", tok, orig, sc.ft_max_len, sc.ft_test_examples)
    model = finetune(mono_dir, spec, train, cfg)
    out = Path(out_dir) / "model"
    model.save_pretrained(out)
    (out / "tokenizer.json").write_text((Path(mono_dir) / "tokenizer.json").read_text())
    atomic_write_json(model_meta(mono_dir), out / "xlt_meta.json")
    score = evaluate(model, spec, test)
    return {"rows": [row(language, MONO, task, "orig", spec.metric, score, seed, scale)], "model_dir": str(out)}


def run_transfer(language: str, transformation: str, task: str, scale: str, seed: int, bilingual_dir: str | Path,
                 mono_task_dir: str | Path, overrides: dict | None = None) -> dict:
    """BS, BZ and MZ of one derived language on one task, and the deltas built from them.

    BS: fine-tune the bilingual model on derived train, test on derived test. BZ: fine-tune it on the
    original train, test on derived test. MZ: the monolingual model fine-tuned on the original (from
    ``run_finetune_mono``), tested on derived test. ``orig`` is BZ's model on the original test set.
    """
    spec = get_task(task)
    sc, cfg = _finetune_cfg(scale, seed, overrides)
    tok, orig, derived = _languages(bilingual_dir, transformation)
    trees = tree_parser(language, sc) if derived.needs_trees else None
    enc = lambda split, lang, cap: load_encoded(task, language, split, tok, lang, sc.ft_max_len, cap, trees)  # noqa: E731
    train_o, train_d = enc("train", orig, sc.ft_train_examples), enc("train", derived, sc.ft_train_examples)
    test_o, test_d = enc("test", orig, sc.ft_test_examples), enc("test", derived, sc.ft_test_examples)

    model = finetune(bilingual_dir, spec, train_o, cfg)
    bz, orig_score = evaluate(model, spec, test_d), evaluate(model, spec, test_o)
    model = finetune(bilingual_dir, spec, train_d, cfg)
    bs = evaluate(model, spec, test_d)
    mono = load_finetuned(Path(mono_task_dir) / "model", spec)
    mz = evaluate(mono, spec, test_d)
    r = lambda setting, metric, v: row(language, transformation, task, setting, metric, v, seed, scale)  # noqa: E731
    rows = [r("BS", spec.metric, bs), r("BZ", spec.metric, bz), r("MZ", spec.metric, mz),
            r("orig", spec.metric, orig_score),
            r("delta", "delta_sup", delta_sup(bz, bs)), r("delta", "delta_mono", delta_mono(mz, bz))]
    return {"rows": rows}


def run_alignment(language: str, transformation: str, scale: str, seed: int, bilingual_dir: str | Path) -> dict:
    """Embedding alignment P@1 (without mapping, and with Procrustes on held-out pairs)."""
    from transformers import RobertaForMaskedLM

    _, _, derived = _languages(bilingual_dir, transformation)
    model = RobertaForMaskedLM.from_pretrained(str(bilingual_dir))
    emb = model.roberta.embeddings.word_embeddings.weight
    rep = alignment_report(emb, derived.table, N_SPECIAL, get_scale(scale).alignment_heldout, seed)
    rows = [row(language, transformation, "alignment", "none", k, rep[k], seed, scale)
            for k in ("alignment_at_1", "alignment_at_1_procrustes", "chance")]
    return {"rows": rows, "report": rep}


def save_results(result: dict, out_dir: str | Path, params: dict) -> Path:
    """Write ``results.json`` (atomically) beside the executed notebook: the step is done once it exists."""
    path = Path(out_dir) / "results.json"
    atomic_write_json({"params": params, **result}, path)
    return path


def load_rows(results_path: str | Path) -> list[dict]:
    with open(results_path) as f:
        return json.load(f)["rows"]
