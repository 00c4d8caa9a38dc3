"""`lwmspectro export`: write a model bundle (ONNX + card.json) from a training run.

`export_run` is the one export path: this command and `lwmspectro-train all` both use it.
`--stamp DIR` upgrades a bundle written by an older export in place (graph metadata and
checksums; the weights stay as they are).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lwmspectro.cli import add_progress_argument

HELP = "write a model bundle (ONNX files + card.json) from a training run directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run",
        metavar="DIR",
        help="training run directory (run_dir of an lwmspectro-train config); needs --out",
    )
    parser.add_argument("--out", help="bundle folder to write, e.g. models/small")
    parser.add_argument(
        "--stamp",
        metavar="DIR",
        help="instead of exporting: upgrade the bundle in DIR in place, writing into its graphs the G, labels "
        "and normalisation its card states and into its card the sha256 of every file (weights unchanged)",
    )
    parser.add_argument("--data", help="held-out dataset folder for metrics and parity (default: the run's data.test)")
    parser.add_argument(
        "--parity-samples",
        type=int,
        default=64,
        help="held-out spectrograms for the ONNX Runtime vs torch check (default 64)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    add_also_argument(parser)
    add_progress_argument(parser)


def add_also_argument(parser: argparse.ArgumentParser) -> None:
    """`--also NAME=DIR`: more held-out sets whose metrics the card keeps as held_out_NAME."""
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="another held-out dataset folder whose metrics the card keeps as metrics.held_out_NAME, "
        "e.g. --also tdl=data/heldout-tdl (repeatable)",
    )


def also_sets(values: list[str]) -> dict[str, str]:
    """{name: folder} of the --also options; a UsageError for a malformed or repeated one."""
    from lwmspectro.cli import UsageError

    sets: dict[str, str] = {}
    for value in values:
        name, _, folder = value.partition("=")
        if not name.isidentifier() or not folder or name in sets:
            raise UsageError(f"--also {value!r}: give NAME=DIR once per name, NAME a word such as tdl")
        sets[name] = folder
    return sets


def export_run(
    run,
    out,
    data: str | None,
    parity_samples: int,
    overwrite: bool,
    record: dict | None = None,
    also: dict[str, str] | None = None,
) -> dict:
    """Write the bundle of a trained `run` to `out`, print its held-out metrics; the card.

    `record` is the exporting command when it is not already in the run's commands.jsonl;
    `also` names more held-out sets ({name: folder}) whose metrics the card keeps too.
    """
    from ..cli import print_metrics
    from ..export import export_bundle

    card = export_bundle(run, out, data, parity_samples, overwrite, record, also)
    for key, metrics in card["metrics"].items():
        if key.startswith("held_out"):
            print(f"{key}:")
            print_metrics(metrics)
    print(f"wrote bundle {out}")
    return card


def command_line(args: argparse.Namespace) -> list[str]:
    """The command that reproduces this export, rebuilt from the parsed options, for the card."""
    words = ["lwmspectro", "export", "--run", args.run, "--out", args.out]
    words += ["--parity-samples", str(args.parity_samples)]
    words += ["--data", args.data] if args.data else []
    words += ["--overwrite"] if args.overwrite else []
    for value in args.also:
        words += ["--also", value]
    return words


def run(args: argparse.Namespace) -> int:
    from lwmspectro.cli import UsageError

    from ..cli import command_record
    from ..distributed import setup
    from ..export import load_run, stamp_bundle

    if args.stamp:
        if args.run or args.out:
            raise UsageError("--stamp upgrades a bundle in place: it takes neither --run nor --out")
        card = stamp_bundle(args.stamp)
        print(f"stamped bundle {args.stamp}: {len(card['sha256'])} files checksummed, schema {card['schema_version']}")
        return 0
    if not args.run or not args.out:
        raise UsageError("--run DIR and --out DIR are required (or --stamp DIR to upgrade a bundle)")
    ctx = setup("cpu")
    trained = load_run(args.run, ctx, progress=not args.no_progress)
    export_run(
        trained,
        Path(args.out),
        args.data,
        args.parity_samples,
        args.overwrite,
        command_record(command_line(args), ctx),
        also_sets(args.also),
    )
    return 0
