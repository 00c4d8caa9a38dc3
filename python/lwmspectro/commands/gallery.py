"""`lwmspectro gallery`: labelled recordings of every class and a PNG gallery of their spectrograms."""

HELP = "write a few labelled SigMF recordings and a PNG gallery of their spectrograms"


def add_arguments(parser):
    from ..cli import finite_float, non_negative_int

    parser.add_argument("--out", default="out/gallery", help="output folder")
    parser.add_argument("--snr", type=finite_float, default=20.0)
    parser.add_argument("--seed", type=non_negative_int, default=1)


def run(args) -> int:
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..sigmf_io import write_recording
    from ..spectrogram import DEFAULT_PARAMS, spectrogram
    from ..synth import ExampleSpec, make_stream

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = DEFAULT_PARAMS
    specs = [
        ExampleSpec("wifi", args.snr, "static", 0.0, 5.18e9, args.seed, 20e6, "BPSK", "1/2", channel="TDL-C"),
        ExampleSpec("wifi", args.snr, "vehicular", 60.0, 5.18e9, args.seed, 20e6, "BPSK", "1/2", channel="TDL-C"),
        ExampleSpec("lte", args.snr, "pedestrian", 5.0, 2.14e9, args.seed, 10e6, "64QAM", "3/4", channel="TDL-C"),
        ExampleSpec("lte", args.snr, "vehicular", 100.0, 2.14e9, args.seed, 20e6, "QPSK", "1/2", channel="TDL-C"),
        ExampleSpec("nr", args.snr, "pedestrian", 5.0, 3.5e9, args.seed, 20e6, "256QAM", "3/4", channel="TDL-C"),
        ExampleSpec("nr", args.snr, "vehicular", 90.0, 3.5e9, args.seed, 10e6, "16QAM", "1/2", channel="TDL-C"),
        ExampleSpec("other", args.snr, "static", 0.0, 0.868e9, args.seed, other_kind="sc_qam", channel="TDL-C"),
        ExampleSpec("none", None, None, None, 1e9, args.seed),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(16, 8.5))
    extent = (-params.sample_rate_hz / 2e6, params.sample_rate_hz / 2e6, params.window_seconds * 1e3, 0)
    for ax, spec in zip(axes.flat, specs):
        iq, row = make_stream(spec, params)
        name = f"{spec.protocol}_{spec.modulation or spec.other_kind or 'noise'}_{spec.mobility or 'na'}".lower()
        write_recording(out / name, iq, params.sample_rate_hz, spec.carrier_hz, row, overwrite=True)
        ax.imshow(spectrogram(iq, params), aspect="auto", extent=extent, cmap="viridis")
        title = spec.protocol.upper() if spec.protocol in ("wifi", "lte", "nr") else spec.protocol
        detail = " ".join(
            str(v)
            for v in (
                row.get("bandwidth_hz") and f"{row['bandwidth_hz'] / 1e6:g} MHz",
                spec.modulation or spec.other_kind,
                spec.mobility,
            )
            if v
        )
        ax.set_title(f"{title}  {detail}", fontsize=10)
        ax.set_xlabel("frequency (MHz)")
        ax.set_ylabel("time (ms)")
    fig.suptitle(f"LWM-Spectro input G ({params.n_frames}x{params.n_bins}), SNR {args.snr:g} dB, TDL-C channel")
    fig.tight_layout()
    png = out / "gallery.png"
    fig.savefig(png, dpi=90)
    print(png)
    return 0
