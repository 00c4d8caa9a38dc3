"""`lwmspectro` command line: the core's commands and those each installed package contributes.

The core's commands are the modules in `lwmspectro.commands`; adding one is adding a module
there. Another installed package contributes commands through the `lwmspectro.commands`
entry-point group (and benchmarks for `lwmspectro bench` through `lwmspectro.benchmarks`),
each entry point naming a module with the same contract: ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``, heavy imports kept inside ``run``.

A command's module is imported only when that command is used, so `--help` stays instant and
the core's own commands never import torch, the training package or GNU Radio.

stdout is the data channel (readouts, figures); diagnostics go to stderr through `logging`
(-v / -q on the root parser). A failure is one line on stderr, `lwmspectro CMD: error: ...`, and
an exit status that tells usage errors from runtime failures (EXIT_STATUS); --debug shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.metadata
import logging
import math
import os
import pkgutil
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

from .allocator import keep_freed_memory

if TYPE_CHECKING:  # the runtime loads ONNX Runtime: imported by the commands that classify, when they run
    from .runtime import Runtime
    from .tracking import Tracker

COMMAND_GROUP = "lwmspectro.commands"
BENCHMARK_GROUP = "lwmspectro.benchmarks"

TRAINING_INSTALL = "install the training package: `pip install -e training` (or `make setup`)"
GNURADIO_INSTALL = "install the GNU Radio module: `make build` (needs GNU Radio 3.10 and cmake)"

# Commands the project's other packages contribute: (summary, how to install it). Names and
# text only, so that a command whose package is missing can still say how to get it.
KNOWN_PLUGIN_COMMANDS = {
    "demo": ("the GNU Radio receiver on synthetic signals, readouts beside the ground truth", GNURADIO_INSTALL),
    "eval": ("evaluate a model bundle against baselines on held-out data", TRAINING_INSTALL),
    "export": ("write a model bundle from a training run directory", TRAINING_INSTALL),
    "lwm": ("the LWM channel foundation model: pretrain, export, score downstream", TRAINING_INSTALL),
    "probe": ("what a linear probe reads from each spectrogram view (docs/g-ablation.md)", TRAINING_INSTALL),
    "run": ("the GNU Radio receiver on a live or recorded source", GNURADIO_INSTALL),
}
KNOWN_PLUGIN_BENCHMARKS = {
    "flowgraph": ("GNU Radio receiver speed, latency and memory", GNURADIO_INSTALL),
}


EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
EXIT_STATUS = f"""exit status:
  0    done
  {EXIT_FAILURE}    the command failed at run time (an unreadable or invalid input file, bundle or device;
       one line on stderr says what and how to fix it; --debug shows the traceback)
  {EXIT_USAGE}    usage error: an unknown option or a bad value, or a command whose package (or a
       library it needs) is not installed
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
  {EXIT_BROKEN_PIPE}  stdout was closed by its reader (`| head`); nothing more is written"""

LOG_PACKAGES = ("lwmspectro", "lwmspectro_train", "gnuradio.lwmspectro")
"""Loggers of the project's packages: -v / -q set their level; other libraries log warnings only."""


class CommandUnavailable(Exception):
    """A command that is listed but cannot run here: its package is missing or fails to import."""


class UsageError(Exception):
    """An option value a command refuses once it has parsed them all: exits with EXIT_USAGE, as argparse does."""


def integer(text: str) -> int:
    """argparse type: an integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0."""
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (NaN and infinity mean nothing as a setting, and would
    otherwise pass every comparison they meet unnoticed or fail every one)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number of at least 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def thread_count(text: str) -> int:
    """argparse type: a number of threads from 1 to the cores this process may run on (thousands of
    threads crash ONNX Runtime; more threads than cores only slow it down)."""
    from .runtime import available_cores

    value = positive_int(text)
    cores = available_cores()
    if value > cores:
        raise argparse.ArgumentTypeError(f"{value} threads: at most {cores}, the cores available here")
    return value


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """The one progress flag of every command that shows progress (`-q` implies it)."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr (implied by -q)")


def uncertain_threshold(text: str) -> tuple[str | None, float]:
    """argparse type of --uncertain-below: P (every task) or TASK=P, P a confidence from 0 to 1."""
    from .readout import uncertain_thresholds

    task, equals, value = text.rpartition("=")
    if equals and not task:
        raise argparse.ArgumentTypeError(f"{text!r} names no task before '='; give P or TASK=P")
    try:
        threshold = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not P or TASK=P, P a confidence from 0 to 1") from None
    try:
        uncertain_thresholds({task: threshold} if task else threshold)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return task or None, threshold


def track_seconds(text: str) -> float:
    """argparse type of --track: a positive number of seconds."""
    from .tracking import check_span

    try:
        return check_span(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds") from None


def power_jump_db(text: str) -> float:
    """argparse type of --track-reset-db: a positive number of dB (inf: never)."""
    from .tracking import check_power_jump

    try:
        return check_power_jump(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of dB") from None


def add_readout_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every command that prints readouts: which values to mark uncertain, and
    tracking over windows (`uncertain_below` reads the thresholds back)."""
    from .tracking import TRACK_POWER_JUMP_DB

    parser.add_argument(
        "--uncertain-below",
        type=uncertain_threshold,
        action="append",
        default=[],
        metavar="[TASK=]P",
        help="list a value in the readout's `uncertain` (and mark it ? in text) when its confidence is below P "
        "(0-1); TASK=P for one of protocol, modulation, snr_db, mobility; repeat for several (default: none)",
    )
    parser.add_argument(
        "--track",
        type=track_seconds,
        metavar="SECONDS",
        help="also read each value over the emission's windows of the last SECONDS (tracked_* fields; "
        "a new track when the protocol or the window power changes)",
    )
    parser.add_argument(
        "--track-reset-db",
        type=power_jump_db,
        default=TRACK_POWER_JUMP_DB,
        metavar="DB",
        help=f"with --track, a window power this far from the last window's starts a new track "
        f"(default {TRACK_POWER_JUMP_DB:g} dB; inf: never)",
    )


