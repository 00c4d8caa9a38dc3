"""QA for the LWM Classifier and LWM Receiver blocks: readouts as PMT dicts, tags in, invalid
windows, thinning, the worker queue under a slow model, clean stop, embeddings, bad parameters."""

import shutil
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

import gnuradio.lwmspectro as lwm_blocks
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest
from gnuradio.lwmspectro.common import ConfigError
from test_bundle_views import CARD_VIEWS as MULTI_VIEWS
from test_bundle_views import multi_view_bundle

from lwmspectro import labels, readout
from lwmspectro.bundle import Bundle
from lwmspectro.framer import ObservationFramer
from lwmspectro.ofdm_sync import Numerology
from lwmspectro.runtime import Runtime
from lwmspectro.sigmf_io import write_recording
from lwmspectro.spectrogram import SpectrogramParams
from lwmspectro.views import OfdmAlignedParams

from bundle_factory import band_spectrograms, make_bundle

PARAMS = SpectrogramParams(sample_rate_hz=1e6, n_fft=32, hop=64, n_frames=32, n_bins=16)
VLEN = PARAMS.n_frames * PARAMS.n_bins
BANDS = [0, 1, 2, None, 0, 2, 1, None, 0, 1]
"""Spectrogram bands the test bundle's router reads as wifi, lte, nr, none."""
EXPECTED = ["wifi", "lte", "nr", "none", "wifi", "nr", "lte", "none", "wifi", "lte"]


def setUpModule():
    global BUNDLE, RUNTIME, _FOLDER
    _FOLDER = tempfile.mkdtemp(prefix="lwm-qa-")
    BUNDLE = str(make_bundle(_FOLDER, params=PARAMS))
    RUNTIME = Runtime(BUNDLE, intra_op_threads=1)


def tearDownModule():
    shutil.rmtree(_FOLDER, ignore_errors=True)


def make_tag(offset, key, value):
    return gr.tag_utils.python_to_tag((offset, pmt.intern(key), value, pmt.intern("qa")))


def window_tags(n, spacing=1000):
    return [make_tag(i, "window_start", pmt.from_uint64(i * spacing)) for i in range(n)]


def stored(debug):
    return [debug.get_message(i) for i in range(debug.num_messages())]


class SlowRuntime:
    """A runtime whose every inference call takes `delay` seconds."""

    def __init__(self, runtime, delay):
        self.runtime, self.delay, self.calls = runtime, delay, 0

    def __getattr__(self, name):
        return getattr(self.runtime, name)

    def predict(self, *args, **kwargs):
        self.calls += 1
        time.sleep(self.delay)
        return self.runtime.predict(*args, **kwargs)


