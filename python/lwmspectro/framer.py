"""Observations cut from a stream of I/Q and made ready for the model: the one place windows
are framed, judged, resampled and transformed, for the runtime, the CLI and the GNU Radio
spectrogram block alike.

An observation starts every `stride` source samples and spans `span` of them (G's
window, counted at the source rate). For each, the framer

1. judges it at the source rate, where an ADC's rails are still visible
   (quality.check_observation: a non-finite sample anywhere in the span makes it
   `nan_or_inf`; the other faults are judged on the source samples under G's frames),
2. zeroes non-finite samples near the windows it keeps, so that the resampler's filter
   cannot carry a broken neighbour's NaN into them,
3. resamples only the frames G reads (resample.PointResampler: G reads 3 % of an
   observation, each frame exactly as resampling the whole stream would give it), and
4. applies G; a window that cannot be judged gets no spectrogram (a row of NaN).

`ObservationFramer.frame_recording` frames a whole recording (the runtime's
`iter_classify_iq`, and so `lwmspectro classify`); a streaming caller feeds each buffer
to `take`, which returns the windows the buffer holds whole and advances past them, and
keeps the samples from `keep_from` on for the next ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from . import quality
from .resample import PointResampler
from .spectrogram import SpectrogramParams, spectrogram_from_frames

RECORDING_BATCH = 32
"""Observations `frame_recording` cuts and transforms together."""

SOURCE_RATE_RANGE_HZ = (1e5, 1e9)
"""Source sample rates the framer takes: below 100 kS/s an observation holds too few samples for
G's 240 kHz bins to mean anything, and above 1 GS/s one observation spans over 16 million samples."""


def check_source_rate(rate_hz: float) -> float:
    """`rate_hz` as a float, or ValueError when it is outside SOURCE_RATE_RANGE_HZ."""
    rate = float(rate_hz)
    low, high = SOURCE_RATE_RANGE_HZ
    if not low <= rate <= high:
        raise ValueError(
            f"source sample rate {rate:g} Hz is not between {low / 1e6:g} and {high / 1e6:g} MS/s; "
            "give the source a rate in that range"
        )
    return rate


@dataclass(frozen=True)
class FramedWindows:
    """Consecutive observations, ready for the model."""

    starts: np.ndarray
    """Source sample offset where each window starts (int64)."""
    invalid_reasons: tuple[str | None, ...]
    """Why each window cannot be judged (readout.INVALID_REASONS), or None."""
    spectrograms: np.ndarray
    """(n, T, K) float32: G of each window that can be judged, NaN for the others."""

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def valid(self) -> np.ndarray:
        """Whether each window can be judged (bool, n)."""
        return np.array([reason is None for reason in self.invalid_reasons], bool)


