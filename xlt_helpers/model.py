"""The RoBERTa encoder (from ``transformers``), its masked-LM objective, the learning-rate schedule and
device helpers (what pretraining and fine-tuning share)."""
from __future__ import annotations

import contextlib
import os

import torch
import torch.nn.functional as F
from transformers import RobertaConfig, RobertaForMaskedLM

from .objectives import mlm
from .run_config import ModelConfig
from .transformations import BOS, EOS, MASK, N_SPECIAL, PAD


def roberta_config(model: ModelConfig, vocab_size: int) -> RobertaConfig:
    """A RoBERTa config of a resolved ``model`` group with ``2 * vocab_size`` embeddings (room for a twin)."""
    if model.max_positions is None:
        raise ValueError("model.max_positions is unresolved: build the config with run_config.resolve")
    return RobertaConfig(
        vocab_size=2 * vocab_size,
        hidden_size=model.hidden,
        num_hidden_layers=model.layers,
        num_attention_heads=model.heads,
        intermediate_size=model.ffn,
        max_position_embeddings=model.max_positions,
        type_vocab_size=1,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        hidden_dropout_prob=model.dropout,
        attention_probs_dropout_prob=model.dropout,
        initializer_range=model.init_range,
    )


def build_mlm(model: ModelConfig, vocab_size: int, seed: int) -> RobertaForMaskedLM:
    """A freshly initialised masked-LM, identical for identical (model, vocab, seed)."""
    torch.manual_seed(seed)
    return RobertaForMaskedLM(roberta_config(model, vocab_size))


