"""`lwmspectro bench NAME`: the benchmarks in `lwmspectro.benchmarks`, each printing its figures."""

import importlib
import pkgutil

HELP = "benchmarks: generate (data pipeline), infer (model runtime), flowgraph (GNU Radio receiver)"


def add_arguments(parser):
    from .. import benchmarks

    sub = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"lwmspectro.benchmarks.{info.name}")
        bench = sub.add_parser(info.name, help=getattr(module, "HELP", None))
        module.add_arguments(bench)
        bench.set_defaults(bench_run=module.run)


def run(args) -> int:
    return args.bench_run(args)
