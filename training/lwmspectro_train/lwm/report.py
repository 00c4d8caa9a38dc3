"""`lwmspectro lwm report`: the LWM paper's evaluation of a channel model bundle on users
pretraining never saw, regenerated into docs/ by one command.

    reconstruction   masked-patch NMSE of the pretrained encoder and decoder beside the trivial
                     predictor (each position's mean patch over the training channels) and a
                     classical one (a few plane waves fitted to the visible entries)
    los              LoS/NLoS F1 over training fractions: raw channels, CLS and channel
                     embeddings, CLS of 5 dB noisy channels, fine-tuned CLS (Fig. 4)
    beam             sub-6 GHz -> mmWave beam prediction F1 over training fractions for each DFT
                     codebook size: raw channels vs channel embeddings (Fig. 3)
    tsne             t-SNE of raw channels and CLS embeddings coloured by LoS and by best beam,
                     with the 5-nearest-neighbour accuracy of each space (Fig. 5)

Each section's rows go to OUT/<section>.json with the settings that made them and a digest of the
code that computes them (`code_digest`); a rerun with the same bundle, settings and code reuses
them, so an interrupted report resumes section by section, and a section made by other code is
computed again rather than presented as this code's. The
markdown (command, bundle, users, machine and compute at the top, then the targets of issue 13)
and the figures are written from those files.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from lwmspectro.fileio import atomic_write, file_sha256
from lwmspectro.lwm_channels import channel_planes
from lwmspectro.lwm_embed import ChannelEmbedder, LwmBundle

from .downstream import (
    CODEBOOK_SIZES,
    LOS_FRACTIONS,
    REPEATED_UP_TO,
    HeadTraining,
    LabelledUsers,
    beam_task,
    best_beams,
    distinct_fractions,
    los_task,
    sub6_beam_reference,
)
from .export import load_objective
from .model import mcm_mask

FEW_SHOT_USERS = 6
"""The LoS/NLoS target's handful of labelled users (issue 13: CLS >= raw + 0.25 F1 with six)."""
FINE_TUNED_FRACTION = 0.01
TSNE_BEAMS = 16
"""Codebook whose best mmWave beam colours the t-SNE (more colours than this cannot be told apart)."""
TARGET_BEAMS = 64
SECTIONS = ("reconstruction", "los", "beam", "tsne")


@dataclass(frozen=True)
class Preset:
    """How much of the paper's grid a report runs."""

    los_fractions: tuple[float, ...]
    beam_fractions: tuple[float, ...]
    codebook_sizes: tuple[int, ...]
    repeats: int
    """Draws of the training users per fraction of up to REPEATED_UP_TO users (mean and std
    reported): SMALL_SAMPLE_DRAWS in both presets, where the draw decides most."""
    head: HeadTraining
    mask_draws: int = 4
    """Independent masks per channel in the reconstruction score."""
    tsne_users: int = 2000


SMALL_SAMPLE_DRAWS = 10
"""Draws of a fraction's training users where a handful of users decides the score. Three draws
of six users scored CLS 0.44 / 0.53 / 0.81 F1 on the held-out city: a mean of three is then
uncertain by about a tenth of F1, the size of the margins the targets judge; ten bring that
to about 0.05, and cost little where the training sets are this small."""

PRESETS = {
    "full": Preset(
        LOS_FRACTIONS,
        (0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 0.7),
        CODEBOOK_SIZES,
        repeats=SMALL_SAMPLE_DRAWS,
        head=HeadTraining(max_updates=2000),
    ),
    "quick": Preset(
        (0.005, 0.01, 0.05, 0.25, 0.8),
        (0.01, 0.05, 0.1, 0.3),
        (16, 64, 256),
        repeats=SMALL_SAMPLE_DRAWS,
        head=HeadTraining(epochs=60, max_updates=500),
    ),
}


SPARSE_PLANE_WAVES = 8
"""Plane waves the classical reconstruction baseline fits to each channel's visible entries."""
SPARSE_OVERSAMPLING = 4
"""Angle and delay grid of that baseline: this many times the antennas and the subcarriers."""


