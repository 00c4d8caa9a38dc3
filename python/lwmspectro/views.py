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
* ``ofdm_constellation``: the same symbols' resource elements blindly equalised (fourth-power
  phase, local gain) and histogrammed in one quadrant: the constellation's points themselves,
  which tell the QAM orders apart where the powers alone blur them.
* ``ofdm_pattern``: where reference signals, empty and constant-modulus elements repeat across
  the subcarriers of each symbol of a numerology's group (correlations of the elements'
  relative powers at lags of 1-31 subcarriers, over the occupied band), for the router: LTE's
  CRS against NR's DMRS on the same 15 kHz grid, wherever the band sits in the capture.
* ``ofdm_sync``: how strongly each symbol holds each root of LTE's primary synchronisation
  signal, around the band's centre, for the router: LTE sends it every 5 ms whatever its load,
  and NR on the same grid and prefixes never does.
* ``cp_profile``: the CP correlation coefficient of each candidate numerology across one
  period, for the router: which numerology, if any, is on the air.
* ``narrowband``: how far the strongest 1.9 kHz bin of each band stands above the band's median,
  for the router: a carrier too narrow for G's 240 kHz bins to show.
* ``spectral_levels``: the levels of the capture's spectrum, sorted over frequency, of its
  time-averaged power and of quantiles of its power over time, relative to its mean, for the
  SNR: how far the occupied band stands above the noise of a guard band or of the gaps in its
  traffic, wherever the band sits and however wide it is.
* ``spectral_levels_spread``: the same levels of as many blocks, spread over the past 125 ms
  (a view of the past): more of a bursty signal's gaps and of a cell's load, at the same cost.
* ``cp_snr``: the SNR over the capture's band that the CP correlation of each candidate
  numerology implies (its peak coefficient rho as log10(rho / (1 - rho))), for the SNR where no
  noise-only band or gap is in view.
* ``dynamics``: how fast the fading changes over 128 ms (`lwmspectro.dynamics`), for mobility.
* ``sent_power``: the same rows over the same 128 ms, of what one protocol sends at a fixed
  power (`dynamics.SentPowerParams`; ``dynamics_wifi``, ``dynamics_lte``, ``dynamics_nr``):
  each expert reads its own, where a scheduler's or a medium's traffic does not move it.

Every view reads the I/Q at any source rate, resamples it to its own analysis rate and
estimates whatever it needs (symbol timing, CFO) blindly from the samples.

An observation is read as a capture that starts at its first sample: each view reads the
source samples from there on (`min_source_samples` of them, its resampling filter's reach
included), as `compute_view` reads a capture from its start, so a recording cut at an
observation's start gives the same view offline as the live blocks compute. A view that reads
far into the past (`reads_past`: the dynamics views' 128 ms and spectral_levels_spread's 125
ms, against 16 ms for the others) does not set the observation's length (`observation_span`): it
reads the span that ends where the observation ends, and is absent (None, NaN in the framer) when
the capture does not reach back that far. `compute_observation` computes the views of one
observation together, sharing what they have in common (`Capture`: each analysis rate's resampled
I/Q, each numerology's CP correlation; given the stream's history, the dynamics snippets of its
previous window), in parallel threads when given an executor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal
import threadpoolctl

from .channels.impairments import unit_phasors
from .config_base import ConfigBase, bounded
from .dynamics import (
    SENT_POWER_PROTOCOLS,
    DynamicsParams,
    SentPowerParams,
    SnippetHistory,
    dynamics,
    group_period,
)
from .dynamics import source_regions as dynamics_source_regions
from .dynamics import source_samples as dynamics_source_samples
from .ofdm_sync import (
    LTE,
    NR_30KHZ,
    NR_60KHZ,
    WIFI,
    CpCorrelator,
    Numerology,
    PrefixFolds,
    burst_symbols,
    symbol_starts,
)
from .resample import PointResampler, prefix_inputs, resample_prefix
from .spectrogram import SpectrogramParams, spectrogram_from_frames

LOG_FLOOR = 1e-10
"""Smallest relative power before the log (-100 dB): an empty element or subcarrier."""


@dataclass(frozen=True)
class ViewOutput:
    """One observation's view and the blind estimates it made (symbol timing, CFO)."""

    values: np.ndarray
    """(T, K) float32."""
    estimates: Mapping[str, Any] = field(default_factory=dict)


class _Once:
    """A value made by the first thread that asks for it; the others wait for it."""

    def __init__(self, make: Callable[[], Any]):
        self._make: Callable[[], Any] | None = make
        self._lock = threading.Lock()
        self._value: Any = None

    def get(self) -> Any:
        with self._lock:
            if self._make is not None:
                self._value, self._make = self._make(), None
            return self._value


class Capture:
    """The source-rate I/Q of one observation, from its first sample on, and what its views
    share: the I/Q resampled to each analysis rate and each numerology's CP correlation, each
    formed once (by whichever thread asks first) over the longest length `views` read. Each is
    computed so that its first samples are the same numbers whatever length is formed, so a
    view computed alone (compute_view) and with others (compute_observation) agree exactly.

    The capture of a window of a stream may come with the stream's `history` and its
    `position` in the stream (the offset of its first sample): the dynamics view then takes
    from it the snippets the stream's previous window computed, the numbers computing them
    again gives."""

    def __init__(
        self,
        iq: np.ndarray,
        sample_rate_hz: float,
        views: Sequence[Any] = (),
        history: SnippetHistory | None = None,
        position: int = 0,
    ):
        self.iq = np.asarray(iq, np.complex64)
        self.sample_rate_hz = float(sample_rate_hz)
        self.history = history
        self.position = int(position)
        self._lengths: dict[Any, int] = {}
        self.declare(views)
        self._lock = threading.Lock()
        self._entries: dict[Any, _Once] = {}

    def declare(self, views: Sequence[Any]) -> None:
        """Have what `views` share formed over the longest length they read, from now on (what
        was formed shorter before is formed again at that length, with the same first numbers)."""
        for params in views:
            for numerology, length in _native_needs(params).items():
                rate = numerology.sample_rate_hz
                for key in (numerology, rate, (rate, numerology.group_samples)):
                    self._lengths[key] = max(self._lengths.get(key, 0), length)

    def _once(self, key: Any, make: Callable[[], Any]) -> Any:
        with self._lock:
            entry = self._entries.setdefault(key, _Once(make))
        return entry.get()

    def prepare(self, views: Sequence[Any]) -> None:
        """Form the CP correlations (and so the resampled streams) `views` read, at the length
        every declared view reads."""
        needed = dict.fromkeys(numerology for params in views for numerology in _native_needs(params))
        for numerology in needed:
            self.correlator(numerology, self._lengths[numerology])

    def _length(self, key: Any, n_samples: int) -> int:
        """What is formed for `key`: the longest any view declared, or more if asked."""
        return max(n_samples, self._lengths.get(key, 0))

    def native(self, rate_hz: float, n_samples: int) -> np.ndarray:
        """The first `n_samples` of the I/Q at `rate_hz` (resample.resample_prefix)."""
        length = self._length(rate_hz, n_samples)
        if rate_hz == self.sample_rate_hz and length <= len(self.iq):
            return self.iq[:n_samples]
        resampled = self._once(
            ("native", rate_hz, length), lambda: resample_prefix(self.iq, self.sample_rate_hz, rate_hz, length)
        )
        return resampled[:n_samples]

    def correlator(self, numerology: Numerology, length: int) -> CpCorrelator:
        """The CP correlator of the numerology over (at least) the first `length` native samples."""
        length = self._length(numerology, length)
        rate, period = numerology.sample_rate_hz, numerology.group_samples
        power_length = self._length((rate, period), length)

        def power_folds() -> PrefixFolds:
            native = self.native(rate, power_length)
            return PrefixFolds(native.real**2 + native.imag**2, period)

        def correlator() -> CpCorrelator:
            folds = self._once(("power", rate, period, power_length), power_folds)
            return CpCorrelator(self.native(rate, length), numerology, length, folds)

        return self._once(("correlator", numerology, length), correlator)


def _native_needs(params: Any) -> Mapping[Numerology, int]:
    """The native samples of each numerology a view reads through a capture (none for most)."""
    needs = _kind_of(params)[1].native_needs
    return needs(params) if needs else {}


def _numerology(value: Numerology | Mapping[str, Any], where: str) -> Numerology:
    return value if isinstance(value, Numerology) else Numerology.from_dict(value, where)


@dataclass(frozen=True)
class OfdmTimingParams(ConfigBase):
    """Which OFDM symbols of one numerology a symbol-aligned view reads: the first `n_symbols`
    of the `search_symbols` it searches, found with one timing for all of them (continuous
    transmissions: LTE, NR), or with `burst_block_symbols` > 0 a timing per block of that many
    symbols, taking first, in time order, the symbols whose own prefix correlates clearly
    (bursts: WiFi packets, each with its own timing, and the gaps between them). Every
    subcarrier of the FFT is read."""

    numerology: Numerology = WIFI
    n_symbols: int = bounded(62, 2, 4096)
    search_symbols: int = bounded(63, 2, 65536)
    burst_block_symbols: int = bounded(0, 0, 1024)

    def __post_init__(self):
        object.__setattr__(self, "numerology", _numerology(self.numerology, "numerology"))
        if self.search_symbols < self.n_symbols:
            raise ValueError(f"search_symbols ({self.search_symbols}) must be at least n_symbols ({self.n_symbols})")
        if self.burst_block_symbols and self.numerology.symbols_per_group != 1:
            raise ValueError("burst_block_symbols needs a numerology with one prefix length (symbols_per_group 1)")
        if self.burst_block_symbols and self.search_symbols % self.burst_block_symbols:
            raise ValueError(
                f"search_symbols ({self.search_symbols}) must be a multiple of "
                f"burst_block_symbols ({self.burst_block_symbols})"
            )

    @property
    def window_samples(self) -> int:
        """Native-rate samples read: `search_symbols` whole symbols, the first of which
        starts within two symbols."""
        return (self.search_symbols + 2) * self.numerology.longest_symbol

    @property
    def follows_band(self) -> bool:
        """Whether the subcarriers kept follow the occupied band (all of them are kept: no)."""
        return False

    def subcarriers(self, centre: int) -> np.ndarray:
        """FFT bins (DC-centred order) of the subcarriers kept: all of them, from the lowest."""
        return np.arange(self.numerology.n_fft)


