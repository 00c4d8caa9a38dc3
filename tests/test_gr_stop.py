"""Ctrl-C and SIGTERM stop `lwmspectro run` and `lwmspectro demo` cleanly: exit 130 (143), the
summary printed, the annotations written whole; a process is started per case."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
from sigmf.sigmffile import fromfile

from lwmspectro.sigmf_io import write_recording
from lwmspectro.spectrogram import SpectrogramParams

from bundle_factory import make_bundle

PARAMS = SpectrogramParams(sample_rate_hz=1e6, n_fft=32, hop=64, n_frames=32, n_bins=16)
HOP = 64
"""Windows every 64 samples: a small recording then takes seconds to read out, long enough to interrupt."""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return str(make_bundle(tmp_path_factory.mktemp("bundle"), params=PARAMS))


@pytest.fixture
def recording(tmp_path):
    rng = np.random.default_rng(0)
    n = 400_000
    iq = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    return write_recording(tmp_path / "rec", iq, PARAMS.sample_rate_hz, 2.4e9, labels={"protocol": "none"})


def interrupt_after_first_readout(command: list[str], number: int = signal.SIGINT) -> tuple[int, str, str]:
    """Start `lwmspectro COMMAND`, send the signal once the first readout line is out; (exit
    status, stdout, stderr)."""
    # Unbuffered: readline() then reads up to the newline and no further, so that what follows
    # reaches communicate(), which reads the pipe itself (a buffered reader's read-ahead, often
    # ending inside a line, would be lost).
    process = subprocess.Popen(
        [sys.executable, "-m", "lwmspectro.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    first = b""
    while not first.startswith((b"{", b"@")):
        first = process.stdout.readline()
        if not first:
            break
    process.send_signal(number)
    out, err = process.communicate(timeout=60)
    return process.returncode, (first + out).decode(), err.decode()


def run_annotate_and_interrupt(bundle, recording, number=signal.SIGINT):
    command = ["run", "--source", f"sigmf:{recording}", "--bundle", bundle, "--json", "--annotate", "--hop", str(HOP)]
    status, out, err = interrupt_after_first_readout(command, number)
    assert "terminate called" not in err and "Traceback" not in err, err
    assert status == 128 + number, err
    printed = [json.loads(line) for line in out.splitlines()]  # stdout holds readouts only
    assert printed and "lwmspectro run: " in err and "(stopped by a signal)" in err
    meta = json.loads(recording.read_text())
    ours = [a for a in meta["annotations"] if a.get("core:generator") == "gr-lwmspectro"]
    starts = [a["core:sample_start"] for a in ours]
    assert ours and starts == sorted(starts) and all(start % HOP == 0 for start in starts)
    assert starts[-1] < 400_000 - PARAMS.window_samples  # stopped before the end of the recording
    assert len(fromfile(str(recording)).get_annotations()) == len(ours)


def test_ctrl_c_stops_run_with_the_summary_and_the_annotations_written(bundle, recording):
    run_annotate_and_interrupt(bundle, recording)


def test_sigterm_stops_run_the_same_way(bundle, recording):
    run_annotate_and_interrupt(bundle, recording, signal.SIGTERM)


@pytest.mark.slow
def test_ctrl_c_stops_run_cleanly_every_time(bundle, tmp_path):
    for attempt in range(4):
        rng = np.random.default_rng(attempt)
        iq = (rng.standard_normal(400_000) + 1j * rng.standard_normal(400_000)).astype(np.complex64)
        recording = write_recording(tmp_path / f"rec{attempt}", iq, PARAMS.sample_rate_hz, 2.4e9)
        run_annotate_and_interrupt(bundle, recording)


def test_ctrl_c_stops_demo_with_its_accuracy_and_throughput(bundle):
    status, out, err = interrupt_after_first_readout(["demo", "--seconds", "60", "--bundle", bundle])
    assert "terminate called" not in err and "Traceback" not in err, err
    assert status == 130, err
    assert "--- " in out and "throughput: " in out and "(stopped by a signal)" in out
