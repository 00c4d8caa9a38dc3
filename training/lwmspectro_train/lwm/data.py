"""The LWM pretraining corpus: channel matrices from DeepMIMO scenarios and self-made users.

Channels are made by lwm_channels (one formula for both sources) at the model's antennas and
subcarriers and held as complex64; a `ChannelSet` hands out their real and imaginary planes
(lwm_channels.channel_planes), which the encoder scales and cuts into patches itself, so that
training and the exported graph read the same input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from lwmspectro.config_base import ConfigBase, bounded
from lwmspectro.lwm_channels import BANDWIDTH_HZ, channel_planes, paths_channels, random_paths, scenario_channels

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

    def __post_init__(self):
        if not all(isinstance(name, str) and name for name in self.scenarios):
            raise ValueError(f"scenarios: {self.scenarios!r} is not a list of scenario names")
        if not self.scenarios and not self.synthetic_users:
            raise ValueError("no channels: name scenarios, or set synthetic_users")


def load_channels(data: LwmDataConfig, model: LwmConfig, seed: int) -> np.ndarray:
    """complex64 (users, M, N): every active user of each scenario, then the self-made users."""
    parts = [
        scenario_channels(
            name,
            data.folder,
            bandwidth_hz=data.bandwidth_hz,
            antennas=model.antennas,
            subcarriers=model.subcarriers,
        ).channels
        for name in data.scenarios
    ]
    if data.synthetic_users:
        paths, _ = random_paths(np.random.default_rng([seed, 1]), data.synthetic_users)
        parts.append(
            paths_channels(
                paths, antennas=model.antennas, subcarriers=model.subcarriers, bandwidth_hz=data.bandwidth_hz
            )
        )
    return np.concatenate(parts)


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