@dataclass(frozen=True)
class OfdmSymbolsParams(OfdmTimingParams):
    """The symbols of OfdmTimingParams, and of their subcarriers the `n_subcarriers`
    `subcarrier_stride` apart centred on the occupied band when they do not span the FFT
    (`centre_on_band`: a signal off DC stays in view; else on DC)."""

    n_subcarriers: int = bounded(64, 2, 65536)
    subcarrier_stride: int = bounded(1, 1, 1024)
    centre_on_band: bool = True

    def __post_init__(self):
        super().__post_init__()
        n_fft = self.numerology.n_fft
        if n_fft % self.n_subcarriers:
            raise ValueError(f"n_subcarriers ({self.n_subcarriers}) must divide n_fft ({n_fft})")
        if self.n_subcarriers * self.subcarrier_stride > n_fft:
            raise ValueError(
                f"n_subcarriers x subcarrier_stride ({self.n_subcarriers} x {self.subcarrier_stride}) "
                f"exceeds n_fft ({n_fft})"
            )

    @property
    def follows_band(self) -> bool:
        """Whether the subcarriers kept follow the occupied band (they do not span the FFT)."""
        return self.centre_on_band and self.n_subcarriers * self.subcarrier_stride < self.numerology.n_fft

    def subcarriers(self, centre: int) -> np.ndarray:
        """FFT bins (DC-centred order, around the FFT's ends) of the K subcarriers kept."""
        offsets = (np.arange(self.n_subcarriers) - self.n_subcarriers // 2) * self.subcarrier_stride
        return (centre + offsets) % self.numerology.n_fft


@dataclass(frozen=True)
class OfdmAlignedParams(OfdmSymbolsParams):
    """The symbol-aligned view of one numerology: T = n_symbols + 2 rows of K = n_subcarriers.

    Row 0 is the band profile: the power of all n_fft subcarriers relative to their symbol's,
    averaged over the symbols and in K groups of subcarriers, in dB, z-scored (band edges,
    guard bands and DC show there). Rows 1..T are log10 of each element's power over its
    symbol's mean power and over the channel's gain there (the mean of that relative power
    over `gain_symbols` x `gain_subcarriers` around it), for the K subcarriers kept
    (OfdmSymbolsParams): the receiver's gain, a burst's edges and the fading channel are
    removed, each element's amplitude is kept, and empty subcarriers read low. The last row is
    each of those subcarriers' circularity, |sum Y^2| / sum |Y|^2 over blocks of
    CIRCULARITY_SYMBOLS symbols (averaged over the blocks), with the CFO's phase removed from
    symbol to symbol: what the powers cannot show, the phase of a constellation on a line
    (BPSK, WiFi's pilots: near 1) against one spread over the plane (QPSK and QAM: near 0)."""

    keys_name: ClassVar[str] = "ofdm_aligned parameters"

    gain_symbols: int = bounded(7, 1, 4097)
    gain_subcarriers: int = bounded(13, 1, 65536)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_symbols + 2, self.n_subcarriers)


@dataclass(frozen=True)
class OfdmConstellationParams(OfdmSymbolsParams):
    """The constellation of one numerology as a demodulator would see it, found blindly: a
    histogram of the equalised resource elements of the symbols and subcarriers kept
    (OfdmSymbolsParams), folded into one quadrant (|I|, |Q|): n_bins x n_bins bins over
    [0, extent]^2, log10 of each bin's share of the weight (LOG_SHARE_FLOOR at least).

    Each element is equalised by the channel around it, estimated over `smooth_symbols` x
    `smooth_subcarriers` elements: its gain as their mean power, its phase (modulo a quarter
    turn, the symmetry of every QAM and PSK constellation) from their fourth powers once the
    phase common to a symbol (residual CFO) and the phase ramp across subcarriers (timing) are
    removed. An element weighs as its channel's gain over the `weight_quantile` of the gains,
    at most 1, to the power `weight_power`: the allocated, strong part of the grid speaks, empty
    elements and gaps between bursts hardly. The aligned view keeps only the elements'
    powers, which tell BPSK from QPSK and the QAM orders apart only through their spread; here
    the rings and the grid of points themselves show."""

    keys_name: ClassVar[str] = "ofdm_constellation parameters"

    smooth_symbols: int = bounded(9, 1, 4097)
    smooth_subcarriers: int = bounded(3, 1, 65536)
    n_bins: int = bounded(32, 2, 1024)
    extent: float = bounded(1.6, 0.1, 10.0)
    weight_quantile: float = bounded(0.99, 0.0, 1.0)
    weight_power: float = bounded(2.0, 0.0, 16.0)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_bins, self.n_bins)


@dataclass(frozen=True)
class WifiPilotConstellationParams(OfdmConstellationParams):
    """OfdmConstellationParams for 802.11 bursts, each symbol's common phase tracked by its four
    pilots (WIFI_PILOT_SUBCARRIERS) and the channel smoothed over the symbols of one run only
    (`_pilot_tracked_phase`)."""

    keys_name: ClassVar[str] = "ofdm_pilot_constellation parameters"

    def __post_init__(self):
        super().__post_init__()
        if self.numerology.n_fft != WIFI.n_fft or not self.burst_block_symbols:
            raise ValueError(
                "the pilot-tracked constellation needs the 802.11 numerology's 64-point FFT and burst timing "
                "(burst_block_symbols > 0)"
            )


WIFI_PILOT_SUBCARRIERS = (-21, -7, 7, 21)
"""802.11's pilots in a 20 MHz channel (legacy, HT and VHT alike): BPSK in every data and SIG
symbol, whatever the data's modulation."""
PILOT_SHARE = 0.3
"""Below this mean power of the pilots, over the mean of every subcarrier kept (about 1.2 for
a whole 802.11 channel), a run's pilots are taken as outside the capture and its symbols' common
phase is followed from their fourth powers instead."""


@dataclass(frozen=True)
class OfdmCircularityParams(OfdmSymbolsParams):
    """How far each subcarrier's elements lie on a line, the one thing a quadrant-folded
    constellation cannot show: the fourth powers that recover its phase land BPSK on QPSK's
    points. Per block of `block_symbols` symbols and subcarrier, |sum Y^2| / sum |Y|^2 once each
    symbol's Y^2 is turned onto the previous one's (BPSK, 802.11's pilots: near 1; QPSK, QAM and
    noise: near 0.3 for 8 symbols); a row sums n_symbols / n_rows symbols' blocks, each weighing
    as its power (a packet speaks, a gap hardly).

    The turn from symbol to symbol is estimated blindly over the subcarriers: the CFO's residual,
    and the advance of a whole-subcarrier offset through the prefix (a quarter turn per 802.11
    symbol), which the aligned view's circularity row does not remove. Where the timing changes
    between two symbols (a new block of a burst), so does the phase ramp across subcarriers, and
    it is estimated and removed too."""

    keys_name: ClassVar[str] = "ofdm_circularity parameters"

    block_symbols: int = bounded(8, 2, 1024)
    n_rows: int = bounded(8, 1, 4096)

    def __post_init__(self):
        super().__post_init__()
        if self.n_symbols % (self.block_symbols * self.n_rows):
            raise ValueError(
                f"n_symbols ({self.n_symbols}) must be a multiple of block_symbols x n_rows "
                f"({self.block_symbols} x {self.n_rows})"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.n_subcarriers)


CENTRE_STEP = 12
"""The K subcarriers move off DC in steps of a resource block, so that a centred signal's
columns (its pilots, its DC) stay where they are whatever the noise does to its band's centre."""


def _smoothed_band(subcarrier_power: np.ndarray) -> np.ndarray:
    """Each subcarrier's power averaged over the 13 around it (around the FFT's ends), so that
    single elements do not count where the band is judged."""
    return scipy.ndimage.uniform_filter1d(subcarrier_power, 13, mode="wrap")


def _occupied_centre(subcarrier_power: np.ndarray) -> int:
    """The bin at the centre of the band's power, over the bins within 10 dB of the strongest
    (smoothed over 13 bins, so that single elements do not count), in steps of CENTRE_STEP
    from DC."""
    dc = len(subcarrier_power) // 2
    smoothed = _smoothed_band(subcarrier_power)
    weights = np.where(smoothed >= 0.1 * smoothed.max(), smoothed, 0.0)
    if not weights.any():
        return dc
    centre = float(np.average(np.arange(len(weights)), weights=weights))
    return dc + CENTRE_STEP * int(round((centre - dc) / CENTRE_STEP))


