"""Observations cut from a stream of I/Q and made ready for the model: the one place windows
are framed, judged and turned into the model's views, for the runtime, the CLI and the GNU
Radio spectrogram block alike.

An observation starts every `stride` source samples and spans `span` of them
(`views.observation_span`: G's window, counted at the source rate, for today's cards). For
each, the framer

1. judges it at the source rate, where an ADC's rails are still visible
   (quality.check_observation: a non-finite sample anywhere in the span makes it
   `nan_or_inf`; the other faults are judged on the source samples under the frames of the
   card's wideband view, or on the whole span when it has none),
2. zeroes non-finite samples near the windows it keeps, so that a resampling filter cannot
   carry a broken neighbour's NaN into them,
3. computes each view with `views.compute_observation`, as `views.compute_view` computes it
   for a capture that starts at the observation's first sample (the wideband view resamples
   only the frames G reads; the views that resample share one resampled stream per rate and
   one CP correlation per numerology; the dynamics views start on a grid of 16 ms from the
   stream's start, views.aligned_offsets, and take from the stream's previous window the
   snippet groups they share with it, dynamics.SnippetHistory, whatever the stride).

With a `routing` (runtime.Runtime.routing), the framer computes a window's router views first,
has the router pick the protocol, and computes only the views the chosen expert reads: the others
are NaN (none for `none` and `other`), and the window carries the router's probabilities
(`FramedWindows.routes`) so that the model does not route it again. The views it computes are the
numbers it computes without routing, and the readouts are the same. With models/small, a window's
views and model took 65 % of the CPU time on WiFi and LTE, 58 % on an empty band and 92 % on NR
(whose expert reads both the 15 and the 30 kHz constellations) on one core.

The views of an observation run in the caller's thread unless `parallel` asks for one thread
per core (on a machine with more than one): with BLAS kept to the calling thread
(views.one_blas_thread), two threads on two cores cut an observation's views from about 90 to
about 60 ms of wall time (bench flowgraph, the views rows). In the GNU Radio receiver, where the
model and the scheduler's Python blocks take the interpreter lock too, they gained 0-10 % of
throughput for 15 % more CPU time.

Each judged window also gets its power (`FramedWindows.power_db`), the level of its strongest
frames in dB (POWER_PERCENTILE), so that a tracker can tell a new emission from the same one
read again (lwmspectro.tracking): gain-normalised views keep no level.

A window that cannot be judged gets no views (NaN). A view that reads the past
(`views.reads_past`: the dynamics views' 128 ms) reads the span that ends where the
observation ends, moved back onto that grid; where the stream does not reach back that far
(its first windows, a capture shorter than that view), or holds a non-finite sample there,
that view alone is absent for the window: NaN, while the window keeps its verdict and its
other views.

`ObservationFramer.frame_recording` frames a whole recording (the runtime's
`iter_classify_iq`, and so `lwmspectro classify`); a streaming caller feeds each buffer
to `take`, which returns the windows the buffer holds whole and advances past them, and
keeps the samples from `keep_from` on for the next ones. A live stream whose windows come in
faster than their views are computed asks `windows_ready` how far behind it is and `skip`s the
oldest.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from . import quality, views
from .dynamics import SnippetHistory
from .resample import PointResampler
from .spectrogram import SpectrogramParams

logger = logging.getLogger(__name__)

RECORDING_BATCH = 32
"""Observations `frame_recording` cuts and transforms together."""

POWER_PERCENTILE = 90.0
"""A window's power is this percentile of the mean power of its frames (those of the card's
wideband view, or equal parts of the span): the level of the emission while it is on, which a
bursty one (WiFi packets and gaps) keeps from window to window while its mean would follow the
traffic."""
POWER_PARTS = 128
"""The equal parts a window's span is cut into for its power when the card has no wideband view."""

SOURCE_RATE_RANGE_HZ = (1e5, 1e9)
"""Source sample rates the framer takes: below 100 kS/s an observation holds too few samples for
G's 240 kHz bins to mean anything, and above 1 GS/s one observation spans over 16 million samples."""


