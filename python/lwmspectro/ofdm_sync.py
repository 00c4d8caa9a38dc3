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

import functools
import threading
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.fft

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


LAG_CHUNK = 16384
"""Lag products formed per run of this many: numpy's complex product rounds a few of them
differently in runs of different lengths, and runs of one length make every product the same
number however long a capture's products are formed."""


def lag_products(iq: np.ndarray, lag: int) -> np.ndarray:
    """r[n] r*[n + lag] for every n of the complex64 `iq` that has a partner."""
    count = max(0, len(iq) - lag)
    out = np.empty(count, np.complex64)
    whole = count - count % LAG_CHUNK
    for start in range(0, whole, LAG_CHUNK):
        end = start + LAG_CHUNK
        np.multiply(iq[start:end], np.conj(iq[start + lag : end + lag]), out=out[start:end])
    if whole < count:
        tail = np.zeros(LAG_CHUNK + lag, np.complex64)
        tail[: len(iq) - whole] = iq[whole:]
        out[whole:] = (tail[:LAG_CHUNK] * np.conj(tail[lag:]))[: count - whole]
    return out


ADDED_ROWS = 64
"""Most rows PrefixFolds adds one call at a time to a prefix it has summed; beyond, one reduction
from the first row costs less than as many calls."""


class PrefixFolds:
    """x[:length] summed modulo the period, in double precision, for any length within x.

    The whole periods of a prefix are summed row after row, in order, and kept: from the longest
    prefix already summed when a few rows (up to ADDED_ROWS) are left, else by one numpy
    reduction down the rows from the first, which adds them in the same order. So the sums of a
    prefix are the same numbers however long `x` goes on and whichever were asked before, and two
    views that read different lengths of one capture share them. Only the prefixes asked are
    summed (a running sum of every period was a double-precision copy of the whole capture, most
    of it never read). Safe to ask from several threads."""

    def __init__(self, x: np.ndarray, period: int):
        self.x = x
        self.period = int(period)
        whole = len(x) // self.period
        self._rows = x[: whole * self.period].reshape(whole, self.period)
        self._dtype = np.complex128 if np.iscomplexobj(x) else np.float64
        self._asked: dict[int, np.ndarray] = {0: np.zeros(self.period, self._dtype)}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.x)

    def _periods(self, count: int) -> np.ndarray:
        """The first `count` whole periods summed (not to be written to)."""
        with self._lock:
            if count not in self._asked:
                done = max(k for k in self._asked if k < count)
                if count - done <= ADDED_ROWS:
                    sums = self._asked[done].copy()
                    for row in self._rows[done:count]:
                        np.add(sums, row, out=sums)
                else:
                    sums = np.add.reduce(self._rows[:count], axis=0, dtype=self._dtype)
                self._asked[count] = sums
            return self._asked[count]

    def fold(self, length: int) -> np.ndarray:
        """x[:length] summed modulo the period (`length` within x)."""
        whole, part = divmod(int(length), self.period)
        sums = self._periods(whole)
        if not part:
            return sums.copy()
        start = whole * self.period
        return np.concatenate([sums[:part] + self.x[start : start + part], sums[part:]])


@functools.lru_cache(maxsize=32)
def prefix_mask(numerology: Numerology) -> np.ndarray:
    """(group_samples,) 1 on the prefix samples of a group that starts at offset 0. The first
    symbol's window spans its whole, longer prefix: with only its last cp_other samples, groups
    started one symbol late would correlate as well as the true start."""
    mask = np.zeros(numerology.group_samples)
    mask[: numerology.cp_first] = 1.0
    for start in numerology.cp_starts[1:]:
        mask[start : start + numerology.cp_other] = 1.0
    mask.setflags(write=False)
    return mask


@functools.lru_cache(maxsize=32)
def _mask_spectra(numerology: Numerology) -> tuple[np.ndarray, np.ndarray]:
    """The conjugate spectrum of prefix_mask, whole and one-sided (for real data)."""
    mask = prefix_mask(numerology)
    return np.conj(scipy.fft.fft(mask)), np.conj(scipy.fft.rfft(mask))


