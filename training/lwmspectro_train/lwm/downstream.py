"""The LWM paper's downstream tasks (Sec. VIII): what raw channels and LWM embeddings are worth
to a small model trained on few labels.

- LoS/NLoS classification: the paper's MLP (512-256-128, batch norm, ReLU, dropout 0.1) on raw
  channels (2 M N values), CLS embeddings (D), channel embeddings (P x D), CLS embeddings of
  channels with complex Gaussian noise at 5 dB SNR, and the CLS embedding of an encoder whose
  last three layers are trained with the head (`FineTunedCls`).
- Sub-6 GHz to mmWave beam prediction: the best beam of a DFT codebook (`dft_codebook`) for each
  user's mmWave channel, predicted from its sub-6 GHz channel by a residual 1-D CNN
  (`BeamHead`) reading raw patches (P x L) or channel embeddings (P x D). `beam_probe` puts one
  MLP on raw values, both embeddings and the channel's direction profile, to tell whether the
  label can be learnt from that many users and which input keeps the direction.

Each task is scored by the macro F1 on a held-out part of the labelled users, over a sweep of
training fractions (`fraction_sweep`): every representation is trained on the same users at each
fraction. Embeddings come from a channel model bundle through the core's ChannelEmbedder, as a
user would get them; the fine-tuned representation needs the bundle's torch weights.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lwmspectro.lwm_channels import channel_planes, paths_channels, random_paths, scenario_channels
from lwmspectro.lwm_embed import ChannelEmbedder, LwmBundle

from ..metrics import macro_f1
from ..model import ResidualBlock1d
from .model import LwmEncoder, channel_patches

LOS_WIDTHS = (512, 256, 128)
"""The LoS/NLoS MLP's hidden layers (Sec. VIII-B)."""
FINE_TUNED_LAYERS = 3
"""Layers of the encoder trained with the head for fine-tuned embeddings (Sec. VIII-B)."""
NOISY_SNR_DB = 5.0


class LosHead(nn.Module):
    """Sec. VIII-B's classifier: the input flattened, then per hidden width a linear layer, batch
    norm, ReLU and dropout, then a linear layer to the classes."""

    def __init__(self, features: int, classes: int = 2, widths: Sequence[int] = LOS_WIDTHS, dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Linear(features, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)]
            features = width
        self.layers = nn.Sequential(*layers, nn.Linear(features, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))


class BeamHead(nn.Module):
    """Sec. VIII-A's residual 1-D CNN over a sequence (B, S, F) of patches or patch embeddings:
    a convolution from the F features to `width` channels, residual blocks (model.py's), global
    average pooling over the sequence and two fully connected layers. About 370 K parameters at
    the defaults with F = 64 (the paper's is sized at 500 K, the most raw channels bear)."""

    def __init__(
        self,
        features: int,
        beams: int,
        width: int = 128,
        blocks: int = 3,
        kernel_size: int = 3,
        hidden: int = 256,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv1d(features, width, kernel_size, padding=kernel_size // 2), nn.BatchNorm1d(width), nn.GELU()
        )
        self.blocks = nn.Sequential(*(ResidualBlock1d(width, kernel_size) for _ in range(blocks)))
        self.classifier = nn.Sequential(
            nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, beams)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.blocks(self.stem(x.transpose(1, 2))).mean(dim=-1))


class FineTunedCls(nn.Module):
    """The CLS embedding of an encoder whose last `layers` blocks train with a head on it; the
    rest of the encoder stays as pretrained (Sec. VIII-B). It reads what the frozen layers give
    (`frozen_tokens`): they never change, so they run once per channel rather than once per
    step, in inference mode as the exported encoder runs them."""

    def __init__(self, encoder: LwmEncoder, head: nn.Module, layers: int = FINE_TUNED_LAYERS):
        super().__init__()
        self.blocks = copy.deepcopy(encoder.blocks[-layers:])
        self.blocks.requires_grad_(True)
        self.head = head

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(tokens[:, 0])


@torch.no_grad()
def frozen_tokens(
    encoder: LwmEncoder, channels: np.ndarray, layers: int = FINE_TUNED_LAYERS, batch: int = 256
) -> np.ndarray:
    """float32 (users, P + 1, D): the tokens entering the last `layers` blocks of `encoder`."""
    encoder.eval()
    out = []
    for start in range(0, len(channels), batch):
        z = encoder.embed(encoder.patches(torch.from_numpy(channel_planes(channels[start : start + batch]))))
        for block in encoder.blocks[: len(encoder.blocks) - layers]:
            z = block(z)
        out.append(z.numpy())
    return np.concatenate(out)


