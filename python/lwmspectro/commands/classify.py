"""`lwmspectro classify REC.sigmf-meta`: one readout per analysis window of a SigMF recording,
optionally with each value tracked over the emission's recent windows (--track) and values of
low confidence marked uncertain (--uncertain-below)."""

from __future__ import annotations

import argparse
import logging

from ..cli import add_readout_arguments, positive_int, readout_tracker, thread_count, uncertain_below

HELP = "classify every analysis window of a SigMF recording (cf32, ci16, ci8) with a model bundle"

READ_BUDGET_SAMPLES = 1 << 24
"""Most source samples read at once (128 MB of complex64): at high sample rates fewer windows
are framed together, so that memory stays bounded however fast the recording."""

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", help="a SigMF recording (.sigmf-meta, .sigmf-data or the base name)")
    parser.add_argument("--bundle", help="model bundle folder (default: $LWMSPECTRO_BUNDLE, else models/small)")
    parser.add_argument("--json", action="store_true", help="one JSON readout per line instead of text")
    parser.add_argument(
        "--stride", type=positive_int, help="source samples between window starts (default: one window)"
    )
    parser.add_argument("--max-windows", type=positive_int, help="stop after this many windows")
    parser.add_argument(
        "--threads", type=thread_count, help="ONNX Runtime intra-op threads (default: up to 4 cores available)"
    )
    add_readout_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from .. import readout
    from ..bundle import load_bundle
    from ..framer import RECORDING_BATCH, SOURCE_RATE_RANGE_HZ
    from ..runtime import Runtime
    from ..sigmf_io import RecordingError, SigMFReader

    # The recording is checked first: a bad one fails in a moment, before the bundle loads.
    samples = SigMFReader(args.recording)
    rate = samples.sample_rate_hz
    low, high = SOURCE_RATE_RANGE_HZ
    if not low <= rate <= high:
        raise RecordingError(
            f"{samples.path}: core:sample_rate {rate:g} Hz is not between {low / 1e6:g} and {high / 1e6:g} MS/s, "
            "the rates classify reads; fix the rate, or resample the recording into that range"
        )
    runtime = Runtime(load_bundle(args.bundle), intra_op_threads=args.threads)
    analysis_rate = runtime.params.sample_rate_hz
    span = runtime.source_window_samples(rate)
    resampling = "" if rate == analysis_rate else f", resampled to {analysis_rate / 1e6:g} MS/s"
    logger.info(
        "# %s: %d samples at %g MS/s%s; bundle %s (%s); %d samples per window",
        samples.path,
        len(samples),
        rate / 1e6,
        resampling,
        runtime.bundle_dir,
        runtime.bundle.name,
        span,
    )
    batch = max(1, min(RECORDING_BATCH, READ_BUDGET_SAMPLES // max(span, args.stride or span)))
    show = readout.to_json if args.json else readout.format_line
    windows = runtime.iter_classify_iq(
        samples,
        rate,
        stride=args.stride,
        max_windows=args.max_windows,
        batch_windows=batch,
        tracker=readout_tracker(args, runtime),
        uncertain_below=uncertain_below(args),
    )
    for result in windows:
        print(show(result), flush=True)
    return 0
