"""The time-dynamics view: how fast the channel's fading changes, which is all a receiver sees
of motion.

Why its span. Mobility is a class of the maximum Doppler fD (`labels.MOBILITY_DOPPLER_EDGES_HZ`:
static < 1 Hz <= pedestrian < 40 Hz <= vehicular), and a Rayleigh-fading envelope decorrelates
after about 0.4 / fD: 0.7 ms at 600 Hz, 10 ms at the 40 Hz edge, 200 ms at 2 Hz. One
observation of G (16 ms) cannot tell a 2 Hz channel from a static one, so this view reads
`n_snippets` short snippets `hop_s` apart: 128 of them 1 ms apart, a 128 ms span. A 1.5 Hz
channel has then turned its paths' phases by 1.2 rad and its envelope correlation has fallen
to about 0.6 (J0^2 of 2 pi fD t), a 45 Hz channel's decorrelates between neighbouring
snippets within 10 lags, a 600 Hz one's within one. Its cost is latency: a mobility readout
needs 128 ms of capture; a shorter capture still gets the other views.

What it holds. Each snippet is `frames_per_snippet` consecutive `n_fft`-point FFTs (Hann
window) at the analysis rate, their power averaged (the data's constellation averages out
over a few hundred elements), in `n_subbands` equal subbands across the band: the power of the
channel x the signal in each subband over time. Snippets whose power is far below the
capture's strongest ones (a WiFi gap, an empty subframe) are left out. For each subband the
view keeps

* row 0: its mean log-power, dB relative to the strongest subband (where the signal is);
* rows 1..L and L+1..2L: the lower quartile and the median, over pairs of snippets `lags[i]`
  apart, of the change of its log-power between them, in dB: flat and small for a static
  channel (only noise and data move it), rising to the fading's spread at a lag of about
  0.4 / fD, already there at lag 1 for vehicular speeds. Quantiles, not a mean square:
  traffic moves the power too (a scheduler allocates resource blocks per 1 ms subframe, so
  part of the pairs see an allocation switch on or off whatever the lag), and the lower
  quantiles come from the pairs whose allocation did not change (an LTE cell at 13 % load,
  static, reads 0.15-0.2 dB at every lag; the mean square read 3.8-4.5 dB, as at 300 Hz).

The K subbands are sorted by their mean power, strongest first, so that the signal's subbands
lead wherever the signal sits in the band and whatever its bandwidth.

The sent-power views (SentPowerParams, one per protocol). Traffic moves today's view as much as
motion does: a cell at partial load schedules other resource blocks every subframe, and a WiFi
medium is idle between packets, so that a classifier of the rows reads mobility at 69-80 % on
partly loaded LTE and NR and 60-77 % on WiFi, against 88-96 % on fully loaded cells (held-out
site, `lwmspectro_train.dynamics_probe`). Each sent-power view keeps the rows above and their
128 ms, but measures only what its protocol sends at a fixed power, found blindly:

* LTE: the cell reference signals, on the comb of six whose power stays highest in the
  snippets' lowest decile, in the first whole symbol 0 or 4 of a slot each read holds; the slot
  timing and CFO come from the CP correlation folded over a group's reads, which are staggered
  over the half-subframe so that together they cover all of it;
* NR: 180 kHz blocks of the first NR_SYMBOLS whole symbols of each read, at the subcarrier
  spacing (15 or 30 kHz) whose prefixes correlate best, each counted where it is scheduled
  (sent_power_from_measures), a subband's value the median over its counted blocks, each gated
  alone (gated_rows);
* WiFi: the frames that lie inside packets (both ends busy), a millisecond without one left out
  (today's gate counts the idle milliseconds as signal where a medium is busy in fewer than a
  tenth of them).

A snippet's reads are measured by group (measure_group) and kept in the stream's history like
today's snippets; what needs the whole window (the comb, the busy level, the scheduled blocks)
is decided over it. LTE and NR read 0.37 ms of each millisecond (the shortest read that holds a
whole CRS symbol wherever it starts), WiFi the same samples in 44 frames of 8.3 us.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.fft
import scipy.signal

from . import ofdm_sync
from .config_base import ConfigBase, bounded
from .resample import PointResampler

LOG_FLOOR = 1e-20
"""Smallest power before the log: an all-zero snippet."""

GATE_FRACTION = 0.1
"""A snippet counts when its power is at least this share of the capture's 90th percentile
(10 dB below its strong snippets): bursts and empty subframes drop out, fading dips (rarely
10 dB over the whole band) stay."""

CHANGE_QUANTILES = (0.25, 0.5)
"""Quantiles of the log-power change kept per lag (see the module's docstring)."""

SNIPPET_GROUP = 16
"""Snippets resampled and transformed together. A capture's snippets are computed in groups of
this many from its first (the last group may be shorter), each group alone, so that its powers
are the same numbers whatever else is computed: a stream's next window reuses those of its
previous one (SnippetHistory) when their views start a whole number of groups (16 ms) apart,
as the framer starts them (views.aligned_offsets). A group's
arrays also stay in the processor's cache, where those of all 128 snippets at once did not."""


class _SnippetLayout(ConfigBase):
    """What the views made of snippets read every hop have in common (SnippetSeries): the rows
    of the lags over the subbands, and where their reads lie (read_starts, read_length)."""

    hop_s: float
    n_snippets: int
    n_subbands: int
    lags: tuple[int, ...]

    if TYPE_CHECKING:

        @property
        def sample_rate_hz(self) -> float: ...

    def _check_lags(self) -> None:
        """Keep `lags` as a tuple of whole numbers of snippets from 1 to n_snippets - 1, else a ValueError."""
        lags = tuple(self.lags)
        object.__setattr__(self, "lags", lags)
        if not lags or any(isinstance(lag, bool) or not isinstance(lag, int) for lag in lags):
            raise ValueError(f"lags: {list(lags)} is not a non-empty list of whole numbers of snippets")
        if min(lags) < 1 or max(lags) >= self.n_snippets:
            raise ValueError(f"lags must lie from 1 to n_snippets - 1 ({self.n_snippets - 1}), got {list(lags)}")

    @property
    def shape(self) -> tuple[int, int]:
        return (2 * len(self.lags) + 1, self.n_subbands)

    @property
    def hop_samples(self) -> int:
        return int(round(self.hop_s * self.sample_rate_hz))

    def read_starts(self) -> np.ndarray:
        """(n_snippets, 1) analysis-rate start of each snippet's read."""
        raise NotImplementedError

    @property
    def read_length(self) -> int:
        raise NotImplementedError

    @property
    def window_samples(self) -> int:
        """Analysis-rate samples the view spans."""
        return int(self.read_starts().max() + self.read_length)

    @property
    def span_s(self) -> float:
        return self.window_samples / self.sample_rate_hz

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["lags"] = list(values["lags"])
        return values


@dataclass(frozen=True)
class DynamicsParams(_SnippetLayout):
    """T = 2 len(lags) + 1 rows of K = n_subbands (see the module's docstring)."""

    keys_name: ClassVar[str] = "dynamics parameters"

    sample_rate_hz: float = bounded(30.72e6, 1e5, 1e9)
    n_fft: int = bounded(256, 8, 65536)
    frames_per_snippet: int = bounded(4, 1, 1024)
    hop_s: float = bounded(1e-3, 1e-6, 1.0)
    n_snippets: int = bounded(128, 2, 65536)
    n_subbands: int = bounded(32, 1, 65536)
    lags: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64)

    def __post_init__(self):
        self._check_lags()
        if self.n_fft % self.n_subbands:
            raise ValueError(f"n_subbands ({self.n_subbands}) must divide n_fft ({self.n_fft})")
        if self.snippet_samples > self.hop_samples:
            raise ValueError(
                f"a snippet ({self.snippet_samples} samples) is longer than the hop ({self.hop_samples} samples)"
            )

    @property
    def snippet_samples(self) -> int:
        return self.n_fft * self.frames_per_snippet

    def snippet_starts(self) -> np.ndarray:
        return np.arange(self.n_snippets, dtype=np.int64) * self.hop_samples

    def read_starts(self) -> np.ndarray:
        """(n_snippets, 1): each snippet is one read of read_length."""
        return self.snippet_starts()[:, None]

    @property
    def read_length(self) -> int:
        return self.snippet_samples


