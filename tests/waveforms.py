"""Signals as transmitted, shared by the tests of the dynamics views."""

import numpy as np

from lwmspectro import phy


def clean_waveform(protocol, seed, **options):
    """135 ms of a 20 MHz 16QAM signal as transmitted: no channel, no noise, nothing moves."""
    return phy.generate(
        protocol,
        bandwidth_hz=20e6,
        modulation="16QAM",
        code_rate="1/2",
        duration_s=0.135,
        rng=np.random.default_rng(seed),
        **options,
    )
