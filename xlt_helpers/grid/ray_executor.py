"""Run a grid's steps as Ray tasks: ``python -m xlt_helpers run GRID --executor ray [--address ADDR]``.

The local executor is ``local_executor.run_steps`` (one step after the other, in this process). ``run_steps_ray``
hands the same steps to a Ray cluster: a step is submitted once every step it depends on has finished,
asking for the resources of its kind (``step_resources``), and each task runs ``execute.run_one`` on its
worker, so caching (a done step is not rerun), the per-step lock, atomic ``results.json`` and the
failure records (``error.json``; dependents recorded as "dependency failed") are the local ones. The
folders are today's: every node must see ``papermill_runs/`` (``$XLT_RUNS_DIR``), the cache, the data
and this checkout at the same paths (a shared filesystem). The driver aggregates as ``run`` does.

A pretraining with ``pretrain_procs`` N > 1 asks Ray for N GPUs (when its device is cuda) and trains under
``torchrun --standalone --nproc_per_node=N`` (``torchrun_pretrain``: DDP, see ``pretrain.pretrain``) before
its notebook runs; the notebook then resumes from the final checkpoint, saves the model and writes the
results. Ray is imported here only, and only when a grid runs with ``--executor ray``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

from ..config import process_env
from ..progress import ENV as PROGRESS_ENV
from ..progress import clock, describe, read
from ..step_kinds import KINDS
from .execute import record_error, run_one, step_lock, thread_environment
from .step import Step

def step_resources(step: Step, cpus_per_step: int = 1, pretrain_procs: int = 1) -> dict[str, float]:
    """What one step asks Ray for (docs/running.md, "On a Ray cluster"): ``num_cpus`` (``cpus_per_step``, at
    least one a torchrun process; its kernel gets as many threads) and ``num_gpus`` (``gpus`` of its kind in
    ``step_kinds.KINDS``, times the torchrun processes of a pretraining, when the device of its kind's config
    group resolved to cuda; else none)."""
    k = KINDS[step.kind]
    procs = pretrain_procs if k.torchrun else 1
    device = getattr(step.cfg, k.device).device
    return {"num_cpus": float(max(cpus_per_step, procs)), "num_gpus": k.gpus * procs if device == "cuda" else 0.0}


def step_environment(resources: dict[str, float]) -> dict[str, str]:
    """The environment a task sets before its step: the driver's ``XLT_*`` variables (runs, cache and data
    folders, switches), and as many threads as the task has CPUs unless ``XLT_THREADS`` or
    ``OMP_NUM_THREADS`` is set (then the driver's value), so steps sharing a node do not oversubscribe it."""
    env = {k: v for k, v in os.environ.items() if k.startswith("XLT_") and k != PROGRESS_ENV}
    return {**env, **thread_environment(max(1, int(resources["num_cpus"])))}


def run_step_task(step: Step, env: dict[str, str], pretrain_procs: int = 1) -> tuple[bool, list[str]]:
    """The Ray task: ``execute.run_one`` on this worker; returns (ended done, its log lines)."""
    os.environ.update(env)
    lines: list[str] = []
    launch = partial(torchrun_pretrain, procs=pretrain_procs) if KINDS[step.kind].torchrun and pretrain_procs > 1 \
        else None
    return run_one(step, lines.append, launch), lines


def run_steps_ray(todo: list[Step], log=print, address: str | None = None, cpus_per_step: int = 1,
                  pretrain_procs: int = 1, every: float = 30.0) -> dict[str, int]:
    """Run ``todo`` (dependencies first, as ``run.to_run`` gives them) as Ray tasks; returns how many
    steps ended done and failed. Connects to ``address`` (None: Ray's default, ``$RAY_ADDRESS`` or a
    cluster started on this machine with ``ray start``, else a new local one) unless Ray is already
    initialised in this process. Every ``every`` seconds a line shows the running steps' progress.
    Ctrl-C cancels the running tasks: their steps are recorded as interrupted, as the local runner does."""
    from ..extras import require

    ray = require("ray", "ray", "--executor ray")

    if cpus_per_step < 1 or pretrain_procs < 1:
        raise ValueError(f"cpus_per_step and pretrain_procs must be at least 1, found {cpus_per_step}, "
                         f"{pretrain_procs}")
    started = bool(todo) and not ray.is_initialized()  # nothing to run: no cluster either
    if started:
        term = signal.getsignal(signal.SIGTERM)
        ray.init(address=address)
        if term is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, term)  # ray.init's handler exits at once: a kill stops the grid as Ctrl-C
    try:
        waits = unplaceable(todo, cpus_per_step, pretrain_procs) if todo else []
        if waits:
            res = step_resources(waits[0], cpus_per_step, pretrain_procs)
            log(f"warning: {len(waits)} step(s) ask for more than any node of the cluster has now, first "
                f"{waits[0].name}: {res['num_cpus']:g} CPUs, {res['num_gpus']:g} GPUs; they wait until such a node "
                "joins (an autoscaler may add one). Steps ask for a GPU when their config resolved to cuda "
                "(pretrain.device, finetune.device: cpu in the grid's overrides says otherwise)")
        return _schedule(ray, todo, log, cpus_per_step, pretrain_procs, every)
    finally:
        if started:
            ray.shutdown()


