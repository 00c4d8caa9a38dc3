"""Rational resampling between a source rate and the analysis rate."""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np
import scipy.signal


KAISER_BETA = 8.0
"""Kaiser window shape of the segment interpolator's sinc (about -80 dB side lobes)."""


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



@functools.lru_cache(maxsize=32)
def _polyphase_kernel(up: int, half_width: int) -> np.ndarray:
    """(up, 2 half_width) Kaiser-windowed sinc taps, one row per output phase p/up."""
    distance = (np.arange(up) / up)[:, None] - np.arange(-half_width + 1, half_width + 1)[None, :]
    window = np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (distance / half_width) ** 2, 0, None))) / np.i0(KAISER_BETA)
    return (np.sinc(distance) * window).astype(np.float32)


def resample_segments(x: np.ndarray, from_rate_hz: float, to_rate_hz: float, starts, length: int,
                      half_width: int = 16) -> np.ndarray:
    """resample_to(x)[s : s + length] for each output-rate start s, computed only around the
    segments (the dataset generator needs a few short frames of a long stream).

    Up-sampling (and equal rates) evaluates a Kaiser-windowed sinc, cut off at the input's
    Nyquist frequency, at each output sample's fractional input position: one gather and one
    product, far cheaper than running the polyphase filter over every segment (scipy has no
    evaluate-at-positions resampler). Down-sampling needs an anti-alias filter and goes
    through scipy's resample_poly on the whole stream. Returns (len(starts), length) complex64.
    """
    starts = np.atleast_1d(np.asarray(starts, np.int64))
    x = np.asarray(x, np.complex64)
    if from_rate_hz > to_rate_hz:
        whole = resample_to(x, from_rate_hz, to_rate_hz)
        whole = np.concatenate([whole, np.zeros(max(0, int(starts.max()) + length - len(whole)), np.complex64)])
        return whole[starts[:, None] + np.arange(length)[None, :]]
    up, down = rational_ratio(from_rate_hz, to_rate_hz)
    out_index = starts[:, None] + np.arange(length)[None, :]
    if up == down:
        padded = np.concatenate([x, np.zeros(max(0, int(out_index.max()) + 1 - len(x)), np.complex64)])
        return padded[out_index]
    base = out_index * down // up
    phase = out_index * down % up
    source_taps = np.arange(-half_width + 1, half_width + 1)
    kernel = _polyphase_kernel(up, half_width)[phase]
    source = base[..., None] + source_taps
    inside = (source >= 0) & (source < len(x))
    gathered = np.where(inside, x[np.clip(source, 0, len(x) - 1)], 0)
    return np.einsum("...k,...k->...", gathered, kernel).astype(np.complex64)
