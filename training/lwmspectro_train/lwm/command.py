"""`lwmspectro lwm pretrain|export`: the LWM channel model's recipe.

    lwmspectro lwm pretrain --config lwm               masked channel modelling (resumable: --resume)
    lwmspectro lwm export --run runs/lwm --out models/lwm   the channel model bundle

`lwmspectro embed --bundle models/lwm CHANNELS.npy` (the core) then embeds channels with it.
"""

from __future__ import annotations

import argparse

from lwmspectro.cli import add_progress_argument, positive_int

HELP = "the LWM channel foundation model: pretrain it on channel matrices, export its bundle"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .train import config_names

    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    pretrain = sub.add_parser("pretrain", help="masked channel modelling (Table I of the LWM paper)")
    pretrain.add_argument(
        "--config", required=True, help="a config name (" + ", ".join(config_names()) + ") or a .json path"
    )
    pretrain.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set pretrain.epochs=5 (repeatable)",
    )
    pretrain.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    add_progress_argument(pretrain)
    export = sub.add_parser("export", help="write the channel model bundle of a pretrained run")
    export.add_argument("--run", required=True, metavar="DIR", help="the run directory (run_dir of its config)")
    export.add_argument("--out", required=True, help="bundle folder to write, e.g. models/lwm")
    export.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    export.add_argument(
        "--parity-channels",
        type=positive_int,
        default=64,
        help="validation channels ONNX Runtime and torch both embed (default 64)",
    )


def command_line(args: argparse.Namespace) -> list[str]:
    """The command that reproduces this one, rebuilt from the parsed options, for the run's log and the card."""
    if args.action == "export":
        words = ["lwmspectro", "lwm", "export", "--run", args.run, "--out", args.out]
        return words + ["--parity-channels", str(args.parity_channels)] + (["--overwrite"] if args.overwrite else [])
    words = ["lwmspectro", "lwm", "pretrain", "--config", args.config]
    return words + [word for item in args.set for word in ("--set", item)] + (["--resume"] if args.resume else [])


def run(args: argparse.Namespace) -> int:
    from ..cli import command_record
    from ..distributed import Context, setup, teardown

    argv = command_line(args)
    if args.action == "export":
        from .export import export_bundle

        card = export_bundle(
            args.run,
            args.out,
            record=command_record(argv, Context()),
            parity_channels=args.parity_channels,
            overwrite=args.overwrite,
        )
        metrics = card["metrics"]
        print(
            f"wrote channel bundle {args.out}: {card['model']['parameters']} parameters; ONNX vs torch max difference "
            f"{metrics['onnx_parity']['cls_max_abs_diff']:.2e} (CLS), "
            f"{metrics['onnx_parity']['channel_max_abs_diff']:.2e} (channel)"
        )
        return 0
    from .train import load_config, prepare_run_dir, pretrain

    cfg = load_config(args.config, args.set)
    ctx = setup(cfg.device, cfg.loader.threads)
    try:
        prepare_run_dir(cfg, command_record(argv, ctx), ctx)
        result = pretrain(cfg, ctx, resume=args.resume, progress=not args.no_progress)
    finally:
        teardown()
    if ctx.is_main:
        best = result["best"] or {}
        shown = "  ".join(f"{k} {v:.4g}" for k, v in best.items() if k.startswith("val_"))
        state = "complete" if result["complete"] else "paused (--resume continues)"
        print(f"lwm pretrain: {state}; best epoch {best.get('epoch', '-')}: {shown}")
    return 0
