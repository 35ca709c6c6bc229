"""Command line: ``python -m xlt_helpers <command>``.

Commands:
  run <grid.yaml> [--rerun-stale] [--jobs N] [--fresh-kernels] [--executor local|ray] [--address ADDR]
      [--cpus-per-step N] [--pretrain-procs N]
                                    run every pending step of a grid, then aggregate and render the report;
                                    steps computed by older code are reused with a warning, or redone
                                    with --rerun-stale. The default executor, local, runs the steps here,
                                    N side by side once their dependencies are done (default: one per core,
                                    at most 8; each step gets cores/N threads; --jobs 1: one by one, every
                                    core for each), each job's steps in one warm kernel (--fresh-kernels: a
                                    new kernel per step); --executor ray submits them as Ray tasks to the
                                    cluster at ADDR (default: Ray's own choice), --cpus-per-step CPUs each, every
                                    pretraining under torchrun with --pretrain-procs processes (one GPU
                                    each on cuda); README, "Grids on a cluster (Ray)"
  status <grid.yaml>                list the grid's steps: done, stale, failed or pending
  report <grid.yaml>                re-aggregate finished steps and re-render the report without running anything
  config <preset> [group.field=value ...]
                                    print the resolved run configuration (JSON)
  config --table                    the configuration table of the README (markdown)
  syntax-stats <spec>               word-order statistics of the Syntax transformation (e.g. en~hi@N~hi@V)

A bad grid or configuration ends with one line naming the file, the key and what is allowed
(add --debug for the traceback). `run` exits 1 when a step failed, and 130 when interrupted (Ctrl-C or
SIGTERM: every running step is recorded as interrupted and resumes on the next run).
"""
from __future__ import annotations

import json
import signal
import sys


def _config(rest: list[str]) -> int:
    from . import run_config

    if rest == ["--table"]:
        print(run_config.config_table())
        return 0
    if not rest:
        print("usage: python -m xlt_helpers config <preset> [group.field=value ...] | --table", file=sys.stderr)
        return 2
    overrides = {}
    for item in rest[1:]:
        name, sep, value = item.partition("=")
        if not sep:
            raise run_config.ConfigError(f"command line: {item!r}: write group.field=value")
        try:
            overrides[name] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name] = value  # a bare string
    cfg = run_config.resolve(rest[0], overrides, where="command line")
    print(json.dumps(cfg.to_dict(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    try:
        return _dispatch(argv[0], argv[1:])
    except (ValueError, FileNotFoundError) as exc:  # bad input: one line, no traceback
        if debug:
            raise
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130


def _dispatch(cmd: str, rest: list[str]) -> int:
    if cmd == "syntax-stats":
        from .syntax.stats import main as syntax_stats

        return syntax_stats(rest)
    if cmd == "config":
        return _config(rest)
    if cmd in ("run", "status", "report"):
        rerun_stale = cmd == "run" and "--rerun-stale" in rest
        fresh_kernels = cmd == "run" and "--fresh-kernels" in rest
        rest = [a for a in rest if a not in ("--rerun-stale", "--fresh-kernels")] if cmd == "run" else rest
        options = {"jobs": None, "warm_kernels": not fresh_kernels, **_run_options(rest)} if cmd == "run" else {}
        if len(rest) != 1 or rest[0].startswith("--"):
            print(f"usage: python -m xlt_helpers {cmd} <grid.yaml>" + (RUN_USAGE if cmd == "run" else ""),
                  file=sys.stderr)
            return 2
        from .grid.aggregate import aggregate
        from .grid.plan import plan
        from .grid.run import run_plan, status
        from .grid.spec import load_grid

        if cmd == "run":
            grid = load_grid(rest[0])
            steps, skips = plan(grid)  # once: the states after the run are read from these steps
            before = signal.signal(signal.SIGTERM, _interrupt)  # a kill stops the grid as Ctrl-C does
            try:
                run_plan(grid, steps, skips, rerun_stale=rerun_stale, **options)
            finally:
                signal.signal(signal.SIGTERM, before)
            return _failed(rest[0], [(s.name, s.state()) for s in steps])
        elif cmd == "report":
            grid = load_grid(rest[0])
            steps, skips = plan(grid)
            for step in steps:
                problem = step.results_problem() if step.results.exists() else None
                if problem:
                    raise ValueError(f"{problem}; `run` recomputes the step")
            aggregate(grid, steps, skips=skips)
        else:
            for name, state in status(rest[0]):
                print(f"{state:10s} {name}")
        return 0
    print(f"unknown command {cmd!r}\n{__doc__}", file=sys.stderr)
    return 2


RUN_USAGE = (" [--rerun-stale] [--jobs N] [--fresh-kernels] [--executor local|ray] [--address ADDR] "
             "[--cpus-per-step N] [--pretrain-procs N]")
RUN_FLAGS = {"--executor": ("executor", str), "--address": ("address", str), "--cpus-per-step": ("cpus_per_step", int),
             "--pretrain-procs": ("pretrain_procs", int), "--jobs": ("jobs", int)}


def _run_options(rest: list[str]) -> dict:
    """Take ``run``'s flags with a value out of ``rest`` (in place): ``run_grid``'s keyword arguments."""
    options = {}
    for flag, (name, kind) in RUN_FLAGS.items():
        while flag in rest:
            k = rest.index(flag)
            if k + 1 >= len(rest) or rest[k + 1].startswith("--"):
                raise ValueError(f"command line: {flag} needs a value")
            try:
                options[name] = kind(rest[k + 1])
            except ValueError:
                raise ValueError(f"command line: {flag} expects a whole number, found {rest[k + 1]!r}") from None
            del rest[k:k + 2]
    return options


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM does what Ctrl-C does at this moment (the runner kills a running kernel first)."""
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):
        raise KeyboardInterrupt
    handler(signal.SIGINT, frame)


def _failed(grid_path: str, states: list[tuple[str, str]]) -> int:
    """1 (with one line naming the first) when a step of the grid is failed after the run, else 0
    (``states``: each step's name and state)."""
    failed = [(name, state) for name, state in states if state.startswith("failed")]
    if not failed:
        return 0
    name, state = failed[0]
    print(f"error: {len(failed)} step(s) failed, first {name}: {state[len('failed: '):]} "
          f"(python -m xlt_helpers status {grid_path} lists them)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
