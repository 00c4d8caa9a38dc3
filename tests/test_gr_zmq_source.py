"""QA for the LWM ZMQ Source: malformed messages skipped and counted while readouts keep coming,
memory bounded and drops counted under a burst, drops carried into the readouts."""

import shutil
import tempfile
import time

import gnuradio.lwmspectro as lwm_blocks
import numpy as np
import pmt
import zmq
from gnuradio import blocks, gr, gr_unittest
from gnuradio.lwmspectro.common import ConfigError

from lwmspectro.spectrogram import SpectrogramParams

from bundle_factory import make_bundle

PARAMS = SpectrogramParams(sample_rate_hz=1e6, n_fft=32, hop=64, n_frames=32, n_bins=16)


def setUpModule():
    global BUNDLE, _FOLDER
    _FOLDER = tempfile.mkdtemp(prefix="lwm-qa-")
    BUNDLE = str(make_bundle(_FOLDER, params=PARAMS))


def tearDownModule():
    shutil.rmtree(_FOLDER, ignore_errors=True)


def noise(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


def wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


class Publisher:
    """A PUB socket on an ephemeral localhost port."""

    def __init__(self):
        self.socket = zmq.Context.instance().socket(zmq.PUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, 100000)
        self.socket.bind("tcp://127.0.0.1:*")
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def until_heard(self, source, payload):
        """Publish `payload` until the subscription is up (ZeroMQ drops what a PUB sends before)."""
        return wait_for(lambda: self.socket.send(payload) or source.messages_received > 0)

    def close(self):
        self.socket.close()


def readouts(debug):
    return [pmt.to_python(debug.get_message(i)) for i in range(debug.num_messages())]


class qa_zmq_source(gr_unittest.TestCase):
    def setUp(self):
        self.publisher = Publisher()

    def tearDown(self):
        self.publisher.close()

    def receiver_flowgraph(self, source):
        tb = gr.top_block()
        # Held by the test: GNU Radio keeps only the C++ side of a Python block alive.
        self.receiver = lwm_blocks.receiver(BUNDLE, PARAMS.sample_rate_hz, 0, 0.0, 1)
        # Every window read out, none skipped to keep up: the window starts then show that no
        # sample of the good messages was lost.
        self.receiver.set_drop_when_full(False)
        debug = blocks.message_debug()
        tb.connect(source, self.receiver)
        tb.msg_connect(source, "drops", self.receiver, "drops")
        tb.msg_connect(self.receiver, "readout", debug, "store")
        return tb, debug

    def test_malformed_messages_are_skipped_and_counted_and_readouts_keep_coming(self):
        source = lwm_blocks.zmq_source(self.publisher.endpoint)
        tb, debug = self.receiver_flowgraph(source)
        window = PARAMS.window_samples
        good = noise(window).tobytes()
        tb.start()
        try:
            self.assertTrue(self.publisher.until_heard(source, good))
            heard = source.messages_received
            for bad in (good[:-3], b"", b"\x01", good[:-8] + b"\x00" * 4):  # odd, empty, short, half a sample
                self.publisher.socket.send(bad)
                self.publisher.socket.send(good)
            self.assertTrue(wait_for(lambda: source.messages_received >= heard + 8))
            self.assertTrue(wait_for(lambda: debug.num_messages() >= heard + 4))
        finally:
            tb.stop()
            tb.wait()
        counters = source.counters()
        self.assertEqual(counters["messages_malformed"], 4)
        self.assertEqual((counters["messages_dropped"], counters["samples_dropped"]), (0, 0))
        got = readouts(debug)
        self.assertGreaterEqual(len(got), heard + 4)
        self.assertEqual([r["window_start"] for r in got], [i * window for i in range(len(got))])
        self.assertTrue(all(r["valid"] and r["samples_dropped"] == 0 for r in got))

    def test_a_burst_keeps_the_queue_bounded_and_the_drops_reach_the_readouts(self):
        window = PARAMS.window_samples
        source = lwm_blocks.zmq_source(self.publisher.endpoint, queue_samples=4 * window, hwm=2)
        tb = gr.top_block()
        # The flowgraph reads at a tenth of the burst's pace: the queue must drop, not grow.
        throttle = blocks.throttle(gr.sizeof_gr_complex, 20 * window)
        receiver = lwm_blocks.receiver(BUNDLE, PARAMS.sample_rate_hz, 0, 0.0, 1)
        debug = blocks.message_debug()
        tb.connect(source, throttle, receiver)
        tb.msg_connect(source, "drops", receiver, "drops")
        tb.msg_connect(receiver, "readout", debug, "store")
        message = noise(window // 2).tobytes()
        tb.start()
        most_queued = 0
        try:
            self.assertTrue(self.publisher.until_heard(source, message))
            for _ in range(400):
                self.publisher.socket.send(message)
                most_queued = max(most_queued, source.queued_samples)
            self.assertTrue(wait_for(lambda: source.messages_dropped > 0))
            dropped_before = source.samples_dropped

            def a_readout_carries_the_drops():
                # Messages keep coming, so that windows read after the drops report go on being read out.
                self.publisher.socket.send(message)
                return any(r["samples_dropped"] >= dropped_before for r in readouts(debug))

            self.assertTrue(wait_for(a_readout_carries_the_drops))
        finally:
            tb.stop()
            tb.wait()
        counters = source.counters()
        self.assertLessEqual(most_queued, 4 * window)
        self.assertLessEqual(source.queued_samples, 4 * window)
        self.assertEqual(counters["samples_dropped"], counters["messages_dropped"] * (window // 2))
        self.assertGreater(counters["messages_dropped"], 100)
        self.assertEqual(counters["messages_malformed"], 0)
        seen = [r["samples_dropped"] for r in readouts(debug)]
        self.assertEqual(seen, sorted(seen))
        self.assertGreaterEqual(seen[-1], dropped_before)

    def test_stop_joins_the_receiving_thread_and_releases_the_socket(self):
        source = lwm_blocks.zmq_source(self.publisher.endpoint)
        tb = gr.top_block()
        tb.connect(source, blocks.null_sink(gr.sizeof_gr_complex))
        tb.start()
        self.assertTrue(self.publisher.until_heard(source, noise(64).tobytes()))
        tb.stop()
        tb.wait()
        self.assertIsNone(source._thread)
        self.assertIsNone(source._socket)

    def test_bad_parameters_name_the_block_and_the_fix(self):
        with self.assertRaisesRegex(ConfigError, r"LWM ZMQ Source: cannot connect to 'nowhere' .*tcp://127.0.0.1:5555"):
            lwm_blocks.zmq_source("nowhere")
        endpoint = self.publisher.endpoint
        with self.assertRaisesRegex(ConfigError, r"LWM ZMQ Source: queue size \(samples\) 0; give at least 1"):
            lwm_blocks.zmq_source(endpoint, queue_samples=0)
        for options, message in (
            ({"queue_samples": "abc"}, r"queue size \(samples\) 'abc' is not a whole number"),
            ({"hwm": 2.5}, r"high-water mark \(messages\) 2.5 is not a whole number"),
            ({"timeout_ms": float("nan")}, r"timeout \(ms\) nan is not a whole number"),
            ({"timeout_ms": -1}, r"timeout \(ms\) -1; give at least 0"),
        ):
            with self.assertRaisesRegex(ConfigError, f"LWM ZMQ Source: {message}"):
                lwm_blocks.zmq_source(endpoint, **options)
        with self.assertRaisesRegex(ConfigError, r"LWM ZMQ Source: address 5557 is not an endpoint"):
            lwm_blocks.zmq_source(5557)
        for endpoint in ("tcp://127.0.0.1:99999", "tcp://127.0.0.1:*", "tcp://127.0.0.1"):
            with self.assertRaisesRegex(ConfigError, r"LWM ZMQ Source: .* has no port from 1 to 65535; give one such"):
                lwm_blocks.zmq_source(endpoint)


if __name__ == "__main__":
    gr_unittest.run(qa_zmq_source)
