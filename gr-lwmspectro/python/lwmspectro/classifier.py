"""LWM Classifier: vectors of views in, readouts out on the `readout` message port.

Each input vector holds a window's views as the LWM Spectrogram lays them out (each flattened
time-major, joined in order: the bundle's views, or the `views` the spectrogram was given); the
block splits it and hands the model the views its card names, in the card's order.

Inference runs in a worker thread through lwmspectro.runtime (the model's outputs; this
block stamps each into a readout once, with lwmspectro.readout.build_readout), fed by a
bounded queue, so work() never waits for the model: when the queue is full the window is dropped and
counted, and the source upstream never overflows because the model is slow. Windows an LWM
Spectrogram keeping up with a live stream skipped (tag ``lwm_skipped``) are counted as seen and
dropped too. A replay from a file,
which can wait, sets drop_when_full=False instead: work() then waits for room and every window is
read out. An optional
readouts-per-second cap or "1 in N windows" thins the windows before they reach the queue.

With tracking on (`track_seconds`), the worker feeds every judged window, in stream order, to a
lwmspectro.tracking.Tracker, and each readout carries the values tracked over the emission's last
`track_seconds` (a new track when the protocol changes or the window power, tagged
``lwm_power_db`` by the spectrogram, jumps); windows thinned out or dropped are simply not in the
track. `uncertain_below` lists in each readout the values whose confidence is below it.

A window an LWM Spectrogram routed (tag ``lwm_route``, the router's probabilities) is not routed
again: its vector holds the views of the router and of the expert it picked, NaN elsewhere.

A window tagged with ground truth (``lwm_truth``, from the LWM Synthetic Source through the
spectrogram) publishes it under a ``truth`` key beside the readout fields, for the LWM
Scoreboard; every other consumer reads the readout fields only.

At the end of a finite stream the block keeps the newest window unconsumed until every
queued window has been published, so that the scheduler does not declare the block done
(and its message subscribers finished) while readouts are still on their way.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np
import pmt
from gnuradio import gr

from lwmspectro import views as view_registry
from lwmspectro.readout import (
    INVALID_REASONS,
    InvalidWindow,
    ModelOutput,
    Thresholds,
    build_readout,
    uncertain_thresholds,
)
from lwmspectro.runtime import Runtime
from lwmspectro.tracking import TRACK_POWER_JUMP_DB, Tracker, check_power_jump, check_span

from .common import (
    DROPS_PORT,
    READOUT_PORT,
    TAG_CLOCK,
    TAG_INVALID,
    TAG_POWER,
    TAG_ROUTE,
    TAG_RX_TIME,
    TAG_SKIPPED,
    TAG_TRUTH,
    TAG_WINDOW_START,
    BlockBundle,
    BlockViews,
    ConfigError,
    describe_views,
    finite_number,
    load_runtime,
    readout_to_pmt,
    resolve_views,
    rx_time_to_seconds,
    whole_number,
)

LABEL = "LWM Classifier"
DRAIN_POLL_S = 0.005
"""How long one work() call waits for the worker while only the held window is left."""
MAX_BATCH = 8
"""Windows the worker classifies in one call of the runtime."""
QUEUE_POLL_S = 0.1
"""How long a wait for room in the queue, or for the worker at stop, lasts before it looks again."""

log = logging.getLogger(__name__)


@dataclass
class _Window:
    views: list[np.ndarray] | None  # the model's views; None for a window that cannot be judged
    window_start: int
    rx_time: float | None
    clock: float
    truth: object = None
    invalid_reason: str | None = None
    power_db: float | None = None
    route: np.ndarray | None = None  # the router's probabilities, when the spectrogram routed the window


class classifier(gr.basic_block):
    """Float vectors of views (sum of T*K) in; a PMT dict per classified window on `readout`.

    bundle: model bundle folder ('' = the shipped model), a loaded lwmspectro Bundle, or a
    loaded lwmspectro Runtime.
    max_rate: at most this many readouts per second (0 = no cap).
    one_in_n: classify one window in N (1 = every window).
    queue_size: windows waiting for the worker before new ones are dropped.
    embedding_output: add a stream output carrying the expert's embedding of each window
    read as WiFi, LTE or NR (tagged with its window_start), for users' own heads.
    vlen: the input vector length the flowgraph feeds (0 = take it from the views).
    embedding_dim: the embedding output's vector length the flowgraph expects (0 = the bundle's).
    drop_when_full: drop (and count) a window when the queue is full; False makes work() wait
    for room instead, for sources that can wait (a file replay), so every window is read out.
    views: the views each vector holds, as the LWM Spectrogram's `views` ('' = the bundle's);
    they must include every view the bundle reads.
    uncertain_below: a confidence (0-1) under which a readout lists a value in `uncertain`, or
    a dict of them by task (protocol, modulation, snr_db, mobility); 0 = never.
    track_seconds: also read each value over the emission's windows of the last this many
    seconds (tracked_* fields); 0 = no tracking.
    samp_rate: the source's sample rate in Hz (the LWM Spectrogram's), which times the windows
    for tracking; needed only with tracking on.
    track_power_jump_db: a change of window power that starts a new track.

    The `drops` message input takes a source's loss counters (the LWM ZMQ Source's `drops`
    port); their samples_dropped rides in every readout.
    """

    def __init__(
        self,
        bundle: Runtime | BlockBundle = "",
        max_rate: float = 0.0,
        one_in_n: int = 1,
        queue_size: int = 8,
        embedding_output: bool = False,
        vlen: int = 0,
        embedding_dim: int = 0,
        drop_when_full: bool = True,
        views: BlockViews = "",
        uncertain_below: Thresholds = 0.0,
        track_seconds: float = 0.0,
        samp_rate: float = 0.0,
        track_power_jump_db: float = TRACK_POWER_JUMP_DB,
    ):
        self.runtime = load_runtime(bundle, LABEL)
        self.views = resolve_views(views, self.runtime.bundle, LABEL)
        shapes = [view_registry.view_shape(v) for v in self.views]
        names = view_registry.view_names(self.views)
        self.vlen = sum(T * K for T, K in shapes)
        if vlen and int(vlen) != self.vlen:
            raise ConfigError(
                f"{LABEL}: vector length {vlen} does not match the views ({describe_views(names, shapes)} = "
                f"{self.vlen}); feed it an LWM Spectrogram with the same bundle and views and set the vector "
                f"length to {self.vlen} (or 0)"
            )
        missing = [name for name, v in zip(self.runtime.view_names, self.runtime.views) if v not in self.views]
        if missing:
            raise ConfigError(
                f"{LABEL}: the views {names} lack {missing}, which the bundle reads; add them to the views "
                "(of this block and the LWM Spectrogram), or leave the views empty for the bundle's"
            )
        # Where each of the model's views lies in a vector: (offset, shape).
        offsets = np.cumsum([0] + [T * K for T, K in shapes])
        self._model_views = [
            (int(offsets[self.views.index(v)]), shapes[self.views.index(v)]) for v in self.runtime.views
        ]
        max_rate = finite_number(max_rate, LABEL, "max rate", "give readouts per second, or 0 for no cap")
        embedding_dim = whole_number(embedding_dim, 0, LABEL, "embedding size")
        one_in_n = whole_number(one_in_n, 1, LABEL, "one in N")
        queue_size = whole_number(queue_size, 1, LABEL, "queue size")
        try:
            self.uncertain_below = uncertain_thresholds(uncertain_below)
        except ValueError as err:
            raise ConfigError(f"{LABEL}: {err}") from err
        self.tracker = self._tracker(track_seconds, samp_rate, track_power_jump_db)
        self.samp_rate = float(samp_rate)
        self.max_rate = max_rate
        self.one_in_n = one_in_n
        self.embedding_output = bool(embedding_output)
        self.embedding_dim = self.runtime.embedding_dim
        if self.embedding_output and embedding_dim and embedding_dim != self.embedding_dim:
            raise ConfigError(
                f"{LABEL}: embedding size {embedding_dim} does not match the bundle's "
                f"{self.embedding_dim}; set the embedding size to {self.embedding_dim} (or 0)"
            )
        out_sig = [(np.float32, self.embedding_dim)] if self.embedding_output else None
        gr.basic_block.__init__(self, name="lwm_classifier", in_sig=[(np.float32, self.vlen)], out_sig=out_sig)
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self.message_port_register_out(pmt.intern(READOUT_PORT))
        self.message_port_register_in(pmt.intern(DROPS_PORT))
        self.set_msg_handler(pmt.intern(DROPS_PORT), self._source_drops)
        self.drop_when_full = bool(drop_when_full)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._lock = threading.Condition()
        self._pending = 0
        self._embeddings: collections.deque = collections.deque()
        self._worker: threading.Thread | None = None
        self._processed_upto = 0
        self._last_admitted = -np.inf
        self.windows_seen = 0
        self.windows_classified = 0
        self.windows_dropped = 0
        self.windows_skipped = 0
        self.windows_invalid = 0
        self.samples_dropped = 0

    def _tracker(self, track_seconds: float, samp_rate: float, power_jump_db: float) -> Tracker | None:
        """The tracker of the stream's windows, or None with tracking off (track_seconds 0)."""
        if track_seconds == 0:
            return None
        try:
            span_s, jump_db = check_span(track_seconds), check_power_jump(power_jump_db)
        except ValueError as err:
            raise ConfigError(f"{LABEL}: {err} (track seconds 0: no tracking)") from err
        if not (isinstance(samp_rate, (int, float)) and samp_rate > 0):
            raise ConfigError(
                f"{LABEL}: tracking needs the source sample rate to time the windows, got {samp_rate!r}; "
                "set it to the rate the LWM Spectrogram is given"
            )
        return Tracker.for_runtime(self.runtime, span_s, power_jump_db=jump_db)

    def counters(self) -> dict[str, int]:
        """Windows seen, classified, dropped (skipped by a spectrogram keeping up, queue full,
        or inference failed), skipped (rate cap, one in N) and invalid, so far; a readout
        carries the first three, and the samples_dropped the source reported last (attribute
        samples_dropped)."""
        return {
            "windows_seen": self.windows_seen,
            "windows_classified": self.windows_classified,
            "windows_dropped": self.windows_dropped,
            "windows_skipped": self.windows_skipped,
            "windows_invalid": self.windows_invalid,
        }

    def _source_drops(self, message) -> None:
        try:
            dropped = int(pmt.to_python(message)["samples_dropped"])
        except (TypeError, KeyError, ValueError):
            log.warning("%s: ignored a drops message without samples_dropped: %s", LABEL, pmt.write_string(message))
            return
        with self._lock:
            self.samples_dropped = dropped

    def start(self):
        self._worker = threading.Thread(target=self._work_loop, name="lwm_classifier_worker", daemon=True)
        self._worker.start()
        return True

    def stop(self):
        """Let the worker finish what is queued, then join it (a worker that has died is not
        waited for)."""
        worker = self._worker
        if worker is None:
            return True
        while worker.is_alive():
            try:
                self._queue.put(None, timeout=QUEUE_POLL_S)
                break
            except queue.Full:
                continue
        worker.join()
        self._worker = None
        return True

    def forecast(self, noutput_items, ninputs):
        return [1] * ninputs

    def general_work(self, input_items, output_items):
        vectors = input_items[0]
        first = self.nitems_read(0)
        new_from = max(0, self._processed_upto - first)
        if new_from < len(vectors):
            self._accept(vectors, first, new_from)
            self._processed_upto = first + len(vectors)
        with self._lock:
            if self._pending and new_from >= len(vectors):
                self._lock.wait(DRAIN_POLL_S)
        produced = self._emit_embeddings(output_items[0]) if self.embedding_output else 0
        with self._lock:
            in_flight = self._pending or self._embeddings
        # Hold the newest window while results are in flight (see the module docstring).
        self.consume(0, len(vectors) - 1 if in_flight else len(vectors))
        return produced

    def _accept(self, vectors: np.ndarray, first: int, new_from: int) -> None:
        tags = self._tags(first + new_from, first + len(vectors))
        for i in range(new_from, len(vectors)):
            offset = first + i
            window_tags = tags.get(offset, {})
            if TAG_SKIPPED in window_tags:
                skipped = int(pmt.to_uint64(window_tags[TAG_SKIPPED]))
                self._count("windows_seen", skipped)
                self._count("windows_dropped", skipped)
            self._count("windows_seen")
            if not self._admit():
                self._count("windows_skipped")
                continue
            window_start = (
                int(pmt.to_uint64(window_tags[TAG_WINDOW_START])) if TAG_WINDOW_START in window_tags else offset
            )
            rx_time = rx_time_to_seconds(window_tags[TAG_RX_TIME]) if TAG_RX_TIME in window_tags else None
            clock = pmt.to_double(window_tags[TAG_CLOCK]) if TAG_CLOCK in window_tags else time.monotonic()
            reason = pmt.symbol_to_string(window_tags[TAG_INVALID]) if TAG_INVALID in window_tags else None
            if reason not in INVALID_REASONS:
                reason = None  # no tag, or one this block does not know: the model judges the window
            power_db = pmt.to_double(window_tags[TAG_POWER]) if TAG_POWER in window_tags else None
            route = self._route(window_tags.get(TAG_ROUTE))
            # Invalid windows queue too (they cost the model nothing) so that readouts stay in order.
            window = _Window(
                None if reason else self._split(vectors[i]),
                window_start,
                rx_time,
                clock,
                window_tags.get(TAG_TRUTH),
                reason,
                power_db,
                route,
            )
            self._enqueue(window)

    def _route(self, tag) -> np.ndarray | None:
        """The router's probabilities a window's ``lwm_route`` tag holds, or None (no tag, or one
        that is not a vector of one probability per router class: the window is routed here)."""
        if tag is None or not pmt.is_f64vector(tag):
            return None
        route = np.asarray(pmt.f64vector_elements(tag), np.float64)
        return route if route.shape == (len(self.runtime.router_classes),) else None

    def _split(self, vector: np.ndarray) -> list[np.ndarray]:
        """The model's views in a vector, in the card's order (copies: the buffer is reused)."""
        return [vector[offset : offset + T * K].reshape(T, K).copy() for offset, (T, K) in self._model_views]

    def _enqueue(self, window: _Window) -> None:
        """Queue a window for the worker; when the queue is full, drop and count it, or (with
        drop_when_full off) wait until the worker makes room."""
        while True:
            with self._lock:
                try:
                    self._queue.put_nowait(window)
                    self._pending += 1
                    return
                except queue.Full:
                    if self.drop_when_full or self._worker is None or not self._worker.is_alive():
                        self.windows_dropped += 1
                        return
                    self._lock.wait(QUEUE_POLL_S)

    def _tags(self, start: int, end: int) -> dict:
        by_offset: dict = {}
        for tag in self.get_tags_in_range(0, start, end):
            by_offset.setdefault(tag.offset, {})[pmt.symbol_to_string(tag.key)] = tag.value
        return by_offset

    def _admit(self) -> bool:
        if (self.windows_seen - 1) % self.one_in_n:
            return False
        if self.max_rate > 0:
            now = time.monotonic()
            if now - self._last_admitted < 1.0 / self.max_rate:
                return False
            self._last_admitted = now
        return True

    def _count(self, name: str, n: int = 1) -> None:
        # The work thread and the worker both count: one lock keeps the sums exact.
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def _publish(self, readout: dict, truth) -> None:
        message = readout_to_pmt(readout)
        if truth is not None:
            message = pmt.dict_add(message, pmt.intern("truth"), truth)
        self.message_port_pub(pmt.intern(READOUT_PORT), message)

    def _work_loop(self) -> None:
        """Classify queued windows in batches until stop() queues None."""
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in batch
            windows = [w for w in batch if w is not None]
            if windows:
                self._classify(windows)
            if stop:
                return

    def _classify(self, windows: list[_Window]) -> None:
        valid = [w for w in windows if w.invalid_reason is None]
        outputs: dict[int, ModelOutput | InvalidWindow] = {}
        if valid:
            try:
                model_input = [np.stack(views) for views in zip(*(w.views for w in valid))]
                unrouted = np.full(len(self.runtime.router_classes), np.nan)
                routes = np.stack([unrouted if w.route is None else w.route for w in valid])
                predicted = self.runtime.predict(model_input, routes)
                outputs = {id(w): output for w, output in zip(valid, predicted)}
            except Exception as err:  # a failing model must not take the flowgraph down; say so and count
                self.logger.error(f"inference failed on {len(valid)} windows: {err}")
                self._count("windows_dropped", len(valid))
        now = time.monotonic()
        for window in windows:
            if window.invalid_reason is not None:
                output: ModelOutput | InvalidWindow = InvalidWindow(window.invalid_reason)
            elif id(window) in outputs:
                output = outputs[id(window)]
            else:
                continue
            self._count("windows_classified" if isinstance(output, ModelOutput) else "windows_invalid")
            with self._lock:
                counters = {**self.counters(), "samples_dropped": self.samples_dropped}
            tracked = None
            if self.tracker is not None:
                tracked = self.tracker.update(output, window.window_start / self.samp_rate, window.power_db)
            readout = build_readout(
                output,
                window_start=window.window_start,
                rx_time=window.rx_time,
                latency_ms=(now - window.clock) * 1e3,
                counters=counters,
                tracked=tracked,
                uncertain_below=self.uncertain_below,
            )
            self._publish(readout, window.truth)
            embedding = output.embedding if isinstance(output, ModelOutput) else None
            if self.embedding_output and embedding is not None and np.isfinite(embedding).all():
                with self._lock:
                    self._embeddings.append((embedding, window.window_start))
        with self._lock:
            self._pending -= len(windows)
            self._lock.notify_all()

    def _emit_embeddings(self, out: np.ndarray) -> int:
        with self._lock:
            count = min(len(out), len(self._embeddings))
            items = [self._embeddings.popleft() for _ in range(count)]
        for i, (embedding, window_start) in enumerate(items):
            out[i] = embedding
            self.add_item_tag(
                0, self.nitems_written(0) + i, pmt.intern(TAG_WINDOW_START), pmt.from_uint64(window_start)
            )
        return count
