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

import time
from pathlib import Path

from tokenizers import Tokenizer

from .alignment import alignment_report, embedding_drift
from .data import has_task, load_task, parallel_sentences
from .finetune import evaluate_predictions, finetune, load_finetuned
from .fingerprint import code_fingerprint
from .labels import FINETUNE_LOSS, MONO, PAIR, PREDICTIONS, pair_name
from .metrics import delta_mono, delta_sup
from .objectives.dictionary import FILE as DICTIONARY_FILE
from .objectives.dictionary import Dictionary
from .pretrain import pretrain
from .pretrained import copy_model_files, model_languages, model_meta, save_drop_in, write_card
from .run_config import RunConfig
from .storage import atomic_write_json, atomic_write_text, read_json
from .encoding import load_encoded
from .tasks import get_task
from .timing import phase, totals
from .transformations import N_SPECIAL
from .trees import task_trees, tree_parser

ROW_COLUMNS = ("language", "transformation", "task", "setting", "metric", "value", "seed", "scale", "finetune_seed")


def row(language: str, transformation: str, task: str, setting: str, metric: str, value: float, seed: int,
        scale: str, finetune_seed: int | None = None) -> dict:
    """One result row; ``seed`` is the pretraining seed, ``finetune_seed`` that of fine-tuning (None: none)."""
    return dict(zip(ROW_COLUMNS, (language, transformation, task, setting, metric, float(value), seed, scale,
                                  finetune_seed)))


def labels(cfg: RunConfig) -> tuple[str, str]:
    """The ``language`` and ``transformation`` columns of a model's rows (``en-fr``/``pair``, ``en``/``mono``)."""
    d = cfg.data
    if d.model_kind == "pair":
        return pair_name(d.language, d.second_language), PAIR
    return d.language, d.transformation if d.model_kind == "derived" else MONO


@phase("step")
def run_pretrain(cfg: RunConfig, out_dir: str | Path, progress: bool = True) -> dict:
    """Pretrain the model of ``cfg``: ``data.language`` + its derived language (or second language, or
    nothing: monolingual)."""
    t0 = time.time()
    with phase("pretraining"):
        meta = pretrain(cfg, out_dir, progress)
    save_drop_in(Path(out_dir) / "model")  # transformers tokenizers of both languages, the model card
    label, name = labels(cfg)
    # the last value of each objective's term: final_mlm_loss (plain MLM), final_align_loss, ...
    losses = meta.get("final_losses") or {"mlm": meta["final_loss"]}
    rows = [row(label, name, "pretrain", "none", f"final_{term}_loss", value, cfg.pretrain.seed, cfg.preset)
            for term, value in losses.items()]
    rows += [row(label, name, "pretrain", "none", metric, meta[metric], cfg.pretrain.seed, cfg.preset)
             for metric in ("subword_overlap", "tokens_per_s")]
    return {"kind": "pretrain", "rows": rows,
            "model_dir": str(Path(out_dir) / "model"), "seconds": time.time() - t0, "meta": meta}


@phase("step")
def run_finetune_step(cfg: RunConfig, task: str, pretrained: str | Path, out_dir: str | Path,
                      mono_task_dir: str | Path | None = None) -> dict:
    """The fine-tuning step of notebook 02 for ``cfg``: the monolingual model's (shared by every MZ), a
    derived language's BS/BZ/MZ, or a natural pair's."""
    kind = cfg.data.model_kind
    if kind == "pair":
        return run_pair_transfer(cfg, task, pretrained, mono_task_dir, out_dir)
    if kind == "monolingual":
        return run_finetune_mono(cfg, task, pretrained, out_dir)
    return run_transfer(cfg, task, pretrained, mono_task_dir, out_dir)


def _encoder(cfg: RunConfig, task: str, tok: Tokenizer, trees=None):
    """``enc(split, language, lang, cap)``: a task split encoded under ``cfg.finetune``."""
    ft = cfg.finetune
    return phase("task data")(lambda split, code, lang, cap: load_encoded(task, code, split, tok, lang, ft.max_len,
                                                                         cap, trees, seed=ft.seed))


