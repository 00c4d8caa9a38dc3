"""AWGN at a labelled SNR, and the measurement that checks it.

The SNR label is the signal power over the noise power inside the signal's occupied
bandwidth B, both measured after the channel:

    SNR = P_sig / (sigma^2 B / fs),   so   sigma^2 = P_sig (fs / B) / SNR_lin,

where sigma^2 is the noise variance per complex sample (white over the full sample rate
fs) and P_sig is the mean power of the channel output over the samples in which the
transmitter is active (gaps between packets do not dilute it). A 20 MHz signal sampled
at 30.72 MS/s at SNR 10 dB therefore gets noise 10 dB below it inside its 20 MHz, and
1.9 dB more across the whole 30.72 MHz.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from ..labels import SNR_RANGE_DB
from .fading import require_generator


def mean_power(y, active=None) -> float:
    """Mean |y|^2 over the samples where `active` (same shape as y) is true; all if None."""
    power = np.abs(np.asarray(y)) ** 2
    if active is not None:
        active = np.broadcast_to(np.asarray(active, bool), power.shape)
        if not active.any():
            raise ValueError("no active samples to measure the signal power over")
        power = power[active]
    if power.size == 0:
        raise ValueError("cannot measure the power of an empty signal")
    return float(power.mean())


def _check_bandwidth(occupied_bw_hz: float, sample_rate_hz: float) -> None:
    if not np.isfinite(sample_rate_hz) or sample_rate_hz <= 0:
        raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
    if not np.isfinite(occupied_bw_hz) or not 0 < occupied_bw_hz <= sample_rate_hz:
        raise ValueError(f"occupied_bw_hz must lie in (0, sample rate = {sample_rate_hz:g}] Hz, got {occupied_bw_hz}")


def noise_variance(snr_db: float, occupied_bw_hz: float, sample_rate_hz: float, signal_power: float) -> float:
    """Noise variance per complex sample that puts `signal_power` at `snr_db` in the occupied band."""
    low, high = SNR_RANGE_DB
    if not np.isfinite(snr_db) or not low <= snr_db <= high:
        raise ValueError(f"SNR {snr_db} dB is out of range; valid: {low:g} to {high:g} dB")
    _check_bandwidth(occupied_bw_hz, sample_rate_hz)
    if not np.isfinite(signal_power) or signal_power <= 0:
        raise ValueError(f"signal power must be positive, got {signal_power}")
    return float(signal_power * (sample_rate_hz / occupied_bw_hz) / 10.0 ** (snr_db / 10.0))


def add_awgn(
    y,
    snr_db: float,
    occupied_bw_hz: float,
    sample_rate_hz: float,
    signal_power: float | None,
    rng: np.random.Generator,
    active=None,
    colour: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """`y` (any shape: a stream or frames) plus circular Gaussian noise at `snr_db`: white, or
    shaped by the FIR `colour` (`noise_colour`), whose power gain averages 1 over the occupied
    band centred at DC, so that the SNR inside it is still `snr_db`.

    `signal_power` is P_sig; None measures it from `y` over the `active` samples (see the
    module docstring for the SNR definition). Returns (noisy y as complex64, sigma^2).
    """
    require_generator(rng)
    y = np.asarray(y)
    if signal_power is None:
        signal_power = mean_power(y, active)
    variance = noise_variance(snr_db, occupied_bw_hz, sample_rate_hz, signal_power)
    scale = np.sqrt(variance / 2.0)
    if colour is None:
        noise = rng.standard_normal(y.shape, np.float32) + 1j * rng.standard_normal(y.shape, np.float32)
    else:
        noise = coloured_noise(y.shape, band_normalised(colour, occupied_bw_hz, sample_rate_hz), rng)
    return (y + scale * noise).astype(np.complex64), variance


COLOUR_TAPS = 33
"""Length of a noise-colouring FIR: a smooth shape across the band, a few MHz of detail at 30 MS/s."""


def noise_colour(rng: np.random.Generator, ripple_db: float) -> np.ndarray:
    """A random smooth receiver-noise shape (an LNA's and IF filter's tilt and ripple) as a
    complex FIR of COLOUR_TAPS taps with unit mean power gain: its gain in dB is the sum of
    three random cosines across the band, peak to peak at most about 2 `ripple_db`, and
    need not be symmetric about DC."""
    require_generator(rng)
    grid = np.linspace(-0.5, 0.5, COLOUR_TAPS, endpoint=False)
    cycles = rng.uniform(0.3, 2.0, 3)
    phases = rng.uniform(0, 2 * np.pi, 3)
    weights = rng.uniform(-1, 1, 3)
    shape_db = ripple_db * (weights[:, None] * np.cos(2 * np.pi * cycles[:, None] * grid + phases[:, None])).sum(0) / 3
    response = np.sqrt(10.0 ** (shape_db / 10.0))
    taps = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(response))) * np.hanning(COLOUR_TAPS + 2)[1:-1]
    return (taps / np.sqrt(np.sum(np.abs(taps) ** 2))).astype(np.complex64)


def _band_gain(taps: np.ndarray, occupied_bw_hz: float, sample_rate_hz: float) -> float:
    """Mean power gain of the FIR `taps` over the band of `occupied_bw_hz` centred at DC."""
    _check_bandwidth(occupied_bw_hz, sample_rate_hz)
    n = 1024
    freqs = np.fft.fftfreq(n) * sample_rate_hz
    gain = np.abs(np.fft.fft(taps, n)) ** 2
    return float(gain[np.abs(freqs) <= occupied_bw_hz / 2].mean())


def coloured_noise(shape: tuple[int, ...], taps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Circular Gaussian noise of unit variance per sample before `taps` (along the last axis)."""
    padded = (*shape[:-1], shape[-1] + len(taps) - 1)
    white = rng.standard_normal(padded, np.float32) + 1j * rng.standard_normal(padded, np.float32)
    # Overlap-add: a few thousand samples per FFT, three times faster than one FFT of the stream.
    kernel = np.asarray(taps, np.complex64).reshape((1,) * (len(shape) - 1) + (-1,))
    return scipy.signal.oaconvolve(white, kernel, mode="valid", axes=-1).astype(np.complex64)


