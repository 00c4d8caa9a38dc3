"""QA for the readout sinks: console, ZMQ PUB, SigMF annotator and the Qt readout widget."""

import contextlib
import importlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import gnuradio.lwmspectro as lwm_blocks
import numpy as np
import pmt
import zmq
from gnuradio import blocks, gr, gr_unittest
from gnuradio.lwmspectro.common import ConfigError, readout_to_pmt
from gnuradio.lwmspectro.sigmf_annotator import describe, occupied_band
from scipy import signal as sps
from sigmf.sigmffile import fromfile

from lwmspectro.readout import FIELDS, format_line, invalid_readout, make_readout, to_json
from lwmspectro.sigmf_io import write_recording
from lwmspectro.spectrogram import SpectrogramParams

from bundle_factory import make_bundle

# The module itself: the package's name sigmf_annotator is the block's class.
annotator_module = importlib.import_module("gnuradio.lwmspectro.sigmf_annotator")

PARAMS = SpectrogramParams(sample_rate_hz=1e6, n_fft=32, hop=64, n_frames=32, n_bins=16)
READOUTS = [
    make_readout(
        protocol="lte",
        protocol_confidence=0.97,
        modulation="64QAM",
        modulation_confidence=0.81,
        snr_db=15.0,
        snr_confidence=0.6,
        mobility="pedestrian",
        mobility_confidence=0.7,
        expert="lte",
        window_start=0,
        rx_time=12.5,
        latency_ms=8.0,
        windows_seen=1,
        windows_classified=1,
    ),
    invalid_readout("all_zero", window_start=2016, windows_seen=2, windows_classified=1),
    make_readout(
        protocol="none",
        protocol_confidence=0.9,
        window_start=4032,
        latency_ms=7.5,
        windows_seen=3,
        windows_classified=2,
        windows_dropped=0,
    ),
]


TRACKED = make_readout(
    protocol="lte",
    protocol_confidence=0.97,
    modulation="64QAM",
    modulation_confidence=0.81,
    snr_db=15.0,
    snr_confidence=0.6,
    mobility="pedestrian",
    mobility_confidence=0.7,
    tracked_protocol="lte",
    tracked_protocol_confidence=0.99,
    tracked_modulation="16QAM",
    tracked_modulation_confidence=0.9,
    tracked_snr_db=15.0,
    tracked_snr_confidence=0.7,
    tracked_mobility="pedestrian",
    tracked_mobility_confidence=0.6,
    tracked_windows=40,
    expert="lte",
    window_start=2016,
    uncertain_below={"mobility": 0.75},
)
"""READOUTS[0] tracked over 40 windows, its mobility (0.70) and the tracked one (0.60) uncertain."""


def setUpModule():
    global FOLDER, BUNDLE
    FOLDER = Path(tempfile.mkdtemp(prefix="lwm-qa-"))
    BUNDLE = make_bundle(FOLDER, params=PARAMS)


def tearDownModule():
    shutil.rmtree(FOLDER, ignore_errors=True)


class ReadoutFeeder(gr.sync_block):
    """Publishes the given readouts on `readout`, then ends its (dummy) stream."""

    def __init__(self, readouts):
        gr.sync_block.__init__(self, name="readout_feeder", in_sig=None, out_sig=[np.uint8])
        self.readouts = readouts
        self.message_port_register_out(pmt.intern("readout"))

    def work(self, input_items, output_items):
        for readout in self.readouts:
            self.message_port_pub(pmt.intern("readout"), readout_to_pmt(readout))
        return -1


def feed(sink, readouts=READOUTS):
    tb = gr.top_block()
    feeder = ReadoutFeeder(readouts)
    tb.connect(feeder, blocks.null_sink(1))
    tb.msg_connect(feeder, "readout", sink, "readout")
    tb.run()


class qa_console_sink(gr_unittest.TestCase):
    def test_text_and_json_lines(self):
        for fmt, expected in (("text", [format_line(r) for r in READOUTS]), ("json", [to_json(r) for r in READOUTS])):
            out = io.StringIO()
            sink = lwm_blocks.console_sink(fmt)
            with contextlib.redirect_stdout(out):
                feed(sink)
            self.assertEqual(out.getvalue().splitlines(), expected)
            self.assertEqual(sink.lines, len(READOUTS))
        parsed = [json.loads(line) for line in expected]
        self.assertEqual(parsed[0], READOUTS[0])

    def test_log_destination_keeps_stdout_clean(self):
        out = io.StringIO()
        sink = lwm_blocks.console_sink("text", "log")
        with contextlib.redirect_stdout(out):
            feed(sink)
        self.assertEqual(out.getvalue(), "")
        self.assertEqual(sink.lines, len(READOUTS))

    def test_unknown_choices_are_refused_with_the_valid_ones(self):
        with self.assertRaisesRegex(ConfigError, r"LWM Console Sink: format 'xml' is unknown; valid: text, json"):
            lwm_blocks.console_sink("xml")
        with self.assertRaisesRegex(ConfigError, r"LWM Console Sink: destination 'file' .* valid: stdout, log"):
            lwm_blocks.console_sink("text", "file")


