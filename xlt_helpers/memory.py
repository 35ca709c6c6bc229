"""Memory of a training batch, estimated from the shapes alone: a batch no device can hold is refused
before a grid runs instead of failing (or swapping for hours) after the steps before it ran.

Imports nothing of the package (a configuration is read by its attributes), so that the grid's checks
(``grid.preflight``) can use it from a low floor.
"""
from __future__ import annotations

from typing import Any


def training_bytes(model: Any, batch: int, seq_len: int, logit_share: float) -> float:
    """A lower bound on the memory one training micro-batch of ``batch`` sequences of ``seq_len`` needs:
    the activations kept for the backward pass at two bytes each (bf16; fp32 doubles them) -- per layer
    the layer input, Q, K, V, the attention output and the feed-forward input (6 x hidden), the
    feed-forward's two ``ffn`` wide tensors and the attention probabilities (heads x seq_len) -- plus
    the fp32 logits over the twin vocabulary at ``logit_share`` of the positions and 16 bytes a
    parameter (weights, gradients, AdamW's two moments). A refusal built on it is never wrong."""
    h, layers, vocab = model.hidden, model.layers, 2 * model.vocab_size
    tokens = batch * seq_len
    activations = 2.0 * tokens * (layers * (6 * h + 2 * model.ffn + model.heads * seq_len) + h)
    logits = 4.0 * tokens * logit_share * vocab
    params = vocab * h + layers * (4 * h * h + 2 * h * model.ffn) + h * h + h * vocab
    return activations + logits + 16.0 * params


def device_memory(device: str) -> int | None:
    """Bytes of memory of ``device`` (``cpu``: the machine's RAM; ``cuda``: the first GPU's); None: unknown."""
    if device == "cpu":
        import psutil

        return int(psutil.virtual_memory().total)
    if device == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory) if torch.cuda.is_available() else None
    return None


def memory_problem(cfg: Any) -> str | None:
    """Why a micro-batch of pretraining or a batch of fine-tuning of ``cfg`` cannot fit in its device's
    memory (``training_bytes`` is a lower bound, so this never refuses a batch that fits); None: it may."""
    p, ft = cfg.pretrain, cfg.finetune
    checks = [("pretrain.batch_size", p.device, p.batch_size // p.grad_accum, p.seq_len, p.mask_prob,
               f" (a micro-batch of {p.batch_size // p.grad_accum} blocks of {p.seq_len}; pretrain.grad_accum "
               "splits a step into micro-batches)"),
              ("finetune.batch_size", ft.device, ft.batch_size, ft.max_len, 0.0, f" (of {ft.max_len} sub-words)")]
    for name, device, batch, seq_len, share, what in checks:
        total = device_memory(device)
        need = training_bytes(cfg.model, batch, seq_len, share)
        if total is not None and need > total:
            return (f"{name} = {batch if name.startswith('finetune') else p.batch_size}: one training batch{what} "
                    f"needs at least {need / 2**30:,.1f} GiB, the {device} has {total / 2**30:,.1f} GiB: expected "
                    "a smaller batch")
    return None
