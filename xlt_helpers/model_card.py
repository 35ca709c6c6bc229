"""The model card (``README.md``) of a saved model folder: what the model is, how it was trained, its
configuration, its final loss, its alignment when measured, and how to load it. Pure text from the
folder's ``xlt_meta.json`` and what the steps measured; every number with its interval and n."""
from __future__ import annotations

import json
import math
from typing import Sequence

from .labels import pair_name
from .stats import format_interval, proportion_interval, t_interval

TAIL_SHARE, TAIL_MIN = 0.1, 10  # the final loss: the mean of the last 10% of the logged steps (at least 10)


def loss_summary(losses: Sequence[float]) -> str:
    """The last logged loss and the mean of the last ``TAIL_SHARE`` of the steps (at least ``TAIL_MIN``) with
    its 95% t interval (steps are consecutive, not independent: the interval is a floor of the uncertainty)."""
    values = [v for v in losses if math.isfinite(v)]
    if not values:
        return "not logged"
    n = min(len(values), max(TAIL_MIN, round(TAIL_SHARE * len(values))))
    tail = values[-n:]
    mean = sum(tail) / n
    if n > 1:
        se = math.sqrt(sum((v - mean) ** 2 for v in tail) / (n - 1) / n)
        low, high = t_interval(mean, se, n - 1)
        mean_text = f"{format_interval(mean, low, high)} (mean of the last {n} of {len(values)} steps, 95% t interval)"
    else:
        mean_text = f"{mean:.3f} (one step logged; no interval)"
    return f"last step {values[-1]:.3f}; {mean_text}"


def _languages(meta: dict) -> tuple[str, str, list[str]]:
    """(title, one sentence on the model's languages, language codes for the card's metadata)."""
    lang, second, transformation = meta["language"], meta.get("second_language"), meta.get("transformation")
    if second:
        return (pair_name(lang, second), f"the natural language pair {lang} and {second}, one byte-level BPE "
                                         "tokenizer trained over both corpora", [lang, second])
    if transformation:
        return (f"{lang} + T({lang}) = {transformation}",
                f"the original language {lang} and its derived language T({lang}) = `{transformation}` (a "
                "synthetic language made from the same corpus: Inversion, Permutation, Transliteration or "
                "Syntax, METHOD.md)", [lang])
    return f"{lang} (monolingual)", f"the original language {lang} only", [lang]


def _alignment_lines(alignment: dict | None, transformation: str | None, finetuned: bool) -> list[str]:
    if alignment is None:
        if transformation and "translit" in transformation:
            return ["Not measured yet: the grid's alignment step (notebook 03) writes it into the pretrained "
                    "model's card."]
        return ["Not defined: only a derived language with Transliteration gives every token a twin."]
    n = int(alignment["n_pairs"])
    lines = ["Of the pretrained model this one was fine-tuned from (its embeddings before fine-tuning):", ""] \
        if finetuned else []
    for key, what in (("alignment_at_1", "P@1 without mapping (nearest derived embedding is the twin)"),
                      ("alignment_at_1_procrustes", "P@1 after Procrustes on held-out pairs")):
        if key in alignment:
            size = n if key == "alignment_at_1" else int(alignment.get("n_procrustes_test", n))
            iv = proportion_interval([alignment[key]], size)
            lines.append(f"- {what}: {format_interval(iv.estimate, iv.low, iv.high)} "
                         f"(n = {size} token pairs, {iv.method}; chance {alignment.get('chance', float('nan')):.4f})")
    return lines


def _training_lines(meta: dict, cfg: dict) -> list[str]:
    p, m, d = cfg.get("pretrain", {}), cfg.get("model", {}), cfg.get("data", {})
    layers = m.get("layers")
    corpus = (f"- corpus: {d.get('pretrain_sentences') or 'all'} sentences of {meta['language']}"
              + (f" and {meta['second_language']}" if meta.get("second_language") else "")
              + (f", derived copy `{meta['transformation']}` ({d.get('corpus_setting')})"
                 if meta.get("transformation") else "")
              + f"; {meta.get('n_tokens', '?')} tokens packed in {meta.get('n_blocks', '?')} blocks of {p.get('seq_len')}")
    return [
        "## How it was trained", "", corpus,
        f"- tokenizer: byte-level BPE, V = {meta['vocab_size']} (the model has 2V = {2 * meta['vocab_size']} "
        "embeddings: a transliterated token `i` is `i + V`)",
        f"- model: {layers} layer{'' if layers == 1 else 's'}, hidden {m.get('hidden')}, {m.get('heads')} heads, "
        f"FFN {m.get('ffn')}, {m.get('max_positions')} positions",
        f"- pretraining: objectives {', '.join(p.get('objectives', ['mlm']))}; {p.get('steps')} steps of "
        f"{p.get('batch_size')} blocks, peak lr {p.get('lr')} ({p.get('warmup')} warm-up steps), seed "
        f"{meta.get('seed')}, on {meta.get('device', '?')} ({meta.get('world_size', 1)} process(es))",
        f"- sub-word overlap between the two languages: {meta.get('subword_overlap', float('nan')):.3f}",
    ]


