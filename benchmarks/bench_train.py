"""Training, evaluation, alignment and transformation throughput of xlt_helpers against a plain transformers baseline.

Usage: python benchmarks/bench_train.py [--steps 30] [--threads N] [--device auto|cpu|cuda] [--dropout 0.1]
                                        [--compile] [--bf16-cpu] [--only pretrain,finetune,alignment,transform]
                                        [--json results.json]

One process, CPU or CUDA. Sections (all on the same machine, same thread settings):

* pretrain: a plain ``transformers`` RobertaForMaskedLM step (full-vocabulary logits, labels=-100 at
  unmasked positions, torch AdamW defaults) against OUR step (``xlt_helpers.pretrain.train_step``:
  build_mlm + mask_tokens + mlm_loss + make_optimizer, bf16 autocast on GPU as in pretrain), same
  configuration (4 layers, hidden 256, 4 heads, FFN 1024, 10,000 embeddings, batch 32 x 128, dropout
  0.1), same initial weights, same blocks of real English text (10,000-type BPE), same masks, same
  learning-rate schedule and clipping. The variants run interleaved, step by step, so a change in
  machine load hits both. Prints tokens/s, peak memory, MFU and the loss curves at equal steps, with a
  second run of ours under another dropout seed as the reference for loss noise (``--dropout 0`` makes
  the curves comparable to the last digit). Peak memory on CPU: the process RSS at the peak of the
  variant's steps (every variant's model lives in this process) and, in brackets, its rise above the RSS
  at the step's start (after ``malloc_trim``): the step's activations and temporaries. Memory comes from
  one extra, untimed step after the timed ones, so that the sampler does not slow the timed steps.
* finetune: token classification (English POS) through ``finetune.finetune`` with its length-bucketed
  batches, against the same call with random batches; batched no-grad evaluation (``predict``).
* alignment: ``alignment_report`` over a 2 x 40,000 vocabulary, random embeddings (d=64, 512) and an
  aligned worst case.
* transform: sentences/s of inv, perm, translit, translit+inv, sentence by sentence and batched
  (``DerivedLanguage.transform_corpus``), checked equal.

MFU = model FLOP/s / measured matmul peak, with model FLOPs per token = 6 * N + 12 * layers * hidden *
seq_len (PaLM, appendix B: N = non-embedding parameters, i.e. the encoder layers and the LM head's dense
and layer norm, not the word/position/type embeddings nor the tied output matrix; the second term is
attention's QK^T and AV, forward and backward). The same count for both variants, so the MFU ratio is
the speedup; the peak is a large fp32 (bf16 for bf16 variants) matmul timed in this run.
"""
from __future__ import annotations

import xlt_helpers  # noqa: F401  (first: sets OMP_WAIT_POLICY and the offline switches before torch loads)

import argparse
import gc
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from dataclasses import replace

import numpy as np
import torch
from transformers import RobertaForMaskedLM
from transformers.utils import logging as hf_logging

from xlt_helpers.alignment import alignment_report
from xlt_helpers.corpus import pack
from xlt_helpers.data import load_pretraining_corpus
from xlt_helpers.model import build_mlm, compile_layers, mask_tokens, pick_device, roberta_config, set_threads
from xlt_helpers.model import lr_at
from xlt_helpers.pretrain import MaskedLMLoss, batch_indices, make_optimizer, train_step
from xlt_helpers.run_config import resolve
from xlt_helpers.tokenizer import encode_words_batch, load_or_train_tokenizer, split_words
from xlt_helpers.transformations import BOS, EOS, N_SPECIAL, DerivedLanguage, transliteration_table

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the benchmarks' shared helpers
from machine_load import busy_cpu_seconds  # noqa: E402

VOCAB = 10_000


# ----------------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------------
try:
    import ctypes
    _LIBC = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc: RSS deltas may then under-count memory freed and reused between steps
    _LIBC = None


class Memory:
    """Peak memory of a code block: RSS sampled every 2 ms on CPU, torch.cuda.max_memory_allocated on GPU."""

    def __init__(self, device: torch.device):
        self.device, self._stop, self._peak = device, threading.Event(), 0
        self.page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self.rss())
            time.sleep(0.002)

    def __enter__(self):
        if _LIBC is not None:  # hand freed heap pages back first, so that "before" is what the step starts from
            _LIBC.malloc_trim(0)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.before = torch.cuda.memory_allocated()
        else:
            self.before = self._peak = self.rss()
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._peak, self.rss())
        return False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, dtype: torch.dtype, reps: int = 5) -> float:
    """Best achieved GFLOP/s of a large square matmul (2048 on CPU, 8192 on GPU)."""
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = math.inf
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def mib(nbytes: float) -> str:
    return f"{nbytes / 2 ** 20:,.0f}"


