"""Masked-LM pretraining from scratch on original + derived text (or original only): one readable loop."""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .corpus import build_pretraining_data
from .model import (autocast, build_mlm, compile_layers, compile_requested, mask_tokens, mlm_loss, pick_device,
                    set_threads)
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
    derived_fraction: float = 1.0       # size of the derived corpus as a share of the original
    second_language: str | None = None  # a natural language pair instead of a derived language
    out_dir: str = "pretrained"
    device: str = "auto"
    overrides: dict = field(default_factory=dict)  # Scale fields to override (e.g. steps)
    progress: bool = True
    compile: bool | None = None         # torch.compile the encoder layers (None: $XLT_COMPILE=1)


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


class MaskedLMLoss(torch.nn.Module):
    """``mlm_loss`` as a module, so DistributedDataParallel can wrap it (its forward drives DDP's hooks)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, positions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return mlm_loss(self.model, inputs, positions, targets)


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.AdamW:
    """RoBERTa's AdamW (betas 0.9/0.98, eps 1e-6, weight decay 0.01), fused into one kernel for all
    parameters on CPU as on GPU (the default per-tensor loop cost ~5% of a CPU step)."""
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01,
                             fused=device.type in ("cuda", "cpu"))


def train_step(net: torch.nn.Module, model: torch.nn.Module, opt: torch.optim.Optimizer, inputs: torch.Tensor,
               positions: torch.Tensor, targets: torch.Tensor, device: torch.device, grad_accum: int = 1,
               rank: int = 0, world: int = 1) -> float:
    """One optimizer step on a masked batch (``mask_tokens``'s output, on the CPU); returns its loss.

    ``net`` is ``MaskedLMLoss(model)`` (or its DistributedDataParallel wrapper). Rank ``rank`` of ``world``
    takes its slice of the rows in ``grad_accum`` micro-batches; the loss is the mean over all the
    batch's masked positions whatever the split.
    """
    B, L = inputs.shape
    rows_per_rank = B // world
    micro = rows_per_rank // grad_accum
    n_total = max(1, len(positions))
    loss_part = torch.zeros((), device=device)
    for m in range(grad_accum):
        lo_row = rank * rows_per_rank + m * micro
        lo, hi = lo_row * L, (lo_row + micro) * L
        sel = (positions >= lo) & (positions < hi)
        n_sel = int(sel.sum())
        sub_in = inputs[lo_row: lo_row + micro].to(device, non_blocking=True)
        sync = world == 1 or m == grad_accum - 1
        with (contextlib.nullcontext() if sync else net.no_sync()), autocast(device):
            # positions stay on the CPU: mlm_loss lays them out per row without a device sync
            loss = net(sub_in, positions[sel] - lo, targets[sel].to(device, non_blocking=True))
        # weight = this micro-batch's share of the step's masked positions (times world: DDP averages)
        (loss * (n_sel * world / n_total)).backward()
        loss_part += loss.detach().float() * (n_sel / n_total)
    if world > 1:
        dist.all_reduce(loss_part)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss_part)


def _distributed(device_arg: str) -> tuple[int, int, torch.device | None]:
    """(rank, world size, device) under torchrun (WORLD_SIZE > 1); (0, 1, None) otherwise.

    Starts the process group on first use: NCCL with one GPU per local rank, else gloo on the CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = torch.cuda.is_available() and device_arg in ("auto", "cuda")
    device = torch.device("cuda", local) if want_cuda else torch.device("cpu")
    if want_cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if want_cuda else "gloo")
    return rank, world, device


