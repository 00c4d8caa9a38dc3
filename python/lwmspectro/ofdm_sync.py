"""Blind OFDM symbol timing and fractional CFO from the cyclic prefix (van de Beek, Sandell and
Borjesson, "ML estimation of time and frequency offset in OFDM systems", IEEE TSP 1997).

The cyclic prefix repeats the last samples of each symbol N samples earlier, so
gamma(theta) = sum r[n] r*[n + N] over a CP-long window peaks where the window covers a
prefix, with the phase -2 pi eps of a CFO of eps subcarrier spacings. The estimator sums
gamma over every symbol of the observation, modulo the numerology's period: one symbol, or
for LTE/NR the half-subframe whose first symbol has a longer prefix. No library offers it
for a numerology with two prefix lengths, hence written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .config_base import ConfigBase, bounded
from .phy import lte, nr, wifi


@dataclass(frozen=True)
class Numerology(ConfigBase):
    """An OFDM symbol layout at its native rate: every `symbols_per_group`-th symbol (the
    first of a group) has the prefix `cp_first`, the others `cp_other`."""

    keys_name: ClassVar[str] = "numerology parameters"

    sample_rate_hz: float = bounded(wifi.SAMPLE_RATE_HZ, 1e3, 1e9)
    n_fft: int = bounded(wifi.N_FFT, 8, 65536)
    cp_first: int = bounded(wifi.GI, 1, 65536)
    cp_other: int = bounded(wifi.GI, 1, 65536)
    symbols_per_group: int = bounded(1, 1, 1024)

    def __post_init__(self):
        if self.cp_first < self.cp_other:
            raise ValueError(f"cp_first ({self.cp_first}) must be at least cp_other ({self.cp_other})")
        if max(self.cp_first, self.cp_other) >= self.n_fft:
            raise ValueError(f"cyclic prefixes must be shorter than n_fft ({self.n_fft})")

    @property
    def group_samples(self) -> int:
        """Samples from one group's start to the next: the period the estimator folds over."""
        return self.cp_first - self.cp_other + self.symbols_per_group * (self.n_fft + self.cp_other)

    @property
    def longest_symbol(self) -> int:
        return self.n_fft + self.cp_first

    @property
    def cp_starts(self) -> np.ndarray:
        """First prefix sample of each symbol of a group, from the group's start."""
        later = np.arange(self.symbols_per_group - 1)
        return np.concatenate([[0], self.cp_first + self.n_fft + later * (self.n_fft + self.cp_other)])

    @property
    def fft_starts(self) -> np.ndarray:
        """First sample after each symbol's prefix, from the group's start."""
        return self.cp_starts + np.where(np.arange(self.symbols_per_group) == 0, self.cp_first, self.cp_other)


def _three_gpp(n_fft: int, mu: int) -> Numerology:
    """LTE / NR normal CP at 30.72 MS/s (TS 36.211 Table 6.12-1, TS 38.211 5.3.1): 144 kappa
    2^-mu Tc plus 16 kappa Tc on the first symbol of each half-subframe of 7 2^mu symbols."""
    sample_rate = n_fft * lte.SUBCARRIER_SPACING_HZ * 2**mu
    cp_other = 144 * n_fft // 2048
    return Numerology(
        sample_rate_hz=sample_rate,
        n_fft=n_fft,
        cp_first=cp_other + 16 * n_fft * 2**mu // 2048,
        cp_other=cp_other,
        symbols_per_group=lte.SYMBOLS_PER_SLOT * 2**mu,
    )


WIFI = Numerology(wifi.SAMPLE_RATE_HZ, wifi.N_FFT, wifi.GI, wifi.GI, 1)
"""802.11a/g/n/ac 20 MHz: 64-point FFT at 20 MS/s, 16-sample guard interval (0.8 us)."""
LTE = _three_gpp(lte.NUMEROLOGY[20e6][1], 0)
"""LTE and NR at 15 kHz: 2048-point FFT at 30.72 MS/s, CP 160 then 6 x 144 per 0.5 ms."""
NR_30KHZ = _three_gpp(nr.NUMEROLOGY[(1, 20e6)][1], 1)
"""NR at 30 kHz: 1024-point FFT at 30.72 MS/s, CP 88 then 13 x 72 per 0.5 ms."""
NR_60KHZ = _three_gpp(512, 2)
"""NR at 60 kHz (FR1, normal CP): 512-point FFT at 30.72 MS/s, CP 52 then 27 x 36 per 0.5 ms."""


@dataclass(frozen=True)
class CpCorrelation:
    """The CP correlation folded over one period, for every candidate group start theta."""

    gamma: np.ndarray
    """(group_samples,) complex: sum of r[n] r*[n + N] over the prefixes of groups starting at theta."""
    energy: np.ndarray
    """(group_samples,) float: the matching sum of (|r[n]|^2 + |r[n + N]|^2) / 2."""

    @property
    def coefficient(self) -> np.ndarray:
        """|gamma| / energy in [0, 1]: SNR / (SNR + 1) at the true start, about 0 elsewhere and for noise."""
        return np.abs(self.gamma) / np.maximum(self.energy, np.finfo(np.float64).tiny)


