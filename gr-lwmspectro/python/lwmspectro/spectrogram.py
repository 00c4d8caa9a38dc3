"""LWM Spectrogram: complex samples in, one float vector of the model's views per analysis
window out.

The block feeds each input buffer to lwmspectro.framer.ObservationFramer, the framer the
runtime and `lwmspectro classify` use: it cuts observations (the span of the bundle's views,
counted at the source rate), judges them and computes each view as lwmspectro.views computes
it offline for a capture starting there, so the vectors are exactly what the model was
trained on and a window gets the same verdict here as offline.

The views of a window run in one thread per core (the framer's `parallel`), with the same
numbers as in one.

A vector is the window's views, each flattened time-major (T x K) and joined in the order of
the card's views (or of the `views` asked for): a card of today's G alone gives the T x K
vector of G, as before. A view of the past the stream does not yet hold (the dynamics view in
a stream's first 128 ms) is NaN in its part of the vector. Each vector carries tags:
``window_start`` (the source sample offset where its window starts), ``rx_time``/``rx_freq``
valid at that sample when the source tagged them, ``lwm_truth`` in force there when the source
is labelled (the LWM Synthetic Source), ``lwm_invalid`` when the window cannot be judged (its
vector is NaN), else ``lwm_power_db`` with its power, ``lwm_estimates`` with the blind estimates
its views made (symbol timing, CFO), and ``lwm_clock`` for latency.

With `routed` on, the block runs the bundle's router on each window's router views and computes
only the views of the expert it picks (lwmspectro.framer's routing): the other experts' parts of
the vector are NaN (every expert's for `none` and `other`), and the vector is tagged
``lwm_route`` with the router's probabilities, which an LWM Classifier takes as they are. The
readouts are the same for less CPU (lwmspectro.framer). The LWM Receiver routes; a vector meant for
other consumers should hold every view.

A live source cannot wait: with `keep_up` on, a block that finds more than KEEP_UP_WINDOWS whole
windows waiting (its views cost more than the stream's real time) skips to the newest one, so
that the source's buffer never fills and overflows, and tags the next vector with
``lwm_skipped``, the windows it skipped just before it. A file replay leaves it off and every
window is computed, however long that takes.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pmt
from gnuradio import gr

from lwmspectro.bundle import Bundle
from lwmspectro.framer import ObservationFramer
from lwmspectro.runtime import Runtime

from .common import (
    TAG_CLOCK,
    TAG_ESTIMATES,
    TAG_INVALID,
    TAG_POWER,
    TAG_ROUTE,
    TAG_RX_FREQ,
    TAG_RX_RATE,
    TAG_RX_TIME,
    TAG_SKIPPED,
    TAG_TRUTH,
    TAG_WINDOW_START,
    BlockBundle,
    BlockViews,
    ConfigError,
    describe_views,
    estimates_to_pmt,
    finite_number,
    is_number,
    load_bundle,
    load_runtime,
    resolve_views,
    rx_time_pmt,
    whole_number,
)

MAX_HOP_S = 1.0
"""Longest hop between window starts, in seconds of the source's samples."""
LABEL = "LWM Spectrogram"
MAX_WINDOWS_PER_CALL = 16
"""Windows transformed together: batching amortises numpy's per-call cost, the cap bounds
the memory of one call."""
KEEP_UP_WINDOWS = 2
"""Whole windows a block keeping up may find waiting before it skips to the newest: a readout
lags its window by at most this many windows' time plus the views' and the model's, while the
upstream buffer (twice what one window reads) has room for several more."""


