"""`lwmspectro lwm pretrain|export|los-head|downstream`: the LWM channel model's recipe.

    lwmspectro lwm pretrain --config lwm                    masked channel modelling (resumable: --resume)
    lwmspectro lwm export --run runs/lwm --out models/lwm   the channel model bundle
    lwmspectro lwm downstream --bundle models/lwm --task los --scenario SITE --out los.json
                                                            F1 of raw channels vs embeddings (Sec. VIII)
    lwmspectro lwm los-head --bundle models/lwm --scenario SITE ...
                                                            add a LoS/NLoS head on the CLS embedding
    lwmspectro lwm report --bundle models/lwm --scenario SITE --mmwave-scenario SITE_MMWAVE
                                                            every downstream figure into docs/

`lwmspectro embed --bundle models/lwm CHANNELS.npy` (the core) then embeds channels with it.
"""

from __future__ import annotations

import argparse

from lwmspectro.cli import add_progress_argument, non_negative_int, positive_int

HELP = "the LWM channel foundation model: pretrain, export its bundle, add a LoS head, score embeddings downstream"


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
    downstream = sub.add_parser(
        "downstream", help="LoS/NLoS or beam prediction F1 of raw channels vs embeddings over training fractions"
    )
    downstream.add_argument("--bundle", required=True, help="channel model bundle folder")
    downstream.add_argument(
        "--task",
        required=True,
        choices=("los", "beam", "beam-probe"),
        help="beam-probe: one MLP on raw values, CLS and channel embeddings and the sub-6 GHz direction profile",
    )
    downstream.add_argument(
        "--scenario", help="labelled users of this scenario (for beam: the sub-6 GHz trace), unseen in pretraining"
    )
    downstream.add_argument("--mmwave-scenario", help="beam: the same site traced at the mmWave carrier")
    downstream.add_argument("--folder", help="scenarios folder (default: the bundled scenarios)")
    downstream.add_argument(
        "--synthetic", type=positive_int, metavar="USERS", help="self-made users (lwm_channels.random_paths) instead"
    )
    downstream.add_argument("--fractions", help="comma-separated training fractions (default: the task's sweep)")
    downstream.add_argument("--beams", help="beam: comma-separated codebook sizes (default 16,32,64,128,256)")
    downstream.add_argument("--epochs", type=positive_int, default=100, help="head training epochs (default 100)")
    downstream.add_argument(
        "--max-updates", type=positive_int, help="stop each head after this many optimiser steps (default: no limit)"
    )
    downstream.add_argument("--seed", type=non_negative_int, default=0)
    downstream.add_argument("--out", required=True, help="the JSON report to write")
    report = sub.add_parser(
        "report",
        help="reconstruction, LoS/NLoS, beam prediction and t-SNE on unseen users, regenerated into docs/",
    )
    report.add_argument("--bundle", required=True, help="channel model bundle folder (with its torch weights)")
    report.add_argument("--scenario", help="the held-out site at the sub-6 GHz carrier (users with LoS labels)")
    report.add_argument("--mmwave-scenario", help="the same site and users at the mmWave carrier (beam prediction)")
    report.add_argument("--folder", help="scenarios folder (default: the bundled scenarios)")
    report.add_argument(
        "--synthetic", type=positive_int, metavar="USERS", help="self-made users (lwm_channels.random_paths) instead"
    )
    report.add_argument("--quick", action="store_true", help="a smaller grid (fewer fractions, codebooks and draws)")
    report.add_argument("--epochs", type=positive_int, help="head training epochs (default: the preset's)")
    report.add_argument("--repeats", type=positive_int, help="draws of the training users per fraction")
    report.add_argument(
        "--sections", nargs="+", metavar="SECTION", help="run only these (reconstruction, los, beam, tsne)"
    )
    report.add_argument("--seed", type=non_negative_int, default=0)
    report.add_argument(
        "--out", default="docs/lwm-results", help="folder of the sections' JSON and the figures; a rerun resumes there"
    )
    report.add_argument("--results-md", default="docs/lwm-results.md", help="the report page to write")
    los_head = sub.add_parser(
        "los-head", help="train a LoS/NLoS head on CLS embeddings of labelled users and add it to a bundle"
    )
    los_head.add_argument("--bundle", required=True, help="channel model bundle folder (rewritten in place)")
    los_head.add_argument("--scenario", nargs="+", metavar="NAME", help="labelled users of these scenarios")
    los_head.add_argument("--folder", help="scenarios folder (default: the bundled scenarios)")
    los_head.add_argument(
        "--synthetic", type=positive_int, metavar="USERS", help="self-made users (lwm_channels.random_paths) instead"
    )
    los_head.add_argument("--epochs", type=positive_int, default=100, help="head training epochs (default 100)")
    los_head.add_argument("--seed", type=non_negative_int, default=0)


