"""Protocol-compliant transmit waveforms (numpy/scipy only): 802.11a/g/ac WiFi, LTE and 5G NR
downlink, and `other` signals (CW, single-carrier PSK/QAM bursts, FM, OFDM of a non-standard
numerology, chirps) for the negative class.

    wf = generate("lte", bandwidth_hz=20e6, modulation="64QAM", code_rate="3/4",
                  duration_s=0.016, rng=np.random.default_rng(0))

Every waveform is at its protocol's native sample rate, has unit mean power over the samples
where the transmitter is on, starts at a random point of its frame structure and is the same
for the same generator state. What the standards leave free is drawn per waveform (cell load
and PDSCH allocations, DMRS and SS/PBCH configurations, packet lengths and gaps) and recorded,
summarised, in `meta`.
"""

from __future__ import annotations

import numpy as np

from .. import labels
from . import lte, nr, other, wifi
from .common import PhyWaveform

__all__ = ["PhyWaveform", "generate", "options"]

_CHAINS = {"wifi": wifi, "lte": lte, "nr": nr}


def options(protocol: str) -> dict:
    """What the standard allows: {"bandwidth_hz": [...], "modulation": [...], "code_rate": {mod: [...]}}.

    For "other" the lists describe the negative kinds (see other.options()).
    """
    labels.check_choice("protocol", protocol, labels.PROTOCOLS + ("other",))
    return other.options() if protocol == "other" else _CHAINS[protocol].options()


def generate(
    protocol: str,
    *,
    bandwidth_hz: float | None = None,
    modulation: str | None = None,
    code_rate: str | None = None,
    duration_s: float = 0.016,
    rng: np.random.Generator,
    kind: str | None = None,
    **standard_opts,
) -> PhyWaveform:
    """One waveform; None for bandwidth / modulation / code rate draws one the standard allows."""
    labels.check_choice("protocol", protocol, labels.PROTOCOLS + ("other",))
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if protocol == "other":
        return other.generate(
            kind=kind,
            bandwidth_hz=bandwidth_hz,
            modulation=modulation,
            code_rate=code_rate,
            duration_s=duration_s,
            rng=rng,
            **standard_opts,
        )
    if kind is not None:
        raise ValueError(f"kind applies to protocol 'other' only; valid kinds: {', '.join(labels.OTHER_KINDS)}")
    allowed = options(protocol)
    if bandwidth_hz is None:
        bandwidth_hz = float(rng.choice(allowed["bandwidth_hz"]))
    labels.check_choice(f"{protocol} bandwidth_hz", bandwidth_hz, allowed["bandwidth_hz"])
    if modulation is None:
        modulation = str(rng.choice(allowed["modulation"]))
    labels.check_modulation(protocol, modulation)
    rates = allowed["code_rate"][modulation]
    if code_rate is None:
        code_rate = str(rng.choice(rates))
    labels.check_choice(f"{protocol} {modulation} code rate", code_rate, rates)
    return _CHAINS[protocol].generate(
        bandwidth_hz=float(bandwidth_hz),
        modulation=modulation,
        code_rate=code_rate,
        duration_s=duration_s,
        rng=rng,
        **standard_opts,
    )