def source_samples(params: SnippetSeries, source_rate_hz: float) -> int:
    """Source-rate samples the view reads: every input its snippets' resampling touches."""
    resampler = PointResampler.for_rates(source_rate_hz, params.sample_rate_hz)
    return resampler.input_span(params.read_starts().ravel(), params.read_length)[1]


@functools.cache
def _hann(n_fft: int) -> np.ndarray:
    window = scipy.signal.get_window("hann", n_fft).astype(np.float32)
    window.setflags(write=False)
    return window


def snippet_powers(params: DynamicsParams, snippets: np.ndarray) -> np.ndarray:
    """(n_snippets, n_subbands) mean power of each snippet's subbands, DC-centred in frequency."""
    frames = snippets.reshape(len(snippets), params.frames_per_snippet, params.n_fft)
    spectrum = np.fft.fft(frames * _hann(params.n_fft), axis=-1)
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    # DC centred in the frames' mean power rather than in each spectrum: the same numbers, an
    # eighth of the data moved.
    power = np.fft.fftshift(power.mean(axis=1), axes=-1)
    return power.reshape(len(snippets), params.n_subbands, -1).mean(axis=-1)


def snippets_on(power: np.ndarray) -> np.ndarray:
    """(n_snippets,) True for the snippets that count (GATE_FRACTION): not in a gap or an empty subframe."""
    total = power.sum(axis=1)
    return total >= GATE_FRACTION * np.percentile(total, 90) if total.any() else np.zeros(len(total), bool)


