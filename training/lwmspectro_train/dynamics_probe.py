"""Which form of the dynamics view shows mobility best: the variants side by side, before a corpus is
remade for one.

Each example of a generator config is re-synthesised (`dataset_generation.example_source`, its
capture chain included) and the snippet powers of three snippet layouts are kept: today's (33 us
every 1 ms), longer snippets (133 us every 1 ms) and a finer hop (33 us every 0.25 ms), each over
the same 128 ms. A variant turns one layout's powers into view rows (`dynamics_from_powers`),
optionally over fewer, wider subbands and with the common-mode rows: the same change quantiles
after each snippet's level is taken relative to its strongest subbands', where a receiver's gain
step or a burst switching the whole band cancels and the frequency-selective fading stays. A
gradient-boosted classifier (the view's rows and the true SNR) is fitted per variant on the
examples of one config (the training sites) and scored on those of another (the held-out
site), signals at SNR >= 10 dB. The powers are cached by chunk under `--out`, so a rerun fits
again without generating. `--stored` fits the same classifier on today's view as two generated
folders hold it, to set what a whole corpus shows beside what the variants show on a few
thousand examples.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from tqdm import tqdm

from lwmspectro import dataset_generation, labels, views
from lwmspectro.dataset import open_dataset
from lwmspectro.dynamics import DynamicsParams, SnippetHistory, dynamics_from_powers, snippets_on
from lwmspectro.fileio import atomic_write
from lwmspectro.synth import GeneratorConfig

LAYOUTS = {
    "33 us every 1 ms": views.VIEWS["dynamics"],
    "133 us every 1 ms": dataclasses.replace(views.VIEWS["dynamics"], frames_per_snippet=16),
    "33 us every 0.25 ms": dataclasses.replace(
        views.VIEWS["dynamics"],
        hop_s=0.25e-3,
        n_snippets=512,
        lags=(1, 2, 4, 8, 12, 16, 24, 32, 44, 64, 90, 128, 180, 256),
    ),
}
"""Snippet layouts, each over the same 128 ms (the last lag reaches 64 ms in each)."""


@dataclass(frozen=True)
class Variant:
    layout: str
    subbands: int = 32
    common_mode: bool = False


VARIANTS = {
    "today's view": Variant("33 us every 1 ms"),
    "today's + common-mode rows": Variant("33 us every 1 ms", common_mode=True),
    "133 us snippets": Variant("133 us every 1 ms"),
    "133 us snippets + common-mode rows": Variant("133 us every 1 ms", common_mode=True),
    "0.25 ms hop": Variant("33 us every 0.25 ms"),
    "0.25 ms hop, 8 subbands": Variant("33 us every 0.25 ms", subbands=8),
    "0.25 ms hop, 8 subbands + common-mode rows": Variant("33 us every 0.25 ms", subbands=8, common_mode=True),
}
COMMON_MODE_SUBBANDS = 0.25
"""Share of the subbands (the strongest) whose median level a common-mode row is taken against."""
CHUNK = 50
MIN_SNR_DB = 10.0
SEEDS = 3


class _RecordingHistory(SnippetHistory):
    """A stream history that also keeps the last snippet powers of each layout."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded: dict[DynamicsParams, np.ndarray] = {}

    def powers(self, params: DynamicsParams, iq: np.ndarray, source_rate_hz: float, position: int) -> np.ndarray:
        power = super().powers(params, iq, source_rate_hz, position)
        self.recorded[params] = power
        return power


def _plan(config: GeneratorConfig) -> dataset_generation.ExamplePlan:
    """The config's examples as they would be made with G and the layouts as their views."""
    return dataset_generation.ExamplePlan.of(config, {"wideband": config.params, **LAYOUTS})