class qa_zmq_pub_sink(gr_unittest.TestCase):
    def test_subscribers_get_one_json_readout_per_message(self):
        sink = lwm_blocks.zmq_pub_sink("tcp://127.0.0.1:*")
        subscriber = zmq.Context.instance().socket(zmq.SUB)
        subscriber.setsockopt(zmq.SUBSCRIBE, b"")
        subscriber.setsockopt(zmq.RCVTIMEO, 3000)
        subscriber.connect(sink.endpoint)
        time.sleep(0.3)  # let the subscription reach the publisher before anything is sent
        try:
            feed(sink)
            received = [json.loads(subscriber.recv_string()) for _ in READOUTS]
        finally:
            subscriber.close()
        self.assertEqual(received, [json.loads(to_json(r)) for r in READOUTS])
        self.assertEqual(set(received[1]), set(FIELDS))
        self.assertEqual(sink.sent, len(READOUTS))

    def test_default_endpoint_is_localhost_and_a_busy_one_is_refused(self):
        self.assertEqual(lwm_blocks.zmq_pub_sink.__init__.__defaults__, ("tcp://127.0.0.1:5557",))
        first = lwm_blocks.zmq_pub_sink("tcp://127.0.0.1:*")
        with self.assertRaisesRegex(ConfigError, r"LWM ZMQ PUB Sink: cannot bind '.*': .*give a free endpoint"):
            lwm_blocks.zmq_pub_sink(first.endpoint)
        with self.assertRaisesRegex(ConfigError, r"LWM ZMQ PUB Sink: cannot bind 'localhost'"):
            lwm_blocks.zmq_pub_sink("localhost")
        # zmq binds a port beyond 65535 to another port, which no subscriber would find.
        with self.assertRaisesRegex(ConfigError, r"'tcp://127.0.0.1:99999' has no port from 1 to 65535"):
            lwm_blocks.zmq_pub_sink("tcp://127.0.0.1:99999")
        with self.assertRaisesRegex(ConfigError, r"address None is not an endpoint"):
            lwm_blocks.zmq_pub_sink(None)
        first.stop()


def band_of_noise(n, rate, low, high, seed=0):
    """Unit white noise plus noise 20 dB stronger between `low` and `high` Hz."""
    rng = np.random.default_rng(seed)
    white = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)
    taps = sps.firwin(255, (high - low) / 2, fs=rate)
    band = sps.lfilter(taps, 1, rng.standard_normal(n) + 1j * rng.standard_normal(n))
    shifted = band * np.exp(2j * np.pi * (low + high) / 2 * np.arange(n) / rate)
    return (white + 10 * shifted).astype(np.complex64)


