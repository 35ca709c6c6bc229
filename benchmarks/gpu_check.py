"""`make gpu-check`: a few hundred pretraining steps of each GPU scale on one CUDA GPU (bf16 autocast, fused
AdamW, torch.compile of the encoder layers, SDPA attention, as a real run), printing tokens/s, peak GPU
memory and model-FLOP utilisation against a bf16 matmul peak measured in the same run. At most ~5 minutes.

Refuses, with one line and exit status 2, on a machine without CUDA. ``--cpu-smoke`` runs the same code on
the CPU at a tiny shape for 2 steps (fp32, no compile): what tests/test_gpu_check.py checks.

Data are random sub-word blocks of the scale's shape (the step's cost does not depend on which ids they
hold); masking, the loss and the optimizer step are those of ``xlt_helpers.pretrain``.
MFU = (6 N + 12 layers hidden seq_len) x tokens/s / peak, N = non-embedding parameters (PaLM, appendix B),
as in benchmarks/bench_train.py.
"""
from __future__ import annotations

import xlt_helpers  # noqa: F401  (first: sets OMP_WAIT_POLICY and the offline switches before torch loads)

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import matmul_peak, sync  # noqa: E402

from xlt_helpers.model import build_mlm, compile_layers, mask_tokens  # noqa: E402
from xlt_helpers.pretrain import MaskedLMLoss, make_optimizer, train_step  # noqa: E402
from xlt_helpers.run_config import RunConfig, resolve  # noqa: E402
from xlt_helpers.transformations import BOS, N_SPECIAL, DerivedLanguage  # noqa: E402

GPU_SCALES = ("gpu_small", "paper")   # run_config.PRESETS named for one GPU (see docs/scales.md)
TINY = {"model.layers": 1, "model.hidden": 32, "model.heads": 2, "model.ffn": 64, "model.vocab_size": 320,
        "pretrain.batch_size": 4, "pretrain.seq_len": 32}


def flops_per_token(model: torch.nn.Module, cfg: RunConfig) -> int:
    """Model FLOPs per token: 6 x non-embedding parameters + attention (QK^T and AV, forward and backward)."""
    enc = sum(p.numel() for p in model.roberta.encoder.parameters())
    head = sum(p.numel() for m in (model.lm_head.dense, model.lm_head.layer_norm) for p in m.parameters())
    return 6 * (enc + head) + 12 * cfg.model.layers * cfg.model.hidden * cfg.pretrain.seq_len


def measure(cfg: RunConfig, device: torch.device, steps: int, warmup: int) -> dict:
    """Time ``steps`` optimizer steps of ``cfg``'s shape after ``warmup`` untimed ones (compilation)."""
    p, V = cfg.pretrain, cfg.model.vocab_size
    gen = torch.Generator().manual_seed(0)
    langs_list = [DerivedLanguage("orig", V), DerivedLanguage("translit", V)]
    tables = torch.from_numpy(np.stack([lang.table for lang in langs_list]))
    blocks = torch.randint(N_SPECIAL, V, (p.batch_size, p.seq_len), generator=gen)
    blocks[:, 0] = BOS
    langs = torch.arange(p.batch_size) % 2
    blocks[langs == 1] = tables[1][blocks[langs == 1]]
    model = build_mlm(cfg.model, V, p.seed).to(device)
    if p.compile:
        compile_layers(model)
    opt = make_optimizer(model, p, device)
    net = MaskedLMLoss(model)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, loss = [], float("nan")
    for step in range(warmup + steps):
        inputs, positions, targets = mask_tokens(blocks, langs, tables, V, gen, p.mask_prob)
        sync(device)
        t = time.perf_counter()
        loss = train_step(net, model, opt, inputs, positions, targets, device, p.grad_accum, precision=p.precision,
                          grad_clip=p.grad_clip)
        sync(device)
        if step >= warmup:
            times.append(time.perf_counter() - t)
    tps = p.batch_size * p.seq_len / float(np.median(times))
    mem = torch.cuda.max_memory_allocated() / (1 << 30) if device.type == "cuda" else float("nan")
    return {"tokens_per_s": tps, "peak_gib": mem, "flops_per_token": flops_per_token(model, cfg), "loss": loss,
            "step_s": float(np.median(times))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200, help="timed steps per scale")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps first (torch.compile runs here)")
    ap.add_argument("--scales", nargs="*", default=list(GPU_SCALES))
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU, 2 steps (for tests)")
    args = ap.parse_args()
    if args.cpu_smoke:
        device, overrides, args.steps, args.warmup = torch.device("cpu"), {**TINY, "pretrain.device": "cpu",
                                                                           "pretrain.precision": "fp32",
                                                                           "pretrain.compile": False}, 2, 1
    elif not torch.cuda.is_available():
        print(f"error: gpu-check needs a CUDA GPU; torch {torch.__version__} sees none on this machine "
              f"(torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    else:
        device = torch.device("cuda")
        overrides = {"pretrain.device": "cuda", "pretrain.precision": "bf16", "pretrain.compile": True}
        torch.backends.cuda.matmul.allow_tf32 = True
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (smoke test)"
    peak = matmul_peak(device, torch.bfloat16 if device.type == "cuda" else torch.float32) * 1e9
    print(f"device {name}; torch {torch.__version__}; measured matmul peak "
          f"{peak / 1e12:,.1f} TFLOP/s ({'bf16' if device.type == 'cuda' else 'fp32'})")
    print(f"{'scale':<10}{'layers':>7}{'hidden':>7}{'batch x seq':>13}{'step s':>9}{'tokens/s':>13}"
          f"{'peak GiB':>10}{'MFU':>7}{'loss':>8}")
    for scale in args.scales:
        cfg = resolve(scale, overrides)
        r = measure(cfg, device, args.steps, args.warmup)
        mfu = r["flops_per_token"] * r["tokens_per_s"] / peak
        print(f"{scale:<10}{cfg.model.layers:>7}{cfg.model.hidden:>7}"
              f"{f'{cfg.pretrain.batch_size} x {cfg.pretrain.seq_len}':>13}{r['step_s']:>9.3f}"
              f"{r['tokens_per_s']:>13,.0f}{r['peak_gib']:>10.1f}{mfu:>7.1%}{r['loss']:>8.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
