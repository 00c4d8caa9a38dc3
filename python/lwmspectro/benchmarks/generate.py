"""`lwmspectro bench generate`: labelled examples per second per core, end to end, of G alone and of
a config's views through the capture chain, against the target; and G against a plain STFT."""

HELP = (
    "data pipeline speed: labelled examples/s per core per protocol, G alone and the views through the "
    "capture chain, against the target; G vs a plain numpy STFT"
)

TARGET_PER_CORE = 50.0
"""Labelled examples per second per core the generator should reach."""


def add_arguments(parser):
    from ..cli import positive_float

    parser.add_argument("--seconds", type=positive_float, default=5.0, help="CPU time per protocol and config")
    parser.add_argument("--channel", default="site", help="channel of the G-alone rows: 'site' or a TDL profile name")
    parser.add_argument(
        "--views-config",
        metavar="JSON",
        help="generator config of the views rows (default: the packaged configs/train.json)",
    )


def _rate(fn, seconds: float) -> float:
    """Calls of `fn` per second of this process's CPU time (after one call that warms it up):
    per core, as BLAS runs on one thread, and unaffected by other processes sharing the cores."""
    import time

    fn()
    count, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        fn()
        count += 1
    return count / (time.process_time() - start)


def _examples_per_second(base, seconds: float, whole_stream: bool = False) -> None:
    """One row per protocol of `base` (examples/s and its share of the target), then the mix of its class
    weights; `whole_stream` forms every sample of a views example (make_example's whole_stream), as
    datasets were made before only the samples the views read were formed."""
    from ..dataset_generation import ExamplePlan, make_example
    from ..synth import GeneratorConfig

    print(f"{'protocol':<10s} {'examples/s':>11s} {'of target':>10s}")
    rates = {}
    for protocol in base.classes:
        config = GeneratorConfig.from_dict({**base.to_dict(), "classes": {protocol: 1.0}})
        plan = ExamplePlan.of(config)
        counter = iter(range(10**9))

        def one(config=config, plan=plan, counter=counter):
            return make_example(config, next(counter), plan, whole_stream)

        rates[protocol] = _rate(one, seconds)
        print(f"{protocol:<10s} {rates[protocol]:>11.2f} {rates[protocol] / TARGET_PER_CORE:>9.3f}x")
    weights = {protocol: weight for protocol, weight in base.classes.items() if weight > 0}
    mix = sum(weights.values()) / sum(weight / rates[protocol] for protocol, weight in weights.items())
    print(f"{'mix':<10s} {mix:>11.2f} {mix / TARGET_PER_CORE:>9.3f}x   (the config's class weights)")


def run(args) -> int:
    from importlib import resources

    import numpy as np
    from threadpoolctl import threadpool_limits

    from ..spectrogram import DEFAULT_PARAMS, spectrogram
    from ..synth import GeneratorConfig

    params = DEFAULT_PARAMS
    views_path = args.views_config or resources.files("lwmspectro") / "configs" / "train.json"
    views_config = GeneratorConfig.from_file(views_path)
    print(
        f"one process, one BLAS thread (one core), as a dataset worker; rates per second of CPU time; "
        f"target {TARGET_PER_CORE:g} labelled examples/s per core; G = {params.n_frames}x{params.n_bins}, "
        f"{params.window_seconds * 1e3:.1f} ms at {params.sample_rate_hz / 1e6:g} MS/s"
    )
    chain = views_config.capture_config()
    captured = "no capture chain" if chain is None else f"{chain.probability:.0%} through the capture chain"
    with threadpool_limits(limits=1):
        print(f"\nG alone, realised at its frames (channel {args.channel}):")
        _examples_per_second(GeneratorConfig(channel=args.channel), args.seconds)
        print(f"\n{views_path}: {', '.join(views_config.view_params())}; {captured}; the whole stream formed:")
        _examples_per_second(views_config, args.seconds, whole_stream=True)
        print("\nthe same, only the samples the views read formed (how datasets are made):")
        _examples_per_second(views_config, args.seconds)

    rng = np.random.default_rng(0)
    iq = (rng.standard_normal(params.window_samples) + 1j * rng.standard_normal(params.window_samples)).astype(
        np.complex64
    )
    g_rate = _rate(lambda: spectrogram(iq, params), args.seconds)

    def plain_stft():
        # The textbook loop: frame by frame with numpy, no batching.
        window = np.hanning(params.n_fft + 1)[:-1]
        out = np.empty((params.n_frames, params.n_fft), np.float64)
        for t, start in enumerate(params.frame_starts):
            spectrum = np.fft.fftshift(np.fft.fft(iq[start : start + params.n_fft] * window))
            out[t] = 10 * np.log10(np.abs(spectrum) ** 2 + 1e-20)
        return (out - out.mean()) / out.std()

    plain_rate = _rate(plain_stft, args.seconds)
    print(f"\n{'G alone (batched numpy)':<28s} {g_rate:>11.1f} spectrograms/s")
    print(f"{'plain numpy STFT loop':<28s} {plain_rate:>11.1f} spectrograms/s")
    print(f"G / plain STFT: {g_rate / plain_rate:.2f}x")
    return 0