@phase("fine-tuning")
def _finetune(pretrained: str | Path, spec, train, ft, losses: list[float] | None = None):
    """``finetune.finetune``, its seconds counted as fine-tuning (``timing``)."""
    return finetune(pretrained, spec, train, ft, losses=losses)


def _evaluate(model, spec, data, cfg: RunConfig, predictions: dict, setting: str) -> dict[str, float]:
    """Scores of ``model`` on ``data``; its per-example predictions go to ``predictions[setting]``."""
    with phase("evaluation"):
        scores, predictions[setting] = evaluate_predictions(model, spec, data, cfg.finetune.eval_batch_size,
                                                            cfg.finetune.precision)
    return scores


def run_finetune_mono(cfg: RunConfig, task: str, mono_dir: str | Path, out_dir: str | Path) -> dict:
    """Fine-tune the monolingual model on the original task data (shared by every MZ evaluation)."""
    spec, ft, lang = get_task(task), cfg.finetune, cfg.data.language
    tok, orig, _ = model_languages(mono_dir, None)
    enc = _encoder(cfg, task, tok)
    train, test = enc("train", lang, orig, ft.train_examples), enc(ft.eval_split, lang, orig, ft.test_examples)
    curves: dict[str, list[float]] = {"MZ": []}
    model = _finetune(mono_dir, spec, train, ft, losses=curves["MZ"])
    predictions: dict = {}
    scores = _evaluate(model, spec, test, cfg, predictions, "orig")
    out = save_finetuned(model, Path(out_dir) / "model", mono_dir, cfg, spec, "MZ", f"{lang} (original)", len(train),
                         predictions["orig"])
    # metrics by name (QA: em, then f1), the order of these rows in every results.json written so far
    return {"kind": "finetune_mono", "model_dir": str(out), "predictions": predictions, "finetune_loss": curves,
            "rows": [row(lang, MONO, task, "orig", m, v, cfg.pretrain.seed, cfg.preset, ft.seed)
                     for m, v in sorted(scores.items())]}


def run_transfer(cfg: RunConfig, task: str, bilingual_dir: str | Path, mono_task_dir: str | Path,
                 out_dir: str | Path | None = None) -> dict:
    """BS, BZ and MZ of one derived language on one task, and the deltas built from them.

    BS: fine-tune the bilingual model on derived train, test on derived test. BZ: fine-tune it on the
    original train, test on derived test. MZ: the monolingual model fine-tuned on the original (from
    ``run_finetune_mono``), tested on derived test. ``orig`` is BZ's model on the original test set.
    With ``finetune.save_models`` the BZ and BS models are saved under ``out_dir/models`` (``save_finetuned``).
    """
    spec, ft, lang = get_task(task), cfg.finetune, cfg.data.language
    tok, orig, derived = model_languages(bilingual_dir, cfg.data.transformation)
    trees = task_trees(task, lang, cfg.data) if derived.needs_trees else None
    enc = _encoder(cfg, task, tok, trees)
    train_o, train_d = enc("train", lang, orig, ft.train_examples), enc("train", lang, derived, ft.train_examples)
    test_o = enc(ft.eval_split, lang, orig, ft.test_examples)
    test_d = enc(ft.eval_split, lang, derived, ft.test_examples)

    predictions: dict = {}
    curves: dict[str, list[float]] = {"BZ": [], "BS": []}
    before = _input_embeddings(bilingual_dir)
    model = _finetune(bilingual_dir, spec, train_o, ft, losses=curves["BZ"])
    drift = {"BZ": _drift(before, model, train_o)}
    scores = {"BZ": _evaluate(model, spec, test_d, cfg, predictions, "BZ"),
              "orig": _evaluate(model, spec, test_o, cfg, predictions, "orig")}
    keep = _keeper(cfg, spec, bilingual_dir, out_dir, predictions)
    keep(model, "BZ", f"{lang} (original)", len(train_o))
    model = _finetune(bilingual_dir, spec, train_d, ft, losses=curves["BS"])
    drift["BS"] = _drift(before, model, train_d)
    scores["BS"] = _evaluate(model, spec, test_d, cfg, predictions, "BS")
    keep(model, "BS", f"T({lang}) = {cfg.data.transformation} (derived)", len(train_d))
    mono = load_finetuned(Path(mono_task_dir) / "model", spec)
    scores["MZ"] = _evaluate(mono, spec, test_d, cfg, predictions, "MZ")
    return {"kind": "transfer", "rows": _transfer_rows(cfg, spec, scores), "predictions": predictions,
            "embedding_drift": drift, "finetune_loss": curves}


