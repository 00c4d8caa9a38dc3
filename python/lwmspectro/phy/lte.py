"""LTE downlink FDD (3GPP TS 36.211 / 36.212), normal cyclic prefix, with 1, 2 or 4 CRS antenna
ports as a receiver with one antenna sees them.

Per subframe: a control region of CFI symbols, PSS / SSS in subframes 0 and 5 (slots 0 and 10,
last two symbols, centre 62 subcarriers), PBCH in subframe 0 (slot 1, symbols 0-3, centre 72
subcarriers, the REs of CRS ports 0-3 left out), cell-specific reference signals (Gold-sequence
QPSK, v_shift = cell_id mod 6) of each configured port in every subframe (6.10.1.2: ports 0 and
1 on the two combs of symbols 0 and 4 of each slot, ports 2 and 3 on those of symbol 1), and
PDSCH on the remaining REs of the resource blocks the scheduler allocates. The control region's
resource-element groups leave out the REs of ports 0 and 1 in its first symbol even when only
port 0 is configured, and those of ports 2 and 3 in its second when four are (6.2.4).

The ports share one channel: the channel model has one input and the receiver one antenna, so
each port's reference signal is written to its own REs of one transmitted grid (on each port the
other ports' reference-signal REs are empty, so every RE of the sum holds one port's symbol), and
the PDSCH is one rank-1 precoded layer, which a one-antenna receiver sees through one effective
channel. No transmit diversity (SFBC) or spatial multiplexing is modelled. The number of ports is
drawn per waveform, uniformly over CRS_PORTS, and recorded as `crs_ports`: it sets where
reference signals and empty REs repeat across the subcarriers, and the PDSCH's rate matching,
which leaves out the REs of every configured port.

The cell's load is drawn per waveform (see common.schedule_pdsch): from a few RBs in a few
subframes, contiguous (allocation type 2) or in scattered resource block groups (type 0), to
every RB of every subframe; subframes without PDSCH keep their CRS, control region and sync
signals. A PDSCH carries one DL-SCH transport block: CRC, segmentation, turbo coding and rate
matching to the labelled code rate (turbo.py), scrambled per 36.211 6.3.1 and Gray-mapped per
7.1. The control region and PBCH carry QPSK of random bits: their channel coding (PDCCH
convolutional code, PBCH MIB) is not modelled.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from fractions import Fraction

import numpy as np

from .. import labels
from . import turbo
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

SUBCARRIER_SPACING_HZ = 15e3
# bandwidth -> (N_RB, FFT size); the sample rate is N_FFT x 15 kHz.
NUMEROLOGY = {1.4e6: (6, 128), 3e6: (15, 256), 5e6: (25, 512), 10e6: (50, 1024), 15e6: (75, 1536), 20e6: (100, 2048)}
BANDWIDTHS_HZ = tuple(NUMEROLOGY)
CODE_RATES = {
    "QPSK": ("1/3", "1/2", "2/3"),
    "16QAM": ("1/2", "2/3", "3/4"),
    "64QAM": ("2/3", "3/4", "5/6"),
    "256QAM": ("3/4", "5/6"),
}
N_RB_MAX = 110
SYMBOLS_PER_SLOT = 7
CRS_PORTS = (1, 2, 4)
"""How many antenna ports a cell's CRS may be configured on (36.211 6.10.1: ports 0, 0-1 or 0-3)."""
CRS_SYMBOLS = {0: (0, 4), 1: (0, 4), 2: (1,), 3: (1,)}
"""The symbols of a slot that hold each port's CRS (normal cyclic prefix)."""
CRS_SUBFRAME_SYMBOLS = (0, 1, 4, 7, 8, 11)
"""The symbols of a subframe that hold the CRS of some port."""


def rbg_size(n_rb: int) -> int:
    """Resource block group size P of allocation type 0 (36.213 Table 7.1.6.1-1)."""
    return 1 if n_rb <= 10 else 2 if n_rb <= 26 else 3 if n_rb <= 63 else 4


def options() -> dict:
    return {
        "bandwidth_hz": list(BANDWIDTHS_HZ),
        "modulation": list(labels.ALLOWED_MODULATIONS["lte"]),
        "code_rate": {m: list(r) for m, r in CODE_RATES.items()},
    }


@functools.cache
def pss(n_id2: int) -> np.ndarray:
    """Zadoff-Chu d_u(n), n = 0..61, roots 25 / 29 / 34 (36.211 6.11.1.1)."""
    u = (25, 29, 34)[n_id2]
    n = np.arange(62)
    exponent = np.where(n < 31, u * n * (n + 1), u * (n + 1) * (n + 2))
    return np.exp(-1j * np.pi * exponent / 63).astype(np.complex64)


