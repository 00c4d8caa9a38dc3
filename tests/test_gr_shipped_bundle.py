"""The headless synthetic flowgraph (what `lwmspectro demo` runs) with the shipped model reads
out the protocol of fresh synthetic signals at 20 dB SNR with the accuracy its card reports at
20 dB on the held-out site (`metrics.held_out.per_snr_db`, measured on today's generator)."""

import math
import time

import pytest
from gnuradio.lwmspectro.commands.demo import build_flowgraph

from lwmspectro.bundle import load_bundle
from lwmspectro.runtime import BundleError, default_bundle_dir

WINDOWS = 32
"""One pass of the synthetic source's loop of observations."""
SIGMAS = 3
"""Allowed shortfall against the card, in binomial standard deviations of the windows judged:
about what the former fixed 85 % allowed below 98 % over 9 windows. At the card's 61 % and 32
windows that is about 0.26 (the looped observations of seed 7 read 15 of 32 right offline;
600 fresh ones of the same stream at 20 dB, 63 %)."""


@pytest.fixture(scope="module")
def shipped_bundle():
    try:
        return default_bundle_dir()
    except BundleError as err:
        pytest.skip(f"no shipped model bundle yet: {err}")


def test_shipped_model_reads_out_the_protocol_of_synthetic_signals(shipped_bundle, capsys):
    stated = load_bundle(shipped_bundle).metrics["held_out"]["per_snr_db"]["20"]["router_accuracy"]
    top, source, receiver, board = build_flowgraph(str(shipped_bundle), snr_db=20.0, seed=7)
    top.start()
    deadline = time.monotonic() + 120
    while board.readouts < WINDOWS and time.monotonic() < deadline:
        time.sleep(0.1)
    source.finish()
    top.wait()
    print(capsys.readouterr().out)
    judged = board.judged["protocol"]
    assert judged >= WINDOWS
    allowed = stated - SIGMAS * math.sqrt(stated * (1 - stated) / judged)
    assert board.correct["protocol"] / judged >= allowed, f"{board.summary()}; card {stated:.1%}, allowed {allowed:.1%}"
    assert receiver.counters()["windows_dropped"] == 0