def sparse_recovery(
    channels: np.ndarray,
    hidden: np.ndarray,
    plane_waves: int = SPARSE_PLANE_WAVES,
    oversampling: int = SPARSE_OVERSAMPLING,
) -> np.ndarray:
    """Each complex channel (M, N) of `channels` (B, M, N) re-estimated from its entries that
    `hidden` (B, M, N) leaves visible, as `plane_waves` waves in angle (across the ULA) and
    delay (across the subcarriers), each chosen greedily on an `oversampling`-times finer 2-D
    DFT grid and all fitted by least squares on the visible entries (orthogonal matching
    pursuit). No training: what the array and OFDM structure of a few-path channel allow, the
    reference that tells how much of that structure masked channel modelling has learnt.

    Written here rather than with scikit-learn's OrthogonalMatchingPursuit, which takes a real,
    explicit dictionary: 16 384 complex atoms of 1 024 values (half a gigabyte as reals),
    where the FFT of the zero-filled residual gives every atom's correlation at once."""
    b, m, n = channels.shape
    grid_m, grid_n = oversampling * m, oversampling * n
    visible = ~hidden
    target = np.where(visible, channels, 0).astype(np.complex128).reshape(b, -1)
    antenna, subcarrier = np.arange(m)[None, :, None], np.arange(n)[None, None, :]
    waves = np.zeros((b, plane_waves, m * n), np.complex128)
    residual = target.reshape(b, m, n)
    fit = np.zeros_like(target)
    for k in range(plane_waves):
        correlation = np.abs(np.fft.fft2(residual, (grid_m, grid_n))).reshape(b, -1)
        row, column = np.divmod(correlation.argmax(axis=1), grid_n)
        phase = antenna * row[:, None, None] / grid_m + subcarrier * column[:, None, None] / grid_n
        waves[:, k] = np.exp(2j * np.pi * phase).reshape(b, -1)
        basis = waves[:, : k + 1] * visible.reshape(b, 1, -1)
        gram = np.einsum("bkx,blx->bkl", basis.conj(), basis)
        ridge = 1e-9 * np.trace(gram, axis1=1, axis2=2).real[:, None, None] * np.eye(k + 1)
        coefficients = np.linalg.solve(gram + ridge, np.einsum("bkx,bx->bk", basis.conj(), target)[..., None])[..., 0]
        fit = np.einsum("bk,bkx->bx", coefficients, waves[:, : k + 1])
        residual = np.where(visible.reshape(b, -1), target - fit, 0).reshape(b, m, n)
    return fit.reshape(b, m, n)


PREDICTORS = {
    "": "LWM (encoder + linear decoder)",
    "mean_patch_": "mean patch of the training channels",
    "sparse_": f"{SPARSE_PLANE_WAVES} plane waves in angle and delay fitted to the visible entries (no training)",
}
"""The reconstruction section's predictors: the prefix of their keys in its rows -> their name."""


