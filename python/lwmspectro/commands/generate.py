"""`lwmspectro generate`: write a sharded, labelled dataset of spectrogram views."""

HELP = "generate a sharded dataset of labelled spectrogram views from a config file"


def positive_int(text: str) -> int:
    from ..cli import positive_int

    return positive_int(text)


def worker_count(text: str) -> int:
    """argparse type: 1 to twice the cores here (each worker is a process holding a shard)."""
    import argparse
    import os

    value = positive_int(text)
    limit = 2 * (os.cpu_count() or 1)
    if value > limit:
        raise argparse.ArgumentTypeError(f"{value} workers: at most {limit}, twice the cores here")
    return value


def add_arguments(parser):
    from ..cli import add_progress_argument

    parser.add_argument(
        "--config", required=True, help="generator config (JSON, keys of lwmspectro.synth.GeneratorConfig)"
    )
    parser.add_argument(
        "--out", required=True, help="dataset folder (resumes if it holds a partial run of the same config)"
    )
    parser.add_argument(
        "--workers", type=worker_count, default=1, help="processes on this machine (at most twice its cores)"
    )
    parser.add_argument(
        "--shard", default="0/1", metavar="i/N", help="make only shards with index %% N == i (split across machines)"
    )
    parser.add_argument(
        "--ray",
        action="store_true",
        help="make the shards as Ray tasks: on the cluster at RAY_ADDRESS when set (lwmspectro installed on "
        "every node), else on a local Ray instance using every core here (--workers is then ignored); "
        "needs `pip install 'lwmspectro[ray]'`",
    )
    parser.add_argument(
        "--n-samples",
        type=positive_int,
        help="override the config's n_samples; more than an --out folder holds grows that dataset in place",
    )
    parser.add_argument(
        "--views",
        help="override the config's views: registered view names, comma-separated, or 'all' for every one "
        "(lwmspectro.views.VIEWS): the same examples drawn (protocol, modulation, SNR, mobility, site, capture), "
        "with the views asked for",
    )
    parser.add_argument(
        "--fill-views",
        action="store_true",
        help="also add to the shards made before views were added to the config the views they lack, each "
        "example's capture formed again for just those views; without it they read the new views as absent",
    )
    add_progress_argument(parser)


def run(args) -> int:
    import importlib.util

    from ..cli import UsageError
    from ..dataset_generation import generate_dataset
    from ..synth import GeneratorConfig
    from ..views import VIEWS

    try:
        part, parts = (int(v) for v in args.shard.split("/"))
    except ValueError:
        raise UsageError(f"--shard {args.shard!r}: expected i/N, e.g. 0/4") from None
    if not 0 <= part < parts:
        raise UsageError(f"--shard {args.shard}: need 0 <= i < N, e.g. 0/4")
    if args.ray and importlib.util.find_spec("ray") is None:
        raise UsageError("--ray: the `ray` package is not installed; pip install 'lwmspectro[ray]'")
    config = GeneratorConfig.from_file(args.config)
    if args.n_samples:
        config = GeneratorConfig.from_dict({**config.to_dict(), "n_samples": args.n_samples}, "--n-samples")
    if args.views:
        names = list(VIEWS) if args.views.strip() == "all" else [name.strip() for name in args.views.split(",")]
        try:
            config = GeneratorConfig.from_dict({**config.to_dict(), "views": names}, "--views")
        except ValueError as err:
            raise UsageError(str(err)) from None
    manifest = generate_dataset(
        config,
        args.out,
        workers=args.workers,
        shard_filter=(part, parts),
        use_ray=args.ray,
        progress=not args.no_progress,
        fill_views=args.fill_views,
    )
    state = "complete" if manifest["complete"] else f"{len(manifest['shards'])}/{manifest['n_shards_planned']} shards"
    print(f"{args.out}: {manifest['count']} examples ({state})")
    return 0
