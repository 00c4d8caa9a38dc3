"""`lwmspectro bench NAME`: the benchmarks in `lwmspectro.benchmarks` and those installed packages
contribute (entry-point group `lwmspectro.benchmarks`), each printing its figures."""

from __future__ import annotations

import argparse

HELP = "benchmarks: generate (data pipeline), infer (model runtime), flowgraph (GNU Radio receiver)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..cli import BENCHMARK_GROUP, KNOWN_PLUGIN_BENCHMARKS, add_commands

    add_commands(
        parser, "lwmspectro.benchmarks", BENCHMARK_GROUP, KNOWN_PLUGIN_BENCHMARKS, "benchmark", "run_benchmark"
    )


def run(args: argparse.Namespace) -> int:
    return args.run_benchmark(args)