class ObservationFramer:
    """Frames observations of G from I/Q at `source_rate_hz`, one every `stride` source
    samples (default: back to back). Offsets are source samples from the stream's start."""

    def __init__(self, params: SpectrogramParams, source_rate_hz: float, stride: int | None = None):
        rate = check_source_rate(source_rate_hz)
        self.params = params
        self.source_rate_hz = rate
        self.resampler = PointResampler.for_rates(rate, params.sample_rate_hz)
        self.span = params.source_window_samples(rate)
        self.stride = self.span if stride is None else int(stride)
        if self.stride < 1:
            raise ValueError(f"stride must be a positive number of samples, got {self.stride}")
        # Analysis-rate offsets, inside one observation, of the samples G reads: (T, N_w).
        self._frame_positions = params.frame_starts[:, None] + np.arange(params.n_fft)[None, :]
        self.next_start = 0
        self.windows_out = 0
        self.windows_invalid = 0

    @property
    def resampling(self) -> bool:
        return not self.resampler.identity

    def _analysis_start(self, start):
        """Analysis-rate index of source sample `start` (the first at or before its time)."""
        return np.asarray(start) * self.resampler.up // self.resampler.down

    def first_needed(self, start: int) -> int:
        """First source sample the window starting at `start` reads: its own first, or an
        earlier one the resampler's filter reaches back to (never before the stream's start)."""
        reach = int(self.resampler.first_input(self._analysis_start(start)))
        return max(0, min(int(start), reach))

    def end_needed(self, start: int) -> int:
        """One past the last source sample the window starting at `start` reads."""
        last = int(self._analysis_start(start)) + int(self._frame_positions[-1, -1])
        return max(int(start) + self.span, int(self.resampler.first_input(last)) + self.resampler.n_taps)

    @property
    def keep_from(self) -> int:
        """The first source sample the next window needs: a stream may discard those before it."""
        return self.first_needed(self.next_start)

    def transform(self, samples: np.ndarray, first: int, starts: Sequence[int] | np.ndarray) -> FramedWindows:
        """The windows starting at `starts`, from `samples` (source samples first ..
        first + len(samples) - 1), which must hold everything they read up to the stream's
        end; samples past it read as zero, as resampling the whole stream would pad."""
        starts = np.asarray(starts, np.int64)
        samples = np.asarray(samples, np.complex64)
        positions = self._analysis_start(starts)[:, None, None] + self._frame_positions
        if self.resampling:
            # The source sample under each analysis sample G reads: the first at or after its time.
            up, down = self.resampler.up, self.resampler.down
            under = np.clip(-(-positions * down // up), starts[:, None, None], (starts + self.span - 1)[:, None, None])
            read = samples[under - first]
        else:
            read = samples[positions - first]  # the frames themselves
        if quality.all_finite(samples):
            reasons = [quality.check_iq(window) for window in read]
        else:
            offsets = starts - first
            reasons = [
                quality.check_observation(samples[offset : offset + self.span], window)
                for offset, window in zip(offsets, read)
            ]
            samples = np.where(np.isfinite(samples), samples, np.complex64(0))
        valid = np.flatnonzero([reason is None for reason in reasons])
        if not self.resampling:
            frames = read[valid]
        else:
            frames = self.resampler.frames(samples, first, positions[valid, :, 0].ravel(), self.params.n_fft)
        T, K = self.params.shape
        transformed = spectrogram_from_frames(frames.reshape(len(valid), T, self.params.n_fft), self.params)
        if len(valid) == len(starts):
            spectrograms = transformed
        else:
            spectrograms = np.full((len(starts), T, K), np.nan, np.float32)
            spectrograms[valid] = transformed
        self.windows_out += len(starts)
        self.windows_invalid += len(starts) - len(valid)
        return FramedWindows(starts, tuple(reasons), spectrograms)

    def take(self, samples: np.ndarray, first: int, limit: int) -> FramedWindows:
        """The next windows (at most `limit`) that `samples` (source samples first ..
        first + len(samples) - 1, from `keep_from` or earlier on) hold whole; the framer
        moves past them."""
        end = first + len(samples)
        starts: list[int] = []
        start = self.next_start
        while len(starts) < limit and self.end_needed(start) <= end:
            starts.append(start)
            start += self.stride
        if not starts:
            T, K = self.params.shape
            return FramedWindows(np.zeros(0, np.int64), (), np.zeros((0, T, K), np.float32))
        low = self.first_needed(starts[0])
        windows = self.transform(samples[low - first : self.end_needed(starts[-1]) - first], low, starts)
        self.next_start = start
        return windows

    def frame_recording(
        self, iq, *, max_windows: int | None = None, batch_windows: int = RECORDING_BATCH
    ) -> Iterator[FramedWindows]:
        """Every whole observation of `iq` (anything with len() and [a:b] slicing: an array, a
        memory map, a file reader), read and framed `batch_windows` at a time. The recording
        ends at len(iq): the resampler's filter reads zeros past it."""
        total = len(iq)
        n_windows = 0 if total < self.span else (total - self.span) // self.stride + 1
        if max_windows is not None:
            n_windows = min(n_windows, max_windows)
        for first_window in range(0, n_windows, batch_windows):
            starts = np.arange(first_window, min(first_window + batch_windows, n_windows)) * self.stride
            low = self.first_needed(int(starts[0]))
            high = min(total, self.end_needed(int(starts[-1])))
            yield self.transform(np.asarray(iq[low:high], np.complex64), low, starts)
