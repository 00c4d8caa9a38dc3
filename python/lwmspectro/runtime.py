"""ONNX Runtime inference over a model bundle: spectrograms in, the model's outputs out.

router -> softmax -> top-1 class; for a protocol with an expert: that expert's encoder ->
embedding -> its heads. Modulation is the arg-max of the modulation softmax; SNR and mobility
are read from the joint SNR x mobility head by marginalising its softmax (the SNR bin with the
largest marginal, and that marginal as confidence; the same for mobility), or, from separate
heads, the SNR is the regressed mean in dB (confidence: the probability, under the head's
Gaussian, that it lies within half an SNR bin of it) and mobility the arg-max of its own
softmax. `none` and `other` carry no task fields.

A calibrated bundle (the card's ``calibration``, bundle.CALIBRATED_HEADS) has each head's logits
divided by its temperature before the softmax, and a Gaussian SNR head's standard deviation
multiplied by its scale, so that a confidence of 0.8 is right about 80 % of the time on data like
the validation split. Each ModelOutput carries every head's class probabilities
(`ModelOutput.probabilities`, classes in `head_classes`) for a tracker (lwmspectro.tracking).

A view the card lists under ``input.absent_views`` (a view of the past) may be all NaN in a
window: the window is fed all the same, its graphs stand in a learnt embedding for the view,
and when the chosen expert reads that view its mobility confidence is 0 (the capture is too
short to tell).

`Runtime.predict` returns one readout.ModelOutput (or readout.InvalidWindow) per spectrogram;
the readout dict is built from it once, by whoever knows where the window came from:
`Runtime.iter_classify_iq` for raw I/Q (framed by lwmspectro.framer), `Runtime.classify`
for spectrograms already made, the GNU Radio classifier block for a stream.

The model's input is the card's list of views (`Bundle.views`, in order; today's cards list
the wideband G alone): the router and each expert take one input per view they read, named
after it (bundle.WIDEBAND_INPUT for today's single-input graphs), and get those views.

The ONNX graphs take the views unchanged: the training set's normalisation statistics are
folded into them, and the card's ``normalisation`` only records them.

No torch here: the GNU Radio blocks and the CLI import this module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import views as view_registry
from .bundle import (
    CALIBRATED_HEADS,
    TENSOR_NAMES,
    WIDEBAND_INPUT,
    Bundle,
    BundleError,
    BundlePath,
    default_bundle_dir,
    load_bundle,
)
from .framer import RECORDING_BATCH, ObservationFramer, available_cores
from .readout import (
    COUNTERS,
    InvalidWindow,
    ModelOutput,
    Thresholds,
    build_readout,
    doppler_hz_of,
    snr_confidence,
    snr_half_bin_db,
    uncertain_thresholds,
)
from .spectrogram import SpectrogramParams

if TYPE_CHECKING:
    from .tracking import Tracker

__all__ = ["BundleError", "Runtime", "available_cores", "default_bundle_dir", "softmax"]

MODEL_BATCH = 64
"""Most rows handed to one ONNX session run."""
HEADS_KINDS = ("heads", "heads_separate")
"""The kinds of heads graph (bundle.TENSOR_NAMES): joint SNR x mobility logits, or separate outputs."""


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis of `logits` / `temperature`, in float64 and shifted by the
    maximum, so that large logits neither overflow nor round a small probability to zero."""
    scaled = np.asarray(logits, np.float64) / temperature
    shifted = scaled - scaled.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


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


def _view_inputs(path: Path, names: Sequence[str], bundle: Bundle) -> list[int]:
    """The index, in the card's views, of the view each input of a router or expert graph
    reads: its name, or WIDEBAND_INPUT for the card's wideband view."""
    view_names = bundle.view_names
    wideband = [i for i, v in enumerate(bundle.views) if isinstance(v, SpectrogramParams)]
    indices = []
    for name in names:
        if name in view_names:
            indices.append(view_names.index(name))
        elif name == WIDEBAND_INPUT and len(wideband) == 1:
            indices.append(wideband[0])
        else:
            raise BundleError(
                f"{path}: input {name!r} is not one of the card's views {view_names}"
                + (f" (nor {WIDEBAND_INPUT!r}, its one wideband view)" if len(wideband) == 1 else "")
            )
    if len(set(indices)) != len(indices):
        raise BundleError(f"{path}: inputs {list(names)} read one view twice")
    return indices


