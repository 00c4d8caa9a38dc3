"""`lwmspectro bench generate`: labelled spectrograms per second per core, and G against a plain STFT."""

HELP = "data pipeline speed: spectrograms/s per core per protocol; G vs a plain numpy STFT"


def add_arguments(parser):
    parser.add_argument("--seconds", type=float, default=5.0, help="time per protocol")
    parser.add_argument("--channel", default="site", help="'site' or a TDL profile name")


def _rate(fn, seconds: float) -> float:
    import time

    fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def run(args) -> int:
    import os

    import numpy as np

    from ..spectrogram import DEFAULT_PARAMS, spectrogram
    from ..synth import GeneratorConfig, draw_spec, make_spectrogram

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    params = DEFAULT_PARAMS
    print(
        f"one process (one core); G = {params.n_frames}x{params.n_bins}, "
        f"{params.window_seconds * 1e3:.1f} ms at {params.sample_rate_hz / 1e6:g} MS/s"
    )
    print(f"{'pipeline':<28s} {'spectrograms/s':>15s}")
    for protocol in ("wifi", "lte", "nr", "other", "none"):
        config = GeneratorConfig(classes={protocol: 1.0}, channel=args.channel)
        counter = iter(range(10**9))
        rate = _rate(
            lambda config=config, counter=counter: make_spectrogram(draw_spec(config, next(counter)), params),
            args.seconds,
        )
        print(f"{'end to end ' + protocol:<28s} {rate:>15.1f}")
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
    print(f"{'G alone (batched numpy)':<28s} {g_rate:>15.1f}")
    print(f"{'plain numpy STFT loop':<28s} {plain_rate:>15.1f}")
    print(f"G / plain STFT: {g_rate / plain_rate:.2f}x")
    return 0
