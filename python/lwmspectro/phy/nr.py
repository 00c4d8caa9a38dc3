"""5G NR downlink (3GPP TS 38.211 / 38.213 / 38.214), numerology mu = 0 (15 kHz) and 1 (30 kHz),
one antenna port, FDD (every slot downlink).

Per slot: in half of the waveforms, a CORESET of 1-3 symbols over whole groups of 6 RBs,
carrying PDCCH (QPSK of random bits: PDCCH coding is not modelled) in some of its groups in every
slot that schedules PDSCH and in half of the others, the PDSCH starting on the symbol after it; in
the others no PDCCH (a PDSCH-only waveform, as test generators and the control region of another
cell's scheduling leave it), the PDSCH starting on symbol 0-3 and the symbols before it empty; the
PDSCH (mapping type A) to the end of the slot on the resource blocks the scheduler allocates, with
its DMRS on those RBs only (configuration type 1 or 2, port 1000, dmrs-TypeA-Position pos2 or
pos3 plus 0-3 additional positions per Table 7.4.1.1.2-3, and 1 or 2 CDM groups without data for
type 1, 1-3 for type 2 (38.214 5.1.6.2: DCI format 1_0 uses 2): the REs of the groups other than
port 1000's stay empty and the DMRS is boosted by beta_DMRS of 38.214 Table 4.1-1, 0 / 3 / 4.77
dB; with one group PDSCH fills the other REs of DMRS symbols); and the SS/PBCH blocks of a half
frame (L_max = 4: case A at 15 kHz, case B at 30 kHz, a random ssb-PositionsInBurst) every 5, 10
or 20 ms in a random half frame of the period: PSS, SSS, PBCH DMRS with their sequences for the
cell ID, and PBCH REs carrying QPSK of random bits (the MIB's polar coding is not modelled). A
16 ms window thus sometimes holds no SS/PBCH block. The cell's load is drawn per waveform (see
common.schedule_pdsch): from a few RBs in a few slots, contiguous (allocation type 1) or in
scattered resource block groups (type 0), to every RB of every slot. PDSCH bits are scrambled
(38.211 7.3.1.1) and Gray-mapped (5.1).

Coding: every slot with PDSCH carries one LDPC-coded transport block (ldpc.py, 38.212 7.2): its
size from 38.214 5.1.3.2 for the slot's PRBs at the labelled code rate, CRC, segmentation, LDPC
and rv-0 rate matching to the slot's PDSCH REs, which SS/PBCH blocks may reduce.

Normal CP: 144 kappa 2^-mu Tc, plus 16 kappa Tc on the first symbol of each half-subframe.
Channel bandwidths 5, 10, 15 and 20 MHz (38.101-1 Table 5.3.2-1); 5 MHz is offered at 15 kHz
only: 11 RBs at 30 kHz cannot hold the 20-RB SS/PBCH block.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

from .. import labels
from . import ldpc
from .common import (
    PhyWaveform,
    check_load,
    crop,
    draw_load,
    finish,
    gold_qpsk,
    gold_sequence,
    modulate,
    n_samples_for,
    ofdm_modulate,
    random_bits,
    schedule_pdsch,
    traffic_meta,
)

# (mu, bandwidth) -> (N_RB of 38.101-1 Table 5.3.2-1, FFT size); fs = N_FFT x 15 kHz x 2^mu.
NUMEROLOGY = {
    (0, 5e6): (25, 512),
    (0, 10e6): (52, 1024),
    (0, 15e6): (79, 1536),
    (0, 20e6): (106, 2048),
    (1, 10e6): (24, 512),
    (1, 15e6): (38, 768),
    (1, 20e6): (51, 1024),
}
BANDWIDTHS_HZ = (5e6, 10e6, 15e6, 20e6)
CODE_RATES = {
    "QPSK": ("1/3", "1/2", "2/3"),
    "16QAM": ("1/2", "2/3", "3/4"),
    "64QAM": ("2/3", "3/4", "5/6"),
    "256QAM": ("3/4", "5/6"),
}
SSB_FIRST_SYMBOLS = {0: (2, 8, 16, 22), 1: (4, 8, 16, 20)}  # case A / case B, f <= 3 GHz, in the half frame
DMRS_TYPE_A_POSITIONS = (2, 3)
DMRS_ADDITIONAL_POSITIONS = (0, 1, 2, 3)
DMRS_CONFIG_TYPES = (1, 2)
CDM_GROUPS = {1: (1, 2), 2: (1, 2, 3)}
"""CDM groups without data each DMRS configuration type allows (38.212 Tables 7.3.1.2.2-1..4)."""
PDCCH_PROBABILITY = 0.5
"""Share of waveforms whose slots open with a CORESET carrying PDCCH; the others are PDSCH alone."""
SSB_PERIODS_MS = (5, 10, 20)
SSB_RB = 20
SSB_BITMAPS = tuple(format(bitmap, "04b") for bitmap in range(1, 16))
"""ssb-PositionsInBurst for L_max = 4: which of the four SS/PBCH blocks a burst sends."""
PDCCH_IN_IDLE_SLOT = 0.5
"""Share of slots without PDSCH whose CORESET still carries PDCCH (uplink grants, other DCI)."""


def dmrs_symbols(type_a_position: int, additional_position: int) -> tuple[int, ...]:
    """PDSCH DMRS symbols of a slot, mapping type A, l_d = 14, single-symbol DMRS (38.211
    Table 7.4.1.1.2-3); pos3 is only allowed with dmrs-TypeA-Position pos2."""
    labels.check_choice("dmrs_type_a_position", type_a_position, DMRS_TYPE_A_POSITIONS)
    allowed = DMRS_ADDITIONAL_POSITIONS if type_a_position == 2 else DMRS_ADDITIONAL_POSITIONS[:3]
    labels.check_choice(
        f"dmrs_additional_position with type A position {type_a_position}", additional_position, allowed
    )
    return (type_a_position,) + ((), (11,), (7, 11), (5, 8, 11))[additional_position]


def dmrs_subcarriers(config_type: int, n_rb: int, cdm_group: int = 0) -> np.ndarray:
    """Subcarriers of a CDM group in order of the sequence index m: k = 2m + delta (type 1,
    delta = group), or k = 6n + k' + delta for m = 2n + k', k' = 0, 1 (type 2, delta = 2 group)
    (38.211 7.4.1.1.2)."""
    labels.check_choice("dmrs_config_type", config_type, DMRS_CONFIG_TYPES)
    labels.check_choice(f"CDM group of DMRS type {config_type}", cdm_group, range(len(CDM_GROUPS[config_type])))
    if config_type == 1:
        return np.arange(cdm_group, 12 * n_rb, 2)
    return (6 * np.arange(2 * n_rb)[:, None] + np.arange(2) + 2 * cdm_group).ravel()


def rbg_size(n_rb: int, config: int) -> int:
    """Resource block group size P of allocation type 0 for a bandwidth part of n_rb RBs (38.214 Table 5.1.2.2.1-1)."""
    column = (2, 4, 8, 16) if config == 1 else (4, 8, 16, 16)
    return column[int(np.searchsorted((36, 72, 144), n_rb))]


def options() -> dict:
    return {
        "bandwidth_hz": list(BANDWIDTHS_HZ),
        "modulation": list(labels.ALLOWED_MODULATIONS["nr"]),
        "code_rate": {m: list(r) for m, r in CODE_RATES.items()},
        "mu": [0, 1],
        "dmrs_type_a_position": list(DMRS_TYPE_A_POSITIONS),
        "dmrs_additional_position": list(DMRS_ADDITIONAL_POSITIONS),
        "dmrs_config_type": list(DMRS_CONFIG_TYPES),
        "dmrs_cdm_groups_without_data": {str(t): list(g) for t, g in CDM_GROUPS.items()},
        "pdcch": [True, False],
        "ssb_period_ms": list(SSB_PERIODS_MS),
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


def _symbol_starts(n_fft: int, cp_first: int, cp_other: int, group: int) -> np.ndarray:
    """First sample of each of the 14 symbols of a slot, from the slot's start."""
    lengths = n_fft + np.where(np.arange(14) % group == 0, cp_first, cp_other)
    return np.concatenate([[0], np.cumsum(lengths)[:-1]])


