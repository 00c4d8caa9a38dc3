"""The LWM paper's channel matrices (Table I) from DeepMIMO v4 scenarios.

Each active user's channel is H[m, n] = sum_p sqrt(P_p) e^{j phi_p} a_m(aod_p) e^{-j 2 pi f_n tau_p}:
a half-wavelength ULA of M base-station antennas along y (DeepMIMO's `bs_antenna` shape [M, 1],
as the LWM reference data uses), a single-antenna user, and N subcarriers at f_n = n B / N as
DeepMIMO's OFDM generator places them. The sum is written here in numpy, following DeepMIMO's
conventions, rather than through `Dataset.compute_channels`: that call also needs the scene
objects, arrival elevations and a writable dataset, and prints to stdout, none of which the
formula needs. Scenario files are read through the project loader's safeguards (no pickle, no
stdin prompt).

A channel needs each path's phase and departure angles. A scenario traced without them (the
shipped sites keep only what the TDL channel needs) is refused with the missing arrays named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lwmspectro.scenarios.loader import (
    _quiet_deepmimo,
    check_plain_arrays,
    list_scenarios,
    resolve_folder,
)

ANTENNAS = 32
"""Base-station antennas M of the paper's Table I."""

SUBCARRIERS = 32
"""Subcarriers N of the paper's Table I."""

BANDWIDTH_HZ = 20e6
"""Default bandwidth: 32 subcarriers over 20 MHz resolve 50 ns and span 1.6 us of delay."""

CHANNEL_MATRICES = ["delay", "power", "phase", "aod_az", "aod_el", "inter", "aoa_az", "rx_pos"]
"""The path arrays a channel is built from; DeepMIMO derives the LoS flag from `inter` and the
path count from `aoa_az` and the user count from `rx_pos`."""

CARRIER_TOLERANCE = 1e-3
"""Relative mismatch allowed between the requested and the traced carrier (traced carriers are
stored as float32)."""


@dataclass(frozen=True, eq=False)
class LwmChannels:
    """Channels of a scenario's active users, as the LWM paper feeds them to the model."""

    channels: np.ndarray
    """complex64, (users, M antennas, N subcarriers)."""
    los: np.ndarray
    """bool, (users,): the ray tracer's line-of-sight flag."""
    user_indices: np.ndarray
    """int64, (users,): each channel's user index in the scenario."""
    carrier_hz: float
    bandwidth_hz: float
    scenario: str


def ula_steering(antennas: int, azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """Unnormalised response of a half-wavelength ULA along y to departure angles, (..., antennas).

    Elevation is measured from the horizontal plane (DeepMIMO's aod_el), azimuth from +x.
    """
    azimuth = np.deg2rad(np.asarray(azimuth_deg, dtype=np.float64))
    polar = np.pi / 2 - np.deg2rad(np.asarray(elevation_deg, dtype=np.float64))
    spatial_phase = np.pi * np.sin(polar) * np.sin(azimuth)
    return np.exp(1j * spatial_phase[..., None] * np.arange(antennas))


def subcarrier_frequencies(subcarriers: int, bandwidth_hz: float) -> np.ndarray:
    """Baseband frequencies of the subcarriers, n B / N, as DeepMIMO's OFDM generator uses."""
    return np.arange(subcarriers) * (bandwidth_hz / subcarriers)


def scenario_channels(
    scenario: str,
    folder: str | Path | None = None,
    *,
    carrier_hz: float | None = None,
    bandwidth_hz: float = BANDWIDTH_HZ,
    antennas: int = ANTENNAS,
    subcarriers: int = SUBCARRIERS,
) -> LwmChannels:
    """Channels of every user with paths in `scenario` (a shipped site, or one in `folder`).

    `carrier_hz` defaults to the traced carrier; a different one is refused, because path powers
    and phases are only valid at the frequency they were traced at.
    """
    _check_positive("bandwidth_hz", bandwidth_hz)
    _check_at_least_one("antennas", antennas)
    _check_at_least_one("subcarriers", subcarriers)
    if carrier_hz is not None:
        _check_positive("carrier_hz", carrier_hz)
    root = resolve_folder(folder)
    present = list_scenarios(root)
    if scenario not in present:
        raise ValueError(f"scenario {scenario!r} not found in {root} (scenarios there: {', '.join(present) or 'none'})")
    scenario_folder = root / scenario
    missing = [name for name in CHANNEL_MATRICES if not any(scenario_folder.glob(f"{name}_*.npz"))]
    if missing:
        raise ValueError(
            f"scenario {scenario!r} in {root} has no {', '.join(missing)} arrays: channels need each "
            "path's phase and departure angles; trace it with those kept"
        )
    check_plain_arrays(scenario_folder)
    with _quiet_deepmimo(root) as dm:
        dataset = dm.load(scenario, matrices=CHANNEL_MATRICES)
        if isinstance(dataset, dm.MacroDataset):
            dataset = dataset.datasets[0]
        paths = {
            name: np.asarray(dataset[name], dtype=np.float64)
            for name in ("delay", "power", "phase", "aod_az", "aod_el")
        }
        num_paths = np.asarray(dataset.num_paths, dtype=np.int64)
        los = np.asarray(dataset.los) == 1
    traced_carrier_hz = float(dataset.rt_params["frequency"])
    if carrier_hz is None:
        carrier_hz = traced_carrier_hz
    elif abs(carrier_hz - traced_carrier_hz) > CARRIER_TOLERANCE * traced_carrier_hz:
        raise ValueError(
            f"carrier_hz {carrier_hz:g} differs from the {traced_carrier_hz:g} Hz scenario {scenario!r} "
            "was traced at; trace the scenario at that carrier"
        )
    users = np.flatnonzero(num_paths > 0)
    delays_s = paths["delay"][users]
    valid = np.isfinite(delays_s)
    amplitudes = np.sqrt(10.0 ** (paths["power"][users] / 10.0))
    phases = np.deg2rad(paths["phase"][users])
    gains = np.where(valid, amplitudes * np.exp(1j * phases), 0.0)
    steering = ula_steering(
        antennas,
        np.nan_to_num(paths["aod_az"][users]),
        np.nan_to_num(paths["aod_el"][users]),
    )
    frequencies = subcarrier_frequencies(subcarriers, bandwidth_hz)
    delay_response = np.exp(-2j * np.pi * np.nan_to_num(delays_s)[..., None] * frequencies)
    channels = np.einsum("up,upm,upn->umn", gains, steering, delay_response)
    return LwmChannels(
        channels=channels.astype(np.complex64),
        los=los[users],
        user_indices=users,
        carrier_hz=float(carrier_hz),
        bandwidth_hz=float(bandwidth_hz),
        scenario=scenario,
    )


def _check_positive(field: str, value: float) -> None:
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{field} must be a positive number of hertz, got {value!r}")


def _check_at_least_one(field: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"{field} must be a whole number of at least 1, got {value!r}")
