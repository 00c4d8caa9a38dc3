"""`lwmspectro export`: write a model bundle (ONNX + card.json) from a training run.

The work is done by the offline package `lwmspectro_train` (torch); this command only
hands over to it, so the core package keeps no torch dependency.
"""

HELP = "write a model bundle (ONNX files + card.json) from a training run directory"


def add_arguments(parser):
    parser.add_argument(
        "--run",
        dest="run_dir",
        required=True,
        metavar="DIR",
        help="training run directory (run_dir of an lwmspectro-train config); "
        "stored as run_dir because args.run is the CLI's dispatch",
    )
    parser.add_argument("--out", required=True, help="bundle folder to write, e.g. models/small")
    parser.add_argument("--data", help="held-out dataset folder for metrics and parity (default: the run's data.test)")
    parser.add_argument(
        "--parity-samples",
        type=int,
        default=64,
        help="held-out spectrograms for the ONNX Runtime vs torch check (default 64)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    try:
        from lwmspectro_train.cli import command_record, print_metrics
        from lwmspectro_train.distributed import setup
        from lwmspectro_train.export import export_bundle, load_run
    except ImportError as err:
        raise ValueError(
            f"lwmspectro export needs torch and the training package ({err}); install them with "
            "`pip install -e training` (or `make setup`)"
        ) from err
    ctx = setup("cpu")
    run_ = load_run(args.run_dir, ctx, progress=not args.no_progress)
    command = [
        "lwmspectro",
        "export",
        "--run",
        args.run_dir,
        "--out",
        args.out,
        "--parity-samples",
        str(args.parity_samples),
    ]
    command += ["--data", args.data] if args.data else []
    command += ["--overwrite"] if args.overwrite else []
    record = command_record(command, ctx)
    card = export_bundle(run_, args.out, args.data, args.parity_samples, args.overwrite, record)
    print_metrics(card["metrics"]["held_out"])
    print(f"wrote bundle {args.out}")
    return 0
