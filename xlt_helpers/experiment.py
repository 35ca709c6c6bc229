"""The study's steps as plain functions (the notebooks call these): pretrain, fine-tune, transfer,
alignment, retrieval, and transfer between natural language pairs.

Every step returns tidy result rows with the columns of ``ROW_COLUMNS`` so any set of runs aggregates
into one table. A task with several metrics (QA: f1, em) gets one row per metric and setting; the
deltas use the task's primary metric (QA: F1).

Natural language pairs ``a-b`` (rows: language ``"a-b"``, transformation ``"pair"``): a bilingual model
pretrained on the corpora of a and b with one tokenizer over both.
BZ: fine-tuned on a, tested on b. BS: fine-tuned on b, tested on b (only where b has training data).
MZ: the monolingual model of a (its own tokenizer, fine-tuned on a: the shared MZ step of a), tested
on b; this is the natural-pair reading of "a model pre-trained on the original language only", and
unlike a derived language, b is then read through a's tokenizer (byte-level BPE never fails, but a
different script falls apart into bytes). ``orig``: the BZ model on a's own test set.
Retrieval has no fine-tuning: BZ = the bilingual model, MZ = the monolingual model of the original
language, both retrieving translations between the two languages; Delta_Sup is not defined for it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from tokenizers import Tokenizer

from .alignment import alignment_report
from .data import has_task, load_task, parallel_sentences
from .finetune import FinetuneConfig, evaluate_all, finetune, load_finetuned
from .metrics import delta_mono, delta_sup
from .pretrain import PretrainConfig, pretrain
from .scales import get_scale
from .storage import atomic_write_json, read_json
from .tasks import get_task, load_encoded
from .transformations import N_SPECIAL, DerivedLanguage
from .trees import task_trees, tree_parser

ROW_COLUMNS = ("language", "transformation", "task", "setting", "metric", "value", "seed", "scale")
MONO = "mono"
PAIR = "pair"


def pair_name(language: str, target_language: str) -> str:
    """The ``language`` column of a natural pair's rows: ``"en-fr"``."""
    return f"{language}-{target_language}"


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
    label = language
    if cfg.second_language:
        label, name = pair_name(language, cfg.second_language), PAIR
    rows = [row(label, name, "pretrain", "none", "final_mlm_loss", meta["final_loss"], seed, scale),
            row(label, name, "pretrain", "none", "subword_overlap", meta["subword_overlap"], seed, scale),
            row(label, name, "pretrain", "none", "tokens_per_s", meta["tokens_per_s"], seed, scale)]
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
    train = load_encoded(task, language, "train", tok, orig, sc.ft_max_len, sc.ft_train_examples, seed=seed)
    test = load_encoded(task, language, "test", tok, orig, sc.ft_max_len, sc.ft_test_examples, seed=seed)
    model = finetune(mono_dir, spec, train, cfg)
    out = Path(out_dir) / "model"
    model.save_pretrained(out)
    (out / "tokenizer.json").write_text((Path(mono_dir) / "tokenizer.json").read_text())
    atomic_write_json(model_meta(mono_dir), out / "xlt_meta.json")
    scores = evaluate_all(model, spec, test)
    return {"rows": [row(language, MONO, task, "orig", m, v, seed, scale) for m, v in scores.items()],
            "model_dir": str(out)}


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
    trees = task_trees(task, language, sc) if derived.needs_trees else None
    enc = lambda split, lang, cap: load_encoded(task, language, split, tok, lang, sc.ft_max_len, cap, trees,  # noqa: E731
                                                seed=seed)
    train_o, train_d = enc("train", orig, sc.ft_train_examples), enc("train", derived, sc.ft_train_examples)
    test_o, test_d = enc("test", orig, sc.ft_test_examples), enc("test", derived, sc.ft_test_examples)

    model = finetune(bilingual_dir, spec, train_o, cfg)
    scores = {"BZ": evaluate_all(model, spec, test_d), "orig": evaluate_all(model, spec, test_o)}
    model = finetune(bilingual_dir, spec, train_d, cfg)
    scores["BS"] = evaluate_all(model, spec, test_d)
    mono = load_finetuned(Path(mono_task_dir) / "model", spec)
    scores["MZ"] = evaluate_all(mono, spec, test_d)
    return {"rows": _transfer_rows(language, transformation, spec, scores, seed, scale)}


