"""The LWM pretraining corpus: channel matrices from DeepMIMO scenarios and self-made users.

Channels are made by lwm_channels (one formula for both sources) at the model's antennas and
subcarriers and held as complex64; a `ChannelSet` hands out their real and imaginary planes
(lwm_channels.channel_planes), which the encoder scales and cuts into patches itself, so that
training and the exported graph read the same input. A `PhaseDrawSet` hands out the training
users again with their paths' phases redrawn (`data.phase_draws`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from lwmspectro.config_base import ConfigBase, bounded
from lwmspectro.lwm_channels import (
    BANDWIDTH_HZ,
    ChannelPaths,
    channel_planes,
    combine_paths,
    path_responses,
    paths_channels,
    random_paths,
    scenario_channels,
)

from .model import LwmConfig


@dataclass(frozen=True)
class LwmDataConfig(ConfigBase):
    """Where the pretraining channels come from; at least one source."""

    scenarios: list = field(default_factory=list)
    """DeepMIMO v4 scenarios (with path phases and departure angles) in `folder`."""
    folder: str | None = None
    """Scenarios folder; null: the bundled scenarios."""
    synthetic_users: int = bounded(0, 0, 10_000_000)
    """Users of random multipath (lwm_channels.random_paths), drawn from the run's seed."""
    bandwidth_hz: float = bounded(BANDWIDTH_HZ, 1.0)
    val_fraction: float = bounded(0.2, 0.0, 0.9)
    """The share held out for validation (the paper's 80/20)."""
    phase_draws: int = bounded(1, 1, 100_000)
    """How many times an epoch shows each training user: once with its traced path phases, the other
    times with uniform random ones. A user moved by a few wavelengths keeps its paths' delays, angles
    and powers while their phases change independently (small-scale fading), so each draw is a channel
    the same site could give; the ray tracer's phases are one such draw. Validation keeps the traced
    channels."""

    def __post_init__(self):
        if not all(isinstance(name, str) and name for name in self.scenarios):
            raise ValueError(f"scenarios: {self.scenarios!r} is not a list of scenario names")
        if not self.scenarios and not self.synthetic_users:
            raise ValueError("no channels: name scenarios, or set synthetic_users")


def channel_shape(data: LwmDataConfig, model: LwmConfig) -> dict:
    """The keyword arguments of lwm_channels' channel formula for this corpus and model."""
    return {"antennas": model.antennas, "subcarriers": model.subcarriers, "bandwidth_hz": data.bandwidth_hz}


def load_channels(data: LwmDataConfig, model: LwmConfig, seed: int) -> tuple[np.ndarray, ChannelPaths]:
    """(complex64 (users, M, N), their paths): every active user of each scenario, then the self-made users."""
    shape = channel_shape(data, model)
    made = [scenario_channels(name, data.folder, **shape) for name in data.scenarios]
    channels, paths = [m.channels for m in made], [m.paths for m in made]
    if data.synthetic_users:
        synthetic, _ = random_paths(np.random.default_rng([seed, 1]), data.synthetic_users)
        channels.append(paths_channels(synthetic, **shape))
        paths.append(synthetic)
    return np.concatenate(channels), ChannelPaths.concatenate(paths)


def split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: a seeded permutation, at least one channel in each when n >= 2."""
    order = np.random.default_rng([seed, 2]).permutation(n)
    n_val = min(n - 1, max(1, round(val_fraction * n))) if n >= 2 and val_fraction > 0 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class ChannelSet(Dataset):
    """The planes of some channels, as {"planes": float32 (2, M, N)} items."""

    def __init__(self, channels: np.ndarray):
        self.channels = np.ascontiguousarray(channels, dtype=np.complex64)

    def __len__(self) -> int:
        return len(self.channels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"planes": torch.from_numpy(channel_planes(self.channels[index : index + 1])[0])}


class PhaseDrawSet(ChannelSet):
    """Each user `draws` times, as {"planes"} items: item i is user i mod U at draw i // U, draw 0
    with the traced phases and draw d > 0 with phases drawn from (seed, d, user), so that an epoch
    is a fixed function of the seed and a resumed run sees the same channels. Each path's array
    and delay responses are computed once; a draw only recombines them with new gains."""

    def __init__(self, channels: np.ndarray, paths: ChannelPaths, draws: int, seed: int, **shape):
        super().__init__(channels)
        if len(paths.delay_s) != len(self.channels):
            raise ValueError(f"{len(paths.delay_s)} users of paths for {len(self.channels)} channels")
        self.draws, self.seed = draws, seed
        if draws > 1:
            gains, steering, delay_response = path_responses(paths, **shape)
            self.amplitudes = np.abs(gains)
            self.steering, self.delay_response = steering.astype(np.complex64), delay_response.astype(np.complex64)

    def __len__(self) -> int:
        return len(self.channels) * self.draws

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        draw, user = divmod(index, len(self.channels))
        if draw == 0:
            return super().__getitem__(user)
        amplitudes = self.amplitudes[user : user + 1]
        phases = np.random.default_rng([self.seed, 3, draw, user]).uniform(-np.pi, np.pi, amplitudes.shape)
        channel = combine_paths(
            amplitudes * np.exp(1j * phases), self.steering[user : user + 1], self.delay_response[user : user + 1]
        )
        return {"planes": torch.from_numpy(channel_planes(channel)[0])}
