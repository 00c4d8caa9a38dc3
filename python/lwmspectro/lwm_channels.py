"""The LWM paper's channel matrices (Table I) from DeepMIMO v4 scenarios.

Each active user's channel is H[m, n] = sum_p sqrt(P_p) e^{j phi_p} a_m(aod_p) e^{-j 2 pi f_n tau_p}:
a half-wavelength ULA of M base-station antennas along y (DeepMIMO's `bs_antenna` shape [M, 1],
as the LWM reference data uses), a single-antenna user, and N subcarriers at f_n = n B / N as
DeepMIMO's OFDM generator places them. The sum is written here in numpy, following DeepMIMO's
conventions, rather than through `Dataset.compute_channels`: that call also needs the scene
objects, arrival elevations and a writable dataset, and prints to stdout, none of which the
formula needs. Scenario files are read through the project loader's safeguards (no pickle, no
stdin prompt).

`paths_channels` is that formula, once: `scenario_channels` feeds it a traced site's paths and
`random_paths` draws paths of its own (a direct path for line-of-sight users, scattered ones
for all), for tests and for runs without a traced site. `channel_planes` splits channels into
the real and imaginary planes the LWM model reads (Eq. 1 of the LWM paper).

A channel needs each path's phase and departure angles. A scenario traced without them (the
shipped sites keep only what the TDL channel needs) is refused with the missing arrays named;
`lwmspectro scenarios build --channel-paths` traces sites with them kept.
"""

from __future__ import annotations

import dataclasses
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

TRACE_HINT = (
    "trace sites with them kept by `lwmspectro scenarios build --channel-paths --carrier-ghz 3.5 28` "
    "(docs/lwm-channels.md)"
)

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
    paths: ChannelPaths
    """The paths the channels were made from, user for user (pretraining redraws their phases)."""


@dataclass(frozen=True, eq=False)
class ChannelPaths:
    """Each user's propagation paths as (users, paths) arrays in DeepMIMO's units; a path a
    user lacks has a NaN delay (its other entries are then not read)."""

    power_db: np.ndarray
    phase_deg: np.ndarray
    delay_s: np.ndarray
    aod_az_deg: np.ndarray
    """Departure azimuth from +x, degrees."""
    aod_el_deg: np.ndarray
    """Departure zenith angle from +z, degrees (DeepMIMO's aod_el: 90 is horizontal, more points down)."""

    def with_phases(self, phase_deg: np.ndarray) -> ChannelPaths:
        """The same paths with other phases: the geometry seen at another carrier, where each
        path's phase (its delay times the carrier, and its interactions) is another number."""
        return dataclasses.replace(self, phase_deg=np.asarray(phase_deg, dtype=np.float64))

    def select(self, users: np.ndarray | slice) -> ChannelPaths:
        """The paths of some users."""
        return ChannelPaths(**{name: getattr(self, name)[users] for name in PATH_FIELDS})

    @staticmethod
    def concatenate(parts: list[ChannelPaths]) -> ChannelPaths:
        """The users of every part, each padded with absent paths (NaN delay) to the most paths of any."""
        width = max(part.delay_s.shape[1] for part in parts)

        def padded(part: ChannelPaths, name: str) -> np.ndarray:
            values = np.asarray(getattr(part, name), dtype=np.float64)
            extra = np.full((len(values), width - values.shape[1]), np.nan if name == "delay_s" else 0.0)
            return np.concatenate([values, extra], axis=1)

        return ChannelPaths(**{name: np.concatenate([padded(part, name) for part in parts]) for name in PATH_FIELDS})


PATH_FIELDS = tuple(field.name for field in dataclasses.fields(ChannelPaths))