def _transfer_rows(language: str, transformation: str, spec, scores: dict[str, dict[str, float]], seed: int,
                   scale: str) -> list[dict]:
    """One row per setting and metric, then the deltas of the primary metric (where both sides exist)."""
    r = lambda setting, metric, v: row(language, transformation, spec.name, setting, metric, v, seed, scale)  # noqa: E731
    rows = [r(setting, m, scores[setting][m]) for setting in ("BS", "BZ", "MZ", "orig") if setting in scores
            for m in spec.metrics if m in scores[setting]]
    main = {setting: s[spec.metric] for setting, s in scores.items()}
    if "BZ" in main and "BS" in main:
        rows.append(r("delta", "delta_sup", delta_sup(main["BZ"], main["BS"])))
    if "BZ" in main and "MZ" in main:
        rows.append(r("delta", "delta_mono", delta_mono(main["MZ"], main["BZ"])))
    return rows


def run_pair_transfer(language: str, target_language: str, task: str, scale: str, seed: int, pair_dir: str | Path,
                      mono_task_dir: str | Path, overrides: dict | None = None) -> dict:
    """BZ, BS and MZ of a natural language pair (see the module docstring for what each one means here)."""
    spec = get_task(task)
    sc, cfg = _finetune_cfg(scale, seed, overrides)
    tok, orig, _ = _languages(pair_dir, None)

    def enc(lang_code: str, split: str, cap: int | None, tokenizer: Tokenizer = tok, lang: DerivedLanguage = orig):
        return load_encoded(task, lang_code, split, tokenizer, lang, sc.ft_max_len, cap, seed=seed)

    test_b = enc(target_language, "test", sc.ft_test_examples)
    model = finetune(pair_dir, spec, enc(language, "train", sc.ft_train_examples), cfg)
    scores = {"BZ": evaluate_all(model, spec, test_b),
              "orig": evaluate_all(model, spec, enc(language, "test", sc.ft_test_examples))}
    if has_task(task, target_language, ("train",)):
        model = finetune(pair_dir, spec, enc(target_language, "train", sc.ft_train_examples), cfg)
        scores["BS"] = evaluate_all(model, spec, test_b)
    mono_model = Path(mono_task_dir) / "model"
    mono_tok, mono_orig, _ = _languages(mono_model, None)
    mono_test = enc(target_language, "test", sc.ft_test_examples, mono_tok, mono_orig)
    scores["MZ"] = evaluate_all(load_finetuned(mono_model, spec), spec, mono_test)
    return {"rows": _transfer_rows(pair_name(language, target_language), PAIR, spec, scores, seed, scale)}


def retrieval_sentences(language: str, target_language: str | None, max_sentences: int | None
                        ) -> tuple[list[str], list[str]]:
    """Source and target sides: a language's own Tatoeba side twice (derived languages), or the
    line-aligned translations of a natural pair."""
    if target_language is None:
        sents = load_task("retrieval", language, "test", max_examples=max_sentences)
        return sents, sents
    pair = parallel_sentences(language, target_language, max_sentences)
    if pair is None:
        raise ValueError(f"no parallel retrieval sentences for {language}-{target_language}: register "
                         f"`parallel: {{{target_language}: ...}}` on a retrieval entry in languages.yaml")
    return pair


def run_retrieval(language: str, transformation: str | None, scale: str, seed: int, bilingual_dir: str | Path,
                  mono_dir: str | Path, target_language: str | None = None, overrides: dict | None = None) -> dict:
    """Tatoeba accuracy@1 (both directions) of the bilingual (BZ) and monolingual (MZ) models, no fine-tuning.

    Derived language: each original sentence against the transformed set. Natural pair: ``language``
    against ``target_language`` (translations), with the pair model and the monolingual model of
    ``language``.
    """
    from .retrieval import evaluate_retrieval, load_encoder

    sc = get_scale(scale, **(overrides or {}))
    src, tgt = retrieval_sentences(language, target_language, sc.ft_test_examples)
    target_spec = None if target_language else transformation  # a natural pair: both sides are original text
    scores = {}
    for setting, model_dir in (("BZ", bilingual_dir), ("MZ", mono_dir)):
        tok, orig, derived = _languages(model_dir, target_spec)
        trees = tree_parser(language, sc) if derived.needs_trees else None
        scores[setting] = evaluate_retrieval(load_encoder(model_dir), tok, orig, src, derived, tgt, sc.ft_max_len,
                                             trees)
    label, name = (pair_name(language, target_language), PAIR) if target_language else (language, transformation)
    rows = [row(label, name, "retrieval", setting, m, v, seed, scale)
            for setting, sc_ in scores.items() for m, v in sc_.items()]
    rows.append(row(label, name, "retrieval", "delta", "delta_mono",
                    delta_mono(scores["MZ"]["accuracy"], scores["BZ"]["accuracy"]), seed, scale))
    return {"rows": rows, "n_sentences": len(src)}


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
