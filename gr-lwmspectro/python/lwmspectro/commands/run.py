"""`lwmspectro run`: the GNU Radio receiver on a live or recorded source, without GRC.

Readouts are the only thing on stdout: whatever GNU Radio writes there (its log, by default) goes
to stderr; when the reader closes stdout (`| head`) the flowgraph stops. Ctrl-C (SIGINT) or SIGTERM
stops the flowgraph from the main thread (every block's stop() runs: the annotations are written,
the worker threads joined), prints the summary and exits with 130 (143 for SIGTERM).
"""

import contextlib
import os
import signal
import sys
import threading

HELP = (
    "run the receiver on a source: synthetic, sigmf:PATH, zmq:ADDR, soapy:ARGS or uhd:ARGS; "
    "readouts on stdout (text or --json) and optionally on a ZMQ PUB socket"
)

SOURCE_KINDS = ("synthetic", "sigmf:PATH", "zmq:ADDR", "soapy:ARGS", "uhd:ARGS")
DEFAULT_RATE = 30.72e6
LIVE_MAX_RATE = 20.0
"""Readouts per second a live source gets by default; a recording is read out whole."""


def add_arguments(parser):
    from lwmspectro.cli import (
        add_readout_arguments,
        finite_float,
        non_negative_float,
        non_negative_int,
        positive_float,
        positive_int,
    )

    parser.add_argument(
        "--source",
        default="synthetic",
        help="synthetic | sigmf:PATH | zmq:ADDR (a ZMQ PUB socket of raw complex64 samples) | "
        "soapy:ARGS (e.g. soapy:driver=rtlsdr) | uhd:ARGS (e.g. uhd:type=b200)",
    )
    parser.add_argument("--freq", type=positive_float, default=2.437e9, help="centre frequency in Hz (soapy, uhd)")
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=None,
        help=f"sample rate in Hz (soapy, uhd, zmq; default {DEFAULT_RATE:g}); "
        "a recording's and the synthetic source's are their own",
    )
    parser.add_argument("--gain", type=finite_float, default=30.0, help="gain in dB (soapy, uhd)")
    parser.add_argument("--bundle", default="", help="model bundle folder (default: the shipped model)")
    parser.add_argument("--json", action="store_true", help="one JSON object per readout instead of a text line")
    parser.add_argument(
        "--zmq-pub",
        metavar="ADDR",
        help="also publish JSON readouts on this ZMQ PUB endpoint (e.g. tcp://127.0.0.1:5557)",
    )
    parser.add_argument(
        "--annotate",
        action="store_true",
        help="with sigmf:PATH, write the readouts into the recording as SigMF annotations",
    )
    parser.add_argument(
        "--max-rate",
        type=non_negative_float,
        default=None,
        help=f"at most this many readouts/s (0 = no cap; default {LIVE_MAX_RATE:g} for a live source, "
        "no cap for a recording, which is then read out window by window, none dropped)",
    )
    parser.add_argument("--one-in", type=positive_int, default=1, help="classify one window in N")
    parser.add_argument(
        "--hop", type=non_negative_int, default=0, help="source samples between window starts (0 = back to back)"
    )
    parser.add_argument(
        "--seconds",
        type=non_negative_float,
        default=0.0,
        help="stop after this many seconds (default 0: when the source ends, or Ctrl-C)",
    )
    add_readout_arguments(parser)


def parse_source(spec: str) -> tuple[str, str]:
    """("synthetic" | "sigmf" | "zmq" | "soapy" | "uhd", argument)."""
    kind, _, argument = spec.partition(":")
    if kind == "synthetic" and not argument:
        return kind, ""
    if kind in ("sigmf", "zmq") and argument:
        return kind, argument
    if kind in ("soapy", "uhd"):
        return kind, argument
    from lwmspectro.cli import UsageError

    raise UsageError(f"--source {spec!r} is not understood; valid: {', '.join(SOURCE_KINDS)}")


def _soapy_devices(args: str) -> list[str] | None:
    """Devices SoapySDR sees that match `args` (None when it cannot be asked)."""
    try:
        import SoapySDR
    except ImportError:
        import shutil
        import subprocess

        tool = shutil.which("SoapySDRUtil")
        if tool is None:
            return None
        found = subprocess.run([tool, f"--find={args}"], capture_output=True, text=True, timeout=30).stdout
        return [line.strip() for line in found.splitlines() if line.strip().startswith("Found device")]
    return [", ".join(f"{k}={v}" for k, v in dict(device).items()) for device in SoapySDR.Device.enumerate(args)]