class qa_sigmf_annotator(gr_unittest.TestCase):
    def make_recording(self, name):
        iq = np.zeros(8000, np.complex64)
        iq[:2016] = band_of_noise(2016, 0.8e6, 100e3, 250e3)
        meta_path = write_recording(FOLDER / name, iq, 0.8e6, 2.4e9, labels={"protocol": "lte"})
        meta = json.loads(meta_path.read_text())
        meta["global"]["core:author"] = "someone else"
        meta["annotations"] = [{"core:sample_start": 3000, "core:sample_count": 10, "core:label": "burst"}]
        meta_path.write_text(json.dumps(meta))
        return meta_path

    def test_readouts_become_annotations_beside_the_existing_content(self):
        meta_path = self.make_recording("annotated")
        before = json.loads(meta_path.read_text())
        # Written once at stop, then after every readout; the second replay replaces, never
        # doubles, this block's annotations.
        for flush_seconds in (60.0, 0.0):
            feed(lwm_blocks.sigmf_annotator(str(meta_path.with_suffix(".sigmf-data")), str(BUNDLE), flush_seconds))
        meta = json.loads(meta_path.read_text())
        self.assertEqual(meta["global"]["core:author"], "someone else")
        self.assertEqual(meta["global"]["lwm:protocol"], "lte")
        self.assertEqual(meta["captures"], before["captures"])
        self.assertIn({"name": "lwm", "version": "1.0.0", "optional": True}, meta["global"]["core:extensions"])
        annotations = meta["annotations"]
        self.assertEqual([a["core:sample_start"] for a in annotations], [0, 2016, 3000, 4032])
        ours = [a for a in annotations if a.get("core:generator") == "gr-lwmspectro"]
        self.assertEqual([a["core:label"] for a in ours], ["lte", "invalid", "none"])
        window = -(-PARAMS.window_samples * 4 // 5)  # at 0.8 MS/s
        self.assertEqual({a["core:sample_count"] for a in ours}, {window})
        # Predictions under their own keys, typed, without runtime counters; the truth stays in global.
        self.assertEqual(ours[0]["lwm:predicted_protocol"], "lte")
        self.assertEqual(ours[0]["lwm:predicted_modulation"], "64QAM")
        self.assertEqual((ours[0]["lwm:predicted_snr_db"], ours[0]["lwm:protocol_confidence"]), (15.0, 0.97))
        self.assertEqual((ours[1]["lwm:valid"], ours[1]["lwm:invalid_reason"]), (False, "all_zero"))
        self.assertEqual(ours[0]["lwm:model"], "test-tiny")
        for annotation in ours:
            self.assertFalse({"lwm:latency_ms", "lwm:windows_seen", "lwm:rx_time", "lwm:protocol"} & set(annotation))
            self.assertNotIn(None, annotation.values())
        self.assertNotIn("lwm:predicted_modulation", ours[2])
        self.assertEqual(ours[0]["core:comment"], describe(READOUTS[0]))
        self.assertNotIn("ms", ours[0]["core:comment"])
        # The occupied band of the first window, absolute: 2.4 GHz + 100..250 kHz, to a bin (3.1 kHz).
        self.assertAlmostEqual(ours[0]["core:freq_lower_edge"], 2.4e9 + 100e3, delta=8e3)
        self.assertAlmostEqual(ours[0]["core:freq_upper_edge"], 2.4e9 + 250e3, delta=8e3)
        self.assertNotIn("core:freq_lower_edge", ours[1])  # not judged
        self.assertNotIn("core:freq_lower_edge", ours[2])  # nothing above the floor (zeros)
        self.assertEqual(
            sorted(p.name for p in FOLDER.glob("annotated*")), ["annotated.sigmf-data", "annotated.sigmf-meta"]
        )
        recording = fromfile(str(meta_path))
        self.assertEqual(len(recording.get_annotations()), 4)

    def test_tracked_values_and_the_uncertain_ones_are_annotated(self):
        meta_path = self.make_recording("tracked")
        feed(lwm_blocks.sigmf_annotator(str(meta_path), str(BUNDLE), 0.0), [READOUTS[0], TRACKED])
        ours = [a for a in json.loads(meta_path.read_text())["annotations"] if a.get("core:generator")]
        self.assertEqual(ours[1]["lwm:uncertain"], ["mobility", "tracked_mobility"])
        self.assertEqual((ours[1]["lwm:tracked_modulation"], ours[1]["lwm:tracked_windows"]), ("16QAM", 40))
        self.assertEqual(ours[1]["lwm:predicted_modulation"], "64QAM")
        self.assertIn("pedestrian?", ours[1]["core:comment"])
        self.assertFalse([key for key in ours[0] if "tracked" in key or "uncertain" in key], "nothing to say")

    def test_occupied_band_holds_the_power_above_the_noise_floor(self):
        rate = 1e6
        low, high = occupied_band(band_of_noise(20000, rate, -300e3, -50e3), rate)
        self.assertAlmostEqual(low, -300e3, delta=2 * rate / 256)
        self.assertAlmostEqual(high, -50e3, delta=2 * rate / 256)
        tone = np.exp(2j * np.pi * 200e3 * np.arange(20000) / rate).astype(np.complex64)
        low, high = occupied_band(tone + 0.01 * band_of_noise(20000, rate, 0, 1, seed=1), rate)
        self.assertTrue(low < 200e3 < high and high - low <= 3 * rate / 256)
        rng = np.random.default_rng(2)
        self.assertIsNone(occupied_band((rng.standard_normal(20000) + 1j * rng.standard_normal(20000)), rate))
        self.assertIsNone(occupied_band(np.zeros(20000, np.complex64), rate))

    def test_missing_recording_names_the_block_and_the_path(self):
        with self.assertRaisesRegex(ConfigError, r"LWM SigMF Annotator: no SigMF metadata at .*nowhere.sigmf-meta"):
            lwm_blocks.sigmf_annotator(str(FOLDER / "nowhere"), str(BUNDLE))

    def test_recordings_and_settings_it_cannot_write_with_are_refused_when_made(self):
        meta_path = self.make_recording("refused")
        cases = [
            ("", {}, r"no recording given"),
            (None, {}, r"no recording given \(None\); give the path of the recording"),
            (str(meta_path), {"flush_seconds": float("nan")}, r"flush interval nan; give 0 or more seconds"),
            (str(meta_path), {"flush_seconds": "5"}, r"flush interval '5'; give 0 or more seconds"),
        ]
        for path, options, message in cases:
            with self.assertRaisesRegex(ConfigError, f"LWM SigMF Annotator: {message}"):
                lwm_blocks.sigmf_annotator(path, str(BUNDLE), **options)
        unwritable = r"folder of .*refused\.sigmf-meta is not writable.*copy the"
        with (
            mock.patch.object(annotator_module.os, "access", return_value=False),
            self.assertRaisesRegex(ConfigError, unwritable),
        ):
            lwm_blocks.sigmf_annotator(str(meta_path), str(BUNDLE))

    def test_a_write_that_fails_is_logged_and_the_flowgraph_still_stops(self):
        meta_path = self.make_recording("unwritable")
        before = meta_path.read_text()
        sink = lwm_blocks.sigmf_annotator(str(meta_path), str(BUNDLE), 0.0)
        failing = mock.patch.object(annotator_module, "atomic_write", side_effect=PermissionError("read-only folder"))
        with failing, self.assertLogs(level="ERROR") as logged:
            feed(sink)
        self.assertIn("cannot write the annotations", logged.output[-1])
        self.assertEqual(meta_path.read_text(), before)
        self.assertEqual(len(sink.added), len(READOUTS))


class qa_readout_widget(gr_unittest.TestCase):
    def test_widget_shows_the_latest_readout_and_a_short_history(self):
        from PyQt5 import QtWidgets

        app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
        widget = lwm_blocks.readout_widget(history=2, title="LWM test")
        feed(widget, [READOUTS[1], READOUTS[2], READOUTS[0]])
        deadline = time.monotonic() + 3
        while len(widget.view.lines) < 2 and time.monotonic() < deadline:
            app.processEvents()
        app.processEvents()
        view = widget.qwidget()
        self.assertEqual(view.values["protocol"].text(), "lte")
        self.assertEqual(view.values["modulation"].text(), "64QAM")
        self.assertEqual(view.values["snr_db"].text(), "15 dB")
        self.assertEqual(view.bars["protocol"].value(), 97)
        self.assertEqual(view.bars["mobility"].value(), 70)
        self.assertEqual(view.history.count(), 2)
        self.assertEqual(view.history.item(0).text(), format_line(READOUTS[0]).strip())
        self.assertIn("classified 1", view.status.text())

    def test_widget_shows_the_tracked_values_and_marks_the_uncertain_ones(self):
        from PyQt5 import QtWidgets

        app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
        widget = lwm_blocks.readout_widget(history=1, title="LWM test")
        view = widget.qwidget()
        widget.handle_readout(READOUTS[0], readout_to_pmt(READOUTS[0]))
        app.processEvents()
        self.assertTrue(view.tracked_heading.isHidden())
        widget.handle_readout(TRACKED, readout_to_pmt(TRACKED))
        app.processEvents()
        self.assertFalse(view.tracked_heading.isHidden())
        self.assertIn("40 windows", view.tracked_heading.text())
        self.assertEqual(view.values["mobility"].text(), "pedestrian?")
        self.assertEqual(view.tracked["modulation"].text(), "16QAM 0.90")
        self.assertEqual(view.tracked["snr_db"].text(), "15 dB 0.70")
        self.assertEqual(view.tracked["mobility"].text(), "pedestrian? 0.60")

    def test_widget_says_why_a_readout_has_no_mobility(self):
        from PyQt5 import QtWidgets

        app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
        widget = lwm_blocks.readout_widget(history=1, title="LWM test")
        short = {
            **READOUTS[0],
            "mobility": None,
            "mobility_confidence": None,
            "mobility_status": "needs_longer_capture",
        }
        feed(widget, [short])
        deadline = time.monotonic() + 3
        while not widget.view.lines and time.monotonic() < deadline:
            app.processEvents()
        view = widget.qwidget()
        self.assertEqual(view.values["mobility"].text(), "needs longer capture")
        self.assertEqual(view.bars["mobility"].value(), 0)


if __name__ == "__main__":
    gr_unittest.run(qa_console_sink)