@torch.no_grad()
def reconstruction(bundle: LwmBundle, channels: np.ndarray, draws: int, seed: int, batch: int = 256) -> dict:
    """Masked channel modelling on `channels` with the bundle's encoder and decoder, beside the
    mean-patch predictor and the plane-wave fit (`sparse_recovery`) on the same `draws` masks
    of every channel. Each predictor's squared error on the selected patches over their energy,
    pooled over every channel (NMSE: carried by the strongest users, since one channel scale
    keeps the users' 25-40 dB spread in power) and per channel (its median and mean: every
    user counted alike)."""
    if bundle.checkpoint is None:
        raise ValueError(f"{bundle.path} has no torch weights (training.checkpoint); reconstruction needs them")
    objective = load_objective(bundle.checkpoint)
    cfg = objective.encoder.cfg
    generator = torch.Generator().manual_seed(seed)
    errors: dict[str, list[np.ndarray]] = {name: [] for name in PREDICTORS}
    energies: list[np.ndarray] = []
    values = 0
    for _ in range(draws):
        for start in range(0, len(channels), batch):
            patches = objective.encoder.patches(torch.from_numpy(channel_planes(channels[start : start + batch])))
            masked, selected, _ = mcm_mask(patches, cfg.n_masked, cfg.mask_value, cfg.random_std, generator)
            # A selected real patch and its imaginary pair hide the same entries of H.
            planes = patches.reshape(len(patches), 2, cfg.antennas, cfg.subcarriers).double().numpy()
            hidden = selected[..., None].expand_as(patches).reshape(planes.shape)[:, 0].numpy()
            fitted = sparse_recovery(planes[:, 0] + 1j * planes[:, 1], hidden)
            predictions = {
                "": objective.decoder(objective.encoder.tokens(masked)[:, 1:]),
                "mean_patch_": objective.mean_patch.expand_as(patches),
                "sparse_": torch.from_numpy(np.stack([fitted.real, fitted.imag], axis=1)).reshape(patches.shape),
            }
            weight = selected[..., None].double()
            for name, predicted in predictions.items():
                errors[name].append(((predicted.double() - patches.double()).pow(2) * weight).sum((1, 2)).numpy())
            energies.append((patches.double().pow(2) * weight).sum((1, 2)).numpy())
            values += int(selected.sum()) * cfg.patch_length
    energy = np.concatenate(energies)
    out = {
        "channels": len(channels),
        "mask_draws": draws,
        "masked_values": values,
        "sparse_plane_waves": SPARSE_PLANE_WAVES,
        "sparse_oversampling": SPARSE_OVERSAMPLING,
    }
    for prefix in PREDICTORS:
        error = np.concatenate(errors[prefix])
        per_channel = error / np.maximum(energy, 1e-300)
        out |= {
            f"{prefix}mse": float(error.sum()) / values,
            f"{prefix}nmse": float(error.sum() / energy.sum()),
            f"{prefix}nmse_db": float(10 * np.log10(max(error.sum() / energy.sum(), 1e-30))),
            f"{prefix}channel_nmse_median_db": float(10 * np.log10(max(np.median(per_channel), 1e-30))),
            f"{prefix}channel_nmse_mean": float(per_channel.mean()),
        }
    return out


