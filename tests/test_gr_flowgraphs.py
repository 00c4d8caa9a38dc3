"""The headless example flowgraphs that need no hardware run (synthetic, SigMF replay, ZMQ), with a
tiny bundle. (tests/test_gr_grcc.py compiles all of them, the hardware ones included.)"""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from test_gr_grcc import REPO, compile_flowgraphs

from lwmspectro.sigmf_io import write_recording
from lwmspectro.spectrogram import SpectrogramParams

from bundle_factory import make_bundle

PARAMS = SpectrogramParams(sample_rate_hz=1e6, n_fft=32, hop=64, n_frames=32, n_bins=16)
HEADLESS = ("lwm_synthetic_headless", "lwm_sigmf_replay_headless", "lwm_zmq_headless")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("grcc")
    result = compile_flowgraphs([REPO / "grc" / "examples" / f"{name}.grc" for name in HEADLESS], out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle"), params=PARAMS)


def run_flowgraph(path: Path, *args, timeout=120, **kwargs):
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def test_headless_synthetic_prints_readouts_beside_the_truth(compiled, bundle):
    out = compiled
    result = run_flowgraph(out / "lwm_synthetic_headless.py", "--bundle", str(bundle), "--windows", "2")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("@")]
    span = PARAMS.window_samples * 768 // 25  # 30.72 MS/s source, 1 MS/s bundle
    # The source plays at real time, and the receiver skips to the newest window when it falls
    # two 2 ms windows behind, as a live one does: how many it reads depends on how busy the
    # machine is (`lwmspectro bench flowgraph` measures that), never more than the stream holds.
    every_window = (2 * 487808 - span) // span + 1
    assert 2 <= len(lines) <= every_window
    assert all("| truth " in line for line in lines)
    assert any(" wifi " in line.split("| truth")[1] for line in lines)


def test_headless_sigmf_replay_prints_and_annotates_every_window(compiled, bundle, tmp_path):
    out = compiled
    rng = np.random.default_rng(0)
    iq = rng.standard_normal(4 * PARAMS.window_samples) + 1j * rng.standard_normal(4 * PARAMS.window_samples)
    meta = write_recording(tmp_path / "rec", iq.astype(np.complex64), PARAMS.sample_rate_hz, 2.4e9)
    result = run_flowgraph(out / "lwm_sigmf_replay_headless.py", "--bundle", str(bundle), "--recording", str(meta))
    assert result.returncode == 0, result.stderr
    assert len([line for line in result.stdout.splitlines() if line.startswith("@")]) == 4
    annotations = json.loads(meta.read_text())["annotations"]
    assert [a["core:sample_start"] for a in annotations] == [i * PARAMS.window_samples for i in range(4)]


def test_headless_zmq_reads_iq_from_a_publisher_and_publishes_json_readouts(compiled, bundle):
    out = compiled
    context = zmq.Context.instance()
    iq_pub = context.socket(zmq.PUB)
    iq_port = iq_pub.bind_to_random_port("tcp://127.0.0.1")
    readouts = context.socket(zmq.SUB)
    readouts.setsockopt(zmq.SUBSCRIBE, b"")
    readouts.setsockopt(zmq.RCVTIMEO, 30000)
    readout_port = readouts.bind_to_random_port("tcp://127.0.0.1")
    readouts.unbind(f"tcp://127.0.0.1:{readout_port}")
    process = subprocess.Popen(
        [
            sys.executable,
            str(out / "lwm_zmq_headless.py"),
            "--bundle",
            str(bundle),
            "--samp-rate",
            "1e6",
            "--address",
            f"tcp://127.0.0.1:{iq_port}",
            "--readouts",
            f"tcp://127.0.0.1:{readout_port}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sending = threading.Event()
    sending.set()

    def publish():
        rng = np.random.default_rng(1)
        while sending.is_set():
            chunk = (rng.standard_normal(4096) + 1j * rng.standard_normal(4096)).astype(np.complex64)
            iq_pub.send(chunk.tobytes())
            time.sleep(0.002)

    publisher = threading.Thread(target=publish, daemon=True)
    try:
        readouts.connect(f"tcp://127.0.0.1:{readout_port}")
        publisher.start()
        received = [json.loads(readouts.recv_string()) for _ in range(2)]
        stdout, stderr = process.communicate("\n", timeout=60)
    finally:
        sending.clear()
        publisher.join()
        if process.poll() is None:
            process.kill()
        iq_pub.close()
        readouts.close()
    assert process.returncode == 0, stderr
    assert all(r["valid"] and r["protocol"] == "none" for r in received)
    assert received[1]["window_start"] > received[0]["window_start"]
    assert len([line for line in stdout.splitlines() if "@" in line]) >= 2
