"""Mobility classes: a speed drawn from the class's range, and the Doppler it causes."""

from __future__ import annotations

import numpy as np
from scipy.constants import speed_of_light

from ..labels import MOBILITY_CLASSES, SPEED_RANGES_KMH, check_choice
from .fading import require_generator


def draw_speed(mobility: str, rng: np.random.Generator) -> float:
    """Speed in km/h drawn uniformly from `labels.SPEED_RANGES_KMH[mobility]`."""
    check_choice("mobility", mobility, MOBILITY_CLASSES)
    require_generator(rng)
    low, high = SPEED_RANGES_KMH[mobility]
    return float(rng.uniform(low, high)) if high > low else float(low)


def doppler_hz(speed_kmh: float, carrier_hz: float) -> float:
    """Maximum Doppler shift fD = v fc / c of a receiver moving at `speed_kmh`."""
    if not np.isfinite(speed_kmh) or speed_kmh < 0:
        raise ValueError(f"speed must be a finite, non-negative number of km/h, got {speed_kmh}")
    if not np.isfinite(carrier_hz) or carrier_hz <= 0:
        raise ValueError(f"carrier frequency must be positive (Hz), got {carrier_hz}")
    return float(speed_kmh / 3.6 * carrier_hz / speed_of_light)
