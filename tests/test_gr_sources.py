"""QA for the LWM SigMF Source and the LWM Synthetic Source: samples, tags, bad recordings."""

import json
import shutil
import tempfile
from pathlib import Path

import gnuradio.lwmspectro as lwm_blocks
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest
from gnuradio.lwmspectro.common import ConfigError

from lwmspectro import labels
from lwmspectro.sigmf_io import write_recording
from lwmspectro.spectrogram import DEFAULT_PARAMS


def setUpModule():
    global FOLDER
    FOLDER = Path(tempfile.mkdtemp(prefix="lwm-qa-"))


def tearDownModule():
    shutil.rmtree(FOLDER, ignore_errors=True)


def tags_by_key(sink):
    out = {}
    for tag in sink.tags():
        out.setdefault(pmt.symbol_to_string(tag.key), []).append((tag.offset, pmt.to_python(tag.value)))
    return out


def rewrite_as(meta_path: Path, datatype: str, data: bytes) -> None:
    """Turn a cf32 recording into one of another datatype holding `data`."""
    meta = json.loads(meta_path.read_text())
    meta["global"]["core:datatype"] = datatype
    meta["global"].pop("core:sha512", None)
    meta_path.write_text(json.dumps(meta))
    meta_path.with_suffix(".sigmf-data").write_bytes(data)


class qa_sigmf_source(gr_unittest.TestCase):
    def run_source(self, path, n=None, repeat=False):
        tb = gr.top_block()
        source = lwm_blocks.sigmf_source(str(path), repeat)
        sink = blocks.vector_sink_c()
        if n is None:
            tb.connect(source, sink)
        else:
            tb.connect(source, blocks.head(gr.sizeof_gr_complex, n), sink)
        tb.run()
        return np.asarray(sink.data(), np.complex64), tags_by_key(sink), source

    def test_cf32_recording_streams_with_rate_frequency_and_time_tags(self):
        rng = np.random.default_rng(0)
        iq = (rng.standard_normal(5000) + 1j * rng.standard_normal(5000)).astype(np.complex64)
        meta_path = write_recording(FOLDER / "cf32", iq, 2e6, 915e6)
        meta = json.loads(meta_path.read_text())
        meta["captures"][0]["core:datetime"] = "2026-11-22T10:00:00.250000Z"
        meta_path.write_text(json.dumps(meta))
        samples, tags, source = self.run_source(meta_path)
        np.testing.assert_array_equal(samples, iq)
        self.assertEqual((source.samp_rate, source.center_freq), (2e6, 915e6))
        self.assertEqual(tags["rx_rate"], [(0, 2e6)])
        self.assertEqual(tags["rx_freq"], [(0, 915e6)])
        ((offset, (whole, fraction)),) = tags["rx_time"]
        self.assertEqual((offset, whole, fraction), (0, 1795341600, 0.25))

    def test_repeat_starts_over(self):
        iq = np.arange(100, dtype=np.float32).astype(np.complex64)
        meta_path = write_recording(FOLDER / "short", iq, 1e6, 0.0)
        samples, tags, _ = self.run_source(meta_path, n=250, repeat=True)
        np.testing.assert_array_equal(samples, np.concatenate([iq, iq, iq[:50]]))
        self.assertEqual([offset for offset, _ in tags["rx_freq"]], [0, 100, 200])

    def test_fixed_point_recordings_are_scaled(self):
        meta_path = write_recording(FOLDER / "ci16", np.zeros(4, np.complex64), 1e6, 0.0)
        rewrite_as(meta_path, "ci16_le", np.array([16384, -32768, 0, 8192], "<i2").tobytes())
        samples, _, _ = self.run_source(meta_path)
        np.testing.assert_allclose(samples, [0.5 - 1j, 0.25j])
        meta_path = write_recording(FOLDER / "ci8", np.zeros(4, np.complex64), 1e6, 0.0)
        rewrite_as(meta_path, "ci8", np.array([64, -128], "i1").tobytes())
        samples, _, _ = self.run_source(meta_path)
        np.testing.assert_allclose(samples, [0.5 - 1j])

    def test_recordings_that_cannot_be_replayed_name_the_block_the_value_and_the_fix(self):
        meta_path = write_recording(FOLDER / "ru8", np.zeros(4, np.complex64), 1e6, 0.0)
        rewrite_as(meta_path, "ru8", bytes(8))
        unsupported = r"LWM SigMF Source: .*core:datatype 'ru8' is not supported; supported: cf32_le.*convert"
        with self.assertRaisesRegex(ConfigError, unsupported):
            lwm_blocks.sigmf_source(str(meta_path))
        with self.assertRaisesRegex(ConfigError, r"LWM SigMF Source: no SigMF recording at '.*missing'"):
            lwm_blocks.sigmf_source(str(FOLDER / "missing"))
        for nothing in ("", None):
            with self.assertRaisesRegex(ConfigError, r"LWM SigMF Source: no recording given .*a \.sigmf-meta file"):
                lwm_blocks.sigmf_source(nothing)


