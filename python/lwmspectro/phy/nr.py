"""5G NR downlink (3GPP TS 38.211 / 38.213), numerology mu = 0 (15 kHz) and 1 (30 kHz), one
antenna port, FDD (every slot downlink).

Per slot: a CORESET in symbols 0-1 (QPSK of random bits: PDCCH coding is not modelled), the
PDSCH in symbols 2-13 (mapping type A) over all resource blocks with its DMRS (type 1, port
1000, dmrs-TypeA-Position pos2 plus 0-3 additional positions, one CDM group without data so
PDSCH also fills the odd subcarriers of DMRS symbols), and the SS/PBCH blocks of a half frame
(L_max = 4: case A at 15 kHz, case B at 30 kHz) every 5, 10 or 20 ms: PSS, SSS, PBCH DMRS with
their sequences for the cell ID, and PBCH REs carrying QPSK of random bits (the MIB's polar
coding is not modelled). PDSCH bits are scrambled (38.211 7.3.1.1) and Gray-mapped (5.1).

Coding: LDPC is not applied (coding = "none"); the PDSCH carries uniformly random bits, and the
code rate is the scheduled rate recorded as a label only.

Normal CP: 144 kappa 2^-mu Tc, plus 16 kappa Tc on the first symbol of each half-subframe.
5 MHz is offered at 15 kHz only: 11 RBs at 30 kHz cannot hold the 20-RB SS/PBCH block.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import labels
from .common import (
    PhyWaveform,
    crop,
    finish,
    gold_qpsk,
    gold_sequence,
    modulate,
    n_samples_for,
    ofdm_modulate,
    random_bits,
)

# (mu, bandwidth) -> (N_RB of 38.101-1 Table 5.3.2-1, FFT size); fs = N_FFT x 15 kHz x 2^mu.
NUMEROLOGY = {
    (0, 5e6): (25, 512),
    (0, 10e6): (52, 1024),
    (0, 20e6): (106, 2048),
    (1, 10e6): (24, 512),
    (1, 20e6): (51, 1024),
}
BANDWIDTHS_HZ = (5e6, 10e6, 20e6)
CODE_RATES = {
    "QPSK": ("1/3", "1/2", "2/3"),
    "16QAM": ("1/2", "2/3", "3/4"),
    "64QAM": ("2/3", "3/4", "5/6"),
    "256QAM": ("3/4", "5/6"),
}
SSB_FIRST_SYMBOLS = {0: (2, 8, 16, 22), 1: (4, 8, 16, 20)}  # case A / case B, f <= 3 GHz, in the half frame
DMRS_POSITIONS = {0: (2,), 1: (2, 11), 2: (2, 7, 11), 3: (2, 5, 8, 11)}  # type A, pos2, l_d = 14
SSB_PERIODS_MS = (5, 10, 20)
SSB_RB = 20


def options() -> dict:
    return {
        "bandwidth_hz": list(BANDWIDTHS_HZ),
        "modulation": list(labels.ALLOWED_MODULATIONS["nr"]),
        "code_rate": {m: list(r) for m, r in CODE_RATES.items()},
        "mu": [0, 1],
    }


def _m_sequence(taps: tuple[int, ...], init: tuple[int, ...]) -> np.ndarray:
    """x(0..126) of x(i+7) = sum x(i+t) mod 2 over taps."""
    x = list(init)
    for i in range(120):
        x.append(sum(x[i + t] for t in taps) % 2)
    return np.array(x)


@functools.cache
def pss(n_id2: int) -> np.ndarray:
    """d_PSS(n) = 1 - 2 x((n + 43 N_ID2) mod 127), x(i+7) = x(i+4) + x(i) (38.211 7.4.2.2)."""
    x = _m_sequence((4, 0), (0, 1, 1, 0, 1, 1, 1))
    return (1 - 2 * x[(np.arange(127) + 43 * n_id2) % 127]).astype(np.complex64)


@functools.lru_cache(maxsize=64)
def sss(n_id1: int, n_id2: int) -> np.ndarray:
    """d_SSS(n) of 38.211 7.4.2.3."""
    x0 = _m_sequence((4, 0), (1, 0, 0, 0, 0, 0, 0))
    x1 = _m_sequence((1, 0), (1, 0, 0, 0, 0, 0, 0))
    m0 = 15 * (n_id1 // 112) + 5 * n_id2
    m1 = n_id1 % 112
    n = np.arange(127)
    return ((1 - 2 * x0[(n + m0) % 127]) * (1 - 2 * x1[(n + m1) % 127])).astype(np.complex64)


@functools.lru_cache(maxsize=256)
def pbch_dmrs(cell_id: int, ssb_index: int, half_frame: int) -> np.ndarray:
    """144 QPSK symbols, c_init = 2^11 (i + 1)(N_ID / 4 + 1) + 2^6 (i + 1) + N_ID mod 4, i = i_SSB + 4 n_hf."""
    i = ssb_index + 4 * half_frame
    c_init = 2**11 * (i + 1) * (cell_id // 4 + 1) + 2**6 * (i + 1) + cell_id % 4
    return gold_qpsk(c_init, 144)


@functools.lru_cache(maxsize=8)
def ssb_layout(cell_id: int) -> dict:
    """Masks over the 4 x 240 SS/PBCH block: PSS, SSS, PBCH DMRS (in mapping order) and PBCH data."""
    v = cell_id % 4
    pbch = np.zeros((4, 240), bool)
    pbch[1] = pbch[3] = True
    pbch[2, :48] = pbch[2, 192:] = True
    dmrs = np.zeros((4, 240), bool)
    dmrs[:, v::4] = True
    dmrs &= pbch
    return {"pss": (0, np.arange(56, 183)), "sss": (2, np.arange(56, 183)), "dmrs": dmrs, "data": pbch & ~dmrs}


def pdsch_dmrs(cell_id: int, slot, symbol, n_rb: int) -> np.ndarray:
    """Type-1 DMRS r(m), m = 0..6 N_RB - 1, per slot and symbol (38.211 7.4.1.1, n_SCID = 0)."""
    slot, symbol = np.asarray(slot, np.int64), np.asarray(symbol, np.int64)
    c_init = (2**17 * (14 * slot + symbol + 1) * (2 * cell_id + 1) + 2 * cell_id) % 2**31
    return gold_qpsk(c_init, 6 * n_rb)


@functools.lru_cache(maxsize=32)
def _dmrs_frame(cell_id: int, n_rb: int, mu: int, positions: tuple[int, ...]) -> np.ndarray:
    """(slots per frame, DMRS symbols, 6 N_RB) DMRS values of a frame."""
    slot, symbol = np.meshgrid(np.arange(10 * 2**mu), np.array(positions), indexing="ij")
    return pdsch_dmrs(cell_id, slot, symbol, n_rb)


def generate(
    *,
    bandwidth_hz: float,
    modulation: str,
    code_rate: str,
    duration_s: float,
    rng: np.random.Generator,
    mu: int | None = None,
    cell_id: int | None = None,
    dmrs_additional_position: int | None = None,
    ssb_period_ms: int | None = None,
    **unknown,
) -> PhyWaveform:
    if unknown:
        raise ValueError(
            f"unknown NR options {sorted(unknown)}; valid: mu, cell_id, dmrs_additional_position, ssb_period_ms"
        )
    valid_mu = [m for m in (0, 1) if (m, bandwidth_hz) in NUMEROLOGY]
    mu = int(rng.choice(valid_mu)) if mu is None else mu
    labels.check_choice(f"NR mu at {bandwidth_hz / 1e6:g} MHz", mu, valid_mu)
    cell_id = int(rng.integers(1008)) if cell_id is None else int(cell_id)
    if not 0 <= cell_id < 1008:
        raise ValueError(f"NR cell_id must be 0..1007, got {cell_id}")
    additional = int(rng.integers(4)) if dmrs_additional_position is None else dmrs_additional_position
    labels.check_choice("dmrs_additional_position", additional, tuple(DMRS_POSITIONS))
    ssb_period = int(rng.choice(SSB_PERIODS_MS)) if ssb_period_ms is None else ssb_period_ms
    labels.check_choice("ssb_period_ms", ssb_period, SSB_PERIODS_MS)

    n_rb, n_fft = NUMEROLOGY[(mu, bandwidth_hz)]
    scs = 15e3 * 2**mu
    fs = n_fft * scs
    n_sc = 12 * n_rb
    qm = labels.BITS_PER_SYMBOL[modulation]
    rnti = int(rng.integers(1, 0xFFF0))
    n_id1, n_id2 = divmod(cell_id, 3)
    ssb_rb = int(rng.integers(n_rb - SSB_RB + 1))
    slots_per_frame = 10 * 2**mu

    cp_other = 144 * n_fft // 2048
    cp_first = cp_other + 16 * n_fft * 2**mu // 2048
    group = 7 * 2**mu  # symbols per half subframe; its first symbol has the longer CP
    half_subframe_len = cp_first + n_fft + (group - 1) * (cp_other + n_fft)
    slot_len = half_subframe_len * 14 // group
    n_out = n_samples_for(duration_s, fs)
    start = int(rng.integers(2 * slots_per_frame * slot_len))  # two frames: SFN parity matters for 20 ms
    first_slot, stop_slot = start // slot_len, -(-(start + n_out) // slot_len)
    slots = np.arange(first_slot, stop_slot)
    n_slots = len(slots)
    grid = np.zeros((n_slots, 14, n_sc), np.complex64)

    # SS/PBCH blocks: which slots and symbols carry one, and which PDSCH REs they take.
    ssb_grid_mask = np.zeros((n_slots, 14, n_sc), bool)
    layout = ssb_layout(cell_id)
    ssb_sc = 12 * ssb_rb + np.arange(240)
    half_frame_slots = slots_per_frame // 2
    for i, slot in enumerate(slots):
        half_frame_index = slot // half_frame_slots  # counted from the start of an even frame
        if (half_frame_index * 5) % ssb_period:
            continue
        for ssb_index, first in enumerate(SSB_FIRST_SYMBOLS[mu]):
            if first // 14 != slot % half_frame_slots:
                continue
            l0 = first % 14
            block = np.zeros((4, 240), np.complex64)
            sym, sc = layout["pss"]
            block[sym, sc] = pss(n_id2)
            sym, sc = layout["sss"]
            block[sym, sc] = sss(n_id1, n_id2)
            block[layout["dmrs"]] = pbch_dmrs(cell_id, ssb_index, int(half_frame_index % 2))
            block[layout["data"]] = modulate(random_bits(rng, 2 * int(layout["data"].sum())), "QPSK", "3gpp")
            grid[i, l0 : l0 + 4, ssb_sc] = block.T
            ssb_grid_mask[i, l0 : l0 + 4, 12 * ssb_rb : 12 * (ssb_rb + SSB_RB)] = True

    # CORESET in symbols 0-1 over whole groups of 6 RBs.
    coreset_sc = 12 * 6 * (n_rb // 6)
    grid[:, :2, :coreset_sc] = modulate(random_bits(rng, 2 * n_slots * 2 * coreset_sc), "QPSK", "3gpp").reshape(
        n_slots, 2, coreset_sc
    )

    # PDSCH DMRS on even subcarriers of the DMRS symbols, except where an SS/PBCH block sits.
    positions = DMRS_POSITIONS[additional]
    dmrs_values = _dmrs_frame(cell_id, n_rb, mu, positions)[slots % slots_per_frame]
    dmrs_mask = np.zeros((14, n_sc), bool)
    dmrs_mask[np.array(positions)[:, None], np.arange(0, n_sc, 2)] = True
    for j, l in enumerate(positions):
        free = ~ssb_grid_mask[:, l, 0::2]
        grid[:, l, 0::2] = np.where(free, dmrs_values[:, j], grid[:, l, 0::2])

    # PDSCH: symbols 2..13, every RE that is neither DMRS nor SS/PBCH block; k first, then l.
    pdsch_mask = np.zeros((n_slots, 14, n_sc), bool)
    pdsch_mask[:, 2:] = True
    pdsch_mask &= ~dmrs_mask & ~ssb_grid_mask
    per_slot = pdsch_mask.reshape(n_slots, -1).sum(axis=1)
    scrambling = gold_sequence(rnti * 2**15 + cell_id, int(per_slot.max()) * qm)  # the same in every slot
    bits = random_bits(rng, int(per_slot.sum()) * qm)
    ends = np.cumsum(per_slot) * qm
    for begin, end in zip(ends - per_slot * qm, ends):
        bits[begin:end] ^= scrambling[: end - begin]
    grid[pdsch_mask] = modulate(bits, modulation, "3gpp")

    spectrum = np.zeros((n_slots * 14 // group, group, n_fft), np.complex64)
    k = np.arange(n_sc) - n_sc // 2  # NR has no unused DC subcarrier: the carrier centre falls on k = N_sc / 2
    spectrum[..., np.mod(k, n_fft)] = grid.reshape(-1, group, n_sc)
    iq = ofdm_modulate(spectrum, cp_first, cp_other)
    active = np.ones(len(iq), bool)
    iq, active = finish(*crop(iq, active, start - first_slot * slot_len, n_out))
    meta = {
        "standard": "5G NR downlink",
        "mu": mu,
        "n_rb": n_rb,
        "n_fft": n_fft,
        "cp": [cp_first, cp_other],
        "subcarrier_spacing_hz": scs,
        "cell_id": cell_id,
        "rnti": rnti,
        "ssb_period_ms": ssb_period,
        "ssb_rb_offset": ssb_rb,
        "ssb_case": "A" if mu == 0 else "B",
        "dmrs_symbols": list(positions),
        "start_sample": start,
    }
    return PhyWaveform(
        iq=iq,
        sample_rate_hz=fs,
        active=active,
        protocol="nr",
        bandwidth_hz=bandwidth_hz,
        occupied_bw_hz=n_sc * scs,
        modulation=modulation,
        code_rate=code_rate,
        coding="none",
        meta=meta,
    )