def pretrain(cfg: PretrainConfig) -> dict:
    """Pretrain (or resume) and save the model to ``cfg.out_dir/model``; returns a summary dict.

    Under ``torchrun --nproc_per_node=N`` (WORLD_SIZE > 1) every rank takes its slice of each step's
    blocks (masking is drawn for the whole batch first, so the run sees exactly the data, masks and
    loss of a one-process run) and DistributedDataParallel averages the gradients; only rank 0 writes
    the log, checkpoints and the model.
    """
    out = Path(cfg.out_dir)
    scale = get_scale(cfg.scale, **cfg.overrides)
    rank, world, dist_device = _distributed(cfg.device)
    device = dist_device or pick_device(cfg.device)
    main = rank == 0
    if main:
        out.mkdir(parents=True, exist_ok=True)
    threads = set_threads() if device.type == "cpu" else None
    if world > 1 and device.type == "cpu":  # share the cores between the ranks on one machine
        threads = set_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    if scale.batch_size % (world * scale.grad_accum):
        raise ValueError(f"batch_size {scale.batch_size} must divide into {world} ranks x "
                         f"{scale.grad_accum} accumulation steps")

    # ---- data: tokenizer, original + derived corpus, packed blocks --------------------------
    if world > 1 and not main:
        dist.barrier()  # rank 0 trains and caches the tokenizer first
    tok, data = build_pretraining_data(cfg.language, cfg.transformation, scale, cfg.seed,
                                       cfg.corpus_setting, cfg.shift_special, cfg.second_language,
                                       derived_fraction=cfg.derived_fraction)
    if world > 1 and main:
        dist.barrier()
    V = data.vocab_size
    blocks = torch.from_numpy(data.blocks)
    langs = torch.from_numpy(data.langs)
    tables = torch.from_numpy(np.stack([lang.table for lang in data.languages]))

    # ---- model and optimizer ------------------------------------------------------------------
    model = build_mlm(scale, V, cfg.seed).to(device)
    if compile_requested(cfg.compile):
        compile_layers(model)
    opt = make_optimizer(model, scale.lr, device)
    step = 0
    ckpt_path = out / "checkpoint.pt"
    log_path = out / "loss_log.csv"
    if ckpt_path.exists():  # resume after a kill
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
        rngs = ckpt.get("rng_per_rank") or [ckpt["rng"]]
        torch.set_rng_state(rngs[rank] if rank < len(rngs) else rngs[0])  # dropout continues where it stopped
        if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            cuda_rngs = ckpt.get("cuda_rng_per_rank") or [ckpt["cuda_rng"]]
            state = cuda_rngs[rank] if rank < len(cuda_rngs) else cuda_rngs[0]
            if world > 1:
                torch.cuda.set_rng_state(state[0] if isinstance(state, list) else state, device)
            else:
                torch.cuda.set_rng_state_all(state)
    elif world > 1:
        torch.manual_seed(cfg.seed * 1_000_003 + 7919 * rank)  # independent dropout on every rank
    if main:
        _truncate_log(log_path, step)
    net: torch.nn.Module = MaskedLMLoss(model)
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)

    # ---- training loop --------------------------------------------------------------------------
    model.train()
    tokens_per_step = scale.batch_size * scale.seq_len
    bar = tqdm(total=scale.steps, initial=step, desc=f"pretrain {cfg.language}/{cfg.transformation or 'mono'}",
               disable=not (cfg.progress and main), mininterval=2.0)
    t0, steps_timed = time.perf_counter(), 0
    loss_sum = float("nan")
    log = open(log_path, "a") if main else None
    try:
        if log is not None and log.tell() == 0:
            log.write("step,loss,lr,tokens_per_s\n")
        while step < scale.steps:
            lr = lr_at(step, scale.lr, scale.warmup, scale.steps)
            for group in opt.param_groups:
                group["lr"] = lr
            idx = torch.from_numpy(batch_indices(step, scale.batch_size, len(blocks), cfg.seed))
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # masking reproducible per step
            inputs, positions, targets = mask_tokens(blocks[idx], langs[idx], tables, V, gen)
            loss_sum = train_step(net, model, opt, inputs, positions, targets, device, scale.grad_accum, rank, world)
            step += 1
            steps_timed += 1
            tps = steps_timed * tokens_per_step / (time.perf_counter() - t0)
            if log is not None:
                log.write(f"{step},{loss_sum:.5f},{lr:.3e},{tps:.0f}\n")
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum:.3f}", tok_s=f"{tps:,.0f}")
            if step % scale.checkpoint_every == 0 or step == scale.steps:
                _checkpoint(model, opt, step, device, world, main, log, ckpt_path)
    finally:
        if log is not None:
            log.close()
    bar.close()
    if not math.isfinite(loss_sum if scale.steps else 0.0):
        raise FloatingPointError(f"pretraining diverged: loss {loss_sum}")

    # ---- save ------------------------------------------------------------------------------------
    meta = {
        "language": cfg.language, "transformation": cfg.transformation, "second_language": cfg.second_language,
        "vocab_size": V, "seed": cfg.seed, "shift_special": cfg.shift_special, "scale": scale.to_dict(),
        "corpus_setting": cfg.corpus_setting, "n_blocks": int(len(blocks)), "n_tokens": data.n_tokens,
        "subword_overlap": data.overlap, "final_loss": loss_sum if scale.steps else None,
        "tokens_per_s": tps if steps_timed else None, "threads": threads, "device": str(device),
        "world_size": world, "config": asdict(cfg),
    }
    if main:
        model.save_pretrained(out / "model")
        tok.save(str(out / "model" / "tokenizer.json"))
        atomic_write_json(meta, out / "model" / "xlt_meta.json")
    if world > 1:
        dist.barrier()  # the model is on disk before any rank returns
    return meta


def _checkpoint(model, opt, step: int, device: torch.device, world: int, main: bool, log, path: Path) -> None:
    """Rank 0 writes model, optimizer, step and every rank's RNG state (dropout resumes exactly)."""
    rng = torch.get_rng_state()
    cuda_rng = (torch.cuda.get_rng_state_all() if world == 1 else [torch.cuda.get_rng_state(device)]) \
        if device.type == "cuda" else None
    rngs, cuda_rngs = [rng], [cuda_rng]
    if world > 1:
        rngs, cuda_rngs = [None] * world, [None] * world
        dist.all_gather_object(rngs, rng)
        dist.all_gather_object(cuda_rngs, cuda_rng)
    if main:
        log.flush()
        atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                           "rng": rng, "cuda_rng": cuda_rng, "rng_per_rank": rngs,
                           "cuda_rng_per_rank": cuda_rngs if device.type == "cuda" else None}, path)
    if world > 1:
        dist.barrier()


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= step]
    path.write_text("".join(lines[:1] + kept))
    if step == 0:
        path.unlink()