class _Model:
    """One ONNX session. Heads match bundle.TENSOR_NAMES; a router or an expert takes one input
    per card view it reads (`views`: their indices in the card) and gives TENSOR_NAMES' outputs."""

    def __init__(self, path: Path, kind: str, options, providers, bundle: Bundle):
        import onnxruntime as ort

        if not path.is_file():
            raise BundleError(f"{path}: missing; the card lists it as the {kind} model")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except _load_errors() as err:
            raise BundleError(f"{path}: not a loadable ONNX model ({str(err).strip()})") from err
        self.path = path
        self.inputs = {t.name: t for t in self.session.get_inputs()}
        self.outputs = {t.name: t for t in self.session.get_outputs()}
        if kind == "heads" and set(TENSOR_NAMES["heads_separate"][1]) <= set(self.outputs):
            kind = "heads_separate"
        self.kind = kind
        inputs, outputs = TENSOR_NAMES[kind]
        self.views: list[int] = []
        if kind in HEADS_KINDS:
            if tuple(self.inputs) != inputs:
                raise BundleError(f"{path}: inputs {list(self.inputs)}, expected {list(inputs)}")
        else:
            self.views = _view_inputs(path, list(self.inputs), bundle)
        missing = [name for name in outputs if name not in self.outputs]
        if missing:
            raise BundleError(f"{path}: outputs {list(self.outputs)} lack {missing}")
        self.output_names = list(outputs)

    def check(self, name: str, expected: tuple) -> None:
        _check_tensor(self.path, self.inputs.get(name) or self.outputs[name], expected)

    def size(self, name: str, axis: int) -> int | None:
        tensor = self.inputs.get(name) or self.outputs[name]
        return tensor.shape[axis] if isinstance(tensor.shape[axis], int) else None

    def check_views(self, shapes: Sequence[tuple[int, int]]) -> None:
        """Each input has the shape (batch, T, K) of the card view it reads."""
        for name, view in zip(self.inputs, self.views):
            self.check(name, ("batch", *shapes[view]))

    def __call__(self, *feeds: np.ndarray) -> list[np.ndarray]:
        """Outputs for `feeds` (one per input, in order), run MODEL_BATCH rows at a time so that
        a large batch cannot blow up the attention's memory (it grows with batch x tokens^2)."""
        parts = [
            self.session.run(
                self.output_names, {name: feed[i : i + MODEL_BATCH] for name, feed in zip(self.inputs, feeds)}
            )
            for i in range(0, len(feeds[0]), MODEL_BATCH)
        ]
        return [np.concatenate(outputs) for outputs in zip(*parts)]


