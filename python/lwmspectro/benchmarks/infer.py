"""`lwmspectro bench infer`: the model's speed in ONNX Runtime against eager PyTorch.

One run on one machine measures, with the same thread count everywhere: latency p50/p99 at
batch 1 and readouts/s at a larger batch for (1) the bundle in ONNX Runtime through the
runtime the blocks use, (2) the comparison models installed packages contribute through the
`lwmspectro.bench_infer_models` entry points (the training package: the same model in eager
PyTorch, and the `paper`-size architecture with random weights), and, with --int8, (3) the
bundle dynamically quantised to int8, with its accuracy beside fp32 when --data names a
labelled dataset. Every readout pays for the router, one expert and its heads.

The ONNX Runtime figures need only the core, so they are measured on a machine without torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

HELP = "model speed: ONNX Runtime vs eager PyTorch (shipped and paper size), optional int8"

COMPARISON_GROUP = "lwmspectro.bench_infer_models"

SYNTHETIC_CHANNEL = "TDL-C"
TARGET_SPEEDUP = 2.0
TARGET_READOUTS_PER_S = 100.0


@dataclass(frozen=True)
class ComparisonModel:
    """A model timed beside the bundle in ONNX Runtime.

    A package contributes them with an entry point in `COMPARISON_GROUP` naming a function
    (bundle_dir, params, threads) -> list[ComparisonModel]. `call` runs a batch of
    spectrograms (None: not measured, `why` says why); the speed-up target is measured
    against the model marked `speedup_reference`.
    """

    name: str
    call: Callable | None
    parameters: int | None = None
    why: str = ""
    speedup_reference: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..cli import positive_float

    parser.add_argument("--bundle", help="model bundle folder (default: $LWMSPECTRO_BUNDLE, else models/small)")
    parser.add_argument(
        "--data",
        help="labelled dataset folder: inputs for timing and the int8 accuracy check "
        "(default: spectrograms made by the generator)",
    )
    parser.add_argument("--seconds", type=positive_float, default=3.0, help="time spent on each measurement")
    parser.add_argument("--batch", type=int, default=32, help="batch size for the throughput figure")
    parser.add_argument("--threads", type=int, help="threads for ONNX Runtime and torch (default: all cores)")
    parser.add_argument("--int8", action="store_true", help="also measure an int8 dynamically quantised bundle")
    parser.add_argument("--max-samples", type=int, default=2000, help="dataset rows for the int8 accuracy check")


def timings(call, inputs, batch: int, seconds: float, min_calls: int):
    """Wall times (s) of `call` on consecutive batches of `inputs`, after one warm-up call."""
    import time

    import numpy as np

    n = len(inputs)
    batches = [inputs[i : i + batch] for i in range(0, n - batch + 1, batch)] or [inputs[:batch]]
    call(batches[0])
    durations: list[float] = []
    start = time.perf_counter()
    while len(durations) < min_calls or time.perf_counter() - start < seconds:
        b = batches[len(durations) % len(batches)]
        tick = time.perf_counter()
        call(b)
        durations.append(time.perf_counter() - tick)
    return np.asarray(durations)


def measure(name: str, call, inputs, batch: int, seconds: float, parameters: int | None) -> dict:
    import numpy as np

    single = timings(call, inputs, 1, seconds, min_calls=20)
    many = timings(call, inputs, batch, seconds, min_calls=3)
    return {
        "name": name,
        "parameters": parameters,
        "p50_ms": float(np.percentile(single, 50) * 1e3),
        "p99_ms": float(np.percentile(single, 99) * 1e3),
        "readouts_per_s": batch * len(many) / float(many.sum()),
    }


def bench_inputs(params, data: str | None, count: int):
    """Spectrograms (count, T, K) of protocol signals, from a dataset or the generator, and
    their label rows."""
    import numpy as np

    from .. import labels

    if data:
        from ..dataset import open_dataset

        dataset = open_dataset(data)
        if dataset.params != params:
            raise ValueError(
                f"{data}: its spectrogram parameters differ from the bundle's; make the dataset with the bundle's G"
            )
        rows = [i for i, row in enumerate(dataset.labels) if row["protocol"] in labels.PROTOCOLS][:count]
        if not rows:
            raise ValueError(f"{data}: no WiFi, LTE or NR rows to time the model on")
        return dataset.spectrograms(rows), [dataset.labels[i] for i in rows]
    from ..synth import GeneratorConfig, draw_spec, make_spectrogram

    config = GeneratorConfig(
        classes=dict.fromkeys(labels.PROTOCOLS, 1.0), channel=SYNTHETIC_CHANNEL, spectrogram=params.to_dict()
    )
    made = [make_spectrogram(draw_spec(config, i), params) for i in range(count)]
    return np.stack([s for s, _ in made]), [row for _, row in made]


def onnx_parameters(bundle_dir) -> int | None:
    """Weights stored in the bundle's ONNX files (None without the onnx package)."""
    from pathlib import Path

    try:
        import onnx
    except ImportError:
        return None
    import numpy as np

    total = 0
    for path in sorted(Path(bundle_dir).glob("*.onnx")):
        total += sum(int(np.prod(t.dims)) for t in onnx.load(str(path), load_external_data=False).graph.initializer)
    return total