def uncertain_below(args: argparse.Namespace) -> dict[str, float]:
    """The uncertain thresholds `add_readout_arguments` read: a bare P for every task, TASK=P
    for one, the later given winning."""
    from .readout import TASKS

    thresholds: dict[str, float] = {}
    for task, value in args.uncertain_below:
        thresholds.update({task: value} if task else dict.fromkeys(TASKS, value))
    return thresholds


def readout_tracker(args: argparse.Namespace, runtime: Runtime) -> Tracker | None:
    """A fresh tracker (lwmspectro.tracking.Tracker) for the stream `runtime` reads, as
    `add_readout_arguments`' --track and --track-reset-db ask; None without --track."""
    from .tracking import Tracker

    if not args.track:
        return None
    return Tracker.for_runtime(runtime, args.track, power_jump_db=args.track_reset_db)


NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$", re.IGNORECASE)
"""A negative number as a command line writes it, exponent included."""


class LazyCommandParser(argparse.ArgumentParser):
    """A subcommand's parser that imports its module and adds its arguments on first use."""

    def __init__(
        self, *args, load: Callable[[], ModuleType] | None = None, run_key: str = "run_command", **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        # argparse's own pattern for a negative number has no exponent, so `--min-snr -1e1` was
        # taken for an option and refused with "expected one argument"; no option here looks
        # like a number, so every negative number is a value.
        self._negative_number_matcher = NEGATIVE_NUMBER
        self._load = load
        self._run_key = run_key
        add_common_options(self, argparse.SUPPRESS)

    def parse_known_args(self, args=None, namespace=None):
        if self._load is not None:
            load, self._load = self._load, None
            module = load()
            self.description = module.HELP
            module.add_arguments(self)
            self.set_defaults(**{self._run_key: module.run})
        return super().parse_known_args(args, namespace)


@functools.cache
def plugin_entry_points(group: str) -> dict[str, importlib.metadata.EntryPoint]:
    """The entry points installed packages declare in `group`, by name."""
    return {entry.name: entry for entry in importlib.metadata.entry_points(group=group)}


def _loaded(module: ModuleType) -> Callable[[], ModuleType]:
    return lambda: module


def _plugin_loader(entry: importlib.metadata.EntryPoint, prog: str, install: str) -> Callable[[], ModuleType]:
    def load() -> ModuleType:
        try:
            return entry.load()
        except Exception as err:  # any failure of a plugin's import is reported in one line
            origin = f"{entry.dist.name} {entry.dist.version}" if entry.dist else entry.value
            advice = f"; {install}" if install and isinstance(err, ImportError) else ""
            raise CommandUnavailable(
                f"{prog}: error: the command from {origin} cannot be loaded ({type(err).__name__}: {err}){advice}"
            ) from err

    return load


def _missing_loader(prog: str, install: str) -> Callable[[], ModuleType]:
    def load() -> ModuleType:
        raise CommandUnavailable(f"{prog}: error: not installed; {install}")

    return load


def add_commands(
    parser: argparse.ArgumentParser,
    package: str,
    group: str,
    known_plugins: dict[str, tuple[str, str]],
    dest: str,
    run_key: str,
) -> None:
    """Subcommands of `parser`: the modules of `package`, the entry points of `group`, and the
    known plugins that are not installed (which say how to install them)."""
    subparsers = parser.add_subparsers(dest=dest, required=True, metavar=dest.upper(), parser_class=LazyCommandParser)
    core = {
        info.name: importlib.import_module(f"{package}.{info.name}")
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__)
        if not info.name.startswith("_")
    }
    plugins = {name: entry for name, entry in plugin_entry_points(group).items() if name not in core}
    for name in sorted(set(core) | set(plugins) | set(known_plugins)):
        prog = f"{parser.prog} {name}"
        load: Callable[[], ModuleType]
        if name in core:
            help_text, load = core[name].HELP, _loaded(core[name])
        else:
            summary, install = known_plugins.get(name, ("", ""))
            if name in plugins:
                entry = plugins[name]
                origin = f"[{entry.dist.name}]" if entry.dist else f"[{entry.value}]"
                help_text, load = f"{summary} {origin}".strip(), _plugin_loader(entry, prog, install)
            else:
                help_text, load = f"{summary} [not installed]", _missing_loader(prog, install)
        subparsers.add_parser(name, help=help_text, description=help_text, load=load, run_key=run_key)