class ViewRouting:
    """The router of a Runtime for an ObservationFramer of `views` (framer.Routing): from a
    window's router views, its probabilities and the views the chosen expert reads (none for
    `none` and `other`) with the views of `views` that are not the card's, as indices in `views`."""

    def __init__(self, runtime: Runtime, views: Sequence[Any]):
        views = list(views)
        missing = [name for name, v in zip(runtime.view_names, runtime.views) if v not in views]
        if missing:
            raise ValueError(f"the framer's views lack {missing}, which the bundle reads")
        self._runtime = runtime
        self._position = [views.index(v) for v in runtime.views]
        """Where each card view is among `views`."""
        self.lead: Sequence[int] = [self._position[i] for i in runtime._router.views]
        self.n_classes = len(runtime.router_classes)
        # Views beside the card's are computed whatever the route: the framer's caller asked for them.
        beside = [i for i, v in enumerate(views) if v not in runtime.views]
        self._expert_views = {
            runtime.router_classes.index(protocol): [self._position[i] for i in expert.views] + beside
            for protocol, expert in runtime._experts.items()
        }
        self._beside = beside

    def choose(self, outputs: Sequence[np.ndarray | None]) -> tuple[np.ndarray, Sequence[int]]:
        inputs = []
        for position in self.lead:
            values = outputs[position]
            if values is None:
                raise ValueError("the router's views must be computed before it routes the window")
            inputs.append(values[None])
        probabilities = self._runtime._router_probabilities(inputs)[0]
        return probabilities, self._expert_views.get(int(probabilities.argmax()), self._beside)


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
        self.views: tuple[Any, ...] = self.bundle.views
        self.view_names = self.bundle.view_names
        self.view_shapes = [view_registry.view_shape(v) for v in self.views]
        labels = self.bundle.labels
        self.router_classes = list(labels.router)
        self.experts = list(labels.experts)
        self.modulations = list(labels.modulations)
        self.mobility_classes = list(labels.mobility)
        self.snr_bins_db = list(labels.snr_bins_db)
        self.snr_half_bin_db = snr_half_bin_db(self.snr_bins_db)
        """Half the SNR bin spacing: a Gaussian SNR estimate's confidence is its probability within it."""
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
        self._router = _Model(files.router, "router", options, providers, self.bundle)
        self._router.check_views(self.view_shapes)
        self._router.check("router_logits", ("batch", len(self.router_classes)))
        self._experts, self._heads = {}, {}
        dims = {}
        widths = {
            "modulation_logits": len(self.modulations),
            "snr_mobility_logits": len(labels.snr_mobility),
            "snr_db": 2,
            "mobility_logits": len(self.mobility_classes),
            "log_doppler": 2,
        }
        for protocol in self.experts:
            expert = _Model(files.experts[protocol], "expert", options, providers, self.bundle)
            heads = _Model(files.heads[protocol], "heads", options, providers, self.bundle)
            expert.check_views(self.view_shapes)
            dim = expert.size("embedding", 1) or heads.size("embedding", 1)
            if dim is None:
                raise BundleError(f"{expert.path}: embedding size is not fixed in the expert nor its heads")
            expert.check("embedding", ("batch", dim))
            heads.check("embedding", ("batch", dim))
            for output in heads.output_names:
                heads.check(output, ("batch", widths[output]))
            unknown = set(self.bundle.calibration_of(protocol)) - set(CALIBRATED_HEADS[heads.kind])
            if unknown:
                raise BundleError(
                    f"{self.bundle.card_path}: calibration.{protocol} names {sorted(unknown)}, which "
                    f"{heads.path.name} does not give; its heads: {', '.join(CALIBRATED_HEADS[heads.kind])}"
                )
            self._experts[protocol], self._heads[protocol] = expert, heads
            dims[protocol] = dim
        if len(set(dims.values())) > 1:
            raise BundleError(
                f"{self.bundle.card_path}: experts give embeddings of different sizes {dims}; "
                "the readout's embedding needs one size"
            )
        self.embedding_dim = next(iter(dims.values()), 0)
        self._read = sorted({i for model in (self._router, *self._experts.values()) for i in model.views})
        self._may_be_absent = {self.view_names.index(name) for name in self.bundle.absent_views}
        self._past = {i for i in self._may_be_absent if view_registry.reads_past(self.bundle.views[i])}
        """The views of the past: a window that lacks one is too short for mobility."""

    @property
    def bundle_dir(self) -> Path:
        return self.bundle.path

    @property
    def head_classes(self) -> dict[str, list]:
        """The classes of each task's probabilities in a ModelOutput, by task (readout.TASKS)."""
        return {
            "protocol": self.router_classes,
            "modulation": self.modulations,
            "snr_db": self.snr_bins_db,
            "mobility": self.mobility_classes,
        }

    @property
    def past_reach_s(self) -> float:
        """Seconds before a window's start that its views read (views.past_reach_s): how long
        after an emission starts a window's mobility still reads the one before it."""
        return view_registry.past_reach_s(self.views, self.params.sample_rate_hz)

    @property
    def window_samples(self) -> int:
        """Analysis-rate samples one observation spans."""
        return self.params.window_samples

    def source_window_samples(self, sample_rate_hz: float) -> int:
        """Source-rate samples one observation spans (views.observation_span of the card's views)."""
        return view_registry.observation_span(self.views, sample_rate_hz)

    def _view_batches(self, model_input: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
        """The views of a batch, one (B, T, K) float32 array per card view; a card of one view
        takes its array alone."""
        if isinstance(model_input, np.ndarray) or not isinstance(model_input, Sequence):
            if len(self.views) != 1:
                raise ValueError(f"this bundle reads {len(self.views)} views {self.view_names}: give a list of them")
            model_input = [model_input]
        if len(model_input) != len(self.views):
            raise ValueError(f"this bundle reads {len(self.views)} views {self.view_names}, got {len(model_input)}")
        batches = [np.asarray(x, np.float32) for x in model_input]
        for name, shape, x in zip(self.view_names, self.view_shapes, batches):
            if x.ndim != 3 or x.shape[1:] != shape:
                raise ValueError(
                    f"view {name!r} must have shape (batch, {shape[0]}, {shape[1]}) for this bundle, got {x.shape}"
                )
            if len(x) != len(batches[0]):
                raise ValueError(f"views of {len(batches[0])} and {len(x)} windows: give each view of every window")
        return batches

    def _unread_reason(self, batches: list[np.ndarray], row: int, read: Sequence[int]) -> str:
        """Why window `row` is not fed the graphs that `read` those views: "too_short" when the
        views it lacks are wholly NaN (a view of the past the capture does not reach back to,
        which the graphs cannot do without) and another view is there, else "nan_or_inf"."""
        whole = [np.isfinite(batches[i][row]).all() for i in read]
        absent = [np.isnan(batches[i][row]).all() for i in read]
        if any(whole) and all(w or a for w, a in zip(whole, absent)):
            return "too_short"
        return "nan_or_inf"

    def _router_probabilities(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """(B, router classes): the calibrated router's probabilities, given its inputs (the card's
        views it reads, in the order of its graph's inputs)."""
        logits = self._router(*inputs)[0]
        return softmax(logits, self.bundle.calibration_of("router").get("protocol", 1.0))

    def routing(self, views: Sequence[Any] | None = None) -> ViewRouting | None:
        """What lets an ObservationFramer of `views` (default the card's; they must hold the
        card's) compute only the router's views and those of the expert it picks
        (framer.Routing); `predict` then takes the framed windows' `routes`. None when every
        view an expert reads is the router's too (today's G alone): routing would spare no view,
        and the router runs faster on a batch of windows."""
        router_views = set(self._router.views)
        if all(set(expert.views) <= router_views for expert in self._experts.values()):
            return None
        return ViewRouting(self, self.views if views is None else tuple(views))

    def predict(
        self, model_input: np.ndarray | Sequence[np.ndarray], routes: np.ndarray | None = None
    ) -> list[ModelOutput | InvalidWindow]:
        """The model's output for each window of a batch, given its views (one (B, T, K) array per
        card view, in the card's order; an array alone for a card of one view), with the chosen
        expert's embedding. `routes` (B, router classes), the router's probabilities of windows
        a routing framed (framer.FramedWindows.routes; NaN rows are routed here), spares running
        the router again; the views no chosen expert reads may then be NaN. A window whose views
        the router or its chosen expert read are not all finite is not fed: it is an
        InvalidWindow (`_unread_reason`)."""
        batches = self._view_batches(model_input)
        n_windows = len(batches[0])
        finite = {i: np.isfinite(batches[i]).all(axis=(1, 2)) for i in self._read}
        absent = {i: np.isnan(batches[i]).all(axis=(1, 2)) for i in self._may_be_absent & set(self._read)}

        def readable(read: Sequence[int]) -> np.ndarray:
            mask = np.ones(n_windows, bool)
            for i in read:
                mask &= finite[i] | absent[i] if i in absent else finite[i]
            return mask

        outputs: dict[int, ModelOutput | InvalidWindow] = {}
        routed = readable(self._router.views)
        for row in np.flatnonzero(~routed):
            outputs[int(row)] = InvalidWindow(self._unread_reason(batches, row, self._router.views))
        router_probs = np.full((n_windows, len(self.router_classes)), np.nan)
        if routes is not None:
            routes = np.asarray(routes, np.float64)
            if routes.shape != router_probs.shape:
                raise ValueError(
                    f"routes must have shape {router_probs.shape} (a row of {len(self.router_classes)} router "
                    f"probabilities per window), got {routes.shape}"
                )
            router_probs[:] = routes
        unrouted = np.flatnonzero(routed & ~np.isfinite(router_probs).all(axis=1))
        if len(unrouted):
            router_probs[unrouted] = self._router_probabilities([batches[i][unrouted] for i in self._router.views])
        top = np.where(routed, np.nan_to_num(router_probs).argmax(axis=-1), -1)
        expert_fields: dict[int, dict] = {}
        for protocol in self.experts:
            expert = self._experts[protocol]
            chosen = np.flatnonzero(top == self.router_classes.index(protocol))
            fed = readable(expert.views)[chosen]
            for row in chosen[~fed]:
                outputs[int(row)] = InvalidWindow(
                    self._unread_reason(batches, row, [*self._router.views, *expert.views])
                )
            chosen = chosen[fed]
            if not len(chosen):
                continue
            embeddings = expert(*(batches[i][chosen] for i in expert.views))[0]
            heads = self._heads[protocol]
            tasks = self._task_fields(heads.kind, heads(embeddings), self.bundle.calibration_of(protocol))
            lacking = np.zeros(len(chosen), bool)
            for i in set(expert.views) & set(absent) & self._past:
                lacking |= absent[i][chosen]
            for row, embedding, task, too_short in zip(chosen, embeddings, tasks, lacking):
                if too_short:
                    task.update(
                        mobility=None,
                        mobility_confidence=None,
                        doppler_hz=None,
                        log_doppler=None,
                        mobility_status="needs_longer_capture",
                    )
                    del task["probabilities"]["mobility"]
                expert_fields[int(row)] = {**task, "expert": protocol, "embedding": embedding}
        for row in np.flatnonzero(routed):
            if int(row) in outputs:
                continue
            cls = top[row]
            fields = expert_fields.get(int(row), {})
            outputs[int(row)] = ModelOutput(
                protocol=self.router_classes[cls],
                protocol_confidence=float(router_probs[row, cls]),
                **{key: value for key, value in fields.items() if key != "probabilities"},
                probabilities={"protocol": router_probs[row], **fields.get("probabilities", {})},
            )
        return [outputs[row] for row in range(n_windows)]

    def _task_fields(self, kind: str, outputs: list[np.ndarray], calibration: Mapping[str, float]) -> list[dict]:
        """The readout's task fields of each row from a heads graph's outputs (`kind`: HEADS_KINDS),
        with its head probabilities, under the graph's `calibration` (bundle.CALIBRATED_HEADS)."""
        probabilities: dict[str, np.ndarray] = {}
        sigma: np.ndarray | None = None
        log_doppler: list[tuple[float, float] | None] = []
        if kind == "heads":
            modulation_logits, joint_logits = outputs
            joint_probs = softmax(joint_logits, calibration.get("snr_mobility", 1.0))
            probabilities["snr_db"] = snr_probs = joint_probs @ self._joint_to_snr
            snr_bin = snr_probs.argmax(axis=-1)
            snr_db = [self.snr_bins_db[b] for b in snr_bin]
            snr_confidences = snr_probs[np.arange(len(snr_bin)), snr_bin]
            mobility_probs = joint_probs @ self._joint_to_mobility
            log_doppler = [None] * len(joint_probs)
        else:
            modulation_logits, snr, mobility_logits, doppler = outputs
            # The head's Gaussian over log10(1 + fD): its mean in column 0, its log variance in 1.
            doppler_hz = [doppler_hz_of(value) for value in doppler[:, 0]]
            log_doppler = [(float(mean), float(np.exp(0.5 * log_var))) for mean, log_var in doppler.astype(np.float64)]
            snr_db = [round(float(mean), 1) for mean in snr[:, 0]]
            sigma = np.exp(0.5 * snr[:, 1].astype(np.float64)) * calibration.get("snr_db", 1.0)
            snr_confidences = [snr_confidence(float(s), self.snr_half_bin_db) for s in sigma]
            mobility_probs = softmax(mobility_logits, calibration.get("mobility", 1.0))
        probabilities["modulation"] = modulation_probs = softmax(modulation_logits, calibration.get("modulation", 1.0))
        probabilities["mobility"] = mobility_probs
        modulation = modulation_probs.argmax(axis=-1)
        mobility = mobility_probs.argmax(axis=-1)
        return [
            {
                "modulation": self.modulations[modulation[i]],
                "modulation_confidence": float(modulation_probs[i, modulation[i]]),
                "snr_db": snr_db[i],
                "snr_confidence": float(snr_confidences[i]),
                "snr_sigma_db": None if sigma is None else float(sigma[i]),
                "mobility": self.mobility_classes[mobility[i]],
                "mobility_confidence": float(mobility_probs[i, mobility[i]]),
                "doppler_hz": None if kind == "heads" else doppler_hz[i],
                "log_doppler": log_doppler[i],
                "probabilities": {task: p[i] for task, p in probabilities.items()},
            }
            for i in range(len(modulation))
        ]

    def classify(
        self,
        model_input: np.ndarray | Sequence[np.ndarray],
        *,
        window_starts: Sequence[int] | None = None,
        rx_times: Sequence[float | None] | None = None,
    ) -> list[dict]:
        """Readouts for a batch of windows given by their views (as `predict` takes them),
        stamped with their window starts and rx_times (default 0 and None); `latency_ms` is
        the time the whole batch took."""
        clock = time.perf_counter()
        n = len(self._view_batches(model_input)[0])
        starts = [0] * n if window_starts is None else [int(s) for s in window_starts]
        times = [None] * n if rx_times is None else list(rx_times)
        if len(starts) != n or len(times) != n:
            raise ValueError(f"{n} windows but {len(starts)} window_starts and {len(times)} rx_times")
        outputs = self.predict(model_input)
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
        tracker: Tracker | None = None,
        uncertain_below: Thresholds = 0.0,
    ) -> Iterator[dict]:
        """Yield one readout per observation of raw I/Q at `sample_rate_hz`.

        `iq` is anything with len() and [a:b] slicing (an array, a memory map, a file reader),
        read one batch of observations at a time and framed by lwmspectro.framer: observations
        start every `stride` source samples (default: back to back), windows that cannot be
        judged yield an invalid readout and never reach the model (the views of a window run in
        one thread per core, and only those of the router and the expert it picks: `routing`).
        `window_start` is in source samples plus `start_offset`; `latency_ms` is the time the
        window's batch took from reading to the model's output. Input too short for one
        observation yields a single `too_short` readout. Counters count this call's windows. A
        `tracker` (lwmspectro.tracking) takes the windows in order and each readout carries its
        tracked values; `uncertain_below` marks values (readout.uncertain_thresholds).
        """
        thresholds = uncertain_thresholds(uncertain_below)
        framer = ObservationFramer(self.views, sample_rate_hz, stride, parallel=True, routing=self.routing())
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
            valid = windows.valid
            routes = None if windows.routes is None else windows.routes[valid]
            predicted = iter(self.predict([view[valid] for view in windows.views], routes))
            outputs = [
                next(predicted) if reason is None else InvalidWindow(reason) for reason in windows.invalid_reasons
            ]
            latency_ms = (time.perf_counter() - clock) * 1e3
            for start, output, power_db in zip(windows.starts, outputs, windows.power_db):
                counters["windows_seen"] += 1
                counters["windows_classified" if isinstance(output, ModelOutput) else "windows_dropped"] += 1
                window_start = start_offset + int(start)
                tracked = None if tracker is None else tracker.update(output, window_start / sample_rate_hz, power_db)
                yield build_readout(
                    output,
                    window_start=window_start,
                    latency_ms=latency_ms,
                    counters=counters,
                    tracked=tracked,
                    uncertain_below=thresholds,
                )
