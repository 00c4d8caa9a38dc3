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


def resample_segments(x: np.ndarray, from_rate_hz: float, to_rate_hz: float, starts, length: int) -> np.ndarray:
    """resample_to(x)[s : s + length] for each output-rate start s, resampling only around
    each segment (the dataset generator needs a few short frames of a long stream).

    Each segment is cut from the input on the polyphase grid (a multiple of `down` input
    samples, so output samples land exactly where the whole-stream resampler puts them)
    with a margin longer than the filter's half-length; interior samples then equal the
    whole-stream result to float precision. Returns (len(starts), length) complex64.
    """
    up, down = rational_ratio(from_rate_hz, to_rate_hz)
    starts = np.atleast_1d(np.asarray(starts, np.int64))
    if up == down:
        index = starts[:, None] + np.arange(length)[None, :]
        padded = np.concatenate([np.asarray(x, np.complex64), np.zeros(max(0, index.max() + 1 - len(x)), np.complex64)])
        return padded[index]
    margin_in = -(-20 * max(up, down) // up) + 8
    first_block = (starts * down // up) // down - -(-margin_in // down)
    in_start = first_block * down
    in_len = -(-(length * down) // up) + 2 * margin_in + 2 * down
    index = in_start[:, None] + np.arange(in_len)[None, :]
    inside = (index >= 0) & (index < len(x))
    chunks = np.zeros(index.shape, np.complex64)
    chunks[inside] = np.asarray(x)[index[inside]]
    out = scipy.signal.resample_poly(chunks, up, down, axis=-1)
    offset = starts - first_block * up
    return np.take_along_axis(out, offset[:, None] + np.arange(length)[None, :], axis=-1).astype(np.complex64)