def _keeper(cfg: RunConfig, spec, pretrained_dir: str | Path, out_dir: str | Path | None, predictions: dict):
    """``keep(model, setting, trained_on, n_train)``: with ``finetune.save_models``, saves a fine-tuned model
    as ``out_dir/models/<setting>`` (``save_finetuned``); otherwise does nothing."""
    if not cfg.finetune.save_models:
        return lambda *args: None
    if out_dir is None:
        raise ValueError("finetune.save_models: pass the step's out_dir (where models/BS and models/BZ go)")

    def keep(model, setting: str, trained_on: str, n_train: int) -> None:
        save_finetuned(model, Path(out_dir) / "models" / setting, pretrained_dir, cfg, spec, setting, trained_on,
                       n_train, predictions[setting])
    return keep


PIPELINE_TAGS = {"sequence": "text-classification", "token": "token-classification", "span": "question-answering"}


def save_finetuned(model, folder: str | Path, pretrained_dir: str | Path, cfg: RunConfig, spec, setting: str,
                   trained_on: str, n_train: int, predictions: dict) -> Path:
    """A fine-tuned model as a drop-in checkpoint: ``save_pretrained`` (with the task's label names), the
    pretrained model's tokenizer and languages, and a card with its test scores (95% bootstrap intervals
    over test examples, from ``predictions``: its per-example predictions table) and the step's config."""
    from .stats import score_interval

    folder = Path(folder)
    if spec.labels:
        model.config.id2label = dict(enumerate(spec.labels))
        model.config.label2id = {label: i for i, label in enumerate(spec.labels)}
    model.save_pretrained(folder)
    scores = {}
    for metric in spec.metrics:
        num, den = spec.scorer(metric).examples(predictions)
        value, low, high = score_interval(num, den)
        scores[metric] = (value, low, high, len(num))
    finetuned = {"task": spec.name, "setting": setting, "trained_on": trained_on, "train_examples": n_train,
                 "scores": scores, "architecture": type(model).__name__, "pipeline_tag": PIPELINE_TAGS[spec.kind],
                 "from": str(Path(pretrained_dir).resolve())}
    copy_model_files(pretrained_dir, folder, {**model_meta(pretrained_dir), "config": cfg.to_dict(),
                                              "finetuned": finetuned})
    save_drop_in(folder)
    return folder


def _input_embeddings(model_dir: str | Path):
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(model_dir), local_files_only=True).get_input_embeddings().weight.detach().clone()


def _drift(before, model, train) -> float:
    """Mean cosine of the word-embedding rows the fine-tuning data uses, before against after (1: unmoved)."""
    import torch

    used = sorted({i for e in train for i in e.input_ids if i >= N_SPECIAL})
    return embedding_drift(before, model.get_input_embeddings().weight.detach().cpu(), torch.tensor(used))


def _transfer_rows(cfg: RunConfig, spec, scores: dict[str, dict[str, float]]) -> list[dict]:
    """One row per setting and metric, then the deltas of the primary metric (where both sides exist)."""
    label, name = labels(cfg)
    r = lambda setting, metric, v: row(label, name, spec.name, setting, metric, v, cfg.pretrain.seed, cfg.preset,  # noqa: E731
                                       cfg.finetune.seed)
    rows = [r(setting, m, scores[setting][m]) for setting in ("BS", "BZ", "MZ", "orig") if setting in scores
            for m in spec.metrics if m in scores[setting]]
    main = {setting: s[spec.metric] for setting, s in scores.items()}
    if "BZ" in main and "BS" in main:
        rows.append(r("delta", "delta_sup", delta_sup(main["BZ"], main["BS"])))
    if "BZ" in main and "MZ" in main:
        rows.append(r("delta", "delta_mono", delta_mono(main["MZ"], main["BZ"])))
    return rows


