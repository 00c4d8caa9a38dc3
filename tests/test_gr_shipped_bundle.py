"""The headless synthetic flowgraph (what `lwmspectro demo` runs) with the shipped model, over one
pass of its loop of emissions at 20 dB SNR: it reads every window as the model reads the same
samples offline, and tracks each emission's windows. Whether it keeps up with real time is the
flowgraph benchmark's to measure (`lwmspectro bench flowgraph`), not a test's: here
the receiver waits (replay mode) instead of skipping or dropping windows, so that a busy machine cannot
change what is read.

The loop is three emissions of 16 windows each, whose windows share their emission's channel and
truth: three independent examples, too few to hold the model to its card (for seed 7 the loop's
windows read 19 of 48 right, 30 fresh emissions of the same stream 55 %, one emission 0 to 100 %).
tests/test_shipped_bundle.py holds it to its card on independent held-out examples."""

import time

import numpy as np
import pmt
import pytest
from gnuradio import blocks
from gnuradio.lwmspectro.commands.demo import build_flowgraph
from gnuradio.lwmspectro.synthetic_source import load_loop

from lwmspectro.runtime import BundleError, Runtime, default_bundle_dir
from lwmspectro.synth import SyntheticStream

SNR_DB, SEED = 20.0, 7
WINDOWS = 48
"""One pass of the synthetic source's loop: three emissions of 16 observations."""


@pytest.fixture(scope="module")
def shipped_bundle():
    try:
        return default_bundle_dir()
    except BundleError as err:
        pytest.skip(f"no shipped model bundle yet: {err}")


def test_the_demo_flowgraph_reads_the_loop_as_the_model_does_offline_and_tracks_it(shipped_bundle, capsys):
    top, source, receiver, board = build_flowgraph(str(shipped_bundle), snr_db=SNR_DB, seed=SEED)
    source.refresh = False  # the pass is the loop's cached emissions, read offline below
    receiver.set_drop_when_full(False)
    debug = blocks.message_debug()
    top.msg_connect(receiver, "readout", debug, "store")
    top.start()
    deadline = time.monotonic() + 120
    while board.readouts < WINDOWS and time.monotonic() < deadline:
        time.sleep(0.1)
    source.finish()
    top.wait()
    print(capsys.readouterr().out)
    assert receiver.counters()["windows_dropped"] == 0
    assert board.judged["protocol"] >= WINDOWS and board.judged["tracked_protocol"] == board.judged["protocol"]

    live = {}
    for i in range(debug.num_messages()):
        readout = pmt.to_python(debug.get_message(i))
        live[readout["window_start"]] = readout["protocol"]
    samples, _ = load_loop(SyntheticStream(snr_db=SNR_DB, seed=SEED), WINDOWS)
    offline = Runtime(shipped_bundle).classify_iq(np.concatenate(samples), source.samp_rate)
    assert len(offline) == WINDOWS
    assert [live[r["window_start"]] for r in offline] == [r["protocol"] for r in offline]