def _m_sequence(taps: tuple[int, ...]) -> np.ndarray:
    """1 - 2x(i) of x(i+5) = sum x(i+t) mod 2 over taps, x(0..4) = 0, 0, 0, 0, 1."""
    x = [0, 0, 0, 0, 1]
    for i in range(26):
        x.append(sum(x[i + t] for t in taps) % 2)
    return 1 - 2 * np.array(x)


@functools.lru_cache(maxsize=64)
def sss(n_id1: int, n_id2: int, subframe: int) -> np.ndarray:
    """d(0..61) of 36.211 6.11.2.1 for subframe 0 or 5."""
    q_prime = n_id1 // 30
    q = (n_id1 + q_prime * (q_prime + 1) // 2) // 30
    m_prime = n_id1 + q * (q + 1) // 2
    m0 = m_prime % 31
    m1 = (m0 + m_prime // 31 + 1) % 31
    s_t, c_t, z_t = _m_sequence((0, 2)), _m_sequence((0, 3)), _m_sequence((0, 1, 2, 4))
    n = np.arange(31)
    s0, s1 = s_t[(n + m0) % 31], s_t[(n + m1) % 31]
    c0, c1 = c_t[(n + n_id2) % 31], c_t[(n + n_id2 + 3) % 31]
    z1_m0, z1_m1 = z_t[(n + m0 % 8) % 31], z_t[(n + m1 % 8) % 31]
    d = np.empty(62)
    if subframe == 0:
        d[0::2], d[1::2] = s0 * c0, s1 * c1 * z1_m0
    else:
        d[0::2], d[1::2] = s1 * c0, s0 * c1 * z1_m1
    return d.astype(np.complex64)


def crs(cell_id: int, slot, symbol, n_rb: int) -> np.ndarray:
    """Reference symbols r(m'), m' = m + N_RB_max - N_RB, m = 0..2 N_RB - 1 (6.10.1.1): the same
    sequence for every port that has CRS in `symbol` of `slot`.

    slot and symbol may be arrays (one row per pair)."""
    slot, symbol = np.asarray(slot), np.asarray(symbol)
    c_init = 2**10 * (7 * (slot + 1) + symbol + 1) * (2 * cell_id + 1) + 2 * cell_id + 1
    return gold_qpsk(c_init, 2 * N_RB_MAX)[..., N_RB_MAX - n_rb : N_RB_MAX + n_rb]


def crs_subcarriers(cell_id: int, symbol: int, n_rb: int, port: int = 0, slot: int = 0) -> np.ndarray:
    """k = 6m + (v + v_shift) mod 6 of `port` in `symbol` of `slot` (6.10.1.2): port 0 has v = 0 in
    symbol 0 and 3 in symbol 4, port 1 the other comb of each (3, then 0); ports 2 and 3 have
    v = 3 (slot mod 2) and 3 + 3 (slot mod 2) in symbol 1."""
    if symbol not in CRS_SYMBOLS.get(port, ()):
        raise ValueError(f"CRS port {port} has no reference signal in symbol {symbol} of a slot")
    v = (0 if symbol == 0 else 3) + 3 * port if port < 2 else 3 * (slot % 2) + 3 * (port - 2)
    return 6 * np.arange(2 * n_rb) + (v + cell_id % 6) % 6


def crs_positions(cell_id: int, n_rb: int, ports: Iterable[int]) -> list[tuple[int, np.ndarray]]:
    """(symbol of the subframe, subcarriers) of every CRS of `ports` in a subframe."""
    return [
        (SYMBOLS_PER_SLOT * slot + symbol, crs_subcarriers(cell_id, symbol, n_rb, port, slot))
        for port in ports
        for slot in (0, 1)
        for symbol in CRS_SYMBOLS[port]
    ]


def crs_mask(cell_id: int, n_rb: int, ports: Iterable[int]) -> np.ndarray:
    """(14, 12 N_RB) bool: the REs of a subframe that hold the CRS of `ports`."""
    mask = np.zeros((2 * SYMBOLS_PER_SLOT, 12 * n_rb), bool)
    for l, k in crs_positions(cell_id, n_rb, ports):
        mask[l, k] = True
    return mask


@functools.cache
def _transport_block_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (C, K) that turbo.transport_block_size may pick, sorted by C then K: C, C K, TBS."""
    rows = []
    for c in range(1, 33):
        for k in turbo.BLOCK_SIZES:
            tbs = c * int(k) - 24 - (24 * c if c > 1 else 0)
            if tbs >= 16 and turbo.segmentation(tbs) == (c, int(k), 0):
                rows.append((c, c * int(k), tbs))
    c, bits, tbs = np.array(rows).T
    return c, bits, tbs


def transport_block_size(target_bits: int) -> int:
    """turbo.transport_block_size as a table look-up: partial allocations ask for hundreds of
    sizes, too many to cache, and the search costs a millisecond each."""
    c, bits, tbs = _transport_block_table()
    c0 = max(1, -(-target_bits // turbo.MAX_BLOCK))
    first, stop = np.searchsorted(c, [c0, c0 + 2])
    if first == stop:
        raise ValueError(f"no LTE transport block fits {target_bits:.0f} bits")
    return int(tbs[first + np.argmin(np.abs(bits[first:stop] - target_bits))])


class _Cell:
    """Resource map of one cell configuration: what sits on every RE of each of the 10 subframes."""

    def __init__(self, n_rb: int, cell_id: int, cfi: int, crs_ports: int):
        self.n_rb, self.cell_id, self.cfi, self.crs_ports = n_rb, cell_id, cfi, crs_ports
        self.n_sc = 12 * n_rb
        centre = np.arange(self.n_sc // 2 - 36, self.n_sc // 2 + 36)
        self.sync_sc = self.n_sc // 2 - 31 + np.arange(62)
        self.crs_mask = crs_mask(cell_id, n_rb, range(crs_ports))
        control = np.zeros((14, self.n_sc), bool)
        control[:cfi] = True
        # Resource-element groups take ports 0 and 1 as configured even when port 0 alone is (6.2.4).
        control &= ~(self.crs_mask | crs_mask(cell_id, n_rb, (0, 1)))
        self.control_mask = control
        self.pbch_mask = np.zeros((14, self.n_sc), bool)
        self.pbch_mask[7:11, centre] = True
        # The PBCH leaves out the REs of ports 0-3 whichever are configured (6.6.4): the receiver
        # learns the port count from it.
        self.pbch_mask &= ~crs_mask(cell_id, n_rb, range(4))
        data = np.ones((14, self.n_sc), bool)
        data[:cfi] = False
        data &= ~self.crs_mask
        self.pdsch_masks = []
        for subframe in range(10):
            mask = data.copy()
            if subframe in (0, 5):
                mask[5:7, centre] = False
            if subframe == 0:
                mask[7:11, centre] = False
            self.pdsch_masks.append(mask)

    def subcarrier_bins(self, n_fft: int) -> np.ndarray:
        """FFT bin of each subcarrier k = 0..N_sc-1 (the DC subcarrier is skipped)."""
        k = np.arange(self.n_sc)
        signed = np.where(k < self.n_sc // 2, k - self.n_sc // 2, k - self.n_sc // 2 + 1)
        return np.mod(signed, n_fft)


def _fill(grid: np.ndarray, rows: np.ndarray, mask: np.ndarray, values: np.ndarray) -> None:
    """Write values (n_rows, mask.sum()) into the masked REs of the selected subframes, k first then l."""
    selected = grid[rows]
    selected[:, mask] = values
    grid[rows] = selected


@functools.lru_cache(maxsize=64)
def _crs_frame(cell_id: int, n_rb: int) -> np.ndarray:
    """CRS values of a radio frame: (10 subframes, CRS_SUBFRAME_SYMBOLS, 2 N_RB)."""
    sf, l = np.meshgrid(np.arange(10), np.array(CRS_SUBFRAME_SYMBOLS), indexing="ij")
    return crs(cell_id, 2 * sf + l // SYMBOLS_PER_SLOT, l % SYMBOLS_PER_SLOT, n_rb)


def generate(
    *,
    bandwidth_hz: float,
    modulation: str,
    code_rate: str,
    duration_s: float,
    rng: np.random.Generator,
    cell_id: int | None = None,
    cfi: int | None = None,
    load: float | None = None,
    crs_ports: int | None = None,
    **unknown,
) -> PhyWaveform:
    """One LTE downlink waveform; cell_id, cfi, load and crs_ports are drawn when None."""
    if unknown:
        raise ValueError(f"unknown LTE options {sorted(unknown)}; valid: cell_id, cfi, load, crs_ports")
    n_rb, n_fft = NUMEROLOGY[bandwidth_hz]
    fs = n_fft * SUBCARRIER_SPACING_HZ
    cell_id = int(rng.integers(504)) if cell_id is None else int(cell_id)
    if not 0 <= cell_id < 504:
        raise ValueError(f"LTE cell_id must be 0..503, got {cell_id}")
    cfi_range = (2, 3, 4) if n_rb <= 10 else (1, 2, 3)
    cfi = int(rng.choice(cfi_range)) if cfi is None else int(cfi)
    labels.check_choice(f"CFI for {n_rb} RBs", cfi, cfi_range)
    crs_ports = int(rng.choice(CRS_PORTS)) if crs_ports is None else int(crs_ports)
    labels.check_choice("number of CRS ports", crs_ports, CRS_PORTS)
    load = draw_load(rng) if load is None else check_load(load)
    rnti = int(rng.integers(1, 0xFFF4))
    qm = labels.BITS_PER_SYMBOL[modulation]
    cell = _Cell(n_rb, cell_id, cfi, crs_ports)
    n_id1, n_id2 = divmod(cell_id, 3)

    cp_first, cp_other = 160 * n_fft // 2048, 144 * n_fft // 2048
    subframe_len = 2 * (cp_first + n_fft + 6 * (cp_other + n_fft))
    n_out = n_samples_for(duration_s, fs)
    start = int(rng.integers(10 * subframe_len))
    first_sf, stop_sf = start // subframe_len, -(-(start + n_out) // subframe_len)
    numbers = np.arange(first_sf, stop_sf) % 10
    grid = np.zeros((len(numbers), 14, cell.n_sc), np.complex64)

    crs_values = _crs_frame(cell_id, n_rb)[numbers]
    for l, k in crs_positions(cell_id, n_rb, range(crs_ports)):
        grid[:, l, k] = crs_values[:, CRS_SUBFRAME_SYMBOLS.index(l)]
    n_control = int(cell.control_mask.sum())
    control_bits = random_bits(rng, 2 * n_control * len(numbers))
    grid[:, cell.control_mask] = modulate(control_bits, "QPSK", "3gpp").reshape(len(numbers), n_control)
    for subframe in (0, 5):
        rows = numbers == subframe
        grid[np.ix_(rows, np.array([6]), cell.sync_sc)] = pss(n_id2)
        grid[np.ix_(rows, np.array([5]), cell.sync_sc)] = sss(n_id1, n_id2, subframe)
    rows = numbers == 0
    n_pbch = int(cell.pbch_mask.sum())
    pbch = modulate(random_bits(rng, 2 * n_pbch * int(rows.sum())), "QPSK", "3gpp")
    _fill(grid, rows, cell.pbch_mask, pbch.reshape(-1, n_pbch))

    # PDSCH: one transport block per scheduled subframe, batched over subframes with the same RE count.
    schedule = schedule_pdsch(rng, load, len(numbers), n_rb, rbg_size(n_rb), units_per_ms=1)
    masks = [cell.pdsch_masks[number] & np.repeat(rbs, 12) for number, rbs in zip(numbers, schedule.rbs)]
    n_res = np.array([int(mask.sum()) for mask in masks])
    rate = Fraction(code_rate)
    tb_sizes, effective = [], []
    for n_re in np.unique(n_res[n_res > 0]):
        rows = np.flatnonzero(n_res == n_re)
        tbs = transport_block_size(round(rate * int(n_re) * qm))
        tb_sizes.append(tbs)
        effective.append(tbs / (int(n_re) * qm))
        codewords = turbo.dlsch_encode(random_bits(rng, tbs * len(rows)).reshape(-1, tbs), int(n_re) * qm, qm)
        for codeword, row in zip(codewords, rows):
            c_init = rnti * 2**14 + int(numbers[row]) * 2**9 + cell_id  # q = 0, floor(n_s / 2) = subframe
            codeword ^= gold_sequence(c_init, int(n_re) * qm)
            grid[row][masks[row]] = modulate(codeword, modulation, "3gpp")

    spectrum = np.zeros((len(numbers) * 2, SYMBOLS_PER_SLOT, n_fft), np.complex64)
    spectrum[..., cell.subcarrier_bins(n_fft)] = grid.reshape(len(numbers) * 2, SYMBOLS_PER_SLOT, cell.n_sc)
    iq = ofdm_modulate(spectrum, cp_first, cp_other)
    active = np.ones(len(iq), bool)
    iq, active = finish(*crop(iq, active, start - first_sf * subframe_len, n_out))
    full_load_res = sum(int(cell.pdsch_masks[number].sum()) for number in numbers)
    meta = {
        "standard": "LTE FDD downlink",
        "n_rb": n_rb,
        "n_fft": n_fft,
        "cp": [cp_first, cp_other],
        "subcarrier_spacing_hz": SUBCARRIER_SPACING_HZ,
        "cell_id": cell_id,
        "cfi": cfi,
        "crs_ports": crs_ports,
        "rnti": rnti,
        **traffic_meta(load, schedule, int(n_res.sum()), full_load_res, grid.size),
        "tbs_bits": [min(tb_sizes), max(tb_sizes)],
        "effective_code_rate": [round(min(effective), 4), round(max(effective), 4)],
        "start_sample": start,
        "first_subframe": int(first_sf % 10),
    }
    return PhyWaveform(
        iq=iq,
        sample_rate_hz=fs,
        active=active,
        protocol="lte",
        bandwidth_hz=bandwidth_hz,
        occupied_bw_hz=(cell.n_sc + 1) * SUBCARRIER_SPACING_HZ,
        modulation=modulation,
        code_rate=code_rate,
        coding="turbo",
        meta=meta,
    )