def _loading_lines(meta: dict, finetuned: dict | None) -> list[str]:
    folder = '"path/to/this/folder"'
    model_class = "AutoModelForMaskedLM" if finetuned is None else finetuned.get("architecture", "AutoModel")
    lines = ["## How to load", "", "```python", f"from transformers import AutoTokenizer, {model_class}"
             + (", pipeline" if finetuned is None else ""), "",
             f"tokenizer = AutoTokenizer.from_pretrained({folder})  # the original language, the toolkit's ids",
             f"model = {model_class}.from_pretrained({folder})"]
    if finetuned is None:
        lines += ['fill = pipeline("fill-mask", model=model, tokenizer=tokenizer)',
                  'fill("The capital of France is <mask>.")']
    if meta.get("transformation"):
        lines += ["", "# the derived language, written as its tokens separated by spaces (a twin token starts with ᵀ)",
                  f'derived = AutoTokenizer.from_pretrained({folder}, subfolder="derived")']
    return lines + [
        "```", "", "With the toolkit installed (`xlt_helpers`), which also turns text into the derived language:",
        "", "```python", "from xlt_helpers import load_pretrained", "",
        f"model, tokenizer, derived = load_pretrained({folder})",
        'ids = derived.encode("The cat sat on the mat.")   # text -> derived ids (<s> ... </s>)',
        "tokens = derived.tokens(ids)                        # derived ids -> readable tokens",
        "assert derived.ids(tokens) == ids", "```", "",
        "`tokenizer.json` is the original language's `transformers` tokenizer (the toolkit's word split and "
        "`<s> ... </s>` built in); `xlt_tokenizer.json` is the bare BPE the toolkit reads; `xlt_meta.json` "
        "holds the full configuration below. docs/checkpoints.md of the toolkit says more."]


def model_card(meta: dict, losses: Sequence[float] = (), alignment: dict | None = None,
               finetuned: dict | None = None) -> str:
    """The card of a model folder. ``meta``: its ``xlt_meta.json``; ``losses``: the pretraining loss
    per step (``loss_log.csv``); ``alignment``: ``alignment.alignment_report``'s output; ``finetuned``:
    for a fine-tuned model, ``{"task", "setting", "trained_on", "train_examples", "architecture",
    "pipeline_tag", "scores": {metric: (value, low, high, n)}}``."""
    cfg = meta.get("config", {})
    title, languages, codes = _languages(meta)
    preset = cfg.get("preset", "?")
    tag = "fill-mask" if finetuned is None else finetuned.get("pipeline_tag", "other")
    head = ["---", "library_name: transformers", f"pipeline_tag: {tag}", "language:", *[f"- {c}" for c in codes],
            "tags:", "- xlt-helpers", "- cross-lingual-transfer", "---", ""]
    what = (f"# RoBERTa, {title} ({preset} scale, seed {meta.get('seed')}){' fine-tuned' if finetuned else ''}\n\n"
            f"A RoBERTa encoder pretrained from scratch with masked-language modelling on {languages}, "
            "made with `xlt_helpers` to reproduce \"When is BERT Multilingual? Isolating Crucial Ingredients "
            "for Cross-lingual Transfer\" (Deshpande et al., NAACL 2022). It is a research artefact of the "
            f"`{preset}` scale, not a general-purpose language model.")
    if finetuned is not None:
        what += (f"\n\nThis copy is fine-tuned on `{finetuned['task']}` ({finetuned['setting']}: trained on "
                 f"{finetuned['trained_on']}, {finetuned['train_examples']} examples).")
    last = meta.get("final_loss")
    loss = ["## Final loss", "", f"- pretraining loss: {loss_summary(losses)}" if losses else
            f"- pretraining loss, last step: {last:.3f} (the loss log is not beside this folder: no interval)"
            if isinstance(last, (int, float)) else "- pretraining loss: not recorded"]
    if finetuned is not None:
        loss += ["", "## Scores", ""] + [
            f"- {metric}: {format_interval(v, lo, hi)} (n = {n} test examples, 95% bootstrap interval)"
            for metric, (v, lo, hi, n) in finetuned.get("scores", {}).items()]
    align = ["## Alignment", "", *_alignment_lines(alignment, meta.get("transformation"), finetuned is not None)]
    config = ["## Grid configuration", "", "```json", json.dumps(cfg, indent=2, sort_keys=True), "```"]
    parts = [head, [what, ""], _training_lines(meta, cfg), [""], loss, [""], align, [""], _loading_lines(meta, finetuned),
             [""], config]
    return "\n".join(line for part in parts for line in part) + "\n"
