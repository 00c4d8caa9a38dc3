"""ONNX Runtime inference over a model bundle: spectrograms in, the model's outputs out.

router -> softmax -> top-1 class; for a protocol with an expert: that expert's encoder ->
embedding -> its heads. Modulation is the arg-max of the modulation softmax; SNR and mobility
are read from the joint SNR x mobility head by marginalising its softmax (the SNR bin with the
largest marginal, and that marginal as confidence; the same for mobility). `none` and `other`
carry no task fields.

`Runtime.predict` returns one readout.ModelOutput (or readout.InvalidWindow) per spectrogram;
the readout dict is built from it once, by whoever knows where the window came from:
`Runtime.iter_classify_iq` for raw I/Q (framed by lwmspectro.framer), `Runtime.classify`
for spectrograms already made, the GNU Radio classifier block for a stream.

The ONNX graphs take G's output unchanged: the training set's normalisation statistics are
folded into them, and the card's ``normalisation`` only records them.

No torch here: the GNU Radio blocks and the CLI import this module.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .bundle import TENSOR_NAMES, Bundle, BundleError, BundlePath, default_bundle_dir, load_bundle
from .framer import RECORDING_BATCH, ObservationFramer
from .readout import COUNTERS, InvalidWindow, ModelOutput, build_readout
from .spectrogram import SpectrogramParams

__all__ = ["BundleError", "Runtime", "default_bundle_dir", "softmax"]

MODEL_BATCH = 64
"""Most rows handed to one ONNX session run."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the maximum so that large logits cannot overflow."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def available_cores() -> int:
    """Cores this process may run on (its affinity, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def session_options(intra_op_threads: int | None = None):
    """ONNX Runtime options for a small shared CPU: few threads, no busy-waiting."""
    import onnxruntime as ort

    cores = available_cores()
    if intra_op_threads is not None and not 1 <= intra_op_threads <= cores:
        raise ValueError(f"{intra_op_threads} intra-op threads: give 1 to {cores}, the cores available here")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads or min(cores, 4)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning worker threads would take the cores the GNU Radio scheduler needs between readouts.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _load_errors() -> tuple:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return (
        state.Fail,
        state.InvalidProtobuf,
        state.InvalidGraph,
        state.InvalidArgument,
        state.NoSuchFile,
        state.NotImplemented,
        state.RuntimeException,
    )


def _describe(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _check_tensor(path: Path, tensor, expected: tuple) -> None:
    """`expected`: one entry per axis, "batch" for the dynamic batch axis or the int size the
    card implies. A symbolic size in the model is accepted for a fixed one: ONNX Runtime
    checks it on every run."""
    if tensor.type != "tensor(float)":
        raise BundleError(f"{path}: tensor {tensor.name!r} has type {tensor.type}, expected tensor(float)")
    shape = tensor.shape
    if len(shape) != len(expected):
        raise BundleError(
            f"{path}: tensor {tensor.name!r} has shape {_describe(shape)}, expected {_describe(expected)}"
        )
    for axis, (have, want) in enumerate(zip(shape, expected)):
        if want == "batch":
            if isinstance(have, int):
                raise BundleError(
                    f"{path}: tensor {tensor.name!r} has a fixed batch axis of {have}; "
                    "re-export it with a dynamic batch axis"
                )
        elif isinstance(have, int) and have != want:
            raise BundleError(
                f"{path}: tensor {tensor.name!r} has shape {_describe(shape)}, "
                f"expected {_describe(expected)} (axis {axis}: {have} != {want})"
            )


class _Model:
    """One ONNX session whose inputs and outputs match bundle.TENSOR_NAMES[kind]."""

    def __init__(self, path: Path, kind: str, options, providers):
        import onnxruntime as ort

        if not path.is_file():
            raise BundleError(f"{path}: missing; the card lists it as the {kind} model")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except _load_errors() as err:
            raise BundleError(f"{path}: not a loadable ONNX model ({str(err).strip()})") from err
        self.path = path
        inputs, outputs = TENSOR_NAMES[kind]
        self.inputs = {t.name: t for t in self.session.get_inputs()}
        self.outputs = {t.name: t for t in self.session.get_outputs()}
        if tuple(self.inputs) != inputs:
            raise BundleError(f"{path}: inputs {list(self.inputs)}, expected {list(inputs)}")
        missing = [name for name in outputs if name not in self.outputs]
        if missing:
            raise BundleError(f"{path}: outputs {list(self.outputs)} lack {missing}")
        self.output_names = list(outputs)

    def check(self, name: str, expected: tuple) -> None:
        _check_tensor(self.path, self.inputs.get(name) or self.outputs[name], expected)

    def size(self, name: str, axis: int) -> int | None:
        tensor = self.inputs.get(name) or self.outputs[name]
        return tensor.shape[axis] if isinstance(tensor.shape[axis], int) else None

    def __call__(self, feed: np.ndarray) -> list[np.ndarray]:
        """Outputs for `feed`, run MODEL_BATCH rows at a time so that a large batch cannot
        blow up the attention's memory (it grows with batch x tokens^2)."""
        (name,) = self.inputs
        parts = [
            self.session.run(self.output_names, {name: feed[i : i + MODEL_BATCH]})
            for i in range(0, len(feed), MODEL_BATCH)
        ]
        return [np.concatenate(outputs) for outputs in zip(*parts)]


