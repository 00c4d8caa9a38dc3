"""Mobility classes: a maximum Doppler drawn from the class's range, and the speed that gives it."""

from __future__ import annotations

import numpy as np
from scipy.constants import speed_of_light

from ..labels import DOPPLER_RANGES_HZ, MOBILITY_CLASSES, check_choice
from .fading import require_generator

MAX_SPEED_KMH = 500.0
"""The fastest receiver drawn (a high-speed train): at a low carrier it caps a class's fD."""


def draw_speed(mobility: str, rng: np.random.Generator, carrier_hz: float) -> float:
    """Speed in km/h whose Doppler at `carrier_hz` lies in `labels.DOPPLER_RANGES_HZ[mobility]`:
    fD uniform for static (scatterers barely moving), log-uniform otherwise (fD spans decades),
    capped at MAX_SPEED_KMH."""
    check_choice("mobility", mobility, MOBILITY_CLASSES)
    require_generator(rng)
    low, high = DOPPLER_RANGES_HZ[mobility]
    high = min(high, doppler_hz(MAX_SPEED_KMH, carrier_hz))
    if high <= low:
        raise ValueError(f"no {mobility} speed up to {MAX_SPEED_KMH:g} km/h reaches {low:g} Hz at {carrier_hz:g} Hz")
    fd = rng.uniform(low, high) if low == 0 else float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return speed_for_doppler(fd, carrier_hz)


def doppler_hz(speed_kmh: float, carrier_hz: float) -> float:
    """Maximum Doppler shift fD = v fc / c of a receiver moving at `speed_kmh`."""
    if not np.isfinite(speed_kmh) or speed_kmh < 0:
        raise ValueError(f"speed must be a finite, non-negative number of km/h, got {speed_kmh}")
    _check_carrier(carrier_hz)
    return float(speed_kmh / 3.6 * carrier_hz / speed_of_light)


def speed_for_doppler(fd_hz: float, carrier_hz: float) -> float:
    """The speed in km/h at which a receiver sees maximum Doppler `fd_hz` at `carrier_hz`."""
    _check_carrier(carrier_hz)
    return float(fd_hz * speed_of_light / carrier_hz * 3.6)


def _check_carrier(carrier_hz: float) -> None:
    if not np.isfinite(carrier_hz) or carrier_hz <= 0:
        raise ValueError(f"carrier frequency must be positive (Hz), got {carrier_hz}")