def knn_accuracy(features: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """5-fold accuracy of a 5-nearest-neighbour classifier on standardised `features`: how well
    a space keeps users of one label together, the number a t-SNE picture only suggests."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    counts = np.bincount(labels)
    folds = int(min(5, counts[counts > 0].min()))
    if folds < 2 or len(np.unique(labels)) < 2:
        return float("nan")
    model = make_pipeline(StandardScaler(), KNeighborsClassifier(5))
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, features, labels, cv=split).mean())


def tsne(bundle: LwmBundle, users: LabelledUsers, sample: int, seed: int) -> dict:
    """2-D t-SNE of raw channels (their real and imaginary values) and of CLS embeddings for up to
    `sample` users, with each user's LoS flag and (when the mmWave channels are there) best beam."""
    from sklearn.manifold import TSNE

    rng = np.random.default_rng([seed, 8])
    if users.mmwave is not None:
        sub6, mmwave = users.beam_pair
        los = users.los[users.beam_rows]
        beam = best_beams(mmwave, TSNE_BEAMS)
    else:
        sub6, los, beam = users.channels, users.los, None
    rows = np.sort(rng.permutation(len(sub6))[:sample])
    spaces = {
        "raw": channel_planes(sub6[rows]).reshape(len(rows), -1) * float(bundle.input["channel_scale"]),
        "cls": ChannelEmbedder(bundle).embed(sub6[rows]).cls,
    }
    labels = {"los": los[rows].astype(np.int64)}
    if beam is not None:
        labels[f"best_beam_{TSNE_BEAMS}"] = beam[rows]
    result: dict = {"users": len(rows), "labels": {k: v.tolist() for k, v in labels.items()}, "spaces": {}}
    for name, features in spaces.items():
        perplexity = float(min(30.0, max(2.0, (len(rows) - 1) / 3.0)))
        points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
        result["spaces"][name] = {
            "points": points.round(3).tolist(),
            "knn_accuracy": {label: knn_accuracy(features, values, seed) for label, values in labels.items()},
        }
    return result


def targets(sections: dict) -> list[dict]:
    """Issue 13's targets against the report's rows: target, status (met, missed, not measured), numbers."""
    out = []
    los = sections.get("los", {}).get("rows", [])

    def f1(rows: list[dict], **match) -> float | None:
        found = [r["f1"] for r in rows if all(r.get(k) == v for k, v in match.items())]
        return found[0] if found else None

    few = [r for r in los if r["train_samples"] == FEW_SHOT_USERS]
    cls, raw = f1(few, representation="cls"), f1(few, representation="raw")
    if cls is None or raw is None:
        out.append({"target": "LoS/NLoS, 6 users: CLS >= raw + 0.25 F1", "status": "not measured", "numbers": ""})
    else:
        out.append(
            {
                "target": "LoS/NLoS, 6 users: CLS >= raw + 0.25 F1",
                "status": "met" if cls - raw >= 0.25 else "missed",
                "numbers": f"CLS {cls:.3f}, raw {raw:.3f}, margin {cls - raw:+.3f}",
            }
        )
    # The row of 1 % of the users: the most users among fractions up to 1 % (a smaller fraction
    # that trains on as many users stands for it, distinct_fractions).
    at_most = [r for r in los if r["representation"] == "cls_finetuned" and r["fraction"] <= FINE_TUNED_FRACTION]
    tuned = max(at_most, key=lambda r: r["train_samples"])["f1"] if at_most else None
    out.append(
        {
            "target": "LoS/NLoS, 1 % of the users: fine-tuned CLS >= 0.95 F1",
            "status": "not measured" if tuned is None else ("met" if tuned >= 0.95 else "missed"),
            "numbers": "" if tuned is None else f"fine-tuned CLS {tuned:.3f}",
        }
    )
    beam = [r for r in sections.get("beam", {}).get("rows", []) if r["beams"] == TARGET_BEAMS and r["fraction"] <= 0.1]
    fractions = sorted({r["fraction"] for r in beam})
    margins = [
        (fr, f1(beam, representation="channel", fraction=fr), f1(beam, representation="raw", fraction=fr))
        for fr in fractions
    ]
    out.append(
        {
            "target": f"beam prediction, {TARGET_BEAMS} beams: embeddings >= raw at every fraction up to 10 %",
            "status": "not measured" if not margins else ("met" if all(e >= r for _, e, r in margins) else "missed"),
            "numbers": ", ".join(f"{fr:g}: {e:.3f} vs {r:.3f}" for fr, e, r in margins),
        }
    )
    recon = sections.get("reconstruction")
    out.append(
        {
            "target": "masked-patch NMSE on the held-out users, beside the mean patch",
            "status": "reported" if recon else "not measured",
            "numbers": ""
            if not recon
            else f"LWM {recon['nmse_db']:.2f} dB, mean patch {recon['mean_patch_nmse_db']:.2f} dB, "
            f"plane-wave fit {recon['sparse_nmse_db']:.2f} dB",
        }
    )
    return out


CODE_PACKAGES = ("lwmspectro_train.lwm",)
CODE_MODULES = ("lwmspectro.lwm_channels", "lwmspectro.lwm_embed", "lwmspectro.scenarios.loader")
"""What computes the sections' rows: every module of the packages, and the core's modules they read."""


def code_digest() -> str:
    """sha256 over the source of CODE_PACKAGES' modules and CODE_MODULES, in a fixed order: what
    a cached section must have been made by to be reused (its settings alone say nothing of a
    fix to the head training or the channels since)."""
    files = [Path(importlib.import_module(name).__file__ or "") for name in CODE_MODULES]
    for package in CODE_PACKAGES:
        files += sorted(Path(importlib.import_module(package).__file__ or "").parent.glob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cached(
    folder: Path, section: str, settings: dict, compute: Callable[[], dict], log: Callable[[str], None] = print
) -> dict:
    """OUT/<section>.json when it was made with `settings`, else computed, timed and written."""
    path = folder / f"{section}.json"
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            saved = {}
        if saved.get("settings") == settings:
            return saved
        before = saved.get("settings") or {}
        changed = sorted(key for key in {*before, *settings} if before.get(key) != settings.get(key))
        log(f"lwm report: {section} computed again ({', '.join(changed) or 'unreadable'} changed since {path})")
    started = time.perf_counter()
    started_cpu = time.process_time()
    result = {"settings": settings, **compute()}
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["cpu_seconds"] = round(time.process_time() - started_cpu, 1)
    atomic_write(path, json.dumps(result) + "\n")
    return result


def run_report(
    bundle: LwmBundle,
    users: LabelledUsers,
    out: Path,
    results_md: Path,
    command: str,
    preset_name: str,
    preset: Preset,
    seed: int = 0,
    sections: Sequence[str] = SECTIONS,
    log: Callable[[str], None] = print,
) -> dict:
    """Every section into `out` (reusing finished ones), then the figures and `results_md`."""
    out.mkdir(parents=True, exist_ok=True)
    common = {
        "bundle_sha256": file_sha256(bundle.card_path),
        "code_sha256": code_digest(),
        "users": users.source,
        "seed": seed,
    }
    head = asdict(preset.head)
    n = len(users.channels)
    los_fractions = distinct_fractions([FEW_SHOT_USERS / n, FINE_TUNED_FRACTION, *preset.los_fractions], n)
    plans: dict[str, tuple[dict, Callable[[], dict]]] = {
        "reconstruction": (
            {"mask_draws": preset.mask_draws, "sparse": [SPARSE_PLANE_WAVES, SPARSE_OVERSAMPLING]},
            partial(reconstruction, bundle, users.channels, preset.mask_draws, seed),
        ),
        "los": (
            {"fractions": los_fractions, "repeats": preset.repeats, "head": head},
            lambda: {
                "rows": los_task(bundle, users.channels, users.los, los_fractions, preset.head, seed, preset.repeats)
            },
        ),
        "tsne": ({"sample": preset.tsne_users}, partial(tsne, bundle, users, preset.tsne_users, seed)),
    }
    if users.mmwave is not None:
        sub6, mmwave = users.beam_pair
        beam_args = (preset.codebook_sizes, preset.beam_fractions, preset.head, seed, preset.repeats)
        plans["beam"] = (
            {"fractions": list(preset.beam_fractions), "codebook_sizes": list(preset.codebook_sizes)}
            | {"repeats": preset.repeats, "head": head},
            lambda: {"rows": beam_task(bundle, sub6, mmwave, *beam_args)},
        )
    done: dict[str, dict] = {}
    for section in sections:
        if section not in SECTIONS:
            raise ValueError(f"unknown section {section!r}; choose from {', '.join(SECTIONS)}")
        if section not in plans:
            log(f"lwm report: {section} skipped (no mmWave channels)")
            continue
        log(f"lwm report: {section}")
        settings, compute = plans[section]
        done[section] = cached(out, section, {**common, **settings}, compute, log)
        if section == "beam":
            # No training, under a second: computed afresh rather than cached with the heads' rows.
            done[section] = done[section] | {
                "reference": sub6_beam_reference(*users.beam_pair, preset.codebook_sizes, seed)
            }
    figures = write_figures(done, out)
    write_markdown(bundle, users, done, figures, results_md, command, preset_name, preset)
    return done


def write_figures(sections: dict, out: Path) -> dict[str, Path]:
    """PNG figures of the sections at hand (matplotlib, Agg): Fig. 3, 4 and 5 of the paper."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, Path] = {}
    if "los" in sections:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        rows = sections["los"]["rows"]
        for name in dict.fromkeys(r["representation"] for r in rows):
            mine = [r for r in rows if r["representation"] == name]
            ax.errorbar(
                [r["fraction"] * 100 for r in mine],
                [r["f1"] for r in mine],
                yerr=[r.get("f1_std", 0.0) for r in mine],
                marker="o",
                capsize=3,
                label=name,
            )
        ax.set(xscale="log", xlabel="training users (% of the site)", ylabel="macro F1", title="LoS/NLoS (Fig. 4)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        figures["los"] = _save(fig, out / "los.png")
    if "beam" in sections:
        rows = sections["beam"]["rows"]
        sizes = sorted({r["beams"] for r in rows})
        fig, axes = plt.subplots(1, len(sizes), figsize=(3.2 * len(sizes), 3.4), sharey=True, squeeze=False)
        for ax, beams in zip(axes[0], sizes):
            for name in ("raw", "channel"):
                mine = [r for r in rows if r["beams"] == beams and r["representation"] == name]
                ax.errorbar(
                    [r["fraction"] * 100 for r in mine],
                    [r["f1"] for r in mine],
                    yerr=[r.get("f1_std", 0.0) for r in mine],
                    marker="o",
                    capsize=3,
                    label={"raw": "raw channels", "channel": "channel embeddings"}[name],
                )
            ax.set(xscale="log", xlabel="training users (%)", title=f"{beams} beams")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("macro F1")
        axes[0][0].legend(fontsize=8)
        fig.suptitle("sub-6 GHz -> mmWave beam prediction (Fig. 3)")
        figures["beam"] = _save(fig, out / "beam.png")
    if "tsne" in sections:
        result = sections["tsne"]
        labels = result["labels"]
        fig, axes = plt.subplots(
            len(labels), len(result["spaces"]), figsize=(4.2 * len(result["spaces"]), 3.8 * len(labels)), squeeze=False
        )
        for column, (space, data) in enumerate(result["spaces"].items()):
            points = np.asarray(data["points"])
            for row, (label, values) in enumerate(labels.items()):
                ax = axes[row][column]
                cmap = "coolwarm" if label == "los" else "tab20"
                ax.scatter(points[:, 0], points[:, 1], c=values, s=4, cmap=cmap)
                knn = data["knn_accuracy"][label]
                ax.set_title(f"{space}, coloured by {label} (5-NN acc. {knn:.2f})", fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
        figures["tsne"] = _save(fig, out / "tsne.png")
    return figures


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _score(row: dict) -> str:
    """F1 as mean ± std over the draws, or alone when there was one draw."""
    if len(row.get("f1_runs", [])) > 1:
        return f"{row['f1']:.3f} ± {row['f1_std']:.3f}"
    return f"{row['f1']:.3f}"


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)


def write_markdown(
    bundle: LwmBundle,
    users: LabelledUsers,
    sections: dict,
    figures: dict[str, Path],
    path: Path,
    command: str,
    preset_name: str,
    preset: Preset,
) -> None:
    """The report page: how it was made, the targets, then one part per section."""
    card = json.loads(bundle.card_path.read_text())
    pretraining = card.get("metrics", {}).get("pretraining", {})
    training = card.get("training", {}).get("config", {})
    seconds = sum(s.get("seconds", 0.0) for s in sections.values())
    cpu = sum(s.get("cpu_seconds", 0.0) for s in sections.values())
    lines = [
        "# LWM channel model: evaluation on users pretraining never saw",
        "",
        "Regenerated by this command (from the repository root):",
        "",
        "```",
        command,
        "```",
        "",
        f"- **Bundle**: `{bundle.path}` (card `{bundle.name}`, {card['model']['parameters']} parameters, "
        f"card.json sha256 {file_sha256(bundle.card_path)[:12]}); pretrained on "
        f"{', '.join(training.get('data', {}).get('scenarios', [])) or 'self-made users'}",
        f"- **Users**: {json.dumps(users.source)}",
        f"- **Preset**: {preset_name}: {json.dumps(asdict(preset))}",
        f"- **Machine**: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        f"- **Date**: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- **Compute**: {seconds:.0f} s wall time and {cpu:.0f} s CPU time over the sections",
        "",
        "Every F1 is the macro F1 on a fixed test part of the users (a fifth for LoS/NLoS, a tenth for "
        "beams), as mean ± std over draws of the training users where a fraction has up to "
        f"{REPEATED_UP_TO} users (one draw above); heads train for the preset's epochs, stopped at its "
        "max_updates, with no validation share, as `lwmspectro lwm downstream` does.",
        "",
        "## Targets",
        "",
        "| target | status | numbers |",
        "|---|---|---|",
        *(f"| {t['target']} | {t['status']} | {t['numbers']} |" for t in targets(sections)),
        "",
    ]
    if "reconstruction" in sections:
        r = sections["reconstruction"]
        lines += [
            "## Masked-patch reconstruction",
            "",
            f"{r['channels']} channels, {r['mask_draws']} masks each (15 % of the real patches and their "
            "imaginary pairs, 80/10/10), squared error over the selected patches' energy.",
            "",
            "NMSE pools every channel's error and energy, so the strongest users carry it (one channel scale keeps "
            "their spread in power); the median and mean of each channel's own NMSE count every user alike.",
            "",
            "| predictor | NMSE | NMSE (dB) | median per channel (dB) | mean per channel | MSE per value |",
            "|---|---|---|---|---|---|",
            *(
                f"| {name} | {r[f'{p}nmse']:.4f} | {r[f'{p}nmse_db']:.2f} | {r[f'{p}channel_nmse_median_db']:.2f} | "
                f"{r[f'{p}channel_nmse_mean']:.4f} | {r[f'{p}mse']:.4g} |"
                for p, name in PREDICTORS.items()
            ),
        ]
        if pretraining:
            lines += [
                f"| LWM on its own validation channels (card, epoch {pretraining.get('epoch')}) | "
                f"{pretraining.get('val_nmse', float('nan')):.4f} | "
                f"{10 * np.log10(max(pretraining.get('val_nmse', float('nan')), 1e-12)):.2f} | | | "
                f"{pretraining.get('val_loss', float('nan')):.4g} |"
            ]
        lines.append("")
    for section, title in (("los", "LoS/NLoS classification (Fig. 4)"), ("beam", "Beam prediction (Fig. 3)")):
        if section not in sections:
            continue
        rows = sections[section]["rows"]
        lines += [f"## {title}", "", f"![{section}]({_relative(figures[section], path.parent)})", ""]
        groups = sorted({r.get("beams", 0) for r in rows})
        names = list(dict.fromkeys(r["representation"] for r in rows))
        lines += [
            "| " + ("beams | " if section == "beam" else "") + "fraction | users | " + " | ".join(names) + " |",
            "|---|---|" + ("---|" if section == "beam" else "") + "---|" * len(names),
        ]
        for group in groups:
            for fraction in sorted({r["fraction"] for r in rows}):
                mine = {
                    r["representation"]: r for r in rows if r.get("beams", 0) == group and r["fraction"] == fraction
                }
                if not mine:
                    continue
                first = next(iter(mine.values()))
                cells = [_score(mine[n]) if n in mine else "" for n in names]
                lead = f"{group} | " if section == "beam" else ""
                lines.append(f"| {lead}{fraction:.4g} | {first['train_samples']} | " + " | ".join(cells) + " |")
        lines.append("")
        if section == "beam" and sections[section].get("reference"):
            lines += [
                "Without training, each test user's sub-6 GHz channel read for its own best beam in the same "
                "codebook (`downstream.sub6_beam_reference`): what the heads above are trained to find.",
                "",
                "| beams | test users | macro F1 | accuracy |",
                "|---|---|---|---|",
                *(
                    f"| {r['beams']} | {r['test_users']} | {r['f1']:.3f} | {r['accuracy']:.3f} |"
                    for r in sections[section]["reference"]
                ),
                "",
            ]
    if "tsne" in sections:
        result = sections["tsne"]
        lines += [
            "## t-SNE of raw channels and CLS embeddings (Fig. 5)",
            "",
            f"![tsne]({_relative(figures['tsne'], path.parent)})",
            "",
            f"{result['users']} users. Beside the picture, the 5-fold accuracy of a 5-nearest-neighbour "
            "classifier in each space (standardised features), which says how well the space keeps users "
            "of one label together:",
            "",
            "| space | " + " | ".join(result["labels"]) + " |",
            "|---|" + "---|" * len(result["labels"]),
            *(
                f"| {space} | " + " | ".join(f"{data['knn_accuracy'][k]:.3f}" for k in result["labels"]) + " |"
                for space, data in result["spaces"].items()
            ),
            "",
        ]
    atomic_write(path, "\n".join(lines))


def preset_with(preset: Preset, epochs: int | None, repeats: int | None) -> Preset:
    """`preset` with the head epochs and the draws per fraction a command line overrides."""
    if epochs is not None:
        preset = replace(preset, head=replace(preset.head, epochs=epochs))
    return preset if repeats is None else replace(preset, repeats=repeats)