class Runtime:
    """ONNX sessions for a loaded, validated model bundle, turning spectrograms or raw I/Q
    into the model's outputs (`predict`) or readouts (`classify`, `iter_classify_iq`)."""

    def __init__(
        self,
        bundle: Bundle | BundlePath,
        intra_op_threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ):
        self.bundle = load_bundle(bundle)
        self.params: SpectrogramParams = self.bundle.params
        labels = self.bundle.labels
        self.router_classes = list(labels.router)
        self.experts = list(labels.experts)
        self.modulations = list(labels.modulations)
        self.mobility_classes = list(labels.mobility)
        self.snr_bins_db = list(labels.snr_bins_db)
        # Indicator matrices (joint classes x SNR bins, joint classes x mobility classes):
        # the joint softmax times one of them is that readout's marginal.
        self._joint_to_snr = np.zeros((len(labels.snr_mobility), len(self.snr_bins_db)), np.float32)
        self._joint_to_mobility = np.zeros((len(labels.snr_mobility), len(self.mobility_classes)), np.float32)
        for i, (snr, mobility) in enumerate(labels.snr_mobility):
            self._joint_to_snr[i, self.snr_bins_db.index(snr)] = 1.0
            self._joint_to_mobility[i, self.mobility_classes.index(mobility)] = 1.0

        options = session_options(intra_op_threads)
        providers = list(providers)
        files = self.bundle.files
        T, K = self.params.shape
        self._router = _Model(files.router, "router", options, providers)
        self._router.check("spectrogram", ("batch", T, K))
        self._router.check("router_logits", ("batch", len(self.router_classes)))
        self._experts, self._heads = {}, {}
        dims = {}
        for protocol in self.experts:
            expert = _Model(files.experts[protocol], "expert", options, providers)
            heads = _Model(files.heads[protocol], "heads", options, providers)
            expert.check("spectrogram", ("batch", T, K))
            dim = expert.size("embedding", 1) or heads.size("embedding", 1)
            if dim is None:
                raise BundleError(f"{expert.path}: embedding size is not fixed in the expert nor its heads")
            expert.check("embedding", ("batch", dim))
            heads.check("embedding", ("batch", dim))
            heads.check("modulation_logits", ("batch", len(self.modulations)))
            heads.check("snr_mobility_logits", ("batch", len(labels.snr_mobility)))
            self._experts[protocol], self._heads[protocol] = expert, heads
            dims[protocol] = dim
        if len(set(dims.values())) > 1:
            raise BundleError(
                f"{self.bundle.card_path}: experts give embeddings of different sizes {dims}; "
                "the readout's embedding needs one size"
            )
        self.embedding_dim = next(iter(dims.values()), 0)

    @property
    def bundle_dir(self) -> Path:
        return self.bundle.path

    @property
    def window_samples(self) -> int:
        """Analysis-rate samples one observation spans."""
        return self.params.window_samples

    def source_window_samples(self, sample_rate_hz: float) -> int:
        """Source-rate samples one observation spans once resampled to the analysis rate."""
        return self.params.source_window_samples(sample_rate_hz)

    def predict(self, spectrograms: np.ndarray) -> list[ModelOutput | InvalidWindow]:
        """The model's output for each spectrogram of a batch (B, T, K) from G, with the
        chosen expert's embedding. A non-finite spectrogram is not fed to the model: it is an
        InvalidWindow("nan_or_inf")."""
        x = np.asarray(spectrograms, np.float32)
        if x.ndim != 3 or x.shape[1:] != self.params.shape:
            raise ValueError(
                f"spectrograms must have shape (batch, {self.params.n_frames}, "
                f"{self.params.n_bins}) for this bundle, got {x.shape}"
            )
        outputs: list[ModelOutput | InvalidWindow] = [InvalidWindow("nan_or_inf")] * len(x)
        rows = np.flatnonzero(np.isfinite(x).all(axis=(1, 2)))
        if not len(rows):
            return outputs
        feed = x[rows]
        router_probs = softmax(self._router(feed)[0])
        top = router_probs.argmax(axis=-1)
        expert_fields: dict[int, dict] = {}
        for protocol in self.experts:
            chosen = np.flatnonzero(top == self.router_classes.index(protocol))
            if not len(chosen):
                continue
            embeddings = self._experts[protocol](feed[chosen])[0]
            tasks = self._task_fields(*self._heads[protocol](embeddings))
            for i, embedding, task in zip(chosen, embeddings, tasks):
                expert_fields[i] = {**task, "expert": protocol, "embedding": embedding}
        for i, (row, cls) in enumerate(zip(rows, top)):
            outputs[row] = ModelOutput(
                protocol=self.router_classes[cls],
                protocol_confidence=float(router_probs[i, cls]),
                **expert_fields.get(i, {}),
            )
        return outputs

    def _task_fields(self, modulation_logits: np.ndarray, joint_logits: np.ndarray) -> list[dict]:
        modulation_probs = softmax(modulation_logits)
        joint_probs = softmax(joint_logits)
        snr_marginal = joint_probs @ self._joint_to_snr
        mobility_marginal = joint_probs @ self._joint_to_mobility
        modulation = modulation_probs.argmax(axis=-1)
        snr = snr_marginal.argmax(axis=-1)
        mobility = mobility_marginal.argmax(axis=-1)
        return [
            {
                "modulation": self.modulations[modulation[i]],
                "modulation_confidence": float(modulation_probs[i, modulation[i]]),
                "snr_db": self.snr_bins_db[snr[i]],
                "snr_confidence": float(snr_marginal[i, snr[i]]),
                "mobility": self.mobility_classes[mobility[i]],
                "mobility_confidence": float(mobility_marginal[i, mobility[i]]),
            }
            for i in range(len(joint_probs))
        ]

    def classify(
        self,
        spectrograms: np.ndarray,
        *,
        window_starts: Sequence[int] | None = None,
        rx_times: Sequence[float | None] | None = None,
    ) -> list[dict]:
        """Readouts for a batch of spectrograms (B, T, K) from G, stamped with their window
        starts and rx_times (default 0 and None); `latency_ms` is the time the whole batch took."""
        clock = time.perf_counter()
        n = len(spectrograms)
        starts = [0] * n if window_starts is None else [int(s) for s in window_starts]
        times = [None] * n if rx_times is None else list(rx_times)
        if len(starts) != n or len(times) != n:
            raise ValueError(f"{n} spectrograms but {len(starts)} window_starts and {len(times)} rx_times")
        outputs = self.predict(spectrograms)
        latency_ms = (time.perf_counter() - clock) * 1e3
        return [
            build_readout(output, window_start=start, rx_time=rx_time, latency_ms=latency_ms)
            for output, start, rx_time in zip(outputs, starts, times)
        ]

    def classify_iq(self, iq, sample_rate_hz: float, *, stride: int | None = None, start_offset: int = 0) -> list[dict]:
        """Readouts for every whole observation in `iq` (see `iter_classify_iq`)."""
        return list(self.iter_classify_iq(iq, sample_rate_hz, stride=stride, start_offset=start_offset))

    def iter_classify_iq(
        self,
        iq,
        sample_rate_hz: float,
        *,
        stride: int | None = None,
        start_offset: int = 0,
        max_windows: int | None = None,
        batch_windows: int = RECORDING_BATCH,
    ) -> Iterator[dict]:
        """Yield one readout per observation of raw I/Q at `sample_rate_hz`.

        `iq` is anything with len() and [a:b] slicing (an array, a memory map, a file reader),
        read one batch of observations at a time and framed by lwmspectro.framer: observations
        start every `stride` source samples (default: back to back), windows that cannot be
        judged yield an invalid readout and never reach the model. `window_start` is in
        source samples plus `start_offset`; `latency_ms` is the time the window's batch took
        from reading to the model's output. Input too short for one observation yields a
        single `too_short` readout. Counters count this call's windows.
        """
        framer = ObservationFramer(self.params, sample_rate_hz, stride)
        if len(iq) < framer.span:
            yield build_readout(
                InvalidWindow("too_short"),
                window_start=start_offset,
                counters={"windows_seen": 1, "windows_dropped": 1},
            )
            return
        counters = dict.fromkeys(COUNTERS, 0)
        batches = framer.frame_recording(iq, max_windows=max_windows, batch_windows=batch_windows)
        while True:
            clock = time.perf_counter()
            windows = next(batches, None)
            if windows is None:
                return
            predicted = iter(self.predict(windows.spectrograms[windows.valid]))
            outputs = [
                next(predicted) if reason is None else InvalidWindow(reason) for reason in windows.invalid_reasons
            ]
            latency_ms = (time.perf_counter() - clock) * 1e3
            for start, output in zip(windows.starts, outputs):
                counters["windows_seen"] += 1
                counters["windows_classified" if isinstance(output, ModelOutput) else "windows_dropped"] += 1
                yield build_readout(
                    output, window_start=start_offset + int(start), latency_ms=latency_ms, counters=counters
                )
