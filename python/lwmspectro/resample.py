"""Rational resampling between a source rate and the analysis rate."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import scipy.signal


def rational_ratio(from_rate_hz: float, to_rate_hz: float, max_denominator: int = 10_000) -> tuple[int, int]:
    """(up, down) with to/from = up/down, as small as the rates allow."""
    if from_rate_hz <= 0 or to_rate_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate_hz} and {to_rate_hz}")
    ratio = Fraction(to_rate_hz / from_rate_hz).limit_denominator(max_denominator)
    return ratio.numerator, ratio.denominator


def resample_to(iq: np.ndarray, from_rate_hz: float, to_rate_hz: float) -> np.ndarray:
    """Resample along the last axis with scipy's polyphase filter; complex64 out."""
    up, down = rational_ratio(from_rate_hz, to_rate_hz)
    if up == down:
        return np.asarray(iq, np.complex64)
    return scipy.signal.resample_poly(np.asarray(iq), up, down, axis=-1).astype(np.complex64)