def versions() -> list[tuple[str, str]]:
    """(distribution, version) of the core and of each installed package that adds commands."""

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    plugins = {
        entry.dist.name: entry.dist.version
        for group in (COMMAND_GROUP, BENCHMARK_GROUP)
        for entry in plugin_entry_points(group).values()
        if entry.dist is not None and entry.dist.name != "lwmspectro"
    }
    return [("lwmspectro", version("lwmspectro")), *sorted(plugins.items())]


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        for name, version in versions():
            print(f"{name} {version}")
        parser.exit()


def add_common_options(parser: argparse.ArgumentParser, default: object = None) -> None:
    """--version and --debug, on the root parser and on every command's (there with `default`
    argparse.SUPPRESS, so that a command's parser does not reset what the root parser set)."""
    parser.add_argument(
        "--version", action=_VersionAction, help="versions of the core and of each package that adds commands"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if default is None else default,
        help="on failure show the traceback instead of the one-line error",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lwmspectro",
        description="LWM-Spectro: wireless foundation model on SDR signals",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_options(parser)
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more diagnostics on stderr (-vv: also other libraries')"
    )
    parser.add_argument(
        "-q", "--quiet", action="count", default=0, help="only warnings and errors on stderr, no progress (-qq: errors)"
    )
    add_commands(parser, "lwmspectro.commands", COMMAND_GROUP, KNOWN_PLUGIN_COMMANDS, "command", "run_command")
    return parser


class _LogFormatter(logging.Formatter):
    """Information as is; a warning or an error prefixed like the CLI's own error line."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno < logging.WARNING:
            return message
        return f"lwmspectro: {record.levelname.lower()}: {message}"


@contextlib.contextmanager
def logging_to_stderr(verbosity: int) -> Iterator[None]:
    """Log to stderr while a command runs: the project's packages at INFO (-v DEBUG, -q WARNING,
    -qq ERROR), other libraries at WARNING (-vv: as the project's). The handler and levels are
    undone afterwards, so that a caller running main() in-process keeps its own logging."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG if verbosity > 0 else logging.ERROR)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in LOG_PACKAGES)]
    saved = [log.level for log in loggers]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter())
    loggers[0].addHandler(handler)
    loggers[0].setLevel(level if verbosity > 1 else max(level, logging.WARNING))
    for log in loggers[1:]:
        log.setLevel(level)
    try:
        yield
    finally:
        loggers[0].removeHandler(handler)
        for log, saved_level in zip(loggers, saved):
            log.setLevel(saved_level)


def _install_hint(command: str) -> str:
    install = KNOWN_PLUGIN_COMMANDS.get(command, ("", ""))[1]
    return f"; {install}" if install else ""


def describe(error: BaseException, command: str) -> str:
    """One line saying what failed and, where it can be told from the error alone, how to fix it."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        message = f"{error.filename}: {error.strerror}; check the path and its permissions"
    elif isinstance(error, ImportError):
        message = f"{error}{_install_hint(command)}"
    elif isinstance(error, MemoryError):
        message = "out of memory; give the command less to hold at once (a shorter input, fewer workers)"
    elif isinstance(error, (ValueError, OSError, UsageError)):
        message = str(error)
    else:
        message = f"{type(error).__name__}: {error} (unexpected; rerun with --debug for the traceback and report it)"
    return " ".join(message.split("\n"))


def _close_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # a stdout without a file descriptor (captured in-process) has nothing to flush


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except CommandUnavailable as err:
        print(err, file=sys.stderr)
        return EXIT_USAGE
    if args.quiet and hasattr(args, "no_progress"):
        args.no_progress = True
    prog = f"{parser.prog} {args.command}"
    keep_freed_memory()
    try:
        with logging_to_stderr(args.verbose - args.quiet):
            status = int(args.run_command(args) or 0)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _close_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # every failure ends in one line (or, with --debug, its traceback)
        if args.debug:
            traceback.print_exc()
        else:
            print(f"{prog}: error: {describe(err, args.command)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, (UsageError, ImportError)) else EXIT_FAILURE


if __name__ == "__main__":
    # As `python -m lwmspectro.cli` this file is __main__, a second copy of the module: run the one the
    # commands import, so that they share its classes (UsageError).
    from lwmspectro.cli import main as package_main

    sys.exit(package_main())
