"""Held-out metrics of a trained run: its deployed path (router -> top-1 expert -> heads)
scored on the held-out test split, overall and per SNR (what `lwmspectro-train heldout`
writes and the bundle's card reports). Not to be confused with `baseline_comparison`, the
few-shot study of the pretrained experts against CNN baselines.

What the card reports and the issue's targets are stated in: protocol (router)
accuracy, modulation macro-F1, joint SNR x mobility macro-F1, and the recall of
noise-only input as `none`. Task predictions come from the expert the router chose,
so a protocol sample routed to `none`/`other` counts as wrong on every task.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import confusion_matrix
from torch.utils.data import DataLoader
from tqdm import tqdm

from lwmspectro import labels

from .data import SpectrogramSet
from .metrics import macro_f1
from .model import MixtureOfExperts

TARGETS = {
    "router_accuracy_snr_ge_0": 0.98,
    "modulation_macro_f1_snr_ge_15": 0.85,
    "snr_mobility_macro_f1": 0.80,
    "none_recall": 0.95,
}
"""The issue's targets for the shipped `small` bundle on the held-out site."""


@torch.no_grad()
def predict(
    moe: MixtureOfExperts,
    dataset: SpectrogramSet,
    batch_size: int = 128,
    workers: int = 0,
    device="cpu",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Top-1 predictions per row: protocol (ROUTER_CLASSES index), modulation and SNR x
    mobility (-1 where the router chose no expert)."""
    moe = moe.to(device).eval()
    out = {"protocol": [], "modulation": [], "snr_mobility": []}
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    for batch in tqdm(loader, desc="heldout", unit="batch", disable=not progress, dynamic_ncols=True):
        result = moe(batch["spectrogram"].to(device))
        routed = result["expert"] >= 0
        out["protocol"].append(result["top1"].cpu())
        for task in ("modulation", "snr_mobility"):
            logits = result[f"{task}_logits"]
            out[task].append(torch.where(routed, logits.nan_to_num(0.0).argmax(-1), -1).cpu())
    return {k: torch.cat(v).numpy() if v else np.zeros(0, np.int64) for k, v in out.items()}


def _macro_f1_present(truth: np.ndarray, predicted: np.ndarray) -> float | None:
    """Macro-F1 over the classes present in `truth` (None without samples): a held-out
    subset, such as one SNR bin, need not hold every class."""
    return macro_f1(truth, predicted, np.unique(truth)) if len(truth) else None


def _summary(targets: dict, predictions: dict, rows: np.ndarray) -> dict:
    tasks = rows & (targets["modulation"] >= 0)
    joint = rows & (targets["snr_mobility"] >= 0)
    return {
        "n": int(rows.sum()),
        "router_accuracy": float(np.mean(predictions["protocol"][rows] == targets["protocol"][rows]))
        if rows.any()
        else None,
        "modulation_macro_f1": _macro_f1_present(targets["modulation"][tasks], predictions["modulation"][tasks]),
        "snr_mobility_macro_f1": _macro_f1_present(targets["snr_mobility"][joint], predictions["snr_mobility"][joint]),
    }


def _recall(targets: dict, predictions: dict, name: str) -> float | None:
    rows = targets["protocol"] == labels.ROUTER_CLASSES.index(name)
    return float(np.mean(predictions["protocol"][rows] == targets["protocol"][rows])) if rows.any() else None


def metrics_from_predictions(targets: dict, predictions: dict) -> dict:
    """Overall and per-SNR-bin metrics, the issue's target figures and the router confusion.

    `targets` as data.encode_labels gives them; `predictions` as `predict` returns."""
    n = len(targets["protocol"])
    snr = targets["snr_db"]
    has_snr = ~np.isnan(snr)
    grid = np.asarray(labels.SNR_GRID_DB, float)
    snr_bin = np.full(n, np.nan)
    snr_bin[has_snr] = labels.nearest_snr_bin(snr[has_snr], grid)
    everything = np.ones(n, bool)
    per_snr = {f"{b:g}": _summary(targets, predictions, snr_bin == b) for b in grid if np.any(snr_bin == b)}
    classes = list(range(len(labels.ROUTER_CLASSES)))
    figures = {
        "router_accuracy_snr_ge_0": _summary(targets, predictions, has_snr & (snr_bin >= 0))["router_accuracy"],
        "modulation_macro_f1_snr_ge_15": _summary(targets, predictions, has_snr & (snr_bin >= 15))[
            "modulation_macro_f1"
        ],
        "snr_mobility_macro_f1": _summary(targets, predictions, everything)["snr_mobility_macro_f1"],
        "none_recall": _recall(targets, predictions, "none"),
    }
    return {
        "overall": {
            **_summary(targets, predictions, everything),
            "none_recall": figures["none_recall"],
            "other_recall": _recall(targets, predictions, "other"),
        },
        "per_snr_db": per_snr,
        "targets": {
            key: {"value": value, "target": TARGETS[key], "met": None if value is None else bool(value >= TARGETS[key])}
            for key, value in figures.items()
        },
        "router_confusion": {
            "labels": list(labels.ROUTER_CLASSES),
            "matrix": confusion_matrix(targets["protocol"], predictions["protocol"], labels=classes).tolist(),
        },
    }


def heldout_metrics(
    moe: MixtureOfExperts, folder, batch_size: int = 128, workers: int = 0, device="cpu", progress: bool = True
) -> dict:
    """Metrics of `moe` on the dataset folder `folder` (the held-out scenario)."""
    dataset = SpectrogramSet(folder)
    predictions = predict(moe, dataset, batch_size, workers, device, progress)
    targets = {name: dataset.target(name) for name in ("protocol", "modulation", "snr_mobility", "snr_db")}
    return {
        "dataset": str(folder),
        "count": len(dataset),
        "generator_config": dataset.manifest.get("config"),
        **metrics_from_predictions(targets, predictions),
    }
