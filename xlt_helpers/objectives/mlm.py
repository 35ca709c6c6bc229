"""``mlm``: the masked-LM term. Its targets are the masked tokens themselves (``model.mask_tokens``); its
loss is their mean cross-entropy. ``dict_mlm`` and ``tlm`` use the same loss on other targets or blocks."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the masked positions' logits (in fp32) against their targets."""
    return F.cross_entropy(logits.float(), targets.to(logits.device))
