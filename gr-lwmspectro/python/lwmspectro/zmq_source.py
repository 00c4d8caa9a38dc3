"""LWM ZMQ Source: complex64 samples from a ZeroMQ PUB socket, robust to bad messages and bursts.

GNU Radio's own SUB source stops for good on one message whose length is not a whole number of
samples, and buffers up to its high-water mark times the message size when the publisher runs
ahead. This block receives on its own thread into a bounded queue: a malformed message is counted
and skipped, a message that does not fit in the queue is dropped and counted, and the counts go out
on the `drops` message port (a PMT dict) that the LWM Receiver's `drops` input turns into the
`samples_dropped` of every readout.
"""

from __future__ import annotations

import collections
import logging
import threading

import numpy as np
import pmt
import zmq
from gnuradio import gr

from .common import DROPS_PORT, ConfigError, to_pmt, whole_number, zmq_endpoint

LABEL = "LWM ZMQ Source"
SAMPLE_BYTES = np.dtype(np.complex64).itemsize
POLL_MS = 100
"""How long the receiving thread waits for a message before it checks whether to stop."""

log = logging.getLogger(__name__)


class zmq_source(gr.sync_block):
    """Subscribes to `address` (a ZeroMQ PUB socket sending raw complex64 samples, one or more
    whole samples per message; in a multipart message the last frame holds the samples) and
    streams them.

    address: the PUB endpoint to connect to, e.g. tcp://127.0.0.1:5555.
    queue_samples: samples held between the socket and the flowgraph; a message that does not
    fit is dropped and counted, so memory stays bounded when the publisher runs ahead.
    hwm: ZeroMQ receive high-water mark, in messages (kept small: the queue does the buffering).
    timeout_ms: how long one work() call waits for samples before it returns none.

    Counters (attributes and `counters()`): messages_received, messages_malformed (empty, or a
    length that is not a whole number of complex64 samples), messages_dropped and samples_dropped
    (queue full).
    """

    def __init__(self, address: str, queue_samples: int = 1 << 22, hwm: int = 4, timeout_ms: int = 100):
        address = zmq_endpoint(address, LABEL, "tcp://127.0.0.1:5555")
        self.queue_samples = whole_number(queue_samples, 1, LABEL, "queue size (samples)")
        self.hwm = whole_number(hwm, 1, LABEL, "high-water mark (messages)")
        self.timeout_s = whole_number(timeout_ms, 0, LABEL, "timeout (ms)") / 1e3
        gr.sync_block.__init__(self, name="lwm_zmq_source", in_sig=None, out_sig=[np.complex64])
        self.message_port_register_out(pmt.intern(DROPS_PORT))
        self.address = address
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self._queued = 0
        self._head = 0  # samples of the queue's first message already streamed
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported: tuple[int, int, int] = (0, 0, 0)
        self.messages_received = 0
        self.messages_malformed = 0
        self.messages_dropped = 0
        self.samples_dropped = 0
        self._socket = self._connect()

    def _connect(self) -> zmq.Socket:
        # Connected at construction, so that a malformed address fails when the flowgraph is built.
        socket = zmq.Context.instance().socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVHWM, self.hwm)
        # A message larger than the whole queue could never be streamed: ZeroMQ refuses it before
        # allocating it (and resets the connection, which it then re-establishes).
        socket.setsockopt(zmq.MAXMSGSIZE, self.queue_samples * SAMPLE_BYTES)
        socket.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            socket.connect(self.address)
        except zmq.ZMQError as err:
            socket.close()
            raise ConfigError(
                f"{LABEL}: cannot connect to {self.address!r} ({err}); give the endpoint of a ZMQ PUB "
                "socket sending complex64 samples, e.g. tcp://127.0.0.1:5555"
            ) from err
        return socket

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {
                "messages_received": self.messages_received,
                "messages_malformed": self.messages_malformed,
                "messages_dropped": self.messages_dropped,
                "samples_dropped": self.samples_dropped,
            }

    @property
    def queued_samples(self) -> int:
        with self._lock:
            return self._queued

    def start(self):
        if self._socket is None:
            self._socket = self._connect()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._receive_loop, name="lwm_zmq_source_receiver", daemon=True)
        self._thread.start()
        return True

    def stop(self):
        """Stop and join the receiving thread, then close the socket."""
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        return True

    def _receive_loop(self) -> None:
        socket = self._socket
        while not self._stopping.is_set():
            if not socket.poll(POLL_MS):
                continue
            while True:
                try:
                    frames = socket.recv_multipart(zmq.NOBLOCK, copy=True)
                except zmq.Again:
                    break
                self._take(frames[-1])

    def _take(self, payload: bytes) -> None:
        """Queue one message's samples, or count it as malformed or dropped."""
        if not payload or len(payload) % SAMPLE_BYTES:
            with self._lock:
                self.messages_received += 1
                self.messages_malformed += 1
                count = self.messages_malformed
            if count == 1 or count % 1000 == 0:
                log.warning(
                    "%s: skipped a message of %d bytes, not a whole number of complex64 samples "
                    "(%d bytes each); %d malformed so far",
                    LABEL,
                    len(payload),
                    SAMPLE_BYTES,
                    count,
                )
            return
        samples = np.frombuffer(payload, np.complex64)
        with self._lock:
            self.messages_received += 1
            if self._queued + len(samples) > self.queue_samples:
                self.messages_dropped += 1
                self.samples_dropped += len(samples)
                return
            self._queue.append(samples)
            self._queued += len(samples)
            self._lock.notify_all()

    def work(self, input_items, output_items):
        out = output_items[0]
        written = 0
        with self._lock:
            if not self._queue and not self._stopping.is_set():
                self._lock.wait(self.timeout_s)
            while self._queue and written < len(out):
                first = self._queue[0]
                count = min(len(first) - self._head, len(out) - written)
                out[written : written + count] = first[self._head : self._head + count]
                written += count
                self._head += count
                if self._head == len(first):
                    self._queue.popleft()
                    self._head = 0
            self._queued -= written
            counts = (self.messages_malformed, self.messages_dropped, self.samples_dropped)
        if counts != self._reported:
            self._reported = counts
            self._publish_drops()
        return written

    def _publish_drops(self) -> None:
        malformed, dropped, samples = self._reported
        self.message_port_pub(
            pmt.intern(DROPS_PORT),
            to_pmt({"messages_malformed": malformed, "messages_dropped": dropped, "samples_dropped": samples}),
        )