def dft_codebook(antennas: int, beams: int) -> np.ndarray:
    """complex (beams, antennas): unit-norm beams of the half-wavelength ULA steered to spatial
    frequencies u = -1 + 2 b / beams (u = sin(polar) sin(azimuth), lwm_channels.ula_steering);
    more beams than antennas oversample the angles."""
    u = -1.0 + 2.0 * np.arange(beams) / beams
    return np.exp(1j * np.pi * u[:, None] * np.arange(antennas)) / np.sqrt(antennas)


def beam_gains(channels: np.ndarray, beams: int) -> np.ndarray:
    """float (users, beams): the power each codebook beam draws from a channel, summed over the subcarriers."""
    codebook = dft_codebook(channels.shape[1], beams)
    return (np.abs(np.einsum("bm,umn->ubn", codebook.conj(), channels)) ** 2).sum(axis=2)


def best_beams(channels: np.ndarray, beams: int) -> np.ndarray:
    """int64 (users,): the codebook beam with the most power summed over the subcarriers."""
    return beam_gains(channels, beams).argmax(axis=1)


def add_noise(channels: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`channels` plus circular complex Gaussian noise at `snr_db` below each channel's mean power."""
    power = np.mean(np.abs(channels) ** 2, axis=(1, 2), keepdims=True) / 10.0 ** (snr_db / 10.0)
    noise = rng.normal(size=channels.shape) + 1j * rng.normal(size=channels.shape)
    return (channels + np.sqrt(power / 2.0) * noise).astype(np.complex64)


def raw_patches(channels: np.ndarray, bundle: LwmBundle) -> np.ndarray:
    """float32 (users, P, L): the raw channels as the encoder reads them, scaled and cut into patches."""
    planes = torch.from_numpy(channel_planes(channels)) * float(bundle.input["channel_scale"])
    return channel_patches(planes, int(bundle.input["patch_length"])).numpy()


REPEATED_UP_TO = 200
"""Training users up to which a sweep repeats its draws: where luck decides, and where a draw is
cheap; larger draws overlap so much that one is told apart from the next by the head's seed."""


@dataclass(frozen=True)
class LabelledUsers:
    """The users a downstream task scores on: their channels at the sub-6 GHz carrier and LoS
    flags, and for beam prediction the channels at the mmWave carrier of the users traced at both
    (`beam_rows` of `channels`, user for user with `mmwave`). `source` says where they came from."""

    channels: np.ndarray
    los: np.ndarray
    mmwave: np.ndarray | None
    beam_rows: np.ndarray
    source: dict

    @property
    def beam_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """(sub-6 GHz, mmWave) channels of the users beam prediction reads."""
        if self.mmwave is None:
            raise ValueError("beam prediction needs the users' mmWave channels: give the mmWave scenario")
        return self.channels[self.beam_rows], self.mmwave


def _shape(bundle: LwmBundle) -> dict:
    return {"antennas": bundle.antennas, "subcarriers": bundle.subcarriers, "bandwidth_hz": bundle.bandwidth_hz}


def site_users(
    bundle: LwmBundle, scenario: str, folder: str | None = None, mmwave_scenario: str | None = None
) -> LabelledUsers:
    """Every user with paths in `scenario` (ray-traced LoS flags), shaped as `bundle` reads
    channels; with `mmwave_scenario` (the same site and users traced at the mmWave carrier) also
    the mmWave channels of the users with paths at both carriers."""
    made = scenario_channels(scenario, folder, **_shape(bundle))
    source = {"scenario": scenario, "folder": folder, "users": len(made.channels), "los_users": int(made.los.sum())}
    if mmwave_scenario is None:
        return LabelledUsers(made.channels, made.los, None, np.arange(0), source)
    mmwave = scenario_channels(mmwave_scenario, folder, **_shape(bundle))
    common, rows, columns = np.intersect1d(made.user_indices, mmwave.user_indices, return_indices=True)
    if len(common) < 10:
        raise ValueError(f"{scenario} and {mmwave_scenario} share {len(common)} users with paths; beams need more")
    source.update({"mmwave_scenario": mmwave_scenario, "beam_users": len(common)})
    return LabelledUsers(made.channels, made.los, mmwave.channels[columns], rows, source)


def synthetic_users(bundle: LwmBundle, users: int, seed: int) -> LabelledUsers:
    """Self-made users (lwm_channels.random_paths); their "mmWave" channels are the same paths
    with fresh phases, a stand-in that keeps the code path whole without a second trace."""
    rng = np.random.default_rng([seed, 6])
    paths, los = random_paths(rng, users)
    channels = paths_channels(paths, **_shape(bundle))
    other = paths_channels(paths.with_phases(rng.uniform(-180.0, 180.0, paths.phase_deg.shape)), **_shape(bundle))
    source = {"synthetic_users": users, "seed": seed, "los_users": int(los.sum())}
    return LabelledUsers(channels, los, other, np.arange(users), source)


@dataclass(frozen=True)
class HeadTraining:
    """How a downstream head is trained: Adam with cross-entropy, minibatches, a fixed number of
    epochs, stopped early at `max_updates` optimiser steps when set (a sweep's large fractions
    would otherwise cost hundreds of times its small ones)."""

    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-5
    max_updates: int | None = None


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, training: HeadTraining, seed: int) -> nn.Module:
    """`model` trained on (x, y); batch norm needs two rows, so a last batch of one is dropped."""
    generator = torch.Generator().manual_seed(seed)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(parameters, lr=training.lr, weight_decay=training.weight_decay)
    model.train()
    updates = 0
    for _ in range(training.epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), training.batch_size):
            rows = order[start : start + training.batch_size]
            if len(rows) < 2:
                continue
            loss = F.cross_entropy(model(x[rows]), y[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            updates += 1
            if training.max_updates is not None and updates >= training.max_updates:
                return model.eval()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 512) -> np.ndarray:
    model.eval()
    return torch.cat([model(x[i : i + batch]).argmax(dim=-1) for i in range(0, len(x), batch)]).numpy()


def split_users(n: int, seed: int, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(training pool, test) indices of n labelled users."""
    order = np.random.default_rng([seed, 3]).permutation(n)
    n_test = max(1, round(test_fraction * n))
    return order[n_test:], order[:n_test]


def training_count(fraction: float, users: int, pool: int) -> int:
    """Users a sweep trains on at `fraction` of `users` labelled ones, `pool` of them not tested on."""
    return min(pool, max(2, round(fraction * users)))


REDRAWS = 100
"""Draws draw_training_users tries before it keeps one that holds a single class."""


def draw_training_users(labels: np.ndarray, pool: np.ndarray, count: int, key: Sequence[int]) -> np.ndarray:
    """`count` users of `pool` drawn at random (seeded by `key`), drawn again (`key` and the
    attempt) until they hold two classes at least, where the pool does: six users of one class
    train a head that can only answer that class, whatever it reads, so such a draw scores
    every representation alike and says nothing of them. A draw that holds two classes the first
    time is the plain draw of `key`."""
    several = count >= 2 and len(np.unique(labels[pool])) >= 2
    for attempt in range(REDRAWS):
        train = np.random.default_rng([*key, attempt] if attempt else list(key)).permutation(pool)[:count]
        if not several or len(np.unique(labels[train])) >= 2:
            break
    return train


def distinct_fractions(fractions: Sequence[float], users: int, test_fraction: float = 0.2) -> list[float]:
    """`fractions` sorted, without those that train on as many users as a smaller one (on a
    small site 0.1 % and 0.5 % may both round to a handful)."""
    pool = len(split_users(users, 0, test_fraction)[0])
    kept: dict[int, float] = {}
    for fraction in sorted(fractions):
        kept.setdefault(training_count(fraction, users, pool), fraction)
    return list(kept.values())


def fraction_sweep(
    inputs: Mapping[str, np.ndarray],
    labels: np.ndarray,
    fractions: Sequence[float],
    make_model: Callable[[str, tuple[int, ...], int], nn.Module],
    training: HeadTraining = HeadTraining(),
    seed: int = 0,
    test_fraction: float = 0.2,
    classes: int | None = None,
    repeats: int = 1,
) -> list[dict]:
    """Macro F1 on the test users of a model trained, for each representation in `inputs`
    (arrays with one row per user) and each training fraction, on the same users. A fraction
    counts all the labelled users, as the paper's axes do (0.8: 80 % of them), drawn from those
    not tested on.
    `make_model(name, row_shape, classes)` builds a fresh model with `classes` outputs (by
    default one per label up to the largest); F1 averages over the classes the test users have.
    With `repeats` > 1 each fraction of up to REPEATED_UP_TO users is drawn again that many times
    (other users, another initialisation), because a handful of labelled users makes one draw a
    matter of luck; every representation still trains on the same users in each draw, and a
    draw holds two classes at least (draw_training_users).
    Rows: representation, fraction, train_samples, f1 (the mean over the draws), f1_std, f1_runs."""
    labels = np.asarray(labels, dtype=np.int64)
    classes = int(labels.max()) + 1 if classes is None else classes
    pool, test = split_users(len(labels), seed, test_fraction)
    present = np.unique(labels[test])
    y = torch.from_numpy(labels)
    tensors = {name: torch.as_tensor(np.asarray(values, dtype=np.float32)) for name, values in inputs.items()}
    rows = []
    for fraction in fractions:
        count = training_count(fraction, len(labels), len(pool))
        runs: dict[str, list[float]] = {name: [] for name in inputs}
        for draw in range(repeats if count <= REPEATED_UP_TO else 1):
            train = draw_training_users(labels, pool, count, (seed, 4, count, draw))
            for name, x in tensors.items():
                torch.manual_seed(seed + draw)
                model = make_model(name, tuple(x.shape[1:]), classes)
                model = fit(model, x[train], y[train], training, seed + draw)
                runs[name].append(macro_f1(labels[test], predict(model, x[test]), present))
        for name, scores in runs.items():
            rows.append(
                {
                    "representation": name,
                    "fraction": fraction,
                    "train_samples": count,
                    "f1": float(np.mean(scores)),
                    "f1_std": float(np.std(scores)),
                    "f1_runs": scores,
                }
            )
    return rows


def los_inputs(
    channels: np.ndarray, bundle: LwmBundle, seed: int = 0, encoder: LwmEncoder | None = None
) -> dict[str, np.ndarray]:
    """Each representation of the LoS/NLoS task for `channels`: raw, cls, channel, cls_noisy_5db
    and, given the bundle's torch `encoder`, the frozen layers' tokens cls_finetuned reads."""
    embedder = ChannelEmbedder(bundle)
    embeddings = embedder.embed(channels)
    noisy = embedder.embed(add_noise(channels, NOISY_SNR_DB, np.random.default_rng([seed, 5])))
    inputs = {
        "raw": raw_patches(channels, bundle),
        "cls": embeddings.cls,
        "channel": embeddings.channel,
        "cls_noisy_5db": noisy.cls,
    }
    if encoder is not None:
        inputs["cls_finetuned"] = frozen_tokens(encoder, channels)
    return inputs


def los_model(encoder: LwmEncoder | None) -> Callable[[str, tuple[int, ...], int], nn.Module]:
    """`make_model` of the LoS/NLoS task: the MLP on each representation; on cls_finetuned, the
    MLP on the CLS of `encoder` with its last layers trained too."""

    def make(name: str, shape: tuple[int, ...], classes: int) -> nn.Module:
        if name == "cls_finetuned":
            if encoder is None:
                raise ValueError("cls_finetuned needs the bundle's torch weights (training.checkpoint)")
            return FineTunedCls(encoder, LosHead(encoder.cfg.d_model, classes))
        return LosHead(int(np.prod(shape)), classes)

    return make


def beam_model(name: str, shape: tuple[int, ...], classes: int) -> nn.Module:
    """`make_model` of beam prediction: the residual CNN over the sequence of patches or patch embeddings."""
    return BeamHead(shape[-1], classes)


LOS_FRACTIONS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 0.8)
"""Training fractions of the LoS/NLoS sweep: a handful of users up to the paper's 80 %."""
BEAM_FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.7)
"""Training fractions of the beam prediction sweep, up to the paper's 70 % of the users."""
CODEBOOK_SIZES = (16, 32, 64, 128, 256)


def los_task(
    bundle: LwmBundle,
    channels: np.ndarray,
    los: np.ndarray,
    fractions: Sequence[float] = LOS_FRACTIONS,
    training: HeadTraining = HeadTraining(),
    seed: int = 0,
    repeats: int = 1,
) -> list[dict]:
    """The LoS/NLoS sweep (Fig. 4) over every representation; cls_finetuned when the bundle holds its weights."""
    from .export import load_encoder

    encoder = load_encoder(bundle.checkpoint) if bundle.checkpoint is not None else None
    inputs = los_inputs(channels, bundle, seed, encoder)
    labels = np.asarray(los, dtype=np.int64)
    rows = fraction_sweep(inputs, labels, fractions, los_model(encoder), training, seed, repeats=repeats)
    return [{"task": "los", **row} for row in rows]


def sub6_beam_reference(
    sub6: np.ndarray, mmwave: np.ndarray, codebook_sizes: Sequence[int] = CODEBOOK_SIZES, seed: int = 0
) -> list[dict]:
    """The beam prediction a user's sub-6 GHz channel gives without training: its own best beam
    in the same DFT codebook (both carriers' arrays are half-wavelength ULAs, so a beam points
    the same way at either), scored like `beam_task` on its test tenth of the users. It reads
    the best beam straight off the strongest direction, which is what a head trained on the
    users has to learn."""
    _, test = split_users(len(mmwave), seed, 0.1)
    rows = []
    for beams in codebook_sizes:
        labels, guessed = best_beams(mmwave, beams), best_beams(sub6, beams)
        rows.append(
            {
                "beams": beams,
                "test_users": len(test),
                "f1": macro_f1(labels[test], guessed[test], np.unique(labels[test])),
                "accuracy": float(np.mean(labels[test] == guessed[test])),
            }
        )
    return rows


def codebook_sweeps(
    task: str,
    inputs: Mapping[str, np.ndarray],
    mmwave: np.ndarray,
    make_model: Callable[[str, tuple[int, ...], int], nn.Module],
    codebook_sizes: Sequence[int],
    fractions: Sequence[float],
    training: HeadTraining,
    seed: int,
    repeats: int,
) -> list[dict]:
    """`fraction_sweep` of `inputs` for each codebook size, labelled with the best DFT beam of each
    user's mmWave channel, a tenth of the users tested on (the paper's 70/20/10 split); rows
    tagged with `task` and the codebook size."""
    rows = []
    for beams in codebook_sizes:
        labels = best_beams(mmwave, beams)
        sweep = fraction_sweep(inputs, labels, fractions, make_model, training, seed, 0.1, beams, repeats)
        rows += [{"task": task, "beams": beams, **row} for row in sweep]
    return rows


DIRECTION_BEAMS = 256
"""Beams of the sub-6 GHz direction profile `beam_probe_inputs` gives: 32 antennas oversampled eight times."""


def beam_probe_inputs(sub6: np.ndarray, bundle: LwmBundle) -> dict[str, np.ndarray]:
    """What the beam probe reads of each user's sub-6 GHz channel: its raw values at unit RMS
    (raw_unit_rms), its CLS and channel embeddings, and its direction profile (sub6_direction:
    the power of each of DIRECTION_BEAMS DFT beams over the strongest's), the angle a head
    would need, computed rather than learnt."""
    raw = raw_patches(sub6, bundle)
    gains = beam_gains(sub6, DIRECTION_BEAMS)
    embeddings = ChannelEmbedder(bundle).embed(sub6)
    return {
        "raw_unit_rms": raw / np.sqrt(np.mean(raw**2, axis=(1, 2), keepdims=True)).clip(min=1e-30),
        "cls": embeddings.cls,
        "channel": embeddings.channel,
        "sub6_direction": (gains / gains.max(axis=1, keepdims=True).clip(min=1e-30)).astype(np.float32),
    }


def beam_probe(
    bundle: LwmBundle,
    sub6: np.ndarray,
    mmwave: np.ndarray,
    codebook_sizes: Sequence[int] = CODEBOOK_SIZES,
    fractions: Sequence[float] = BEAM_FRACTIONS,
    training: HeadTraining = HeadTraining(),
    seed: int = 0,
    repeats: int = 1,
) -> list[dict]:
    """How much of the best mmWave beam each input of `beam_probe_inputs` holds: one head for
    all of them, the LoS task's MLP (flattened input), on the same users and test tenth as
    `beam_task`. Not the paper's figure: it tells whether the label can be learnt from that
    many users at all (sub6_direction) and which representation keeps the direction."""
    inputs = beam_probe_inputs(sub6, bundle)
    sweep = (fractions, training, seed, repeats)
    return codebook_sweeps("beam_probe", inputs, mmwave, los_model(None), codebook_sizes, *sweep)


def beam_task(
    bundle: LwmBundle,
    sub6: np.ndarray,
    mmwave: np.ndarray,
    codebook_sizes: Sequence[int] = CODEBOOK_SIZES,
    fractions: Sequence[float] = BEAM_FRACTIONS,
    training: HeadTraining = HeadTraining(),
    seed: int = 0,
    repeats: int = 1,
) -> list[dict]:
    """The beam prediction sweep (Fig. 3): raw sub-6 GHz patches vs their channel embeddings,
    labelled with the best DFT beam of each user's mmWave channel, for each codebook size. A
    tenth of the users is tested on, as the paper's 70/20/10 split does; its 20 % validation
    share is not drawn, the heads train for a fixed number of epochs."""
    inputs = {"raw": raw_patches(sub6, bundle), "channel": ChannelEmbedder(bundle).embed(sub6).channel}
    return codebook_sweeps("beam", inputs, mmwave, beam_model, codebook_sizes, fractions, training, seed, repeats)
