"""G as a set of named views (paper Eq. 10 with C > 1): each view is a frozen parameter
dataclass plus one pure function of the source-rate I/Q, so that a manifest or a model card
names the views it uses as data, ``{"name": ..., "params": {...}}``, and training and the
live blocks compute them with the same code.

* ``wideband``: today's G (`lwmspectro.spectrogram`), unchanged; its parameters are
  `SpectrogramParams`, the dict a shipped card holds under ``spectrogram``.
* ``ofdm_aligned``: what a demodulator sees per resource element of one OFDM numerology:
  rectangular N-point FFTs of whole symbols found blindly by CP correlation, after the
  fractional CFO is removed, each element's power relative to its symbol's and its
  subcarrier's mean. A
  magnitude STFT with frames much shorter than a symbol mixes many subcarriers into Gaussian
  noise; here the constellation's amplitude levels and the reference-signal pattern stay.
* ``cp_profile``: the CP correlation coefficient of each candidate numerology across one
  period, for the router: which numerology, if any, is on the air.
* ``dynamics``: how fast the fading changes over 128 ms (`lwmspectro.dynamics`), for mobility.

Every view reads the I/Q at any source rate, resamples it to its own analysis rate and
estimates whatever it needs (symbol timing, CFO) blindly from the samples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import scipy.ndimage

from .config_base import ConfigBase, bounded
from .dynamics import DynamicsParams, dynamics
from .dynamics import source_samples as dynamics_source_samples
from .ofdm_sync import (
    LTE,
    NR_30KHZ,
    NR_60KHZ,
    WIFI,
    Numerology,
    burst_symbols,
    cp_correlation,
    estimate_timing,
    symbol_starts,
)
from .resample import rational_ratio, resample_to
from .spectrogram import SpectrogramParams, spectrogram

LOG_FLOOR = 1e-10
"""Smallest relative power before the log (-100 dB): an empty element or subcarrier."""


def _source_samples(analysis_samples: int, analysis_rate_hz: float, source_rate_hz: float) -> int:
    """Source-rate samples that resample to at least `analysis_samples` at the analysis rate."""
    up, down = rational_ratio(source_rate_hz, analysis_rate_hz)
    return -(-analysis_samples * down // up)


def _numerology(value: Numerology | Mapping[str, Any], where: str) -> Numerology:
    return value if isinstance(value, Numerology) else Numerology.from_dict(value, where)


@dataclass(frozen=True)
class OfdmAlignedParams(ConfigBase):
    """The symbol-aligned view of one numerology: T = n_symbols + 1 rows of K = n_subcarriers.

    Row 0 is the band profile: the power of all n_fft subcarriers relative to their symbol's,
    averaged over the symbols and in K groups of subcarriers, in dB, z-scored (band edges,
    guard bands and DC show there). Rows 1..T are log10 of each element's power over its
    symbol's mean power and over the channel's gain there (the mean of that relative power
    over `gain_symbols` x `gain_subcarriers` around it), for the K subcarriers
    `subcarrier_stride` apart centred on the occupied band when they do not span the FFT
    (`centre_on_band`: a signal off DC stays in view; else on DC): the receiver's gain, a
    burst's edges and the fading channel are removed, each element's amplitude is kept, and
    empty subcarriers read low.

    The symbols are found in the `search_symbols` the view reads: with one timing for all of
    them (continuous transmissions: LTE, NR), or with `burst_block_symbols` > 0 a timing per
    block of that many symbols, taking first, in time order, the symbols whose own prefix
    correlates clearly (bursts: WiFi packets, each with its own timing, and the gaps between
    them)."""

    keys_name: ClassVar[str] = "ofdm_aligned parameters"

    numerology: Numerology = WIFI
    n_symbols: int = bounded(63, 2, 4096)
    n_subcarriers: int = bounded(64, 2, 65536)
    subcarrier_stride: int = bounded(1, 1, 1024)
    gain_symbols: int = bounded(7, 1, 4097)
    gain_subcarriers: int = bounded(13, 1, 65536)
    search_symbols: int = bounded(63, 2, 65536)
    burst_block_symbols: int = bounded(0, 0, 1024)
    centre_on_band: bool = True

    def __post_init__(self):
        object.__setattr__(self, "numerology", _numerology(self.numerology, "numerology"))
        n_fft = self.numerology.n_fft
        if self.search_symbols < self.n_symbols:
            raise ValueError(f"search_symbols ({self.search_symbols}) must be at least n_symbols ({self.n_symbols})")
        if self.burst_block_symbols and self.numerology.symbols_per_group != 1:
            raise ValueError("burst_block_symbols needs a numerology with one prefix length (symbols_per_group 1)")
        if self.burst_block_symbols and self.search_symbols % self.burst_block_symbols:
            raise ValueError(
                f"search_symbols ({self.search_symbols}) must be a multiple of "
                f"burst_block_symbols ({self.burst_block_symbols})"
            )
        if n_fft % self.n_subcarriers:
            raise ValueError(f"n_subcarriers ({self.n_subcarriers}) must divide n_fft ({n_fft})")
        if self.n_subcarriers * self.subcarrier_stride > n_fft:
            raise ValueError(
                f"n_subcarriers x subcarrier_stride ({self.n_subcarriers} x {self.subcarrier_stride}) "
                f"exceeds n_fft ({n_fft})"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_symbols + 1, self.n_subcarriers)

    @property
    def window_samples(self) -> int:
        """Native-rate samples read: `search_symbols` whole symbols, the first of which
        starts within two symbols."""
        return (self.search_symbols + 2) * self.numerology.longest_symbol

    def subcarriers(self, centre: int) -> np.ndarray:
        """FFT bins (DC-centred order, around the FFT's ends) of the K subcarriers in rows 1..T."""
        offsets = (np.arange(self.n_subcarriers) - self.n_subcarriers // 2) * self.subcarrier_stride
        return (centre + offsets) % self.numerology.n_fft


CENTRE_STEP = 12
"""The K subcarriers move off DC in steps of a resource block, so that a centred signal's
columns (its pilots, its DC) stay where they are whatever the noise does to its band's centre."""


def _occupied_centre(subcarrier_power: np.ndarray) -> int:
    """The bin at the centre of the band's power, over the bins within 10 dB of the strongest
    (smoothed over 13 bins, so that single elements do not count), in steps of CENTRE_STEP
    from DC."""
    dc = len(subcarrier_power) // 2
    smoothed = scipy.ndimage.uniform_filter1d(subcarrier_power, 13, mode="wrap")
    weights = np.where(smoothed >= 0.1 * smoothed.max(), smoothed, 0.0)
    if not weights.any():
        return dc
    centre = float(np.average(np.arange(len(weights)), weights=weights))
    return dc + CENTRE_STEP * int(round((centre - dc) / CENTRE_STEP))


def _ofdm_aligned(params: OfdmAlignedParams, iq: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    numerology = params.numerology
    native = resample_to(iq, sample_rate_hz, numerology.sample_rate_hz)[: params.window_samples]
    # Starting a quarter prefix early, a timing error of a few samples stays inside the prefix,
    # where it only turns the phase across subcarriers, and the previous symbol's echoes, in
    # the prefix's first samples, stay out.
    backoff = numerology.cp_other // 4
    if params.burst_block_symbols:
        starts, cfos = burst_symbols(native, numerology, params.n_symbols, params.burst_block_symbols, backoff)
    else:
        timing = estimate_timing(native, numerology)
        starts = symbol_starts(timing, numerology, len(native), params.n_symbols, backoff)
        cfos = np.full(len(starts), timing.cfo_subcarriers)
    within = np.arange(numerology.n_fft)
    # The CFO's phase at each symbol's start turns the whole symbol and leaves its powers
    # alone: derotating within the symbols removes it.
    cfo_values, cfo_of_symbol = np.unique(cfos, return_inverse=True)  # one per block at most
    derotation = np.exp(-2j * np.pi * cfo_values[:, None] * within[None, :] / numerology.n_fft)
    symbols = native[starts[:, None] + within[None, :]] * derotation.astype(np.complex64)[cfo_of_symbol]
    spectrum = np.fft.fftshift(np.fft.fft(symbols, axis=-1), axes=-1)
    power = spectrum.real.astype(np.float64) ** 2 + spectrum.imag.astype(np.float64) ** 2
    # Power as symbol gain x channel gain x element: dividing by the symbol's mean power first
    # keeps a burst's edge or a gap from weighing on the channel's.
    tiny = np.finfo(np.float64).tiny
    power /= np.maximum(power.mean(axis=1, keepdims=True), tiny)
    subcarrier_power = power.mean(axis=0)
    band = subcarrier_power.reshape(params.n_subcarriers, -1).mean(axis=1)
    band = 10 * np.log10(np.maximum(band / max(float(band.max()), tiny), LOG_FLOOR))
    band = (band - band.mean()) / max(float(band.std()), 1e-6)
    # The channel's gain as the mean power over a few symbols and neighbouring subcarriers:
    # short enough to follow fading, long enough to average over the constellation.
    gain = scipy.ndimage.uniform_filter(power, (params.gain_symbols, params.gain_subcarriers), mode=("nearest", "wrap"))
    follow_band = params.centre_on_band and params.n_subcarriers * params.subcarrier_stride < numerology.n_fft
    chosen = params.subcarriers(_occupied_centre(subcarrier_power) if follow_band else numerology.n_fft // 2)
    relative = power[:, chosen] / np.maximum(gain[:, chosen], tiny)
    return np.vstack([band[None, :], np.log10(np.maximum(relative, LOG_FLOOR))]).astype(np.float32)


@dataclass(frozen=True)
class CpProfileParams(ConfigBase):
    """The CP correlation coefficient |sum r[n] r*[n + N]| / energy of each candidate
    numerology (one row each) over `span_s` seconds, folded over the numerology's period and
    max-pooled into K = n_bins offsets, rolled so that the largest sits in bin 0. An OFDM
    signal gives its numerology's row a peak of about SNR / (SNR + 1); noise, or a numerology
    that is absent, a flat row near 0."""

    keys_name: ClassVar[str] = "cp_profile parameters"

    numerologies: tuple[Numerology, ...] = (WIFI, LTE, NR_30KHZ, NR_60KHZ)
    n_bins: int = bounded(64, 1, 4096)
    span_s: float = bounded(0.005, 1e-5, 0.1)

    def __post_init__(self):
        if isinstance(self.numerologies, (str, Mapping)) or not self.numerologies:
            raise ValueError("numerologies: a non-empty list of numerologies is needed")
        numerologies = tuple(_numerology(n, f"numerologies.{i}") for i, n in enumerate(self.numerologies))
        object.__setattr__(self, "numerologies", numerologies)
        for i, numerology in enumerate(numerologies):
            if numerology.group_samples < self.n_bins:
                raise ValueError(
                    f"numerologies.{i}: its period ({numerology.group_samples} samples) is shorter than "
                    f"n_bins ({self.n_bins})"
                )
            if self.analysis_samples(numerology) < numerology.group_samples + numerology.n_fft:
                raise ValueError(
                    f"span_s ({self.span_s:g} s) is shorter than one period of numerologies.{i} "
                    f"({(numerology.group_samples + numerology.n_fft) / numerology.sample_rate_hz:g} s)"
                )

    def analysis_samples(self, numerology: Numerology) -> int:
        return int(np.ceil(round(self.span_s * numerology.sample_rate_hz, 6)))

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.numerologies), self.n_bins)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["numerologies"] = list(values["numerologies"])
        return values


def _cp_profile(params: CpProfileParams, iq: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    at_rate: dict[float, np.ndarray] = {}
    rows = np.zeros(params.shape, np.float32)
    for row, numerology in zip(rows, params.numerologies):
        rate = numerology.sample_rate_hz
        if rate not in at_rate:
            at_rate[rate] = resample_to(iq, sample_rate_hz, rate)
        coefficient = cp_correlation(at_rate[rate][: params.analysis_samples(numerology)], numerology).coefficient
        edges = np.arange(params.n_bins) * numerology.group_samples // params.n_bins
        pooled = np.maximum.reduceat(coefficient, edges)
        row[:] = np.roll(pooled, -int(np.argmax(pooled)))
    return rows


class _ViewKind(NamedTuple):
    params_type: type[ConfigBase]
    compute: Callable[[Any, np.ndarray, float], np.ndarray]
    """One observation: (params, 1-D source-rate I/Q of at least min_source_samples, rate) -> (T, K)."""
    min_source_samples: Callable[[Any, float], int]


def _wideband(params: SpectrogramParams, iq: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    return spectrogram(iq, params, sample_rate_hz)


_KINDS: dict[str, _ViewKind] = {
    "wideband": _ViewKind(SpectrogramParams, _wideband, lambda p, rate: p.source_window_samples(rate)),
    "ofdm_aligned": _ViewKind(
        OfdmAlignedParams,
        _ofdm_aligned,
        lambda p, rate: _source_samples(p.window_samples, p.numerology.sample_rate_hz, rate),
    ),
    "cp_profile": _ViewKind(
        CpProfileParams,
        _cp_profile,
        lambda p, rate: max(_source_samples(p.analysis_samples(n), n.sample_rate_hz, rate) for n in p.numerologies),
    ),
    "dynamics": _ViewKind(DynamicsParams, dynamics, dynamics_source_samples),
}

VIEWS: dict[str, Any] = {
    "wideband": SpectrogramParams(),
    # Channel gains over 0.2 MHz x 0.5 ms (LTE, NR) and over one subcarrier x 31 symbols
    # (0.12 ms: a WiFi channel is about constant over a packet, not over 300 kHz at the delay
    # spreads of the sites and TR 38.901 profiles).
    "ofdm_aligned_wifi": OfdmAlignedParams(
        WIFI,
        n_symbols=63,
        n_subcarriers=64,
        gain_symbols=31,
        gain_subcarriers=1,
        search_symbols=256,
        burst_block_symbols=8,
    ),
    "ofdm_aligned_15khz": OfdmAlignedParams(
        LTE, n_symbols=127, n_subcarriers=128, gain_subcarriers=13, search_symbols=127
    ),
    "ofdm_aligned_30khz": OfdmAlignedParams(
        NR_30KHZ, n_symbols=127, n_subcarriers=128, gain_subcarriers=7, search_symbols=127
    ),
    "cp_profile": CpProfileParams(),
    "dynamics": DynamicsParams(),
}
"""Every registered view by name, with its default parameters."""


def _kind_of(params: Any) -> tuple[str, _ViewKind]:
    for name, kind in _KINDS.items():
        if type(params) is kind.params_type:
            return name, kind
    raise TypeError(f"{type(params).__name__} is not the parameters of a view; views: {', '.join(_KINDS)}")


def view_to_dict(params: Any) -> dict[str, Any]:
    """``{"name": kind, "params": {...}}``: how a manifest or card records a view."""
    name, _kind = _kind_of(params)
    return {"name": name, "params": params.to_dict()}


def view_from_dict(values: Mapping[str, Any], where: str = "view") -> Any:
    """The view parameters `values` (as written by view_to_dict) describe; a ValueError naming
    `where` and the field when they do not."""
    if not isinstance(values, Mapping) or set(values) != {"name", "params"}:
        raise ValueError(f"{where}: a view is an object with exactly the keys 'name' and 'params'")
    kind = _KINDS.get(values["name"])
    if kind is None:
        raise ValueError(f"{where}.name: unknown view {values['name']!r}; valid: {', '.join(_KINDS)}")
    if not isinstance(values["params"], Mapping):
        raise ValueError(f"{where}.params: {values['params']!r} is not an object")
    return kind.params_type.from_dict(values["params"], f"{where}.params")


def view_shape(params: Any) -> tuple[int, int]:
    """(T, K) of the array compute_view gives for one observation."""
    _kind_of(params)
    return params.shape


def min_source_samples(params: Any, sample_rate_hz: float) -> int:
    """Source-rate samples the view needs: those that resample to the samples it reads."""
    return _kind_of(params)[1].min_source_samples(params, sample_rate_hz)


def compute_view(params: Any, iq: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """The view of the observation `iq` (..., N) at `sample_rate_hz`: (..., T, K) float32.

    The whole of `iq` is resampled, the view reads its first samples at the analysis rate:
    pass the observation (min_source_samples or a little more), not a long stream."""
    name, kind = _kind_of(params)
    iq = np.asarray(iq)
    if iq.ndim == 0:
        raise ValueError(f"view {name!r}: I/Q must be an array of samples, got a scalar")
    needed = min_source_samples(params, sample_rate_hz)
    if iq.shape[-1] < needed:
        raise ValueError(f"view {name!r} needs {needed} samples at {sample_rate_hz / 1e6:g} MS/s, got {iq.shape[-1]}")
    if not np.isfinite(iq).all():
        raise ValueError(f"view {name!r}: the I/Q holds NaN or Inf samples")
    rows = iq.reshape(-1, iq.shape[-1])
    out = np.zeros((len(rows), *params.shape), np.float32)
    for i, row in enumerate(rows):
        out[i] = kind.compute(params, row, sample_rate_hz)
    return out.reshape(*iq.shape[:-1], *out.shape[1:])