def generate(
    *,
    bandwidth_hz: float,
    modulation: str,
    code_rate: str,
    duration_s: float,
    rng: np.random.Generator,
    mu: int | None = None,
    cell_id: int | None = None,
    dmrs_type_a_position: int | None = None,
    dmrs_additional_position: int | None = None,
    dmrs_config_type: int | None = None,
    dmrs_cdm_groups_without_data: int | None = None,
    pdcch: bool | None = None,
    ssb_period_ms: int | None = None,
    ssb_positions_in_burst: str | None = None,
    load: float | None = None,
    **unknown,
) -> PhyWaveform:
    if unknown:
        raise ValueError(
            f"unknown NR options {sorted(unknown)}; valid: mu, cell_id, dmrs_type_a_position, "
            "dmrs_additional_position, dmrs_config_type, dmrs_cdm_groups_without_data, pdcch, ssb_period_ms, "
            "ssb_positions_in_burst, load"
        )
    valid_mu = [m for m in (0, 1) if (m, bandwidth_hz) in NUMEROLOGY]
    mu = int(rng.choice(valid_mu)) if mu is None else mu
    labels.check_choice(f"NR mu at {bandwidth_hz / 1e6:g} MHz", mu, valid_mu)
    cell_id = int(rng.integers(1008)) if cell_id is None else int(cell_id)
    if not 0 <= cell_id < 1008:
        raise ValueError(f"NR cell_id must be 0..1007, got {cell_id}")
    l0 = int(rng.choice(DMRS_TYPE_A_POSITIONS)) if dmrs_type_a_position is None else dmrs_type_a_position
    if dmrs_additional_position is None:
        dmrs_additional_position = int(rng.integers(4 if l0 == 2 else 3))
    positions = dmrs_symbols(l0, dmrs_additional_position)
    config_type = int(rng.choice(DMRS_CONFIG_TYPES)) if dmrs_config_type is None else dmrs_config_type
    labels.check_choice("dmrs_config_type", config_type, DMRS_CONFIG_TYPES)
    cdm_groups = CDM_GROUPS[config_type]
    n_cdm = int(rng.choice(cdm_groups)) if dmrs_cdm_groups_without_data is None else dmrs_cdm_groups_without_data
    labels.check_choice(f"dmrs_cdm_groups_without_data with DMRS type {config_type}", n_cdm, cdm_groups)
    pdcch = bool(rng.random() < PDCCH_PROBABILITY) if pdcch is None else bool(pdcch)
    ssb_period = int(rng.choice(SSB_PERIODS_MS)) if ssb_period_ms is None else ssb_period_ms
    labels.check_choice("ssb_period_ms", ssb_period, SSB_PERIODS_MS)
    load = draw_load(rng) if load is None else check_load(load)

    n_rb, n_fft = NUMEROLOGY[(mu, bandwidth_hz)]
    scs = 15e3 * 2**mu
    fs = n_fft * scs
    n_sc = 12 * n_rb
    qm = labels.BITS_PER_SYMBOL[modulation]
    rnti = int(rng.integers(1, 0xFFF0))
    n_id1, n_id2 = divmod(cell_id, 3)
    ssb_rb = int(rng.integers(n_rb - SSB_RB + 1))
    ssb_offset = int(rng.integers(ssb_period // 5))  # half frames from the period's start to the burst
    if ssb_positions_in_burst is None:
        ssb_bitmap = int(rng.integers(1, 16))  # SS/PBCH block 0 is the MSB
    else:
        labels.check_choice("ssb_positions_in_burst", ssb_positions_in_burst, SSB_BITMAPS)
        ssb_bitmap = int(ssb_positions_in_burst, 2)
    # The PDSCH starts after the CORESET, at the latest on l0; without PDCCH, on any symbol up to l0.
    pdsch_start = int(rng.integers(1 if pdcch else 0, l0 + 1))
    coreset_symbols = pdsch_start if pdcch else 0
    coreset_groups = int(rng.integers(1, n_rb // 6 + 1))
    coreset_first = 6 * int(rng.integers(n_rb // 6 - coreset_groups + 1))
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
    schedule = schedule_pdsch(rng, load, n_slots, n_rb, rbg_size(n_rb, int(rng.integers(1, 3))), 2**mu)
    busy = schedule.rbs.any(axis=1)

    # PDCCH in a random subset of the CORESET's 6-RB groups, at least one where it schedules PDSCH.
    used = np.zeros((n_slots, n_rb // 6), bool)
    for i, count in enumerate(rng.integers(1, coreset_groups + 1, n_slots)):
        if pdcch and (busy[i] or rng.random() < PDCCH_IN_IDLE_SLOT):
            used[i, coreset_first // 6 + rng.choice(coreset_groups, count, replace=False)] = True
    pdcch_sc = np.repeat(used, 72, axis=1)
    n_pdcch = int(pdcch_sc.sum())
    pdcch_values = modulate(random_bits(rng, 2 * n_pdcch * coreset_symbols), "QPSK", "3gpp")
    slot_index, sc_index = np.nonzero(pdcch_sc)
    grid[slot_index, :coreset_symbols, sc_index] = pdcch_values.reshape(n_pdcch, coreset_symbols)

    # SS/PBCH blocks: which slots and symbols carry one, and which REs they take.
    ssb_grid_mask = np.zeros((n_slots, 14, n_sc), bool)
    layout = ssb_layout(cell_id)
    ssb_sc = 12 * ssb_rb + np.arange(240)
    half_frame_slots = slots_per_frame // 2
    starts_in_slot = _symbol_starts(n_fft, cp_first, cp_other, group)
    ssb_in_window = 0
    for i, slot in enumerate(slots):
        half_frame_index = slot // half_frame_slots  # counted from the start of an even frame
        if (half_frame_index - ssb_offset) % (ssb_period // 5):
            continue
        for ssb_index, first in enumerate(SSB_FIRST_SYMBOLS[mu]):
            if first // 14 != slot % half_frame_slots or not (ssb_bitmap >> (3 - ssb_index)) & 1:
                continue
            l0_ssb = first % 14
            block = np.zeros((4, 240), np.complex64)
            sym, sc = layout["pss"]
            block[sym, sc] = pss(n_id2)
            sym, sc = layout["sss"]
            block[sym, sc] = sss(n_id1, n_id2)
            block[layout["dmrs"]] = pbch_dmrs(cell_id, ssb_index, int(half_frame_index % 2))
            block[layout["data"]] = modulate(random_bits(rng, 2 * int(layout["data"].sum())), "QPSK", "3gpp")
            grid[i, l0_ssb : l0_ssb + 4, ssb_sc] = block.T
            ssb_grid_mask[i, l0_ssb : l0_ssb + 4, 12 * ssb_rb : 12 * (ssb_rb + SSB_RB)] = True
            ssb_in_window += 0 <= slot * slot_len + starts_in_slot[l0_ssb] - start < n_out

    # PDSCH DMRS on CDM group 0 of the allocated RBs, except where an SS/PBCH block sits, boosted
    # by beta_DMRS (38.214 Table 4.1-1) when the REs of other CDM groups are left empty.
    allocated = np.repeat(schedule.rbs, 12, axis=1)
    comb = dmrs_subcarriers(config_type, n_rb)
    dmrs_values = _dmrs_frame(cell_id, n_rb, mu, positions)[slots % slots_per_frame][..., : len(comb)]
    dmrs_values = dmrs_values * np.float32(np.sqrt(n_cdm))
    for j, l in enumerate(positions):
        on = allocated[:, comb] & ~ssb_grid_mask[:, l, comb]
        grid[:, l, comb] = np.where(on, dmrs_values[:, j], grid[:, l, comb])

    # PDSCH: from the symbol after the CORESET on the allocated RBs, every RE that is neither
    # DMRS nor SS/PBCH block; k first, then l.
    pdsch_mask = np.zeros((n_slots, 14, n_sc), bool)
    pdsch_mask[:, pdsch_start:] = allocated[:, None, :]
    dmrs_re = np.zeros(n_sc, bool)
    dmrs_re[np.concatenate([dmrs_subcarriers(config_type, n_rb, group) for group in range(n_cdm)])] = True
    pdsch_mask[:, positions] &= ~dmrs_re
    pdsch_mask &= ~ssb_grid_mask
    per_slot = pdsch_mask.reshape(n_slots, -1).sum(axis=1)
    scrambling = gold_sequence(rnti * 2**15 + cell_id, int(per_slot.max()) * qm)  # the same in every slot
    # N'_RE per PRB of 38.214 5.1.3.2: the PDSCH symbols' REs less those of the DMRS CDM groups without data.
    re_per_prb = 12 * (14 - pdsch_start) - len(positions) * n_cdm * len(comb) // n_rb
    rate = Fraction(code_rate)
    scheduled = np.flatnonzero(per_slot)
    tb_sizes = [ldpc.transport_block_size(int(schedule.rbs[i].sum()), re_per_prb, rate, qm) for i in scheduled]
    drawn = random_bits(rng, sum(tb_sizes))  # one draw for all blocks: faster than one each
    transport_blocks = np.split(drawn, np.cumsum(tb_sizes)[:-1]) if tb_sizes else []
    bits = ldpc.dlsch_encode(transport_blocks, per_slot[scheduled] * qm, qm, rate)
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
    full_load = np.zeros((n_slots, 14, n_sc), bool)
    full_load[:, pdsch_start:] = True
    full_load[:, positions] &= ~dmrs_re
    full_load &= ~ssb_grid_mask
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
        "ssb_offset_half_frames": ssb_offset,
        "ssb_positions_in_burst": format(ssb_bitmap, "04b"),
        "ssb_rb_offset": ssb_rb,
        "ssb_case": "A" if mu == 0 else "B",
        "ssb_blocks_in_window": int(ssb_in_window),
        "coreset_symbols": coreset_symbols,
        "coreset_rb": [coreset_first, 6 * coreset_groups],
        "pdcch": pdcch,
        "pdsch_start_symbol": pdsch_start,
        "dmrs_type_a_position": l0,
        "dmrs_additional_position": dmrs_additional_position,
        "dmrs_config_type": config_type,
        "dmrs_cdm_groups_without_data": n_cdm,
        "dmrs_symbols": list(positions),
        **traffic_meta(load, schedule, int(per_slot.sum()), int(full_load.sum()), grid.size),
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
        coding="ldpc",
        meta=meta,
    )