class qa_classifier(gr_unittest.TestCase):
    def run_classifier(self, vectors, tags=(), **kwargs):
        tb = gr.top_block()
        kwargs.setdefault("queue_size", len(vectors))
        block = lwm_blocks.classifier(RUNTIME, **kwargs)
        debug = blocks.message_debug()
        tb.connect(blocks.vector_source_f(np.asarray(vectors, np.float32).ravel(), False, VLEN, list(tags)), block)
        tb.msg_connect(block, "readout", debug, "store")
        tb.run()
        return stored(debug), block

    def test_readouts_are_pmt_dicts_of_every_field_and_follow_the_model(self):
        vectors = band_spectrograms(PARAMS, BANDS)
        tags = window_tags(len(vectors)) + [
            make_tag(2, "rx_time", pmt.make_tuple(pmt.from_uint64(1700000000), pmt.from_double(0.5)))
        ]
        messages, block = self.run_classifier(vectors, tags)
        self.assertEqual(len(messages), len(vectors))
        for message in messages:
            self.assertTrue(pmt.is_dict(message))
            self.assertEqual(set(pmt.to_python(message)), set(readout.FIELDS))
        readouts = sorted((pmt.to_python(m) for m in messages), key=lambda r: r["window_start"])
        self.assertEqual([r["protocol"] for r in readouts], EXPECTED)
        self.assertEqual([r["window_start"] for r in readouts], [i * 1000 for i in range(len(vectors))])
        self.assertEqual(readouts[2]["rx_time"], 1700000000.5)
        self.assertIsNone(readouts[0]["rx_time"])
        direct = RUNTIME.classify(vectors)
        for got, want in zip(readouts, direct):
            self.assertAlmostEqual(got["protocol_confidence"], want["protocol_confidence"], places=5)
            self.assertEqual(got["modulation"], want["modulation"])
            self.assertEqual(got["mobility"], want["mobility"])
            self.assertGreater(got["latency_ms"], 0.0)
        self.assertIsNone(readouts[3]["modulation"])
        self.assertIn(readouts[0]["modulation"], labels.MODULATIONS)
        self.assertEqual(max(r["windows_seen"] for r in readouts), len(vectors))
        self.assertEqual(
            block.counters(),
            {
                "windows_seen": 10,
                "windows_classified": 10,
                "windows_dropped": 0,
                "windows_skipped": 0,
                "windows_invalid": 0,
            },
        )

    def test_unjudgeable_windows_give_invalid_readouts_and_are_counted(self):
        vectors = band_spectrograms(PARAMS, [0, 1, 2])
        vectors[2][5, 5] = np.nan
        tags = window_tags(3) + [make_tag(1, "lwm_invalid", pmt.intern("clipped"))]
        messages, block = self.run_classifier(vectors, tags)
        by_start = {r["window_start"]: r for r in map(pmt.to_python, messages)}
        self.assertTrue(by_start[0]["valid"])
        self.assertEqual((by_start[1000]["valid"], by_start[1000]["invalid_reason"]), (False, "clipped"))
        self.assertEqual((by_start[2000]["valid"], by_start[2000]["invalid_reason"]), (False, "nan_or_inf"))
        self.assertIsNone(by_start[1000]["protocol"])
        self.assertEqual(block.windows_invalid, 2)
        self.assertEqual(block.windows_classified, 1)

    def test_one_in_n_and_the_rate_cap_thin_the_windows(self):
        vectors = band_spectrograms(PARAMS, BANDS)
        messages, block = self.run_classifier(vectors, window_tags(10), one_in_n=3)
        self.assertEqual(sorted(pmt.to_python(m)["window_start"] for m in messages), [0, 3000, 6000, 9000])
        self.assertEqual(block.windows_skipped, 6)
        messages, block = self.run_classifier(vectors, window_tags(10), max_rate=0.5)
        self.assertEqual(len(messages), 1)
        self.assertEqual(block.windows_skipped, 9)

    def test_windows_a_spectrogram_skipped_to_keep_up_count_as_seen_and_dropped(self):
        vectors = band_spectrograms(PARAMS, [0, 1])
        tags = window_tags(2, spacing=4000) + [make_tag(1, "lwm_skipped", pmt.from_uint64(3))]
        messages, block = self.run_classifier(vectors, tags)
        self.assertEqual(len(messages), 2)
        self.assertEqual(block.counters()["windows_seen"], 5)
        self.assertEqual(block.counters()["windows_dropped"], 3)
        last = max(map(pmt.to_python, messages), key=lambda r: r["window_start"])
        self.assertEqual(last["windows_dropped"], 3)

    def test_a_slow_model_drops_windows_but_never_blocks_the_scheduler(self):
        slow = SlowRuntime(RUNTIME, delay=0.6)
        vectors = band_spectrograms(PARAMS, BANDS * 4)
        tb = gr.top_block()
        block = lwm_blocks.classifier(slow, queue_size=2)
        debug = blocks.message_debug()
        tb.connect(blocks.vector_source_f(vectors.ravel(), False, VLEN, window_tags(len(vectors))), block)
        tb.msg_connect(block, "readout", debug, "store")
        started = time.monotonic()
        tb.start()
        while block.windows_seen < len(vectors) and time.monotonic() - started < 5:
            time.sleep(0.01)
        all_seen = time.monotonic() - started
        tb.wait()
        self.assertLess(all_seen, slow.delay, "work() waited for the model")
        self.assertGreater(block.windows_dropped, 0)
        self.assertEqual(block.windows_seen, len(vectors))
        self.assertEqual(block.windows_classified + block.windows_dropped, len(vectors))
        self.assertEqual(debug.num_messages(), block.windows_classified)
        self.assertLessEqual(block.windows_classified, 1 + 2 * slow.calls)
        last = max((pmt.to_python(m) for m in stored(debug)), key=lambda r: r["windows_seen"])
        self.assertEqual(last["windows_dropped"], block.windows_dropped)
        self.assertIsNone(block._worker, "stop() did not join the worker")

    def test_stop_of_a_running_flowgraph_drains_and_joins_the_worker(self):
        tb = gr.top_block()
        block = lwm_blocks.classifier(SlowRuntime(RUNTIME, delay=0.05), queue_size=3)
        tb.connect(blocks.vector_source_f(band_spectrograms(PARAMS, BANDS).ravel(), True, VLEN), block)
        tb.start()
        time.sleep(0.3)
        stopper = threading.Thread(target=lambda: (tb.stop(), tb.wait()))
        stopper.start()
        stopper.join(timeout=10)
        self.assertFalse(stopper.is_alive(), "stop() hung")
        self.assertIsNone(block._worker)
        self.assertTrue(block._queue.empty())
        self.assertGreater(block.windows_classified, 0)

    def test_embedding_output_carries_the_expert_embeddings_of_protocol_windows(self):
        vectors = band_spectrograms(PARAMS, BANDS)
        tb = gr.top_block()
        block = lwm_blocks.classifier(RUNTIME, queue_size=len(vectors), embedding_output=True)
        sink = blocks.vector_sink_f(RUNTIME.embedding_dim)
        tb.connect(blocks.vector_source_f(vectors.ravel(), False, VLEN, window_tags(len(vectors))), block, sink)
        tb.run()
        embeddings = np.asarray(sink.data(), np.float32).reshape(-1, RUNTIME.embedding_dim)
        starts = [pmt.to_uint64(t.value) for t in sorted(sink.tags(), key=lambda t: t.offset)]
        protocol_rows = [i for i, p in enumerate(EXPECTED) if p in labels.PROTOCOLS]
        self.assertEqual(sorted(starts), [i * 1000 for i in protocol_rows])
        expected = RUNTIME.predict(vectors)
        for embedding, start in zip(embeddings, starts):
            np.testing.assert_allclose(embedding, expected[start // 1000].embedding, atol=1e-5)

    def test_tracked_values_ride_beside_the_window_values_and_a_new_protocol_starts_a_new_track(self):
        """Windows 1 ms apart (1000 samples at 1 MS/s) tracked over 4.5 ms (five windows): six LTE
        windows, then NR, which takes over the track from its third window on."""
        vectors = band_spectrograms(PARAMS, [1] * 6 + [2] * 6, seed=11)
        messages, _ = self.run_classifier(vectors, window_tags(12), track_seconds=0.0045, samp_rate=1e6)
        readouts = sorted((pmt.to_python(m) for m in messages), key=lambda r: r["window_start"])
        self.assertEqual(set(readouts[0]), set(readout.FIELDS))
        self.assertEqual([r["protocol"] for r in readouts], ["lte"] * 6 + ["nr"] * 6)
        self.assertEqual([r["tracked_windows"] for r in readouts], [1, 2, 3, 4, 5, 5, 5, 5, 3, 4, 5, 5])
        self.assertEqual([r["tracked_protocol"] for r in readouts], ["lte"] * 8 + ["nr"] * 4)
        self.assertEqual(readouts[0]["tracked_modulation"], readouts[0]["modulation"])
        self.assertIn(readouts[-1]["tracked_modulation"], labels.MODULATIONS)
        self.assertTrue(all(r["uncertain"] == [] for r in readouts))

    def test_a_jump_of_the_tagged_window_power_starts_a_new_track(self):
        vectors = band_spectrograms(PARAMS, [1] * 6, seed=12)
        powers = [-30.0, -31.0, -29.5, -10.0, -10.5, -11.0]
        tags = window_tags(6) + [make_tag(i, "lwm_power_db", pmt.from_double(p)) for i, p in enumerate(powers)]
        messages, _ = self.run_classifier(vectors, tags, track_seconds=1.0, samp_rate=1e6)
        readouts = sorted((pmt.to_python(m) for m in messages), key=lambda r: r["window_start"])
        self.assertEqual([r["tracked_windows"] for r in readouts], [1, 2, 3, 1, 2, 3])

    def test_values_below_the_threshold_are_listed_uncertain(self):
        vectors = band_spectrograms(PARAMS, [0, None], seed=13)
        messages, _ = self.run_classifier(vectors, window_tags(2), uncertain_below={"protocol": 1.0})
        readouts = sorted((pmt.to_python(m) for m in messages), key=lambda r: r["window_start"])
        self.assertEqual([r["uncertain"] for r in readouts], [["protocol"], ["protocol"]])
        self.assertIsNone(readouts[0]["tracked_protocol"])

    def test_parameters_that_cannot_work_name_the_block_the_value_and_the_fix(self):
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: vector length 100 .*= 512.*LWM Spectrogram"):
            lwm_blocks.classifier(BUNDLE, vlen=100)
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: bundle '/no/such' cannot be used.*Fix"):
            lwm_blocks.classifier("/no/such")
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: max rate -1"):
            lwm_blocks.classifier(RUNTIME, max_rate=-1)
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: max rate nan"):
            lwm_blocks.classifier(RUNTIME, max_rate=float("nan"))
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: embedding size -1"):
            lwm_blocks.classifier(RUNTIME, embedding_dim=-1)
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: one in N 0; give at least 1"):
            lwm_blocks.classifier(RUNTIME, one_in_n=0)
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: one in N 2.5 is not a whole number"):
            lwm_blocks.classifier(RUNTIME, one_in_n=2.5)
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: queue size 0; give at least 1"):
            lwm_blocks.classifier(RUNTIME, queue_size=0)
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: queue size '8' is not a whole number"):
            lwm_blocks.classifier(RUNTIME, queue_size="8")
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: max rate '20'; give readouts per second"):
            lwm_blocks.classifier(RUNTIME, max_rate="20")
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: uncertain threshold nan for protocol"):
            lwm_blocks.classifier(RUNTIME, uncertain_below=float("nan"))
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: uncertain threshold for unknown 'snr'"):
            lwm_blocks.classifier(RUNTIME, uncertain_below={"snr": 0.5})
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: track span -1.0 s: give a positive number"):
            lwm_blocks.classifier(RUNTIME, track_seconds=-1.0, samp_rate=1e6)
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: tracking needs the source sample rate"):
            lwm_blocks.classifier(RUNTIME, track_seconds=1.0)
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: track power jump nan dB"):
            lwm_blocks.classifier(RUNTIME, track_seconds=1.0, samp_rate=1e6, track_power_jump_db=float("nan"))


def tone(n, frequency, seed, amplitude=3.0):
    """Complex noise with a strong tone at `frequency` (fraction of the sample rate)."""
    rng = np.random.default_rng(seed)
    noise = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * 0.1
    return (noise + amplitude * np.exp(2j * np.pi * frequency * np.arange(n))).astype(np.complex64)


class qa_receiver(gr_unittest.TestCase):
    def test_receiver_reads_out_each_window_of_a_stream(self):
        window = PARAMS.window_samples
        rng = np.random.default_rng(9)
        noise = ((rng.standard_normal(window) + 1j * rng.standard_normal(window)) * 0.1).astype(np.complex64)
        stream = np.concatenate(
            [tone(window, -0.33, 1), tone(window, 0.0, 2), tone(window, 0.33, 3), noise, np.zeros(window, np.complex64)]
        )
        tb = gr.top_block()
        receiver = lwm_blocks.receiver(BUNDLE, PARAMS.sample_rate_hz, embedding_output=True, drop_when_full=False)
        debug = blocks.message_debug()
        sink = blocks.vector_sink_f(RUNTIME.embedding_dim)
        tb.connect(blocks.vector_source_c(stream), receiver, sink)
        tb.msg_connect(receiver, "readout", debug, "store")
        tb.run()
        readouts = sorted((pmt.to_python(m) for m in stored(debug)), key=lambda r: r["window_start"])
        self.assertEqual([r["window_start"] for r in readouts], [i * window for i in range(5)])
        self.assertEqual([r["protocol"] for r in readouts[:4]], ["wifi", "lte", "nr", "none"])
        self.assertEqual((readouts[4]["valid"], readouts[4]["invalid_reason"]), (False, "all_zero"))
        self.assertEqual(len(sink.data()) // RUNTIME.embedding_dim, 3)
        self.assertEqual(receiver.counters()["windows_out"], 5)

    def test_a_live_receiver_fed_faster_than_real_time_keeps_up_by_dropping_windows(self):
        """40 windows handed to the receiver in as few buffers as the scheduler allows, far
        faster than real time: a live receiver reads out the newest and counts the others
        dropped, never making the source wait; set to replay, it reads out every window."""
        stream = np.concatenate([tone(PARAMS.window_samples, 0.0, seed) for seed in range(40)])
        for live in (True, False):
            tb = gr.top_block()
            receiver = lwm_blocks.receiver(BUNDLE, PARAMS.sample_rate_hz)
            receiver.set_drop_when_full(live)
            source = blocks.vector_source_c(stream)
            source.set_min_output_buffer(len(stream))
            debug = blocks.message_debug()
            tb.connect(source, receiver)
            tb.msg_connect(receiver, "readout", debug, "store")
            tb.run()
            counters = receiver.counters()
            readouts = [pmt.to_python(m) for m in stored(debug)]
            self.assertEqual(counters["windows_seen"], 40)
            self.assertEqual(len(readouts), 40 - counters["windows_dropped"])
            self.assertEqual(readouts[-1]["window_start"], 39 * PARAMS.window_samples)
            if live:
                self.assertGreater(counters["windows_dropped"], 0)
                self.assertEqual(readouts[-1]["windows_dropped"], counters["windows_dropped"])
            else:
                self.assertEqual(counters["windows_dropped"], 0)

    def test_a_tracking_receiver_starts_a_new_track_when_the_spectrogram_tags_a_power_jump(self):
        window = PARAMS.window_samples
        quiet = [tone(window, 0.05, seed) for seed in (21, 22, 23)]
        loud = [tone(window, 0.05, seed, amplitude=300.0) for seed in (24, 25)]
        tb = gr.top_block()
        receiver = lwm_blocks.receiver(BUNDLE, PARAMS.sample_rate_hz, track_seconds=1.0, drop_when_full=False)
        debug = blocks.message_debug()
        tb.connect(blocks.vector_source_c(np.concatenate(quiet + loud)), receiver)
        tb.msg_connect(receiver, "readout", debug, "store")
        tb.run()
        readouts = sorted((pmt.to_python(m) for m in stored(debug)), key=lambda r: r["window_start"])
        self.assertEqual([r["tracked_protocol"] for r in readouts], ["lte"] * 5)
        self.assertEqual([r["tracked_windows"] for r in readouts], [1, 2, 3, 1, 2], "40 dB louder: a new emission")

    def test_a_receiver_computing_more_views_reads_the_model_its_own(self):
        """Views beside the bundle's (here before them in the vector): the classifier takes the
        bundle's from where they lie, and the readouts are the bundle's alone."""
        window = PARAMS.window_samples
        stream = np.concatenate([tone(window, -0.33, 4), tone(window, 0.0, 5), tone(window, 0.33, 6)])
        aligned = OfdmAlignedParams(
            Numerology(sample_rate_hz=1e6, n_fft=64, cp_first=16, cp_other=16, symbols_per_group=1),
            n_symbols=8,
            n_subcarriers=16,
            search_symbols=16,
        )
        readouts = []
        for views in ("", [aligned, "wideband"]):
            tb = gr.top_block()
            receiver = lwm_blocks.receiver(BUNDLE, PARAMS.sample_rate_hz, views=views, drop_when_full=False)
            debug = blocks.message_debug()
            tb.connect(blocks.vector_source_c(stream), receiver)
            tb.msg_connect(receiver, "readout", debug, "store")
            tb.run()
            got = sorted((pmt.to_python(m) for m in stored(debug)), key=lambda r: r["window_start"])
            readouts.append([(r["window_start"], r["protocol"], r["protocol_confidence"]) for r in got])
        self.assertEqual(receiver.spectrogram.vlen, int(np.prod(aligned.shape)) + VLEN)
        # The same windows and protocols; confidences to float32 rounding (ONNX Runtime's
        # threads may sum in another order from one session to the next).
        self.assertEqual([r[:2] for r in readouts[1]], [r[:2] for r in readouts[0]])
        np.testing.assert_allclose([r[2] for r in readouts[1]], [r[2] for r in readouts[0]], rtol=1e-5)
        self.assertEqual([r[1] for r in readouts[0]], ["wifi", "lte", "nr"])
        with self.assertRaisesRegex(ConfigError, r"LWM Classifier: the views \['cp_profile'\] lack \['wideband'\]"):
            lwm_blocks.classifier(RUNTIME, views="cp_profile")

    def test_a_routed_spectrogram_tags_the_route_and_the_classifier_reads_out_as_unrouted(self):
        """A bundle whose lte expert alone reads the dynamics view: routed, the spectrogram leaves
        it NaN in the vectors of windows the router sends elsewhere, tags each judged vector with
        the router's probabilities, and the classifier reads out every window as unrouted."""
        bundle = multi_view_bundle(Path(_FOLDER) / "multi")
        runtime = Runtime(bundle, intra_op_threads=1)
        rate = 1e6
        span = ObservationFramer(MULTI_VIEWS, rate).span
        rng = np.random.default_rng(5)
        iq = ((rng.standard_normal(12 * span) + 1j * rng.standard_normal(12 * span)) * 0.3).astype(np.complex64)
        runs = {}
        for routed in (False, True):
            tb = gr.top_block()
            spectrogram = lwm_blocks.spectrogram(runtime, rate, routed=routed)
            classifier = lwm_blocks.classifier(runtime, drop_when_full=False)
            vectors = blocks.vector_sink_f(spectrogram.vlen)
            debug = blocks.message_debug()
            tb.connect(blocks.vector_source_c(iq), spectrogram, classifier)
            tb.connect(spectrogram, vectors)
            tb.msg_connect(classifier, "readout", debug, "store")
            tb.run()
            readouts = sorted((pmt.to_python(m) for m in stored(debug)), key=lambda r: r["window_start"])
            routes = [t for t in vectors.tags() if pmt.symbol_to_string(t.key) == "lwm_route"]
            runs[routed] = readouts, routes, np.reshape(vectors.data(), (-1, spectrogram.vlen))
        (unrouted, no_routes, _), (readouts, routes, data) = runs[False], runs[True]
        self.assertEqual(no_routes, [])
        fields = ("window_start", "protocol", "invalid_reason", "modulation")
        self.assertEqual([[r[f] for f in fields] for r in readouts], [[r[f] for f in fields] for r in unrouted])
        protocols = [r["protocol"] for r in readouts]
        self.assertTrue({"lte", "wifi"} <= set(protocols))
        self.assertEqual(len(routes), len(readouts))
        for tag in routes:
            route = pmt.f64vector_elements(tag.value)
            self.assertEqual(labels.ROUTER_CLASSES[int(np.argmax(route))], protocols[tag.offset])
        dynamics = data[:, -int(np.prod(MULTI_VIEWS[2].shape)) :]
        lte = np.array(protocols) == "lte"
        self.assertTrue(np.isnan(dynamics[~lte]).all())
        self.assertTrue(np.isfinite(dynamics[lte][-1]).all())

    def test_the_card_is_read_once_for_the_receiver_and_an_annotator(self):
        """What `lwmspectro run --annotate` builds: one Bundle shared by every block."""
        loads = []
        original = Bundle.load.__func__

        def counting_load(cls, path):
            loads.append(path)
            return original(cls, path)

        folder = tempfile.mkdtemp(prefix="lwm-qa-", dir=_FOLDER)
        meta = write_recording(f"{folder}/rec", np.zeros(10, np.complex64), PARAMS.sample_rate_hz, 2.4e9)
        with mock.patch.object(Bundle, "load", classmethod(counting_load)):
            receiver = lwm_blocks.receiver(BUNDLE, PARAMS.sample_rate_hz)
            annotator = lwm_blocks.sigmf_annotator(str(meta), receiver.bundle)
        self.assertEqual(len(loads), 1)
        self.assertIs(receiver.spectrogram.bundle, receiver.bundle)
        self.assertIs(receiver.classifier.runtime.bundle, receiver.bundle)
        self.assertEqual(annotator.sample_count, PARAMS.window_samples)


if __name__ == "__main__":
    gr_unittest.run(qa_classifier)