def example_powers(config_path: str, first: int, count: int) -> dict[str, np.ndarray]:
    """The labels (protocol, SNR, mobility index or -1) and each layout's snippet powers of the
    examples first .. first + count - 1 of a config."""
    config = GeneratorConfig.from_file(config_path)
    plan = _plan(config)
    rows: list[dict] = []
    powers: dict[str, list[np.ndarray]] = {name: [] for name in LAYOUTS}
    for index in range(first, first + count):
        source, rate, start, row = dataset_generation.example_source(config, index, plan)
        history = _RecordingHistory()
        views.compute_observation(list(plan.views.values()), source, rate, start, history=history)
        for name, params in LAYOUTS.items():
            powers[name].append(history.recorded[params].astype(np.float32))
        rows.append(row)
    return {
        **_label_arrays([r["protocol"] for r in rows], [r["snr_db"] for r in rows], [r["mobility"] for r in rows]),
        **{name: np.stack(p) for name, p in powers.items()},
    }


def _label_arrays(protocols: list, snrs: list, mobilities: list) -> dict[str, np.ndarray]:
    """Label rows' fields as arrays: the SNR NaN and the mobility index -1 where a row has none."""
    return {
        "protocol": np.array(protocols),
        "snr_db": np.array([np.nan if v is None else v for v in snrs], float),
        "mobility": np.array([labels.MOBILITY_CLASSES.index(m) if m else -1 for m in mobilities]),
    }


def examples(config_path: str, count: int, folder: Path, workers: int, progress: bool) -> dict[str, np.ndarray]:
    """The powers and labels of the first `count` examples of a config, from the cache or made."""
    folder.mkdir(parents=True, exist_ok=True)
    starts = list(range(0, count, CHUNK))
    paths = [folder / f"chunk-{first:06d}.npz" for first in starts]
    missing = [(first, path) for first, path in zip(starts, paths) if not path.exists()]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        jobs = [
            (path, pool.apply_async(example_powers, (config_path, first, min(CHUNK, count - first))))
            for first, path in missing
        ]
        for path, job in tqdm(jobs, desc=folder.name, unit="chunk", disable=not progress):
            arrays = job.get()
            atomic_write(path, lambda f, a=arrays: np.savez(f, **a))
    parts = [np.load(path) for path in paths]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0].files}


def features(variant: Variant, power: np.ndarray) -> np.ndarray:
    """The view rows a variant makes of one example's snippet powers (n_snippets, 32)."""
    params = dataclasses.replace(LAYOUTS[variant.layout], n_subbands=variant.subbands)
    pooled = power.reshape(len(power), variant.subbands, -1).sum(axis=-1)
    rows = [dynamics_from_powers(params, pooled).ravel()]
    if variant.common_mode:
        on = snippets_on(pooled)
        strongest = np.argsort(-pooled[on].mean(axis=0) if on.any() else np.zeros(variant.subbands))
        top = strongest[: max(1, int(COMMON_MODE_SUBBANDS * variant.subbands))]
        reference = np.median(pooled[:, top], axis=1, keepdims=True)
        relative = np.where(on[:, None], pooled / np.maximum(reference, 1e-30), 0.0)
        rows.append(dynamics_from_powers(params, relative)[1:].ravel())
    return np.concatenate(rows)


def _accuracy(
    x_fit: np.ndarray, y_fit: np.ndarray, x_held: np.ndarray, truth: np.ndarray, protocol: np.ndarray
) -> dict:
    """The classifier's held-out accuracy (mean over SEEDS fits), overall, by protocol and by class."""
    hits = np.mean(
        [
            HistGradientBoostingClassifier(max_iter=200, early_stopping=False, random_state=seed)
            .fit(x_fit, y_fit)
            .predict(x_held)
            == truth
            for seed in range(SEEDS)
        ],
        axis=0,
    )
    return {
        "accuracy": float(hits.mean()),
        "by_protocol": {p: float(hits[protocol == p].mean()) for p in labels.PROTOCOLS if (protocol == p).any()},
        "by_class": {
            c: float(hits[truth == i].mean()) for i, c in enumerate(labels.MOBILITY_CLASSES) if (truth == i).any()
        },
        "fit_rows": len(y_fit),
        "scored_rows": len(truth),
    }


