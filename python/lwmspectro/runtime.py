"""ONNX Runtime inference over a model bundle: the one path from spectrograms or I/Q to readouts.

router -> softmax -> top-1 class; for a protocol with an expert: that expert's encoder ->
embedding -> its heads. Modulation is the arg-max of the modulation softmax; SNR and mobility
are read from the joint SNR x mobility head by marginalising its softmax (the SNR bin with the
largest marginal, and that marginal as confidence; the same for mobility). `none` and `other`
carry no task fields.

The ONNX graphs take G's output unchanged: the training set's normalisation statistics are
folded into them, and the card's ``normalisation`` only records them.

No torch here: the GNU Radio blocks and the CLI import this module.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from . import quality
from .card import TENSOR_NAMES, BundleError, load_card
from .readout import invalid_readout, make_readout
from .resample import PointResampler
from .spectrogram import SpectrogramParams, spectrogram_from_frames

__all__ = ["BundleError", "Runtime", "default_bundle_dir", "softmax"]

BUNDLE_ENV = "LWMSPECTRO_BUNDLE"
DEFAULT_BUNDLE_NAME = "small"
IQ_BATCH_WINDOWS = 32
"""Observations cut, transformed and classified together by `iter_classify_iq`."""
MODEL_BATCH = 64
"""Most rows handed to one ONNX session run."""


def _bundle_candidates() -> list[Path]:
    return [
        Path(sys.prefix) / "share" / "lwmspectro" / "models" / DEFAULT_BUNDLE_NAME,
        Path(__file__).resolve().parents[2] / "models" / DEFAULT_BUNDLE_NAME,
    ]


def default_bundle_dir() -> Path:
    """The bundle used when none is named: $LWMSPECTRO_BUNDLE, else the installed share
    folder, else the repository's models/small. Raises BundleError saying how to get one."""
    env = os.environ.get(BUNDLE_ENV)
    if env:
        if not (Path(env) / "card.json").exists():
            raise BundleError(f"${BUNDLE_ENV}={env}: no card.json there; point it at a model bundle folder")
        return Path(env)
    candidates = _bundle_candidates()
    for candidate in candidates:
        if (candidate / "card.json").exists():
            return candidate
    raise BundleError(
        "no model bundle found (looked at " + ", ".join(map(str, candidates)) + "); "
        "train and export one with `lwmspectro-train all --config "
        "training/lwmspectro_train/configs/small.json`, or pass --bundle DIR / "
        f"set ${BUNDLE_ENV} to a bundle folder"
    )


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

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads or min(available_cores(), 4)
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
    """One ONNX session whose inputs and outputs match card.TENSOR_NAMES[kind]."""

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
    """A loaded, validated model bundle that turns spectrograms or raw I/Q into readouts."""

    def __init__(self, bundle_dir, intra_op_threads: int | None = None, providers=("CPUExecutionProvider",)):
        self.bundle_dir = Path(bundle_dir)
        self.card = load_card(self.bundle_dir)
        where = self.bundle_dir / "card.json"
        self.params = SpectrogramParams.from_dict(self.card["spectrogram"])
        labels = self.card["labels"]
        self.router_classes = list(labels["router"])
        self.experts = list(labels["experts"])
        self.modulations = list(labels["modulation"])
        self.mobility_classes = list(labels["mobility"])
        self._read_joint_labels(labels["snr_mobility"], where)

        options = session_options(intra_op_threads)
        providers = list(providers)
        files = self.card["files"]
        T, K = self.params.shape
        self._router = _Model(self.bundle_dir / files["router"], "router", options, providers)
        self._router.check("spectrogram", ("batch", T, K))
        self._router.check("router_logits", ("batch", len(self.router_classes)))
        self._experts, self._heads = {}, {}
        dims = {}
        for protocol in self.experts:
            expert = _Model(self.bundle_dir / files["experts"][protocol], "expert", options, providers)
            heads = _Model(self.bundle_dir / files["heads"][protocol], "heads", options, providers)
            expert.check("spectrogram", ("batch", T, K))
            dim = expert.size("embedding", 1) or heads.size("embedding", 1)
            if dim is None:
                raise BundleError(f"{expert.path}: embedding size is not fixed in the expert nor its heads")
            expert.check("embedding", ("batch", dim))
            heads.check("embedding", ("batch", dim))
            heads.check("modulation_logits", ("batch", len(self.modulations)))
            heads.check("snr_mobility_logits", ("batch", len(self._joint_to_snr)))
            self._experts[protocol], self._heads[protocol] = expert, heads
            dims[protocol] = dim
        if len(set(dims.values())) > 1:
            raise BundleError(
                f"{where}: experts give embeddings of different sizes {dims}; the readout's embedding needs one size"
            )
        self.embedding_dim = next(iter(dims.values()), 0)

    def _read_joint_labels(self, pairs, where) -> None:
        """Map each joint SNR x mobility class to its SNR bin and its mobility class."""
        snr_bins = []
        for snr, _ in pairs:
            if snr not in snr_bins:
                snr_bins.append(snr)
        unknown = sorted({mob for _, mob in pairs} - set(self.mobility_classes))
        if unknown:
            raise BundleError(
                f"{where}: labels.snr_mobility uses mobility classes {unknown} "
                f"not in labels.mobility {self.mobility_classes}"
            )
        self.snr_bins_db = [float(s) for s in snr_bins]
        # Indicator matrices (joint classes x SNR bins, joint classes x mobility classes):
        # the joint softmax times one of them is that readout's marginal.
        self._joint_to_snr = np.zeros((len(pairs), len(snr_bins)), np.float32)
        self._joint_to_mobility = np.zeros((len(pairs), len(self.mobility_classes)), np.float32)
        for i, (snr, mob) in enumerate(pairs):
            self._joint_to_snr[i, snr_bins.index(snr)] = 1.0
            self._joint_to_mobility[i, self.mobility_classes.index(mob)] = 1.0

    @property
    def window_samples(self) -> int:
        """Analysis-rate samples one observation spans."""
        return self.params.window_samples

    def source_window_samples(self, sample_rate_hz: float) -> int:
        """Source-rate samples one observation spans once resampled to the analysis rate."""
        return self.params.source_window_samples(sample_rate_hz)

    def check_window(self, iq: np.ndarray) -> str | None:
        """Why this window of raw I/Q cannot be judged ("nan_or_inf", "all_zero", "dc_only",
        "clipped"), or None."""
        return quality.check_iq(iq)

    def classify(self, spectrograms: np.ndarray, *, window_starts=None, rx_times=None, return_embedding: bool = False):
        """Readouts for a batch of spectrograms (B, T, K) from G.

        `latency_ms` of each readout is the time the whole batch took. With `return_embedding`,
        returns (readouts, embeddings (B, D)); rows for `none`, `other` or an invalid
        spectrogram are NaN. A non-finite spectrogram gets an invalid readout and is not
        fed to the model.
        """
        start = time.perf_counter()
        x = np.asarray(spectrograms, np.float32)
        if x.ndim != 3 or x.shape[1:] != self.params.shape:
            raise ValueError(
                f"spectrograms must have shape (batch, {self.params.n_frames}, "
                f"{self.params.n_bins}) for this bundle, got {x.shape}"
            )
        n = len(x)
        starts = [0] * n if window_starts is None else [int(s) for s in window_starts]
        times = [None] * n if rx_times is None else list(rx_times)
        if len(starts) != n or len(times) != n:
            raise ValueError(f"{n} spectrograms but {len(starts)} window_starts and {len(times)} rx_times")
        embeddings = np.full((n, self.embedding_dim), np.nan, np.float32)
        finite = np.isfinite(x).all(axis=(1, 2))
        rows = np.flatnonzero(finite)
        fields = [None] * n
        if len(rows):
            feed = x[rows]
            router_probs = softmax(self._router(feed)[0])
            top = router_probs.argmax(axis=-1)
            for row, cls, probs in zip(rows, top, router_probs):
                fields[row] = {"protocol": self.router_classes[cls], "protocol_confidence": float(probs[cls])}
            for protocol in self.experts:
                chosen = np.flatnonzero(top == self.router_classes.index(protocol))
                if len(chosen):
                    embedding = self._experts[protocol](feed[chosen])[0]
                    embeddings[rows[chosen]] = embedding
                    modulation_logits, joint_logits = self._heads[protocol](embedding)
                    for row, task in zip(rows[chosen], self._task_fields(modulation_logits, joint_logits)):
                        fields[row].update(task, expert=protocol)
        latency_ms = (time.perf_counter() - start) * 1e3
        readouts = []
        for i in range(n):
            if fields[i] is None:
                readouts.append(
                    invalid_readout("nan_or_inf", window_start=starts[i], rx_time=times[i], latency_ms=latency_ms)
                )
            else:
                readouts.append(
                    make_readout(**fields[i], window_start=starts[i], rx_time=times[i], latency_ms=latency_ms)
                )
        return (readouts, embeddings) if return_embedding else readouts

    def _task_fields(self, modulation_logits: np.ndarray, joint_logits: np.ndarray) -> list[dict]:
        modulation_probs = softmax(modulation_logits)
        joint_probs = softmax(joint_logits)
        n = len(joint_probs)
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
            for i in range(n)
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
        batch_windows: int = IQ_BATCH_WINDOWS,
    ):
        """Yield one readout per observation of raw I/Q at `sample_rate_hz`.

        `iq` is anything with len() and [a:b] slicing (an array, a memory map, a file reader),
        read one batch of observations at a time. Observations start every `stride` source
        samples (default: back to back); `window_start` is in source samples plus
        `start_offset`. Only the frames G reads are resampled to the analysis rate, each
        exactly as resampling the whole stream would give it. Windows failing
        `check_window` (judged at the source rate, where ADC rails are visible) yield an
        invalid readout and never reach the model. Input too short for one observation
        yields a single `too_short` readout. Counters count this call's windows.
        """
        rate = float(sample_rate_hz)
        resampler = PointResampler.for_rates(rate, self.params.sample_rate_hz)
        span = self.source_window_samples(rate)
        stride = span if stride is None else int(stride)
        if stride < 1:
            raise ValueError(f"stride must be a positive number of samples, got {stride}")
        total = len(iq)
        if total < span:
            yield invalid_readout("too_short", window_start=start_offset, windows_seen=1, windows_dropped=1)
            return
        n_windows = (total - span) // stride + 1
        if max_windows is not None:
            n_windows = min(n_windows, max_windows)
        T, n_fft = self.params.n_frames, self.params.n_fft
        seen = classified = dropped = 0
        for first in range(0, n_windows, batch_windows):
            source_starts = np.arange(first, min(first + batch_windows, n_windows)) * stride
            # Analysis-rate starts of each observation's frames: (windows, T).
            frame_starts = (source_starts * resampler.up // resampler.down)[:, None] + self.params.frame_starts
            needed_first, needed_end = resampler.input_span(frame_starts, n_fft)
            low = max(0, min(int(source_starts[0]), needed_first))
            high = min(total, max(int(source_starts[-1]) + span, needed_end))
            chunk = np.asarray(iq[low:high], np.complex64)
            clock = time.perf_counter()
            reasons = [self.check_window(chunk[s - low : s - low + span]) for s in source_starts]
            window_starts = [start_offset + int(s) for s in source_starts]
            valid = [i for i, reason in enumerate(reasons) if reason is None]
            results = iter(())
            if valid:
                if "nan_or_inf" in reasons:
                    # Keep a broken neighbour's NaN out of the filter taps that reach valid windows.
                    chunk = np.where(np.isfinite(chunk), chunk, np.complex64(0))
                frames = resampler.frames(chunk, low, frame_starts[valid].ravel(), n_fft).reshape(len(valid), T, n_fft)
                results = iter(
                    self.classify(
                        spectrogram_from_frames(frames, self.params), window_starts=[window_starts[i] for i in valid]
                    )
                )
            latency_ms = (time.perf_counter() - clock) * 1e3
            for i, reason in enumerate(reasons):
                seen += 1
                if reason is None:
                    classified += 1
                    readout = next(results)
                else:
                    dropped += 1
                    readout = invalid_readout(reason, window_start=window_starts[i])
                readout.update(
                    latency_ms=latency_ms, windows_seen=seen, windows_classified=classified, windows_dropped=dropped
                )
                yield readout
