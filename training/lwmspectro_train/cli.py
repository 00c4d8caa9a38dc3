"""`lwmspectro-train`: the training recipe, one stage per subcommand, or `all` of it.

lwmspectro-train all --config small                 stages in order, then heldout + export
lwmspectro-train pretrain --config small --resume   continue a killed stage where it stopped
torchrun --nproc_per_node 2 -m lwmspectro_train.cli pretrain --config small   data-parallel

Exporting a finished run on its own is `lwmspectro export --run DIR` (lwmspectro_train.commands).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from lwmspectro import labels
from lwmspectro.cli import UsageError
from lwmspectro.fileio import atomic_write

from .commands.export import add_also_argument
from .config import RunConfig, config_names, load_config
from .distributed import Context, setup, teardown
from .stages import EXPERT_STAGES, Run, check_compatible

COMMANDS = {
    "pretrain": "stage 1: masked spectrogram modelling, one expert per protocol",
    "finetune": "stage 1b: reconstruction + supervised contrastive fine-tuning of each expert",
    "router": "stage 2: the router on a class-balanced mix, experts frozen",
    "heads": "stage 3: modulation and SNR x mobility heads per expert",
    "heldout": "held-out metrics per SNR of router -> top-1 expert -> heads",
    "all": "every stage in order (each resumable), then heldout and export",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lwmspectro-train", description="LWM-Spectro training recipe")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "--config",
            required=True,
            help="a config name (" + ", ".join(config_names()) + ") or a path to a .json file",
        )
        command.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config key, e.g. --set stages.pretrain.epochs=5 (repeatable)",
        )
        command.add_argument("--experts", help="comma-separated subset of the config's experts for this command")
        command.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
        if name != "heldout":
            command.add_argument(
                "--resume",
                action="store_true",
                help="continue from the stage checkpoints (a finished stage is skipped)",
            )
        if name in ("heldout", "all"):
            command.add_argument("--data", help="held-out dataset folder (default: the config's data.test)")
        if name == "all":
            command.add_argument("--out", help="bundle folder to write (default: RUN_DIR/bundle)")
            command.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
            command.add_argument(
                "--parity-samples",
                type=int,
                default=64,
                help="held-out spectrograms for the ONNX parity check (default 64)",
            )
            add_also_argument(command)
    return parser


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def command_record(command: list[str], ctx: Context) -> dict:
    """What the card's `training.commands` lists: the command line, where and when it ran."""
    return {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(command),
        "cwd": os.getcwd(),
        "world_size": ctx.world_size,
        "git_commit": _git_commit(),
    }