def available_cores() -> int:
    """Cores this process may run on (its affinity, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@functools.cache
def _view_threads() -> ThreadPoolExecutor:
    """The threads the views of an observation run in, one per core, shared by every framer of
    the process (views.compute_observation keeps BLAS to the calling thread meanwhile)."""
    return ThreadPoolExecutor(max_workers=available_cores(), thread_name_prefix="lwm_views")


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
    views: tuple[np.ndarray, ...]
    """One (n, T, K) float32 array per view, in the framer's order: each window's view, NaN for
    the windows that cannot be judged and where a view reading the past is absent."""
    estimates: tuple[Mapping[str, Mapping[str, Any]], ...]
    """Per window, the blind estimates of each view that made some (symbol timing, CFO), by
    view name; empty for a window that cannot be judged."""
    power_db: np.ndarray
    """Each window's power in dB of full scale (POWER_PERCENTILE of its frames' mean |x|^2); NaN
    for a window that cannot be judged."""
    routes: np.ndarray | None = None
    """With a routing: (n, router classes) the router's probabilities for each window, NaN where
    it could not route (a window that cannot be judged, a router view absent)."""

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def valid(self) -> np.ndarray:
        """Whether each window can be judged (bool, n)."""
        return np.array([reason is None for reason in self.invalid_reasons], bool)

    def flat(self) -> np.ndarray:
        """(n, sum of T x K): each window's views flattened (time-major) and joined in order."""
        return np.concatenate([view.reshape(len(self), -1) for view in self.views], axis=1)


class Routing(Protocol):
    """What picks, from a window's router views, the views it needs next (runtime.Runtime.routing)."""

    lead: Sequence[int]
    """The indices, in the framer's views, of the views the router reads."""
    n_classes: int
    """The router's classes."""

    def choose(self, outputs: Sequence[np.ndarray | None]) -> tuple[np.ndarray, Sequence[int]]:
        """Given the framer's views of a window with the lead ones computed (the others None), the
        router's probabilities and the indices of the views the chosen expert reads."""
        ...


def _as_views(chosen: Any) -> tuple[Any, ...]:
    """A view's parameters, or a sequence of them, as a non-empty tuple."""
    if isinstance(chosen, (list, tuple)):
        if not chosen:
            raise ValueError("the framer needs at least one view")
        return tuple(chosen)
    return (chosen,)


