"""The LWM Synthetic Source at real time: its loop of emissions is cached per generator setting and
seed, it keeps to the sample rate, and its worker replaces the looped emissions with fresh whole
ones, each observation with its emission's truth tag."""

import time

import gnuradio.lwmspectro as lwm_blocks
import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr
from gnuradio.lwmspectro.synthetic_source import cache_dir

from lwmspectro.spectrogram import DEFAULT_PARAMS
from lwmspectro.synth import SyntheticStream

TWO_OBSERVATIONS_S = 2 * DEFAULT_PARAMS.window_seconds
"""An emission two observations long: the shortest that shows one going on across observations."""


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LWMSPECTRO_CACHE", str(tmp_path))
    return tmp_path


class TruthSink(gr.sync_block):
    """Keeps the offset and truth of every lwm_truth tag, and no samples."""

    def __init__(self):
        gr.sync_block.__init__(self, name="truth_sink", in_sig=[np.complex64], out_sig=None)
        self.truths = []

    def work(self, input_items, output_items):
        for tag in self.get_tags_in_window(0, 0, len(input_items[0]), pmt.intern("lwm_truth")):
            self.truths.append((tag.offset, pmt.to_python(tag.value)))
        return len(input_items[0])


def run_source(source, samples: int) -> tuple[np.ndarray, list]:
    top = gr.top_block()
    sink = blocks.vector_sink_c()
    top.connect(source, blocks.head(gr.sizeof_gr_complex, samples), sink)
    top.run()
    truths = [pmt.to_python(tag.value) for tag in sink.tags() if pmt.symbol_to_string(tag.key) == "lwm_truth"]
    return np.asarray(sink.data(), np.complex64), truths


def test_the_loop_is_the_seeded_sequence_of_emissions_and_a_second_start_reads_it_from_the_cache():
    settings = dict(snr_db=10.0, seed=5, emission_s=TWO_OBSERVATIONS_S)
    source = lwm_blocks.synthetic_source(**settings, loop_emissions=1, realtime=False, refresh=False)
    assert len(list(cache_dir().glob("*.npy"))) == 1
    assert source.emission_observations == 2
    expected = SyntheticStream(**settings)
    first, first_truth = expected.next_observation()
    second, second_truth = expected.next_observation()
    samples, truths = run_source(source, 3 * source.observation_samples)
    n = source.observation_samples
    np.testing.assert_array_equal(samples[:n], first)
    np.testing.assert_array_equal(samples[n : 2 * n], second)
    np.testing.assert_array_equal(samples[2 * n :], first)
    assert first_truth == second_truth, "one emission, one truth"
    assert [truth["seed"] for truth in truths] == [first_truth["seed"]] * 3

    started = time.monotonic()
    again = lwm_blocks.synthetic_source(**settings, loop_emissions=1, realtime=False, refresh=False)
    assert time.monotonic() - started < 0.5
    np.testing.assert_array_equal(run_source(again, n)[0], first)
    lwm_blocks.synthetic_source(snr_db=10.0, seed=5, emission_s=DEFAULT_PARAMS.window_seconds, refresh=False)
    assert len(list(cache_dir().glob("*.npy"))) == 2, "another emission length, another loop"


def test_it_keeps_to_the_sample_rate():
    source = lwm_blocks.synthetic_source(
        protocol="none", seed=1, emission_s=DEFAULT_PARAMS.window_seconds, loop_emissions=1, refresh=False
    )
    seconds = 0.3
    top = gr.top_block()
    head = blocks.head(gr.sizeof_gr_complex, int(seconds * source.samp_rate))
    top.connect(source, head, blocks.null_sink(gr.sizeof_gr_complex))
    started = time.monotonic()
    top.run()
    assert seconds * 0.9 < time.monotonic() - started < seconds * 3


def test_the_worker_replaces_looped_emissions_with_fresh_whole_ones_and_their_truth():
    source = lwm_blocks.synthetic_source(snr_db=20.0, seed=2, emission_s=TWO_OBSERVATIONS_S, loop_emissions=1)
    n = source.observation_samples
    top = gr.top_block()
    sink = TruthSink()
    top.connect(source, sink)
    top.start()
    deadline = time.monotonic() + 60
    while source.fresh_observations < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    source.finish()
    top.wait()
    assert source.fresh_observations >= 4
    assert [offset for offset, _ in sink.truths] == [i * n for i in range(len(sink.truths))]
    seeds = [truth["seed"] for _, truth in sink.truths]
    emissions = [seeds[i : i + 2] for i in range(0, len(seeds) - 1, 2)]
    assert all(a == b for a, b in emissions), f"each emission plays whole: {seeds}"
    assert len(set(seeds)) >= 3, "the looped emission and at least two fresh ones"
