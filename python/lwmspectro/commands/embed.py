"""`lwmspectro embed`: LWM channel embeddings of channel matrices, from a channel model bundle.

The channels are a .npy of complex (users, M, N) matrices (read with pickle refused), or a
DeepMIMO scenario whose channels lwm_channels makes with the bundle's antennas, subcarriers
and bandwidth. The output is one .npz: ``cls`` (users, D) and, unless --cls-only,
``channel`` (users, P, D); for a scenario also each channel's ``user_index`` and ``los``
flag, so that downstream tasks keep their labels beside the embeddings.
"""

from __future__ import annotations

import argparse
import logging

from ..cli import UsageError, thread_count

HELP = "LWM channel embeddings (CLS and per patch) of channel matrices (.npy) or a scenario, from a channel bundle"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("channels", nargs="?", help="a .npy of complex (users, antennas, subcarriers) channels")
    parser.add_argument("--scenario", help="embed the channels of this DeepMIMO scenario instead of a .npy")
    parser.add_argument("--folder", help="scenarios folder for --scenario (default: the bundled scenarios)")
    parser.add_argument("--bundle", required=True, help="channel model bundle folder (card kind lwm_channels)")
    parser.add_argument("--out", required=True, help="the .npz to write")
    parser.add_argument("--cls-only", action="store_true", help="write the CLS embeddings alone (P times smaller)")
    parser.add_argument(
        "--threads", type=thread_count, help="ONNX Runtime intra-op threads (default: up to 4 cores available)"
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..fileio import atomic_write, unwritable_reason
    from ..lwm_channels import scenario_channels
    from ..lwm_embed import ChannelEmbedder, LwmBundle, read_channels

    if bool(args.channels) == bool(args.scenario):
        raise UsageError("give either a .npy of channels or --scenario NAME, not both and not neither")
    if args.folder and not args.scenario:
        raise UsageError("--folder names where --scenario is; it takes no .npy")
    if not args.out.endswith(".npz"):
        raise UsageError(f"--out {args.out}: the embeddings are written as one .npz; name it NAME.npz")
    if reason := unwritable_reason(args.out):
        raise UsageError(f"--out {args.out}: {reason}")
    bundle = LwmBundle.load(args.bundle)
    extra: dict[str, np.ndarray] = {}
    if args.scenario:
        made = scenario_channels(
            args.scenario,
            args.folder,
            bandwidth_hz=bundle.bandwidth_hz,
            antennas=bundle.antennas,
            subcarriers=bundle.subcarriers,
        )
        channels, source = made.channels, f"scenario {args.scenario}"
        extra = {"user_index": made.user_indices, "los": made.los}
    else:
        channels, source = read_channels(args.channels, bundle.antennas, bundle.subcarriers), args.channels
    embeddings = ChannelEmbedder(bundle, threads=args.threads).embed(channels, source)
    arrays = {"cls": embeddings.cls, **({} if args.cls_only else {"channel": embeddings.channel}), **extra}
    atomic_write(args.out, lambda stream: np.savez(stream, **arrays))
    shapes = ", ".join(f"{name} {tuple(value.shape)}" for name, value in arrays.items())
    print(f"embedded {len(channels)} channels of {source} with {bundle.name}: {args.out} ({shapes})")
    return 0
