"""Masked-LM pretraining from scratch on original + derived text (or original only): one readable loop."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .corpus import build_pretraining_data
from .model import autocast, build_mlm, mask_tokens, mlm_loss, pick_device, set_threads
from .scales import get_scale
from .storage import atomic_write_json, atomic_torch_save


@dataclass
class PretrainConfig:
    language: str
    transformation: str | None = None   # None: monolingual model
    scale: str = "demo"
    seed: int = 0
    corpus_setting: str = "parallel"
    shift_special: bool = False
    second_language: str | None = None  # a natural language pair instead of a derived language
    out_dir: str = "pretrained"
    device: str = "auto"
    overrides: dict = field(default_factory=dict)  # Scale fields to override (e.g. steps)
    progress: bool = True


def lr_at(step: int, peak: float, warmup: int, total: int) -> float:
    """Linear warm-up to ``peak``, then linear decay to zero (as in RoBERTa)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (total - step) / max(1, total - warmup))


def batch_indices(step: int, batch_size: int, n_blocks: int, seed: int) -> np.ndarray:
    """Blocks of optimizer step ``step``: epochs are seeded shuffles, so a resumed run sees the same data."""
    start = step * batch_size
    idx = np.empty(batch_size, dtype=np.int64)
    for k in range(batch_size):
        epoch, pos = divmod(start + k, n_blocks)
        if k == 0 or pos == 0:
            order = np.random.default_rng([seed, epoch]).permutation(n_blocks)
        idx[k] = order[pos]
    return idx


def pretrain(cfg: PretrainConfig) -> dict:
    """Pretrain (or resume) and save the model to ``cfg.out_dir/model``; returns a summary dict."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scale = get_scale(cfg.scale, **cfg.overrides)
    device = pick_device(cfg.device)
    threads = set_threads() if device.type == "cpu" else None

    # ---- data: tokenizer, original + derived corpus, packed blocks --------------------------
    tok, data = build_pretraining_data(cfg.language, cfg.transformation, scale, cfg.seed,
                                       cfg.corpus_setting, cfg.shift_special, cfg.second_language)
    V = data.vocab_size
    blocks = torch.from_numpy(data.blocks)
    langs = torch.from_numpy(data.langs)
    tables = torch.from_numpy(np.stack([lang.table for lang in data.languages]))

    # ---- model and optimizer ------------------------------------------------------------------
    model = build_mlm(scale, V, cfg.seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=scale.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01,
                            fused=device.type == "cuda")
    step = 0
    ckpt_path = out / "checkpoint.pt"
    log_path = out / "loss_log.csv"
    if ckpt_path.exists():  # resume after a kill
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
        torch.set_rng_state(ckpt["rng"])  # dropout continues exactly where the killed run stopped
        if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
    _truncate_log(log_path, step)

    # ---- training loop --------------------------------------------------------------------------
    model.train()
    micro = scale.batch_size // scale.grad_accum
    tokens_per_step = scale.batch_size * scale.seq_len
    bar = tqdm(total=scale.steps, initial=step, desc=f"pretrain {cfg.language}/{cfg.transformation or 'mono'}",
               disable=not cfg.progress, mininterval=2.0)
    t0, steps_timed = time.perf_counter(), 0
    with open(log_path, "a") as log:
        if log.tell() == 0:
            log.write("step,loss,lr,tokens_per_s\n")
        while step < scale.steps:
            lr = lr_at(step, scale.lr, scale.warmup, scale.steps)
            for group in opt.param_groups:
                group["lr"] = lr
            idx = torch.from_numpy(batch_indices(step, scale.batch_size, len(blocks), cfg.seed))
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # masking reproducible per step
            inputs, positions, targets = mask_tokens(blocks[idx], langs[idx], tables, V, gen)
            loss_sum = 0.0
            for m in range(scale.grad_accum):
                rows = slice(m * micro, (m + 1) * micro)
                sub_in = inputs[rows]
                lo, hi = rows.start * scale.seq_len, rows.stop * scale.seq_len
                sel = (positions >= lo) & (positions < hi)
                with autocast(device):
                    loss = mlm_loss(model, sub_in.to(device), (positions[sel] - lo).to(device),
                                    targets[sel].to(device))
                (loss * sel.sum() / max(1, len(positions))).backward()
                loss_sum += loss.item() * sel.sum().item() / max(1, len(positions))
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            steps_timed += 1
            tps = steps_timed * tokens_per_step / (time.perf_counter() - t0)
            log.write(f"{step},{loss_sum:.5f},{lr:.3e},{tps:.0f}\n")
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum:.3f}", tok_s=f"{tps:,.0f}")
            if step % scale.checkpoint_every == 0 or step == scale.steps:
                log.flush()
                atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                                   "rng": torch.get_rng_state(),
                                   "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None},
                                  ckpt_path)
    bar.close()
    if not math.isfinite(loss_sum if scale.steps else 0.0):
        raise FloatingPointError(f"pretraining diverged: loss {loss_sum}")

    # ---- save ------------------------------------------------------------------------------------
    model.save_pretrained(out / "model")
    tok.save(str(out / "model" / "tokenizer.json"))
    meta = {
        "language": cfg.language, "transformation": cfg.transformation, "second_language": cfg.second_language,
        "vocab_size": V, "seed": cfg.seed, "shift_special": cfg.shift_special, "scale": scale.to_dict(),
        "corpus_setting": cfg.corpus_setting, "n_blocks": int(len(blocks)), "n_tokens": data.n_tokens,
        "subword_overlap": data.overlap, "final_loss": loss_sum if scale.steps else None,
        "tokens_per_s": tps if steps_timed else None, "threads": threads, "device": str(device),
        "config": asdict(cfg),
    }
    atomic_write_json(meta, out / "model" / "xlt_meta.json")
    return meta


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= step]
    path.write_text("".join(lines[:1] + kept))
    if step == 0:
        path.unlink()
