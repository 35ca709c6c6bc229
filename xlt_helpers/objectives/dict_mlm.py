"""``dict_mlm``: DICT-MLM's targets (Chaudhary et al. 2020: predict a masked word or its translation).

At the masked positions of a corpus step, a token that is in the training dictionary gets its twin as
target with probability ``pretrain.dict_mlm_prob``; every other position keeps its own token. The term's
loss is ``mlm.loss`` on these targets, so ``[mlm, dict_mlm]`` asks for the token and, on some positions,
its translation as well.
"""
from __future__ import annotations

import numpy as np
import torch


def partner_table(pairs: np.ndarray, size: int) -> torch.Tensor:
    """``partner[t]``: the twin of token ``t`` in the dictionary's ``(n, 2)`` pairs (both directions), -1 for
    a token without one. A token in several pairs (a natural pair's dictionary) keeps its first pair as a
    first word, or else its first pair as a second word."""
    partner = np.full(size, -1, dtype=np.int64)
    for src, dst in ((pairs[:, 1], pairs[:, 0]), (pairs[:, 0], pairs[:, 1])):
        first = np.unique(src, return_index=True)[1]
        partner[src[first]] = dst[first]
    return torch.from_numpy(partner)


def targets(masked: torch.Tensor, partner: torch.Tensor, prob: float, generator: torch.Generator) -> torch.Tensor:
    """The masked tokens, each one with a twin replaced by it with probability ``prob``.

    One uniform draw per position from ``generator``, whether or not the token has a twin, so the draws
    do not depend on the dictionary's content.
    """
    twin = partner[masked]
    swap = (torch.rand(masked.shape, generator=generator) < prob) & (twin >= 0)
    return torch.where(swap, twin, masked)