def group_sums(folded: np.ndarray, numerology: Numerology) -> np.ndarray:
    """Sums of `folded` (..., group_samples) over the prefixes of a group starting at each offset,
    around the period: a circular correlation with prefix_mask, one FFT pair whatever the number
    of symbols in a group."""
    whole, one_sided = _mask_spectra(numerology)
    if np.iscomplexobj(folded):
        return scipy.fft.ifft(scipy.fft.fft(folded, axis=-1) * whole, axis=-1)
    period = numerology.group_samples
    return scipy.fft.irfft(scipy.fft.rfft(folded, axis=-1) * one_sided, n=period, axis=-1)


class CpCorrelator:
    """The CP correlation of the first samples of one native-rate capture, for one numerology,
    at any length up to `length`: the lag products r[n] r*[n + N] and the powers are formed
    once and summed period by period, so that the views reading one capture (the cp_profile
    and the symbol-aligned view of a numerology) share them and get the same numbers as each
    would alone. `power_folds` (the PrefixFolds of |r|^2 at the numerology's period) may be
    shared between the numerologies of one rate and period."""

    def __init__(self, iq: np.ndarray, numerology: Numerology, length: int, power_folds: PrefixFolds | None = None):
        iq = np.asarray(iq, np.complex64)[:length]
        n = numerology.n_fft
        if len(iq) < numerology.longest_symbol:
            raise ValueError(f"need at least {numerology.longest_symbol} samples for a CP correlation, got {len(iq)}")
        self.numerology = numerology
        self.length = len(iq)
        self.lagged = lag_products(iq, n)
        self._gamma_folds = PrefixFolds(self.lagged, numerology.group_samples)
        if power_folds is None or len(power_folds) < self.length:
            power_folds = PrefixFolds(iq.real**2 + iq.imag**2, numerology.group_samples)
        self._power_folds = power_folds

    def folded(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """(gamma, energy) of the first `length` samples summed modulo the period, before the
        window sums: energy[theta] = sum (|r[n]|^2 + |r[n + N]|^2) / 2."""
        if not self.numerology.longest_symbol <= length <= self.length:
            raise ValueError(f"length {length} is outside {self.numerology.longest_symbol} .. {self.length}")
        n, period = self.numerology.n_fft, self.numerology.group_samples
        gamma = self._gamma_folds.fold(length - n)
        # The power at n + N lands on offset n: the folded powers of [N, length) turned back by N.
        later = self._power_folds.fold(length) - self._power_folds.fold(n)
        energy = 0.5 * (self._power_folds.fold(length - n) + np.roll(later, -(n % period)))
        return gamma, energy

    def correlation(self, length: int | None = None) -> CpCorrelation:
        """The CP correlation of the first `length` samples (default: all)."""
        gamma, energy = self.folded(self.length if length is None else length)
        return CpCorrelation(group_sums(gamma, self.numerology), group_sums(energy, self.numerology))

    def timing(self, length: int | None = None) -> SymbolTiming:
        """estimate_timing of the first `length` samples (default: all)."""
        return timing_from_correlation(self.correlation(length))


def cp_correlation(iq: np.ndarray, numerology: Numerology) -> CpCorrelation:
    """Fold the CP correlation of a 1-D native-rate `iq` over the numerology's period."""
    return CpCorrelator(iq, numerology, len(iq)).correlation()


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


def _ml_estimates(gamma: np.ndarray, energy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(theta, cfo, coefficient at theta) along the last axis: theta maximises
    |gamma| - rho energy with rho the largest coefficient, eps = -angle(gamma(theta)) / (2 pi)."""
    magnitude = np.abs(gamma)
    coefficient = magnitude / np.maximum(energy, np.finfo(np.float64).tiny)
    rho = coefficient.max(axis=-1, keepdims=True)
    theta = np.argmax(magnitude - rho * energy, axis=-1)
    at_theta = np.take_along_axis(gamma, theta[..., None], axis=-1)[..., 0]
    cfo = -np.angle(at_theta) / (2 * np.pi)
    cfo = np.where(cfo < 0.5, cfo, cfo - 1.0)
    return theta, cfo, np.take_along_axis(coefficient, theta[..., None], axis=-1)[..., 0]


def timing_from_correlation(folded: CpCorrelation) -> SymbolTiming:
    theta, cfo, coefficient = _ml_estimates(folded.gamma, folded.energy)
    return SymbolTiming(int(theta), float(cfo), float(coefficient))


def estimate_timing(iq: np.ndarray, numerology: Numerology) -> SymbolTiming:
    """The ML timing and fractional CFO of van de Beek et al.: theta maximises
    |gamma(theta)| - rho energy(theta), with rho = SNR / (SNR + 1) estimated as the largest
    correlation coefficient; eps = -angle(gamma(theta)) / (2 pi)."""
    return timing_from_correlation(cp_correlation(iq, numerology))


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
    iq: np.ndarray,
    numerology: Numerology,
    n_symbols: int,
    block_symbols: int,
    backoff: int = 0,
    lagged: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(FFT window starts, CFO in subcarrier spacings) of `n_symbols` symbols of bursty
    transmissions, whose packets each have their own timing (WiFi: the gaps between packets
    are not whole symbols). Timing and CFO are estimated in blocks of `block_symbols` (all
    blocks at once); the symbols whose own prefix correlates at least half as well as the best
    one's come first, in time order, then the others (gaps, and packet edges inside a block).
    `lagged` may hold the lag products r[n] r*[n + N] of `iq` already formed (CpCorrelator)."""
    if numerology.symbols_per_group != 1:
        raise ValueError("burst timing needs a numerology with one prefix length (symbols_per_group 1)")
    iq = np.asarray(iq, np.complex64)
    period, n_fft = numerology.group_samples, numerology.n_fft
    block = block_symbols * period
    n_blocks = max(0, (len(iq) - block - n_fft) // block + 1)
    if n_blocks * block_symbols < n_symbols:
        raise ValueError(f"{len(iq)} samples hold fewer than the {n_symbols} OFDM symbols needed")
    covered = n_blocks * block
    if lagged is None or len(lagged) < covered:
        lagged = lag_products(iq[: covered + n_fft], n_fft)
    power = iq[: covered + n_fft].real ** 2 + iq[: covered + n_fft].imag ** 2
    shape = (n_blocks, block_symbols, period)
    gamma = lagged[:covered].reshape(shape).sum(axis=1, dtype=np.complex128)
    energy = 0.5 * (power[:covered].reshape(shape).sum(axis=1, dtype=np.float64))
    energy += 0.5 * power[n_fft : covered + n_fft].reshape(shape).sum(axis=1, dtype=np.float64)
    theta, cfo, _coefficient = _ml_estimates(group_sums(gamma, numerology), group_sums(energy, numerology))
    prefix_starts = (np.arange(n_blocks) * block + theta)[:, None] + np.arange(block_symbols)[None, :] * period
    cfos = np.repeat(cfo, block_symbols).reshape(n_blocks, block_symbols)
    kept = prefix_starts + period <= len(iq)
    starts, cfos = prefix_starts[kept], cfos[kept]
    if len(starts) < n_symbols:
        raise ValueError(f"{len(iq)} samples hold fewer than the {n_symbols} OFDM symbols needed")
    prefix = iq[starts[:, None] + np.arange(numerology.cp_first)[None, :]]
    copy = iq[starts[:, None] + n_fft + np.arange(numerology.cp_first)[None, :]]
    energy_per_symbol = 0.5 * (np.abs(prefix) ** 2 + np.abs(copy) ** 2).sum(axis=1)
    correlation = np.abs((prefix * np.conj(copy)).sum(axis=1)) / np.maximum(
        energy_per_symbol, np.finfo(np.float32).tiny
    )
    order = np.argsort(correlation < 0.5 * correlation.max(), kind="stable")[:n_symbols]
    return starts[order] + numerology.cp_first - backoff, cfos[order]