def cp_correlation(iq: np.ndarray, numerology: Numerology) -> CpCorrelation:
    """Fold the CP correlation of a 1-D native-rate `iq` over the numerology's period."""
    iq = np.asarray(iq, np.complex64)
    n, period = numerology.n_fft, numerology.group_samples
    if len(iq) < numerology.longest_symbol:
        raise ValueError(f"need at least {numerology.longest_symbol} samples for a CP correlation, got {len(iq)}")
    lagged = iq[:-n] * np.conj(iq[n:])
    power = 0.5 * (iq[:-n].real ** 2 + iq[:-n].imag ** 2 + iq[n:].real ** 2 + iq[n:].imag ** 2)

    def fold(x: np.ndarray) -> np.ndarray:
        """x summed modulo the period (in double precision: it adds up the whole observation)."""
        padded = np.zeros(-(-len(x) // period) * period, x.dtype)
        padded[: len(x)] = x
        return padded.reshape(-1, period).sum(axis=0, dtype=np.complex128 if np.iscomplexobj(x) else np.float64)

    def window_sums(folded: np.ndarray, length: int) -> np.ndarray:
        """Sums over the `length` folded samples from each offset on, around the period."""
        cumulative = np.concatenate([[0], np.cumsum(np.concatenate([folded, folded[: length - 1]]))])
        return cumulative[length : length + period] - cumulative[:period]

    def group_sums(folded: np.ndarray) -> np.ndarray:
        """Sums over the prefixes of a group starting at each offset. The first symbol's window
        spans its whole, longer prefix: with only its last cp_other samples, groups started one
        symbol late would correlate as well as the true start."""
        other = window_sums(folded, numerology.cp_other)
        return window_sums(folded, numerology.cp_first) + sum(
            (np.roll(other, -int(start)) for start in numerology.cp_starts[1:]), np.zeros_like(other)
        )

    # Folding first, then summing windows around the period, costs one pass over the samples.
    return CpCorrelation(group_sums(fold(lagged)), group_sums(fold(power)))


@dataclass(frozen=True)
class SymbolTiming:
    group_start: int
    """Offset in [0, group_samples) of a group's first prefix sample: groups start at
    group_start + m * group_samples."""
    cfo_subcarriers: float
    """Fractional CFO in subcarrier spacings, in [-0.5, 0.5)."""
    correlation: float
    """The CP correlation coefficient there: about SNR / (SNR + 1) where prefixes were found,
    near 0 for noise."""


def estimate_timing(iq: np.ndarray, numerology: Numerology) -> SymbolTiming:
    """The ML timing and fractional CFO of van de Beek et al.: theta maximises
    |gamma(theta)| - rho energy(theta), with rho = SNR / (SNR + 1) estimated as the largest
    correlation coefficient; eps = -angle(gamma(theta)) / (2 pi)."""
    folded = cp_correlation(iq, numerology)
    coefficient = folded.coefficient
    rho = float(coefficient.max())
    theta = int(np.argmax(np.abs(folded.gamma) - rho * folded.energy))
    cfo = -float(np.angle(folded.gamma[theta])) / (2 * np.pi)
    return SymbolTiming(theta, cfo if cfo < 0.5 else cfo - 1.0, float(coefficient[theta]))


def symbol_starts(
    timing: SymbolTiming, numerology: Numerology, n_samples: int, n_symbols: int, backoff: int = 0
) -> np.ndarray:
    """First sample of the FFT window of the first `n_symbols` whole symbols of an
    `n_samples`-long observation: `backoff` samples before the end of each prefix."""
    period = numerology.group_samples
    groups = np.arange(-1, n_samples // period + 2)
    fft_starts = numerology.fft_starts - backoff
    starts = (timing.group_start + groups[:, None] * period + fft_starts[None, :]).ravel()
    starts = starts[(starts >= 0) & (starts + numerology.n_fft <= n_samples)]
    if len(starts) < n_symbols:
        raise ValueError(f"{n_samples} samples hold {len(starts)} whole OFDM symbols, {n_symbols} are needed")
    return starts[:n_symbols]


def burst_symbols(
    iq: np.ndarray, numerology: Numerology, n_symbols: int, block_symbols: int, backoff: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(FFT window starts, CFO in subcarrier spacings) of `n_symbols` symbols of bursty
    transmissions, whose packets each have their own timing (WiFi: the gaps between packets
    are not whole symbols). Timing and CFO are estimated in blocks of `block_symbols`; the
    symbols whose own prefix correlates at least half as well as the best one's come first,
    in time order, then the others (gaps, and packet edges inside a block)."""
    if numerology.symbols_per_group != 1:
        raise ValueError("burst timing needs a numerology with one prefix length (symbols_per_group 1)")
    period, n_fft = numerology.group_samples, numerology.n_fft
    block = block_symbols * period
    prefix_starts, cfos = [], []
    for first in range(0, len(iq) - block - n_fft + 1, block):
        timing = estimate_timing(iq[first : first + block + n_fft], numerology)
        block_starts = first + timing.group_start + np.arange(block_symbols) * period
        prefix_starts.append(block_starts[block_starts + period <= len(iq)])
        cfos.append(np.full(len(prefix_starts[-1]), timing.cfo_subcarriers))
    starts = np.concatenate(prefix_starts) if prefix_starts else np.zeros(0, np.int64)
    if len(starts) < n_symbols:
        raise ValueError(f"{len(iq)} samples hold fewer than the {n_symbols} OFDM symbols needed")
    prefix = iq[starts[:, None] + np.arange(numerology.cp_first)[None, :]]
    copy = iq[starts[:, None] + n_fft + np.arange(numerology.cp_first)[None, :]]
    energy = 0.5 * (np.abs(prefix) ** 2 + np.abs(copy) ** 2).sum(axis=1)
    correlation = np.abs((prefix * np.conj(copy)).sum(axis=1)) / np.maximum(energy, np.finfo(np.float32).tiny)
    order = np.argsort(correlation < 0.5 * correlation.max(), kind="stable")[:n_symbols]
    return starts[order] + numerology.cp_first - backoff, np.concatenate(cfos)[order]
