"""Selective accuracy of a shipped bundle: at each confidence threshold, the share of a
dataset's values its calibrated heads state (a readout with `--uncertain-below` marks the
others uncertain) and how often those are right, the figures an export writes into the card's
`metrics.selective`, for a bundle and any dataset of its views:

    python -m lwmspectro_train.selective --bundle models/small --data data/heldout-all
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lwmspectro.bundle import load_bundle

from .calibrate import SELECTIVE_THRESHOLDS, selective_accuracy_on
from .data import TARGETS, SpectrogramSet
from .export import load_torch_from_bundle, print_selective
from .heldout import model_outputs
from .model import WIDEBAND


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, help="model bundle folder")
    parser.add_argument("--data", required=True, help="dataset folder made with the bundle's views")
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        default=list(SELECTIVE_THRESHOLDS),
        help="confidence thresholds, each from 0 to 1",
    )
    parser.add_argument("--out", help="write the figures as JSON here too")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not all(0.0 <= t <= 1.0 for t in args.thresholds):
        parser.error("--thresholds: each must be a confidence from 0 to 1")
    bundle = load_bundle(args.bundle)
    moe = load_torch_from_bundle(bundle)
    try:
        dataset = SpectrogramSet(args.data, views=[n for n in moe.view_names if n != WIDEBAND], targets=TARGETS)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    outputs = model_outputs(moe, dataset, progress=not args.no_progress, desc="selective")
    report = selective_accuracy_on(dataset, outputs, moe.expert_names, bundle.calibration, args.thresholds)
    print_selective(report)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
