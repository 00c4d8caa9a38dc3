"""Confidences that mean what they say: each head of the deployed model calibrated on the
validation split, for the card's ``calibration`` (lwmspectro.bundle) that the runtime applies.

A classification head gets a temperature T (its logits divided by T before the softmax), fitted by
minimising the negative log-likelihood of the validation labels; the Gaussian SNR head a factor on
its standard deviation, fitted by the log loss of the event its confidence states
(fit_sigma_scale). Each is one number per head, so it cannot change an arg-max nor overfit a
validation split of a few hundred rows. The expected calibration
error (ECE_BINS equal-width bins of the top-1 confidence) is reported before and after, and a
reliability diagram drawn.

Each head is calibrated on the rows it reads in deployment: the router on every row, an expert's
heads on the rows the router sends to that expert and that carry the head's label (a window of
another protocol sent there included: the readout shows its confidence too), mobility not on rows
whose capture is too short for it. A classification head's confidence is its top-1 probability,
right when the class is; the Gaussian SNR head's is the probability that the SNR lies within half
an SNR bin of the estimate (readout.snr_confidence), right when the true SNR does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from lwmspectro import labels
from lwmspectro.bundle import Bundle
from lwmspectro.readout import snr_confidence, snr_half_bin_db
from lwmspectro.runtime import softmax

from .data import TARGETS, SpectrogramSet
from .heldout import model_outputs, router_logits
from .model import MixtureOfExperts

ECE_BINS = 15
MIN_ROWS = 10
"""A head with fewer labelled validation rows keeps its logits: too few to fit even one number."""
TEMPERATURE_RANGE = (0.05, 20.0)
"""The temperatures searched: from sharpening twenty-fold to flattening twenty-fold."""
HALF_BIN_DB = snr_half_bin_db(labels.SNR_GRID_DB)


@dataclass(frozen=True)
class HeadRows:
    """One head's outputs and labels on the rows it is calibrated on."""

    graph: str
    """``router`` or the expert whose heads graph it is (the card's calibration keys)."""
    head: str
    """The task it reads (bundle.CALIBRATED_HEADS): ``snr_db`` for the Gaussian SNR head."""
    outputs: np.ndarray
    """(n, classes) logits, or (n, 2) mean and log variance in dB of the Gaussian SNR head."""
    truth: np.ndarray
    """Class indices, or the true SNR in dB."""

    @property
    def gaussian(self) -> bool:
        return self.head == "snr_db"

    def judged(self, value: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(confidence, right) of each row under temperature (or, for the SNR, sigma scale) `value`."""
        if self.gaussian:
            mean, sigma = self.outputs[:, 0], np.exp(0.5 * self.outputs[:, 1].astype(np.float64)) * value
            confidence = np.array([snr_confidence(float(s), HALF_BIN_DB) for s in sigma])
            return confidence, np.abs(self.truth - mean) < HALF_BIN_DB
        probabilities = softmax(self.outputs, value)
        return probabilities.max(axis=-1), probabilities.argmax(axis=-1) == self.truth

    def fit(self) -> float:
        """The temperature (sigma scale) of least negative log-likelihood."""
        if self.gaussian:
            return fit_sigma_scale(self.outputs[:, 0], self.outputs[:, 1], self.truth)
        return fit_temperature(self.outputs, self.truth)


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature T in TEMPERATURE_RANGE minimising the mean negative log-likelihood of the
    classes `truth` under softmax(logits / T)."""
    logits = np.asarray(logits, np.float64)
    chosen = logits[np.arange(len(truth)), truth]

    def nll(log_t: float) -> float:
        t = math.exp(log_t)
        return float(np.mean(logsumexp(logits / t, axis=-1) - chosen / t))

    low, high = TEMPERATURE_RANGE
    return float(math.exp(minimize_scalar(nll, bounds=(math.log(low), math.log(high)), method="bounded").x))


def fit_sigma_scale(
    mean: np.ndarray, log_variance: np.ndarray, truth: np.ndarray, half_bin_db: float = HALF_BIN_DB
) -> float:
    """The factor s on a Gaussian head's standard deviation that makes its readout confidence
    (readout.snr_confidence: the probability that the SNR lies within `half_bin_db` of the
    estimate) best foretell whether the true SNR does, by the least log loss of that event.

    Not the Gaussian likelihood of `truth`: that is ruled by the few windows whose error is many
    standard deviations (a window cut by a capture's band edge, a burst's gap), and the scale it
    fits leaves every other window's confidence too low."""
    sigma = np.exp(0.5 * np.asarray(log_variance, np.float64))
    within = np.abs(np.asarray(truth, np.float64) - mean) < half_bin_db
    eps = 1e-9

    def log_loss(log_s: float) -> float:
        scale = math.exp(log_s)
        confidence = np.array([snr_confidence(float(s) * scale, half_bin_db) for s in sigma])
        confidence = np.clip(confidence, eps, 1 - eps)
        return float(-np.mean(np.where(within, np.log(confidence), np.log1p(-confidence))))

    low, high = TEMPERATURE_RANGE
    return float(math.exp(minimize_scalar(log_loss, bounds=(math.log(low), math.log(high)), method="bounded").x))


def reliability(confidence: np.ndarray, right: np.ndarray, bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Per equal-width confidence bin: rows, mean confidence and accuracy (NaN in an empty bin)."""
    index = np.minimum((np.asarray(confidence) * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(index, weights=np.asarray(right, float), minlength=bins) / counts
    return {"count": counts, "confidence": mean_confidence, "accuracy": accuracy}


def expected_calibration_error(confidence: np.ndarray, right: np.ndarray, bins: int = ECE_BINS) -> float:
    """The rows' mean gap between confidence and accuracy, bin by bin (ECE, `bins` equal-width
    bins of the top-1 confidence)."""
    table = reliability(confidence, right, bins)
    filled = table["count"] > 0
    gaps = np.abs(table["accuracy"][filled] - table["confidence"][filled])
    return float(np.sum(table["count"][filled] * gaps) / max(len(confidence), 1))


def head_rows(
    outputs: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray], experts: Sequence[str]
) -> list[HeadRows]:
    """Each head's calibration rows (see the module docstring) from `outputs` as
    heldout.model_outputs gives them and `truth` as data.encode_labels does."""
    heads = [HeadRows("router", "protocol", outputs["router_logits"], truth["protocol"])]
    too_short = outputs["needs_longer_capture"].astype(bool)
    for index, expert in enumerate(experts):
        routed = outputs["expert"] == index
        for head in ("modulation", "snr_mobility", "mobility"):
            if f"{head}_logits" in outputs:
                rows = routed & (truth[head] >= 0) & (~too_short if head == "mobility" else True)
                heads.append(HeadRows(expert, head, outputs[f"{head}_logits"][rows], truth[head][rows]))
        if "snr_db" in outputs:
            rows = routed & ~np.isnan(truth["snr_db"])
            heads.append(HeadRows(expert, "snr_db", outputs["snr_db"][rows], truth["snr_db"][rows]))
    return heads


def calibrate(heads: Sequence[HeadRows]) -> tuple[dict[str, dict[str, float]], dict]:
    """The card's ``calibration`` fitted on `heads`, and the report for its metrics: per graph
    and head the rows, the fitted value and the ECE before and after; heads with fewer than
    MIN_ROWS rows keep their logits and are listed apart."""
    calibration: dict[str, dict[str, float]] = {}
    report: dict[str, dict] = {}
    too_few: dict[str, int] = {}
    for head in heads:
        if len(head.truth) < MIN_ROWS:
            too_few[f"{head.graph}.{head.head}"] = len(head.truth)
            continue
        value = head.fit()
        calibration.setdefault(head.graph, {})[head.head] = value
        report.setdefault(head.graph, {})[head.head] = {
            "rows": len(head.truth),
            "temperature" if not head.gaussian else "sigma_scale": value,
            "ece_before": expected_calibration_error(*head.judged()),
            "ece_after": expected_calibration_error(*head.judged(value)),
        }
    return calibration, {"split": "validation", "bins": ECE_BINS, "heads": report, "too_few_rows": too_few}


SELECTIVE_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
"""The confidence thresholds the card reports selective accuracy at (`--uncertain-below`)."""


def selective_accuracy(
    heads: Sequence[HeadRows],
    calibration: Mapping[str, Mapping[str, float]],
    thresholds: Sequence[float] = SELECTIVE_THRESHOLDS,
) -> dict:
    """What a confidence threshold buys, per graph and head: at each of `thresholds`, the share
    of the head's rows whose calibrated confidence reaches it (`coverage`: the values a readout
    with `--uncertain-below` at that threshold states rather than marks uncertain) and the
    accuracy among them (None where none does)."""
    report: dict[str, dict] = {}
    for head in heads:
        if not len(head.truth):
            continue
        confidence, right = head.judged(calibration.get(head.graph, {}).get(head.head, 1.0))
        kept = [confidence >= threshold for threshold in thresholds]
        report.setdefault(head.graph, {})[head.head] = {
            "rows": len(head.truth),
            "coverage": [float(np.mean(mask)) for mask in kept],
            "accuracy": [float(np.mean(right[mask])) if mask.any() else None for mask in kept],
        }
    return {"thresholds": list(thresholds), "heads": report}


def selective_accuracy_on(
    dataset: SpectrogramSet,
    outputs: Mapping[str, np.ndarray],
    expert_names: Sequence[str],
    calibration: Mapping[str, Mapping[str, float]],
    thresholds: Sequence[float] = SELECTIVE_THRESHOLDS,
) -> dict:
    """selective_accuracy on `dataset` of the heads whose heldout.model_outputs (each row through
    the expert the router chose, as in deployment) are `outputs`, calibrated by `calibration`."""
    truth = {name: dataset.target(name) for name in TARGETS}
    heads = head_rows(outputs, truth, expert_names)
    return {"dataset": str(dataset.folder), **selective_accuracy(heads, calibration, thresholds)}


def reliability_diagram(heads: Sequence[HeadRows], calibration: Mapping[str, Mapping[str, float]], path: Path) -> Path:
    """A PNG of one panel per calibrated head: accuracy against confidence per bin, before and
    after calibration, beside the diagonal a calibrated head follows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [h for h in heads if h.head in calibration.get(h.graph, {})]
    columns = min(4, max(len(shown), 1))
    rows = max(1, -(-len(shown) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.2 * rows), squeeze=False)
    centres = (np.arange(ECE_BINS) + 0.5) / ECE_BINS
    for ax in axes.flat[len(shown) :]:
        ax.axis("off")
    for ax, head in zip(axes.flat, shown):
        value = calibration[head.graph][head.head]
        ece = []
        width = 1 / ECE_BINS
        for shift, label, judged, colour in (
            (-0.25, "before", head.judged(), "darkgray"),
            (0.25, "after", head.judged(value), "tab:blue"),
        ):
            table = reliability(*judged)
            bars = np.nan_to_num(table["accuracy"])
            ax.bar(centres + shift * width, bars, width=width / 2, color=colour, label=label)
            ece.append(expected_calibration_error(*judged))
        ax.plot([0, 1], [0, 1], color="black", linewidth=0.8)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
        ax.set_title(f"{head.graph} {head.head}: ECE {ece[0]:.3f} -> {ece[1]:.3f}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    figure.suptitle(f"Reliability on the validation split ({ECE_BINS} bins)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def calibrate_model(
    moe: MixtureOfExperts,
    dataset: SpectrogramSet,
    figure: Path,
    batch_size: int = 128,
    workers: int = 0,
    progress: bool = True,
    router_dataset: SpectrogramSet | None = None,
    router_from: Bundle | None = None,
) -> tuple[dict[str, dict[str, float]], dict]:
    """Calibrate `moe` on `dataset` (the validation split): the card's ``calibration`` and its
    metrics report; the reliability diagram is written to `figure`. With a `router_dataset`
    (the router's own validation split, data.router) the router is calibrated on it and the
    heads on `dataset`, each row routed by its labelled protocol (`dataset` need not hold the
    router's views). With `router_from` (the bundle the router was taken from, unchanged) the
    router keeps that bundle's calibration and report, and the heads are calibrated the same way."""
    truth = {name: dataset.target(name) for name in TARGETS}
    if router_from is not None:
        outputs = model_outputs(moe, dataset, batch_size, workers, progress=progress, desc="calibration", by_truth=True)
        heads = head_rows(outputs, truth, moe.expert_names)[1:]
        calibration, report = calibrate(heads)
        reliability_diagram(heads, calibration, figure)
        taken = router_from.card.get("metrics", {}).get("calibration", {}).get("heads", {}).get("router")
        calibration = {"router": dict(router_from.calibration_of("router")), **calibration}
        report["heads"] = {**({"router": taken} if taken else {}), **report["heads"]}
        report["router_from"] = router_from.name
        return calibration, report
    if router_dataset is None:
        outputs = model_outputs(moe, dataset, batch_size, workers, progress=progress, desc="calibration")
        heads = head_rows(outputs, truth, moe.expert_names)
    else:
        outputs = model_outputs(moe, dataset, batch_size, workers, progress=progress, desc="calibration", by_truth=True)
        logits = router_logits(moe, router_dataset, batch_size, workers, progress)
        router = HeadRows("router", "protocol", logits, router_dataset.target("protocol"))
        heads = [router, *head_rows(outputs, truth, moe.expert_names)[1:]]
    calibration, report = calibrate(heads)
    reliability_diagram(heads, calibration, figure)
    return calibration, report