class ObservationFramer:
    """Frames observations of `chosen_views` (a view's parameters, or a sequence of them: a
    bundle's `views`) from I/Q at `source_rate_hz`, one every `stride` source samples (default:
    back to back). Offsets are source samples from the start of the one stream it frames.
    `parallel` computes the views of an observation in threads, one per core, and `routing`
    only the views the router and its chosen expert read (see the module docstring)."""

    def __init__(
        self,
        chosen_views: Any,
        source_rate_hz: float,
        stride: int | None = None,
        *,
        parallel: bool = False,
        routing: Routing | None = None,
    ):
        rate = check_source_rate(source_rate_hz)
        self.views = _as_views(chosen_views)
        self.names = views.view_names(self.views)
        self.shapes = [views.view_shape(v) for v in self.views]
        self.source_rate_hz = rate
        self.span = views.observation_span(self.views, rate)
        self.stride = self.span if stride is None else int(stride)
        if self.stride < 1:
            raise ValueError(f"stride must be a positive number of samples, got {self.stride}")
        self._offsets = views.view_offsets(self.views, rate)
        self._reads = [views.min_source_samples(v, rate) for v in self.views]
        self._reach = max(offset + read for offset, read in zip(self._offsets, self._reads))
        # A view of the past starts up to one period earlier than its offset (views.aligned_offsets).
        self._lookback = views.past_reach(self.views, rate)
        self.routing = routing
        self._executor = _view_threads() if parallel and len(self.views) > 1 and available_cores() > 1 else None
        wideband = next((v for v in self.views if isinstance(v, SpectrogramParams)), None)
        self._judged_positions = None if wideband is None else self._positions_under_frames(wideband)
        self._finite_from = self._finite_upto = 0
        self._non_finite = np.zeros(0, np.int64)
        self._history = SnippetHistory()
        self.next_start = 0
        self.windows_out = 0
        self.windows_invalid = 0
        self.windows_skipped = 0
        self.routing_failures = 0
        # CPU seconds each view has taken so far (views.compute_observation's cpu_seconds).
        self.view_cpu_s = np.zeros(len(self.views))

    @property
    def vlen(self) -> int:
        """Length of a window's views flattened and joined (FramedWindows.flat)."""
        return sum(T * K for T, K in self.shapes)

    def _positions_under_frames(self, params: SpectrogramParams) -> np.ndarray:
        """Source-sample offsets, inside an observation, under each sample of G's frames: the
        first source sample at or after its time (quality judges what the model sees)."""
        resampler = PointResampler.for_rates(self.source_rate_hz, params.sample_rate_hz)
        positions = params.frame_starts[:, None] + np.arange(params.n_fft)[None, :]
        return np.minimum(-(-positions * resampler.down // resampler.up), self.span - 1)

    @property
    def samples_read(self) -> int:
        """Source samples one window reads, from the first a view of the past reads to the last
        its resampling filters reach: what a stream must hold at once for one window."""
        return self._lookback + self._reach

    def first_needed(self, start: int) -> int:
        """First source sample the window starting at `start` reads (a view that reads the past
        reads before the window; never before the stream's start)."""
        return max(0, int(start) - self._lookback)

    def end_needed(self, start: int) -> int:
        """One past the last source sample the window starting at `start` reads."""
        return int(start) + self._reach

    @property
    def keep_from(self) -> int:
        """The first source sample the next window needs: a stream may discard those before it."""
        return self.first_needed(self.next_start)

    def _scan(self, samples: np.ndarray, first: int) -> None:
        """Record where `samples` are not finite, looking at each sample once however many
        windows read it: the windows come in order, each call's from `first` on."""
        end = first + len(samples)
        if not self._finite_from <= first <= self._finite_upto:
            self._non_finite = np.zeros(0, np.int64)
            self._finite_upto = first
        self._finite_from = first
        self._non_finite = self._non_finite[self._non_finite >= first]
        if end <= self._finite_upto:
            return
        new = samples[self._finite_upto - first :]
        if not quality.all_finite(new):
            self._non_finite = np.concatenate([self._non_finite, self._finite_upto + np.flatnonzero(~np.isfinite(new))])
        self._finite_upto = end

    def _any_non_finite(self, low: int, high: int) -> bool:
        return bool(np.any((self._non_finite >= low) & (self._non_finite < high)))

    def transform(self, samples: np.ndarray, first: int, starts: Sequence[int] | np.ndarray) -> FramedWindows:
        """The windows starting at `starts`, from `samples` (source samples first ..
        first + len(samples) - 1), which must hold everything they read (first_needed ..
        end_needed) up to the stream's end; samples past it read as zero, as resampling a
        capture pads it."""
        starts = np.asarray(starts, np.int64)
        samples = np.asarray(samples, np.complex64)
        self._scan(samples, first)
        reasons = [self._judge(samples, first, int(start)) for start in starts]
        if len(self._non_finite) and self._any_non_finite(first, first + len(samples)):
            samples = np.where(np.isfinite(samples), samples, np.complex64(0))
        out = [np.full((len(starts), *shape), np.nan, np.float32) for shape in self.shapes]
        estimates: list[dict[str, Mapping[str, Any]]] = []
        power_db = np.full(len(starts), np.nan)
        routes = None if self.routing is None else np.full((len(starts), self.routing.n_classes), np.nan)
        for i, (start, reason) in enumerate(zip(starts, reasons)):
            estimates.append({})
            if reason is not None:
                continue
            power_db[i] = self._power_db(samples, first, int(start))
            offsets = views.aligned_offsets(self.views, self.source_rate_hz, int(start))
            routed = None
            if self.routing is not None and routes is not None:
                routed = functools.partial(self._route, self.routing, routes[i], int(start), offsets)
            computed = views.compute_observation(
                self.views,
                samples,
                self.source_rate_hz,
                int(start) - first,
                executor=self._executor,
                history=self._history,
                first=first,
                offsets=offsets,
                lead=None if self.routing is None else self.routing.lead,
                then=routed,
                cpu_seconds=self.view_cpu_s,
            )
            for v, (output, offset, read) in enumerate(zip(computed, offsets, self._reads)):
                if output is None or (offset and self._any_non_finite(start + offset, start + offset + read)):
                    continue  # a view of the past the stream does not hold (whole and finite)
                out[v][i] = output.values
                if output.estimates:
                    estimates[i][self.names[v]] = output.estimates
        self.windows_out += len(starts)
        self.windows_invalid += sum(reason is not None for reason in reasons)
        return FramedWindows(starts, tuple(reasons), tuple(out), tuple(estimates), power_db, routes)

    def _route(
        self,
        routing: Routing,
        route: np.ndarray,
        start: int,
        offsets: Sequence[int],
        computed: Sequence[views.ViewOutput | None],
    ) -> Sequence[int]:
        """The views to compute after the router's (Routing.choose), its probabilities written
        into `route`; every view when a router view is absent or not finite, or the router
        fails (the model then judges and routes the window as it would unrouted)."""
        lead = [
            None
            if output is None or (offset and self._any_non_finite(start + offset, start + offset + read))
            else output.values
            for output, offset, read in zip(computed, offsets, self._reads)
        ]
        if not all(values is not None and np.isfinite(values).all() for values in (lead[i] for i in routing.lead)):
            return range(len(self.views))
        try:
            probabilities, chosen = routing.choose(lead)
        except Exception as err:  # a failing router must not lose the window: the model reads all of it
            self.routing_failures += 1
            log = logger.warning if self.routing_failures == 1 else logger.debug
            log("routing the window at %d failed (%s); computing every view (said once)", start, err)
            return range(len(self.views))
        route[:] = probabilities
        return chosen

    def _judge(self, samples: np.ndarray, first: int, start: int) -> str | None:
        """quality.check_observation of the window starting at `start`."""
        if self._any_non_finite(start, start + self.span):
            return "nan_or_inf"
        offset = start - first
        if self._judged_positions is None:
            return quality.check_iq(samples[offset : offset + self.span])
        return quality.check_iq(samples[offset + self._judged_positions])

    def _power_db(self, samples: np.ndarray, first: int, start: int) -> float:
        """The power of the judged window starting at `start` (FramedWindows.power_db)."""
        offset = start - first
        if self._judged_positions is None:
            whole = samples[offset : offset + self.span]
            parts = min(POWER_PARTS, len(whole))
            frames = whole[: len(whole) // parts * parts].reshape(parts, -1)
        else:
            frames = samples[offset + self._judged_positions]
        frame_power = (frames.real.astype(np.float64) ** 2 + frames.imag.astype(np.float64) ** 2).mean(axis=1)
        return float(10.0 * np.log10(max(np.percentile(frame_power, POWER_PERCENTILE), np.finfo(np.float64).tiny)))

    def windows_ready(self, end: int) -> int:
        """Whole windows, from `next_start` on, that a stream holding samples up to `end` holds."""
        last_start = int(end) - self._reach
        return 0 if last_start < self.next_start else (last_start - self.next_start) // self.stride + 1

    def skip(self, n_windows: int) -> None:
        """Move past the next `n_windows` windows without framing them (a live stream that the
        views cannot keep up with drops its oldest windows rather than its newest samples)."""
        if n_windows < 0:
            raise ValueError(f"cannot skip {n_windows} windows")
        self.next_start += n_windows * self.stride
        self.windows_skipped += n_windows

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
            return FramedWindows(
                np.zeros(0, np.int64),
                (),
                tuple(np.zeros((0, *shape), np.float32) for shape in self.shapes),
                (),
                np.zeros(0),
                None if self.routing is None else np.zeros((0, self.routing.n_classes)),
            )
        low = self.first_needed(starts[0])
        windows = self.transform(samples[low - first : self.end_needed(starts[-1]) - first], low, starts)
        self.next_start = start
        return windows

    def frame_recording(
        self, iq, *, max_windows: int | None = None, batch_windows: int = RECORDING_BATCH
    ) -> Iterator[FramedWindows]:
        """Every whole observation of `iq` (anything with len() and [a:b] slicing: an array, a
        memory map, a file reader), read and framed `batch_windows` at a time. The recording
        ends at len(iq): a resampling filter reads zeros past it."""
        total = len(iq)
        n_windows = 0 if total < self.span else (total - self.span) // self.stride + 1
        if max_windows is not None:
            n_windows = min(n_windows, max_windows)
        for first_window in range(0, n_windows, batch_windows):
            starts = np.arange(first_window, min(first_window + batch_windows, n_windows)) * self.stride
            low = self.first_needed(int(starts[0]))
            high = min(total, self.end_needed(int(starts[-1])))
            yield self.transform(np.asarray(iq[low:high], np.complex64), low, starts)
