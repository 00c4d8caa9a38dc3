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


def snippet_powers(params: DynamicsParams, snippets: np.ndarray) -> np.ndarray:
    """(n_snippets, n_subbands) mean power of each snippet's subbands, DC-centred in frequency."""
    frames = snippets.reshape(len(snippets), params.frames_per_snippet, params.n_fft)
    window = scipy.signal.get_window("hann", params.n_fft).astype(np.float32)
    spectrum = np.fft.fftshift(np.fft.fft(frames * window, axis=-1), axes=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float64).mean(axis=1)
    return power.reshape(len(snippets), params.n_subbands, -1).mean(axis=-1)


def dynamics_from_powers(params: DynamicsParams, power: np.ndarray) -> np.ndarray:
    """The view (T, K) from the subband powers of the snippets (n_snippets, n_subbands)."""
    total = power.sum(axis=1)
    on = total >= GATE_FRACTION * np.percentile(total, 90) if total.any() else np.zeros(len(total), bool)
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


def dynamics(params: DynamicsParams, iq: np.ndarray, source_rate_hz: float) -> np.ndarray:
    """The view of one capture at `source_rate_hz` (its first source_samples samples are read);
    only the snippets are resampled to the analysis rate."""
    resampler = PointResampler.for_rates(source_rate_hz, params.sample_rate_hz)
    snippets = resampler.frames(np.asarray(iq), 0, params.snippet_starts(), params.snippet_samples)
    return dynamics_from_powers(params, snippet_powers(params, snippets))


def source_regions(params: DynamicsParams, source_rate_hz: float) -> list[tuple[int, int]]:
    """The source-rate ranges [start, stop) the view reads: each snippet's resampling inputs."""
    resampler = PointResampler.for_rates(source_rate_hz, params.sample_rate_hz)
    return [resampler.input_span([start], params.snippet_samples) for start in params.snippet_starts()]