def _soapy_modules() -> str:
    try:
        import SoapySDR
    except ImportError:
        return ""
    modules = [module.rsplit("/", 1)[-1] for module in SoapySDR.listModules()]
    return f"; its modules: {', '.join(modules) if modules else 'none installed'}"


def open_soapy(args: str, rate: float, freq: float, gain: float):
    try:
        from gnuradio import soapy
    except ImportError as err:
        raise ValueError("soapy source: gr-soapy is not installed (apt-get install gnuradio, which ships it)") from err
    matching = _soapy_devices(args)
    advice = (
        " (plug one in, install its SoapySDR module, e.g. soapysdr-module-rtlsdr, or pass its "
        "arguments, e.g. soapy:driver=rtlsdr)"
    )
    if matching is not None and not matching:
        visible = _soapy_devices("") or []
        raise ValueError(
            f"soapy source: no SoapySDR device matches {args!r}; SoapySDR sees "
            + ("; ".join(visible) if visible else "no device at all")
            + _soapy_modules()
            + advice
        )
    try:
        source = soapy.source(args, "fc32", 1, "", "", [""], [""])
    except RuntimeError as err:
        if matching is None:
            raise ValueError(
                f"soapy source: no SoapySDR device matches {args!r} ({err}); SoapySDR sees an "
                "unknown set of devices (install python3-soapysdr or soapysdr-tools to list them)" + advice
            ) from err
        raise ValueError(f"soapy source: cannot open {args!r}: {err}") from err
    source.set_sample_rate(0, rate)
    source.set_frequency(0, freq)
    source.set_gain_mode(0, False)
    source.set_gain(0, gain)
    return source, rate


def _uhd_find(uhd, args: str) -> list[str]:
    # gr-uhd 3.10's find_devices() calls a binding that is not there; its raw binding is `find`.
    found = uhd.uhd_python.find(uhd.device_addr(args))
    return [device.to_string() for device in found]


def open_uhd(args: str, rate: float, freq: float, gain: float):
    try:
        from gnuradio import uhd
    except ImportError as err:
        raise ValueError("uhd source: gr-uhd is not installed (apt-get install gnuradio, which ships it)") from err
    if not _uhd_find(uhd, args):
        visible = _uhd_find(uhd, "")
        raise ValueError(
            f"uhd source: no USRP matches {args!r}; UHD sees "
            + ("; ".join(visible) if visible else "no device at all")
            + " (connect one, check it with uhd_find_devices, or pass its arguments, "
            "e.g. uhd:type=b200 or uhd:addr=192.168.10.2)"
        )
    source = uhd.usrp_source(args, uhd.stream_args(cpu_format="fc32", channels=[0]))
    source.set_samp_rate(rate)
    source.set_center_freq(freq, 0)
    source.set_gain(gain, 0)
    return source, source.get_samp_rate()


def open_zmq(address: str, rate: float):
    from gnuradio import lwmspectro as lwm_blocks

    return lwm_blocks.zmq_source(address), rate


def open_source(spec: str, rate, freq: float, gain: float):
    """(block, its sample rate, the synthetic source or None)."""
    from gnuradio import lwmspectro as lwm_blocks

    kind, argument = parse_source(spec)
    if kind == "synthetic":
        source = lwm_blocks.synthetic_source()
        return source, source.samp_rate, source
    if kind == "sigmf":
        source = lwm_blocks.sigmf_source(argument)
        return source, source.samp_rate, None
    rate = DEFAULT_RATE if rate is None else rate
    if not 0 < rate < float("inf"):
        from lwmspectro.cli import UsageError

        raise UsageError(f"--rate {rate:g} must be a positive number of samples per second")
    if kind == "zmq":
        return (*open_zmq(argument, rate), None)
    if kind == "soapy":
        return (*open_soapy(argument, rate, freq, gain), None)
    return (*open_uhd(argument, rate, freq, gain), None)