def mask_tokens(blocks: torch.Tensor, langs: torch.Tensor, vocab_tables: torch.Tensor, vocab_size: int,
                generator: torch.Generator, prob: float = 0.15, mask_share: float = 0.8,
                random_share: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BERT masking: choose ``prob`` of the non-special positions; of those ``mask_share`` -> <mask>,
    ``random_share`` -> a random token, the rest kept (BERT: 80/10/10).

    Random replacements come from the vocabulary of the block's own language: a random original
    sub-word mapped through that language's table (``vocab_tables[lang]``), so a transliterated block
    never receives an original-script token and vice versa. ``langs`` is one language per block
    ``(B,)``, or one per position ``(B, L)`` (TLM blocks hold both languages).
    Returns the corrupted inputs, the flat indices of the chosen positions and their targets.
    """
    special = (blocks % vocab_size) < N_SPECIAL
    u = torch.rand(blocks.shape, generator=generator)
    chosen = (u < prob) & ~special
    flat = chosen.view(-1).nonzero().squeeze(1)
    targets = blocks.view(-1)[flat]
    inputs = blocks.clone().view(-1)
    action = torch.rand(flat.shape, generator=generator)
    to_mask = flat[action < mask_share]
    to_rand = flat[(action >= mask_share) & (action < mask_share + random_share)]
    inputs[to_mask] = MASK
    rand_orig = torch.randint(N_SPECIAL, vocab_size, to_rand.shape, generator=generator)
    rand_lang = langs.repeat_interleave(blocks.shape[1])[to_rand] if langs.dim() == 1 else langs.reshape(-1)[to_rand]
    inputs[to_rand] = vocab_tables[rand_lang, rand_orig]
    return inputs.view_as(blocks), flat, targets


def mlm_loss(model: RobertaForMaskedLM, inputs: torch.Tensor, positions: torch.Tensor,
             targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the masked positions only: the output layer never sees the other 85%.

    ``positions`` are flat indices into ``inputs`` (row-major, as ``mask_tokens`` returns them); they may
    stay on the CPU when ``inputs`` is on a GPU (the per-row bookkeeping is then done without a sync).
    """
    return mlm.loss(masked_logits(model, inputs, positions), targets)


def masked_logits(model: RobertaForMaskedLM, inputs: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The output layer at the flat ``positions`` of ``inputs`` only: ``(len(positions), vocabulary)``."""
    return model.lm_head(masked_hidden_states(model, inputs, positions))


def masked_hidden_states(model: RobertaForMaskedLM, inputs: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The encoder's last hidden states at the flat ``positions`` of ``inputs``: ``(len(positions), hidden)``.

    The same numbers as ``model.roberta(input_ids=inputs).last_hidden_state.view(-1, hidden)[positions]``
    (tests/test_pretrain.py checks it), computed faster: the layers are called through their weights
    with ``scaled_dot_product_attention`` (no attention mask, as the plain forward without one), and the
    LAST layer computes queries, attention output and feed-forward only at the chosen positions (its
    keys and values still cover every position), which is exact because nothing else reads them.
    Models this path does not cover (other attention or position types) go through the plain forward.
    """
    if not _fast_path_ok(model):
        hidden = model.roberta(input_ids=inputs).last_hidden_state
        return hidden.reshape(-1, hidden.shape[-1])[positions.to(hidden.device)]
    cfg, rb = model.config, model.roberta
    B, L = inputs.shape
    h = _embed(rb.embeddings, inputs, cfg.hidden_dropout_prob if model.training else 0.0)
    layers = rb.encoder.layer
    full_layer = getattr(model, "_xlt_layer_fn", None) or _encoder_layer
    for layer in layers[:-1]:
        h = full_layer(layer, h, cfg, model.training)
    rows, rank, grid = _query_grid(positions, B, L)
    dev = inputs.device
    rows, rank, grid = rows.to(dev, non_blocking=True), rank.to(dev, non_blocking=True), grid.to(dev, non_blocking=True)
    out = _encoder_layer(layers[-1], h, cfg, model.training, query_cols=grid)
    return out[rows, rank]


def compile_layers(model: RobertaForMaskedLM) -> RobertaForMaskedLM:
    """Opt-in ``torch.compile`` of the encoder layers that ``mlm_loss`` runs over every position.

    Fixed shapes, so one compilation serves the whole run (it costs ~30-60 s on CPU; see
    benchmarks/README.md for whether it pays off). The last layer (its number of query positions
    changes every step) and the output layer stay eager.
    """
    model._xlt_layer_fn = torch.compile(_encoder_layer, dynamic=False)
    return model


def _fast_path_ok(model) -> bool:
    cfg = getattr(model, "config", None)
    return (isinstance(model, RobertaForMaskedLM) and cfg.hidden_act == "gelu" and not cfg.is_decoder
            and getattr(cfg, "position_embedding_type", None) in (None, "absolute")
            and not getattr(cfg, "chunk_size_feed_forward", 0) and len(model.roberta.encoder.layer) > 0)


def _query_grid(positions: torch.Tensor, B: int, L: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row layout of the chosen flat positions: row, rank within the row, and a (B, K) column grid.

    ``grid[r, :n_r]`` holds the chosen columns of row ``r``; shorter rows are padded with column 0
    (computed, then discarded). ``out[rows, rank]`` gives the positions back in their given order.
    """
    positions = positions.long()
    rows = positions // L
    order = None
    if len(positions) > 1 and not bool((positions[1:] >= positions[:-1]).all()):
        order = torch.argsort(positions, stable=True)      # mask_tokens gives them sorted; others may not
        positions = positions[order]
    srows, cols = positions // L, positions % L
    counts = torch.bincount(srows, minlength=B)
    K = max(1, int(counts.max())) if len(positions) else 1
    start = torch.cumsum(counts, 0) - counts
    srank = torch.arange(len(positions), device=positions.device) - start[srows]
    grid = torch.zeros(B, K, dtype=torch.long, device=positions.device)
    grid[srows, srank] = cols
    if order is None:
        return rows, srank, grid
    rank = torch.empty_like(srank)
    rank[order] = srank
    return rows, rank, grid


def _embed(emb, inputs: torch.Tensor, p: float) -> torch.Tensor:
    """RobertaEmbeddings.forward without token types or given positions (ids from the padding mask)."""
    pad = emb.padding_idx
    nonpad = inputs.ne(pad).int()
    pos_ids = (torch.cumsum(nonpad, dim=1).type_as(nonpad) * nonpad).long() + pad
    x = emb.word_embeddings(inputs) + emb.token_type_embeddings.weight[0] + emb.position_embeddings(pos_ids)
    ln = emb.LayerNorm
    return dropout(F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps), p)


class _KeepMask(torch.autograd.Function):
    """``x * keep * scale`` saving only the boolean mask (as ``nn.Dropout`` does)."""

    @staticmethod
    def forward(ctx, x, keep, scale):
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.ops.aten.native_dropout_backward(x, keep, scale)

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved_tensors
        return torch.ops.aten.native_dropout_backward(grad, keep, ctx.scale), None, None


def dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout with probability ``p`` (no-op for ``p == 0``).

    On GPU this is ``F.dropout``. On CPU the keep mask comes from 15-bit uniforms, four per 64-bit draw
    of the generator, instead of one Bernoulli draw per element (which cost ~15% of a training step):
    an element is kept with probability ``round((1 - p) * 2**15) / 2**15`` (0.1 -> 0.1000061) and scaled
    by its inverse, so the expected output is exactly ``x``.
    """
    if p <= 0:
        return x
    if x.device.type != "cpu" or p >= 1:
        return F.dropout(x, p, True)
    threshold = round((1 - p) * 32768)
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_().view(torch.int16)[:n]
    keep = (bits & 0x7FFF).lt_(threshold).view(x.shape)
    return _KeepMask.apply(x, keep, 32768.0 / threshold)


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p: float, scale: float) -> torch.Tensor:
    """Softmax attention without a mask; attention-probability dropout ``p`` through ``dropout`` on CPU."""
    if p <= 0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, scale=scale)
    probs = torch.matmul(q * scale, k.transpose(-1, -2)).softmax(-1)
    return torch.matmul(dropout(probs, p), v)


def _encoder_layer(layer, h: torch.Tensor, cfg, training: bool, query_cols: torch.Tensor | None = None) -> torch.Tensor:
    """One RobertaLayer (post-LN) through its weights; with ``query_cols`` (B, K) only those positions."""
    B, L, D = h.shape
    H = cfg.num_attention_heads
    hd = D // H
    p_hidden = cfg.hidden_dropout_prob if training else 0.0
    p_attn = cfg.attention_probs_dropout_prob if training else 0.0
    sa, so = layer.attention.self, layer.attention.output
    if query_cols is None:
        qkv = F.linear(h, torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]),
                       torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]))
        q, k, v = qkv.view(B, L, 3, H, hd).permute(2, 0, 3, 1, 4).unbind(0)
    else:
        kv = F.linear(h, torch.cat([sa.key.weight, sa.value.weight]), torch.cat([sa.key.bias, sa.value.bias]))
        k, v = kv.view(B, L, 2, H, hd).permute(2, 0, 3, 1, 4).unbind(0)
        h = torch.gather(h, 1, query_cols.unsqueeze(-1).expand(-1, -1, D))
        q = F.linear(h, sa.query.weight, sa.query.bias).view(B, -1, H, hd).transpose(1, 2)
    a = _attention(q, k, v, p_attn, sa.scaling)
    a = a.transpose(1, 2).reshape(B, -1, D)
    a = dropout(F.linear(a, so.dense.weight, so.dense.bias), p_hidden)
    h = F.layer_norm(a + h, (D,), so.LayerNorm.weight, so.LayerNorm.bias, so.LayerNorm.eps)
    f = F.gelu(F.linear(h, layer.intermediate.dense.weight, layer.intermediate.dense.bias))
    out = layer.output
    f = dropout(F.linear(f, out.dense.weight, out.dense.bias), p_hidden)
    return F.layer_norm(f + h, (D,), out.LayerNorm.weight, out.LayerNorm.bias, out.LayerNorm.eps)


def lr_at(step: int, peak: float, warmup: int, total: int) -> float:
    """Linear warm-up to ``peak``, then linear decay to zero (as in RoBERTa): pretraining sets it each step,
    fine-tuning takes it as its scheduler's factor (``peak`` 1)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (total - step) / max(1, total - warmup))


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """bf16 autocast for ``precision="bf16"``; none for ``"fp32"``; ``"auto"``: bf16 on a GPU only.

    A resolved config never says ``auto`` (run_config.resolve turns ``$XLT_CPU_BF16`` into ``bf16``):
    bf16 matmuls are slower than fp32 on CPUs without bf16 units; on CPUs with them (avx512_bf16, AMX)
    they run ~2x fp32 (benchmarks/README.md), hence the opt-in.
    """
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16" and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def set_threads(threads: int | None = None) -> int:
    """Use every core for intra-op parallelism unless told otherwise ($XLT_THREADS)."""
    n = threads or int(os.environ.get("XLT_THREADS", 0)) or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n
