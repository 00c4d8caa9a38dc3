"""QA for the LWM Channel Embedder block: CLS embeddings of channel-estimate vectors as the core
computes them, a readout per channel with its LoS/NLoS class, bad channels marked, bad parameters
named. The tiny channel model bundle is made by the test itself (lwm_bundle_factory)."""

import json
import shutil
import tempfile
from pathlib import Path

import gnuradio.lwmspectro as lwm_blocks
import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr, gr_unittest
from gnuradio.lwmspectro.common import ConfigError

from lwmspectro.lwm_channels import paths_channels, random_paths
from lwmspectro.lwm_embed import CHANNEL_READOUT_FIELDS, LOS_CLASSES, ChannelEmbedder, write_card

from lwm_bundle_factory import ANTENNAS, EMBEDDING_DIM, SUBCARRIERS, make_lwm_bundle

pytestmark = pytest.mark.torch  # the test bundle is trained and exported with torch

VLEN = ANTENNAS * SUBCARRIERS


def setUpModule():
    global BUNDLE, HEADLESS, EMBEDDER, _FOLDER
    _FOLDER = tempfile.mkdtemp(prefix="lwm-channel-qa-")
    BUNDLE = make_lwm_bundle(_FOLDER)
    EMBEDDER = ChannelEmbedder(BUNDLE, threads=1)
    # The same encoder without its LoS head: the card rewritten without it.
    HEADLESS = Path(_FOLDER) / "headless"
    shutil.copytree(BUNDLE, HEADLESS)
    (HEADLESS / "los_head.onnx").unlink()
    card = json.loads((HEADLESS / "card.json").read_text())
    del card["files"]["los_head"], card["los_head"]
    write_card(HEADLESS, card)


def tearDownModule():
    shutil.rmtree(_FOLDER, ignore_errors=True)


def channels(users, seed=0):
    paths, _ = random_paths(np.random.default_rng(seed), users)
    return paths_channels(paths, antennas=ANTENNAS, subcarriers=SUBCARRIERS, bandwidth_hz=5e6)


def run_embedder(h, bundle=None):
    """(CLS vectors out, readout dicts) of the block fed the channels `h` (users, M, N)."""
    tb = gr.top_block()
    block = lwm_blocks.channel_embedder(EMBEDDER if bundle is None else bundle, VLEN, EMBEDDING_DIM)
    sink = blocks.vector_sink_f(EMBEDDING_DIM)
    debug = blocks.message_debug()
    tb.connect(blocks.vector_source_c(np.asarray(h, np.complex64).ravel().tolist(), False, VLEN), block, sink)
    tb.msg_connect(block, "readout", debug, "store")
    tb.run()
    cls = np.asarray(sink.data(), np.float32).reshape(-1, EMBEDDING_DIM)
    return cls, [pmt.to_python(debug.get_message(i)) for i in range(debug.num_messages())]


class qa_channel_embedder(gr_unittest.TestCase):
    def test_each_channel_gives_its_cls_embedding_and_a_readout_with_its_los_class(self):
        h = channels(12)
        cls, readouts = run_embedder(h)
        expected = EMBEDDER.embed(h).cls
        np.testing.assert_allclose(cls, expected, rtol=1e-5, atol=1e-6)
        probabilities = EMBEDDER.los_probabilities(expected)
        self.assertEqual(len(readouts), 12)
        for user, readout in enumerate(readouts):
            self.assertEqual(tuple(sorted(readout)), tuple(sorted(CHANNEL_READOUT_FIELDS)))
            self.assertEqual((readout["user"], readout["valid"], readout["invalid_reason"]), (user, True, None))
            self.assertEqual(readout["los"], LOS_CLASSES[int(np.argmax(probabilities[user]))])
            self.assertAlmostEqual(readout["los_confidence"], float(probabilities[user].max()), places=5)
            self.assertEqual((readout["channels_seen"], readout["channels_invalid"]), (user + 1, 0))

    def test_nan_all_zero_and_out_of_scale_channels_are_marked_and_the_others_still_embedded(self):
        h = channels(7, seed=1)
        h[1, 2, 3] = np.nan
        h[4] = 0
        h[6] *= 1e12  # far beyond the pretraining channels' scale: its float32 embedding would overflow
        cls, readouts = run_embedder(h)
        self.assertTrue(np.isnan(cls[[1, 4, 6]]).all())
        good = [0, 2, 3, 5]
        np.testing.assert_allclose(cls[good], EMBEDDER.embed(h[good]).cls, rtol=1e-5, atol=1e-6)
        self.assertEqual(
            [r["invalid_reason"] for r in readouts], [None, "nan_or_inf", None, None, "all_zero", None, "out_of_range"]
        )
        self.assertEqual([r["valid"] for r in readouts], [True, False, True, True, False, True, False])
        self.assertIsNone(readouts[1]["los"])
        self.assertIsNone(readouts[4]["los_confidence"])
        self.assertEqual(readouts[-1]["channels_invalid"], 3)

    def test_a_bundle_without_a_los_head_reads_out_no_class(self):
        h = channels(3, seed=2)
        cls, readouts = run_embedder(h, bundle=str(HEADLESS / "card.json"))
        np.testing.assert_allclose(cls, EMBEDDER.embed(h).cls, rtol=1e-5, atol=1e-6)
        self.assertEqual([(r["valid"], r["los"], r["los_confidence"]) for r in readouts], [(True, None, None)] * 3)

    def test_parameters_that_cannot_work_name_the_block_the_value_and_the_fix(self):
        with self.assertRaisesRegex(ConfigError, rf"LWM Channel Embedder: vector length 1024 .* = {VLEN}"):
            lwm_blocks.channel_embedder(EMBEDDER, 1024)
        with self.assertRaisesRegex(ConfigError, rf"embedding size 64 .* bundle's {EMBEDDING_DIM}"):
            lwm_blocks.channel_embedder(EMBEDDER, 0, 64)
        with self.assertRaisesRegex(ConfigError, "no channel model bundle given"):
            lwm_blocks.channel_embedder("")
        with self.assertRaisesRegex(ConfigError, "cannot be used: .*card.json"):
            lwm_blocks.channel_embedder(_FOLDER)

    def test_a_stream_of_other_vectors_is_refused_when_connected(self):
        tb = gr.top_block()
        block = lwm_blocks.channel_embedder(EMBEDDER)
        with self.assertRaisesRegex(ValueError, "itemsize mismatch"):
            tb.connect(blocks.vector_source_c([0j] * 2 * (VLEN + 1), False, VLEN + 1), block)


if __name__ == "__main__":
    gr_unittest.run(qa_channel_embedder)