class StopRequest:
    """SIGINT and SIGTERM, caught in the main thread while the flowgraph runs: the main loop
    then stops the top block, instead of a KeyboardInterrupt unwinding past GNU Radio's threads."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopRequest":
        # Python lets only the main thread set handlers; elsewhere the caller's handling stays.
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._catch) for number in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _catch(self, number: int, frame) -> None:
        self.signal = number

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def exit_status(self) -> int:
        """0 when no signal came, else the shell's 128 + the signal's number."""
        return 0 if self.signal is None else 128 + self.signal


@contextlib.contextmanager
def stdout_for_python_only():
    """Point file descriptor 1 at stderr while Python's sys.stdout keeps the real stdout, so that
    what native code writes there (GNU Radio's log, which chose stdout when `gnuradio.gr` was
    first imported) never lands among the readouts. Nothing changes when sys.stdout is not the
    process's stdout (e.g. captured)."""
    try:
        is_fd1 = sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):
        is_fd1 = False
    if not is_fd1:
        yield
        return
    sys.stdout.flush()
    original = sys.stdout
    readouts = os.dup(1)
    os.dup2(2, 1)
    try:
        with open(readouts, "w", buffering=1, encoding=original.encoding, errors=original.errors) as stream:
            sys.stdout = stream
            try:
                yield
            finally:
                with contextlib.suppress(BrokenPipeError):
                    stream.flush()
                sys.stdout = original
                os.dup2(readouts, 1)
    finally:
        sys.stdout = original


def run(args) -> int:
    with stdout_for_python_only():
        return _run(args)


def _run(args) -> int:
    import time

    from gnuradio import gr
    from gnuradio import lwmspectro as lwm_blocks

    from lwmspectro.cli import uncertain_below

    kind, argument = parse_source(args.source)
    if args.annotate and kind != "sigmf":
        from lwmspectro.cli import UsageError

        raise UsageError("--annotate needs --source sigmf:PATH (it writes into that recording)")
    replay = kind == "sigmf"
    max_rate = args.max_rate if args.max_rate is not None else (0.0 if replay else LIVE_MAX_RATE)
    source, rate, synthetic = open_source(args.source, args.rate, args.freq, args.gain)
    receiver = lwm_blocks.receiver(
        args.bundle,
        rate,
        args.hop,
        max_rate,
        args.one_in,
        drop_when_full=not replay,
        uncertain_below=uncertain_below(args),
        track_seconds=args.track or 0.0,
        track_power_jump_db=args.track_reset_db,
    )
    console = lwm_blocks.console_sink("json" if args.json else "text", "stdout")
    sinks = [console]
    if args.zmq_pub:
        sinks.append(lwm_blocks.zmq_pub_sink(args.zmq_pub))
    if args.annotate:
        sinks.append(lwm_blocks.sigmf_annotator(argument, receiver.bundle))
    top = gr.top_block("lwmspectro run")
    top.connect(source, receiver)
    if kind == "zmq":
        top.msg_connect(source, "drops", receiver, "drops")
    for sink in sinks:
        top.msg_connect(receiver, "readout", sink, "readout")
    runtime = receiver.classifier.runtime
    print(
        f"lwmspectro run: {args.source} at {rate / 1e6:g} MS/s, bundle {runtime.bundle.name} "
        f"({runtime.bundle_dir}); Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    with StopRequest() as stop:
        top.start()
        waiter = threading.Thread(target=top.wait, name="lwmspectro_run_wait", daemon=True)
        waiter.start()
        while waiter.is_alive() and not stop.requested and not console.stdout_closed:
            if args.seconds > 0 and time.monotonic() - started >= args.seconds:
                break
            waiter.join(0.1)
        if waiter.is_alive():
            if synthetic is not None and not stop.requested and not console.stdout_closed:
                synthetic.finish()  # the last observation finishes and every queued window is read out
            else:
                top.stop()
            waiter.join()
    counters = receiver.counters()
    print(
        f"lwmspectro run: {counters['windows_out']} windows in {time.monotonic() - started:.1f} s: "
        f"{counters['windows_classified']} classified, {counters['windows_invalid']} invalid, "
        f"{counters['windows_skipped']} skipped by the rate cap, {counters['windows_dropped']} dropped"
        + (_zmq_losses(source) if kind == "zmq" else "")
        + (" (stopped by a signal)" if stop.requested else ""),
        file=sys.stderr,
        flush=True,
    )
    needed = runtime.source_window_samples(rate)
    if replay and not counters["windows_out"] and source.sample_count < needed:
        print(
            f"lwmspectro run: {source.path} holds {source.sample_count} samples, fewer than the {needed} one "
            "window reads: nothing to read out (record a longer capture)",
            file=sys.stderr,
            flush=True,
        )
    if console.stdout_closed:
        raise BrokenPipeError("stdout was closed by its reader")
    return stop.exit_status


def _zmq_losses(source) -> str:
    """What the ZMQ source skipped and dropped, for the summary line."""
    lost = source.counters()
    return (
        f"; source: {lost['messages_malformed']} malformed messages skipped, "
        f"{lost['messages_dropped']} messages ({lost['samples_dropped']} samples) dropped"
    )
