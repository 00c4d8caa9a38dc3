"""`lwmspectro generate`: write a sharded, labelled spectrogram dataset."""

HELP = "generate a sharded spectrogram dataset from a config file"


def add_arguments(parser):
    from ..cli import add_progress_argument

    parser.add_argument(
        "--config", required=True, help="generator config (JSON, keys of lwmspectro.synth.GeneratorConfig)"
    )
    parser.add_argument(
        "--out", required=True, help="dataset folder (resumes if it holds a partial run of the same config)"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes on this machine")
    parser.add_argument(
        "--shard", default="0/1", metavar="i/N", help="make only shards with index %% N == i (split across machines)"
    )
    parser.add_argument("--ray", action="store_true", help="distribute shards over a Ray cluster")
    parser.add_argument("--n-samples", type=int, help="override the config's n_samples")
    add_progress_argument(parser)


def run(args) -> int:
    import dataclasses

    from ..generate import generate_dataset
    from ..synth import GeneratorConfig

    config = GeneratorConfig.from_file(args.config)
    if args.n_samples:
        config = dataclasses.replace(config, n_samples=args.n_samples)
    try:
        part, parts = (int(v) for v in args.shard.split("/"))
    except ValueError:
        raise ValueError(f"--shard {args.shard!r}: expected i/N, e.g. 0/4") from None
    manifest = generate_dataset(
        config,
        args.out,
        workers=args.workers,
        shard_filter=(part, parts),
        use_ray=args.ray,
        progress=not args.no_progress,
    )
    state = "complete" if manifest["complete"] else f"{len(manifest['shards'])}/{manifest['n_shards_planned']} shards"
    print(f"{args.out}: {manifest['count']} spectrograms ({state})")
    return 0
