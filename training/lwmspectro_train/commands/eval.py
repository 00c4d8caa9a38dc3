"""`lwmspectro eval`: LWM-Spectro against baselines on the held-out scenario (tables, figures, report)."""

from __future__ import annotations

import argparse
import shlex

from lwmspectro.cli import add_progress_argument

HELP = "evaluate a model bundle against baselines on held-out data (few-shot tables, figures, docs/results.md)"

TASK_CHOICES = ("task1_wifi", "task1_lte", "task1_nr", "task2", "task3")
"""`baseline_comparison.tasks.TASKS`, named here so that `--help` needs no torch."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bundle",
        default=None,
        help="model bundle folder (card.json, ONNX files, weights.pt); needed unless --models names baselines only",
    )
    parser.add_argument(
        "--data", required=True, help="dataset folder from `lwmspectro generate` holding the held-out scenario"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the preset sized for two CPU cores in under 30 minutes (default: the paper's full grid)",
    )
    parser.add_argument(
        "--out",
        default="docs/results",
        help="folder for trials.csv, predictions, tables and figures; a rerun resumes there (default: docs/results)",
    )
    parser.add_argument(
        "--results-md", default="docs/results.md", help="report to regenerate (default: docs/results.md)"
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=list(TASK_CHOICES),
        choices=TASK_CHOICES,
        metavar="TASK",
        help=f"tasks to run (default: all of {', '.join(TASK_CHOICES)})",
    )
    parser.add_argument(
        "--scenario", default=None, help="scenario to evaluate on (default: the project's held-out scenario)"
    )
    parser.add_argument(
        "--pretrained-weights",
        action="append",
        default=[],
        metavar="MODEL=PATH",
        help="initialise a baseline from a state dict, e.g. resnet18=resnet18-imagenet.pth "
        "(torchvision names; repeatable; needs width 1.0, i.e. the full preset)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="MODEL",
        help="run only these models (LWM, LWM_FT, MoE, wu_cnn, deep_cnn, resnet18, "
        "efficientnet_b0, mobilenet_v3); default: all of the preset's",
    )
    parser.add_argument("--device", default="cpu", help="torch device for training (cpu, cuda, cuda:1)")
    add_progress_argument(parser)


def _parse_pretrained(items: list[str]) -> dict[str, str]:
    from ..baseline_comparison.baselines import BASELINES

    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise ValueError(
                f"--pretrained-weights {item!r}: expected MODEL=PATH with MODEL one of {', '.join(BASELINES)}"
            )
        if name not in BASELINES:
            raise ValueError(f"--pretrained-weights: unknown baseline {name!r}; valid choices: {', '.join(BASELINES)}")
        out[name] = path
    return out


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, rebuilt from the parsed options, for the report."""
    words = ["lwmspectro", "eval"] + (["--bundle", args.bundle] if args.bundle else []) + ["--data", args.data]
    words += ["--quick"] if args.quick else []
    defaults = {"out": "docs/results", "results_md": "docs/results.md", "scenario": None, "device": "cpu"}
    for key, default in defaults.items():
        if getattr(args, key) != default:
            words += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    if list(args.tasks) != list(TASK_CHOICES):
        words += ["--tasks", *args.tasks]
    if args.models:
        words += ["--models", *args.models]
    for item in args.pretrained_weights:
        words += ["--pretrained-weights", item]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from ..baseline_comparison.compare import compare_with_baselines

    command = command_line(args)
    path = compare_with_baselines(
        args.bundle,
        args.data,
        args.out,
        args.results_md,
        "quick" if args.quick else "full",
        tuple(args.tasks),
        args.scenario,
        _parse_pretrained(args.pretrained_weights),
        args.device,
        command,
        not args.no_progress,
        args.models,
    )
    print(f"report: {path}")
    return 0