def command_line(args: argparse.Namespace) -> list[str]:
    """The command that reproduces this one, rebuilt from the parsed options, for the run's log and the card."""
    if args.action == "report":
        words = ["lwmspectro", "lwm", "report", "--bundle", args.bundle]
        for option in ("scenario", "mmwave_scenario", "folder", "synthetic", "epochs", "repeats"):
            if getattr(args, option) is not None:
                words += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
        words += ["--quick"] if args.quick else []
        words += ["--sections", *args.sections] if args.sections else []
        return words + ["--seed", str(args.seed), "--out", args.out, "--results-md", args.results_md]
    if args.action == "downstream":
        words = ["lwmspectro", "lwm", "downstream", "--bundle", args.bundle, "--task", args.task]
        for option in ("scenario", "mmwave_scenario", "folder", "synthetic", "fractions", "beams"):
            if getattr(args, option) is not None:
                words += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
        return words + ["--epochs", str(args.epochs), "--seed", str(args.seed), "--out", args.out]
    if args.action == "los-head":
        words = ["lwmspectro", "lwm", "los-head", "--bundle", args.bundle]
        words += ["--scenario", *args.scenario] if args.scenario else []
        for option in ("folder", "synthetic"):
            if getattr(args, option) is not None:
                words += [f"--{option}", str(getattr(args, option))]
        return words + ["--epochs", str(args.epochs), "--seed", str(args.seed)]
    if args.action == "export":
        words = ["lwmspectro", "lwm", "export", "--run", args.run, "--out", args.out]
        return words + ["--parity-channels", str(args.parity_channels)] + (["--overwrite"] if args.overwrite else [])
    words = ["lwmspectro", "lwm", "pretrain", "--config", args.config]
    return words + [word for item in args.set for word in ("--set", item)] + (["--resume"] if args.resume else [])


def run(args: argparse.Namespace) -> int:
    from ..cli import command_record
    from ..distributed import Context, setup, teardown

    argv = command_line(args)
    if args.action == "downstream":
        return downstream(args, argv)
    if args.action == "report":
        return report(args, argv)
    if args.action == "los-head":
        return los_head(args, command_record(argv, Context()))
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