def quantised_copy(bundle_dir, out_dir):
    """The bundle with every ONNX file dynamically quantised to int8 weights (each keeps its
    training metadata), its card recording the quantised files' checksums."""
    import json
    from pathlib import Path

    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..bundle import CARD_FILE, write_card

    out_dir = Path(out_dir)
    for path in sorted(Path(bundle_dir).glob("*.onnx")):
        prepared = out_dir / (path.stem + ".prepared.onnx")
        quant_pre_process(str(path), str(prepared))
        quantize_dynamic(str(prepared), str(out_dir / path.name), weight_type=QuantType.QInt8)
        prepared.unlink()
    write_card(out_dir, json.loads((Path(bundle_dir) / CARD_FILE).read_text()))
    return out_dir


def accuracy(runtime, spectrograms, rows, batch: int) -> dict:
    """Router, modulation and joint SNR x mobility accuracy of `runtime` against label rows."""
    from .. import labels

    readouts = []
    for i in range(0, len(spectrograms), batch):
        readouts += runtime.classify(spectrograms[i : i + batch])
    protocol_hits, modulation, joint = 0, [], []
    for readout, row in zip(readouts, rows):
        protocol_hits += readout["protocol"] == row["protocol"]
        if readout["expert"] is None or row.get("modulation") is None:
            continue
        modulation.append(readout["modulation"] == row["modulation"])
        true_snr = labels.nearest_snr_bin(row["snr_db"], runtime.snr_bins_db)
        joint.append(readout["snr_db"] == true_snr and readout["mobility"] == row["mobility"])

    def mean(hits):
        return 100.0 * sum(hits) / len(hits) if hits else float("nan")

    return {
        "protocol": 100.0 * protocol_hits / max(1, len(rows)),
        "modulation": mean(modulation),
        "snr_mobility": mean(joint),
    }


def comparison_models(bundle_dir, params, threads: int) -> list[ComparisonModel]:
    """The comparison models of every installed package; a package that fails is a note row."""
    from ..cli import TRAINING_INSTALL, plugin_entry_points

    entries = plugin_entry_points(COMPARISON_GROUP)
    if not entries:
        return [ComparisonModel("eager PyTorch", None, why=f"no package contributes it; {TRAINING_INSTALL}")]
    models = []
    for name, entry in sorted(entries.items()):
        try:
            models += entry.load()(bundle_dir, params, threads)
        except Exception as err:  # one package's failure leaves the other rows
            models.append(ComparisonModel(name, None, why=f"{type(err).__name__}: {err}"))
    return models


