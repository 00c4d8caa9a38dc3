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
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.signal

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
previous one (SnippetHistory) when the stride is a whole number of groups (16 ms). A group's
arrays also stay in the processor's cache, where those of all 128 snippets at once did not."""


@dataclass(frozen=True)
class DynamicsParams(ConfigBase):
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
        lags = tuple(self.lags)
        object.__setattr__(self, "lags", lags)
        if not lags or any(isinstance(lag, bool) or not isinstance(lag, int) for lag in lags):
            raise ValueError(f"lags: {list(lags)} is not a non-empty list of whole numbers of snippets")
        if min(lags) < 1 or max(lags) >= self.n_snippets:
            raise ValueError(f"lags must lie from 1 to n_snippets - 1 ({self.n_snippets - 1}), got {list(lags)}")
        if self.n_fft % self.n_subbands:
            raise ValueError(f"n_subbands ({self.n_subbands}) must divide n_fft ({self.n_fft})")
        if self.snippet_samples > self.hop_samples:
            raise ValueError(
                f"a snippet ({self.snippet_samples} samples) is longer than the hop ({self.hop_samples} samples)"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return (2 * len(self.lags) + 1, self.n_subbands)

    @property
    def snippet_samples(self) -> int:
        return self.n_fft * self.frames_per_snippet

    @property
    def hop_samples(self) -> int:
        return int(round(self.hop_s * self.sample_rate_hz))

    @property
    def window_samples(self) -> int:
        """Analysis-rate samples the view spans."""
        return (self.n_snippets - 1) * self.hop_samples + self.snippet_samples

    @property
    def span_s(self) -> float:
        return self.window_samples / self.sample_rate_hz

    def snippet_starts(self) -> np.ndarray:
        return np.arange(self.n_snippets, dtype=np.int64) * self.hop_samples

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["lags"] = list(values["lags"])
        return values


def source_samples(params: DynamicsParams, source_rate_hz: float) -> int:
    """Source-rate samples the view reads: every input its snippets' resampling touches."""
    resampler = PointResampler.for_rates(source_rate_hz, params.sample_rate_hz)
    return resampler.input_span(params.snippet_starts(), params.snippet_samples)[1]


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


def dynamics_from_powers(params: DynamicsParams, power: np.ndarray) -> np.ndarray:
    """The view (T, K) from the subband powers of the snippets (n_snippets, n_subbands)."""
    on = snippets_on(power)
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
    params: DynamicsParams,
    iq: np.ndarray,
    source_rate_hz: float,
    history: SnippetHistory | None = None,
    position: int = 0,
) -> np.ndarray:
    """The view of one capture at `source_rate_hz` (its first source_samples samples are read);
    only the snippets are resampled to the analysis rate. Given the `history` of the stream the
    capture is part of (from the stream's sample `position` on), the snippets it shares with the
    stream's previous window are taken from there."""
    history = SnippetHistory() if history is None else history
    return dynamics_from_powers(params, history.powers(params, np.asarray(iq), source_rate_hz, position))


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
    """The snippet powers of a stream's latest dynamics view, by group (SNIPPET_GROUP), so that
    the next window's view computes only the groups it does not share with it: 1 of 8 when the
    stride is 16 of its 128 snippets (2 where the first group reads before the capture, as a
    resampled one does). Back-to-back windows of G (15.88 ms) do not line the groups up.

    A group's powers are a function of the source samples it reads, of the resampler's phase
    at its first output (which fixes the filter's weights) and of its length alone: its key is
    those, with the stream offset of its first input. A group that reads before its capture's
    start or past its end (as zeros, resample_poly's padding) is neither kept nor taken; a
    stride that does not line the groups up finds none to take. Offsets are those of one
    stream: a framer holds one history."""

    def __init__(self) -> None:
        self._kept: dict[tuple[DynamicsParams, float], dict[tuple[int, int, int], np.ndarray]] = {}

    def powers(self, params: DynamicsParams, iq: np.ndarray, source_rate_hz: float, position: int) -> np.ndarray:
        """snippet_powers of the capture `iq` (source samples from stream offset `position`),
        and the groups it reads whole kept for the next capture."""
        resampler = PointResampler.for_rates(source_rate_hz, params.sample_rate_hz)
        earlier = self._kept.get((params, source_rate_hz), {})
        kept: dict[tuple[int, int, int], np.ndarray] = {}
        groups = []
        starts = params.snippet_starts()
        for group_starts in np.split(starts, range(SNIPPET_GROUP, len(starts), SNIPPET_GROUP)):
            first, end = resampler.input_span(group_starts, params.snippet_samples)
            whole = first >= 0 and end <= len(iq)
            key = (position + first, int(group_starts[0]) % resampler.up, len(group_starts))
            group = earlier.get(key) if whole else None
            if group is None:
                group = snippet_powers(params, _snippets(params, resampler, iq, group_starts))
            if whole:
                kept[key] = group
            groups.append(group)
        self._kept[(params, source_rate_hz)] = kept
        return np.concatenate(groups)


def source_regions(params: DynamicsParams, source_rate_hz: float) -> list[tuple[int, int]]:
    """The source-rate ranges [start, stop) the view reads: each snippet's resampling inputs."""
    resampler = PointResampler.for_rates(source_rate_hz, params.sample_rate_hz)
    return [resampler.input_span([start], params.snippet_samples) for start in params.snippet_starts()]
