"""``align``: ALIGN-MLM's auxiliary loss (Tang, Deshpande & Narasimhan 2022) on the static input embeddings.

For the training dictionary's token pairs ``(i, j)`` the term is ``-mean cos(E[i], E[j])``; the training
loop adds it every step with weight ``pretrain.align_weight`` (lambda, 10 in the reference).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def loss(embeddings: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """``-mean cos(E[i], E[j])`` over the rows ``(i, j)`` of ``pairs`` (an ``(n, 2)`` tensor of token ids), in fp32."""
    a = F.normalize(embeddings[pairs[:, 0]].float(), dim=1)
    b = F.normalize(embeddings[pairs[:, 1]].float(), dim=1)
    return -(a * b).sum(1).mean()
