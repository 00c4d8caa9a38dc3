"""The headless channel example flowgraph (grc/examples/lwm_channels_headless.grc) compiled with
grcc and run on a file of channels of a traced site (tests/fixtures/lwm_sites), with a tiny
channel model bundle: every channel's CLS embedding lands in the output file and its readout is
printed."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_gr_grcc import REPO, compile_flowgraphs

from lwmspectro.lwm_channels import scenario_channels
from lwmspectro.lwm_embed import ChannelEmbedder

from lwm_bundle_factory import ANTENNAS, EMBEDDING_DIM, SUBCARRIERS, make_lwm_bundle

pytestmark = pytest.mark.torch  # the test bundle is trained and exported with torch

SITES = Path(__file__).resolve().parent / "fixtures" / "lwm_sites"


def test_the_example_embeds_a_file_of_traced_channels_and_prints_a_readout_each(tmp_path):
    bundle = make_lwm_bundle(tmp_path / "model")
    site = scenario_channels("street_canyon_3p5ghz", SITES, antennas=ANTENNAS, subcarriers=SUBCARRIERS)
    # Channel estimates as a receiver would hand them over: scaled to its own gain, in a raw file.
    h = (site.channels / np.abs(site.channels).max()).astype(np.complex64)
    h[3] = np.nan
    h.tofile(tmp_path / "channels.c64")
    compiled = compile_flowgraphs([REPO / "grc" / "examples" / "lwm_channels_headless.grc"], tmp_path)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    command = [sys.executable, str(tmp_path / "lwm_channels_headless.py"), "--bundle", str(bundle)]
    command += ["--channels", str(tmp_path / "channels.c64"), "--embeddings", str(tmp_path / "cls.f32")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    cls = np.fromfile(tmp_path / "cls.f32", np.float32).reshape(-1, EMBEDDING_DIM)
    good = np.arange(len(h)) != 3
    np.testing.assert_allclose(cls[good], ChannelEmbedder(bundle).embed(h[good]).cls, rtol=1e-5, atol=1e-6)
    assert np.isnan(cls[3]).all()
    readouts = [line for line in result.stdout.splitlines() if "(channels_invalid" in line]
    assert len(readouts) == len(h)
    assert sum("(invalid_reason . nan_or_inf)" in line for line in readouts) == 1
    assert sum("(los . los)" in line or "(los . nlos)" in line for line in readouts) == len(h) - 1