def ula_steering(antennas: int, azimuth_deg: np.ndarray, zenith_deg: np.ndarray) -> np.ndarray:
    """Unnormalised response of a half-wavelength ULA along y to departure angles, (..., antennas).

    Azimuth is measured from +x, the zenith angle from +z (90 degrees: horizontal), as DeepMIMO
    stores them in aod_az and aod_el and its array response reads them.
    """
    azimuth = np.deg2rad(np.asarray(azimuth_deg, dtype=np.float64))
    polar = np.deg2rad(np.asarray(zenith_deg, dtype=np.float64))
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
        raise ValueError(
            f"scenario {scenario!r} not found in {root} (scenarios there: {', '.join(present) or 'none'}); {TRACE_HINT}"
        )
    scenario_folder = root / scenario
    missing = [name for name in CHANNEL_MATRICES if not any(scenario_folder.glob(f"{name}_*.npz"))]
    if missing:
        raise ValueError(
            f"scenario {scenario!r} in {root} has no {', '.join(missing)} arrays: channels need each "
            f"path's phase and departure angles; {TRACE_HINT}"
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
    user_paths = ChannelPaths(
        power_db=paths["power"][users],
        phase_deg=paths["phase"][users],
        delay_s=paths["delay"][users],
        aod_az_deg=paths["aod_az"][users],
        aod_el_deg=paths["aod_el"][users],
    )
    return LwmChannels(
        channels=paths_channels(user_paths, antennas=antennas, subcarriers=subcarriers, bandwidth_hz=bandwidth_hz),
        los=los[users],
        user_indices=users,
        carrier_hz=float(carrier_hz),
        bandwidth_hz=float(bandwidth_hz),
        scenario=scenario,
        paths=user_paths,
    )


def paths_channels(
    paths: ChannelPaths,
    *,
    antennas: int = ANTENNAS,
    subcarriers: int = SUBCARRIERS,
    bandwidth_hz: float = BANDWIDTH_HZ,
) -> np.ndarray:
    """complex64 (users, antennas, subcarriers): the module's channel formula over `paths`."""
    return combine_paths(*path_responses(paths, antennas=antennas, subcarriers=subcarriers, bandwidth_hz=bandwidth_hz))


def path_responses(
    paths: ChannelPaths,
    *,
    antennas: int = ANTENNAS,
    subcarriers: int = SUBCARRIERS,
    bandwidth_hz: float = BANDWIDTH_HZ,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The channel formula's factors per path: complex gains (users, paths), 0 for an absent path;
    array responses (users, paths, antennas); delay responses (users, paths, subcarriers)."""
    delays_s = np.asarray(paths.delay_s, dtype=np.float64)
    valid = np.isfinite(delays_s)
    amplitudes = np.sqrt(10.0 ** (np.asarray(paths.power_db, dtype=np.float64) / 10.0))
    phases = np.deg2rad(np.asarray(paths.phase_deg, dtype=np.float64))
    gains = np.where(valid, amplitudes * np.exp(1j * phases), 0.0)
    steering = ula_steering(antennas, np.nan_to_num(paths.aod_az_deg), np.nan_to_num(paths.aod_el_deg))
    frequencies = subcarrier_frequencies(subcarriers, bandwidth_hz)
    delay_response = np.exp(-2j * np.pi * np.nan_to_num(delays_s)[..., None] * frequencies)
    return gains, steering, delay_response


def combine_paths(gains: np.ndarray, steering: np.ndarray, delay_response: np.ndarray) -> np.ndarray:
    """complex64 (users, antennas, subcarriers): the sum over paths of gain x array response x delay response,
    as one matrix product per user (ten times faster than the equivalent einsum on small users)."""
    return np.matmul(np.swapaxes(steering, 1, 2) * gains[:, None, :], delay_response).astype(np.complex64)


SPEED_OF_LIGHT_M_S = 299_792_458.0


def random_paths(
    rng: np.random.Generator,
    users: int,
    *,
    max_paths: int = 6,
    los_probability: float = 0.5,
    direct_power_db: tuple[float, float] = (-110.0, -80.0),
) -> tuple[ChannelPaths, np.ndarray]:
    """(paths, bool LoS flags) of `users` users, each 20 to 300 m from the base station.

    A line-of-sight user has a direct path (the earliest and strongest, its power drawn from
    `direct_power_db`, by default -110 to -80 dB: free-space loss plus some blockage over such
    distances at 3.5 GHz) and up to max_paths - 1 scattered paths 6 to 25 dB weaker; a user without
    one has 2 (when max_paths allows) to max_paths scattered paths 10 to 30 dB below the direct
    path it lacks. Scattered
    paths arrive 20 ns to 1 us after the direct delay, from any azimuth; phases are uniform."""
    _check_at_least_one("users", users)
    _check_at_least_one("max_paths", max_paths)
    if not 0.0 <= los_probability <= 1.0:
        raise ValueError(f"los_probability must lie in [0, 1], got {los_probability!r}")
    los = rng.random(users) < los_probability
    shape = (users, max_paths)
    direct_delay_s = rng.uniform(20.0, 300.0, users) / SPEED_OF_LIGHT_M_S
    direct_power = rng.uniform(*direct_power_db, users)
    delay_s = direct_delay_s[:, None] + rng.uniform(20e-9, 1e-6, shape)
    loss_db = np.where(los[:, None], rng.uniform(6.0, 25.0, shape), rng.uniform(10.0, 30.0, shape))
    power_db = direct_power[:, None] - loss_db
    aod_az = rng.uniform(-180.0, 180.0, shape)
    aod_el = rng.uniform(80.0, 120.0, shape)
    delay_s[los, 0] = direct_delay_s[los]
    power_db[los, 0] = direct_power[los]
    aod_el[los, 0] = rng.uniform(90.0, 110.0, int(los.sum()))
    present = np.where(
        los, rng.integers(1, max_paths + 1, users), rng.integers(min(2, max_paths), max_paths + 1, users)
    )
    delay_s[np.arange(max_paths) >= present[:, None]] = np.nan
    paths = ChannelPaths(
        power_db=power_db,
        phase_deg=rng.uniform(-180.0, 180.0, shape),
        delay_s=delay_s,
        aod_az_deg=aod_az,
        aod_el_deg=aod_el,
    )
    return paths, los


def channel_planes(channels: np.ndarray) -> np.ndarray:
    """float32 (users, 2, M, N): the real and the imaginary part of each channel (LWM Eq. 1),
    the planes the LWM model cuts into patches."""
    channels = np.asarray(channels)
    return np.stack([channels.real, channels.imag], axis=1).astype(np.float32)


def _check_positive(field: str, value: float) -> None:
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{field} must be a positive number of hertz, got {value!r}")


def _check_at_least_one(field: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"{field} must be a whole number of at least 1, got {value!r}")