class qa_synthetic_source(gr_unittest.TestCase):
    def test_emissions_of_observations_stream_back_to_back_with_their_truth_as_tags(self):
        two_observations_s = 2 * DEFAULT_PARAMS.window_seconds
        source = lwm_blocks.synthetic_source(
            protocol="", snr_db=20.0, mobility="static", cycle=True, seed=3, emission_s=two_observations_s
        )
        n = source.observation_samples
        tb = gr.top_block()
        sink = blocks.vector_sink_c()
        tb.connect(source, blocks.head(gr.sizeof_gr_complex, 4 * n + 10), sink)
        tb.run()
        samples = np.asarray(sink.data(), np.complex64)
        self.assertEqual(len(samples), 4 * n + 10)
        self.assertGreater(np.mean(np.abs(samples[:n]) ** 2), 0.0)
        truths = tags_by_key(sink)["lwm_truth"]
        self.assertEqual([offset for offset, _ in truths], [0, n, 2 * n, 3 * n, 4 * n])
        self.assertEqual([truth["protocol"] for _, truth in truths], ["wifi", "wifi", "lte", "lte", "nr"])
        self.assertEqual(truths[0][1], truths[1][1])
        for _, truth in truths:
            self.assertEqual((truth["snr_db"], truth["mobility"]), (20.0, "static"))
            self.assertIn(truth["modulation"], labels.ALLOWED_MODULATIONS[truth["protocol"]])
        self.assertEqual(source.samp_rate, 30.72e6)

    def test_choices_the_generator_refuses_name_the_block_and_the_valid_ones(self):
        with self.assertRaisesRegex(ConfigError, r"LWM Synthetic Source: unknown protocol 'gsm'; valid choices: wifi"):
            lwm_blocks.synthetic_source(protocol="gsm")
        with self.assertRaisesRegex(ConfigError, r"LWM Synthetic Source: .*BPSK"):
            lwm_blocks.synthetic_source(protocol="lte", modulation="BPSK")
        with self.assertRaisesRegex(ConfigError, r"LWM Synthetic Source: emission length 0 s: give a number"):
            lwm_blocks.synthetic_source(emission_s=0)
        # Refused before the observations are generated and cached, not after.
        with self.assertRaisesRegex(ConfigError, r"LWM Synthetic Source: seed -1; give at least 0"):
            lwm_blocks.synthetic_source(seed=-1)
        with self.assertRaisesRegex(ConfigError, r"observations \(0: endless\) 1.5 is not a whole"):
            lwm_blocks.synthetic_source(observations=1.5)
        with self.assertRaisesRegex(ConfigError, r"LWM Synthetic Source: loop emissions 0; give at least 1"):
            lwm_blocks.synthetic_source(loop_emissions=0)


if __name__ == "__main__":
    gr_unittest.run(qa_sigmf_source)
