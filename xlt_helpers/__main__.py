"""The command line: ``xlt <command>`` (or ``python -m xlt_helpers <command>``); ``xlt COMMAND --help``
describes each command.

A bad grid, configuration or option ends with one line naming the file, the key and what is allowed
(--debug shows the traceback). Exit codes: 0 done; 1 a step of the grid failed; 2 bad input; 130
interrupted (Ctrl-C or SIGTERM: the running step is recorded as interrupted and resumes on the next run);
141 the reader of the output went away (xlt status GRID | head -1).

Adding an option to ``run`` is one line in ``_run_parser``: an option added to its ``execution`` group
is handed to ``grid.run.run_plan`` by its name whenever it is given.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from .extras import MissingExtra

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE = 0, 1, 2, 130, 141


class UsageError(ValueError):
    """A bad command line (argparse's complaint), reported like every bad input: one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse, except that a bad command line raises ``UsageError`` (one line, exit 2, from ``main``)
    instead of printing the usage and exiting."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _prog() -> str:
    return "xlt" if Path(sys.argv[0]).name == "xlt" else "python -m xlt_helpers"


def _assignment(item: str) -> tuple[str, Any]:
    """``group.field=value`` -> (name, value): the value read as JSON (numbers, true, null, lists), else
    as a bare string."""
    name, sep, value = item.partition("=")
    if not sep or not name:
        from .run_config import ConfigError

        raise ConfigError(f"command line: {item!r}: write group.field=value")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _overrides(items: Sequence[str] | None) -> dict[str, Any]:
    return dict(_assignment(item) for item in items or ())


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a whole number, found {text!r}") from None


def _grid_arguments(parser: argparse.ArgumentParser) -> None:
    """The grid file and ``--set`` (repeatable), shared by run, status and report."""
    parser.add_argument("grid", metavar="GRID", help="a grid file, e.g. papermill_runs/grids/test.yaml")
    parser.add_argument("--set", dest="set", action="append", metavar="FIELD=VALUE", default=[],
                        help="change a config field for every model of the grid (repeatable), e.g. "
                             "--set pretrain.steps=500; it enters the run folders' keys exactly like the grid's "
                             "`overrides:` (and wins over them)")


def _run_parser(sub) -> None:
    run = sub.add_parser("run", help="run every pending step of a grid, then aggregate and render its report",
                         description="Run every pending step of a grid, then aggregate and render the report "
                                     "(papermill_runs/reports/<grid>/report.html). Steps computed by older code "
                                     "are reused with a warning, or redone with --rerun-stale.")
    _grid_arguments(run)
    run.add_argument("--rerun-stale", action="store_true", help="redo the steps computed by older code")
    execution = run.add_argument_group(
        "execution", "where the steps run: here, several side by side (local, the default), or as Ray tasks on a "
                     "cluster (docs/running.md)")
    forwarded = [
        execution.add_argument("--jobs", type=_whole_number, metavar="N",
                               help="steps side by side once their dependencies are done, each with cores/N threads "
                                    "(default: one per core, at most 8; 1: one by one); local only"),
        execution.add_argument("--executor", metavar="{local,ray}", help="local (default) or ray"),
        execution.add_argument("--address", help="the Ray cluster (default: Ray's own choice); ray only"),
        execution.add_argument("--cpus-per-step", type=_whole_number, metavar="N", help="CPUs of each Ray task"),
        execution.add_argument("--pretrain-procs", type=_whole_number, metavar="N",
                               help="processes of each pretraining under torchrun (one GPU each on cuda); ray only"),
    ]
    run.add_argument("--fresh-kernels", dest="warm_kernels", action="store_false",
                     help="a new kernel for every step (default: each job's steps share one warm kernel, which "
                          "imports torch and the package once)")
    run.set_defaults(func=_cmd_run, forwarded=[action.dest for action in forwarded])


def build_parser() -> Parser:
    """The parser of every command (``xlt --help``)."""
    prog = _prog()
    parser = Parser(prog=prog, description="Isolating the ingredients of cross-lingual transfer (Deshpande et al., "
                                           "NAACL 2022): run grids of experiments and read their reports.",
                    epilog=__doc__.split("\n\n")[1])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (anywhere on the line)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    _run_parser(sub)

    status = sub.add_parser("status", help="list the grid's steps: done, stale, failed or pending",
                            description="One line per step of the grid (done, stale, failed: why, interrupted, "
                                        "pending), then the cells it skips and why.")
    _grid_arguments(status)
    status.set_defaults(func=_cmd_status)

    report = sub.add_parser("report", help="re-aggregate finished steps and re-render the report (runs nothing)",
                            description="Re-aggregate the finished steps of a grid and re-render its report, "
                                        "without running anything.")
    _grid_arguments(report)
    report.set_defaults(func=_cmd_report)

    config = sub.add_parser("config", help="print a resolved run configuration (JSON), or the configuration table",
                            description="Print the resolved run configuration of a preset with fields changed by "
                                        "dotted name (JSON), or with --table the configuration table (markdown).")
    config.add_argument("preset", nargs="?", metavar="PRESET", help="test, demo, cpu, gpu_small or paper")
    config.add_argument("assignments", nargs="*", metavar="FIELD=VALUE", help="e.g. pretrain.steps=100")
    config.add_argument("--set", dest="set", action="append", metavar="FIELD=VALUE", default=[],
                        help="the same as a FIELD=VALUE argument (repeatable)")
    config.add_argument("--table", action="store_true", help="the configuration table of every preset (markdown)")
    config.set_defaults(func=_cmd_config)

    export = sub.add_parser("export", help="make a saved model folder a drop-in transformers checkpoint",
                            description="Write the transformers tokenizers (original and derived language) and the "
                                        "model card into a model folder saved by the toolkit (folders of older "
                                        "runs lack them; new ones have them).")
    export.add_argument("folder", metavar="MODEL_DIR", help="a folder with config.json and xlt_meta.json")
    export.set_defaults(func=_cmd_export)

    # its own parser reads everything after the command (main hands it over before parsing)
    sub.add_parser("syntax-stats", add_help=False, help="word-order statistics of the Syntax transformation "
                                                        "(e.g. en~hi@N~hi@V; syntax-stats --help: its options)")
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from .grid.plan import plan
    from .grid.run import run_plan
    from .grid.spec import load_grid

    options = {name: getattr(args, name) for name in args.forwarded if getattr(args, name) is not None}
    options = {"jobs": None, "warm_kernels": args.warm_kernels, **options}  # None: what the machine can use
    grid = load_grid(args.grid, _overrides(args.set))
    steps, skips = plan(grid)  # once: the states after the run are read from these steps
    before = signal.signal(signal.SIGTERM, _interrupt)  # a kill stops the grid as Ctrl-C does
    try:
        run_plan(grid, steps, skips, rerun_stale=args.rerun_stale, **options)
    finally:
        signal.signal(signal.SIGTERM, before)
    return _failed(args.grid, [(s.name, s.state()) for s in steps])


def _cmd_status(args: argparse.Namespace) -> int:
    from .grid.run import status

    for name, state in status(args.grid, _overrides(args.set)):
        print(f"{state:10s} {name}")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from .grid.aggregate import aggregate
    from .grid.plan import plan
    from .grid.spec import load_grid

    grid = load_grid(args.grid, _overrides(args.set))
    steps, skips = plan(grid)
    for step in steps:
        problem = step.results_problem() if step.results.exists() else None
        if problem:
            raise ValueError(f"{problem}; `run` recomputes the step")
    aggregate(grid, steps, skips=skips)
    return EXIT_OK


def _cmd_config(args: argparse.Namespace) -> int:
    from . import run_config

    if args.table:
        if args.preset or args.assignments or args.set:
            raise UsageError(f"{_prog()} config: --table takes no preset or fields")
        print(run_config.config_table())
        return EXIT_OK
    if not args.preset:
        raise UsageError(f"{_prog()} config: expected a PRESET (or --table)")
    cfg = run_config.resolve(args.preset, _overrides([*args.assignments, *args.set]), where="command line")
    print(json.dumps(cfg.to_dict(), indent=2))
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from .pretrained import META, save_drop_in

    folder = Path(args.folder)
    if not (folder / META).is_file() or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: expected a model folder saved by the toolkit (config.json, {META})")
    save_drop_in(folder)
    print(f"{folder}: tokenizer.json, tokenizer_config.json, README.md written")
    return EXIT_OK


def _cmd_syntax_stats(args: argparse.Namespace) -> int:
    from .syntax.stats import main as syntax_stats

    return syntax_stats(args.rest)


def _parse(parser: Parser, argv: list[str]) -> argparse.Namespace:
    """The command line's namespace; a command with a parser of its own gets the rest of the line as is."""
    if argv and argv[0] == "syntax-stats":
        return argparse.Namespace(command=argv[0], func=_cmd_syntax_stats, rest=argv[1:])
    return parser.parse_args(argv)


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
        return EXIT_OK
    name, state = failed[0]
    print(f"error: {len(failed)} step(s) failed, first {name}: {state[len('failed: '):]} "
          f"({_prog()} status {grid_path} lists them)", file=sys.stderr)
    return EXIT_FAILED


def _closed_pipe() -> int:
    """The reader of stdout went away: stop quietly (no traceback, and none when Python flushes at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv[:argv.index("--")] if "--" in argv else "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    try:
        try:
            args = _parse(parser, argv)
        except SystemExit as done:  # --help, --version
            return int(done.code or 0)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        handler: Callable[[argparse.Namespace], int] = args.func
        try:
            return handler(args)
        except SystemExit as done:  # a command with its own parser (syntax-stats --help)
            return done.code if isinstance(done.code, int) else EXIT_USAGE
    except BrokenPipeError:
        return _closed_pipe()
    except (ValueError, FileNotFoundError, MissingExtra) as exc:  # bad input: one line, no traceback
        if debug:
            raise
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a folder that cannot be written or read, a full disk: one line
        if debug:
            raise
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def os_error_line(exc: OSError) -> str:
    """``/path: Permission denied`` and what to do, for the errors a user can fix (a read-only runs
    folder, a full disk)."""
    where = exc.filename if exc.filename is not None else "a file"
    denied = " (expected a folder this user can write: set XLT_RUNS_DIR / XLT_CACHE_DIR to one)"
    hint = {errno.EACCES: denied, errno.EPERM: denied,
            errno.EROFS: " (a read-only file system: set XLT_RUNS_DIR / XLT_CACHE_DIR to a writable folder)",
            errno.ENOSPC: " (free some space, or set XLT_RUNS_DIR / XLT_CACHE_DIR to another disk)"}
    return f"{where}: {exc.strerror or type(exc).__name__}{hint.get(exc.errno, '')}"


def console() -> None:
    """The ``xlt`` console command."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _closed_pipe()
    sys.exit(code)


if __name__ == "__main__":
    console()