def unplaceable(todo: list[Step], cpus_per_step: int = 1, pretrain_procs: int = 1) -> list[Step]:
    """The steps that no live node of the connected Ray cluster can hold now (``step_resources``)."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    return [s for s in todo if not any(n.get("CPU", 0) >= r["num_cpus"] and n.get("GPU", 0) >= r["num_gpus"]
                                       for r in [step_resources(s, cpus_per_step, pretrain_procs)] for n in nodes)]


def _schedule(ray, todo: list[Step], log, cpus_per_step: int, pretrain_procs: int, every: float) -> dict[str, int]:
    task = ray.remote(run_step_task)
    unfinished = {s.out_dir for s in todo}  # a dependency outside ``todo`` is done already
    waiting, running = list(todo), {}
    counts = {"done": 0, "failed": 0}
    t0 = time.monotonic()
    try:
        while waiting or running:
            for step in [s for s in waiting if not any(d.out_dir in unfinished for d in s.deps)]:
                waiting.remove(step)
                res = step_resources(step, cpus_per_step, pretrain_procs)
                ref = task.options(**res, name=f"{step.kind}: {step.name}").remote(
                    step, step_environment(res), pretrain_procs)
                running[ref] = step
            ready, _ = ray.wait(list(running), num_returns=1, timeout=every)
            for ref in ready:
                step = running.pop(ref)
                unfinished.discard(step.out_dir)
                ok = _finished(ray, ref, step, log, len(todo) - len(unfinished), len(todo))
                counts["done" if ok else "failed"] += 1
            if not ready:
                log(f"  {len(todo) - len(unfinished)}/{len(todo)} steps, elapsed {clock(time.monotonic() - t0)}, "
                    f"running: " + "; ".join(f"{s.kind} {describe(read(s.progress))}" for s in running.values()))
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref)  # KeyboardInterrupt in the task: its kernel is killed, the step recorded interrupted
        ray.wait(list(running), num_returns=len(running), timeout=30)
        raise
    log(f"grid steps finished in {clock(time.monotonic() - t0)} on Ray: {counts['done']} done, "
        f"{counts['failed']} failed")
    return counts


def _finished(ray, ref, step: Step, log, k: int, n: int) -> bool:
    """Log a finished task's lines; True when its step ended done. A task that did not return (its worker
    or node was lost, after Ray's retries) leaves its step failed with the reason."""
    log(f"[{k}/{n}] {step.kind}: {step.name}")
    try:
        ok, lines = ray.get(ref)
    except ray.exceptions.RayError as exc:
        error = f"Ray task failed: {type(exc).__name__}: {' '.join(str(exc).split())[-2000:]}"
        with step_lock(step, log):
            if not step.done:
                record_error(step, error)
        log(f"  FAILED {step.name}: {error[:400]}")
        return step.done
    for line in lines:
        log(line)
    return ok


def torchrun_pretrain(step: Step, log, procs: int) -> str | None:
    """Train ``step``'s model under ``torchrun --standalone --nproc_per_node=procs`` (DDP: NCCL on GPUs,
    gloo on the CPU); its output goes to ``torchrun.log`` in the step's folder. Returns None when it
    finished, else the problem. The step's notebook runs next and finds the final checkpoint."""
    out = step.out_dir / "torchrun.log"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
           "-m", "xlt_helpers.grid.ray_executor", "pretrain", json.dumps(step.cfg.to_dict()), str(step.out_dir)]
    t0 = time.monotonic()
    with open(out, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                env=process_env({**os.environ, PROGRESS_ENV: str(step.progress)}))
        try:
            code = proc.wait()
        except BaseException:  # Ctrl-C, a cancelled task: no rank outlives its step
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if code:
        tail = [ln for ln in out.read_text(errors="replace").splitlines() if ln.strip()][-1:]
        return f"torchrun --nproc_per_node={procs} exited with code {code} (see {out}): {' '.join(tail)[:400]}"
    log(f"  torchrun --nproc_per_node={procs} trained {step.name} ({time.monotonic() - t0:.0f}s)")
    return None


def main(argv: list[str]) -> int:
    """``python -m xlt_helpers.grid.ray_executor pretrain CONFIG_JSON OUT_DIR``: one torchrun rank's pretraining."""
    if len(argv) != 3 or argv[0] != "pretrain":
        print("usage: python -m xlt_helpers.grid.ray_executor pretrain CONFIG_JSON OUT_DIR (under torchrun)", file=sys.stderr)
        return 2
    import torch.distributed as dist

    from .. import run_config
    from ..pretrain import pretrain

    try:
        meta = pretrain(run_config.load(argv[1]), Path(argv[2]), progress=False)
    finally:  # gloo's worker threads left to the interpreter's exit abort a rank now and then (SIGABRT)
        if dist.is_initialized():
            dist.destroy_process_group()
    print(f"rank {os.environ.get('RANK', '0')}: world size {meta['world_size']}, device {meta['device']}, "
          f"final loss {meta['final_loss']}, {meta['tokens_per_s'] or 0:,.0f} tokens/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
