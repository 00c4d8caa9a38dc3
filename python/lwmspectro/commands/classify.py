"""`lwmspectro classify REC.sigmf-meta`: one readout per analysis window of a SigMF recording."""

HELP = "classify every analysis window of a SigMF recording (cf32, ci16, ci8) with a model bundle"


def add_arguments(parser):
    parser.add_argument("recording", help="a SigMF recording (.sigmf-meta, .sigmf-data or the base name)")
    parser.add_argument("--bundle", help="model bundle folder (default: $LWMSPECTRO_BUNDLE, else models/small)")
    parser.add_argument("--json", action="store_true", help="one JSON readout per line instead of text")
    parser.add_argument("--stride", type=int, help="source samples between window starts (default: one window)")
    parser.add_argument("--max-windows", type=int, help="stop after this many windows")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: up to 4 cores)")


class RecordingSamples:
    """A SigMF recording's samples as a sliceable sequence, read from disk one slice at a time,
    so that a long recording never has to fit in memory."""

    def __init__(self, path):
        from sigmf.sigmffile import fromfile

        from ..sigmf_io import read_recording

        head = read_recording(path, count=0)
        self.path = head.path
        self.sample_rate_hz = head.sample_rate_hz
        self.sample_count = fromfile(str(head.path), skip_checksum=True).sample_count

    def __len__(self) -> int:
        return self.sample_count

    def __getitem__(self, window: slice):
        from ..sigmf_io import read_recording

        start, stop, step = window.indices(self.sample_count)
        if step != 1:
            raise ValueError("recording slices must be contiguous")
        return read_recording(self.path, start=start, count=max(0, stop - start)).iq


def run(args) -> int:
    import sys

    from .. import readout
    from ..bundle import load_bundle
    from ..runtime import Runtime

    for name in ("stride", "max_windows", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    runtime = Runtime(load_bundle(args.bundle), intra_op_threads=args.threads)
    samples = RecordingSamples(args.recording)
    rate = samples.sample_rate_hz
    analysis_rate = runtime.params.sample_rate_hz
    resampling = "" if rate == analysis_rate else f", resampled to {analysis_rate / 1e6:g} MS/s"
    print(
        f"# {samples.path}: {len(samples)} samples at {rate / 1e6:g} MS/s{resampling}; "
        f"bundle {runtime.bundle_dir} ({runtime.bundle.name}); "
        f"{runtime.source_window_samples(rate)} samples per window",
        file=sys.stderr,
    )
    show = readout.to_json if args.json else readout.format_line
    for result in runtime.iter_classify_iq(samples, rate, stride=args.stride, max_windows=args.max_windows):
        print(show(result), flush=True)
    return 0
