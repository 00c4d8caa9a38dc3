"""`lwmspectro probe`: linear probes of every spectrogram view, label by label, written to docs/g-ablation.md."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from lwmspectro.cli import add_progress_argument, non_negative_int

HELP = "fit a linear probe per label on each spectrogram view and capture; writes docs/g-ablation.md"

DEFAULT_OUT = "runs/probe"
DEFAULT_REPORT = "docs/g-ablation.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"folder caching the generated examples' features; a rerun reuses them (default: {DEFAULT_OUT})",
    )
    parser.add_argument("--report", default=DEFAULT_REPORT, help=f"markdown table to write (default: {DEFAULT_REPORT})")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the labelled set (default 0)")
    parser.add_argument("--quick", action="store_true", help="a tiny set that runs in seconds (a smoke test)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes generating the examples and fitting the probes (default 1; the table is the same)",
    )
    stored = parser.add_argument_group(
        "stored datasets", "probe views two `lwmspectro generate` folders already hold, generating nothing"
    )
    stored.add_argument("--fit", metavar="DIR", help="labelled dataset the probes are fitted on")
    stored.add_argument("--score", metavar="DIR", help="labelled dataset the probes are scored on")
    stored.add_argument(
        "--column",
        action="append",
        metavar="VIEWS",
        help="comma-separated view names read side by side (repeatable; default: each stored view of --fit alone)",
    )
    stored.add_argument(
        "--target", action="append", metavar="LABEL", help="label to probe (repeatable; default: protocol)"
    )
    stored.add_argument("--limit", type=int, metavar="N", help="fit on the first N examples of --fit (default: all)")
    add_progress_argument(parser)


def command_line(args: argparse.Namespace) -> list[str]:
    """The command that regenerates the report, rebuilt from the parsed options."""
    words = ["lwmspectro", "probe"]
    if args.out != DEFAULT_OUT:
        words += ["--out", args.out]
    if args.report != DEFAULT_REPORT:
        words += ["--report", args.report]
    words += ["--seed", str(args.seed)]
    words += ["--quick"] if args.quick else []
    return words


def run(args: argparse.Namespace) -> int:
    from lwmspectro.cli import UsageError

    from ..probe import SIZES, run_probe

    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: a seed is an integer >= 0")
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: at least one process is needed")
    if args.fit or args.score:
        return _probe_stored(args)
    size = SIZES["quick" if args.quick else "default"]
    run_probe(
        Path(args.out),
        Path(args.report),
        size,
        args.seed,
        command_line(args),
        progress=not args.no_progress,
        workers=args.workers,
    )
    print(f"wrote {args.report} ({shlex.join(command_line(args))})")
    return 0


def _probe_stored(args: argparse.Namespace) -> int:
    """`--fit` / `--score`: the report of probes of stored views, on stdout."""
    from lwmspectro.cli import UsageError
    from lwmspectro.dataset import open_dataset

    from ..probe import probe_datasets

    if not (args.fit and args.score):
        raise UsageError("--fit and --score go together: the dataset the probes fit on and the one that scores them")
    columns = [[name.strip() for name in column.split(",") if name.strip()] for column in args.column or []]
    if any(not column for column in columns):
        raise UsageError("--column: give view names, comma-separated")
    columns = columns or [[name] for name in open_dataset(args.fit).views]
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit}: fit on at least one example")
    print(
        probe_datasets(
            Path(args.fit),
            Path(args.score),
            columns,
            args.target or ["protocol"],
            args.seed,
            progress=not args.no_progress,
            fit_limit=args.limit,
            workers=args.workers,
        )
    )
    return 0
