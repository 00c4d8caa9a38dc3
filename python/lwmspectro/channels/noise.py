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
) -> tuple[np.ndarray, float]:
    """`y` (any shape: a stream or frames) plus circular white Gaussian noise at `snr_db`.

    `signal_power` is P_sig; None measures it from `y` over the `active` samples (see the
    module docstring for the SNR definition). Returns (noisy y as complex64, sigma^2).
    """
    require_generator(rng)
    y = np.asarray(y)
    if signal_power is None:
        signal_power = mean_power(y, active)
    variance = noise_variance(snr_db, occupied_bw_hz, sample_rate_hz, signal_power)
    scale = np.sqrt(variance / 2.0)
    noise = rng.standard_normal(y.shape, np.float32) + 1j * rng.standard_normal(y.shape, np.float32)
    return (y + scale * noise).astype(np.complex64), variance


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
