"""The RoBERTa encoder (from ``transformers``), its masked-LM objective and device helpers."""
from __future__ import annotations

import contextlib
import os

import torch
import torch.nn.functional as F
from transformers import RobertaConfig, RobertaForMaskedLM

from .scales import Scale
from .transformations import BOS, EOS, MASK, N_SPECIAL, PAD


def roberta_config(scale: Scale, vocab_size: int) -> RobertaConfig:
    """A RoBERTa config at ``scale`` with ``2 * vocab_size`` embeddings (room for a transliterated twin)."""
    return RobertaConfig(
        vocab_size=2 * vocab_size,
        hidden_size=scale.hidden,
        num_hidden_layers=scale.layers,
        num_attention_heads=scale.heads,
        intermediate_size=scale.ffn,
        max_position_embeddings=max(scale.seq_len, scale.ft_max_len) + 2,
        type_vocab_size=1,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        hidden_dropout_prob=scale.dropout,
        attention_probs_dropout_prob=scale.dropout,
    )


def build_mlm(scale: Scale, vocab_size: int, seed: int) -> RobertaForMaskedLM:
    """A freshly initialised masked-LM, identical for identical (scale, vocab, seed)."""
    torch.manual_seed(seed)
    return RobertaForMaskedLM(roberta_config(scale, vocab_size))


def mask_tokens(blocks: torch.Tensor, langs: torch.Tensor, vocab_tables: torch.Tensor, vocab_size: int,
                generator: torch.Generator, prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BERT masking: choose ``prob`` of the non-special positions; 80% -> <mask>, 10% random, 10% kept.

    Random replacements come from the vocabulary of the block's own language: a random original
    sub-word mapped through that language's table (``vocab_tables[lang]``), so a transliterated block
    never receives an original-script token and vice versa.
    Returns the corrupted inputs, the flat indices of the chosen positions and their targets.
    """
    special = (blocks % vocab_size) < N_SPECIAL
    u = torch.rand(blocks.shape, generator=generator)
    chosen = (u < prob) & ~special
    flat = chosen.view(-1).nonzero().squeeze(1)
    targets = blocks.view(-1)[flat]
    inputs = blocks.clone().view(-1)
    action = torch.rand(flat.shape, generator=generator)
    to_mask = flat[action < 0.8]
    to_rand = flat[(action >= 0.8) & (action < 0.9)]
    inputs[to_mask] = MASK
    rand_orig = torch.randint(N_SPECIAL, vocab_size, to_rand.shape, generator=generator)
    rand_lang = langs.repeat_interleave(blocks.shape[1])[to_rand]
    inputs[to_rand] = vocab_tables[rand_lang, rand_orig]
    return inputs.view_as(blocks), flat, targets


def mlm_loss(model: RobertaForMaskedLM, inputs: torch.Tensor, positions: torch.Tensor,
             targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the masked positions only: the output layer never sees the other 85%."""
    hidden = model.roberta(input_ids=inputs).last_hidden_state
    picked = hidden.reshape(-1, hidden.shape[-1])[positions]
    logits = model.lm_head(picked)
    return F.cross_entropy(logits.float(), targets)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPU; full precision on CPU (bf16 matmuls are slower than fp32 on most CPUs)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def set_threads(threads: int | None = None) -> int:
    """Use every core for intra-op parallelism unless told otherwise ($XLT_THREADS)."""
    n = threads or int(os.environ.get("XLT_THREADS", 0)) or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n
