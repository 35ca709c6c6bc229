"""Masked-LM pretraining from scratch on original + derived text (or original only): one readable loop.

The loss of a step is the weighted sum of the terms of ``pretrain.objectives`` (``objectives/``): masked-LM
cross-entropy on the packed corpus (``mlm``, the default; ``dict_mlm`` with dictionary targets) or on TLM
blocks (``tlm``), and the embedding alignment term (``align``)."""
from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import progress as live
from . import snapshots
from .corpus import build_pretraining_data
from .fingerprint import code_fingerprint
from .model import (autocast, build_mlm, compile_layers, lr_at, mask_tokens, masked_logits, mlm_loss, pick_device,
                    set_threads)
from .objectives import align, batch_kinds, dict_mlm, mlm, needs_dictionary, weights
from .objectives.dictionary import FILE as DICTIONARY_FILE
from .objectives.dictionary import for_model as model_dictionary
from .run_config import PretrainConfig, RunConfig, step_key
from .storage import atomic_torch_save, atomic_write_json, safe_torch_load
from .tokenizer import SAVED_NAME as TOKENIZER_FILE
from .transformations import N_SPECIAL


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
    """A step's loss terms from one forward pass, as a module so DistributedDataParallel can wrap it (its
    forward drives DDP's hooks).

    ``targets`` a tensor: ``mlm_loss``, one loss. A dict ``{objective: targets}``: one cross-entropy per
    objective at the same masked positions (``mlm``, ``dict_mlm``, ``tlm``) from one pass, plus ``align``
    on the input embeddings when the module has ``align_pairs`` (an ``(n, 2)`` tensor of token ids).
    """

    def __init__(self, model: torch.nn.Module, align_pairs: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.align_pairs = align_pairs

    def forward(self, inputs: torch.Tensor, positions: torch.Tensor,
                targets: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
        if not isinstance(targets, dict):
            return mlm_loss(self.model, inputs, positions, targets)
        logits = masked_logits(self.model, inputs, positions)
        terms = {name: mlm.loss(logits, t) for name, t in targets.items()}
        if self.align_pairs is not None:
            terms["align"] = align.loss(self.model.get_input_embeddings().weight, self.align_pairs)
        return terms


def make_optimizer(model: torch.nn.Module, p: PretrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with the config's betas, eps and weight decay (defaults: RoBERTa's), fused into one kernel
    for all parameters on CPU as on GPU (the default per-tensor loop cost ~5% of a CPU step)."""
    if p.optimizer != "adamw":
        raise ValueError(f"pretrain.optimizer {p.optimizer!r} is not implemented (allowed: adamw)")
    return torch.optim.AdamW(model.parameters(), lr=p.lr, betas=tuple(p.betas), eps=p.eps,
                             weight_decay=p.weight_decay, fused=device.type in ("cuda", "cpu"))


def train_step(net: torch.nn.Module, model: torch.nn.Module, opt: torch.optim.Optimizer, inputs: torch.Tensor,
               positions: torch.Tensor, targets: torch.Tensor | dict[str, torch.Tensor], device: torch.device,
               grad_accum: int = 1, rank: int = 0, world: int = 1, precision: str = "auto", grad_clip: float = 1.0,
               weights: dict[str, float] | None = None, terms: dict[str, float] | None = None) -> float:
    """One optimizer step on a masked batch (``mask_tokens``'s output, on the CPU); returns its loss.

    ``net`` is ``MaskedLMLoss(model)`` (or its DistributedDataParallel wrapper). Rank ``rank`` of ``world``
    takes its slice of the rows in ``grad_accum`` micro-batches; a masked term is the mean over all the
    batch's masked positions whatever the split. ``targets``: the masked tokens (plain MLM), or one
    tensor of targets per objective (``step_targets``); the loss is then the sum of ``net``'s terms times
    their ``weights`` (default 1), and ``terms``, if given, receives each term's value.
    """
    B, L = inputs.shape
    rows_per_rank = B // world
    micro = rows_per_rank // grad_accum
    n_total = max(1, len(positions))
    parts: dict[str, torch.Tensor] = {}
    for m in range(grad_accum):
        lo_row = rank * rows_per_rank + m * micro
        lo, hi = lo_row * L, (lo_row + micro) * L
        sel = (positions >= lo) & (positions < hi)
        n_sel = int(sel.sum())
        sub_in = inputs[lo_row: lo_row + micro].to(device, non_blocking=True)
        sync = world == 1 or m == grad_accum - 1
        with (contextlib.nullcontext() if sync else net.no_sync()), autocast(device, precision):
            # positions stay on the CPU: mlm_loss lays them out per row without a device sync
            out = net(sub_in, positions[sel] - lo, _selected(targets, sel, device))
        loss = None
        for name, term in (out if isinstance(out, dict) else {"mlm": out}).items():
            # a masked term's weight = this micro-batch's share of the step's masked positions (times world:
            # DDP averages); align is the same in every micro-batch and on every rank: 1 / grad_accum of it each
            share, scale = (1 / grad_accum, 1 / grad_accum) if name == "align" else (n_sel / n_total,
                                                                                     n_sel * world / n_total)
            weighted = term * (scale if weights is None else weights[name] * scale)
            loss = weighted if loss is None else loss + weighted
            parts[name] = parts.get(name, torch.zeros((), device=device)) + term.detach().float() * share
        loss.backward()
    if world > 1:
        for name, part in parts.items():
            dist.all_reduce(part)
            if name == "align":
                part /= world
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    values = {name: float(part) for name, part in parts.items()}
    if terms is not None:
        terms.update(values)
    return sum(v if weights is None else weights[name] * v for name, v in values.items())


def _selected(targets: torch.Tensor | dict[str, torch.Tensor], sel: torch.Tensor,
              device: torch.device) -> torch.Tensor | dict[str, torch.Tensor]:
    """The targets of the selected positions on ``device`` (one tensor, or one per objective)."""
    if isinstance(targets, dict):
        return {name: t[sel].to(device, non_blocking=True) for name, t in targets.items()}
    return targets[sel].to(device, non_blocking=True)


def step_targets(kind: str, masked: torch.Tensor, p: PretrainConfig, partner: torch.Tensor | None,
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
    """What each objective's term predicts at a step's masked positions: on TLM blocks the masked tokens
    (``tlm``); on corpus blocks the masked tokens (``mlm``) and the masked tokens with some dictionary twins
    swapped in (``dict_mlm``)."""
    if kind == "tlm":
        return {"tlm": masked}
    out = {}
    if "mlm" in p.objectives:
        out["mlm"] = masked
    if "dict_mlm" in p.objectives:
        out["dict_mlm"] = dict_mlm.targets(masked, partner, p.dict_mlm_prob, generator)
    return out


def pretrain(cfg: RunConfig, out_dir: str | Path, progress: bool = True) -> dict:
    """Pretrain (or resume) the model of ``cfg`` and save it to ``out_dir/model``; returns a summary dict.

    Under ``torchrun --nproc_per_node=N`` (WORLD_SIZE > 1) every rank takes its slice of each step's
    blocks (masking is drawn for the whole batch first, so the run sees exactly the data, masks and
    loss of a one-process run) and DistributedDataParallel averages the gradients; only rank 0 writes
    the log, checkpoints and the model.
    """
    out, p, seed = Path(out_dir), cfg.pretrain, cfg.pretrain.seed
    rank, world, device, main, threads = _setup(cfg, out)

    # ---- data: tokenizer, original + derived corpus, packed blocks --------------------------
    with _rank0_first(world, main):  # rank 0 trains and caches the tokenizer first
        tok, data = build_pretraining_data(cfg)
    V = data.vocab_size
    blocks = torch.from_numpy(data.blocks)
    langs = torch.from_numpy(data.langs)
    tables = torch.from_numpy(np.stack([lang.table for lang in data.languages]))

    # ---- objectives: the blocks each step trains on, the dictionary, the weight of each term ---------
    kinds = batch_kinds(p.objectives)   # ["corpus"] (mlm, dict_mlm), ["tlm"], or both: steps take turns
    sources = {"corpus": (blocks, langs)}
    if data.tlm_blocks is not None:
        sources["tlm"] = (torch.from_numpy(data.tlm_blocks), torch.from_numpy(data.tlm_langs))
    dictionary = model_dictionary(cfg.data, p, tok, data.languages[-1].table, N_SPECIAL) \
        if needs_dictionary(p.objectives) else None
    partner = dict_mlm.partner_table(dictionary.train, 2 * V) if "dict_mlm" in p.objectives else None
    term_weights = weights(p.objectives, p.align_weight)

    # ---- model and optimizer ------------------------------------------------------------------
    model = build_mlm(cfg.model, V, seed).to(device)
    if p.compile:
        compile_layers(model)
    opt = make_optimizer(model, p, device)
    ckpt_path, log_path = out / "checkpoint.pt", out / "loss_log.csv"
    step, (loss_sum, tps, last_terms) = _resume(ckpt_path, model, opt, device, rank, world, seed, run_id=_run_id(cfg))
    if main:
        _truncate_log(log_path, step)
        snapshots.trim(out, step)
        if step == 0 and snapshots.due(0, p.embedding_snapshots, p.steps):
            _snapshot(model, out, 0)
    align_pairs = torch.from_numpy(dictionary.train).to(device) if "align" in p.objectives else None
    net: torch.nn.Module = MaskedLMLoss(model, align_pairs)
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)

    # ---- training loop --------------------------------------------------------------------------
    model.train()
    tokens_per_step = p.batch_size * p.seq_len
    d = cfg.data
    label = {"pair": d.second_language, "derived": d.transformation}.get(d.model_kind, "mono")
    bar = tqdm(total=p.steps, initial=step, desc=f"pretrain {cfg.data.language}/{label}",
               disable=not (progress and main), mininterval=2.0)
    t0, steps_timed = time.perf_counter(), 0
    log = open(log_path, "a") if main else None
    term_columns = [] if tuple(p.objectives) == ("mlm",) else list(p.objectives)  # each term's value, logged
    try:
        if log is not None and log.tell() == 0:
            log.write(",".join(["step", "loss", "lr", "tokens_per_s", *term_columns]) + "\n")
        while step < p.steps:
            lr = lr_at(step, p.lr, p.warmup, p.steps)
            for group in opt.param_groups:
                group["lr"] = lr
            kind = kinds[step % len(kinds)]              # corpus or TLM blocks; this is its (step // len(kinds))-th batch
            kind_blocks, kind_langs = sources[kind]
            idx = torch.from_numpy(batch_indices(step // len(kinds), p.batch_size, len(kind_blocks), seed))
            gen = torch.Generator().manual_seed(seed * 1_000_003 + step)  # masking reproducible per step
            inputs, positions, masked = mask_tokens(kind_blocks[idx].long(), kind_langs[idx].long(), tables, V, gen,
                                                    p.mask_prob, p.mask_token_share, p.random_token_share)
            targets = step_targets(kind, masked, p, partner, gen)
            step_terms: dict[str, float] = {}
            loss_sum = train_step(net, model, opt, inputs, positions, targets, device, p.grad_accum, rank, world,
                                  p.precision, p.grad_clip, term_weights, step_terms)
            last_terms.update(step_terms)
            step += 1
            steps_timed += 1
            tps = steps_timed * tokens_per_step / (time.perf_counter() - t0)
            if log is not None:
                log.write(f"{step},{loss_sum:.5f},{lr:.3e},{tps:.0f}"
                          + "".join(f",{step_terms[c]:.5f}" if c in step_terms else "," for c in term_columns) + "\n")
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum:.3f}", tok_s=f"{tps:,.0f}")
            if main:
                live.report("pretrain", step, p.steps, step == p.steps, loss=loss_sum, tokens_per_s=tps)
            if step % p.checkpoint_every == 0 or step == p.steps:
                _checkpoint(model, opt, step, (loss_sum, tps, last_terms), device, world, main, log, ckpt_path,
                            _run_id(cfg))
            if main and snapshots.due(step, p.embedding_snapshots, p.steps):
                _snapshot(model, out, step)
    finally:
        if log is not None:
            log.close()
    bar.close()
    if not math.isfinite(loss_sum if p.steps else 0.0):
        raise FloatingPointError(f"pretraining diverged: loss {loss_sum}")

    # ---- save ------------------------------------------------------------------------------------
    meta = {
        "language": cfg.data.language, "transformation": cfg.data.transformation,
        "second_language": cfg.data.second_language, "vocab_size": V, "seed": seed,
        "shift_special": cfg.data.shift_special, "corpus_setting": cfg.data.corpus_setting,
        "n_blocks": int(len(blocks)), "n_tokens": data.n_tokens, "subword_overlap": data.overlap,
        "final_loss": loss_sum if p.steps else None, "tokens_per_s": tps, "threads": threads,
        "final_losses": {name: last_terms[name] for name in p.objectives if name in last_terms},
        "device": str(device), "world_size": world, "config": cfg.to_dict(),
        "code_fingerprint": code_fingerprint("pretrain"),
    }
    if data.tlm_blocks is not None:
        meta["n_tlm_blocks"] = int(len(data.tlm_blocks))
    if dictionary is not None:
        meta["dictionary"] = {"train_pairs": int(len(dictionary.train)), "heldout_pairs": int(len(dictionary.heldout)),
                              "file": DICTIONARY_FILE}
    if main:
        model.save_pretrained(out / "model")
        tok.save(str(out / "model" / TOKENIZER_FILE))
        if dictionary is not None:
            dictionary.save(out / "model" / DICTIONARY_FILE)
        if p.embedding_snapshots:
            snapshots.pack(out, out / "model")
        atomic_write_json(meta, out / "model" / "xlt_meta.json")
    if world > 1:
        dist.barrier()  # the model is on disk before any rank returns
    return meta


# ---- plumbing: processes and devices, resuming ----------------------------------------------------

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


def _setup(cfg: RunConfig, out: Path) -> tuple[int, int, torch.device, bool, int | None]:
    """(rank, world, device, is rank 0, CPU threads); makes ``out`` and checks the batch splits evenly."""
    rank, world, dist_device = _distributed(cfg.pretrain.device)
    device = dist_device or pick_device(cfg.pretrain.device)
    main = rank == 0
    if main:
        out.mkdir(parents=True, exist_ok=True)
    threads = set_threads() if device.type == "cpu" else None
    if world > 1 and device.type == "cpu":  # share the cores between the ranks on one machine
        threads = set_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    p = cfg.pretrain
    if p.batch_size % (world * p.grad_accum):
        raise ValueError(f"pretrain.batch_size {p.batch_size} must divide into {world} ranks x "
                         f"{p.grad_accum} accumulation steps")
    return rank, world, device, main, threads


@contextlib.contextmanager
def _rank0_first(world: int, main: bool):
    """Rank 0 runs the block first (and fills the caches), then the other ranks."""
    if world > 1 and not main:
        dist.barrier()
    yield
    if world > 1 and main:
        dist.barrier()


def _run_id(cfg: RunConfig) -> str:
    """What a checkpoint must match to be resumed: the config and the code (never an older run's state)."""
    return step_key(cfg, ("model", "data", "pretrain"), code_fingerprint("pretrain"))


def _load_checkpoint(path: Path, device: torch.device) -> dict | None:
    """The checkpoint at ``path``; None (and one line naming the file) when it cannot be read, e.g. a file
    truncated by a full disk, or one that holds anything but tensors and plain values (loaded with
    ``weights_only``: a crafted file never runs code): the run then starts over instead of failing on
    every rerun."""
    try:
        return safe_torch_load(path, map_location=device)
    except Exception as exc:  # noqa: BLE001 - any unreadable file means the same: start over
        print(f"{path}: unreadable checkpoint ({type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}); "
              "set aside as checkpoint.unreadable.pt, pretraining starts from step 0")
        return None


def _resume(path: Path, model, opt, device: torch.device, rank: int, world: int, seed: int,
            run_id: str) -> tuple[int, tuple[float, float | None, dict[str, float]]]:
    """Load the checkpoint of this very run if there is one (after a kill); returns the step to go on from
    and the (loss, tokens/s, last value of each loss term) it saved ((NaN, None, {}) at step 0), so a run
    killed after its last checkpoint still reports its final loss.

    A checkpoint of another config or code version, or one that cannot be read, is set aside (renamed),
    not resumed.
    """
    if not path.exists():
        if world > 1:
            torch.manual_seed(seed * 1_000_003 + 7919 * rank)  # independent dropout on every rank
        return 0, (float("nan"), None, {})
    ckpt = _load_checkpoint(path, device)
    if ckpt is None or ckpt.get("run_id") != run_id:
        if world > 1:
            dist.barrier()  # every rank has read it before rank 0 moves it
            torch.manual_seed(seed * 1_000_003 + 7919 * rank)
        if rank == 0:
            aside = "unreadable" if ckpt is None else f"other-run-{ckpt.get('run_id') or 'old'}"
            path.replace(path.with_name(f"checkpoint.{aside}.pt"))
        return 0, (float("nan"), None, {})
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    rngs = ckpt.get("rng_per_rank") or [ckpt["rng"]]
    torch.set_rng_state(rngs[rank] if rank < len(rngs) else rngs[0])  # dropout continues where it stopped
    if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
        cuda_rngs = ckpt.get("cuda_rng_per_rank") or [ckpt["cuda_rng"]]
        state = cuda_rngs[rank] if rank < len(cuda_rngs) else cuda_rngs[0]
        if world > 1:
            torch.cuda.set_rng_state(state[0] if isinstance(state, list) else state, device)
        else:
            torch.cuda.set_rng_state_all(state)
    return ckpt["step"], (float(ckpt.get("loss", float("nan"))), ckpt.get("tokens_per_s"), dict(ckpt.get("losses", {})))


def _checkpoint(model, opt, step: int, last: tuple[float, float | None, dict[str, float]], device: torch.device,
                world: int, main: bool, log, path: Path, run_id: str) -> None:
    """Rank 0 writes model, optimizer, step, its (loss, tokens/s, each term's last value) and every rank's RNG
    state (dropout resumes exactly)."""
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
        atomic_torch_save({"run_id": run_id, "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                           "loss": last[0], "tokens_per_s": last[1], "losses": dict(last[2]),
                           "rng": rng, "cuda_rng": cuda_rng, "rng_per_rank": rngs,
                           "cuda_rng_per_rank": cuda_rngs if device.type == "cuda" else None}, path)
    if world > 1:
        dist.barrier()


def _snapshot(model: torch.nn.Module, out: Path, step: int) -> None:
    """The input embeddings after ``step`` (``snapshots``: how alignment grows during training)."""
    snapshots.save(model.get_input_embeddings().weight.detach().float().cpu().numpy(), out, step)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= step]
    path.write_text("".join(lines[:1] + kept))
    if step == 0:
        path.unlink()
