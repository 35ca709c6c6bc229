"""Pretraining-corpus preparation, before (whole corpus in memory) and after (streamed to disk), on a corpus
far larger than the staged one that the benchmark builds itself (`make bench-data`).

The big corpus is the staged English pretraining file repeated, each copy in another seeded sentence order,
up to ``--mb`` megabytes, in a temporary data directory (everything else is linked to the real one). Each
measurement runs in a fresh process (its peak RSS is its own), with an empty cache, for the `demo` corpus
configuration over the whole file (``data.pretrain_sentences=None``) with Transliteration: the original
corpus and its transliterated copy, packed into blocks of 128.

* before: ``benchmarks/corpus_reference.py`` (the previous code path; its "tokenizer s" is the BPE training
  alone, its reading and word splitting for the tokenizer count in "prep s") at ``--before-mb`` sizes that fit;
  its time and peak RSS at the big size are extrapolated linearly from the largest of them (labelled).
* after: ``xlt_helpers.corpus.build_pretraining_data`` at ``--before-mb`` sizes and at ``--mb``.

Printed per run: tokenizer (key + training on the whole corpus, once per corpus and vocabulary), the
rest of the preparation (tokenize, derive, pack), tokens/s (block tokens over the preparation time),
peak RSS of the main process and of the encoding workers, disk size of the cache, and the share of the
two cores that other processes took while it ran (``/proc/stat`` minus our own CPU time).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine_load import busy_cpu_seconds  # noqa: E402


def make_data_dir(root: Path, mb: float, seed: int = 0) -> tuple[Path, int]:
    """A data directory whose English pretraining file is the staged one repeated to ``mb`` MB, each copy
    shuffled with its own seed; every other entry links to the real data directory. Returns it and its lines."""
    from xlt_helpers.config import data_dir
    from xlt_helpers.data import language_spec

    real = data_dir()
    rel = Path(language_spec("en")["pretrain"]["paths"][0])
    lines = [ln for ln in (real / rel).read_bytes().split(b"\n") if ln.strip()]
    target = int(mb * (1 << 20))
    out = root / "data"
    for entry in real.iterdir():
        if entry.name != rel.parts[0]:
            (out / entry.name).parent.mkdir(parents=True, exist_ok=True)
            (out / entry.name).symlink_to(entry)
    for lang_dir in (real / rel.parts[0]).iterdir():
        if lang_dir.name != rel.parts[1]:
            (out / rel.parts[0] / lang_dir.name).parent.mkdir(parents=True, exist_ok=True)
            (out / rel.parts[0] / lang_dir.name).symlink_to(lang_dir)
    (out / rel.parent).mkdir(parents=True, exist_ok=True)
    for f in (real / rel.parent).iterdir():
        if f.name != rel.name:
            (out / rel.parent / f.name).symlink_to(f)
    written = n = 0
    with open(out / rel, "wb") as handle:
        copy = 0
        while written < target:
            order = lines[:] if copy == 0 else random.Random(seed * 1_000_003 + copy).sample(lines, len(lines))
            for ln in order:
                handle.write(ln + b"\n")
                written += len(ln) + 1
                n += 1
                if written >= target:
                    break
            copy += 1
    return out, n


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def child(mode: str, workers: int | None) -> dict:
    """One measurement in this process (data and cache folders come from the environment)."""
    from xlt_helpers.run_config import resolve

    cfg = resolve("demo", {"data.transformation": "translit", "data.pretrain_sentences": None})
    busy0, own0, t0 = busy_cpu_seconds(), time.process_time(), time.perf_counter()
    if mode == "before":
        import corpus_reference
        spent = []

        def timed_training(*a, **k):  # the old path trains its tokenizer inside: time that part alone
            t = time.perf_counter()
            tok = train(*a, **k)
            spent.append(time.perf_counter() - t)
            return tok

        train, corpus_reference.train_tokenizer = corpus_reference.train_tokenizer, timed_training
        blocks, _, _ = corpus_reference.reference_blocks(cfg)
        t_tok = spent[0]
        n_tokens = int(blocks.size)
        n_workers = 1
    else:
        from xlt_helpers.corpus import build_pretraining_data, pretraining_tokenizer
        pretraining_tokenizer([cfg.data.language], cfg)
        t_tok = time.perf_counter() - t0
        _, data = build_pretraining_data(cfg, workers=workers)
        n_tokens = data.n_tokens
        from xlt_helpers.token_store import CorpusText, default_workers
        n_workers = workers or default_workers(CorpusText(cfg.data.language))
    total = time.perf_counter() - t0
    own = time.process_time() - own0 + _children_cpu()
    busy1 = busy_cpu_seconds()
    others = None if busy0 is None else max(0.0, (busy1 - busy0 - own) / total)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"mode": mode, "seconds": total, "tokenizer_s": t_tok, "block_tokens": n_tokens,
            "peak_rss_mib": rss, "worker_peak_rss_mib": workers_rss, "workers": n_workers,
            "disk_mib": du(Path(os.environ["XLT_CACHE_DIR"])) / (1 << 20), "others_cores": others}


def _children_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def run_child(mode: str, data: Path, cache: Path, workers: int | None) -> dict:
    env = {**os.environ, "XLT_DATA_DIR": str(data), "XLT_CACHE_DIR": str(cache)}
    cmd = [sys.executable, __file__, "--child", mode] + (["--workers", str(workers)] if workers else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=1024, help="size of the big corpus in MB (after only)")
    ap.add_argument("--before-mb", type=float, nargs="*", default=[8, 16],
                    help="sizes at which the previous code path is measured")
    ap.add_argument("--workers", type=int, default=None, help="encoding processes (default: by corpus size)")
    ap.add_argument("--json", help="save every figure here")
    ap.add_argument("--summary", nargs="+", metavar="JSON", help="only print the summary of saved runs")
    ap.add_argument("--child", choices=["before", "after"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.workers)))
        return
    if args.summary:
        rows = [r for f in args.summary for r in json.loads(Path(f).read_text())]
        for r in rows:
            _print(r)
        summary(rows, max(r["mb"] for r in rows))
        return
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    header = (f"{'run':<8}{'corpus MB':>10}{'lines':>10}{'block tokens':>14}{'tokenizer s':>12}{'prep s':>9}{'total s':>9}"
              f"{'tok/s (prep)':>14}{'peak RSS MiB':>14}{'workers MiB':>12}{'disk MiB':>10}{'others':>8}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        for mb in sorted(set(args.before_mb + [args.mb])):
            root = Path(tmp) / f"mb{mb:g}"
            data, n_lines = make_data_dir(root, mb)
            for mode in ("before", "after"):
                if mode == "before" and mb not in args.before_mb:
                    continue
                cache = root / f"cache_{mode}"
                r = run_child(mode, data, cache, args.workers)
                prep = r["seconds"] - (r["tokenizer_s"] or 0.0)
                r.update(mb=mb, lines=n_lines, prep_s=prep, tokens_per_s=r["block_tokens"] / prep)
                rows.append(r)
                print(header if len(rows) == 1 else "", end="\n" if len(rows) == 1 else "")
                _print(r)
            import shutil
            shutil.rmtree(root, ignore_errors=True)
    summary(rows, args.mb)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def summary(rows: list[dict], mb: float) -> None:
    """The old path extrapolated to the big corpus, beside the new path measured there."""
    before = [r for r in rows if r["mode"] == "before"]
    after_big = [r for r in rows if r["mode"] == "after" and r["mb"] == mb]
    if before and after_big:
        a = after_big[0]
        secs, rss, basis = extrapolate(before, a["block_tokens"])
        print(f"\nbefore, EXTRAPOLATED to {a['mb']:g} MB ({a['block_tokens']:,} block tokens) {basis}: "
              f"{secs:,.0f} s with tokenizer training, peak RSS {rss:,.0f} MiB")
        print(f"after, measured at {a['mb']:g} MB: {a['seconds']:,.0f} s with tokenizer training "
              f"({a['tokenizer_s']:,.0f} s of it), peak RSS {a['peak_rss_mib']:,.0f} MiB (+ workers "
              f"{a['worker_peak_rss_mib']:,.0f} MiB each), {a['tokens_per_s']:,.0f} tokens/s without the tokenizer")
        n_workers = a.get("workers", 2) if a["worker_peak_rss_mib"] else 0
        total = a["peak_rss_mib"] + n_workers * a["worker_peak_rss_mib"]
        print(f"targets: peak RSS under 2 GB (main + {n_workers} workers: {total:,.0f} MiB): "
              f"{'met' if total < 2048 else 'NOT met'}; at least 1M tokens/s: "
              f"{'met' if a['tokens_per_s'] >= 1e6 else 'NOT met'} without tokenizer training, "
              f"{'met' if a['block_tokens'] / a['seconds'] >= 1e6 else 'NOT met'} with it "
              f"({a['block_tokens'] / a['seconds']:,.0f} tokens/s)")


def extrapolate(before: list[dict], tokens: int) -> tuple[float, float, str]:
    """Time and peak RSS of the old path at ``tokens``: time at the throughput of its largest measured size;
    RSS on the line through its two largest sizes (through the origin if only one was measured)."""
    pts = sorted(before, key=lambda r: r["block_tokens"])[-2:]
    big = pts[-1]
    secs = big["seconds"] * tokens / big["block_tokens"]
    if len(pts) == 1:
        return secs, big["peak_rss_mib"] * tokens / big["block_tokens"], f"in proportion to {big['mb']:g} MB"
    r0, dt = pts[0], big["block_tokens"] - pts[0]["block_tokens"]
    per_token = (big["peak_rss_mib"] - r0["peak_rss_mib"]) / dt
    rss = big["peak_rss_mib"] + per_token * (tokens - big["block_tokens"])
    return secs, rss, (f"(time at the {big['mb']:g} MB throughput; RSS on the line through {r0['mb']:g} and "
                       f"{big['mb']:g} MB, {per_token * (1 << 20):.0f} bytes per block token)")


def _print(r: dict) -> None:
    tok = "-" if r["tokenizer_s"] is None else f"{r['tokenizer_s']:.1f}"
    others = "-" if r["others_cores"] is None else f"{r['others_cores']:.2f}"
    print(f"{r['mode']:<8}{r['mb']:>10g}{r['lines']:>10,}{r['block_tokens']:>14,}{tok:>12}{r['prep_s']:>9.1f}{r['seconds']:>9.1f}"
          f"{r['tokens_per_s']:>14,.0f}{r['peak_rss_mib']:>14,.0f}{r['worker_peak_rss_mib']:>12,.0f}"
          f"{r['disk_mib']:>10,.1f}{others:>8}", flush=True)


if __name__ == "__main__":
    main()
