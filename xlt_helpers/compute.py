"""Pretraining compute of a configuration in FLOPs: the x axis of transfer against compute.

An estimate from the shapes alone (no run needed), the usual 6 x parameters x tokens for the matmuls of
the forward and backward pass plus attention's sequence-length term, with the MLM head counted only
at the masked positions (our loss computes logits there only). Embedding lookups, layer norms and the
optimizer are left out: at hidden 64 they are a few percent.
"""
from __future__ import annotations

from .run_config import ModelConfig, PretrainConfig, RunConfig


def flops_per_token(model: ModelConfig, seq_len: int, mask_prob: float) -> float:
    """Training FLOPs (forward + backward) per input token of one pretraining step."""
    h, layers, vocab = model.hidden, model.layers, 2 * model.vocab_size  # the twin vocabulary: 2V rows
    per_layer = 4 * h * h + 2 * h * model.ffn           # Q, K, V, output projections; the feed-forward pair
    attention = 2 * seq_len * h                          # scores and weighted sum, per token and layer
    head = h * h + h * vocab                             # MLM transform and decoder, at masked tokens only
    return 6.0 * (layers * (per_layer + attention) + mask_prob * head)


def flat_pretrain_flops(flat: dict) -> float:
    """``pretrain_flops`` of a config's ``flat()`` form (a row of configs.csv)."""
    model = ModelConfig(vocab_size=int(flat["model.vocab_size"]), layers=int(flat["model.layers"]),
                        hidden=int(flat["model.hidden"]), ffn=int(flat["model.ffn"]))
    p = PretrainConfig(steps=int(flat["pretrain.steps"]), batch_size=int(flat["pretrain.batch_size"]),
                       seq_len=int(flat["pretrain.seq_len"]), mask_prob=float(flat["pretrain.mask_prob"]))
    return _flops(model, p)


def tokens_seen(p: PretrainConfig) -> int:
    """Tokens in every optimizer step of pretraining (packed blocks: padding is rare)."""
    return p.steps * p.batch_size * p.seq_len


def pretrain_flops(cfg: RunConfig) -> float:
    """Estimated FLOPs of pretraining one model of ``cfg``."""
    return _flops(cfg.model, cfg.pretrain)


def _flops(model: ModelConfig, p: PretrainConfig) -> float:
    return flops_per_token(model, p.seq_len, p.mask_prob) * tokens_seen(p)