class spectrogram(gr.basic_block):
    """Complex stream in, one float32 vector of the views (sum of T*K) per analysis window out.

    bundle: model bundle folder ('' = the shipped model), a loaded lwmspectro Bundle, or a
    loaded lwmspectro Runtime (whose router `routed` runs); its card fixes the views (and so the
    analysis rates).
    samp_rate: the source's sample rate in Hz.
    hop: source samples from one window's start to the next; 0 = back to back.
    vlen: the output vector length the flowgraph expects (sum of T*K of the views); 0 = take
    it from the views.
    views: the views to compute, in order: '' = the bundle's; else names (comma-separated) of
    the bundle's views or of registered views (lwmspectro.views.VIEWS), e.g. to look at more
    of them than the model reads (an LWM Classifier given the same views picks its own).
    keep_up: skip the oldest windows when the block falls behind the stream (a live radio),
    instead of making the source wait (a file replay); attribute `keep_up`, counted in
    `windows_skipped`.
    routed: compute only the router's views and those of the expert it picks, the others NaN,
    each vector tagged with the router's probabilities (see the module docstring).
    """

    def __init__(
        self,
        bundle: Runtime | BlockBundle = "",
        samp_rate: float = 30.72e6,
        hop: int = 0,
        vlen: int = 0,
        views: BlockViews = "",
        keep_up: bool = False,
        routed: bool = False,
    ):
        self.keep_up = bool(keep_up)
        self._skipped_untold = 0
        loaded = isinstance(bundle, (Bundle, str, os.PathLike))
        runtime = load_runtime(bundle, LABEL) if routed or not loaded else None
        self.bundle = load_bundle(bundle, LABEL) if runtime is None else runtime.bundle
        self.params = self.bundle.params
        self.views = resolve_views(views, self.bundle, LABEL)
        self.samp_rate = finite_number(
            samp_rate, LABEL, "sample rate", "set it to the source's sample rate in Hz", positive=True
        )
        try:
            self.framer = ObservationFramer(self.views, self.samp_rate)
        except ValueError as err:
            raise ConfigError(f"{LABEL}: {err}") from err
        self.span = self.framer.span
        if is_number(hop) and hop < 0:
            raise ConfigError(
                f"{LABEL}: hop {hop} is negative; give source samples between window "
                f"starts, or 0 for back-to-back windows of {self.span}"
            )
        hop = whole_number(hop, 0, LABEL, "hop")
        # The scheduler's buffer must hold a hop's samples at once (set_relative_rate below).
        longest = max(self.span, int(self.samp_rate * MAX_HOP_S))
        if hop > longest:
            raise ConfigError(
                f"{LABEL}: hop {hop} is more than {MAX_HOP_S:g} s of samples ({longest}), which the scheduler "
                "would have to buffer at once; for fewer readouts keep the hop and set the classifier's "
                "max rate or one in N"
            )
        self.hop = hop or self.span
        routing = runtime.routing(self.views) if routed and runtime is not None else None
        self.framer = ObservationFramer(self.views, self.samp_rate, self.hop, parallel=True, routing=routing)
        self.vlen = self.framer.vlen
        if vlen and int(vlen) != self.vlen:
            raise ConfigError(
                f"{LABEL}: vector length {vlen} does not match the views "
                f"({describe_views(self.framer.names, self.framer.shapes)} = {self.vlen}); set the vector "
                f"length to {self.vlen} (or 0) and use the same bundle and views in the classifier"
            )
        gr.basic_block.__init__(self, name="lwm_spectrogram", in_sig=[np.complex64], out_sig=[(np.float32, self.vlen)])
        self.set_tag_propagation_policy(gr.TPP_DONT)
        # The scheduler sizes the upstream buffer from this ratio: it must hold all a window
        # needs at once, or the block could never see a whole one.
        self.set_relative_rate(1, max(self.hop, self.framer.samples_read))
        self._tags_upto = 0
        self._time_tags: list[tuple[int, object]] = []
        self._freq_tags: list[tuple[int, object]] = []
        self._truth_tags: list[tuple[int, object]] = []
        self.rate_warning: str | None = None
        self.short_stream_warning: str | None = None

    @property
    def windows_out(self) -> int:
        return self.framer.windows_out

    @property
    def windows_invalid(self) -> int:
        return self.framer.windows_invalid

    def set_keep_up(self, keep_up: bool) -> None:
        self.keep_up = bool(keep_up)

    @property
    def windows_skipped(self) -> int:
        """Windows skipped to keep up with the stream (`keep_up`)."""
        return self.framer.windows_skipped

    def start(self):
        if self.bandwidth_warning:
            self.logger.warn(self.bandwidth_warning)
        return True

    def stop(self):
        """Say so when the stream ended before one whole window: the scheduler never hands such a
        stream to the block, and the flowgraph would end without a readout or a word."""
        if not self.windows_out and not self.windows_skipped:
            needed = self.framer.end_needed(self.framer.next_start)
            self.short_stream_warning = (
                f"{LABEL}: no window was formed: the stream ended or was stopped before the first window's "
                f"{needed} samples ({1e3 * needed / self.samp_rate:g} ms at {self.samp_rate / 1e6:g} MS/s) arrived"
            )
            self.logger.warn(self.short_stream_warning)
        return True

    @property
    def bandwidth_warning(self) -> str | None:
        """What the model will miss when the source is narrower than its (wideband) analysis band."""
        analysis = self.params.sample_rate_hz
        if self.samp_rate >= analysis:
            return None
        return (
            f"source rate {self.samp_rate / 1e6:g} MS/s holds {self.samp_rate / 1e6:g} MHz of the "
            f"{analysis / 1e6:g} MHz the model analyses: the outer spectrogram bins stay empty and "
            "channels wider than the source bandwidth (20 MHz WiFi/LTE/NR) are cut off, so expect "
            f"poor readouts; run the source at {analysis / 1e6:g} MS/s or more for full accuracy"
        )

    def forecast(self, noutput_items, ninputs):
        needed = self.framer.end_needed(self.framer.next_start + (noutput_items - 1) * self.hop)
        return [max(1, needed - self.nitems_read(0))] * ninputs

    def general_work(self, input_items, output_items):
        samples = input_items[0]
        first = self.nitems_read(0)
        self._collect_tags(first + len(samples))
        if self.keep_up:
            ready = self.framer.windows_ready(first + len(samples))
            if ready > KEEP_UP_WINDOWS:
                self.framer.skip(ready - 1)
                self._skipped_untold += ready - 1
        windows = self.framer.take(samples, first, min(len(output_items[0]), MAX_WINDOWS_PER_CALL))
        if len(windows):
            output_items[0][: len(windows)] = windows.flat()
            if self._skipped_untold:
                skipped = pmt.from_uint64(self._skipped_untold)
                self.add_item_tag(0, self.nitems_written(0), pmt.intern(TAG_SKIPPED), skipped)
                self._skipped_untold = 0
            clock = pmt.from_double(time.monotonic())
            for i, (window_start, reason, estimates, power_db) in enumerate(
                zip(windows.starts, windows.invalid_reasons, windows.estimates, windows.power_db)
            ):
                item = self.nitems_written(0) + i
                self._tag_window(item, int(window_start), reason, estimates, power_db, clock)
                route = None if windows.routes is None else windows.routes[i]
                if route is not None and np.isfinite(route).all():
                    self.add_item_tag(0, item, pmt.intern(TAG_ROUTE), pmt.init_f64vector(len(route), route.tolist()))
        self.consume(0, min(len(samples), max(0, self.framer.keep_from - first)))
        return len(windows)

    def _collect_tags(self, end: int) -> None:
        """Remember rx_time/rx_freq/lwm_truth tags up to `end`; keep only those windows may still need."""
        kept = {TAG_RX_TIME: self._time_tags, TAG_RX_FREQ: self._freq_tags, TAG_TRUTH: self._truth_tags}
        if end > self._tags_upto:
            for tag in self.get_tags_in_range(0, self._tags_upto, end):
                key = pmt.symbol_to_string(tag.key)
                if key in kept:
                    kept[key].append((tag.offset, tag.value))
                elif key == TAG_RX_RATE and pmt.is_number(tag.value):
                    self._check_rate(pmt.to_double(tag.value))
            self._tags_upto = end
        for tags in kept.values():
            while len(tags) > 1 and tags[1][0] <= self.framer.next_start:
                del tags[0]

    def _check_rate(self, tagged: float) -> None:
        """Warn, once per rate, when the source tags a sample rate other than the block's: every
        view then reads the samples at the wrong rate, and the readouts are confidently wrong."""
        if abs(tagged - self.samp_rate) <= 1e-6 * self.samp_rate:
            return
        warning = (
            f"{LABEL}: the source tags rx_rate {tagged:g} Hz, but this block is set to {self.samp_rate:g} Hz; "
            "the readouts assume the block's rate: set it to the source's"
        )
        if warning != self.rate_warning:
            self.rate_warning = warning
            self.logger.warn(warning)

    @staticmethod
    def _in_force(tags, offset):
        """The last tag at or before `offset`, else the first after it (a stream tagged late)."""
        best = None
        for tag in tags:
            if tag[0] <= offset or best is None:
                best = tag
            if tag[0] > offset:
                break
        return best

    def _tag_window(self, item: int, window_start: int, reason, estimates, power_db: float, clock) -> None:
        self.add_item_tag(0, item, pmt.intern(TAG_WINDOW_START), pmt.from_uint64(window_start))
        self.add_item_tag(0, item, pmt.intern(TAG_CLOCK), clock)
        time_tag = self._in_force(self._time_tags, window_start)
        if time_tag is not None:
            offset, value = time_tag
            whole = pmt.to_uint64(pmt.tuple_ref(value, 0))
            fraction = pmt.to_double(pmt.tuple_ref(value, 1)) + (window_start - offset) / self.samp_rate
            self.add_item_tag(0, item, pmt.intern(TAG_RX_TIME), rx_time_pmt(whole, fraction))
        for key, tags in ((TAG_RX_FREQ, self._freq_tags), (TAG_TRUTH, self._truth_tags)):
            in_force = self._in_force(tags, window_start)
            if in_force is not None:
                self.add_item_tag(0, item, pmt.intern(key), in_force[1])
        if reason is not None:
            self.add_item_tag(0, item, pmt.intern(TAG_INVALID), pmt.intern(reason))
        else:
            self.add_item_tag(0, item, pmt.intern(TAG_POWER), pmt.from_double(float(power_db)))
        if estimates:
            self.add_item_tag(0, item, pmt.intern(TAG_ESTIMATES), estimates_to_pmt(estimates))