def dynamics_from_powers(params: SnippetSeries, power: np.ndarray, on: np.ndarray | None = None) -> np.ndarray:
    """The view (T, K) from the subband powers of the snippets (n_snippets, n_subbands), of the
    snippets `on` (default: snippets_on); a 2-D `on` (n_snippets, n_subbands) gates each subband
    alone (gated_rows)."""
    on = snippets_on(power) if on is None else on
    if on.ndim == 2:
        return gated_rows(params, power, on)
    out = np.zeros(params.shape, np.float32)
    if on.sum() < 2:
        return out
    level = 10 * np.log10(np.maximum(power, LOG_FLOOR))
    mean_level = level[on].mean(axis=0)
    order = np.argsort(-mean_level, kind="stable")
    out[0] = (mean_level - mean_level.max())[order]
    n_lags = len(params.lags)
    for row, lag in enumerate(params.lags, start=1):
        pairs = on[lag:] & on[:-lag]
        if pairs.any():
            change = np.abs(level[lag:][pairs] - level[:-lag][pairs])
            quartile, median = np.quantile(change, CHANGE_QUANTILES, axis=0)
            out[row], out[row + n_lags] = quartile[order], median[order]
    return out


def dynamics(
    params: SnippetSeries,
    iq: np.ndarray,
    source_rate_hz: float,
    history: SnippetHistory | None = None,
    position: int = 0,
) -> np.ndarray:
    """The view (today's or a sent-power one) of one capture at `source_rate_hz` (its first
    source_samples samples are read); only the snippets are resampled to the analysis rate.
    Given the `history` of the stream the capture is part of (from the stream's sample
    `position` on), the snippets it shares with the stream's previous window are taken from there."""
    history = SnippetHistory() if history is None else history
    measured = history.measures(params, np.asarray(iq), source_rate_hz, position)
    if isinstance(params, DynamicsParams):
        return dynamics_from_powers(params, measured["power"])
    return dynamics_from_powers(params, *sent_power_from_measures(params, measured))