def _numbers(text: str, kind: type, option: str) -> list:
    from lwmspectro.cli import UsageError

    try:
        values = [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise UsageError(f"{option} {text!r}: not a comma-separated list of numbers") from None
    if not values or not all(0 < value < float("inf") for value in values):
        raise UsageError(f"{option} {text!r}: give one or more positive numbers")
    return values


def los_head(args: argparse.Namespace, record: dict) -> int:
    """Train the LoS/NLoS head on a scenario's users or self-made ones and add it to the bundle."""
    import numpy as np

    from lwmspectro.cli import UsageError
    from lwmspectro.lwm_channels import paths_channels, random_paths, scenario_channels
    from lwmspectro.lwm_embed import LwmBundle

    from .downstream import HeadTraining
    from .export import add_los_head

    if (args.scenario is None) == (args.synthetic is None):
        raise UsageError("give either --scenario NAME ... or --synthetic USERS")
    bundle = LwmBundle.load(args.bundle)
    shape = {"antennas": bundle.antennas, "subcarriers": bundle.subcarriers, "bandwidth_hz": bundle.bandwidth_hz}
    if args.synthetic:
        paths, los = random_paths(np.random.default_rng([args.seed, 7]), args.synthetic)
        channels = paths_channels(paths, **shape)
        source = {"synthetic_users": args.synthetic, "seed": args.seed}
    else:
        made = [scenario_channels(name, args.folder, **shape) for name in args.scenario]
        channels = np.concatenate([m.channels for m in made])
        los = np.concatenate([m.los for m in made])
        source = {"scenarios": args.scenario, "folder": args.folder, "users": len(channels)}
    card = add_los_head(
        args.bundle,
        channels,
        los,
        record=record,
        source=source,
        training=HeadTraining(epochs=args.epochs),
        seed=args.seed,
    )
    metrics = card["los_head"]["metrics"]
    print(
        f"added a LoS/NLoS head to {args.bundle}: macro F1 {metrics['macro_f1']:.3f}, accuracy "
        f"{metrics['accuracy']:.3f} on {metrics['test_users']} users it did not train on"
    )
    return 0


def downstream(args: argparse.Namespace, argv: list[str]) -> int:
    """The sweep of one task on a scenario's users or self-made ones; the report as JSON, a table on stdout."""
    import json

    from lwmspectro.cli import UsageError
    from lwmspectro.fileio import atomic_write, file_sha256, unwritable_reason
    from lwmspectro.lwm_embed import LwmBundle

    from . import downstream as tasks

    if (args.scenario is None) == (args.synthetic is None):
        raise UsageError("give either --scenario NAME or --synthetic USERS")
    if reason := unwritable_reason(args.out):
        raise UsageError(f"--out {args.out}: {reason}")
    beams = args.task != "los"
    if beams and args.scenario and not args.mmwave_scenario:
        raise UsageError("beam prediction from a scenario needs --mmwave-scenario, the same site at the mmWave carrier")
    bundle = LwmBundle.load(args.bundle)
    training = tasks.HeadTraining(epochs=args.epochs, max_updates=args.max_updates)
    fractions = _numbers(args.fractions, float, "--fractions") if args.fractions else None
    if args.synthetic:
        users = tasks.synthetic_users(bundle, args.synthetic, args.seed)
    else:
        mmwave = args.mmwave_scenario if beams else None
        users = tasks.site_users(bundle, args.scenario, args.folder, mmwave)
    if args.task == "los":
        fractions = fractions or tasks.LOS_FRACTIONS
        rows = tasks.los_task(bundle, users.channels, users.los, fractions, training, args.seed)
        scored = len(users.channels)
    else:
        sizes = _numbers(args.beams, int, "--beams") if args.beams else tasks.CODEBOOK_SIZES
        sub6, mmwave_channels = users.beam_pair
        fractions = fractions or tasks.BEAM_FRACTIONS
        task = tasks.beam_task if args.task == "beam" else tasks.beam_probe
        rows = task(bundle, sub6, mmwave_channels, sizes, fractions, training, args.seed)
        scored = len(sub6)
    report = {
        "command": " ".join(argv),
        "bundle": {"path": str(bundle.path), "name": bundle.name, "card_sha256": file_sha256(bundle.card_path)},
        "users": scored,
        "rows": rows,
    }
    atomic_write(args.out, json.dumps(report, indent=1) + "\n")
    print(f"# {report['command']}")
    for row in rows:
        beams = f"{row['beams']:>4d} beams  " if "beams" in row else ""
        print(
            f"{row['task']:<10s} {beams}{row['representation']:<14s} fraction {row['fraction']:<6g} "
            f"({row['train_samples']:>6d} users)  F1 {row['f1']:.3f}"
        )
    return 0


def report(args: argparse.Namespace, argv: list[str]) -> int:
    """Every section of the report on a held-out site's users (or self-made ones), then the page."""
    from pathlib import Path

    from lwmspectro.cli import UsageError
    from lwmspectro.lwm_embed import LwmBundle

    from . import downstream as tasks
    from . import report as pages

    if (args.scenario is None) == (args.synthetic is None):
        raise UsageError("give either --scenario NAME (and --mmwave-scenario for beams) or --synthetic USERS")
    unknown = sorted(set(args.sections or ()) - set(pages.SECTIONS))
    if unknown:
        raise UsageError(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(pages.SECTIONS)}")
    bundle = LwmBundle.load(args.bundle)
    if args.synthetic:
        users = tasks.synthetic_users(bundle, args.synthetic, args.seed)
    else:
        users = tasks.site_users(bundle, args.scenario, args.folder, args.mmwave_scenario)
    preset_name = "quick" if args.quick else "full"
    preset = pages.preset_with(pages.PRESETS[preset_name], args.epochs, args.repeats)
    sections = pages.run_report(
        bundle,
        users,
        Path(args.out),
        Path(args.results_md),
        " ".join(argv),
        preset_name,
        preset,
        args.seed,
        args.sections or pages.SECTIONS,
    )
    for target in pages.targets(sections):
        print(f"{target['status']:<13s} {target['target']}: {target['numbers']}")
    print(f"wrote {args.results_md} and {args.out}/")
    return 0
