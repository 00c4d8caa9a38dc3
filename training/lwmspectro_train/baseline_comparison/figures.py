"""PNG figures of a run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _percent_frame(ax, xlabel: str, ylabel: str, title: str) -> None:
    """The frame the line plots share: axis labels, a 0-100 % y axis, a light grid, title and legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def _save(fig, path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def f1_vs_labels(curves: dict, title: str, path) -> Path:
    """Macro-F1 (mean +- std over seeds) against labelled samples per class, one line per model.

    `curves`: display name -> (N values, means, stds), F1 in percent."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name, (n, mean, std) in curves.items():
        n, mean, std = map(np.asarray, (n, mean, std))
        ax.errorbar(n, mean, yerr=std, marker="o", capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ticks = sorted({int(v) for n, _, _ in curves.values() for v in n})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    _percent_frame(ax, "labelled samples per class (N)", "test macro-F1 (%)", title)
    return _save(fig, path)


def confusion_matrices(panels: list, path) -> Path:
    """Row-normalised confusion matrices side by side; `panels`: (title, matrix, class names)."""
    n_classes = max(len(names) for _, _, names in panels)
    size = 3.2 + 0.22 * n_classes
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size), dpi=110, squeeze=False)
    for ax, (title, matrix, names) in zip(axes[0], panels):
        rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        ticks = np.arange(len(names))
        ax.set_xticks(ticks, names, rotation=90, fontsize=6 if len(names) > 8 else 8)
        ax.set_yticks(ticks, names, fontsize=6 if len(names) > 8 else 8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
        if len(names) <= 8:
            for i in range(len(names)):
                for j in range(len(names)):
                    ax.text(
                        j,
                        i,
                        f"{rates[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black",
                    )
    return _save(fig, path)


def accuracy_per_snr(curves: dict, title: str, path) -> Path:
    """Test accuracy against the labelled SNR; `curves`: display name -> (SNRs, accuracy %)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for name, (snr, acc) in curves.items():
        ax.plot(snr, acc, marker="o", label=name)
    _percent_frame(ax, "SNR (dB)", "test accuracy (%)", title)
    return _save(fig, path)


def tsne_panels(points: dict, colours: dict, title: str, path) -> Path:
    """2 x 2 t-SNE scatter: columns are feature spaces (raw spectrogram, LWM embedding),
    rows are colourings (SNR, modulation).

    `points`: column title -> (n, 2) coordinates; `colours`: row title -> (values, names or
    None for a numeric scale)."""
    fig, axes = plt.subplots(
        len(colours), len(points), figsize=(5.2 * len(points), 4.4 * len(colours)), dpi=110, squeeze=False
    )
    for r, (row_title, (values, names)) in enumerate(colours.items()):
        values = np.asarray(values)
        for c, (col_title, xy) in enumerate(points.items()):
            ax = axes[r][c]
            if names is None:
                levels = np.unique(values)
                cmap = plt.get_cmap("viridis", len(levels))
                for k, level in enumerate(levels):
                    sel = values == level
                    ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(k), label=f"{level:g} dB")
            else:
                cmap = plt.get_cmap("tab10")
                for k, name in enumerate(names):
                    sel = values == k
                    if sel.any():
                        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(k % 10), label=name)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{col_title}, coloured by {row_title}", fontsize=9)
            ax.legend(fontsize=6, markerscale=2, loc="best")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
