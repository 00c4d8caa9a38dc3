"""`lwmspectro bench flowgraph`: how fast the GNU Radio receiver runs, in one run on one machine.

1. The LWM Spectrogram block computing G alone, unthrottled (MS/s of input it sustains), beside
   a stock GNU Radio chain doing the same transform: stream_to_vector(N_w) -> keep_one_in_n(R / N_w) (the same
   sparse frames) -> fft(N_w, the same window, shifted) -> complex_to_mag_squared -> nlog10.
2. The whole receiver unthrottled with inference capped at 20 readouts/s, every window framed
   (replay mode): the input rate it sustains, against the 2x real-time target.
3. The receiver (live mode) on a source throttled to real time: readout latency from the
   window's last sample to its readout (p50/p99), the rate the source kept, and the windows
   dropped to keep it.
4. The views (`--views`, default every registered view): each view's cost per observation on
   one core, computed alone (as lwmspectro.views.compute_observation computes it for one
   observation: a view of the past over its whole span) and in the stream (all of them framed
   over consecutive windows, as a stream's framer computes them: a view of the past keeps its
   snippet groups from one window to the next, and what views share counts for the first view
   that forms it), with the real-time factor in the stream; all of them
   together as the framer computes them (sharing resampled streams and CP correlations), in
   one thread and in one thread per core; the LWM Spectrogram block computing them; and the
   whole receiver (spectrogram and classifier) with every window classified (the classifier
   waits for the model instead of dropping), computing the bundle's views routed as the LWM
   Receiver does (the router's, then those of the expert it picks) and every view of the
   bundle, against the 2x real-time target, with its CPU time per window and the cores it
   keeps busy.
5. The LWM Synthetic Source alone, unpaced: the rate its loop of cached observations streams at
   while its worker refreshes them (it must exceed real time for the demo to keep pace).
6. Peak resident memory: of a fresh process that loads the bundle and runs the receiver alone
   on the same input with every window classified (what a user's flowgraph holds; the target),
   and of this benchmark's own process, which has built every flowgraph above and the
   synthetic source's cache.

The receiver's input is a few observations from the synthetic generator, looped in a stock
vector source, so that the figures measure the receiver alone.
"""

from __future__ import annotations

HELP = "GNU Radio receiver speed: spectrogram block vs a stock GR chain, whole receiver, latency, memory"

TARGET_REAL_TIME = 2.0
TARGET_P99_MS = 100.0
TARGET_RSS_MB = 1024.0
READOUT_CAP = 20.0


def add_arguments(parser):
    from lwmspectro.cli import positive_float, positive_int

    parser.add_argument("--bundle", default="", help="model bundle folder (default: the shipped model)")
    parser.add_argument("--seconds", type=positive_float, default=6.0, help="time spent on each measurement")
    parser.add_argument("--observations", type=positive_int, default=3, help="synthetic observations looped as input")
    parser.add_argument(
        "--views",
        default="",
        help="views the views rows compute, comma-separated (default: every registered view, lwmspectro.views.VIEWS)",
    )


def _sustained_rate(top, counter, seconds: float, warmup: float = 1.0) -> float:
    """Items/s `counter()` advances while `top` runs, after a warm-up."""
    return _sustained_rate_and_cores(top, counter, seconds, warmup)[0]


def _sustained_rate_and_cores(top, counter, seconds: float, warmup: float = 1.0) -> tuple[float, float]:
    """(items/s `counter()` advances, cores this process keeps busy meanwhile: its CPU seconds
    per second) while `top` runs, after a warm-up."""
    import time

    top.start()
    time.sleep(warmup)
    start_count, start, cpu = counter(), time.monotonic(), time.process_time()
    time.sleep(seconds)
    wall = time.monotonic() - start
    rate, cores = (counter() - start_count) / wall, (time.process_time() - cpu) / wall
    top.stop()
    top.wait()
    return rate, cores


def _cpu_and_wall_ms(observe, starts, seconds: float) -> tuple[float, float]:
    """(process CPU ms, wall ms) per call of observe(start), `starts` taken in turn (every
    thread of the process counts), after one warm-up call, over at least three calls and
    `seconds` of CPU time."""
    import itertools
    import time

    cycle = itertools.cycle(starts)
    observe(next(cycle))
    calls, cpu, wall = 0, time.process_time(), time.perf_counter()
    while calls < 3 or time.process_time() - cpu < seconds:
        observe(next(cycle))
        calls += 1
    return (time.process_time() - cpu) / calls * 1e3, (time.perf_counter() - wall) / calls * 1e3


def _frame_one(framer, samples, start: int) -> None:
    framer.transform(samples, 0, [start])


