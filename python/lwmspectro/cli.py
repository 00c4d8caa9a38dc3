"""`lwmspectro` command line: the core's commands and those each installed package contributes.

The core's commands are the modules in `lwmspectro.commands`; adding one is adding a module
there. Another installed package contributes commands through the `lwmspectro.commands`
entry-point group (and benchmarks for `lwmspectro bench` through `lwmspectro.benchmarks`),
each entry point naming a module with the same contract: ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``, heavy imports kept inside ``run``.

A command's module is imported only when that command is used, so `--help` stays instant and
the core's own commands never import torch, the training package or GNU Radio.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.metadata
import pkgutil
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

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
    "run": ("the GNU Radio receiver on a live or recorded source", GNURADIO_INSTALL),
}
KNOWN_PLUGIN_BENCHMARKS = {
    "flowgraph": ("GNU Radio receiver speed, latency and memory", GNURADIO_INSTALL),
}


class CommandUnavailable(Exception):
    """A command that is listed but cannot run here: its package is missing or fails to import."""


class LazyCommandParser(argparse.ArgumentParser):
    """A subcommand's parser that imports its module and adds its arguments on first use."""

    def __init__(self, *args, load: Callable[[], ModuleType] | None = None, run_key: str = "run", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._load = load
        self._run_key = run_key

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
                f"{prog}: the command from {origin} cannot be loaded ({type(err).__name__}: {err}){advice}"
            ) from err

    return load


def _missing_loader(prog: str, install: str) -> Callable[[], ModuleType]:
    def load() -> ModuleType:
        raise CommandUnavailable(f"{prog}: not installed; {install}")

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lwmspectro", description="LWM-Spectro: wireless foundation model on SDR signals"
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="versions of the core and of each package that adds commands"
    )
    add_commands(parser, "lwmspectro.commands", COMMAND_GROUP, KNOWN_PLUGIN_COMMANDS, "command", "run")
    return parser


def _install_hint(command: str) -> str:
    install = KNOWN_PLUGIN_COMMANDS.get(command, ("", ""))[1]
    return f"; {install}" if install else ""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except CommandUnavailable as err:
        print(err, file=sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"lwmspectro {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        print(f"lwmspectro {args.command}: error: {err}{_install_hint(args.command)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lwmspectro {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
