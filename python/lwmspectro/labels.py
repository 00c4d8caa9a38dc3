"""The label sets, defined once for the generator, the model and the readouts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROTOCOLS = ("wifi", "lte", "nr")
"""Protocols with an expert encoder."""

NEGATIVES = ("none", "other")
"""Router outcomes that are not a protocol: receiver noise only, or a foreign signal."""

ROUTER_CLASSES = PROTOCOLS + NEGATIVES
"""What the router (and the readout's `protocol` field) can say."""

OTHER_KINDS = ("cw", "sc_psk", "sc_qam", "fm", "ofdm_other", "chirp")
"""Signals the generator makes for the `other` class."""

MODULATIONS = ("BPSK", "QPSK", "16QAM", "64QAM", "256QAM")

BITS_PER_SYMBOL = {"BPSK": 1, "QPSK": 2, "16QAM": 4, "64QAM": 6, "256QAM": 8}

ALLOWED_MODULATIONS = {
    # 802.11a/g carries BPSK..64QAM; 256QAM comes from the 802.11ac VHT MCS 8/9.
    "wifi": ("BPSK", "QPSK", "16QAM", "64QAM", "256QAM"),
    # LTE PDSCH (36.211 Table 7.1-x): QPSK..256QAM.
    "lte": ("QPSK", "16QAM", "64QAM", "256QAM"),
    # NR PDSCH (38.211 Table 7.3.1.2-1): QPSK..256QAM; pi/2-BPSK exists only on the uplink.
    "nr": ("QPSK", "16QAM", "64QAM", "256QAM"),
}

MOBILITY_CLASSES = ("static", "pedestrian", "vehicular")

MOBILITY_DOPPLER_EDGES_HZ = (1.0, 40.0)
"""Mobility is a class of the channel's maximum Doppler fD, the one thing a receiver can see of
motion: static below 1 Hz, pedestrian from 1 to 40 Hz, vehicular from 40 Hz. At the carriers
the product meets (0.4-6 GHz) walking (3-10 km/h) gives 1-55 Hz and driving (30-120 km/h)
22-670 Hz; a speed alone does not fix the class, the speed and the carrier together do."""

DOPPLER_RANGES_HZ = {
    "static": (0.0, 0.5),
    "pedestrian": (1.5, 35.0),
    "vehicular": (45.0, 600.0),
}
"""fD the generator draws per mobility class (Hz, log-uniform above 0): inside the class's
edges with a margin, so that a label is never a coin toss between two classes."""


def mobility_of_doppler(doppler_hz: float) -> str:
    """The mobility class of a maximum Doppler fD (Hz), by MOBILITY_DOPPLER_EDGES_HZ."""
    low, high = MOBILITY_DOPPLER_EDGES_HZ
    if not np.isfinite(doppler_hz) or doppler_hz < 0:
        raise ValueError(f"Doppler must be a finite, non-negative number of Hz, got {doppler_hz}")
    return "static" if doppler_hz < low else "pedestrian" if doppler_hz < high else "vehicular"


SNR_GRID_DB = (-5, 0, 5, 10, 15, 20, 25)
"""Default SNR grid; SNR is signal power over noise power within the occupied bandwidth."""

SNR_RANGE_DB = (-30.0, 60.0)
"""SNRs the generator accepts."""

SNR_MOBILITY_CLASSES = tuple((snr, mob) for snr in SNR_GRID_DB for mob in MOBILITY_CLASSES)
"""Joint SNR x mobility classes of the SNR x mobility head, SNR-major."""


def snr_bin_index(snr_db, grid: Sequence[float] = SNR_GRID_DB):
    """Index into `grid` of the SNR nearest to `snr_db` (a number or an array of them), the
    first of two equally near: the one rule that puts a measured SNR into a bin."""
    distance = np.abs(np.asarray(snr_db, float)[..., None] - np.asarray(grid, float))
    index = distance.argmin(axis=-1)
    return int(index) if index.ndim == 0 else index


def nearest_snr_bin(snr_db, grid: Sequence[float] = SNR_GRID_DB):
    """The SNR of `grid` nearest to `snr_db` (a number or an array of them; see `snr_bin_index`)."""
    values = np.asarray(grid, float)[snr_bin_index(snr_db, grid)]
    return float(values) if values.ndim == 0 else values


def snr_mobility_index(snr_db: float, mobility: str) -> int:
    """Index of the joint class whose SNR bin is nearest to `snr_db`."""
    return snr_bin_index(snr_db) * len(MOBILITY_CLASSES) + MOBILITY_CLASSES.index(mobility)


def check_choice(kind: str, value, valid) -> None:
    """Raise a ValueError naming the valid choices when `value` is not among them."""
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid choices: {', '.join(map(str, valid))}")


def check_modulation(protocol: str, modulation: str) -> None:
    """Refuse a modulation the protocol's standard does not allow, listing those it does."""
    check_choice("protocol", protocol, PROTOCOLS)
    allowed = ALLOWED_MODULATIONS[protocol]
    if modulation not in allowed:
        raise ValueError(f"{protocol} does not carry {modulation!r}; valid choices: {', '.join(allowed)}")