def run_pair_transfer(cfg: RunConfig, task: str, pair_dir: str | Path, mono_task_dir: str | Path,
                      out_dir: str | Path | None = None) -> dict:
    """BZ, BS and MZ of a natural language pair (see the module docstring for what each one means here)."""
    spec, ft = get_task(task), cfg.finetune
    first, second = cfg.data.language, cfg.data.second_language
    tok, orig, _ = model_languages(pair_dir, None)
    enc = _encoder(cfg, task, tok)

    predictions: dict = {}
    curves: dict[str, list[float]] = {"BZ": []}
    test_b = enc(ft.eval_split, second, orig, ft.test_examples)
    keep = _keeper(cfg, spec, pair_dir, out_dir, predictions)
    train = enc("train", first, orig, ft.train_examples)
    model = _finetune(pair_dir, spec, train, ft, losses=curves["BZ"])
    scores = {"BZ": _evaluate(model, spec, test_b, cfg, predictions, "BZ"),
              "orig": _evaluate(model, spec, enc(ft.eval_split, first, orig, ft.test_examples), cfg, predictions, "orig")}
    keep(model, "BZ", first, len(train))
    if has_task(task, second, ("train",)):
        train = enc("train", second, orig, ft.train_examples)
        model = _finetune(pair_dir, spec, train, ft, losses=curves.setdefault("BS", []))
        scores["BS"] = _evaluate(model, spec, test_b, cfg, predictions, "BS")
        keep(model, "BS", second, len(train))
    mono_model = Path(mono_task_dir) / "model"
    mono_tok, mono_orig, _ = model_languages(mono_model, None)
    mono_test = _encoder(cfg, task, mono_tok)(ft.eval_split, second, mono_orig, ft.test_examples)
    scores["MZ"] = _evaluate(load_finetuned(mono_model, spec), spec, mono_test, cfg, predictions, "MZ")
    return {"kind": "transfer", "rows": _transfer_rows(cfg, spec, scores), "predictions": predictions,
            "finetune_loss": curves}


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


@phase("step")
def run_retrieval(cfg: RunConfig, bilingual_dir: str | Path, mono_dir: str | Path) -> dict:
    """Tatoeba accuracy@1 (both directions) of the bilingual (BZ) and monolingual (MZ) models, no fine-tuning.

    Derived language: each original sentence against the transformed set. Natural pair
    (``data.second_language``): ``data.language`` against its translations, with the pair model and
    the monolingual model of ``data.language``.
    """
    from .retrieval import evaluate_retrieval, load_encoder

    d, ft = cfg.data, cfg.finetune
    src, tgt = retrieval_sentences(d.language, d.second_language, ft.test_examples)
    target_spec = None if d.second_language else d.transformation  # a natural pair: both sides are original text
    scores, predictions = {}, {}
    for setting, model_dir in (("BZ", bilingual_dir), ("MZ", mono_dir)):
        tok, orig, derived = model_languages(model_dir, target_spec)
        trees = tree_parser(d.language, d) if derived.needs_trees else None
        with phase("retrieval"):
            scores[setting], predictions[setting] = evaluate_retrieval(
                load_encoder(model_dir, ft.device), tok, orig, src, derived, tgt, ft.max_len, trees,
                cfg.evaluate.retrieval_layer, ft.precision)
    label, name = labels(cfg)
    seed = cfg.pretrain.seed
    rows = [row(label, name, "retrieval", setting, m, v, seed, cfg.preset)
            for setting, sc_ in scores.items() for m, v in sc_.items()]
    rows.append(row(label, name, "retrieval", "delta", "delta_mono",
                    delta_mono(scores["MZ"]["accuracy"], scores["BZ"]["accuracy"]), seed, cfg.preset))
    return {"kind": "retrieval", "rows": rows, "n_sentences": len(src), "predictions": predictions}