def _snippets(params: DynamicsParams, resampler: PointResampler, iq: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The snippets starting at `starts` (hop_samples apart) resampled from the capture `iq`: at
    equal rates, a view of `iq` (resampling is then a copy)."""
    length = params.snippet_samples
    if not resampler.identity or starts[-1] + length > len(iq):
        return resampler.frames(iq, 0, starts, length)
    step = iq.strides[0]
    return np.lib.stride_tricks.as_strided(
        iq[starts[0] :], (len(starts), length), (params.hop_samples * step, step), writeable=False
    )


class SnippetHistory:
    """What the snippets of a stream's latest windows measured, by view and group
    (SNIPPET_GROUP), so that the next window's view computes only the groups it does not share
    with it: 1 of 8 when the views start 16 of its 128 snippets apart (2 where the first group
    reads before the capture, as a resampled one does). The framer starts a stream's views of
    the past on a grid of whole groups (views.aligned_offsets), so that back-to-back windows of
    G (15.88 ms) line their groups up too.

    A group's measures are a function of the source samples it reads, of the resampler's phase
    at its first output (which fixes the filter's weights) and of its length alone: its key is
    those, with the stream offset of its first input. A group that reads before its capture's
    start or past its end (as zeros, resample_poly's padding) is neither kept nor taken;
    captures that do not start a whole number of groups apart find none to take. Offsets are
    those of one stream: a framer holds one history.

    The sent-power views read the same samples (SentPowerParams.read_starts): a capture's
    resampled reads are formed once, by whichever view asks first, for the others to measure."""

    def __init__(self) -> None:
        self._kept: dict[tuple[SnippetSeries, float], dict[tuple[int, int, int], dict[str, np.ndarray]]] = {}
        self._reads: dict[tuple, np.ndarray] = {}
        self._reads_of: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def measures(
        self, params: SnippetSeries, iq: np.ndarray, source_rate_hz: float, position: int
    ) -> dict[str, np.ndarray]:
        """What each snippet of the capture `iq` (source samples from stream offset `position`)
        measures (measure_group, the groups' arrays concatenated), and the groups it reads whole
        kept for the next capture."""
        resampler = PointResampler.for_rates(source_rate_hz, params.sample_rate_hz)
        earlier = self._kept.get((params, source_rate_hz), {})
        kept: dict[tuple[int, int, int], dict[str, np.ndarray]] = {}
        groups = []
        starts = params.read_starts()
        for group_starts in np.split(starts, range(SNIPPET_GROUP, len(starts), SNIPPET_GROUP)):
            first, end = resampler.input_span(group_starts.ravel(), params.read_length)
            whole = first >= 0 and end <= len(iq)
            key = (position + first, int(group_starts[0, 0]) % resampler.up, len(group_starts))
            group = earlier.get(key) if whole else None
            if group is None:
                reads = self._group_reads(params, resampler, iq, group_starts, position)
                group = measure_group(params, reads, group_starts)
            if whole:
                kept[key] = group
            groups.append(group)
        self._kept[(params, source_rate_hz)] = kept
        return {name: np.concatenate([group[name] for group in groups]) for name in groups[0]}

    def _group_reads(
        self, params: SnippetSeries, resampler: PointResampler, iq: np.ndarray, group_starts: np.ndarray, position: int
    ) -> np.ndarray:
        """The reads starting at `group_starts` (n, 1) resampled from `iq`: for a sent-power view,
        those another view of the same capture formed, or formed and kept for the others (the
        reads of earlier captures are let go)."""
        if isinstance(params, DynamicsParams):
            return _snippets(params, resampler, iq, group_starts[:, 0])
        key = (group_starts.tobytes(), params.read_length, resampler.up, resampler.down)
        capture = (position, len(iq))
        with self._lock:
            if self._reads_of != capture:
                self._reads, self._reads_of = {}, capture
            reads = self._reads.get(key)
        if reads is None:
            reads = resampler.frames(iq, 0, group_starts.ravel(), params.read_length)
            with self._lock:
                if self._reads_of == capture:
                    self._reads[key] = reads
        return reads


def group_period(params: SnippetSeries, source_rate_hz: float) -> int:
    """Source samples from one snippet group's start to the next (SNIPPET_GROUP hops), 0 when
    that is not a whole number: a stream's windows whose view starts on multiples of it reuse
    each other's groups (SnippetHistory), whatever their stride."""
    period = SNIPPET_GROUP * params.hop_samples * source_rate_hz / params.sample_rate_hz
    return int(round(period)) if abs(period - round(period)) < 1e-6 else 0


def source_regions(params: SnippetSeries, source_rate_hz: float) -> list[tuple[int, int]]:
    """The source-rate ranges [start, stop) the view reads: each snippet's reads' resampling inputs."""
    resampler = PointResampler.for_rates(source_rate_hz, params.sample_rate_hz)
    return [resampler.input_span(starts, params.read_length) for starts in params.read_starts()]


def gated_rows(params: SnippetSeries, power: np.ndarray, on: np.ndarray) -> np.ndarray:
    """The view's rows with each subband gated alone: `on` (n_snippets, n_subbands) says where a
    subband's power counts (a resource block scheduled there, for NR's view); a snippet counts
    in the band when any of its subbands does."""
    out = np.zeros(params.shape, np.float32)
    band_on = on.any(axis=1)
    if band_on.sum() < 2:
        return out
    level = 10 * np.log10(np.maximum(power, LOG_FLOOR))
    counted = np.where(on, level, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a subband that never counts
        mean_level = np.nan_to_num(np.nanmean(counted, axis=0), nan=10 * np.log10(LOG_FLOOR))
    order = np.argsort(-mean_level, kind="stable")
    out[0] = (mean_level - mean_level.max())[order]
    n_lags = len(params.lags)
    for row, lag in enumerate(params.lags, start=1):
        quartile, median = _nan_quantiles(np.abs(counted[lag:] - counted[:-lag]), CHANGE_QUANTILES)
        out[row], out[row + n_lags] = quartile[order], median[order]
    return out


def _nan_quantiles(values: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """(len(quantiles), columns) quantiles of each column of `values` over its non-NaN entries,
    linearly interpolated as np.nanquantile's default, 0 for a column without one. One sort of
    the whole array: np.nanquantile goes column by column, ten times slower here."""
    ordered = np.sort(values, axis=0)  # NaN last
    valid = np.count_nonzero(~np.isnan(values), axis=0)
    columns = np.arange(values.shape[1])
    out = np.zeros((len(quantiles), values.shape[1]))
    for i, q in enumerate(quantiles):
        position = q * np.maximum(valid - 1, 0)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, np.maximum(valid - 1, 0))
        below, above = ordered[low, columns], ordered[high, columns]
        out[i] = np.where(valid > 0, below + (above - below) * (position - low), 0.0)
    return out


SENT_POWER_PROTOCOLS = ("wifi", "lte", "nr")
"""The protocols with a view of the power they send fixed (SentPowerParams)."""

LTE_CRS_SYMBOLS = (0, 4)
"""The symbols of a slot with CRS of ports 0 and 1 (36.211 6.10.1.2); port 0's comb is v = 0 in
the first and v = 3 in the second, port 1's the other way round."""

CRS_COMBS = 6
"""A CRS port sits on every sixth subcarrier."""

NR_SYMBOLS = 4
"""Whole symbols of each NR read transformed (a read holds at least 4 at 15 kHz)."""

NR_BLOCK = 12
"""Subcarriers of a resource block: NR's scheduling unit."""

NR_UNITS = ofdm_sync.LTE.n_fft // NR_BLOCK
"""180 kHz blocks across the band: a 30 kHz block (360 kHz) is counted as two of them."""

BUSY_PERCENTILE = 99.5
"""What a WiFi frame, or an NR block, counts against: GATE_FRACTION of this percentile of the
frames' (the block's) power over the view. A medium busy 0.5 % of the time or more, a block
scheduled as often, reaches it (the 90th percentile of the dynamics view's gate passes noise
as signal where a WiFi medium is busy less than a tenth of the time)."""

EDGE_SAMPLES = 64
"""Samples at each end of a WiFi frame whose power says whether the frame lies inside a packet:
a gap between packets (16 us at the shortest) is longer than a frame (8.3 us), so a frame whose
two ends are busy holds no packet edge."""


@dataclass(frozen=True)
class SentPowerParams(_SnippetLayout):
    """T = 2 len(lags) + 1 rows of K = n_subbands: the dynamics view of what one protocol sends
    at a fixed power (see the module's docstring), at 30.72 MS/s (LTE's and NR's native rate).

    LTE and NR read `read_samples` every hop, the reads of `stagger` consecutive snippets each a
    `1 / stagger` of a half-subframe later in their hop than the one before, so that a group's
    reads together cover every phase of a half-subframe (its symbol timing is folded over them).
    WiFi reads `wifi_frames` frames of `frame_samples` evenly over the same reads (44 of 256
    samples fill them: 88.7 % against 86.6 % for 16 frames spread over each hop, on the probe's
    held-out windows), so that the three views read the same samples."""

    keys_name: ClassVar[str] = "sent-power dynamics parameters"

    protocol: str = "lte"
    hop_s: float = bounded(1e-3, 1e-4, 1.0)
    n_snippets: int = bounded(128, 2, 65536)
    n_subbands: int = bounded(32, 1, 2048)
    lags: tuple[int, ...] = DynamicsParams.lags
    read_samples: int = bounded(11264, 1, 10**6)
    stagger: int = bounded(4, 1, 64)
    wifi_frames: int = bounded(44, 1, 4096)
    frame_samples: int = bounded(256, 2 * EDGE_SAMPLES, 65536)

    def __post_init__(self):
        self._check_lags()
        if self.protocol not in SENT_POWER_PROTOCOLS:
            raise ValueError(f"protocol: {self.protocol!r} is not one of {', '.join(SENT_POWER_PROTOCOLS)}")
        for n_fft in (self.frame_samples, ofdm_sync.LTE.n_fft):
            if n_fft % self.n_subbands:
                raise ValueError(f"n_subbands ({self.n_subbands}) must divide {n_fft}")
        if self.wifi_frames * self.frame_samples > self.read_samples:
            raise ValueError(
                f"{self.wifi_frames} WiFi frames of {self.frame_samples} samples do not fit in a read "
                f"of {self.read_samples}"
            )
        if self.protocol != "wifi" and self.read_samples < self.min_read_samples:
            raise ValueError(
                f"read_samples ({self.read_samples}) must hold a whole CRS symbol and {NR_SYMBOLS} "
                f"whole symbols wherever a read starts: at least {self.min_read_samples}"
            )
        latest = (self.stagger - 1) * (ofdm_sync.LTE.group_samples // self.stagger)
        if latest + self.read_samples > self.hop_samples:
            raise ValueError(
                f"a read of {self.read_samples} samples staggered by up to {latest} does not fit in a hop of "
                f"{self.hop_samples}"
            )

    @property
    def sample_rate_hz(self) -> float:
        return ofdm_sync.LTE.sample_rate_hz

    @property
    def min_read_samples(self) -> int:
        """The longest wait for a whole CRS symbol (from just after one's FFT window starts to
        the end of the next's) or for NR_SYMBOLS whole symbols, whichever is longer."""
        lte = ofdm_sync.LTE
        crs = np.array([lte.fft_starts[s] for s in LTE_CRS_SYMBOLS])
        gaps = np.diff(np.r_[crs, crs[0] + lte.group_samples])
        return int(max(gaps.max(), NR_SYMBOLS * (lte.n_fft + lte.cp_other) + lte.cp_first - lte.cp_other) + lte.n_fft)

    @property
    def read_length(self) -> int:
        return self.read_samples

    def read_starts(self) -> np.ndarray:
        """(n_snippets, 1) analysis-rate start of each snippet's read."""
        snippets = np.arange(self.n_snippets, dtype=np.int64) * self.hop_samples
        step = ofdm_sync.LTE.group_samples // self.stagger
        return (snippets + np.arange(self.n_snippets) % self.stagger * step)[:, None]

    def frame_starts(self) -> np.ndarray:
        """(wifi_frames,) where the WiFi frames start in a read."""
        return np.arange(self.wifi_frames) * (self.read_samples // self.wifi_frames)


SnippetSeries = DynamicsParams | SentPowerParams
"""The parameters of a view made of snippets read every hop, which SnippetHistory keeps."""


def measure_group(params: SnippetSeries, reads: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
    """What the snippets of a group measure from their `reads` (one per snippet, starting at
    `starts`, rows of read_starts), each array with one row per snippet: the subband powers of today's
    view, the raw measures of a sent-power view (its window's whole is needed to finish them:
    sent_power_from_measures)."""
    if isinstance(params, DynamicsParams):
        return {"power": snippet_powers(params, reads)}
    if params.protocol == "wifi":
        return _wifi_frames(params, reads[:, params.frame_starts()[:, None] + np.arange(params.frame_samples)])
    offsets = starts[:, 0] - starts[0, 0]
    return (_lte_reference_signals if params.protocol == "lte" else _nr_blocks)(params, reads, offsets)


def _folded_timing(reads: np.ndarray, offsets: np.ndarray, numerology: ofdm_sync.Numerology) -> ofdm_sync.SymbolTiming:
    """The CP timing of `reads` (n, L) taken `offsets` apart, their correlation folded over the
    numerology's period together: the group start is from the first read's first sample. Reads
    at the same phase of the period are summed first (at a hop of whole periods, `stagger` sums)."""
    n_fft, period = numerology.n_fft, numerology.group_samples
    lagged = reads[:, :-n_fft] * np.conj(reads[:, n_fft:])
    power = reads.real**2 + reads.imag**2
    energy = 0.5 * (power[:, :-n_fft] + power[:, n_fft:])
    gamma, energy_folded = np.zeros(period, np.complex128), np.zeros(period)
    phases = offsets % period
    for phase in np.unique(phases):
        same = phases == phase
        for folded, values in ((gamma, lagged[same].sum(axis=0)), (energy_folded, energy[same].sum(axis=0))):
            _add_wrapped(folded, int(phase), values)
    correlation = ofdm_sync.CpCorrelation(
        ofdm_sync.group_sums(gamma, numerology), ofdm_sync.group_sums(energy_folded, numerology)
    )
    return ofdm_sync.timing_from_correlation(correlation)


def _add_wrapped(folded: np.ndarray, phase: int, values: np.ndarray) -> None:
    """folded[(phase + i) % period] += values[i]: a run of whole periods and its ends."""
    period = len(folded)
    padded = np.zeros(-(-(phase + len(values)) // period) * period, values.dtype)
    padded[phase : phase + len(values)] = values
    folded += padded.reshape(-1, period).sum(axis=0)


def _fft_starts(
    timing: ofdm_sync.SymbolTiming, offset: int, numerology: ofdm_sync.Numerology, length: int, symbols
) -> np.ndarray:
    """FFT window starts, in a read of `length` at `offset` from the first, of the whole symbols
    numbered `symbols` within their group (backed off a quarter of a prefix into it), earliest first."""
    period = numerology.group_samples
    group = (timing.group_start - offset) % period
    fft_starts = numerology.fft_starts[list(symbols)] - numerology.cp_other // 4
    starts = (group + np.arange(-1, length // period + 2)[:, None] * period + fft_starts[None, :]).ravel()
    return np.sort(starts[(starts >= 0) & (starts + numerology.n_fft <= length)])


def _symbol_powers(reads: np.ndarray, starts: np.ndarray, n_fft: int, cfo_subcarriers: float) -> np.ndarray:
    """(n, m, n_fft) DC-centred power of the symbols of each of the `reads` (n, L) whose FFT
    windows start at `starts` (n, m), the fractional CFO derotated (in single precision)."""
    derotation = np.exp(-2j * np.pi * cfo_subcarriers * np.arange(n_fft) / n_fft).astype(np.complex64)
    symbols = reads[np.arange(len(reads))[:, None, None], starts[..., None] + np.arange(n_fft)] * derotation
    spectra = scipy.fft.fft(symbols, axis=-1)
    return np.fft.fftshift(spectra.real**2 + spectra.imag**2, axes=-1)


@functools.cache
def _crs_comb_masks(n_subbands: int) -> np.ndarray:
    """(n_fft, CRS_COMBS x n_subbands) 1 where a DC-centred LTE bin is on that comb and subband.
    Subcarrier k of the grid is FFT bin k - 6 N_RB below DC and k - 6 N_RB + 1 above it (DC is
    skipped), so the comb of bin b is b mod 6 below DC and (b - 1) mod 6 above, whatever the
    bandwidth."""
    n_fft = ofdm_sync.LTE.n_fft
    bins = np.arange(n_fft) - n_fft // 2
    comb = np.where(bins < 0, bins, bins - 1) % CRS_COMBS
    subband = np.arange(n_fft) // (n_fft // n_subbands)
    masks = np.zeros((n_fft, CRS_COMBS, n_subbands), np.float32)
    masks[np.arange(n_fft), comb, subband] = 1.0
    masks.setflags(write=False)
    return masks.reshape(n_fft, -1)


@functools.cache
def _crs_counts(n_subbands: int) -> np.ndarray:
    """(CRS_COMBS, n_subbands) bins of each comb in each subband (at least 1)."""
    return np.maximum(_crs_comb_masks(n_subbands).sum(axis=0).reshape(CRS_COMBS, n_subbands), 1)


def _lte_reference_signals(params: SentPowerParams, reads: np.ndarray, offsets: np.ndarray) -> dict[str, np.ndarray]:
    """Per snippet, the power of each CRS comb in each subband ("combs", the mean of its bins) in
    the first whole symbol 0 or 4 of a slot its read holds, combs numbered as in symbol 0 (port
    0's comb moves by 3 in symbol 4); the slot timing and CFO are the group's."""
    lte = ofdm_sync.LTE
    timing = _folded_timing(reads, offsets, lte)
    chosen = [
        min(
            (int(start), symbol)
            for symbol in LTE_CRS_SYMBOLS
            for start in _fft_starts(timing, int(offset), lte, reads.shape[1], [symbol])
        )
        for offset in offsets
    ]
    power = _symbol_powers(reads, np.array([[start] for start, _ in chosen]), lte.n_fft, timing.cfo_subcarriers)
    combs = (power[:, 0] @ _crs_comb_masks(params.n_subbands)).reshape(len(reads), CRS_COMBS, params.n_subbands)
    combs /= _crs_counts(params.n_subbands)
    in_symbol_4 = np.array([symbol == 4 for _, symbol in chosen])
    combs[in_symbol_4] = np.roll(combs[in_symbol_4], -3, axis=1)
    return {"combs": combs}


def _nr_blocks(params: SentPowerParams, reads: np.ndarray, offsets: np.ndarray) -> dict[str, np.ndarray]:
    """Per snippet, the power of each 180 kHz block ("blocks", NR_SYMBOLS x NR_UNITS) in the first
    NR_SYMBOLS whole symbols of its read, at the subcarrier spacing (15 or 30 kHz) whose prefixes
    correlate best over the group."""
    timings = {n: _folded_timing(reads, offsets, n) for n in (ofdm_sync.LTE, ofdm_sync.NR_30KHZ)}
    numerology, timing = max(timings.items(), key=lambda item: item[1].correlation)
    n_fft = numerology.n_fft
    units_per_block = ofdm_sync.LTE.n_fft // n_fft
    every = range(numerology.symbols_per_group)
    starts = np.stack([_fft_starts(timing, int(o), numerology, reads.shape[1], every)[:NR_SYMBOLS] for o in offsets])
    power = _symbol_powers(reads, starts, n_fft, timing.cfo_subcarriers)
    grid = power[..., : n_fft // NR_BLOCK * NR_BLOCK].reshape(*starts.shape, -1, NR_BLOCK).mean(axis=-1)
    return {"blocks": np.repeat(grid, units_per_block, axis=-1)[..., :NR_UNITS]}


def _wifi_frames(params: SentPowerParams, frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per snippet, each frame's subband power ("power", Hann window) and the power of its
    emptier end ("edge", EDGE_SAMPLES)."""
    n = params.frame_samples
    spectra = np.fft.fft(frames * _hann(n), axis=-1)
    power = np.fft.fftshift(spectra.real**2 + spectra.imag**2, axes=-1)
    ends = np.abs(frames[..., [*range(EDGE_SAMPLES), *range(n - EDGE_SAMPLES, n)]]) ** 2
    edge = ends.reshape(*frames.shape[:2], 2, EDGE_SAMPLES).mean(axis=-1).min(axis=-1)
    return {"power": power.reshape(*frames.shape[:2], params.n_subbands, -1).mean(axis=-1), "edge": edge}


def sent_power_from_measures(params: SentPowerParams, measured: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(n_snippets, n_subbands) power and where it counts (per snippet, or per snippet and
    subband for NR) from the snippets' measures (measure_group) over the whole window:
    * LTE: in each subband, the comb of the six whose power is the highest in the snippets'
      lowest decile (data come and go, the reference signals stay), its mean over its bins; per
      subband, because a carrier off the capture's centre moves its DC subcarrier, where the
      comb of the bins shifts by one, off the capture's DC;
    * WiFi: the mean over the frames inside packets (both ends at least GATE_FRACTION of the
      BUSY_PERCENTILE of the ends' power), snippets without one left out;
    * NR: a block counts where scheduled, at least GATE_FRACTION of its BUSY_PERCENTILE over the
      window; its power is taken relative to its mean where counted (blocks scheduled at
      different times then compare) and a subband's is the median over its counted blocks and
      symbols (those of the data: DMRS, control and SS/PBCH symbols have powers of their own),
      times the subband's mean; it counts where any block does."""
    if params.protocol == "lte":
        combs = measured["combs"]  # (snippets, combs, subbands)
        comb = np.argmax(np.percentile(combs, 10, axis=0), axis=0)
        power = np.take_along_axis(combs, comb[None, None, :], axis=1)[:, 0]
        return power, snippets_on(power)
    if params.protocol == "wifi":
        edge = measured["edge"]
        inside = edge >= GATE_FRACTION * np.percentile(edge, BUSY_PERCENTILE)
        count = inside.sum(axis=1)
        power = (measured["power"] * inside[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
        return power, count > 0
    blocks = measured["blocks"]
    scheduled = blocks >= GATE_FRACTION * np.percentile(blocks, BUSY_PERCENTILE, axis=(0, 1))
    mean_scheduled = (blocks * scheduled).sum(axis=(0, 1)) / np.maximum(scheduled.sum(axis=(0, 1)), 1)
    counted = np.where(scheduled, blocks / np.maximum(mean_scheduled, LOG_FLOOR), np.nan)
    units = _subband_units(params.n_subbands)
    # (snippets, subbands, symbols x units): each subband's counted elements, NaN-padded.
    elements = counted[:, :, units].transpose(0, 2, 1, 3).reshape(len(blocks), params.n_subbands, -1)
    elements[..., np.tile(units < 0, (1, blocks.shape[1])).reshape(params.n_subbands, -1)] = np.nan
    median = _nan_quantiles(elements.reshape(-1, elements.shape[-1]).T, (0.5,))[0].reshape(len(blocks), -1)
    level = np.array([mean_scheduled[units[k][units[k] >= 0]].mean() for k in range(params.n_subbands)])
    power = median * np.nan_to_num(level)
    return power, power > 0


@functools.cache
def _subband_units(n_subbands: int) -> np.ndarray:
    """(n_subbands, most units of one) the NR_UNITS blocks whose middle lies in each subband, -1 padded."""
    subband = (np.arange(NR_UNITS) * NR_BLOCK + NR_BLOCK // 2) * n_subbands // ofdm_sync.LTE.n_fft
    members = [np.flatnonzero(subband == k) for k in range(n_subbands)]
    units = np.full((n_subbands, max(len(m) for m in members)), -1)
    for k, m in enumerate(members):
        units[k, : len(m)] = m
    units.setflags(write=False)
    return units
