"""Sentence retrieval without fine-tuning (Tatoeba): mean-pooled middle-layer states, cosine nearest neighbour.

A sentence's embedding is the mean of the hidden states of its sub-word tokens (``<s>``, ``</s>`` and
padding excluded) at the middle layer of the encoder (``middle_layer``: layer ``(L + 1) // 2`` of
``L``, counting the embedding output as layer 0, as XTREME takes a middle layer of XLM-R). Accuracy@1
of a direction is the share of source sentences whose cosine-nearest target sentence is their own
translation (line ``i`` of both sides); it is reported in both directions and as their mean.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer

from .alignment import nearest_neighbours
from .finetune import length_batches
from .model import autocast, pick_device
from .encoding import transform_texts
from .tasks import TASKS
from .transformations import PAD, DerivedLanguage
from .trees import TreeFn


def middle_layer(n_layers: int) -> int:
    """Index into ``hidden_states`` (0 = embeddings) of the middle transformer layer."""
    return max(1, (n_layers + 1) // 2)


def load_encoder(model_dir: str | Path, device: str = "auto"):
    """The pretrained encoder (the MLM head is dropped), in eval mode."""
    from transformers import RobertaModel

    model = RobertaModel.from_pretrained(str(model_dir), add_pooling_layer=False, local_files_only=True)
    return model.to(pick_device(device)).eval()


def encode_for_retrieval(tok: Tokenizer, lang: DerivedLanguage, sentences: Sequence[str], max_len: int,
                         trees: TreeFn | None = None) -> list[list[int]]:
    """``<s> T(sentence) </s>`` ids, cut to ``max_len`` (words, sub-words, then T: as pretraining text)."""
    return [[lang.bos, *ids[:max_len - 2], lang.eos] for ids in transform_texts(sentences, tok, lang, trees)]


@torch.no_grad()
def sentence_embeddings(model, inputs: Sequence[Sequence[int]], layer: int | None = None,
                        batch_size: int = 128, precision: str = "auto") -> torch.Tensor:
    """(n, hidden) mean-pooled states of ``layer`` (default: the middle layer) over each sentence's body."""
    layer = middle_layer(model.config.num_hidden_layers) if layer is None else layer
    device = next(model.parameters()).device
    out = torch.zeros(len(inputs), model.config.hidden_size)
    for idx in length_batches([len(x) for x in inputs], batch_size, None):
        width = max(len(inputs[i]) for i in idx)
        ids = torch.full((len(idx), width), PAD, dtype=torch.long)
        att = torch.zeros((len(idx), width), dtype=torch.long)
        body = torch.zeros((len(idx), width))
        for k, i in enumerate(idx):
            n = len(inputs[i])
            ids[k, :n] = torch.tensor(inputs[i])
            att[k, :n] = 1
            body[k, 1:max(2, n - 1)] = 1.0  # without <s> and </s> (a one-token body is kept)
        with autocast(device, precision):
            states = model(input_ids=ids.to(device), attention_mask=att.to(device),
                           output_hidden_states=True).hidden_states[layer]
        states = states.float().cpu()
        out[torch.as_tensor(idx)] = (states * body[..., None]).sum(1) / body.sum(1, keepdim=True)
    return out


def retrieval_hits(source: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """For each row ``i`` of ``source``: is row ``i`` of ``target`` its cosine-nearest neighbour (bool)."""
    if len(source) != len(target):
        raise ValueError(f"{len(source)} source sentences for {len(target)} targets: retrieval needs translations")
    if len(source) == 0:
        return np.zeros(0, dtype=bool)
    return (nearest_neighbours(source, target) == torch.arange(len(source))).numpy()


def accuracy_at_1(source: torch.Tensor, target: torch.Tensor) -> float:
    """Share of rows ``i`` of ``source`` whose cosine-nearest row of ``target`` is row ``i``."""
    hits = retrieval_hits(source, target)
    return float(hits.mean()) if len(hits) else float("nan")


def retrieval_scores(source: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Accuracy@1 source -> target, target -> source, and their mean (``accuracy``)."""
    return TASKS["retrieval"].score(retrieval_predictions(source, target))


def retrieval_predictions(source: torch.Tensor, target: torch.Tensor) -> dict[str, list]:
    """Per-sentence hits in both directions, with each sentence's position (``id``)."""
    fwd, bwd = retrieval_hits(source, target), retrieval_hits(target, source)
    return {"id": list(range(len(fwd))), "hit_src_to_tgt": fwd.tolist(), "hit_tgt_to_src": bwd.tolist()}


def evaluate_retrieval(model, tok: Tokenizer, source_lang: DerivedLanguage, source: Sequence[str],
                       target_lang: DerivedLanguage, target: Sequence[str], max_len: int,
                       trees: TreeFn | None = None, layer: int | None = None,
                       precision: str = "auto") -> tuple[dict[str, float], dict[str, list]]:
    """Retrieval scores of one model between ``source`` in ``source_lang`` and ``target`` in ``target_lang``
    (``trees``: a parser, needed when ``target_lang`` reorders by Syntax; ``layer``: None for the middle one),
    and the per-sentence hits they are computed from."""
    src = sentence_embeddings(model, encode_for_retrieval(tok, source_lang, source, max_len), layer,
                              precision=precision)
    tgt = sentence_embeddings(model, encode_for_retrieval(tok, target_lang, target, max_len, trees), layer,
                              precision=precision)
    table = retrieval_predictions(src, tgt)
    return TASKS["retrieval"].score(table), table