@phase("step")
def run_alignment(cfg: RunConfig, bilingual_dir: str | Path) -> dict:
    """Embedding alignment P@1 (without mapping, and with Procrustes on held-out pairs); for a model trained
    with a dictionary (its ``dictionary.tsv``), also P@1 over the dictionary's pairs and over held-out pairs.
    With ``evaluate.contextual``, contextual P@1 and linear CKA per layer on held-out parallel sentences; for
    a model pretrained with ``pretrain.embedding_snapshots``, P@1 at each snapshot (``alignment_measures``)."""
    from transformers import RobertaForMaskedLM

    from .alignment_measures import STEP, history_report

    tok, _, derived = model_languages(bilingual_dir, cfg.data.transformation)
    model = RobertaForMaskedLM.from_pretrained(str(bilingual_dir), local_files_only=True)
    emb = model.roberta.embeddings.word_embeddings.weight
    seed = cfg.pretrain.seed
    dict_path = Path(bilingual_dir) / DICTIONARY_FILE
    dictionary = Dictionary.load(dict_path) if dict_path.exists() else None
    with phase("alignment"):
        rep = alignment_report(emb, derived.table, N_SPECIAL, cfg.evaluate.alignment_heldout, seed, dictionary)
    write_card(bilingual_dir, {**rep, "alignment_heldout": cfg.evaluate.alignment_heldout})
    label, name = labels(cfg)
    metrics = ("alignment_at_1", "alignment_at_1_procrustes", "chance")
    if dictionary is not None:
        metrics += ("alignment_at_1_dict", "alignment_at_1_heldout")
    if cfg.evaluate.contextual:
        contextual = _contextual(cfg, model.roberta, tok, derived)
        rep.update(contextual)
        metrics += tuple(k for k in contextual if not k.startswith("n_"))
    for step, value in history_report(bilingual_dir, derived.table, N_SPECIAL).items():
        rep[STEP.format(step)] = value
        metrics += (STEP.format(step),)
    rows = [row(label, name, "alignment", "none", k, rep[k], seed, cfg.preset) for k in metrics]
    return {"kind": "alignment", "rows": rows, "report": rep}


def _contextual(cfg: RunConfig, encoder, tok: Tokenizer, derived: DerivedLanguage) -> dict[str, float]:
    """``alignment_measures.contextual_report`` on the first ``evaluate.contextual_sentences`` Tatoeba
    sentences of ``data.language`` beside their derived form, cut to the model's block length."""
    import torch

    from .alignment_measures import contextual_report, parallel_sentences
    from .model import pick_device

    d, ft = cfg.data, cfg.finetune
    sentences = load_task("retrieval", d.language, "test", max_examples=cfg.evaluate.contextual_sentences)
    trees = tree_parser(d.language, d) if derived.needs_trees else None
    pairs = parallel_sentences(tok, derived, sentences, cfg.pretrain.seq_len, trees)
    # the alignment kind asks a cluster for no GPU (step_kinds): without one in sight it runs on the CPU
    device = pick_device(ft.device if ft.device != "cuda" or torch.cuda.is_available() else "cpu")
    precision = ft.precision if device.type == ft.device else "fp32"
    return contextual_report(encoder.to(device).eval(), pairs, ft.eval_batch_size, precision)


def save_results(result: dict, out_dir: str | Path, cfg: RunConfig, params: dict | None = None) -> Path:
    """Write ``results.json`` (atomically) beside the executed notebook: the step is done once it exists.

    It carries the resolved config and the fingerprint of the code that computed it (``grid.run.status``
    compares it with today's code to call a step stale). A result's per-example ``predictions`` (one
    table per setting) go first to ``predictions.json.gz`` beside it, and its fine-tuning losses
    (``finetune_loss``: one list per fine-tuned setting) to ``finetune_loss.csv``.
    """
    result = dict(result)
    curves = result.pop("finetune_loss", None)
    if curves is not None:
        rows = [f"{setting},{k},{v:.5f}\n" for setting, losses in curves.items() for k, v in enumerate(losses, 1)]
        atomic_write_text("setting,step,loss\n" + "".join(rows), Path(out_dir) / FINETUNE_LOSS)
    predictions = result.pop("predictions", None)
    if predictions is not None:
        atomic_write_json({"kind": result["kind"], "task": result["rows"][0]["task"] if result["rows"] else None,
                           "settings": predictions}, Path(out_dir) / PREDICTIONS)
    path = Path(out_dir) / "results.json"
    atomic_write_json({"params": params or {}, "config": cfg.to_dict(),
                       "code_fingerprint": code_fingerprint(result["kind"]), **result,
                       "timing": totals()}, path)
    return path