# ----------------------------------------------------------------------------------------------------
# Data: real English text, 10,000-type BPE, packed 128-token blocks
# ----------------------------------------------------------------------------------------------------
def english(n_sentences: int):
    corpus = load_pretraining_corpus("en", max_sentences=n_sentences)
    tok = load_or_train_tokenizer(["en"], [corpus], VOCAB)
    return tok, corpus, [ids for ids, _ in encode_words_batch(tok, [split_words(s) for s in corpus])]


# the benchmark's model: the demo preset, 4 layers of hidden 256 (RoBERTa-small proportions)
BENCH_MODEL = {"model.layers": 4, "model.hidden": 256, "model.heads": 4, "model.ffn": 1024}


# ----------------------------------------------------------------------------------------------------
# Pretraining: baseline vs ours
# ----------------------------------------------------------------------------------------------------
def bench_pretrain(args, device: torch.device, ids: list[list[int]], out: dict) -> RobertaForMaskedLM:
    cfg = resolve("demo", {**BENCH_MODEL, "model.dropout": args.dropout, "pretrain.seq_len": 128,
                           "pretrain.batch_size": 32, "pretrain.lr": args.lr, "pretrain.warmup": 2})
    m, p = cfg.model, cfg.pretrain
    # build_mlm(m, V) has 2V embeddings (room for a transliterated twin): V = 5,000 gives the 10,000 of
    # the baseline configuration, so both models have exactly the same parameters and initial weights.
    half = VOCAB // 2
    blocks = torch.from_numpy(pack(ids, BOS, EOS, p.seq_len))
    langs = torch.zeros(len(blocks), dtype=torch.long)
    tables = torch.arange(VOCAB)[None]
    B, L = p.batch_size, p.seq_len
    n_steps = args.warmup_steps + args.steps
    total_sched = max(100, 10 * n_steps)

    variants = []

    def add(name, model, kind, ctx=nullcontext, peak_dtype=torch.float32):
        variants.append(dict(name=name, model=model, kind=kind, ctx=ctx, peak_dtype=peak_dtype, times=[], losses=[],
                             mem=[], first=None))

    torch.manual_seed(args.seed)
    base = RobertaForMaskedLM(roberta_config(m, half)).to(device)
    add("hf baseline (RobertaForMaskedLM, fp32)", base, "hf")
    gpu_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    ours = build_mlm(m, half, args.seed).to(device)
    add("ours (xlt_helpers.pretrain" + (", bf16 autocast)" if device.type == "cuda" else ", fp32)"), ours, "ours",
        peak_dtype=gpu_dtype)
    if args.noise_reference:
        add("ours, another dropout seed (noise ref.)", build_mlm(m, half, args.seed).to(device), "ours",
            peak_dtype=gpu_dtype)
    if args.compile:
        add("ours + torch.compile", compile_layers(build_mlm(m, half, args.seed).to(device)), "ours",
            peak_dtype=gpu_dtype)
    if args.bf16_cpu and device.type == "cpu":
        add("ours + bf16 autocast (CPU)", build_mlm(m, half, args.seed).to(device), "ours",
            ctx=lambda: torch.autocast("cpu", dtype=torch.bfloat16), peak_dtype=torch.bfloat16)
    for v in variants:
        torch.testing.assert_close(v["model"].roberta.embeddings.word_embeddings.weight,
                                   base.roberta.embeddings.word_embeddings.weight)  # identical initial weights
        v["model"].train()
        if v["kind"] == "hf":  # plain torch AdamW (its default implementation), the pretraining hyper-parameters
            v["opt"] = torch.optim.AdamW(v["model"].parameters(), lr=p.lr, betas=(0.9, 0.98), eps=1e-6,
                                         weight_decay=0.01)
        else:
            v["opt"] = make_optimizer(v["model"], p, device)
            v["net"] = MaskedLMLoss(v["model"])
        torch.manual_seed(args.seed + (2 if "noise" in v["name"] else 1))  # dropout streams start alike
        v["rng"] = torch.get_rng_state()

    def hf_step(v, inputs, positions, targets):
        labels = torch.full((B * L,), -100, dtype=torch.long)
        labels[positions] = targets                   # the loss covers exactly the masked positions
        loss = v["model"](input_ids=inputs.to(device), labels=labels.view(B, L).to(device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(v["model"].parameters(), 1.0)
        v["opt"].step()
        v["opt"].zero_grad(set_to_none=True)
        return loss.item()

    def our_step(v, inputs, positions, targets):
        with v["ctx"]():
            return train_step(v["net"], v["model"], v["opt"], inputs, positions, targets, device)

    print(f"\n== pretraining: {m.layers} layers, hidden {m.hidden}, {m.heads} heads, FFN {m.ffn}, "
          f"vocabulary {VOCAB:,}, batch {B} x {L}, dropout {m.dropout}, lr {p.lr:g} (warm-up 2), "
          f"{len(blocks):,} blocks of English; {args.warmup_steps} untimed + {args.steps} timed steps, "
          f"variants interleaved", flush=True)
    # The timed steps run bare. Memory is measured in one extra step at the end: the RSS sampler thread
    # and the malloc_trim before it (which makes the step fault its pages in again) cost both
    # implementations 10-25% of a step when they ran inside the timed steps.
    for step in range(n_steps + 1):
        measure_memory = step == n_steps
        lr = lr_at(step, p.lr, p.warmup, total_sched)
        idx = torch.from_numpy(batch_indices(step, B, len(blocks), args.seed))
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        inputs, positions, targets = mask_tokens(blocks[idx], langs[idx], tables, VOCAB, gen)
        for v in variants:
            for g in v["opt"].param_groups:
                g["lr"] = lr
            torch.set_rng_state(v["rng"])            # each variant keeps its own dropout stream
            if measure_memory:
                with Memory(device) as mem:
                    (hf_step if v["kind"] == "hf" else our_step)(v, inputs, positions, targets)
                v["mem"].append((mem.peak, mem.peak - mem.before))
                continue
            sync(device)
            t = time.perf_counter()
            loss = (hf_step if v["kind"] == "hf" else our_step)(v, inputs, positions, targets)
            sync(device)
            dt = time.perf_counter() - t
            v["rng"] = torch.get_rng_state()
            v["losses"].append(loss)
            if step == 0:
                v["first"] = dt
            if step >= args.warmup_steps:
                v["times"].append(dt)
        if measure_memory:
            break
        print(f"  step {step + 1:3d}  " + "  ".join(f"{v['losses'][-1]:.4f} ({dt_:.2f}s)" for v, dt_ in
                                                    ((v, (v['times'] or [v['first']])[-1]) for v in variants)),
              flush=True)

    # ---- report --------------------------------------------------------------------------------------
    peaks = {dt: matmul_peak(device, dt) for dt in {v["peak_dtype"] for v in variants}}
    enc_params = sum(p.numel() for p in ours.roberta.encoder.parameters())
    head_params = sum(p.numel() for m in (ours.lm_head.dense, ours.lm_head.layer_norm) for p in m.parameters())
    n_nonemb = enc_params + head_params
    flops_per_token = 6 * n_nonemb + 12 * m.layers * m.hidden * L
    rows = []
    for v in variants:
        step_s = statistics.median(v["times"])
        tps = B * L / step_s
        achieved = flops_per_token * tps / 1e9
        peak_rss = max(m[0] for m in v["mem"])
        step_delta = max(m[1] for m in v["mem"])
        k = args.steps
        timed_losses = v["losses"][args.warmup_steps:]
        rows.append(dict(variant=v["name"], tokens_per_s=tps, step_s=step_s, step_s_min=min(v["times"]),
                         step_s_max=max(v["times"]), first_step_s=v["first"], peak_memory_bytes=peak_rss,
                         step_memory_bytes=step_delta, model_gflops=achieved,
                         mfu=achieved / peaks[v["peak_dtype"]], peak_gflops=peaks[v["peak_dtype"]],
                         loss_mean_all=statistics.mean(v["losses"]), loss_curve=v["losses"],
                         loss_mean_timed=statistics.mean(timed_losses), loss_last=v["losses"][-1], steps=k))
    mem_label = "peak alloc MiB (+step)" if device.type == "cuda" else "peak RSS MiB (+step)"
    print(f"\n{'variant':44s} {'tok/s':>8s} {'step s (min-max)':>18s} {mem_label:>24s} {'GFLOP/s':>8s} "
          f"{'MFU':>6s} {'loss mean 1-' + str(n_steps):>14s} {'loss @' + str(n_steps):>9s}")
    for r in rows:
        print(f"{r['variant']:44s} {r['tokens_per_s']:8,.0f} {r['step_s']:6.2f} ({r['step_s_min']:.2f}-"
              f"{r['step_s_max']:.2f}) {mib(r['peak_memory_bytes']):>14s} (+{mib(r['step_memory_bytes'])}) "
              f"{r['model_gflops']:8.1f} {100 * r['mfu']:5.1f}% {r['loss_mean_all']:14.4f} {r['loss_last']:9.4f}")
    for r in rows[2:]:
        if "compile" in r["variant"]:
            print(f"  ({r['variant']}: first step incl. compilation {r['first_step_s']:.1f} s)")
    speedup = rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"]
    diffs = [abs(a - b) for a, b in zip(rows[0]["loss_curve"], rows[1]["loss_curve"])]
    print(f"matmul peak (measured now): " + ", ".join(f"{str(d).replace('torch.', '')} {g:,.1f} GFLOP/s"
                                                      for d, g in peaks.items()))
    print(f"model FLOPs/token = 6 x {n_nonemb:,} non-embedding params + 12 x {m.layers} x {m.hidden} x {L} "
          f"= {flops_per_token / 1e6:.1f} MFLOP")
    print("loss curves (same seed, data, masks, initial weights; dropout streams differ between implementations):")
    for r in rows:
        print(f"  {r['variant'][:40]:40s} " + " ".join(f"{x:.3f}" for x in r["loss_curve"]))
    print(f"  |difference| hf vs ours: mean {statistics.mean(diffs):.4f}, max {max(diffs):.4f} "
          f"(mean loss {rows[0]['loss_mean_all']:.4f} vs {rows[1]['loss_mean_all']:.4f})")
    noise = [r for r in rows if "noise" in r["variant"]]
    if noise:
        nd = [abs(a - b) for a, b in zip(rows[1]["loss_curve"], noise[0]["loss_curve"])]
        print(f"  |difference| ours vs ours with another dropout seed (the noise): mean {statistics.mean(nd):.4f}, "
              f"max {max(nd):.4f}")
        out["pretrain_noise"] = dict(mean=statistics.mean(nd), max=max(nd))
    fastest = rows[0]["step_s_min"] / rows[1]["step_s_min"]
    print(f"speedup_vs_hf_baseline: {speedup:.2f}   (median step times; fastest steps: {fastest:.2f})")
    out["pretrain"] = dict(rows=rows, speedup_vs_hf_baseline=speedup, speedup_fastest_steps=fastest,
                           flops_per_token=flops_per_token, n_nonembedding_params=n_nonemb,
                           matmul_peak_gflops={str(k): g for k, g in peaks.items()},
                           loss_abs_diff_mean=statistics.mean(diffs), loss_abs_diff_max=max(diffs))
    return ours


# ----------------------------------------------------------------------------------------------------
# Fine-tuning and evaluation (token classification, English POS)
# ----------------------------------------------------------------------------------------------------
def bench_finetune(args, device, tok, model, out: dict) -> None:
    import xlt_helpers.finetune as ft
    from xlt_helpers.encoding import load_encoded
    from xlt_helpers.tasks import get_task

    task = get_task("pos")
    orig = DerivedLanguage("orig", VOCAB)
    train = load_encoded("pos", "en", "train", tok, orig, 128, args.ft_sentences)
    test = load_encoded("pos", "en", "test", tok, orig, 128, args.eval_sentences)
    lengths = np.array([len(e.input_ids) for e in train])

    def random_batches(lengths_, batch_size, rng):
        if rng is None:
            return real_batches(lengths_, batch_size, rng)
        order = rng.permutation(len(lengths_))
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def padding_share(batches) -> float:
        real = sum(int(lengths[b].sum()) for b in batches)
        padded = sum(int(lengths[b].max()) * len(b) for b in batches)
        return 1 - real / padded

    real_batches = ft.length_batches
    rng = np.random.default_rng(0)
    pad_bucketed = padding_share(ft.length_batches(lengths, 32, rng))
    pad_random = padding_share(random_batches(lengths, 32, np.random.default_rng(0)))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        cfg = ft.FinetuneConfig(epochs=1.0, batch_size=32, lr=1e-3, seed=0, device=str(device))
        steps = math.ceil(len(train) / cfg.batch_size)
        for name, batches, pad in (("fine-tune, length-bucketed batches (finetune.py)", ft.length_batches,
                                    pad_bucketed),
                                   ("fine-tune, random batches (same loop)", random_batches, pad_random)):
            ft.length_batches = batches
            try:
                with Memory(device) as mem:
                    t = time.perf_counter()
                    tuned = ft.finetune(tmp, task, train, cfg, progress=False)
                    sync(device)
                    dt = time.perf_counter() - t
            finally:
                ft.length_batches = real_batches
            rows.append(dict(what=name, sentences=len(train), steps=steps, seconds=dt,
                             sentences_per_s=len(train) / dt, real_tokens_per_s=int(lengths.sum()) / dt,
                             padding=pad, peak_memory_bytes=mem.peak))
        t = time.perf_counter()
        acc = ft.evaluate(tuned, task, test, batch_size=128)
        dt = time.perf_counter() - t
        rows.append(dict(what="evaluate, batched no-grad (batch 128)", sentences=len(test), seconds=dt,
                         sentences_per_s=len(test) / dt, accuracy=acc))
        few = test[: args.eval_unbatched]
        t = time.perf_counter()
        ft.predict(tuned, task, few, batch_size=1)
        dt = time.perf_counter() - t
        rows.append(dict(what="predict one sentence at a time (batch 1)", sentences=len(few), seconds=dt,
                         sentences_per_s=len(few) / dt))
    print(f"\n== fine-tuning (token classification: English POS, {len(train):,} train / {len(test):,} test "
          f"sentences, max 128 sub-words, batch 32, the pretrained model above)")
    print(f"{'what':52s} {'sentences/s':>12s} {'seconds':>8s} {'padding':>8s}")
    for r in rows:
        pad = f"{100 * r['padding']:.0f}%" if "padding" in r else ""
        print(f"{r['what']:52s} {r['sentences_per_s']:12,.0f} {r['seconds']:8.2f} {pad:>8s}")
    print(f"  (fine-tuning seconds include loading the model; test accuracy after 1 epoch: {rows[2]['accuracy']:.3f})")
    out["finetune"] = rows


# ----------------------------------------------------------------------------------------------------
# Alignment over 2 x 40,000
# ----------------------------------------------------------------------------------------------------
def bench_alignment(args, out: dict) -> None:
    V = 40_000
    table = transliteration_table(V)
    rows = []
    g = torch.Generator().manual_seed(0)
    cases = [(d, "random") for d in args.align_dims] + [(d, "aligned (worst case)") for d in args.align_worst_dims]
    for d, kind in cases:
        E = torch.randn(2 * V, d, generator=g)
        if kind != "random":
            E[V:] = E[:V] + 0.05 * torch.randn(V, d, generator=g)   # every twin is its token's nearest neighbour
        t = time.perf_counter()
        rep = alignment_report(E, table, N_SPECIAL)
        dt = time.perf_counter() - t
        rows.append(dict(d=d, embeddings=kind, seconds=dt, alignment_at_1=rep["alignment_at_1"],
                         procrustes=rep["alignment_at_1_procrustes"]))
    print(f"\n== alignment_report over 2 x {V:,} embeddings (P@1 over {V - N_SPECIAL:,} pairs + Procrustes on half)")
    print(f"{'d':>5s} {'embeddings':22s} {'seconds':>8s} {'P@1':>7s} {'P@1 Procrustes':>15s}")
    for r in rows:
        print(f"{r['d']:5d} {r['embeddings']:22s} {r['seconds']:8.2f} {r['alignment_at_1']:7.4f} {r['procrustes']:15.4f}")
    out["alignment"] = rows


# ----------------------------------------------------------------------------------------------------
# Token-level transformations
# ----------------------------------------------------------------------------------------------------
def bench_transform(args, ids: list[list[int]], out: dict) -> None:
    sents = ids[: args.transform_sentences]
    rows = []
    def timed(fn, repeat: int = 3):
        """(result, best seconds of ``repeat``) with the garbage collector paused, as timeit does: a collection
        triggered by the other variant's 20,000 fresh lists would otherwise land in whichever call comes next."""
        best = math.inf
        for _ in range(repeat):
            gc.collect()
            gc.disable()
            try:
                t = time.perf_counter()
                result = fn()
                best = min(best, time.perf_counter() - t)
            finally:
                gc.enable()
        return result, best

    for spec in ("inv", "perm", "translit", "translit+inv"):
        lang = DerivedLanguage(spec, VOCAB, seed=0)
        one, t_one = timed(lambda: [lang.transform_tokens(s) for s in sents])
        batch, t_batch = timed(lambda: lang.transform_corpus(sents))
        if batch != one:
            raise AssertionError(f"transform_corpus differs from transform_tokens for {spec}")
        rows.append(dict(spec=spec, per_sentence=len(sents) / t_one, batch=len(sents) / t_batch))
        del one, batch
    n_tok = sum(map(len, sents))
    print(f"\n== token-level transformations ({len(sents):,} English sentences, {n_tok / len(sents):.1f} sub-words "
          f"each; batched output checked equal; best of 3, garbage collector paused)")
    print(f"{'spec':14s} {'sentences/s one by one':>23s} {'batched (transform_corpus)':>27s}")
    for r in rows:
        print(f"{r['spec']:14s} {r['per_sentence']:23,.0f} {r['batch']:27,.0f}")
    out["transform"] = rows


# ----------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30, help="timed pretraining steps per variant (the baseline settles after ~10)")
    p.add_argument("--warmup-steps", type=int, default=1, help="untimed first steps (allocator, compilation)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-noise-reference", dest="noise_reference", action="store_false",
                   help="skip the second run of ours with another dropout seed (the loss noise reference)")
    p.add_argument("--compile", action="store_true", help="also time ours with torch.compile (compile_layers)")
    p.add_argument("--bf16-cpu", action="store_true", help="also time ours under bf16 autocast on the CPU")
    p.add_argument("--sentences", type=int, default=20_000, help="English sentences for the pretraining blocks")
    p.add_argument("--ft-sentences", type=int, default=640, help="fine-tuning sentences (one epoch, batch 32)")
    p.add_argument("--eval-sentences", type=int, default=2000)
    p.add_argument("--eval-unbatched", type=int, default=200)
    p.add_argument("--align-dims", type=int, nargs="*", default=[64, 512])
    p.add_argument("--align-worst-dims", type=int, nargs="*", default=[64])
    p.add_argument("--transform-sentences", type=int, default=20_000)
    p.add_argument("--only", default="pretrain,finetune,alignment,transform")
    p.add_argument("--json", default=None, help="write every figure to this file")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    hf_logging.disable_progress_bar()

    device = pick_device(args.device)
    threads = set_threads(args.threads) if device.type == "cpu" else torch.get_num_threads()
    load0 = os.getloadavg()
    t_start, busy0, own0 = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    print(f"device {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f"; torch {torch.__version__}; {threads} threads of {os.cpu_count()} cores; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; load average {load0[0]:.2f} {load0[1]:.2f}"
          + ("  ** load > 1.5: timings unreliable **" if load0[0] > 1.5 and device.type == "cpu" else ""))
    out: dict = dict(device=str(device), torch=torch.__version__, threads=threads, load_start=load0, args=vars(args))
    tok, corpus, ids = english(args.sentences)
    model = None
    if "pretrain" in only:
        model = bench_pretrain(args, device, ids, out)
    if "finetune" in only:
        if model is None:
            model = build_mlm(resolve("demo", BENCH_MODEL).model, VOCAB // 2, 0)
        bench_finetune(args, device, tok, model, out)
    if "alignment" in only:
        bench_alignment(args, out)
    if "transform" in only:
        bench_transform(args, ids, out)
    load1, wall, busy1 = os.getloadavg(), time.perf_counter() - t_start, busy_cpu_seconds()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # The load average at the end counts this benchmark's own threads; what other processes took is the
    # machine's busy CPU time minus ours, over the run.
    others = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - (own_cpu_seconds() - own0)) / wall
    print(f"\ntotal {wall:.0f} s; process peak RSS {mib(rss)} MiB; load average at the end {load1[0]:.2f} {load1[1]:.2f}"
          + ("" if others is None else f"; other processes used {others:.2f} of {os.cpu_count()} cores on average")
          + ("  ** timings taken under load **" if device.type == "cpu" and (load0[0] > 1.5 or (others or 0) > 0.25)
             else ""))
    out["load_end"], out["other_processes_cores"] = load1, others
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
