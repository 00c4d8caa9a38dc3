"""Held-out metrics of a trained run: its deployed path (router -> top-1 expert -> heads)
scored on the held-out test split, overall and per SNR (what `lwmspectro-train heldout`
writes and the bundle's card reports). Not to be confused with `baseline_comparison`, the
few-shot study of the pretrained experts against CNN baselines.

What the card reports and the issue's targets are stated in: protocol (router)
accuracy, modulation macro-F1, joint SNR x mobility macro-F1, and the recall of
noise-only input as `none`; with separate heads also the SNR's absolute error in dB
(median, 90th percentile), the mobility accuracy and the error of log10(1 + fD), the joint
SNR x mobility class then read from the SNR's nearest bin and the mobility class. Task
predictions come from the expert the router chose, so a protocol sample routed to
`none`/`other` counts as wrong on every class task and has no SNR or Doppler estimate
(`snr_estimated_share` says how many have one). The target figures are also given per protocol
(modulation) and per slice of the capture chain and channel the rows went through
(`capture_slices`: centred, 20 MS/s band-limited, off centre, each channel model, noise alone at
each source rate).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import confusion_matrix
from torch.utils.data import DataLoader
from tqdm import tqdm

from lwmspectro import labels
from lwmspectro.capture import passband_width_hz

from .data import TARGETS as TARGET_NAMES
from .data import SpectrogramSet, batch_views
from .metrics import macro_f1
from .model import WIDEBAND, MixtureOfExperts

TARGETS = {
    "router_accuracy_snr_ge_0": 0.98,
    "modulation_macro_f1_snr_ge_15": 0.90,
    "snr_mobility_macro_f1": 0.80,
    "none_recall": 0.98,
    "signal_as_none_snr_ge_0": 0.01,
}
"""The targets of the shipped `small` bundle on the held-out site, per window."""
SEPARATE_TARGETS = {
    "snr_abs_error_median_db": 1.5,
    "snr_abs_error_p90_db": 4.0,
    "mobility_accuracy_snr_ge_10": 0.85,
}
"""The targets of the figures only separate heads give."""
PER_PROTOCOL_TARGET = "modulation_macro_f1_snr_ge_15"
"""The target also met by each expert's protocol alone (`modulation_macro_f1_snr_ge_15_<protocol>`)."""
PER_PROTOCOL_SEPARATE_TARGET = "mobility_accuracy_snr_ge_10"
"""The separate heads' target also reported per protocol (`mobility_accuracy_snr_ge_10_<protocol>`)."""
LOWER_IS_BETTER = ("snr_abs_error_median_db", "snr_abs_error_p90_db", "signal_as_none_snr_ge_0")


@torch.no_grad()
def model_outputs(
    moe: MixtureOfExperts,
    dataset: SpectrogramSet,
    batch_size: int = 128,
    workers: int = 0,
    device="cpu",
    progress: bool = True,
    desc: str = "heldout",
    by_truth: bool = False,
) -> dict[str, np.ndarray]:
    """What the deployed path gives per row: router_logits, top1 (ROUTER_CLASSES index), expert
    (index in moe.expert_names, -1 where the router chose none), each heads output of
    moe.output_widths (NaN without an expert) and needs_longer_capture. The one pass over a
    dataset that `predictions_from` and calibration (lwmspectro_train.calibrate) read. `by_truth` routes
    each row by its labelled protocol instead of the router's choice."""
    moe = moe.to(device).eval()
    names = ["router_logits", "top1", "expert", *moe.output_widths, "needs_longer_capture"]
    out: dict[str, list] = {name: [] for name in names}
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, dynamic_ncols=True):
        protocol = batch["protocol"].to(device) if by_truth else None
        result = moe({name: x.to(device) for name, x in batch_views(batch).items()}, protocol=protocol)
        for name in names:
            out[name].append(result[name].float().cpu() if result[name].is_floating_point() else result[name].cpu())
    return {k: torch.cat(v).numpy() if v else np.zeros(0, np.int64) for k, v in out.items()}


