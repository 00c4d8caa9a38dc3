"""`lwmspectro demo`: the headless synthetic flowgraph, readouts beside the ground truth.

The source plays emissions of --emission seconds (one example each, its channel fading on across
its windows, as a radio receives one transmission), and the receiver tracks each value over the
last --track seconds of windows, so that every line and the final accuracy show the window's own
reading and the tracked one.

At the end of --seconds the source finishes its observation and every queued window is read out;
Ctrl-C (SIGINT) or SIGTERM stops the flowgraph at once from the main thread. Either way the
accuracy and throughput are printed; a signal exits with 130 (143 for SIGTERM).
"""

HELP = (
    "run the GNU Radio receiver on synthetic WiFi/LTE/NR signals: each readout beside its ground "
    "truth, then the accuracy and the throughput"
)


def add_arguments(parser):
    from lwmspectro.cli import finite_float, non_negative_int, positive_float, track_seconds
    from lwmspectro.synth import DEFAULT_EMISSION_S

    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=30.0,
        help="how long to stream (wall clock, default 30); the last observation then finishes",
    )
    parser.add_argument("--bundle", default="", help="model bundle folder (default: the shipped model)")
    parser.add_argument("--protocol", default="", help="fix the protocol (wifi, lte, nr, none, other; default: cycle)")
    parser.add_argument("--snr", type=finite_float, default=None, help="fix the SNR in dB (default: drawn)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="generator seed")
    parser.add_argument(
        "--emission",
        type=positive_float,
        default=DEFAULT_EMISSION_S,
        metavar="SECONDS",
        help=f"how long each synthetic emission lasts (default {DEFAULT_EMISSION_S:g}: 16 windows, longer than the "
        "dynamics view's 128 ms of past); the loop cached at start-up holds three",
    )
    parser.add_argument(
        "--track",
        type=track_seconds,
        metavar="SECONDS",
        help="read each value over the emission's windows of the last SECONDS too (default: the emission length)",
    )


def build_flowgraph(
    bundle: str,
    protocol: str = "",
    snr_db: float | None = None,
    seed: int = 0,
    emission_s: float | None = None,
    track_s: float | None = None,
):
    """The chain of grc/examples/lwm_synthetic_headless.grc: synthetic source (emissions of
    `emission_s`, None: the source's default) -> LWM receiver (every window classified, each value
    tracked over `track_s`, None: the emission length) -> scoreboard. Returns (top block, source,
    receiver, scoreboard)."""
    from gnuradio import gr
    from gnuradio import lwmspectro as lwm_blocks

    from lwmspectro.synth import DEFAULT_EMISSION_S

    emission_s = DEFAULT_EMISSION_S if emission_s is None else emission_s
    source = lwm_blocks.synthetic_source(protocol, "", snr_db, "", True, seed, 0, emission_s)
    receiver = lwm_blocks.receiver(bundle, source.samp_rate, track_seconds=track_s or source.emission_seconds)
    board = lwm_blocks.scoreboard(True, receiver.bundle)
    top = gr.top_block("lwmspectro demo")
    top.connect(source, receiver)
    top.msg_connect(receiver, "readout", board, "readout")
    return top, source, receiver, board


def run(args) -> int:
    from .run import stdout_for_python_only

    with stdout_for_python_only():
        return _run(args)


def _run(args) -> int:
    import time

    from .run import StopRequest

    top, source, receiver, board = build_flowgraph(
        args.bundle, args.protocol, args.snr, args.seed, args.emission, args.track
    )
    runtime = receiver.classifier.runtime
    print(
        f"LWM-Spectro demo: bundle {runtime.bundle.name} ({runtime.bundle_dir}); synthetic emissions of "
        f"{source.emission_seconds * 1e3:.0f} ms ({source.emission_observations} observations) at "
        f"{source.samp_rate / 1e6:g} MS/s, one readout per {runtime.params.window_seconds * 1e3:.1f} ms window "
        f"beside its ground truth, each value also tracked over {receiver.classifier.tracker.span_s * 1e3:.0f} ms, "
        f"for {args.seconds:g} s",
        flush=True,
    )
    started = time.monotonic()
    with StopRequest() as stop:
        top.start()
        while time.monotonic() - started < args.seconds and not stop.requested and not board.stdout_closed:
            time.sleep(0.1)
        if stop.requested or board.stdout_closed:
            top.stop()
        else:
            source.finish()  # rather than stopping the flowgraph: every queued window finishes
        top.wait()
    elapsed = time.monotonic() - started
    counters = receiver.counters()
    samples = counters["windows_out"] * receiver.spectrogram.span
    print(f"--- {board.readouts} readouts in {elapsed:.1f} s; {board.summary()}")
    print(
        f"throughput: {counters['windows_classified'] / elapsed:.2f} windows/s classified, "
        f"{samples / elapsed / 1e6:.3f} MS/s of I/Q ({samples / source.samp_rate / elapsed:.3f} x real time; "
        f"the source keeps real time), {counters['windows_dropped']} windows dropped"
        + (" (stopped by a signal)" if stop.requested else ""),
        flush=True,
    )
    return stop.exit_status
