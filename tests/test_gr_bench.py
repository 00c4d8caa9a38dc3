"""`lwmspectro bench flowgraph`'s memory figure: the receiver alone, in a process of its own."""

import numpy as np
import pytest
from gnuradio.lwmspectro.benchmarks.flowgraph import receiver_alone_peak_mb

from lwmspectro.runtime import BundleError, Runtime, default_bundle_dir


def test_the_receivers_memory_is_its_own_not_that_of_the_process_that_measures_it():
    """A spawned child inherits its parent's peak through getrusage: the figure must not."""
    try:
        bundle = str(default_bundle_dir())
    except BundleError as err:
        pytest.skip(f"no shipped model bundle yet: {err}")
    rate = Runtime(bundle).params.sample_rate_hz
    noise = (np.random.default_rng(0).standard_normal((2, int(0.05 * rate))) * 0.1).astype(np.float32)
    held = np.ones(1536 * 2**20 // 8, np.complex64)  # 1.5 GB resident here while the child runs
    peak_mb, classified = receiver_alone_peak_mb(bundle, (noise[0] + 1j * noise[1]).astype(np.complex64), 3.0)
    assert classified >= 1
    assert 50 < peak_mb < 1536 - 100, f"{peak_mb:.0f} MB"
    del held