def _signals(data: dict[str, np.ndarray]) -> np.ndarray:
    return np.isin(data["protocol"], labels.PROTOCOLS) & (data["mobility"] >= 0)


def scores(fit: dict[str, np.ndarray], held_out: dict[str, np.ndarray]) -> dict[str, dict]:
    """Held-out mobility accuracy per variant (signals at SNR >= MIN_SNR_DB), by protocol and class."""

    def table(data: dict, variant: Variant) -> np.ndarray:
        return np.array([np.r_[features(variant, p), s] for p, s in zip(data[variant.layout], data["snr_db"])])

    fitted = _signals(fit)
    scored = _signals(held_out) & (held_out["snr_db"] >= MIN_SNR_DB)
    truth, protocol = held_out["mobility"][scored], held_out["protocol"][scored]
    return {
        name: _accuracy(
            table(fit, variant)[fitted], fit["mobility"][fitted], table(held_out, variant)[scored], truth, protocol
        )
        for name, variant in VARIANTS.items()
    }


def stored_view(folder: str) -> dict[str, np.ndarray]:
    """The stored dynamics view (flattened) and the labels of every example of a dataset folder."""
    dataset = open_dataset(folder)
    return {
        "view": dataset.view("dynamics").reshape(len(dataset), -1),
        **_label_arrays(dataset.column("protocol"), dataset.column("snr_db"), dataset.column("mobility")),
    }


def stored_scores(fit_folder: str, score_folder: str) -> dict:
    """The same classifier on today's view as two `lwmspectro generate` folders store it: what a
    corpus of their size shows."""
    fit, held_out = stored_view(fit_folder), stored_view(score_folder)
    fitted = _signals(fit) & np.isfinite(fit["view"]).all(axis=1)
    scored = _signals(held_out) & (held_out["snr_db"] >= MIN_SNR_DB) & np.isfinite(held_out["view"]).all(axis=1)
    return _accuracy(
        np.c_[fit["view"], fit["snr_db"]][fitted],
        fit["mobility"][fitted],
        np.c_[held_out["view"], held_out["snr_db"]][scored],
        held_out["mobility"][scored],
        held_out["protocol"][scored],
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit-config", default="python/lwmspectro/configs/train-constellation.json")
    parser.add_argument("--score-config", default="python/lwmspectro/configs/heldout-constellation.json")
    parser.add_argument("--fit", type=int, default=1500, help="examples of --fit-config to fit on")
    parser.add_argument("--score", type=int, default=600, help="examples of --score-config to score")
    parser.add_argument("--out", default="runs/dynamics-probe", help="cache and results folder")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--stored",
        nargs=2,
        metavar=("FIT_DIR", "SCORE_DIR"),
        help="instead, fit today's view as two generated dataset folders store it (a whole corpus)",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.stored:
        result = stored_scores(*args.stored)
        print(
            f"today's view, stored: mobility at SNR >= {MIN_SNR_DB:g} dB {100 * result['accuracy']:.1f} % "
            f"({result['fit_rows']} rows fitted, {result['scored_rows']} scored)"
        )
        return 0
    fit = examples(args.fit_config, args.fit, out / "fit", args.workers, not args.no_progress)
    held_out = examples(args.score_config, args.score, out / "score", args.workers, not args.no_progress)
    results = scores(fit, held_out)
    atomic_write(out / "results.json", json.dumps(results, indent=1))
    first = next(iter(results.values()))
    print(f"mobility at SNR >= {MIN_SNR_DB:g} dB, {first['fit_rows']} rows fitted, {first['scored_rows']} scored")
    print("| variant | accuracy | WiFi / LTE / NR | static / pedestrian / vehicular |")
    print("|---|---|---|---|")
    for name, r in results.items():
        by_protocol = " / ".join(f"{100 * v:.1f}" for v in r["by_protocol"].values())
        by_class = " / ".join(f"{100 * v:.1f}" for v in r["by_class"].values())
        print(f"| {name} | {100 * r['accuracy']:.1f} % | {by_protocol} | {by_class} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
