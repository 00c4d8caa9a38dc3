"""QA for the LWM Spectrogram block: G per window, resampling, hops, tags, bad input and parameters,
and every registered view live as offline."""

import re
import shutil
import tempfile
from pathlib import Path

import gnuradio.lwmspectro as lwm_blocks
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest
from gnuradio.lwmspectro.common import ConfigError

from lwmspectro.framer import ObservationFramer
from lwmspectro.resample import rational_ratio, resample_to
from lwmspectro.runtime import Runtime
from lwmspectro.spectrogram import SpectrogramParams, spectrogram, spectrograms
from lwmspectro.views import VIEWS, aligned_offsets, compute_view, view_output, view_shape

from bundle_factory import make_bundle

PARAMS = SpectrogramParams(sample_rate_hz=1e6, n_fft=32, hop=64, n_frames=32, n_bins=16)
WINDOW = PARAMS.window_samples
BUNDLE = None


def setUpModule():
    global BUNDLE, _FOLDER
    _FOLDER = tempfile.mkdtemp(prefix="lwm-qa-")
    BUNDLE = str(make_bundle(_FOLDER, params=PARAMS))


def tearDownModule():
    shutil.rmtree(_FOLDER, ignore_errors=True)


def noise(n, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return (scale * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)


def make_tag(offset, key, value):
    return gr.tag_utils.python_to_tag((offset, pmt.intern(key), value, pmt.intern("qa")))


class qa_spectrogram(gr_unittest.TestCase):
    def run_block(self, samples, tags=(), at_once=False, **kwargs):
        """(vectors (n, T, K), {output index: {tag key: python value}}); `at_once` has the source
        hand the block all its samples in one buffer."""
        tb = gr.top_block()
        block = lwm_blocks.spectrogram(BUNDLE, **kwargs)
        sink = blocks.vector_sink_f(block.vlen)
        source = blocks.vector_source_c(samples, False, 1, list(tags))
        if at_once:
            source.set_min_output_buffer(len(samples))
        tb.connect(source, block, sink)
        tb.run()
        vectors = np.asarray(sink.data(), np.float32).reshape(-1, *PARAMS.shape)
        out_tags = {}
        for tag in sink.tags():
            out_tags.setdefault(tag.offset, {})[pmt.symbol_to_string(tag.key)] = pmt.to_python(tag.value)
        return vectors, out_tags, block

    def test_back_to_back_windows_are_G_of_each(self):
        samples = noise(5 * WINDOW + 700)
        vectors, tags, block = self.run_block(samples, samp_rate=1e6)
        self.assertEqual(len(vectors), 5)
        np.testing.assert_allclose(vectors, spectrograms(samples, PARAMS), atol=1e-5)
        self.assertEqual([tags[i]["window_start"] for i in range(5)], [i * WINDOW for i in range(5)])
        self.assertEqual(block.windows_out, 5)

    def test_a_source_tagging_another_sample_rate_is_warned_about(self):
        samples = noise(2 * WINDOW, seed=3)
        _, _, block = self.run_block(samples, [make_tag(0, "rx_rate", pmt.from_double(1e6))], samp_rate=1e6)
        self.assertIsNone(block.rate_warning)
        _, _, block = self.run_block(samples, [make_tag(0, "rx_rate", pmt.from_double(2e6))], samp_rate=1e6)
        self.assertIn("the source tags rx_rate 2e+06 Hz, but this block is set to 1e+06 Hz", block.rate_warning)

    def test_a_stream_shorter_than_one_window_is_warned_about(self):
        vectors, _, block = self.run_block(noise(WINDOW - 1, seed=4), samp_rate=1e6)
        self.assertEqual(len(vectors), 0)
        self.assertIn(
            f"no window was formed: the stream ended or was stopped before the first window's {WINDOW} ",
            block.short_stream_warning,
        )
        _, _, block = self.run_block(noise(WINDOW, seed=4), samp_rate=1e6)
        self.assertIsNone(block.short_stream_warning)

    def test_overlapping_and_gapped_hops(self):
        samples = noise(4 * WINDOW, seed=1)
        for hop in (700, WINDOW + 333):
            vectors, tags, _ = self.run_block(samples, samp_rate=1e6, hop=hop)
            starts = list(range(0, len(samples) - WINDOW + 1, hop))
            self.assertEqual(len(vectors), len(starts), f"hop {hop}")
            self.assertEqual([tags[i]["window_start"] for i in range(len(starts))], starts)
            for vector, start in zip(vectors, starts):
                np.testing.assert_allclose(vector, spectrogram(samples, PARAMS, start=start), atol=1e-5)

    def test_a_block_keeping_up_skips_to_the_newest_windows_and_tags_how_many_it_skipped(self):
        """A stream that comes faster than the views (here 40 windows, handed over in as few
        buffers as the scheduler allows): rather than make the source wait, the block frames the
        newest windows it holds, each as ever, and tags each with how many windows it skipped
        just before it; waiting, it frames all 40."""
        samples = noise(40 * WINDOW, seed=5)
        vectors, tags, block = self.run_block(samples, at_once=True, samp_rate=1e6, keep_up=True)
        starts = [tags[i]["window_start"] for i in range(len(vectors))]
        skipped = [tags[i].get("lwm_skipped", 0) for i in range(len(vectors))]
        self.assertGreater(block.windows_skipped, 0)
        self.assertEqual(len(vectors) + block.windows_skipped, 40)
        self.assertEqual(sum(skipped), block.windows_skipped)
        self.assertEqual(np.diff([-WINDOW, *starts]).tolist(), [(n + 1) * WINDOW for n in skipped])
        self.assertEqual(starts[-1], 39 * WINDOW)
        for vector, start in zip(vectors, starts):
            np.testing.assert_allclose(vector, spectrogram(samples, PARAMS, start=start), atol=1e-5)
        vectors, tags, block = self.run_block(samples, at_once=True, samp_rate=1e6)
        self.assertEqual((len(vectors), block.windows_skipped), (40, 0))
        self.assertFalse(any("lwm_skipped" in tag for tag in tags.values()))

    def test_resampled_windows_are_g_of_a_capture_starting_at_each(self):
        """At another rate a window is G of the stream cut at its start and resampled from there
        (as a recording of that observation gives it offline), zeros past the stream's end."""
        for rate, hop in ((0.8e6, 0), (2.5e6, 0), (0.8e6, 700)):
            samples = noise(int(4.5 * WINDOW * rate / PARAMS.sample_rate_hz), seed=2)
            vectors, tags, block = self.run_block(samples, samp_rate=rate, hop=hop)
            starts = [tags[i]["window_start"] for i in range(len(vectors))]
            self.assertEqual(starts, [i * block.hop for i in range(len(vectors))])
            self.assertGreaterEqual(len(vectors), 3)
            ended = np.concatenate([samples, np.zeros(block.span, np.complex64)])
            expected = np.stack([compute_view(PARAMS, ended[s:], rate) for s in starts])
            np.testing.assert_array_equal(vectors, expected, err_msg=f"source rate {rate}")
            analysis = resample_to(samples, rate, PARAMS.sample_rate_hz)
            np.testing.assert_allclose(vectors[0], spectrogram(analysis, PARAMS), atol=2e-3)

    def test_rx_time_and_rx_freq_hold_at_each_window_start(self):
        samples = noise(3 * WINDOW, seed=3)
        tags = [
            make_tag(100, "rx_time", pmt.make_tuple(pmt.from_uint64(1000), pmt.from_double(0.25))),
            make_tag(0, "rx_freq", pmt.from_double(2.4e9)),
            make_tag(WINDOW + 10, "rx_freq", pmt.from_double(5.8e9)),
        ]
        _, out, _ = self.run_block(samples, tags, samp_rate=1e6)
        for i in range(3):
            whole, fraction = out[i]["rx_time"]
            self.assertAlmostEqual(whole + fraction, 1000.25 + (i * WINDOW - 100) / 1e6, places=9)
            self.assertGreaterEqual(fraction, 0.0)
        self.assertEqual([out[i]["rx_freq"] for i in range(3)], [2.4e9, 2.4e9, 5.8e9])

    def test_unjudgeable_windows_are_tagged_with_the_reason(self):
        for rate in (1e6, 0.8e6):
            span = lwm_blocks.spectrogram(BUNDLE, rate).span
            windows = [
                noise(span, seed=4),
                np.zeros(span, np.complex64),
                noise(span, seed=5),
                np.full(span, 0.5 + 0.5j, np.complex64),
                noise(span, seed=6, scale=10.0),
            ]
            windows[2][span // 3 : span // 3 + PARAMS.hop] = np.nan  # wide enough to hit a frame
            windows[4] = (np.clip(windows[4].real, -1, 1) + 1j * np.clip(windows[4].imag, -1, 1)).astype(np.complex64)
            _, out, block = self.run_block(np.concatenate(windows), samp_rate=rate)
            reasons = [out[i].get("lwm_invalid") for i in sorted(out)]
            self.assertEqual(reasons[:4], [None, "all_zero", "nan_or_inf", "dc_only"], f"source rate {rate}")
            if rate == PARAMS.sample_rate_hz:
                # Resampling smooths the rails away from the stretch's edges: judged on the
                # source samples, the last window is clipped at any rate that keeps it whole.
                self.assertEqual(reasons[4], "clipped")
                self.assertEqual(block.windows_invalid, 4)

    def test_the_block_and_the_runtime_give_the_same_verdicts(self):
        """A NaN between the frames G reads invalidates its window in both (the samples of a
        window's span are all judged); one in the gap between two windows spares both."""
        runtime = Runtime(BUNDLE, intra_op_threads=1)
        for rate, gap in ((1e6, 0), (0.8e6, 0), (1e6, 300), (0.8e6, 300)):
            up, down = rational_ratio(rate, PARAMS.sample_rate_hz)
            span = PARAMS.source_window_samples(rate)
            hop = span + gap
            samples = noise(5 * hop + span + 200, seed=8)  # the resampler reads past the last span
            between_frames = (PARAMS.n_fft + (PARAMS.hop - PARAMS.n_fft) // 2) * down // up
            samples[hop + between_frames] = np.nan
            samples[3 * hop + 5 * PARAMS.hop * down // up] = np.inf
            if gap:
                samples[4 * hop + span + gap // 2] = np.nan
            vectors, out, _ = self.run_block(samples, samp_rate=rate, hop=hop)
            readouts = runtime.classify_iq(samples, rate, stride=hop)
            where = f"source rate {rate}, gap {gap}"
            self.assertEqual([out[i]["window_start"] for i in sorted(out)], [r["window_start"] for r in readouts])
            block_reasons = [out[i].get("lwm_invalid") for i in sorted(out)]
            self.assertEqual(block_reasons, [r["invalid_reason"] for r in readouts], where)
            self.assertEqual(block_reasons[:5], [None, "nan_or_inf", None, "nan_or_inf", None], where)
            valid = [i for i, reason in enumerate(block_reasons) if reason is None]
            self.assertTrue(np.isfinite(vectors[valid]).all(), where)
            self.assertTrue(np.isnan(vectors[[1, 3]]).all(), where)
            framed = ObservationFramer(PARAMS, rate, hop).frame_recording(samples, batch_windows=2)
            expected = np.concatenate([windows.views[0] for windows in framed])
            np.testing.assert_allclose(vectors[valid], expected[valid], atol=1e-5, err_msg=where)

    def test_parameters_that_cannot_work_name_the_block_the_value_and_the_fix(self):
        with self.assertRaisesRegex(ConfigError, r"LWM Spectrogram: vector length 1000 .*32 x 16 = 512.* 512"):
            lwm_blocks.spectrogram(BUNDLE, 1e6, 0, 1000)
        with self.assertRaisesRegex(ConfigError, r"LWM Spectrogram: bundle '/no/such/bundle' cannot be used"):
            lwm_blocks.spectrogram("/no/such/bundle", 1e6)
        with self.assertRaisesRegex(ConfigError, r"LWM Spectrogram: hop -5 is negative"):
            lwm_blocks.spectrogram(BUNDLE, 1e6, -5)
        with self.assertRaisesRegex(ConfigError, r"LWM Spectrogram: sample rate 0"):
            lwm_blocks.spectrogram(BUNDLE, 0)
        for rate in ("30.72e6", float("nan")):
            with self.assertRaisesRegex(ConfigError, r"sample rate .*; set it to the source.s sample rate in Hz"):
                lwm_blocks.spectrogram(BUNDLE, rate)
        with self.assertRaisesRegex(ConfigError, r"LWM Spectrogram: hop 1.5 is not a whole number"):
            lwm_blocks.spectrogram(BUNDLE, 1e6, 1.5)
        with self.assertRaisesRegex(ConfigError, r"LWM Spectrogram: hop nan is not a whole number"):
            lwm_blocks.spectrogram(BUNDLE, 1e6, float("nan"))
        # A hop the scheduler would have to buffer whole: 2**31 - 1 failed to cast, 10**9 to allocate.
        with self.assertRaisesRegex(ConfigError, r"LWM Spectrogram: hop 2147483647 is more than 1 s of samples"):
            lwm_blocks.spectrogram(BUNDLE, 1e6, 2**31 - 1)

    def test_a_source_narrower_than_the_analysis_band_is_warned_about(self):
        self.assertIsNone(lwm_blocks.spectrogram(BUNDLE, 1e6).bandwidth_warning)
        self.assertIsNone(lwm_blocks.spectrogram(BUNDLE, 2e6).bandwidth_warning)
        warning = lwm_blocks.spectrogram(BUNDLE, 0.25e6).bandwidth_warning
        self.assertIn("0.25 MS/s", warning)
        self.assertIn("1 MHz the model analyses", warning)

    def test_views_asked_for_are_joined_in_order_and_unknown_ones_named(self):
        chosen = "wideband, cp_profile"
        block = lwm_blocks.spectrogram(BUNDLE, 1e6, views=chosen)
        self.assertEqual(block.views, (PARAMS, VIEWS["cp_profile"]))
        self.assertEqual(block.vlen, 32 * 16 + 4 * 64)
        with self.assertRaisesRegex(ConfigError, r"vector length 512 .*wideband 32 x 16 \+ cp_profile"):
            lwm_blocks.spectrogram(BUNDLE, 1e6, 0, 512, views=chosen)
        with self.assertRaisesRegex(ConfigError, r"unknown view 'spectrum'; give names of the bundle's views"):
            lwm_blocks.spectrogram(BUNDLE, 1e6, views="wideband,spectrum")
        with self.assertRaisesRegex(ConfigError, r"view 'cp_profile' is listed twice"):
            lwm_blocks.spectrogram(BUNDLE, 1e6, views="cp_profile,cp_profile")

    def test_the_companion_documentation_names_every_registered_view_in_order(self):
        yml = (Path(__file__).resolve().parents[1] / "grc" / "lwmspectro_spectrogram.block.yml").read_text()
        listed = re.search(r"registered views \(([^)]*)\)", " ".join(yml.split())).group(1)
        self.assertEqual([name.strip() for name in listed.split(",")], list(VIEWS))


def lte_like(n, rate, seed=0):
    """n samples at `rate` of OFDM with LTE's numerology (random QPSK on 1200 subcarriers, normal
    CP) at a CFO of 0.2 subcarriers, in noise 20 dB down, resampled from 30.72 MS/s."""
    rng = np.random.default_rng(seed)
    at_analysis = int(n * 30.72e6 / rate) + 1000
    group = []
    grid = np.zeros((-(-at_analysis // 15360) * 7, 2048), complex)
    grid[:, np.r_[1:601, 1448:2048]] = np.exp(0.5j * np.pi * rng.integers(4, size=(len(grid), 1200)))
    symbols = np.fft.ifft(grid, axis=1) * np.sqrt(2048 / 1200)
    for i, symbol in enumerate(symbols):
        group.append(np.concatenate([symbol[-(160 if i % 7 == 0 else 144) :], symbol]))
    iq = np.concatenate(group)[:at_analysis] * np.exp(2j * np.pi * 0.2 / 2048 * np.arange(at_analysis))
    iq = iq + (rng.standard_normal(at_analysis) + 1j * rng.standard_normal(at_analysis)) * 0.07
    return resample_to(iq.astype(np.complex64), 30.72e6, rate)[:n]


class qa_views_live_and_offline(gr_unittest.TestCase):
    """Every registered view, live and offline: the block, fed in small buffers of odd sizes,
    gives for each window each view as views.compute_view gives it for the capture from where
    that view starts (a view of the past on the stream's grid of snippet groups; NaN for one the
    stream does not reach back to), with the same blind estimates (symbol timing, CFO, occupied
    band)."""

    def check(self, rate):
        chosen = list(VIEWS.values())
        framer = ObservationFramer(chosen, rate)
        samples = lte_like(framer.samples_read + 3 * framer.span, rate)
        tb = gr.top_block()
        source = blocks.vector_source_c(samples, False)
        source.set_max_noutput_items(4099)
        block = lwm_blocks.spectrogram(BUNDLE, rate, views=chosen)
        sink = blocks.vector_sink_f(block.vlen)
        tb.connect(source, block, sink)
        tb.run()
        vectors = np.asarray(sink.data(), np.float32).reshape(-1, block.vlen)
        tags = {}
        for tag in sink.tags():
            tags.setdefault(tag.offset, {})[pmt.symbol_to_string(tag.key)] = tag.value
        self.assertGreaterEqual(len(vectors), 8, f"source rate {rate}")
        ended = np.concatenate([samples, np.zeros(framer.end_needed(0), np.complex64)])
        estimated = 0
        for i, vector in enumerate(vectors):
            start = int(pmt.to_uint64(tags[i]["window_start"]))
            self.assertEqual(start, i * framer.span)
            self.assertNotIn("lwm_invalid", tags[i])
            estimates = pmt.to_python(tags[i]["lwm_estimates"]) if "lwm_estimates" in tags[i] else {}
            parts = []
            for name, params, offset in zip(framer.names, chosen, aligned_offsets(chosen, rate, start)):
                if start + offset < 0:
                    parts.append(np.full(view_shape(params), np.nan, np.float32))
                    continue
                offline = view_output(params, ended[start + offset :], rate)
                parts.append(offline.values)
                self.assertEqual(sorted(estimates.get(name, {})), sorted(offline.estimates), name)
                for key, value in offline.estimates.items():
                    np.testing.assert_array_equal(estimates[name][key], value, err_msg=f"{name} {key} at {rate}")
                    estimated += 1
            np.testing.assert_array_equal(vector, np.concatenate([p.ravel() for p in parts]), err_msg=f"{rate}")
        self.assertGreater(estimated, 0)
        self.assertTrue(np.isnan(vectors[0]).any() and np.isfinite(vectors[-1]).all())

    def test_at_the_analysis_rate(self):
        self.check(30.72e6)

    def test_at_20_ms_per_s(self):
        self.check(20e6)


if __name__ == "__main__":
    gr_unittest.run(qa_spectrogram)