def run(args: argparse.Namespace) -> int:
    import tempfile

    from ..cli import UsageError
    from ..runtime import Runtime, available_cores, default_bundle_dir

    if args.batch < 1 or args.max_samples < 1 or (args.threads is not None and args.threads < 1):
        raise UsageError("--batch, --max-samples and --threads must be positive")
    if args.threads is not None and args.threads > available_cores():
        raise UsageError(f"--threads {args.threads}: at most {available_cores()}, the cores available here")
    threads = args.threads or available_cores()
    bundle_dir = args.bundle or default_bundle_dir()
    runtime = Runtime(bundle_dir, intra_op_threads=threads)
    count = max(args.batch * 2, args.max_samples if (args.int8 and args.data) else 0)
    spectrograms, rows = bench_inputs(runtime.params, args.data, count)
    print(
        f"bundle {runtime.bundle_dir} ({runtime.bundle.name}); {threads} threads; inputs: "
        f"{len(spectrograms)} {'rows of ' + args.data if args.data else 'generated WiFi/LTE/NR spectrograms'}; "
        f"{args.seconds:g} s per figure"
    )

    results, notes, reference = [], [], None
    results.append(
        measure(
            "ONNX Runtime, bundle",
            runtime.classify,
            spectrograms,
            args.batch,
            args.seconds,
            onnx_parameters(bundle_dir),
        )
    )
    for model in comparison_models(bundle_dir, runtime.params, threads):
        if model.call is None:
            notes.append(f"{model.name}: not measured: {model.why}")
            continue
        results.append(measure(model.name, model.call, spectrograms, args.batch, args.seconds, model.parameters))
        if model.speedup_reference:
            reference = model.name
    if args.int8:
        with tempfile.TemporaryDirectory() as folder:
            quantised = Runtime(quantised_copy(bundle_dir, folder), intra_op_threads=threads)
            results.append(
                measure(
                    "ONNX Runtime, bundle int8",
                    quantised.classify,
                    spectrograms,
                    args.batch,
                    args.seconds,
                    onnx_parameters(folder),
                )
            )
            if args.data:
                fp32 = accuracy(runtime, spectrograms, rows, args.batch)
                int8 = accuracy(quantised, spectrograms, rows, args.batch)
                for task in fp32:
                    notes.append(
                        f"int8 accuracy, {task}: {int8[task]:.1f} % vs fp32 {fp32[task]:.1f} % "
                        f"({int8[task] - fp32[task]:+.1f} points, {len(rows)} rows)"
                    )
            else:
                notes.append("int8 accuracy: not measured (pass --data DIR with a labelled dataset)")

    print(
        f"\n{'model':<28s} {'parameters':>12s} {'p50 ms (b=1)':>13s} {'p99 ms (b=1)':>13s} "
        f"{'readouts/s (b=' + str(args.batch) + ')':>20s}"
    )
    for r in results:
        parameters = f"{r['parameters']:,}" if r["parameters"] is not None else "?"
        print(
            f"{r['name']:<28s} {parameters:>12s} {r['p50_ms']:>13.2f} {r['p99_ms']:>13.2f} {r['readouts_per_s']:>20.1f}"
        )
    by_name = {r["name"]: r for r in results}
    ort = by_name["ONNX Runtime, bundle"]
    print()
    for o in results[1:]:
        print(
            f"ONNX Runtime bundle vs {o['name']}: {o['p50_ms'] / ort['p50_ms']:.2f}x latency, "
            f"{ort['readouts_per_s'] / o['readouts_per_s']:.2f}x throughput"
        )
    if reference is not None:
        slower = by_name[reference]
        for figure, speedup in (
            ("latency at batch 1", slower["p50_ms"] / ort["p50_ms"]),
            (f"throughput at batch {args.batch}", ort["readouts_per_s"] / slower["readouts_per_s"]),
        ):
            print(
                f"target ONNX Runtime >= {TARGET_SPEEDUP:g}x {reference} ({figure}): {speedup:.2f}x "
                f"{'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}"
            )
    print(
        f"target >= {TARGET_READOUTS_PER_S:g} readouts/s: {ort['readouts_per_s']:.1f} "
        f"{'met' if ort['readouts_per_s'] >= TARGET_READOUTS_PER_S else 'MISSED'} ({threads} threads)"
    )
    for note in notes:
        print(note)
    return 0