def measure_snr_db(
    signal, noise, occupied_bw_hz: float, sample_rate_hz: float, active=None, centre_hz: float = 0.0
) -> float:
    """SNR of `signal` against `noise` as the label defines it, measured independently:
    P_sig over the active samples, noise power integrated from its Welch PSD over the
    occupied band around `centre_hz`. Both arrays may be streams or frames (last axis time)."""
    _check_bandwidth(occupied_bw_hz, sample_rate_hz)
    noise = np.asarray(noise)
    segment = min(256, noise.shape[-1])
    freqs, psd = scipy.signal.welch(
        noise, fs=sample_rate_hz, nperseg=segment, return_onesided=False, detrend=False, axis=-1
    )
    psd = psd.reshape(-1, psd.shape[-1]).mean(axis=0)
    in_band = np.abs(freqs - centre_hz) <= occupied_bw_hz / 2
    noise_in_band = psd[in_band].sum() * sample_rate_hz / segment
    return float(10.0 * np.log10(mean_power(signal, active) / noise_in_band))


NOISE_BLOCK = 1024
"""Samples per block of `indexed_noise`: each block draws from a generator of its own."""


def noise_key(*words: int) -> np.ndarray:
    """A Philox key (two 64-bit words) for `indexed_noise`, from an example's seed words."""
    return np.random.SeedSequence(list(words)).generate_state(2, np.uint64)


class CounterStreams:
    """The Philox streams of one key, each starting at a counter of its own: `at(b)` is the
    generator `np.random.Generator(np.random.Philox(counter=[0, b, 0, 0], key=key))` would be,
    the same numbers, by moving one generator's counter (half the cost of making one per block)."""

    def __init__(self, key: np.ndarray):
        self._bits = np.random.Philox(key=key)
        self._generator = np.random.Generator(self._bits)
        self._state = self._bits.state

    def at(self, stream: int) -> np.random.Generator:
        state = self._state
        state["state"]["counter"] = np.array([0, int(stream) % 2**64, 0, 0], np.uint64)
        state["buffer_pos"] = 4  # nothing buffered: the next draw starts at the counter
        state["has_uint32"] = 0
        self._bits.state = state
        return self._generator


def _white_blocks(key: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """(len(blocks), NOISE_BLOCK) circular Gaussian noise, real and imaginary parts of unit
    variance, block b from a Philox generator whose counter starts at b: a pure function of
    (key, b)."""
    # Drawn straight into the interleaved real and imaginary parts: one call per block and no
    # strided copies, 1.8 times faster than a call for each part.
    out = np.empty((len(blocks), 2 * NOISE_BLOCK), np.float32)
    streams = CounterStreams(key)
    for row, block in zip(out, blocks):
        streams.at(block).standard_normal(out=row, dtype=np.float32)
    return out.view(np.complex64)


def indexed_noise(key: np.ndarray, start: int, stop: int, taps: np.ndarray | None = None) -> np.ndarray:
    """Noise at the absolute sample indices [start, stop), white or through the FIR `taps`
    (coloured_noise's convolution): a function of the index alone, so that any stretch of a
    stream gets the same samples whichever other stretches are drawn. Coloured blocks are
    filtered one grid block at a time, from the white block and the tail of the one before,
    with one FFT size, so each sample is the same number however the stretches are cut."""
    first, last = start // NOISE_BLOCK, -(-stop // NOISE_BLOCK)
    blocks = np.arange(first, last)
    if taps is None:
        white = _white_blocks(key, blocks).ravel()
        return white[start - first * NOISE_BLOCK : stop - first * NOISE_BLOCK]
    history = len(taps) - 1
    white = _white_blocks(key, np.arange(first - 1, last))
    segments = np.concatenate([white[:-1, NOISE_BLOCK - history :], white[1:]], axis=1)
    kernel = np.asarray(taps, np.complex64)[None, :]
    coloured = scipy.signal.fftconvolve(segments, kernel, mode="valid", axes=1).astype(np.complex64).ravel()
    return coloured[start - first * NOISE_BLOCK : stop - first * NOISE_BLOCK]


def band_normalised(colour: np.ndarray, occupied_bw_hz: float, sample_rate_hz: float) -> np.ndarray:
    """`colour` scaled so that its power gain averages 1 over the occupied band (as add_awgn uses it)."""
    return (np.asarray(colour, np.complex64) / np.sqrt(_band_gain(colour, occupied_bw_hz, sample_rate_hz))).astype(
        np.complex64
    )