@torch.no_grad()
def router_logits(
    moe: MixtureOfExperts, dataset: SpectrogramSet, batch_size: int = 128, workers: int = 0, progress: bool = True
) -> np.ndarray:
    """The router's logits per row of `dataset` (which needs only the router's views)."""
    moe = moe.eval()
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    logits = [
        moe.router.classify(batch_views(batch)).float()
        for batch in tqdm(loader, desc="router", unit="batch", disable=not progress, dynamic_ncols=True)
    ]
    return torch.cat(logits).numpy() if logits else np.zeros((0, len(labels.ROUTER_CLASSES)), np.float32)


def predictions_from(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Top-1 predictions per row of model_outputs: protocol (ROUTER_CLASSES index), modulation and
    SNR x mobility (-1 where the router chose no expert); with separate heads also snr_db and
    log_doppler (the means; NaN without an expert), mobility (-1 without) and
    needs_longer_capture, the joint class then from the SNR's nearest bin and the mobility."""
    routed = outputs["expert"] >= 0
    predictions = {"protocol": outputs["top1"], "modulation": _chosen(outputs["modulation_logits"], routed)}
    if "snr_db" not in outputs:
        return predictions | {"snr_mobility": _chosen(outputs["snr_mobility_logits"], routed)}
    snr, mobility = outputs["snr_db"][:, 0], _chosen(outputs["mobility_logits"], routed)
    snr_bin = np.asarray(labels.snr_bin_index(np.nan_to_num(snr, nan=0.0))).reshape(-1)
    joint = snr_bin * len(labels.MOBILITY_CLASSES) + mobility
    return predictions | {
        "snr_mobility": np.where(routed, joint, -1),
        "snr_db": snr,
        "mobility": mobility,
        "log_doppler": outputs["log_doppler"][:, 0],
        "needs_longer_capture": outputs["needs_longer_capture"],
    }


def _chosen(logits: np.ndarray, routed: np.ndarray) -> np.ndarray:
    """The arg-max class of each routed row, -1 for the others."""
    return np.where(routed, np.nan_to_num(logits, nan=0.0).argmax(-1), -1)


def _macro_f1_present(truth: np.ndarray, predicted: np.ndarray) -> float | None:
    """Macro-F1 over the classes present in `truth` (None without samples): a held-out
    subset, such as one SNR bin, need not hold every class."""
    return macro_f1(truth, predicted, np.unique(truth)) if len(truth) else None


def _summary(targets: dict, predictions: dict, rows: np.ndarray) -> dict:
    tasks = rows & (targets["modulation"] >= 0)
    joint = rows & (targets["snr_mobility"] >= 0)
    summary = {
        "n": int(rows.sum()),
        "router_accuracy": float(np.mean(predictions["protocol"][rows] == targets["protocol"][rows]))
        if rows.any()
        else None,
        "modulation_macro_f1": _macro_f1_present(targets["modulation"][tasks], predictions["modulation"][tasks]),
        "snr_mobility_macro_f1": _macro_f1_present(targets["snr_mobility"][joint], predictions["snr_mobility"][joint]),
    }
    if "snr_db" in predictions:
        summary |= _separate_summary(targets, predictions, rows & (targets["modulation"] >= 0))
    return summary


def _separate_summary(targets: dict, predictions: dict, rows: np.ndarray) -> dict:
    """The figures of separate heads over the protocol rows `rows`."""
    true_snr, snr = targets["snr_db"], predictions["snr_db"]
    has_snr = rows & ~np.isnan(true_snr)
    estimated = has_snr & ~np.isnan(snr)
    error = np.abs(snr[estimated] - true_snr[estimated])
    mobile = rows & (targets["mobility"] >= 0)
    seen = mobile & ~predictions["needs_longer_capture"].astype(bool)
    has_doppler = seen & ~np.isnan(targets["log_doppler"]) & ~np.isnan(predictions["log_doppler"])
    doppler_error = np.abs(predictions["log_doppler"][has_doppler] - targets["log_doppler"][has_doppler])
    return {
        "snr_abs_error_median_db": float(np.median(error)) if len(error) else None,
        "snr_abs_error_p90_db": float(np.percentile(error, 90)) if len(error) else None,
        "snr_estimated_share": float(estimated.sum() / has_snr.sum()) if has_snr.any() else None,
        "mobility_accuracy": float(np.mean(predictions["mobility"][mobile] == targets["mobility"][mobile]))
        if mobile.any()
        else None,
        "mobility_macro_f1": _macro_f1_present(targets["mobility"][mobile], predictions["mobility"][mobile]),
        "log_doppler_abs_error_median": float(np.median(doppler_error)) if len(doppler_error) else None,
    }


def _recall(targets: dict, predictions: dict, name: str, rows: np.ndarray | None = None) -> float | None:
    rows = (targets["protocol"] == labels.ROUTER_CLASSES.index(name)) & (True if rows is None else rows)
    return float(np.mean(predictions["protocol"][rows] == targets["protocol"][rows])) if rows.any() else None


def _snr_bins(targets: dict) -> np.ndarray:
    """Each row's SNR grid bin (NaN without an SNR)."""
    snr = targets["snr_db"]
    has_snr = ~np.isnan(snr)
    snr_bin = np.full(len(snr), np.nan)
    snr_bin[has_snr] = labels.nearest_snr_bin(snr[has_snr], np.asarray(labels.SNR_GRID_DB, float))
    return snr_bin


def _headline(targets: dict, predictions: dict, rows: np.ndarray, snr_bin: np.ndarray) -> dict:
    """The target figures over `rows` (`snr_bin`: _snr_bins of the targets)."""
    has_snr = ~np.isnan(snr_bin)
    signal = rows & has_snr & (snr_bin >= 0)
    none = labels.ROUTER_CLASSES.index("none")
    high = rows & has_snr & (snr_bin >= 15)
    overall = _summary(targets, predictions, rows)
    figures = {
        "router_accuracy_snr_ge_0": _summary(targets, predictions, signal)["router_accuracy"],
        "modulation_macro_f1_snr_ge_15": _summary(targets, predictions, high)["modulation_macro_f1"],
        "snr_mobility_macro_f1": overall["snr_mobility_macro_f1"],
        "none_recall": _recall(targets, predictions, "none", rows),
        "signal_as_none_snr_ge_0": float(np.mean(predictions["protocol"][signal] == none)) if signal.any() else None,
    }
    for protocol in labels.PROTOCOLS:
        own = high & (targets["protocol"] == labels.ROUTER_CLASSES.index(protocol))
        figures[f"{PER_PROTOCOL_TARGET}_{protocol}"] = _summary(targets, predictions, own)["modulation_macro_f1"]
    if "snr_db" in predictions:
        moving = rows & has_snr & (snr_bin >= 10)
        figures |= {
            "snr_abs_error_median_db": overall["snr_abs_error_median_db"],
            "snr_abs_error_p90_db": overall["snr_abs_error_p90_db"],
            PER_PROTOCOL_SEPARATE_TARGET: _summary(targets, predictions, moving)["mobility_accuracy"],
        }
        for protocol in labels.PROTOCOLS:
            own = moving & (targets["protocol"] == labels.ROUTER_CLASSES.index(protocol))
            figures[f"{PER_PROTOCOL_SEPARATE_TARGET}_{protocol}"] = _summary(targets, predictions, own)[
                "mobility_accuracy"
            ]
    return figures


def capture_slices(rows: list[dict]) -> dict[str, np.ndarray]:
    """Masks of the held-out rows by the capture chain and channel they went through (the row's
    `capture` and `channel` labels): centred at the analysis rate, band-limited at 20 MS/s, off
    centre by more than 1 MHz, a capture whose passband keeps all or only part of the signal's
    occupied band (a narrow capture shows a share of the subcarriers, and the modulation fewer
    elements; the widths decide, since a capture tunes a band that fits wholly inside), each
    channel model, and noise alone at each source rate."""
    capture = [row.get("capture") or {} for row in rows]
    rate = np.array([c.get("source_rate_hz", np.nan) for c in capture], float)
    offset = np.array([abs(c.get("offset_hz", 0.0)) for c in capture], float)
    passband = passband_width_hz(rate, np.array([c.get("passband_fraction", np.nan) for c in capture], float))
    occupied = np.array([row.get("occupied_bw_hz") or np.nan for row in rows], float)
    protocol = np.array([row.get("protocol") for row in rows])
    channel = np.array([row.get("channel") or "" for row in rows])
    slices = {
        "centred_30.72_msps": np.isnan(rate),
        "captured_20_msps": rate == 20e6,
        "off_centre_over_1_mhz": offset > 1e6,
        "capture_keeps_whole_band": passband >= occupied,
        "capture_keeps_part_of_band": passband < occupied,
    }
    slices |= {f"channel_{name}": channel == name for name in sorted(set(channel) - {""})}
    noise = (protocol == "none") & np.isfinite(rate)
    for source_rate in np.unique(rate[noise]):
        slices[f"noise_{source_rate / 1e6:g}_msps"] = noise & (rate == source_rate)
    return slices


def metrics_from_predictions(targets: dict, predictions: dict, rows: list[dict] | None = None) -> dict:
    """Overall and per-SNR-bin metrics, the issue's target figures (also per protocol), the router
    confusion, and with the label `rows` the target figures per capture and channel slice.

    `targets` as data.encode_labels gives them; `predictions` as `predictions_from` returns."""
    n = len(targets["protocol"])
    snr_bin = _snr_bins(targets)
    everything = np.ones(n, bool)
    per_snr = {
        f"{b:g}": _summary(targets, predictions, snr_bin == b) for b in labels.SNR_GRID_DB if np.any(snr_bin == b)
    }
    classes = list(range(len(labels.ROUTER_CLASSES)))
    overall = _summary(targets, predictions, everything)
    figures = _headline(targets, predictions, everything, snr_bin)
    targets_met = dict(TARGETS) | {f"{PER_PROTOCOL_TARGET}_{p}": TARGETS[PER_PROTOCOL_TARGET] for p in labels.PROTOCOLS}
    if "snr_db" in predictions:
        targets_met |= SEPARATE_TARGETS | {
            f"{PER_PROTOCOL_SEPARATE_TARGET}_{p}": SEPARATE_TARGETS[PER_PROTOCOL_SEPARATE_TARGET]
            for p in labels.PROTOCOLS
        }
    result = {
        "overall": {
            **overall,
            "none_recall": figures["none_recall"],
            "other_recall": _recall(targets, predictions, "other"),
        },
        "per_snr_db": per_snr,
        "targets": {key: _target(key, value, targets_met[key]) for key, value in figures.items()},
        "router_confusion": {
            "labels": list(labels.ROUTER_CLASSES),
            "matrix": confusion_matrix(targets["protocol"], predictions["protocol"], labels=classes).tolist(),
        },
    }
    if rows is not None:
        result["slices"] = {
            name: {"n": int(mask.sum()), **_headline(targets, predictions, mask, snr_bin)}
            for name, mask in capture_slices(rows).items()
            if mask.any()
        }
    return result


def _target(key: str, value: float | None, target: float) -> dict:
    met = None if value is None else bool(value <= target if key in LOWER_IS_BETTER else value >= target)
    return {"value": value, "target": target, "met": met}


def heldout_metrics(
    moe: MixtureOfExperts, folder, batch_size: int = 128, workers: int = 0, device="cpu", progress: bool = True
) -> dict:
    """Metrics of `moe` on the dataset folder `folder` (the held-out scenario)."""
    dataset = SpectrogramSet(folder, views=[name for name in moe.view_names if name != WIDEBAND])
    return metrics_of(dataset, model_outputs(moe, dataset, batch_size, workers, device, progress))


def metrics_of(dataset: SpectrogramSet, outputs: dict[str, np.ndarray]) -> dict:
    """heldout_metrics from the model_outputs already computed on `dataset`."""
    targets = {name: dataset.target(name) for name in TARGET_NAMES}
    return {
        "dataset": str(dataset.folder),
        "count": len(dataset),
        "generator_config": dataset.manifest.get("config"),
        **metrics_from_predictions(targets, predictions_from(outputs), dataset.label_rows()),
    }