def _streamed_cpu_ms(framer, samples, seconds: float):
    """CPU ms per window of each of `framer`'s views (ObservationFramer.view_cpu_s), framing
    consecutive windows of `samples` looped one at a time, as a live stream hands them over: a
    view of the past keeps its snippet groups from one window to the next. Counted from the first
    window whose past the stream holds whole, over at least three windows and `seconds` of CPU
    time."""
    import time

    import numpy as np

    from lwmspectro import views

    reach = views.past_reach(framer.views, framer.source_rate_hz)
    start, calls, cpu = 0, 0, 0.0
    while calls < 3 or cpu < seconds:
        low, high = framer.first_needed(start), framer.end_needed(start)
        looped = samples[np.arange(low, high) % len(samples)]
        if start >= reach and not calls:
            framer.view_cpu_s[:] = 0.0
        before = time.process_time()
        framer.transform(looped, low, [start])
        if start >= reach:
            cpu += time.process_time() - before
            calls += 1
        start += framer.stride
    return framer.view_cpu_s / calls * 1e3


def _views_rows(args, runtime, samples, rate: float) -> None:
    """Section 3 of the module docstring."""
    import functools

    import numpy as np
    from gnuradio import blocks, gr
    from gnuradio import lwmspectro as lwm_blocks

    from lwmspectro import views
    from lwmspectro.framer import ObservationFramer, available_cores

    names = [name.strip() for name in args.views.split(",") if name.strip()] or list(views.VIEWS)
    chosen = lwm_blocks.common.resolve_views(names, runtime.bundle, "bench flowgraph")
    framer = ObservationFramer(chosen, rate)
    span_ms = framer.span / rate * 1e3
    # Observations at the end of the looped input, so that views of the past have theirs.
    looped = np.tile(samples, -(-(framer.samples_read + 4 * framer.span) // len(samples)))
    starts = [len(looped) - framer.end_needed(0) - k * framer.span for k in range(3)]
    cores = available_cores()
    print(
        f"views, per observation of {span_ms:.1f} ms at {rate / 1e6:g} MS/s (the {TARGET_REAL_TIME:g}x target "
        f"leaves {span_ms * cores / TARGET_REAL_TIME:.1f} ms of CPU per window on {cores} cores, views and model):"
    )
    # In the stream every view is computed, in one thread; what views share counts for the first.
    streamed_ms = _streamed_cpu_ms(ObservationFramer(chosen, rate), samples, args.seconds / 2)
    print(f"  {'view (one core): alone / in the stream':<44s} {'alone':>11s}  {'in stream':>11s}")
    for name, params, offset, in_stream in zip(framer.names, chosen, views.view_offsets(chosen, rate), streamed_ms):
        # Alone, a view of the past is its own observation: it starts where the framer starts it.
        observe = functools.partial(views.compute_observation, [params], looped, rate)
        cpu_ms, _wall = _cpu_and_wall_ms(observe, [start + offset for start in starts], args.seconds / 4)
        factor = span_ms / in_stream
        print(f"  {name:<44s} {cpu_ms:8.2f} ms  {in_stream:8.2f} ms  {factor:6.2f} x real time in the stream")
    print(f"  {'all of them in the stream':<44s} {'':11s}  {streamed_ms.sum():8.2f} ms")
    for label, parallel in (("one thread", False), (f"{cores} threads", True)):
        framed = ObservationFramer(chosen, rate, parallel=parallel)
        cpu_ms, wall_ms = _cpu_and_wall_ms(functools.partial(_frame_one, framed, looped), starts, args.seconds / 2)
        print(
            f"  {f'all {len(chosen)}, framed ({label})':<44s} {wall_ms:8.2f} ms  "
            f"{span_ms / wall_ms:6.2f} x real time ({cpu_ms:.2f} ms of CPU)"
        )

    top = gr.top_block("spectrogram, views")
    spectrogram = lwm_blocks.spectrogram(runtime.bundle, rate, views=chosen)
    top.connect(_looped_source(samples), spectrogram, blocks.null_sink(gr.sizeof_float * spectrogram.vlen))
    block_rate = _sustained_rate(top, lambda: spectrogram.nitems_read(0), args.seconds)
    print(
        f"{f'LWM Spectrogram block, {len(chosen)} views':<46s} {block_rate / 1e6:8.1f} MS/s  "
        f"{block_rate / rate:5.2f} x real time"
    )

    # The receiver computes the bundle's views only, and routes them (the router's views, then
    # those of the expert it picks); beside it, the same blocks computing every view of the bundle.
    for label, routed in (("routed", True), ("every view", False)):
        top = gr.top_block(f"receiver, {label}")
        spectrogram = lwm_blocks.spectrogram(runtime, rate, routed=routed)
        classifier = lwm_blocks.classifier(runtime, drop_when_full=False)
        top.connect(_looped_source(samples), spectrogram, classifier)
        receiver_rate, cores = _sustained_rate_and_cores(
            top, functools.partial(spectrogram.nitems_read, 0), args.seconds
        )
        counters = classifier.counters()
        verdict = "meets" if receiver_rate / rate >= TARGET_REAL_TIME else "MISSES"
        per_window = f"{cores / (receiver_rate / spectrogram.span) * 1e3:.0f} ms" if receiver_rate > 0 else "n/a"
        print(
            f"{f'whole receiver, {label}, every window read':<46s} "
            f"{receiver_rate / 1e6:8.1f} MS/s  {receiver_rate / rate:5.2f} x real time ({verdict} the "
            f"{TARGET_REAL_TIME:g}x target; {counters['windows_classified']} of {counters['windows_seen']} "
            f"windows classified, {counters['windows_dropped']} dropped; {per_window} of CPU per window, "
            f"{cores:.2f} cores busy)"
        )


def _looped_source(samples):
    from gnuradio import blocks

    return blocks.vector_source_c(samples, True)


def _stock_chain(samples, params):
    import scipy.signal
    from gnuradio import blocks, fft, gr

    n_fft = params.n_fft
    top = gr.top_block("stock chain")
    to_vector = blocks.stream_to_vector(gr.sizeof_gr_complex, n_fft)
    keep = blocks.keep_one_in_n(gr.sizeof_gr_complex * n_fft, max(1, params.hop // n_fft))
    window = scipy.signal.get_window(params.window, n_fft, fftbins=True).tolist()
    transform = fft.fft_vcc(n_fft, True, window, True, 1)
    power = blocks.complex_to_mag_squared(n_fft)
    log = blocks.nlog10_ff(10.0, n_fft, 0.0)
    top.connect(
        _looped_source(samples), to_vector, keep, transform, power, log, blocks.null_sink(gr.sizeof_float * n_fft)
    )
    return top, lambda: to_vector.nitems_read(0)


def receiver_peak_mb(bundle: str, samples_path: str, seconds: float, results) -> None:
    """In a fresh process: load `bundle`, run the receiver (every window classified) on the
    looped samples of `samples_path` for `seconds`, and put (the process's peak RSS in MB, the
    windows it classified) on the `results` queue."""
    import time

    import numpy as np
    from gnuradio import gr
    from gnuradio import lwmspectro as lwm_blocks

    from lwmspectro.runtime import Runtime

    runtime = Runtime(bundle)
    top = gr.top_block("receiver alone")
    receiver = lwm_blocks.receiver(runtime, runtime.params.sample_rate_hz, drop_when_full=False)
    top.connect(_looped_source(np.load(samples_path)), receiver)
    top.start()
    time.sleep(seconds)
    top.stop()
    top.wait()
    results.put((_own_peak_mb(), receiver.counters()["windows_classified"]))


def _own_peak_mb() -> float:
    """This process's peak RSS in MB since it started its program: VmHWM on Linux, where
    getrusage's maximum is carried across exec from the process it was forked from (a spawned
    child would report its parent's peak); getrusage elsewhere. Both memory rows read it."""
    import resource
    from pathlib import Path

    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def receiver_alone_peak_mb(bundle: str, samples, seconds: float) -> tuple[float, int]:
    """receiver_peak_mb in a process of its own (spawned: nothing of this one is inherited):
    (peak RSS in MB, windows classified)."""
    import multiprocessing
    import queue
    import tempfile
    from pathlib import Path

    import numpy as np

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "samples.npy")
        np.save(path, samples)
        process = context.Process(target=receiver_peak_mb, args=(bundle, path, seconds, results))
        process.start()
        while True:
            try:
                peak = results.get(timeout=1.0)
                break
            except queue.Empty:
                if not process.is_alive():
                    raise RuntimeError(
                        f"the receiver's memory process ended with exit code {process.exitcode} before reporting"
                    ) from None
        process.join()
    return peak


def run(args) -> int:
    import numpy as np
    import pmt
    from gnuradio import blocks, gr
    from gnuradio import lwmspectro as lwm_blocks

    from lwmspectro.runtime import Runtime, default_bundle_dir
    from lwmspectro.synth import SyntheticStream

    bundle = args.bundle or str(default_bundle_dir())
    runtime = Runtime(bundle)
    params = runtime.params
    rate = params.sample_rate_hz
    stream = SyntheticStream(cycle=True, seed=0, params=params)
    samples = np.concatenate([stream.next_observation()[0] for _ in range(args.observations)])
    print(
        f"bundle {runtime.bundle.name} ({bundle}); input: {args.observations} synthetic observations "
        f"({len(samples) / rate * 1e3:.0f} ms at {rate / 1e6:g} MS/s) looped; {args.seconds:g} s per figure"
    )

    top = gr.top_block("spectrogram alone")
    # G alone, the transform the stock chain does (the bundle's other views are timed below).
    spectrogram = lwm_blocks.spectrogram(runtime.bundle, rate, views=["wideband"])
    top.connect(_looped_source(samples), spectrogram, blocks.null_sink(gr.sizeof_float * spectrogram.vlen))
    block_rate = _sustained_rate(top, lambda: spectrogram.nitems_read(0), args.seconds)
    stock_rate = _sustained_rate(*_stock_chain(samples, params), args.seconds)
    print(
        f"{'LWM Spectrogram block (G, T x K vectors)':<46s} {block_rate / 1e6:8.1f} MS/s  "
        f"{block_rate / rate:5.2f} x real time"
    )
    print(
        f"{'stock GR chain, same frames (no normalising)':<46s} {stock_rate / 1e6:8.1f} MS/s  "
        f"{stock_rate / rate:5.2f} x real time"
    )

    top = gr.top_block("receiver unthrottled")
    receiver = lwm_blocks.receiver(runtime, rate, max_rate=READOUT_CAP, drop_when_full=False)
    top.connect(_looped_source(samples), receiver)
    receiver_rate = _sustained_rate(top, lambda: receiver.spectrogram.nitems_read(0), args.seconds)
    verdict = "meets" if receiver_rate / rate >= TARGET_REAL_TIME else "MISSES"
    print(
        f"{f'whole receiver, inference capped at {READOUT_CAP:g}/s':<46s} {receiver_rate / 1e6:8.1f} MS/s  "
        f"{receiver_rate / rate:5.2f} x real time ({verdict} the {TARGET_REAL_TIME:g}x target)"
    )

    top = gr.top_block("receiver at real time")
    throttle = blocks.throttle(gr.sizeof_gr_complex, rate, True)
    receiver = lwm_blocks.receiver(runtime, rate, max_rate=READOUT_CAP)
    debug = blocks.message_debug()
    top.connect(_looped_source(samples), throttle, receiver)
    top.msg_connect(receiver, "readout", debug, "store")
    kept_rate = _sustained_rate(top, lambda: receiver.spectrogram.nitems_read(0), args.seconds)
    latencies = np.array([pmt.to_python(debug.get_message(i))["latency_ms"] for i in range(debug.num_messages())])
    counters = receiver.counters()
    if len(latencies):
        p50, p99 = np.percentile(latencies, [50, 99])
        verdict = "meets" if p99 < TARGET_P99_MS else "MISSES"
        print(
            f"{'readout latency at real time':<46s} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms "
            f"({verdict} the {TARGET_P99_MS:g} ms target; {len(latencies)} readouts)"
        )
    print(
        f"{'source throttled to real time kept':<46s} {kept_rate / 1e6:8.1f} MS/s  "
        f"({counters['windows_dropped']} of {counters['windows_seen']} windows dropped to keep up: "
        f"{receiver.spectrogram.windows_skipped} skipped by the spectrogram, the rest by the classifier queue)"
    )
    _views_rows(args, runtime, samples, rate)

    top = gr.top_block("synthetic source alone")
    source = lwm_blocks.synthetic_source(seed=0, realtime=False)
    top.connect(source, blocks.null_sink(gr.sizeof_gr_complex))
    source_rate = _sustained_rate(top, lambda: source.nitems_written(0), args.seconds)
    print(
        f"{'LWM Synthetic Source alone, unpaced':<46s} {source_rate / 1e6:8.1f} MS/s  "
        f"{source_rate / source.samp_rate:5.2f} x real time ({source.fresh_observations} fresh observations)"
    )

    alone_mb, classified = receiver_alone_peak_mb(bundle, samples, args.seconds)
    verdict = "meets" if alone_mb < TARGET_RSS_MB else "MISSES"
    print(
        f"{'peak resident memory, the receiver alone':<46s} {alone_mb:8.0f} MB  "
        f"({verdict} the {TARGET_RSS_MB:g} MB target; a fresh process, {classified} windows classified)"
    )
    peak_mb = _own_peak_mb()
    print(f"{'peak resident memory, this benchmark':<46s} {peak_mb:8.0f} MB  (every flowgraph above, one process)")
    return 0