def prepare_run_dir(cfg: RunConfig, record: dict, ctx: Context) -> None:
    """config.json (one architecture per run dir, once a stage has written into it) and
    commands.jsonl (every command run)."""
    if ctx.is_main:
        folder = Path(cfg.run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "config.json"
        # A run dir whose commands all failed before any stage wrote a file holds nothing the
        # config must still describe: it takes this command's (a mistyped data path retried).
        started = any(p.name not in ("config.json", "commands.jsonl") for p in folder.iterdir())
        if path.exists():
            try:
                previous = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(
                    f"{path}: not valid JSON ({err}); restore it, or delete it to adopt this command's config"
                ) from None
            if started:
                check_compatible(previous, cfg.to_dict(), str(folder))
        atomic_write(path, json.dumps(cfg.to_dict(), indent=2) + "\n")
        with open(folder / "commands.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    ctx.barrier()


def _experts(args, cfg: RunConfig) -> tuple[str, ...]:
    if args.experts is None:
        return cfg.experts
    chosen = tuple(e.strip() for e in args.experts.split(",") if e.strip())
    if not chosen:
        raise UsageError(f"--experts {args.experts!r} names no expert; give some of {', '.join(cfg.experts)}")
    for expert in chosen:
        labels.check_choice("expert", expert, cfg.experts)
    return chosen


def _report(name: str, result: dict) -> None:
    best = result.get("best") or {}
    shown = "  ".join(f"{k} {v:.4g}" for k, v in best.items() if k.startswith("val_"))
    state = "complete" if result.get("complete") else "paused"
    print(f"{name}: {state}; best epoch {best.get('epoch', '-')}: {shown}", flush=True)


def print_metrics(metrics: dict) -> None:
    print(f"held-out metrics on {metrics['dataset']} ({metrics['count']} spectrograms):")
    for key, entry in metrics["targets"].items():
        # Figures named in dB are errors in dB; the others are shares.
        scale, unit = (1.0, "dB") if key.endswith("_db") else (100.0, "%")
        value = "n/a" if entry["value"] is None else f"{scale * entry['value']:.1f} {unit}"
        met = "" if entry["met"] is None else ("  met" if entry["met"] else "  MISSED")
        print(f"  {key:<36s} {value:>8s}  (target {scale * entry['target']:g} {unit}){met}")
    print("  per SNR:  snr_db  router_acc  modulation_f1  snr_x_mobility_f1")
    for snr, row in metrics["per_snr_db"].items():
        cells = [row[k] for k in ("router_accuracy", "modulation_macro_f1", "snr_mobility_macro_f1")]
        print(f"           {snr:>6s}  " + "  ".join("    n/a   " if v is None else f"{100 * v:9.1f}%" for v in cells))


def run_heldout(run: Run, data: str | None) -> dict:
    from .heldout import heldout_metrics

    folder = data or run.cfg.data.test
    if not folder:
        raise ValueError("no held-out dataset: set data.test in the config or pass --data DIR")
    run.check_same_views(run.open_set(folder))
    metrics = heldout_metrics(
        run.mixture_of_experts(), folder, run.cfg.loader.eval_batch_size, run.cfg.loader.workers, progress=run.progress
    )
    out = run.dir / "eval" / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(metrics, indent=1) + "\n")
    print_metrics(metrics)
    return metrics


def run_command(args, argv: list[str], cfg: RunConfig, ctx: Context) -> int:
    record = command_record(["lwmspectro-train", *argv], ctx)
    prepare_run_dir(cfg, record, ctx)
    run = Run(cfg, ctx, progress=not args.no_progress)
    experts = _experts(args, cfg)
    resume = getattr(args, "resume", False)
    steps = {
        "pretrain": [(f"pretrain/{e}", lambda e=e: run.pretrain(e, resume)) for e in experts],
        "finetune": [(f"finetune/{e}", lambda e=e: run.finetune(e, resume)) for e in experts],
        "router": [("router", lambda: run.router(resume))],
        "heads": [(f"heads/{e}", lambda e=e: run.heads(e, resume)) for e in experts],
    }
    order = list(steps) if args.command == "all" else [args.command] if args.command in steps else []
    if cfg.experts_from:
        taken = [stage for stage in order if stage in EXPERT_STAGES]
        if taken and ctx.is_main:
            print(f"{', '.join(taken)}: the experts and heads of {cfg.experts_from} (experts_from), not trained here")
        order = [stage for stage in order if stage not in EXPERT_STAGES]
    if cfg.router_from and "router" in order:
        if ctx.is_main:
            print(f"router: the router of {cfg.router_from} (router_from), not trained here")
        order.remove("router")
    for stage in order:
        for name, step in steps[stage]:
            result = step()
            if ctx.is_main:
                _report(name, result)
            if not result["complete"]:
                return 0
    if not ctx.is_main:
        return 0
    if args.command == "heldout":
        run_heldout(run, args.data)
    if args.command == "all":
        from .commands.export import also_sets, export_run

        out = Path(args.out) if args.out else run.dir / "bundle"
        export_run(run, out, args.data, args.parity_samples, args.overwrite, also=also_sets(args.also))
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config, args.set)
    except (ValueError, OSError) as err:  # a bad --config or --set: a usage error, as argparse's
        print(f"lwmspectro-train {args.command}: error: {err}", file=sys.stderr)
        return 2
    try:
        ctx = setup(cfg.device, cfg.loader.threads)
        try:
            return run_command(args, argv, cfg, ctx)
        finally:
            teardown()
    except UsageError as err:
        print(f"lwmspectro-train {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, OSError, FloatingPointError) as err:
        print(f"lwmspectro-train {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"lwmspectro-train {args.command}: interrupted; --resume continues from the last checkpoint",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