def _grid_mean(values: np.ndarray, symbols: int, subcarriers: int, *, wrap: bool = False) -> np.ndarray:
    """The mean of the 2-D `values` (symbols, subcarriers), real or complex, over the `symbols` x
    `subcarriers` elements around each, the edge symbols repeated and the subcarriers' too, or
    wrapped round the FFT with `wrap` (scipy.ndimage.uniform_filter's 'nearest' and 'wrap').

    Across the symbols as a sum of shifted copies of the grid, which numpy adds a whole row at a
    time: scipy's filter walks that axis one strided line at a time, ten times slower on these
    grids. Across the subcarriers, where each line is contiguous, scipy's."""
    mean = values
    if symbols > 1:
        length = len(values)
        padded = values[np.clip(np.arange(length + symbols - 1) - symbols // 2, 0, length - 1)]
        mean = padded[:length].copy()
        for shift in range(1, symbols):
            mean += padded[shift : shift + length]
        mean *= 1 / symbols
    if subcarriers > 1:
        mean = scipy.ndimage.uniform_filter1d(mean, subcarriers, axis=1, mode="wrap" if wrap else "nearest")
    return mean


def _runs_grid_mean(values: np.ndarray, firsts: np.ndarray, symbols: int, subcarriers: int) -> np.ndarray:
    """_grid_mean of each run of symbols (from each of `firsts` to the next) on its own, over
    min(`symbols`, the run's length) symbols, the run's edge symbols repeated: the same sums in
    the same order. A window may hold hundreds of runs of a few symbols (802.11 packets, blocks
    timed apart), where a call per run costs more than its sums: those shorter than `symbols`
    are summed all at once; a long run's contiguous rows are summed faster on their own."""
    n_rows = len(values)
    lengths = np.diff(np.append(firsts, n_rows))
    mean = np.empty_like(values)
    for first, length in zip(firsts[lengths >= symbols], lengths[lengths >= symbols]):
        mean[first : first + length] = _grid_mean(values[first : first + length], symbols, 1)
    short = lengths < symbols
    if short.any():
        rows = np.flatnonzero(np.repeat(short, lengths))
        run_of = np.repeat(np.arange(len(firsts)), lengths)[rows]
        low, high = firsts[run_of], firsts[run_of] + lengths[run_of] - 1
        around = lengths[run_of]
        first_row = rows - around // 2
        sums = values[np.clip(first_row, low, high)]
        for shift in range(1, int(around.max())):
            longer = np.flatnonzero(around > shift)
            sums[longer] += values[np.clip(first_row[longer] + shift, low[longer], high[longer])]
        sums *= (1 / around).astype(np.float32)[:, None]
        mean[rows] = sums
    if subcarriers > 1:
        mean = scipy.ndimage.uniform_filter1d(mean, subcarriers, axis=1, mode="nearest")
    return mean


def _columns(array: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """array[..., columns] of a 2-D `array`, C-contiguous. The columns these views read are a
    band's subcarriers, evenly spaced round the FFT's ends; those are copied as one or two
    slices: numpy's indexing with an array of columns copies element by element into an array
    laid out columns first, over which the rows' arithmetic then runs several times slower."""
    count, width = len(columns), array.shape[-1]
    first, step = (int(columns[0]), int(columns[1] - columns[0]) % width) if count > 1 else (0, 0)
    if array.ndim != 2 or not step or not np.array_equal(columns, (first + step * np.arange(count)) % width):
        return np.ascontiguousarray(array[..., columns])
    out = np.empty((len(array), count), array.dtype)
    done = 0
    while done < count:
        taken = min(count - done, -(-(width - first) // step))
        out[:, done : done + taken] = array[:, first : first + step * (taken - 1) + 1 : step]
        done, first = done + taken, (first + step * taken) % width
    return out


def _neighbour_means(power: np.ndarray, columns: np.ndarray, params: OfdmAlignedParams) -> np.ndarray:
    """(T, K): the mean of `power` (T, n_fft) over the gain_subcarriers columns around each of
    `columns` (subcarrier_stride apart), around the FFT's ends."""
    n_fft, width = power.shape[1], params.gain_subcarriers
    if params.subcarrier_stride > 1:
        neighbours = (columns[:, None] + np.arange(width)[None, :] - width // 2) % n_fft
        return power[:, neighbours].mean(axis=-1)
    # Adjacent columns: running sums over the run of columns they and their neighbours cover.
    run = _columns(power, (columns[0] - width // 2 + np.arange(len(columns) + width - 1)) % n_fft)
    sums = np.concatenate([np.zeros((len(run), 1)), np.cumsum(run, axis=1, dtype=np.float64)], axis=1)
    return ((sums[:, width:] - sums[:, :-width]) / width).astype(np.float32)


@dataclass(frozen=True)
class _AlignedSymbols:
    """The symbols an OFDM view reads, found blindly and transformed (OfdmTimingParams); shared
    by the views of a capture that read the same symbols, so read, never written."""

    spectrum: np.ndarray
    """(symbols, n_fft) complex, FFT order: DC-centred bin b is FFT bin (b - n_fft // 2) % n_fft."""
    power: np.ndarray
    """|spectrum|^2."""
    symbol_power: np.ndarray
    """Each symbol's mean power over all n_fft bins."""
    subcarrier_power: np.ndarray
    """(n_fft,) DC-centred: each bin's power relative to its symbol's, averaged over the symbols."""
    starts: np.ndarray
    positions: np.ndarray
    """Each symbol's place in its numerology's group (0: the one after the longer prefix)."""
    cfos: np.ndarray
    centre: int
    columns: np.ndarray
    """FFT-order bins of the K subcarriers kept."""

    def kept(self) -> np.ndarray:
        """(symbols, K) elements of the subcarriers kept, the CFO's phase advance from symbol to
        symbol removed (what is left turns slowly: a residual CFO, the channel)."""
        n_fft = self.spectrum.shape[1]
        advance = np.exp(-2j * np.pi * self.cfos * self.starts / n_fft).astype(np.complex64)
        return _columns(self.spectrum, self.columns) * advance[:, None]


def _aligned_symbols(params: OfdmTimingParams, capture: Capture) -> _AlignedSymbols:
    """The symbols `params` read and their FFTs, formed once per capture for every view that
    reads the same symbols (the 15 kHz constellation and pattern views: the same 216), and the
    subcarriers this view keeps."""
    key = ("symbols", params.numerology, params.n_symbols, params.search_symbols, params.burst_block_symbols)
    symbols = capture._once(key, lambda: _symbol_spectra(params, capture))
    n_fft = params.numerology.n_fft
    centre = _occupied_centre(symbols.subcarrier_power) if params.follows_band else n_fft // 2
    columns = (params.subcarriers(centre) - n_fft // 2) % n_fft
    return dataclasses.replace(symbols, centre=centre, columns=columns)


def _symbol_spectra(params: OfdmTimingParams, capture: Capture) -> _AlignedSymbols:
    """The symbols `params` read, found blindly and transformed; every subcarrier kept."""
    numerology = params.numerology
    n_fft = numerology.n_fft
    native = capture.native(numerology.sample_rate_hz, params.window_samples)
    correlator = capture.correlator(numerology, params.window_samples)
    # Starting a quarter prefix early, a timing error of a few samples stays inside the prefix,
    # where it only turns the phase across subcarriers, and the previous symbol's echoes, in
    # the prefix's first samples, stay out.
    backoff = numerology.cp_other // 4
    if params.burst_block_symbols:
        starts, cfos = burst_symbols(
            native, numerology, params.n_symbols, params.burst_block_symbols, backoff, lagged=correlator.lagged
        )
        positions = np.zeros(len(starts), np.int64)
    else:
        timing = correlator.timing(params.window_samples)
        starts = symbol_starts(timing, numerology, len(native), params.n_symbols, backoff)
        cfos = np.full(len(starts), timing.cfo_subcarriers)
        within_group = (starts + backoff - timing.group_start) % numerology.group_samples
        positions = np.searchsorted(numerology.fft_starts, within_group)
    within = np.arange(n_fft)
    # The CFO's phase at each symbol's start turns the whole symbol and leaves its powers
    # alone: derotating within the symbols removes it.
    cfo_values, cfo_of_symbol = np.unique(cfos, return_inverse=True)  # one per block at most
    derotation = np.exp(-2j * np.pi * cfo_values[:, None] * within[None, :] / n_fft).astype(np.complex64)
    symbols = np.lib.stride_tricks.sliding_window_view(native, n_fft)[starts]
    symbols *= derotation[0] if len(cfo_values) == 1 else derotation[cfo_of_symbol]
    spectrum = scipy.fft.fft(symbols, axis=-1, overwrite_x=True)
    power = spectrum.real**2 + spectrum.imag**2
    symbol_power = np.maximum(power.mean(axis=1), np.finfo(np.float32).tiny)
    subcarrier_power = np.fft.fftshift((1 / (len(power) * symbol_power)) @ power).astype(np.float64)
    return _AlignedSymbols(
        spectrum, power, symbol_power, subcarrier_power, starts, positions, cfos, n_fft // 2, np.arange(n_fft)
    )


def _estimates(symbols: _AlignedSymbols) -> dict[str, Any]:
    return {"symbol_starts": symbols.starts, "cfo_subcarriers": symbols.cfos, "centre_subcarrier": symbols.centre}


def _ofdm_aligned(params: OfdmAlignedParams, capture: Capture) -> ViewOutput:
    symbols = _aligned_symbols(params, capture)
    tiny = np.finfo(np.float32).tiny
    band = symbols.subcarrier_power.reshape(params.n_subcarriers, -1).mean(axis=1)
    band = 10 * np.log10(np.maximum(band / max(float(band.max()), tiny), LOG_FLOOR))
    band = (band - band.mean()) / max(float(band.std()), 1e-6)
    # Power as symbol gain x channel gain x element: dividing by the symbol's mean power first
    # keeps a burst's edge or a gap from weighing on the channel's. The channel's gain as the
    # mean power over a few symbols and neighbouring subcarriers (around the FFT's ends): short
    # enough to follow fading, long enough to average over the constellation. Only the K
    # subcarriers kept need it.
    relative_power = symbols.power / symbols.symbol_power[:, None]
    across = _neighbour_means(relative_power, symbols.columns, params)
    gain = _grid_mean(across, params.gain_symbols, 1)
    relative = _columns(relative_power, symbols.columns) / np.maximum(gain, tiny)
    circularity = _circularity(symbols.kept())
    values = np.vstack([band[None, :], np.log10(np.maximum(relative, LOG_FLOOR)), circularity[None, :]])
    return ViewOutput(values.astype(np.float32), _estimates(symbols))


LOG_SHARE_FLOOR = 1e-4
"""Smallest share of the weight a constellation bin reads (log10: -4), an empty bin's."""


def _smoothed(values: np.ndarray, params: OfdmConstellationParams) -> np.ndarray:
    """The mean of `values` (symbols, K) over smooth_symbols x smooth_subcarriers around each."""
    return _grid_mean(values, params.smooth_symbols, params.smooth_subcarriers)


def _timing_runs(starts: np.ndarray, params: OfdmTimingParams) -> np.ndarray:
    """For each symbol, which run of symbols timed together it belongs to: all one run for a
    continuous transmission; for bursts, a new run wherever a symbol does not start one symbol
    after the previous one (a block's own timing, or the next block of clear symbols)."""
    if not params.burst_block_symbols:
        return np.zeros(len(starts), np.int64)
    return np.concatenate([[0], np.cumsum(np.diff(starts) != params.numerology.group_samples)])


def _fourth_powers(elements: np.ndarray, power: np.ndarray) -> np.ndarray:
    """-Y^4 / |Y|^2: four times the channel's phase for any QAM or PSK but BPSK (E[s^4] is real
    and negative), each element weighing as its power so that the strong do not drown the rest."""
    squares = elements * elements
    fourth = squares * squares
    fourth /= -np.maximum(power, float(np.finfo(np.float32).tiny))
    return fourth


def _timing_ramps(fourth: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """(symbols, K) the phase ramp across the subcarriers of each run's fourth powers: the timing
    error turns the phase across subcarriers, by a ramp of its own for each run of symbols timed
    together (one for a continuous transmission, one per block of a burst)."""
    across = (fourth[:, 1:] * np.conj(fourth[:, :-1])).sum(axis=1, dtype=np.complex128)
    ramps = np.angle(np.bincount(runs, across.real) + 1j * np.bincount(runs, across.imag))[runs]
    return ramps.astype(np.float32)[:, None] * np.arange(fourth.shape[1], dtype=np.float32)[None, :]


def _followed_phase(fourth: np.ndarray) -> np.ndarray:
    """Each symbol's common phase in the fourth powers' terms, followed by their turn from one
    symbol to the next over all its subcarriers (0 for the first)."""
    turns = np.angle((fourth[1:] * np.conj(fourth[:-1])).sum(axis=1, dtype=np.complex128))
    return np.concatenate([[0.0], np.cumsum(turns)])


def _fourth_power_phase(
    params: OfdmConstellationParams, symbols: _AlignedSymbols, elements: np.ndarray, power: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(each element's rotation, its channel's gain): the phase from the fourth powers of its
    `smooth_symbols` x `smooth_subcarriers` neighbours, the phase common to each symbol followed
    by the turn of the fourth powers from symbol to symbol."""
    fourth = _fourth_powers(elements, power)
    runs = _timing_runs(symbols.starts, params)
    ramp_phase = _timing_ramps(fourth, runs)
    fourth *= unit_phasors(-ramp_phase)
    common = _followed_phase(fourth)
    fourth *= np.exp(-1j * common).astype(np.complex64)[:, None]
    # The ramps and the phase common to each symbol (a residual CFO) removed, the channel's phase
    # is averaged over its neighbours, then they are put back.
    phase = np.angle(_smoothed(fourth, params)) + ramp_phase
    phase += common.astype(np.float32)[:, None]
    phase *= -0.25
    return phase, _smoothed(power, params)


def _pilot_tracked_phase(
    params: WifiPilotConstellationParams, symbols: _AlignedSymbols, elements: np.ndarray, power: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """_fourth_power_phase for 802.11 bursts, where it fails beyond QPSK: a symbol holds only 48
    to 52 data elements, too few for the turn of 16QAM's fourth powers from one symbol to the
    next, and those turns add up over the symbols (a random walk that smears the points into
    rings); the BPSK symbols of each preamble and the pilots beside the data pull the other way.

    Here each symbol's common phase comes from the squares of its four pilots (BPSK: their
    polarity squares away) against its run's, where the pilots are in the capture (PILOT_SHARE);
    the pilots take no part in the channel's phase; a symbol whose fourth powers oppose its
    run's (BPSK) is turned over before the smoothing and back after; and the channel's phase and
    gain are averaged over `smooth_symbols` of the same run only, never across a packet's edge."""
    n_fft = params.numerology.n_fft
    tiny = float(np.finfo(np.float32).tiny)
    pilot = np.isin((symbols.columns + n_fft // 2) % n_fft - symbols.centre, WIFI_PILOT_SUBCARRIERS)
    runs = _timing_runs(symbols.starts, params)
    firsts = np.flatnonzero(np.diff(runs, prepend=-1))
    fourth = _fourth_powers(elements, power)
    fourth[:, pilot] = 0
    ramp_phase = _timing_ramps(fourth, runs)
    fourth *= unit_phasors(-ramp_phase)
    squares = elements[:, pilot].astype(np.complex128) ** 2
    tracked = 2 * np.angle((squares * np.conj(np.add.reduceat(squares, firsts)[runs])).sum(axis=1))
    pilot_share = np.add.reduceat(power[:, pilot].mean(axis=1), firsts) / np.maximum(
        np.add.reduceat(power.mean(axis=1), firsts), tiny
    )
    common = np.where(pilot_share[runs] >= PILOT_SHARE, tracked, _followed_phase(fourth)).astype(np.float32)
    fourth *= unit_phasors(-common)[:, None]
    opposed = np.real((fourth * np.conj(np.add.reduceat(fourth, firsts)[runs])).sum(axis=1)) < 0
    fourth[opposed] *= -1
    smoothed = _runs_grid_mean(fourth, firsts, params.smooth_symbols, params.smooth_subcarriers)
    gain = _runs_grid_mean(power, firsts, params.smooth_symbols, params.smooth_subcarriers)
    phase = np.angle(smoothed) + ramp_phase
    phase += (common + np.where(opposed, np.float32(np.pi), np.float32(0)))[:, None]
    phase *= -0.25
    return phase, gain


def _ofdm_constellation(params: OfdmConstellationParams, capture: Capture) -> ViewOutput:
    # Blind equalisation by fourth powers (a textbook non-data-aided estimator; no library
    # offers it over a resource grid, hence written here).
    symbols = _aligned_symbols(params, capture)
    elements = symbols.kept()
    power = elements.real**2 + elements.imag**2
    tiny = float(np.finfo(np.float32).tiny)
    if isinstance(params, WifiPilotConstellationParams):
        phase, gain = _pilot_tracked_phase(params, symbols, elements, power)
    else:
        phase, gain = _fourth_power_phase(params, symbols, elements, power)
    rotation = unit_phasors(phase)
    equalised = elements * rotation
    equalised *= 1 / np.sqrt(np.maximum(gain, tiny))
    reference = max(float(np.quantile(gain, params.weight_quantile)), tiny)
    weight = np.minimum(gain / reference, 1.0) ** params.weight_power
    # The histogram by bincount: np.histogram2d's general edges cost ten times as much. Elements
    # beyond the extent land in one more row and column of bins, dropped after: the same sums
    # as leaving them out, without copying the elements that stay.
    n_bins, per_bin = params.n_bins, params.n_bins / params.extent
    index = np.fmin(np.abs(equalised.real) * per_bin, n_bins).astype(np.intp)
    index *= n_bins + 1
    index += np.fmin(np.abs(equalised.imag) * per_bin, n_bins).astype(np.intp)
    histogram = np.bincount(index.ravel(), weights=weight.ravel(), minlength=(n_bins + 1) ** 2)
    histogram = histogram.reshape(n_bins + 1, n_bins + 1)[:n_bins, :n_bins].ravel()
    share = histogram / max(float(histogram.sum()), tiny)
    values = np.log10(share + LOG_SHARE_FLOOR).reshape(params.n_bins, params.n_bins)
    return ViewOutput(values.astype(np.float32), _estimates(symbols))


def _ofdm_circularity(params: OfdmCircularityParams, capture: Capture) -> ViewOutput:
    symbols = _aligned_symbols(params, capture)
    elements = symbols.kept()
    squares = elements * elements
    power = elements.real**2 + elements.imag**2
    columns = np.arange(elements.shape[1], dtype=np.float32)
    # Each pair of symbols' Y^2 products: their phase is the turn from one to the next, plus a
    # ramp across subcarriers where the timing changed between them.
    pairs = squares[1:] * np.conj(squares[:-1])
    new_run = np.diff(_timing_runs(symbols.starts, params)) != 0
    ramps = np.zeros(len(pairs), np.float32)
    if new_run.any():
        across = (pairs[new_run, 1:] * np.conj(pairs[new_run, :-1])).sum(axis=1, dtype=np.complex128)
        ramps[new_run] = np.angle(across)
    pairs *= unit_phasors(-ramps[:, None] * columns[None, :])
    turns = np.angle(pairs.sum(axis=1, dtype=np.complex128)).astype(np.float32)
    phase = np.zeros(elements.shape, np.float32)
    phase[1:] = np.cumsum(turns[:, None] + ramps[:, None] * columns[None, :], axis=0)
    squares *= unit_phasors(-phase)
    shape = (params.n_rows, -1, params.block_symbols, elements.shape[1])
    lined = np.abs(squares.reshape(shape).sum(axis=2)).sum(axis=1)
    total = power.reshape(shape).sum(axis=(1, 2))
    values = lined / np.maximum(total, np.finfo(np.float32).tiny)
    return ViewOutput(values.astype(np.float32), _estimates(symbols))


CIRCULARITY_SYMBOLS = 8
"""Symbols over which a subcarrier's circularity is summed: few enough that a residual CFO
of a hundredth of a subcarrier turns Y^2 by well under a radian, many enough to average
over the constellation."""


def _circularity(elements: np.ndarray) -> np.ndarray:
    """Per column of `elements` (symbols, K): |sum Y^2| / sum |Y|^2 over each block of
    CIRCULARITY_SYMBOLS symbols, averaged over the blocks (0 for an empty column)."""
    n_blocks = max(1, len(elements) // CIRCULARITY_SYMBOLS)
    blocks = elements[: n_blocks * CIRCULARITY_SYMBOLS].reshape(n_blocks, -1, elements.shape[1])
    squares = np.abs((blocks.astype(np.complex128) ** 2).sum(axis=1))
    powers = (np.abs(blocks.astype(np.complex128)) ** 2).sum(axis=1)
    return (squares / np.maximum(powers, np.finfo(np.float64).tiny)).mean(axis=0)


@dataclass(frozen=True)
class OfdmPatternParams(OfdmTimingParams):
    """Where a numerology's reference signals, empty elements and constant-modulus elements
    repeat across its subcarriers, for each symbol of its group. Each element's power is taken
    relative to its symbol's mean and its channel's gain (as the aligned view has it); over the
    occupied band (OCCUPIED_LEVEL) of every symbol at one place in its group:

    * rows 0 .. S - 1 (S = symbols_per_group; row 0 the symbol after the longer prefix): column
      0 is log10 of the variance of those powers, columns 1 .. n_lags - 1 the correlation of
      the powers of subcarriers that many apart: empty or boosted elements that repeat;
    * rows S .. 2S - 1: the same of the powers' squared deviations from their mean, the
      correlation of how far each element's power strays: constant-modulus elements (pilots)
      that repeat among QAM data, whose mean power is the data's.

    LTE's cell-specific reference signals repeat every 6 subcarriers in symbols 0 and 4 of each
    slot, in every subframe, loaded or not; an NR PDSCH's DMRS every 2 (type 1) or 6 (type 2)
    in its DMRS symbols, on its allocation only, with no CRS; both fill a 15 kHz grid with the
    same prefixes, so that neither G's bins nor the prefix profile tell them apart. The
    correlations do not depend on where the band sits in the capture, and averaged over the
    band and the window they stand out of the noise at SNRs where single elements do not."""

    keys_name: ClassVar[str] = "ofdm_pattern parameters"

    n_lags: int = bounded(32, 2, 4096)
    gain_symbols: int = bounded(7, 1, 4097)
    gain_subcarriers: int = bounded(13, 1, 65536)

    def __post_init__(self):
        super().__post_init__()
        if self.n_lags >= self.numerology.n_fft:
            raise ValueError(f"n_lags ({self.n_lags}) must be smaller than n_fft ({self.numerology.n_fft})")

    @property
    def shape(self) -> tuple[int, int]:
        return (2 * self.numerology.symbols_per_group, self.n_lags)


OCCUPIED_LEVEL = 0.5
"""A subcarrier is in the occupied band when its power, smoothed over 13 subcarriers, is at
least this far from the floor (the 10th percentile) to the strongest: halfway up, so that the
band's edges hold at 0 dB SNR, where a tenth of the strongest would take in the guard bands."""
BAND_CONTRAST = 1.25
"""The strongest smoothed subcarrier must exceed the floor this many times (1 dB) for a band to
stand out; below, every subcarrier is read (noise, or a signal filling the capture), rather
than the noise's own ripple taken for a band."""


def _band_at(subcarrier_power: np.ndarray, level: float) -> tuple[np.ndarray, bool]:
    """Which subcarriers (of the DC-centred `subcarrier_power`, smoothed over 13) reach `level`
    of the way from the floor (the 10th percentile) to the strongest, and whether a band stands
    out at all (BAND_CONTRAST)."""
    smoothed = _smoothed_band(subcarrier_power)
    floor, top = float(np.percentile(smoothed, 10)), float(smoothed.max())
    return smoothed >= floor + level * (top - floor), top >= BAND_CONTRAST * floor


def _occupied_band(subcarrier_power: np.ndarray) -> np.ndarray:
    """Which subcarriers (of the DC-centred `subcarrier_power`) are in the occupied band."""
    band, stands_out = _band_at(subcarrier_power, OCCUPIED_LEVEL)
    return band if stands_out else np.ones(len(band), bool)


def _lag_correlations(rows: np.ndarray, inside: np.ndarray, positions: np.ndarray, params: OfdmPatternParams):
    """(len(rows), S, n_lags): per place in the group, log10 of the variance over the band of each
    of `rows` (each (symbols, subcarriers), centred over the band and 0 outside it), then their
    correlation at each lag (0 where no symbol sits at that place)."""
    n_lags = params.n_lags
    places = params.numerology.symbols_per_group
    # Every lag at once through the FFT, zero-padded so that the band's ends do not wrap onto
    # each other; the power spectra summed over the symbols of each place before going back,
    # and `pairs` counts the subcarrier pairs each lag has in the band.
    length = scipy.fft.next_fast_len(len(inside) + n_lags, real=True)
    spectra = scipy.fft.rfft(rows, length, axis=-1)
    spectra = spectra.real**2 + spectra.imag**2
    members = (positions[None, :] == np.arange(places)[:, None]).astype(np.float32)
    sums = scipy.fft.irfft(members @ spectra, length, axis=-1)[..., :n_lags]
    pairs = scipy.fft.irfft(np.abs(scipy.fft.rfft(inside.astype(np.float64), length)) ** 2, length)[:n_lags]
    counts = members.sum(axis=1)
    covariance = sums / np.maximum(counts, 1)[:, None] / np.maximum(np.round(pairs), 1.0)
    held = counts > 0
    variance = np.maximum(covariance[:, held, :1], np.finfo(np.float32).tiny)
    values = np.zeros((len(rows), places, n_lags), np.float32)
    values[:, held, 0] = np.log10(np.maximum(variance[..., 0], LOG_FLOOR))
    values[:, held, 1:] = covariance[:, held, 1:] / variance
    return values


def _ofdm_pattern(params: OfdmPatternParams, capture: Capture) -> ViewOutput:
    symbols = _aligned_symbols(params, capture)
    n_fft = params.numerology.n_fft
    band = _occupied_band(symbols.subcarrier_power)
    occupied = np.flatnonzero(band)
    # Only the band is read, and each element's gain reaches gain_subcarriers // 2 either side
    # (round the FFT's ends): the DC-centred subcarriers from the band's first to its last, with
    # that reach on both sides, in FFT order.
    reach = params.gain_subcarriers // 2
    span = np.arange(occupied[0] - reach, occupied[-1] + reach + 1)
    relative = _columns(symbols.power, (span - n_fft // 2) % n_fft) / symbols.symbol_power[:, None]
    gain = _grid_mean(relative, params.gain_symbols, params.gain_subcarriers)
    kept = slice(reach, len(span) - reach)
    powers = relative[:, kept] / np.maximum(gain[:, kept], np.finfo(np.float32).tiny)
    inside = band[occupied[0] : occupied[-1] + 1]
    rows = np.empty((2, *powers.shape), np.float32)
    weights = inside.astype(np.float32)
    np.multiply(powers - powers[:, inside].mean(axis=1, keepdims=True), weights, out=rows[0])
    np.square(rows[0], out=rows[1])
    rows[1] -= rows[1][:, inside].mean(axis=1, keepdims=True)
    rows[1] *= weights
    values = _lag_correlations(rows, inside, symbols.positions, params).reshape(params.shape)
    return ViewOutput(values, {"symbol_starts": symbols.starts, "cfo_subcarriers": symbols.cfos})


SYNC_SEQUENCES = ("lte_pss",)
"""Synchronisation sequences an ofdm_sync view can search for."""


@functools.lru_cache(maxsize=4)
def _sync_templates(sequences: str) -> np.ndarray:
    """(roots, length) each root's sequence on its consecutive subcarriers, DC-centred, with
    0 where a subcarrier is left empty: LTE's PSS on the 62 subcarriers around the carrier's
    DC, which it skips (36.211 6.11.1.2)."""
    from .phy.lte import pss

    templates = np.zeros((3, 63), np.complex64)
    for root in range(3):
        sequence = pss(root)
        templates[root, :31], templates[root, 32:] = sequence[:31], sequence[31:]
    return templates


@dataclass(frozen=True)
class OfdmSyncParams(OfdmTimingParams):
    """How strongly each symbol holds each root of a synchronisation sequence (`sequences`):
    T = n_symbols rows of K = one column per root, each the normalised correlation of the
    symbol's subcarriers with the root's, at its best place within `search_subcarriers` of
    the occupied band's centre, in [0, 1].

    LTE sends its primary synchronisation signal (PSS) on the 62 subcarriers around its
    carrier's centre in one symbol every 5 ms, whatever its load and antenna ports; NR's is
    another sequence, sent in SS/PBCH blocks that may be 20 ms apart, and other OFDM sends
    none. The PSS is what a receiver looks for first, and what no power or prefix statistic
    shows: LTE and NR fill the same 15 kHz grid with the same prefixes. The correlation is
    of adjacent subcarriers' products (Y[k+1] Y*[k] against d[k+1] d*[k]), which the channel
    and a timing error within the prefix leave alone, normalised by both sides' energy: 1
    for the sequence alone, about 1 / sqrt(62) per place for noise or data."""

    keys_name: ClassVar[str] = "ofdm_sync parameters"

    sequences: str = "lte_pss"
    search_subcarriers: int = bounded(64, 0, 4096)
    dc_candidates: int = bounded(0, 0, 16)
    """Also search within DC_SEARCH subcarriers of this many of the band's deepest one-subcarrier
    notches: LTE leaves its carrier's DC subcarrier empty, and where a capture's filter or the
    channel skews the band's edges, the band's middle misses the carrier's centre (0: the
    middle alone, as the first cards read it)."""

    def __post_init__(self):
        super().__post_init__()
        if self.sequences not in SYNC_SEQUENCES:
            raise ValueError(f"sequences: {self.sequences!r} is not one of {', '.join(SYNC_SEQUENCES)}")
        span = 2 * self.search_subcarriers + _sync_templates(self.sequences).shape[1]
        if span > self.numerology.n_fft:
            raise ValueError(
                f"search_subcarriers ({self.search_subcarriers}) reaches past the FFT ({self.numerology.n_fft} bins)"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_symbols, _sync_templates(self.sequences).shape[0])

    def to_dict(self) -> dict[str, Any]:
        """Without dc_candidates when it is 0, as the cards and graphs made before it record the view."""
        values = super().to_dict()
        if not self.dc_candidates:
            del values["dc_candidates"]
        return values


SYNC_BAND_LEVEL = 0.1
"""Where the sync view takes a carrier's edges: a tenth of the way from the floor to the
strongest subcarrier, low enough to take in the RBs where an LTE cell sends only its CRS and
control region, whose power is a fifth of a loaded RB's or more."""


def _band_middle(band: np.ndarray, stands_out: bool) -> int:
    """The bin halfway between the lowest and highest subcarriers of `band` (_band_at at
    SYNC_BAND_LEVEL), where a carrier's DC is whatever part of it is loaded; DC when no band
    stands out. Unlike the power's centroid, noise across the capture does not pull it towards DC."""
    if not stands_out:
        return len(band) // 2
    occupied = np.flatnonzero(band)
    return int(round((occupied[0] + occupied[-1]) / 2))


DC_SEARCH = 8
"""Subcarriers either side of a notch that the sync view searches (dc_candidates)."""


def _dc_notches(subcarrier_power: np.ndarray, band: np.ndarray, count: int) -> np.ndarray:
    """The `count` bins of `band` whose power is lowest against the two subcarriers either side
    of them: an empty DC subcarrier among loaded ones."""
    if not count:
        return np.zeros(0, np.int64)
    neighbours = sum(np.roll(subcarrier_power, shift) for shift in (-2, -1, 1, 2)) / 4
    ratio = subcarrier_power / np.maximum(neighbours, np.finfo(np.float64).tiny)
    return np.argsort(np.where(band, ratio, np.inf), kind="stable")[:count]


def _sync_correlations(spectrum: np.ndarray, templates: np.ndarray, centre: int, reach: int) -> np.ndarray:
    """(symbols, roots): each symbol's best normalised correlation with each root within `reach`
    subcarriers of the DC-centred bin `centre`."""
    # A matched filter over a few shifts of a known sequence (the textbook cell search's first
    # step); numpy's FFT does the correlations, which no library offers over a resource grid.
    n_fft = spectrum.shape[1]
    reference = templates[:, 1:] * np.conj(templates[:, :-1])
    length = reference.shape[1]
    # The subcarriers the sequence may lie on, DC-centred bins from the lowest, in FFT order.
    first = centre - reach - templates.shape[1] // 2
    bins = (first + np.arange(2 * reach + templates.shape[1]) - n_fft // 2) % n_fft
    grid = _columns(spectrum, bins)
    products = grid[:, 1:] * np.conj(grid[:, :-1])
    size = scipy.fft.next_fast_len(products.shape[1] + length)
    spectra = scipy.fft.fft(products, size, axis=-1)
    shifts = products.shape[1] - length + 1
    correlations = scipy.fft.ifft(spectra[:, None, :] * np.conj(scipy.fft.fft(reference, size, axis=-1)), axis=-1)
    magnitude = np.abs(correlations[..., :shifts])
    # Each shift's energy over the products the sequence holds: a running sum, less the
    # products next to its empty DC, whose reference is 0 (the same places for every root).
    power = (products.real**2 + products.imag**2).astype(np.float64)
    sums = np.concatenate([np.zeros((len(power), 1)), np.cumsum(power, axis=1)], axis=1)
    energy = sums[:, length:] - sums[:, :-length]
    for gap in np.flatnonzero(np.all(reference == 0, axis=0)):
        energy -= power[:, gap : gap + shifts]
    norm = np.sqrt(np.maximum(energy, 0.0))[:, None, :] * np.sqrt((np.abs(reference) ** 2).sum(axis=1))[None, :, None]
    return (magnitude / np.maximum(norm, np.finfo(np.float32).tiny)).max(axis=-1)


def _ofdm_sync(params: OfdmSyncParams, capture: Capture) -> ViewOutput:
    symbols = _aligned_symbols(params, capture)
    templates = _sync_templates(params.sequences)
    band, stands_out = _band_at(symbols.subcarrier_power, SYNC_BAND_LEVEL)
    centre = _band_middle(band, stands_out)
    values = _sync_correlations(symbols.spectrum, templates, centre, params.search_subcarriers)
    for notch in _dc_notches(symbols.subcarrier_power, band, params.dc_candidates):
        values = np.maximum(values, _sync_correlations(symbols.spectrum, templates, int(notch), DC_SEARCH))
    return ViewOutput(values.astype(np.float32), {**_estimates(symbols), "centre_subcarrier": centre})


class _PerNumerology(ConfigBase):
    """Mixin for view parameters that read each of `numerologies` at its own rate over `span_s` seconds
    (the CP correlation views, which share those correlations)."""

    numerologies: tuple[Numerology, ...]
    span_s: float

    def _check_numerologies(self) -> None:
        """Read the numerologies (records included) and refuse a span shorter than one period."""
        if isinstance(self.numerologies, (str, Mapping)) or not self.numerologies:
            raise ValueError("numerologies: a non-empty list of numerologies is needed")
        numerologies = tuple(_numerology(n, f"numerologies.{i}") for i, n in enumerate(self.numerologies))
        object.__setattr__(self, "numerologies", numerologies)
        for i, numerology in enumerate(numerologies):
            if self.analysis_samples(numerology) < numerology.group_samples + numerology.n_fft:
                raise ValueError(
                    f"span_s ({self.span_s:g} s) is shorter than one period of numerologies.{i} "
                    f"({(numerology.group_samples + numerology.n_fft) / numerology.sample_rate_hz:g} s)"
                )

    def analysis_samples(self, numerology: Numerology) -> int:
        return int(np.ceil(round(self.span_s * numerology.sample_rate_hz, 6)))

    def native_needs(self) -> dict[Numerology, int]:
        """The native samples of each numerology the view reads through its Capture."""
        return {numerology: self.analysis_samples(numerology) for numerology in self.numerologies}

    def source_samples(self, sample_rate_hz: float) -> int:
        """Source-rate samples the view reads: those the longest native read resamples from."""
        return max(_native_samples(n, length, sample_rate_hz) for n, length in self.native_needs().items())

    def coefficients(self, capture: Capture) -> list[np.ndarray]:
        """The CP correlation coefficient of each numerology over the span, from the capture's
        correlators (shared by every view of the observation that reads them)."""
        return [
            capture.correlator(numerology, length).correlation(length).coefficient
            for numerology, length in self.native_needs().items()
        ]

    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        values["numerologies"] = list(values["numerologies"])
        return values


@dataclass(frozen=True)
class CpProfileParams(_PerNumerology):
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
        self._check_numerologies()
        for i, numerology in enumerate(self.numerologies):
            if numerology.group_samples < self.n_bins:
                raise ValueError(
                    f"numerologies.{i}: its period ({numerology.group_samples} samples) is shorter than "
                    f"n_bins ({self.n_bins})"
                )

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.numerologies), self.n_bins)


def _cp_profile(params: CpProfileParams, capture: Capture) -> ViewOutput:
    rows = np.zeros(params.shape, np.float32)
    peaks = []
    for row, numerology, coefficient in zip(rows, params.numerologies, params.coefficients(capture)):
        edges = np.arange(params.n_bins) * numerology.group_samples // params.n_bins
        pooled = np.maximum.reduceat(coefficient, edges)
        row[:] = np.roll(pooled, -int(np.argmax(pooled)))
        peaks.append(int(np.argmax(coefficient)))
    return ViewOutput(rows, {"peak_offsets": np.array(peaks)})


@dataclass(frozen=True)
class NarrowbandParams(ConfigBase):
    """Where a narrow signal stands out of the band around it, for the router: a Welch
    periodogram (`n_segments` Hann-windowed `n_fft`-point FFTs back to back, averaged; 1.9 kHz
    bins at 30.72 MS/s) cut into `n_bands` bands of equal width, each band's

    * row 0: its strongest bin over the bins around it (NARROWBAND_REACH), in dB: a few dB for
      noise (a bin's spread after 29 averages), where a tone sits its power over theirs;
    * row 1: median bin, in dB relative to the band whose median is highest (at least
      -NARROWBAND_RANGE_DB; row 0 is 0 dB in a band that far down).

    A carrier a few kHz wide at 0 dB over its own band is some -12 dB in one of G's 240 kHz bins
    and hides in its noise; here it lifts its bin above the band's median. On generated
    examples (TDL-C, six seeds each), the largest row-0 value was 2.8-2.9 dB for noise alone,
    5.5-7.3 dB for a CW at 0 dB (its SNR over its 15 kHz), 9.6-11.6 dB at 5 dB and 2.8-4.0 dB at
    -5 dB; a single-carrier QAM of 1.3 MHz at 0 dB, whose power spreads over its band, 2.8-3.3 dB."""

    keys_name: ClassVar[str] = "narrowband parameters"

    sample_rate_hz: float = bounded(30.72e6, 1e5, 1e9)
    n_fft: int = bounded(16384, 64, 1 << 20)
    n_segments: int = bounded(29, 1, 4096)
    n_bands: int = bounded(128, 1, 1 << 20)
    dc_guard_bins: int = bounded(4, 0, 1 << 10, absent=0)
    """Bins on each side of DC that row 0 leaves out (7.5 kHz at 30.72 MS/s): the capture's DC
    spike, 9-26 dB over its ring in the held-out site's noise captures that read over 8 dB, more
    than a CW at 0-5 dB reads in its own band (5.5-11.6 dB). A record written before this field
    existed was made without a guard."""

    def __post_init__(self):
        if self.n_fft % self.n_bands:
            raise ValueError(f"n_bands ({self.n_bands}) must divide n_fft ({self.n_fft})")
        if 2 * self.dc_guard_bins + 1 > self.n_fft:
            raise ValueError(f"dc_guard_bins ({self.dc_guard_bins}) leaves out more than the {self.n_fft} bins")

    @property
    def analysis_samples(self) -> int:
        return self.n_fft * self.n_segments

    @property
    def shape(self) -> tuple[int, int]:
        return (2, self.n_bands)


NARROWBAND_GAP = 2
NARROWBAND_REACH = 10
"""A bin of the narrowband view is set against the mean of the bins 3 to 10 away on each side:
past the main lobe of a tone under the Hann window (2 bins each side), near enough that a
capture's filter edge, sloping across them, leaves the ratio near 1."""
NARROWBAND_RANGE_DB = 60.0
"""How far below the strongest band a band's median may read (row 1 of the narrowband view):
the stopband of a capture narrower than the analysis rate, not a level to tell apart. In the
held-out set's noise captured at 2-15.36 MS/s, a fifth read a 5-18 dB tone in such a band (the
resampler's images of the capture's DC spike) before these bands were left out of row 0."""


def _narrowband(params: NarrowbandParams, capture: Capture) -> ViewOutput:
    native = capture.native(params.sample_rate_hz, params.analysis_samples)
    _frequencies, density = scipy.signal.welch(
        native, window="hann", nperseg=params.n_fft, noverlap=0, detrend=False, return_onesided=False
    )
    density = np.fft.fftshift(density).astype(np.float64)
    tiny = float(np.finfo(np.float32).tiny)
    # The ring around each bin: the mean of the bins NARROWBAND_GAP + 1 .. NARROWBAND_REACH away
    # on both sides, beyond the main lobe of a tone's Hann window.
    wide, near = 2 * NARROWBAND_REACH + 1, 2 * NARROWBAND_GAP + 1
    ring = (
        wide * scipy.ndimage.uniform_filter1d(density, wide, mode="wrap")
        - near * scipy.ndimage.uniform_filter1d(density, near, mode="wrap")
    ) / (wide - near)
    contrast = density / np.maximum(ring, tiny)
    # The receiver's own carrier leak sits at DC in every zero-IF capture, noise alone included:
    # a tone there cannot be told from it, so the bins around DC read nothing.
    dc = params.n_fft // 2
    contrast[dc - params.dc_guard_bins : dc + params.dc_guard_bins + 1] = 1.0
    contrast = contrast.reshape(params.n_bands, -1)
    median = np.maximum(np.median(density.reshape(params.n_bands, -1), axis=1), tiny)
    level = 10 * np.log10(median / median.max())
    rows = np.empty(params.shape, np.float32)
    # A band at the floor is the stopband of a narrower capture, where the resampler's images
    # of the band's DC spike would read as tones: nothing there stands out.
    held = level > -NARROWBAND_RANGE_DB
    rows[0] = np.where(held, 10 * np.log10(np.maximum(contrast.max(axis=1), tiny)), 0.0)
    rows[1] = np.maximum(level, -NARROWBAND_RANGE_DB)
    return ViewOutput(rows)


SPECTRAL_TIME_QUANTILES = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9)
"""Quantiles over time of each bin's block powers that the spectral_levels view reads beside
their mean: the low ones the noise in a bursty signal's gaps, the high ones its bursts."""
SPECTRAL_FLOOR = -10.0
"""The lowest a spectral_levels value reads (log10 of a power relative to the mean: a bin of
digital zeros)."""


@dataclass(frozen=True)
class SpectralLevelsParams(ConfigBase):
    """The levels of the spectrum of `span_s` seconds, for the SNR: Hann-windowed FFTs back to
    back with bins `bin_hz` wide at the capture's own rate (no resampling: a capture narrower
    than the analysis rate would gain an empty band, lower than any noise), their powers
    averaged over blocks of `block_frames` frames. Per bin, the mean power (row 0) and the
    SPECTRAL_TIME_QUANTILES of its block powers over time (rows 1-6); each row sorted over the
    bins and read at `n_levels` quantiles from 2 % to 98 % (columns), as log10 of the power
    relative to the mean power of all bins (at least SPECTRAL_FLOOR; as the aligned views read
    relative powers).

    Sorting over frequency keeps what the SNR needs and drops where: an occupied band at S + N
    over a guard band at N reads log10(1 + S / N) between the row's high and low columns,
    whatever the band's width, offset or the capture's rate; a bursty signal (WiFi's packets, a
    cell's empty slots) shows the noise of its gaps in the low time quantiles of its own bins."""

    keys_name: ClassVar[str] = "spectral_levels parameters"

    bin_hz: float = bounded(120e3, 1e3, 1e7)
    block_frames: int = bounded(8, 1, 1 << 12)
    span_s: float = bounded(0.015, 1e-4, 1.0)
    n_levels: int = bounded(32, 2, 1 << 12)

    def n_fft(self, sample_rate_hz: float) -> int:
        """Samples per frame at `sample_rate_hz`: bins of about bin_hz, at least 8 of them."""
        return max(8, round(sample_rate_hz / self.bin_hz))

    def block_samples(self, sample_rate_hz: float) -> int:
        """Source samples of one block of frames."""
        return self.n_fft(sample_rate_hz) * self.block_frames

    def analysis_samples(self, sample_rate_hz: float) -> int:
        """Source samples the view spans: span_s, at least one block of frames."""
        span = int(np.ceil(round(self.span_s * sample_rate_hz, 6)))
        return max(span, self.block_samples(sample_rate_hz))

    def block_starts(self, sample_rate_hz: float) -> np.ndarray:
        """Where each block the view reads starts: back to back over the span."""
        block = self.block_samples(sample_rate_hz)
        return np.arange(self.analysis_samples(sample_rate_hz) // block, dtype=np.int64) * block

    def regions(self, sample_rate_hz: float) -> list[tuple[int, int]]:
        """The source ranges the view reads: its blocks."""
        block = self.block_samples(sample_rate_hz)
        return [(int(start), int(start) + block) for start in self.block_starts(sample_rate_hz)]

    @property
    def shape(self) -> tuple[int, int]:
        return (1 + len(SPECTRAL_TIME_QUANTILES), self.n_levels)


@dataclass(frozen=True)
class SpreadLevelsParams(SpectralLevelsParams):
    """spectral_levels of blocks spread over the stream's past: as many blocks as `read_s`
    seconds fill, evenly spread over the `span_s` seconds that end where the observation ends.
    A bursty signal's gaps and a cell's load come and go over tens of milliseconds; blocks spread
    over 125 ms see more of them than the same blocks back to back over 15 ms, at the same cost
    (the SNR bin, held-out site, probe's pooling: 75-80 % against 67-69 %). A capture shorter
    than the span has the 15 ms view alone."""

    keys_name: ClassVar[str] = "spectral_levels_spread parameters"

    span_s: float = bounded(0.125, 1e-3, 1.0)
    read_s: float = bounded(0.015, 1e-4, 1.0)

    def __post_init__(self):
        if self.read_s > self.span_s:
            raise ValueError(f"read_s ({self.read_s} s) must be at most span_s ({self.span_s} s)")

    def block_starts(self, sample_rate_hz: float) -> np.ndarray:
        """Where each block the view reads starts: read_s worth of blocks (at least one), the
        first at the span's start and the last at its end, evenly apart on the grid of blocks."""
        block = self.block_samples(sample_rate_hz)
        on_grid = self.analysis_samples(sample_rate_hz) // block
        read = min(on_grid, max(1, int(round(self.read_s * sample_rate_hz, 6)) // block))
        return np.linspace(0, on_grid - 1, read).round().astype(np.int64) * block


@functools.lru_cache(maxsize=16)
def _power_window(n_fft: int) -> np.ndarray:
    """A periodic Hann window scaled so that white noise of power P reads P in every bin: its
    sidelobes keep a strong band's leakage off the guard band that measures the noise."""
    window = scipy.signal.get_window("hann", n_fft, fftbins=True)
    return (window / np.sqrt(np.mean(window**2))).astype(np.float32)


def _spectral_levels(params: SpectralLevelsParams, capture: Capture) -> ViewOutput:
    rate = capture.sample_rate_hz
    n_fft = params.n_fft(rate)
    starts = params.block_starts(rate)
    windows = np.lib.stride_tricks.sliding_window_view(capture.iq, params.block_samples(rate))
    frames = windows[starts].reshape(len(starts), params.block_frames, n_fft)
    spectra = scipy.fft.fft(frames * _power_window(n_fft), axis=-1)
    blocks = (spectra.real**2 + spectra.imag**2).mean(axis=1, dtype=np.float64) / n_fft
    per_bin = np.concatenate([blocks.mean(axis=0)[None], np.quantile(blocks, SPECTRAL_TIME_QUANTILES, axis=0)])
    reference = float(per_bin[0].mean())
    if not reference > 0:
        return ViewOutput(np.full(params.shape, SPECTRAL_FLOOR, np.float32))
    levels = np.quantile(per_bin, np.linspace(0.02, 0.98, params.n_levels), axis=1).T / reference
    return ViewOutput(np.log10(np.maximum(levels, 10**SPECTRAL_FLOOR)).astype(np.float32))


CP_SNR_RANGE = (-3.0, 5.0)
"""The log10 SNRs a cp_snr value may read (-30 to 50 dB): a coefficient of 0 or 1 has no finite one."""


@dataclass(frozen=True)
class CpSnrParams(_PerNumerology):
    """The SNR each candidate numerology's CP correlation implies, for the SNR where no band or
    gap holds noise alone (a cell at full load filling a band-limited capture): the coefficient
    at the CP of an OFDM signal is SNR / (SNR + 1) over the capture's band, so its peak rho over
    one period gives log10(rho / (1 - rho)), within CP_SNR_RANGE (one value per numerology; far
    below 0 for a numerology that is absent). The correlations are those of the cp_profile view
    of the same numerologies and span, shared with it."""

    keys_name: ClassVar[str] = "cp_snr parameters"

    numerologies: tuple[Numerology, ...] = (WIFI, LTE, NR_30KHZ, NR_60KHZ)
    span_s: float = bounded(0.005, 1e-5, 0.1)

    def __post_init__(self):
        self._check_numerologies()

    @property
    def shape(self) -> tuple[int, int]:
        return (1, len(self.numerologies))


def _cp_snr(params: CpSnrParams, capture: Capture) -> ViewOutput:
    low, high = CP_SNR_RANGE
    peaks = np.array([coefficient.max() for coefficient in params.coefficients(capture)])
    with np.errstate(divide="ignore"):
        snr = np.log10(peaks) - np.log10(np.maximum(1.0 - peaks, 0.0))
    return ViewOutput(np.clip(np.nan_to_num(snr, nan=low), low, high).astype(np.float32)[None])


def _dynamics(params: DynamicsParams | SentPowerParams, capture: Capture) -> ViewOutput:
    return ViewOutput(dynamics(params, capture.iq, capture.sample_rate_hz, capture.history, capture.position))


def _wideband(params: SpectrogramParams, capture: Capture) -> ViewOutput:
    """Today's G, resampling only the frames it reads (3 % of the observation)."""
    resampler = PointResampler.for_rates(capture.sample_rate_hz, params.sample_rate_hz)
    frames = resampler.frames(capture.iq, 0, params.frame_starts, params.n_fft)
    return ViewOutput(spectrogram_from_frames(frames, params))


def _wideband_regions(params: SpectrogramParams, sample_rate_hz: float) -> list[tuple[int, int]]:
    """G reads its frames (and their resampling filter's reach)."""
    resampler = PointResampler.for_rates(sample_rate_hz, params.sample_rate_hz)
    return [resampler.input_span([start], params.n_fft) for start in params.frame_starts]


def _wideband_samples(params: SpectrogramParams, sample_rate_hz: float) -> int:
    """G's window at the source rate, and past it the samples its resampling filter reaches."""
    resampler = PointResampler.for_rates(sample_rate_hz, params.sample_rate_hz)
    return max(params.source_window_samples(sample_rate_hz), resampler.input_span(params.frame_starts, params.n_fft)[1])


class _ViewKind(NamedTuple):
    params_type: type[ConfigBase]
    compute: Callable[[Any, np.ndarray, float], np.ndarray]
    """One observation: (params, 1-D source-rate I/Q of at least min_source_samples, rate) -> (T, K)."""
    min_source_samples: Callable[[Any, float], int]
    """Source-rate samples the view reads from its first (its resampling filter's reach included)."""
    reads_past: bool = False
    """The view reads far more than the others (the stream's past): see the module docstring."""
    from_capture: Callable[[Any, Capture], ViewOutput] | None = None
    """The view from a Capture it shares with the observation's other views, with its estimates."""
    native_needs: Callable[[Any], Mapping[Numerology, int]] | None = None
    """The native-rate samples of each numerology the view reads through its Capture."""
    span: Callable[[Any, float], int] | None = None
    """Source-rate samples an observation of the view spans, when fewer than it reads (default:
    min_source_samples): the wideband view's observation is G's window, as it always was."""
    regions: Callable[[Any, float], list[tuple[int, int]]] | None = None
    """The source-rate ranges the view reads (source_regions), when not its whole min_source_samples."""
    period: Callable[[Any, float], int] | None = None
    """Source samples a stream's view of the past is aligned to (past_period)."""


def _capture_kind(
    params_type: type[ConfigBase],
    from_capture: Callable[[Any, Capture], ViewOutput],
    min_samples: Callable[[Any, float], int],
    native_needs: Callable[[Any], Mapping[Numerology, int]] | None = None,
    span: Callable[[Any, float], int] | None = None,
    regions: Callable[[Any, float], list[tuple[int, int]]] | None = None,
    reads_past: bool = False,
) -> _ViewKind:
    """A view computed from a Capture (alone, compute reads a Capture of its own)."""

    def compute(params: Any, iq: np.ndarray, sample_rate_hz: float) -> np.ndarray:
        return from_capture(params, Capture(iq, sample_rate_hz, [params])).values

    return _ViewKind(
        params_type,
        compute,
        min_samples,
        reads_past=reads_past,
        from_capture=from_capture,
        native_needs=native_needs,
        span=span,
        regions=regions,
    )


def _native_samples(numerology: Numerology, n_samples: int, sample_rate_hz: float) -> int:
    return prefix_inputs(sample_rate_hz, numerology.sample_rate_hz, n_samples)


def _ofdm_samples(params: OfdmTimingParams, sample_rate_hz: float) -> int:
    """Source-rate samples a symbol-aligned view reads: its window at its numerology's rate."""
    return _native_samples(params.numerology, params.window_samples, sample_rate_hz)


def _ofdm_needs(params: OfdmTimingParams) -> dict[Numerology, int]:
    """The native samples a symbol-aligned view reads through its Capture."""
    return {params.numerology: params.window_samples}


def _snippet_kind(params_type: type[ConfigBase]) -> _ViewKind:
    """A view made of snippets read every hop over the past 128 ms (`lwmspectro.dynamics`)."""
    return _ViewKind(
        params_type,
        dynamics,
        dynamics_source_samples,
        reads_past=True,
        from_capture=_dynamics,
        regions=dynamics_source_regions,
        period=group_period,
    )


_KINDS: dict[str, _ViewKind] = {
    "wideband": _capture_kind(
        SpectrogramParams,
        _wideband,
        _wideband_samples,
        span=lambda p, rate: p.source_window_samples(rate),
        regions=_wideband_regions,
    ),
    "ofdm_aligned": _capture_kind(OfdmAlignedParams, _ofdm_aligned, _ofdm_samples, _ofdm_needs),
    "ofdm_constellation": _capture_kind(OfdmConstellationParams, _ofdm_constellation, _ofdm_samples, _ofdm_needs),
    "ofdm_pilot_constellation": _capture_kind(
        WifiPilotConstellationParams, _ofdm_constellation, _ofdm_samples, _ofdm_needs
    ),
    "ofdm_circularity": _capture_kind(OfdmCircularityParams, _ofdm_circularity, _ofdm_samples, _ofdm_needs),
    "ofdm_pattern": _capture_kind(OfdmPatternParams, _ofdm_pattern, _ofdm_samples, _ofdm_needs),
    "ofdm_sync": _capture_kind(OfdmSyncParams, _ofdm_sync, _ofdm_samples, _ofdm_needs),
    "cp_profile": _capture_kind(
        CpProfileParams, _cp_profile, CpProfileParams.source_samples, CpProfileParams.native_needs
    ),
    "narrowband": _capture_kind(
        NarrowbandParams, _narrowband, lambda p, rate: prefix_inputs(rate, p.sample_rate_hz, p.analysis_samples)
    ),
    "spectral_levels": _capture_kind(SpectralLevelsParams, _spectral_levels, SpectralLevelsParams.analysis_samples),
    "spectral_levels_spread": _capture_kind(
        SpreadLevelsParams,
        _spectral_levels,
        SpreadLevelsParams.analysis_samples,
        regions=SpreadLevelsParams.regions,
        reads_past=True,
    ),
    "cp_snr": _capture_kind(CpSnrParams, _cp_snr, CpSnrParams.source_samples, CpSnrParams.native_needs),
    "dynamics": _snippet_kind(DynamicsParams),
    "sent_power": _snippet_kind(SentPowerParams),
}

VIEWS: dict[str, Any] = {
    "wideband": SpectrogramParams(),
    # Channel gains over 0.2 MHz x 0.5 ms (LTE, NR) and over one subcarrier x 31 symbols
    # (0.12 ms: a WiFi channel is about constant over a packet, not over 300 kHz at the delay
    # spreads of the sites and TR 38.901 profiles).
    "ofdm_aligned_wifi": OfdmAlignedParams(
        WIFI,
        n_symbols=62,
        n_subcarriers=64,
        gain_symbols=31,
        gain_subcarriers=1,
        search_symbols=256,
        burst_block_symbols=8,
    ),
    "ofdm_aligned_15khz": OfdmAlignedParams(
        LTE, n_symbols=126, n_subcarriers=128, gain_subcarriers=13, search_symbols=127
    ),
    "ofdm_aligned_30khz": OfdmAlignedParams(
        NR_30KHZ, n_symbols=126, n_subcarriers=128, gain_subcarriers=7, search_symbols=127
    ),
    # The symbols of G's 15.9 ms window (WiFi: 512 of them, the packets' first, the gaps last;
    # LTE and NR: 216 in a row), over 15.4 MHz of subcarriers: the more elements, the finer the
    # histogram. The channel's phase and gain over 9 symbols x 0.2 MHz (LTE, NR; as for the
    # aligned views' gain) or x 3 subcarriers (WiFi, 0.9 MHz: its packets are short).
    "ofdm_constellation_wifi": OfdmConstellationParams(
        WIFI, n_symbols=512, n_subcarriers=64, search_symbols=3840, burst_block_symbols=8
    ),
    # The same symbols with each one's common phase from 802.11's pilots and the channel's over
    # up to 33 symbols of its packet: the QAM grid rather than its rings.
    "ofdm_constellation_wifi_pilots": WifiPilotConstellationParams(
        WIFI,
        n_symbols=512,
        n_subcarriers=64,
        search_symbols=3840,
        burst_block_symbols=8,
        smooth_symbols=33,
    ),
    # The constellation's symbols again, in 8 rows of 64 symbols.
    "ofdm_circularity_wifi": OfdmCircularityParams(
        WIFI, n_symbols=512, n_subcarriers=64, search_symbols=3840, burst_block_symbols=8
    ),
    "ofdm_constellation_15khz": OfdmConstellationParams(
        LTE, n_symbols=216, n_subcarriers=512, subcarrier_stride=2, search_symbols=218, smooth_subcarriers=7
    ),
    "ofdm_constellation_30khz": OfdmConstellationParams(
        NR_30KHZ, n_symbols=216, n_subcarriers=512, search_symbols=434, smooth_subcarriers=7
    ),
    # The same 216 symbols as the 15 kHz constellation (LTE, NR at 15 kHz), every subcarrier.
    "ofdm_pattern_15khz": OfdmPatternParams(LTE, n_symbols=216, search_symbols=218),
    # The same symbols again: three LTE PSS in each window, 5 ms apart.
    "lte_sync_15khz": OfdmSyncParams(LTE, n_symbols=216, search_symbols=218),
    "cp_profile": CpProfileParams(),
    # 29 x 16384 samples: as much of G's 15.9 ms window as whole FFTs fill.
    "narrowband": NarrowbandParams(),
    "spectral_levels": SpectralLevelsParams(),
    "spectral_levels_spread": SpreadLevelsParams(),
    "cp_snr": CpSnrParams(),
    "dynamics": DynamicsParams(),
    # What each protocol sends at a fixed power, over the dynamics view's 128 ms: LTE's cell
    # reference signals, a WiFi medium's busy frames, NR's scheduled resource blocks.
    **{f"dynamics_{protocol}": SentPowerParams(protocol) for protocol in SENT_POWER_PROTOCOLS},
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


def view_from_dict(values: Mapping[str, Any], where: str = "view", *, record: bool = True) -> Any:
    """The view parameters `values` (as written by view_to_dict) describe; a ValueError naming
    `where` and the field when they do not. A record (a manifest's or card's view) lacking a
    field added since reads as it was made (ConfigBase.from_record); `record=False` is for a
    config written by hand, whose missing fields take their defaults."""
    if not isinstance(values, Mapping) or set(values) != {"name", "params"}:
        raise ValueError(f"{where}: a view is an object with exactly the keys 'name' and 'params'")
    kind = _KINDS.get(values["name"])
    if kind is None:
        raise ValueError(f"{where}.name: unknown view {values['name']!r}; valid: {', '.join(_KINDS)}")
    if not isinstance(values["params"], Mapping):
        raise ValueError(f"{where}.params: {values['params']!r} is not an object")
    read = kind.params_type.from_record if record else kind.params_type.from_dict
    return read(values["params"], f"{where}.params")


def view_shape(params: Any) -> tuple[int, int]:
    """(T, K) of the array compute_view gives for one observation."""
    _kind_of(params)
    return params.shape


@functools.lru_cache(maxsize=256)
def min_source_samples(params: Any, sample_rate_hz: float) -> int:
    """Source-rate samples the view needs: those that resample to the samples it reads."""
    return _kind_of(params)[1].min_source_samples(params, sample_rate_hz)


def _observation_samples(params: Any, sample_rate_hz: float) -> int:
    kind = _kind_of(params)[1]
    return (kind.span or kind.min_source_samples)(params, sample_rate_hz)


def reads_past(params: Any) -> bool:
    """Whether the view reads the span that ends where the observation ends (module docstring)."""
    return _kind_of(params)[1].reads_past


def view_name(params: Any) -> str:
    """The registered name of `params` (VIEWS) when they are a registered view's, else its kind."""
    kind, _ = _kind_of(params)
    return next((name for name, registered in VIEWS.items() if registered == params), kind)


def view_names(views: Sequence[Any]) -> list[str]:
    """A name for each view of a list (a model's inputs), unique: view_name, numbered from the
    second view of that name on (``ofdm_aligned``, ``ofdm_aligned_2``)."""
    bases = [view_name(params) for params in views]
    return [f"{base}_{bases[:i].count(base) + 1}" if base in bases[:i] else base for i, base in enumerate(bases)]


def observation_span(views: Sequence[Any], sample_rate_hz: float) -> int:
    """Source-rate samples one observation spans: the longest span of its views that do not
    read the past (of all of them when every one does); a view may read a few samples past it,
    where its resampling filter reaches (min_source_samples)."""
    present = [v for v in views if not reads_past(v)] or list(views)
    if not present:
        raise ValueError("an observation needs at least one view")
    return max(_observation_samples(v, sample_rate_hz) for v in present)


def view_offsets(views: Sequence[Any], sample_rate_hz: float) -> list[int]:
    """Where each view starts reading, in source samples from the observation's start: 0, or
    for a view that reads the past, its span before the observation's end (negative)."""
    return list(_view_offsets(tuple(views), float(sample_rate_hz)))


def past_reach_s(views: Sequence[Any], sample_rate_hz: float) -> float:
    """Seconds before an observation's start that its views read at most in a stream (the
    dynamics view's 111 ms for today's cards, and up to 16 ms more where aligned_offsets moves
    it back; 0 when no view reads the past)."""
    return past_reach(views, sample_rate_hz) / float(sample_rate_hz)


def past_reach(views: Sequence[Any], sample_rate_hz: float) -> int:
    """past_reach_s in source samples."""
    offsets = view_offsets(views, sample_rate_hz)
    periods = [past_period(v, sample_rate_hz) for v in views]
    return max(0, *(-offset + max(period - 1, 0) for offset, period in zip(offsets, periods)))


def past_period(params: Any, sample_rate_hz: float) -> int:
    """Source samples a stream's view of the past is aligned to (dynamics.group_period; 0 for
    the views of the present, and where it is not a whole number): see aligned_offsets."""
    kind = _kind_of(params)[1]
    return kind.period(params, sample_rate_hz) if kind.reads_past and kind.period is not None else 0


def aligned_offsets(views: Sequence[Any], sample_rate_hz: float, position: int) -> list[int]:
    """view_offsets of the observation at stream offset `position`, each view of the past moved
    back to the last multiple of its past_period from the stream's start (by less than 16 ms):
    so a stream's windows read their views of the past on one grid of snippet groups, and each
    window computes only the groups the one before did not, whatever the stride (back-to-back
    windows of G, 15.88 ms apart, would otherwise line up none). The framer reads them so; a
    view so moved is the view of the capture from where it then starts, as offline."""
    offsets = view_offsets(views, sample_rate_hz)
    aligned = []
    for params, offset in zip(views, offsets):
        period = past_period(params, sample_rate_hz)
        aligned.append(offset - (position + offset) % period if period else offset)
    return aligned


@functools.lru_cache(maxsize=64)
def _view_offsets(views: tuple[Any, ...], sample_rate_hz: float) -> tuple[int, ...]:
    span = observation_span(views, sample_rate_hz)
    return tuple(span - min_source_samples(v, sample_rate_hz) if reads_past(v) else 0 for v in views)


@functools.cache
def _thread_pools() -> threadpoolctl.ThreadpoolController:
    return threadpoolctl.ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager:
    """A context in which BLAS runs in the calling thread only. The views' matrix products are
    small (a few milliseconds): BLAS threads on other cores gain nothing on them and then spin
    while they wait for the next, taking the core the model or another worker needs (on two
    cores they doubled the CPU time of an observation's views for the same wall time)."""
    return _thread_pools().limit(limits=1, user_api="blas")


def _compute(params: Any, capture: Capture) -> ViewOutput:
    kind = _kind_of(params)[1]
    if kind.from_capture is not None:
        return kind.from_capture(params, capture)
    return ViewOutput(kind.compute(params, capture.iq, capture.sample_rate_hz))


ViewChooser = Callable[[Sequence["ViewOutput | None"]], Collection[int]]
"""Given the views computed first (the others None), the indices of the views to compute next."""


def compute_observation(
    views: Sequence[Any],
    iq: np.ndarray,
    sample_rate_hz: float,
    start: int = 0,
    *,
    executor: Executor | None = None,
    history: SnippetHistory | None = None,
    first: int = 0,
    offsets: Sequence[int] | None = None,
    lead: Collection[int] | None = None,
    then: ViewChooser | None = None,
    cpu_seconds: np.ndarray | None = None,
) -> list[ViewOutput | None]:
    """The views of the observation that starts at `start` of the 1-D source-rate `iq`, each as
    compute_view gives it for the capture iq[start + view_offsets:], with its estimates; None for
    a view that reads the past further back than iq goes. `iq` must hold what the views read
    (min_source_samples from where each starts), or end where the stream ends. Finite samples are assumed (the framer
    judges them). With an `executor` the views run in its threads (numpy, BLAS and scipy.fft
    release the interpreter while they compute). With the `history` of the stream `iq` is part
    of (iq[0] its sample `first`), the views reuse what they computed for its earlier windows
    (Capture), the same numbers. `offsets` (default view_offsets) says where each view starts
    from `start`: the framer gives aligned_offsets.

    With `lead` (indices of `views`) and `then`, only the lead views are computed first; `then`
    sees them and names the views to compute next, from the same captures (a router's views,
    then those of the expert it picks): the views neither names are None. Each view computed
    has the numbers it has when every view is computed.

    `cpu_seconds` (one float per view), when given, gains the CPU time of the thread that
    computed each view: what views share (a resampled stream, a CP correlation, the aligned
    symbols) counts for the first view that forms it."""
    iq = np.asarray(iq, np.complex64)
    # One history for the observation's views at least: the sent-power views share their reads.
    history = SnippetHistory() if history is None else history
    offsets = [start + offset for offset in (view_offsets(views, sample_rate_hz) if offsets is None else offsets)]
    staged = lead is not None and then is not None
    captures: dict[int, Capture] = {}
    for offset in sorted(set(offsets)):
        if offset >= 0:
            chosen = [v for v, o in zip(views, offsets) if o == offset]
            end = offset + max(min_source_samples(v, sample_rate_hz) for v in chosen)
            # Staged, what the later views share is declared once they are known: a resampled
            # stream or a CP correlation only they read that far is then formed only for them.
            declared = [views[i] for i in (lead or ()) if offsets[i] == offset] if staged else chosen
            captures[offset] = Capture(iq[offset:end], sample_rate_hz, declared, history, first + offset)
    computed: list[ViewOutput | None] = [None] * len(views)

    def compute(indices: Iterable[int]) -> None:
        chosen = [i for i in sorted(set(indices)) if offsets[i] >= 0 and computed[i] is None]
        if staged:
            for i in chosen:
                captures[offsets[i]].declare([views[i]])
        jobs = [(views[i], captures[offsets[i]]) for i in chosen]
        timed = None if cpu_seconds is None else [(cpu_seconds, i) for i in chosen]
        for i, output in zip(chosen, _compute_jobs(jobs, captures, executor, sample_rate_hz, timed)):
            computed[i] = output

    with one_blas_thread():
        if lead is None or then is None:
            compute(range(len(views)))
        else:
            compute(lead)
            compute(then(computed))
    return computed


def _timed_compute(params: Any, capture: Capture, counter: tuple[np.ndarray, int] | None) -> ViewOutput:
    """_compute, its thread's CPU time added to counter[0][counter[1]] when a counter is given."""
    if counter is None:
        return _compute(params, capture)
    before = time.thread_time()
    try:
        return _compute(params, capture)
    finally:
        counter[0][counter[1]] += time.thread_time() - before


def _compute_jobs(
    jobs: list[tuple[Any, Capture]],
    captures: dict[int, Capture],
    executor: Executor | None,
    sample_rate_hz: float,
    counters: Sequence[tuple[np.ndarray, int]] | None = None,
) -> list[ViewOutput]:
    """The views of `jobs`, in order, in the caller's thread or in the executor's threads, each
    job's CPU time added to its counter (_timed_compute) when `counters` are given."""
    timers = [None] * len(jobs) if counters is None else list(counters)
    if executor is None:
        return [_timed_compute(params, capture, timer) for (params, capture), timer in zip(jobs, timers)]
    # What views share first (each resampled stream, each CP correlation), so that no thread
    # waits for another to form it; then the views, the longest reads first.
    shared = [
        executor.submit(capture.prepare, [params for params, owner in jobs if owner is capture])
        for capture in captures.values()
    ]
    order = sorted(range(len(jobs)), key=lambda i: -min_source_samples(jobs[i][0], sample_rate_hz))
    futures = {i: executor.submit(_timed_compute, *jobs[i], timers[i]) for i in order}
    computed = [futures[i].result() for i in range(len(jobs))]
    for future in shared:
        future.result()
    return computed


def _checked(params: Any, iq: np.ndarray, sample_rate_hz: float) -> tuple[str, _ViewKind, np.ndarray]:
    """The view's kind and `iq` cut to the samples it reads; ValueError naming the view when
    `iq` is too short or not finite."""
    name, kind = _kind_of(params)
    iq = np.asarray(iq)
    if iq.ndim == 0:
        raise ValueError(f"view {name!r}: I/Q must be an array of samples, got a scalar")
    needed = min_source_samples(params, sample_rate_hz)
    if iq.shape[-1] < needed:
        raise ValueError(f"view {name!r} needs {needed} samples at {sample_rate_hz / 1e6:g} MS/s, got {iq.shape[-1]}")
    iq = iq[..., :needed]
    if not np.isfinite(iq).all():
        raise ValueError(f"view {name!r}: the I/Q holds NaN or Inf samples")
    return name, kind, iq


def view_output(params: Any, iq: np.ndarray, sample_rate_hz: float) -> ViewOutput:
    """compute_view of one observation (1-D `iq`), with the blind estimates the view made."""
    name, _kind, iq = _checked(params, iq, sample_rate_hz)
    if iq.ndim != 1:
        raise ValueError(f"view {name!r}: one observation is a 1-D array of samples, got shape {iq.shape}")
    with one_blas_thread():
        return _compute(params, Capture(iq, sample_rate_hz, [params]))


def compute_view(params: Any, iq: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """The view of the observation `iq` (..., N) at `sample_rate_hz`: (..., T, K) float32.

    The view reads the capture from its first sample on: its min_source_samples first samples."""
    _name, kind, iq = _checked(params, iq, sample_rate_hz)
    rows = iq.reshape(-1, iq.shape[-1])
    out = np.zeros((len(rows), *params.shape), np.float32)
    with one_blas_thread():
        for i, row in enumerate(rows):
            out[i] = kind.compute(params, row, sample_rate_hz)
    return out.reshape(*iq.shape[:-1], *out.shape[1:])


def source_regions(params: Any, sample_rate_hz: float) -> list[tuple[int, int]]:
    """The source-rate ranges [start, stop) the view reads of a capture from its first sample (its
    resampler's reach included; before 0 where it reaches before the capture): it reads nothing
    else, so a capture formed only there gives the same view. G reads its frames, the dynamics
    views their snippets' reads, the others their whole min_source_samples."""
    kind = _kind_of(params)[1]
    if kind.regions is not None:
        return kind.regions(params, sample_rate_hz)
    return [(0, min_source_samples(params, sample_rate_hz))]


def observation_regions(views: Sequence[Any], sample_rate_hz: float, start: int = 0) -> list[tuple[int, int]]:
    """The source-rate ranges compute_observation reads of the observation at `start`: each view's
    source_regions from where it starts (views that start before the stream read nothing)."""
    regions = []
    for params, offset in zip(views, view_offsets(views, sample_rate_hz)):
        if start + offset >= 0:
            regions += [(start + offset + a, start + offset + b) for a, b in source_regions(params, sample_rate_hz)]
    return regions
