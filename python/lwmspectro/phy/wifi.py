"""IEEE 802.11a/g 20 MHz OFDM (Clause 17) and 802.11ac VHT 20 MHz single-stream (Clause 21).

Legacy packets: L-STF, L-LTF, SIGNAL (BPSK r1/2: RATE, LENGTH, parity, tail), DATA (SERVICE,
PSDU, tail, pad; scrambled with x^7 + x^4 + 1, BCC (133, 171) punctured to the rate, two-
permutation interleaver, Gray constellation, 48 data + 4 pilot subcarriers with the 127-long
polarity sequence). 64-point FFT at 20 MS/s, 0.8 us guard interval.

VHT packets (256QAM, VHT-MCS 8 = r3/4): L-STF, L-LTF, L-SIG, VHT-SIG-A1/A2 (BPSK / QBPSK with
the SU fields and CRC-8), VHT-STF, one VHT-LTF, VHT-SIG-B (length) and the DATA field on 52
data + 4 pilot subcarriers (56 used) with the 13-column interleaver and rotating pilots.
Simplified: one spatial stream, BCC only; the SERVICE field carries the SIG-B CRC but no
A-MPDU framing. VHT-MCS 9 (r5/6) is not offered: at 20 MHz with one stream its N_DBPS is not
an integer and 802.11ac forbids it (Table 21-29).

Traffic is drawn per waveform, from back-to-back to sparse: a typical PSDU length (log-uniform
from an ACK's 14 bytes to the longest PSDU: 4095 bytes, or for VHT what fits the 5.484 ms
aPPDUMaxTime) with a log-normal spread around it per packet, and gaps that are either SIFS
(16 us: a response or the next frame of a TXOP) or DIFS plus a whole number of 9 us slots
(a backoff from CW 15, 31 or 63 plus idle slots with a drawn mean of 10 us to 3 ms). A window
of short packets gets one of at least 0.2 ms airtime (common.MIN_VISIBLE_RUN_S).
No time-domain windowing between symbols (the standard leaves it to the implementer).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.fft

from .. import labels
from . import bcc
from .common import MIN_VISIBLE_RUN_S, PhyWaveform, crop, finish, modulate, n_samples_for, random_bits

SAMPLE_RATE_HZ = 20e6
N_FFT = 64
GI = 16
SUBCARRIER_SPACING_HZ = SAMPLE_RATE_HZ / N_FFT
SIFS_S, SLOT_S, CW_MIN = 16e-6, 9e-6, 15
DIFS_S = SIFS_S + 2 * SLOT_S
CONTENTION_WINDOWS = (15, 31, 63)
"""CWmin of the access categories (voice/video 3-7 are left out: they only shorten the backoff)."""
MIN_PSDU_BYTES = 14
"""An ACK frame: the shortest PSDU on the air."""
LEGACY_MAX_PSDU_BYTES = 4095
VHT_MAX_PPDU_S = 5.484e-3
"""aPPDUMaxTime: a VHT PPDU is limited in time, not by its L-SIG LENGTH field."""
IDLE_MEAN_RANGE_S = (10e-6, 3e-3)
"""Mean medium idle time after DIFS and backoff (log-uniform per waveform): busy to sparse."""
MAX_GAP_S = 6e-3
"""Longest gap: a 16 ms window always shows whole packets."""

PILOT_SC = np.array([-21, -7, 7, 21])
PILOT_BASE = np.array([1, 1, 1, -1], np.float32)
LEGACY_DATA_SC = np.array([k for k in range(-26, 27) if k not in (0, -21, -7, 7, 21)])
VHT_DATA_SC = np.array([k for k in range(-28, 29) if k not in (0, -21, -7, 7, 21)])

# (modulation, code rate) -> (Mbit/s, RATE bits R1..R4), Table 17-6.
LEGACY_RATES = {
    ("BPSK", "1/2"): (6, (1, 1, 0, 1)),
    ("BPSK", "3/4"): (9, (1, 1, 1, 1)),
    ("QPSK", "1/2"): (12, (0, 1, 0, 1)),
    ("QPSK", "3/4"): (18, (0, 1, 1, 1)),
    ("16QAM", "1/2"): (24, (1, 0, 0, 1)),
    ("16QAM", "3/4"): (36, (1, 0, 1, 1)),
    ("64QAM", "2/3"): (48, (0, 0, 0, 1)),
    ("64QAM", "3/4"): (54, (0, 0, 1, 1)),
}
VHT_MCS = {("256QAM", "3/4"): 8}

CODE_RATES = {
    "BPSK": ("1/2", "3/4"),
    "QPSK": ("1/2", "3/4"),
    "16QAM": ("1/2", "3/4"),
    "64QAM": ("2/3", "3/4"),
    "256QAM": ("3/4",),
}
BANDWIDTHS_HZ = (20e6,)

_S = np.sqrt(13 / 6) * np.array(
    [
        0,
        0,
        1 + 1j,
        0,
        0,
        0,
        -1 - 1j,
        0,
        0,
        0,
        1 + 1j,
        0,
        0,
        0,
        -1 - 1j,
        0,
        0,
        0,
        -1 - 1j,
        0,
        0,
        0,
        1 + 1j,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        -1 - 1j,
        0,
        0,
        0,
        -1 - 1j,
        0,
        0,
        0,
        1 + 1j,
        0,
        0,
        0,
        1 + 1j,
        0,
        0,
        0,
        1 + 1j,
        0,
        0,
        0,
        1 + 1j,
        0,
        0,
    ]
)  # subcarriers -26..26
_L = np.array(
    [
        1,
        1,
        -1,
        -1,
        1,
        1,
        -1,
        1,
        -1,
        1,
        1,
        1,
        1,
        1,
        1,
        -1,
        -1,
        1,
        1,
        -1,
        1,
        -1,
        1,
        1,
        1,
        1,
        0,
        1,
        -1,
        -1,
        1,
        1,
        -1,
        1,
        -1,
        1,
        -1,
        -1,
        -1,
        -1,
        -1,
        1,
        1,
        -1,
        -1,
        1,
        -1,
        1,
        -1,
        1,
        1,
        1,
        1,
    ],
    float,
)
_VHT_LTF = np.concatenate([[1, 1], _L, [-1, -1]])  # subcarriers -28..28


def options() -> dict:
    return {
        "bandwidth_hz": list(BANDWIDTHS_HZ),
        "modulation": list(labels.ALLOWED_MODULATIONS["wifi"]),
        "code_rate": {m: list(r) for m, r in CODE_RATES.items()},
    }


def scrambler_sequence(state: int, n: int) -> np.ndarray:
    """Output of the x^7 + x^4 + 1 scrambler from a 7-bit state (x1 = MSB), periodic in 127."""
    period = _scrambler_period(int(state))
    return np.resize(period, n)


_SCRAMBLER_PERIODS: dict[int, np.ndarray] = {}


def _scrambler_period(state: int) -> np.ndarray:
    if not 1 <= state <= 127:
        raise ValueError(f"scrambler state must be 1..127, got {state}")
    if state not in _SCRAMBLER_PERIODS:
        regs = [(state >> (6 - i)) & 1 for i in range(7)]  # x1..x7
        out = np.empty(127, np.uint8)
        for n in range(127):
            bit = regs[6] ^ regs[3]
            out[n] = bit
            regs = [bit] + regs[:6]
        _SCRAMBLER_PERIODS[state] = out
    return _SCRAMBLER_PERIODS[state]


PILOT_POLARITY = 1.0 - 2.0 * scrambler_sequence(0x7F, 127).astype(np.float32)
"""p_0..p_126 (17.3.5.10): the all-ones scrambler output, 0 -> +1, 1 -> -1."""


def interleaver(n_cbps: int, n_bpsc: int, n_col: int) -> np.ndarray:
    """j(k): where coded bit k goes (17.3.5.7; n_col 16 legacy, 13 for VHT 20 MHz)."""
    k = np.arange(n_cbps)
    n_row = n_cbps // n_col
    i = n_row * (k % n_col) + k // n_col
    s = max(n_bpsc // 2, 1)
    return s * (i // s) + (i + n_cbps - (n_col * i) // n_cbps) % s


def interleave(coded: np.ndarray, n_cbps: int, n_bpsc: int, n_col: int) -> np.ndarray:
    """Interleave symbol by symbol: output bit j(k) is input bit k (a gather by the inverse)."""
    inverse = np.argsort(interleaver(n_cbps, n_bpsc, n_col))
    return np.take(coded.reshape(-1, n_cbps), inverse, axis=1).reshape(-1)


def crc8(bits: np.ndarray) -> np.ndarray:
    """CRC-8 of the HT/VHT SIG fields (x^8 + x^2 + x + 1, ones preset, complemented), c7 first."""
    reg = 0xFF
    for b in bits:
        feedback = ((reg >> 7) & 1) ^ int(b)
        reg = (reg << 1) & 0xFF
        if feedback:
            reg ^= 0x07
    reg ^= 0xFF
    return np.array([(reg >> (7 - i)) & 1 for i in range(8)], np.uint8)


def _bits_lsb_first(value: int, width: int) -> np.ndarray:
    return np.array([(value >> i) & 1 for i in range(width)], np.uint8)


def _sig_bits(rate_bits, length: int) -> np.ndarray:
    """SIGNAL / L-SIG: RATE, reserved, LENGTH (LSB first), even parity, six tail zeros."""
    head = np.concatenate([np.array(rate_bits, np.uint8), [0], _bits_lsb_first(length, 12)])
    return np.concatenate([head, [head.sum() & 1], np.zeros(6, np.uint8)]).astype(np.uint8)


def _time_symbol(sc: np.ndarray, values: np.ndarray, n_cp: int = GI) -> np.ndarray:
    """One OFDM symbol with its prefix, scaled to unit mean power over the symbol."""
    spectrum = np.zeros(N_FFT, np.complex128)
    spectrum[np.mod(sc, N_FFT)] = values
    spectrum *= np.sqrt(N_FFT / np.sum(np.abs(values) ** 2))
    td = np.fft.ifft(spectrum, norm="ortho")
    return np.concatenate([td[N_FFT - n_cp :], td])


@functools.cache
def _preamble() -> np.ndarray:
    """L-STF (10 x 0.8 us) and L-LTF (1.6 us GI2 + two 3.2 us symbols): 16 us."""
    sc = np.arange(-26, 27)
    short = _time_symbol(sc, _S, n_cp=0)
    stf = np.resize(short, 160)
    long = _time_symbol(sc, _L, n_cp=0)
    ltf = np.concatenate([long[-32:], long, long])
    return np.concatenate([stf, ltf])


def _ofdm_rows(data_sc: np.ndarray, data: np.ndarray, pilots: np.ndarray, scale: float) -> np.ndarray:
    """(n, 80) time-domain symbols with prefix from per-symbol data and pilot values."""
    spectra = np.zeros((len(data), N_FFT), np.complex64)
    spectra[:, np.mod(data_sc, N_FFT)] = data * np.float32(scale)
    spectra[:, np.mod(PILOT_SC, N_FFT)] = pilots * np.float32(scale)
    td = scipy.fft.ifft(spectra, axis=1, norm="ortho")
    return np.concatenate([td[:, N_FFT - GI :], td], axis=1)


class _Mode:
    """What one (modulation, rate) needs: bits per symbol, data subcarriers, interleaver, pilots."""

    def __init__(self, modulation: str, code_rate: str):
        self.modulation, self.code_rate = modulation, code_rate
        self.vht = (modulation, code_rate) in VHT_MCS
        self.n_bpsc = labels.BITS_PER_SYMBOL[modulation]
        self.data_sc = VHT_DATA_SC if self.vht else LEGACY_DATA_SC
        self.n_cbps = len(self.data_sc) * self.n_bpsc
        self.n_dbps = int(self.n_cbps * Fraction(code_rate))
        self.n_col = 13 if self.vht else 16
        self.pilot_offset = 4 if self.vht else 1
        self.n_used = len(self.data_sc) + len(PILOT_SC)

    def n_symbols(self, psdu_bytes: np.ndarray) -> np.ndarray:
        return -(-(16 + 8 * psdu_bytes + 6) // self.n_dbps)

    def n_header_symbols(self) -> int:
        """OFDM symbols after the 16 us legacy preamble and before DATA."""
        return 6 if self.vht else 1  # VHT: L-SIG, SIG-A1, SIG-A2, VHT-STF, VHT-LTF, SIG-B

    def pilots(self, symbol_index: np.ndarray) -> np.ndarray:
        """(n, 4) pilot values of the DATA symbols with these indices."""
        polarity = PILOT_POLARITY[(symbol_index + self.pilot_offset) % 127][:, None]
        if self.vht:  # 21.3.10.10: Psi rotates across the four pilots symbol by symbol
            return polarity * PILOT_BASE[(symbol_index[:, None] + np.arange(4)) % 4]
        return polarity * PILOT_BASE


def _vht_sig_a(mcs: int, rng: np.random.Generator) -> np.ndarray:
    """Two SIG-A symbols (time domain) for an SU 20 MHz, one-stream, BCC, long-GI packet."""
    a1 = np.concatenate(
        [
            [0, 0, 1, 0],
            _bits_lsb_first(63, 6),
            _bits_lsb_first(0, 3),
            _bits_lsb_first(int(rng.integers(512)), 9),
            [0, 1],
        ]
    ).astype(np.uint8)
    a2_head = np.concatenate([[0, 0, 0, 0], _bits_lsb_first(mcs, 4), [0, 1]]).astype(np.uint8)
    a2 = np.concatenate([a2_head, crc8(np.concatenate([a1, a2_head])), np.zeros(6, np.uint8)])
    coded = bcc.encode(np.concatenate([a1, a2]), "1/2")
    symbols = []
    for index, rotation in ((0, 1.0), (1, 1j)):
        data = modulate(interleave(coded[48 * index : 48 * (index + 1)], 48, 1, 16), "BPSK", "ieee") * rotation
        pilots = PILOT_POLARITY[1 + index] * PILOT_BASE * rotation
        symbols.append(_time_symbol(np.concatenate([LEGACY_DATA_SC, PILOT_SC]), np.concatenate([data, pilots])))
    return np.concatenate(symbols)


@functools.cache
def _vht_training() -> np.ndarray:
    """VHT-STF (4 us, the L-STF tones) and one VHT-LTF (56 tones)."""
    stf = np.resize(_time_symbol(np.arange(-26, 27), _S, n_cp=0), 80)
    return np.concatenate([stf, _time_symbol(np.arange(-28, 29), _VHT_LTF)])


def max_psdu_bytes(mode: _Mode) -> int:
    """The longest PSDU: LENGTH's 12 bits for legacy packets, aPPDUMaxTime for VHT (which also
    keeps the spoofed L-SIG LENGTH within 4095)."""
    if not mode.vht:
        return LEGACY_MAX_PSDU_BYTES
    preamble_s = 20e-6 + mode.n_header_symbols() * 4e-6
    n_symbols = int(round((VHT_MAX_PPDU_S - preamble_s) / 4e-6, 6))
    return (n_symbols * mode.n_dbps - 16 - 6) // 8


@dataclass(frozen=True)
class _Traffic:
    """What a waveform's packets look like: lengths around a typical one, SIFS or contention gaps."""

    typical_bytes: float
    length_spread: float
    sifs_share: float
    contention_window: int
    mean_idle_slots: float

    @classmethod
    def draw(cls, rng: np.random.Generator, lo: int, hi: int) -> _Traffic:
        return cls(
            typical_bytes=float(np.exp(rng.uniform(np.log(lo), np.log(hi)))),
            length_spread=float(rng.uniform(0.1, 1.2)),
            sifs_share=float(rng.uniform(0.0, 0.9) if rng.random() < 0.5 else 0.0),
            contention_window=int(rng.choice(CONTENTION_WINDOWS)),
            mean_idle_slots=float(np.exp(rng.uniform(*np.log(IDLE_MEAN_RANGE_S)))) / SLOT_S,
        )

    def lengths(self, rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
        spread = np.exp(self.length_spread * rng.standard_normal(n))
        return np.clip(np.round(self.typical_bytes * spread), lo, hi).astype(np.int64)

    def gaps(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Gaps in samples: SIFS, or DIFS plus backoff and idle slots (the medium is slotted)."""
        sifs, difs, slot = (round(t * SAMPLE_RATE_HZ) for t in (SIFS_S, DIFS_S, SLOT_S))
        backoff = rng.integers(0, self.contention_window + 1, n)
        idle = rng.geometric(1.0 / (1.0 + self.mean_idle_slots), n) - 1
        contention = np.minimum(difs + slot * (backoff + idle), round(MAX_GAP_S * SAMPLE_RATE_HZ))
        return np.where(rng.random(n) < self.sifs_share, sifs, contention)

    def summary(self) -> dict:
        return {
            "psdu_bytes_typical": round(self.typical_bytes, 1),
            "psdu_bytes_spread": round(self.length_spread, 3),
            "sifs_share": round(self.sifs_share, 3),
            "contention_window": self.contention_window,
            "mean_idle_us": round(self.mean_idle_slots * SLOT_S * 1e6, 1),
        }


def _shows_a_long_packet(durations: np.ndarray, packet_ends: np.ndarray, start: int, n_out: int) -> bool:
    """Whether some packet is on for MIN_VISIBLE_RUN_S inside the window [start, start + n_out)."""
    inside = np.minimum(packet_ends, start + n_out) - np.maximum(packet_ends - durations, start)
    return bool(inside.max() >= MIN_VISIBLE_RUN_S * SAMPLE_RATE_HZ)


def generate(
    *,
    bandwidth_hz: float = 20e6,
    modulation: str,
    code_rate: str,
    duration_s: float,
    rng: np.random.Generator,
    psdu_bytes: tuple[int, int] | None = None,
    **unknown,
) -> PhyWaveform:
    if unknown:
        raise ValueError(f"unknown WiFi options {sorted(unknown)}; valid: psdu_bytes")
    mode = _Mode(modulation, code_rate)
    longest = max_psdu_bytes(mode)
    lo, hi = (MIN_PSDU_BYTES, longest) if psdu_bytes is None else psdu_bytes
    if not 1 <= lo <= hi <= longest:
        raise ValueError(
            f"psdu_bytes must be 1 <= lo <= hi <= {longest} for {modulation} {code_rate}, got {psdu_bytes}"
        )
    n_out = n_samples_for(duration_s, SAMPLE_RATE_HZ)
    sym_len = N_FFT + GI
    header_len = 320 + mode.n_header_symbols() * sym_len
    traffic = _Traffic.draw(rng, lo, hi)

    # Draw packets and gaps, a batch at a time, until the stream covers the random start plus the window.
    lengths = np.zeros(0, np.int64)
    gaps = np.zeros(0, np.int64)
    start = None
    while True:
        batch = 32
        lengths = np.concatenate([lengths, traffic.lengths(rng, batch, lo, hi)])
        gaps = np.concatenate([gaps, traffic.gaps(rng, batch)])
        durations = header_len + mode.n_symbols(lengths) * sym_len
        if start is None:
            start = int(rng.integers(0, durations[0] + gaps[0]))
        ends = np.cumsum(durations + gaps)
        if ends[-1] >= start + n_out:
            n_packets = int(np.searchsorted(ends, start + n_out)) + 1
            break
    lengths, gaps = lengths[:n_packets], gaps[:n_packets]
    if n_packets > 1 and not _shows_a_long_packet(durations[:n_packets], ends[:n_packets] - gaps, start, n_out):
        # The first packet that starts inside the window is made long enough to be seen (within the range).
        visible_symbols = -(-(round(MIN_VISIBLE_RUN_S * SAMPLE_RATE_HZ) - header_len) // sym_len)
        lengths[1] = max(lengths[1], min(hi, (visible_symbols * mode.n_dbps - 22 + 7) // 8))
    durations = header_len + mode.n_symbols(lengths) * sym_len
    ends = np.cumsum(durations + gaps)
    n_packets = int(np.searchsorted(ends, start + n_out)) + 1  # ends only grew: still covered
    lengths, gaps, durations = lengths[:n_packets], gaps[:n_packets], durations[:n_packets]
    total = int(ends[n_packets - 1])
    n_sym = mode.n_symbols(lengths)

    # DATA bits per packet: SERVICE, PSDU, tail, pad (VHT: SERVICE, PSDU, pad, tail), scrambled.
    blocks, seeds = [], rng.integers(1, 128, len(lengths))
    sig_b_blocks = []
    for length, count, seed in zip(lengths, n_sym, seeds):
        n_data = int(count) * mode.n_dbps
        payload = random_bits(rng, 8 * int(length))
        bits = np.zeros(n_data, np.uint8)
        if mode.vht:
            sig_b = np.concatenate([_bits_lsb_first(-(-int(length) // 4), 17), [1, 1, 1]]).astype(np.uint8)
            sig_b_blocks.append(np.concatenate([sig_b, np.zeros(6, np.uint8)]))
            bits[8:16] = crc8(sig_b)
            bits[16 : 16 + payload.size] = payload
            tail = slice(n_data - 6, n_data)
        else:
            bits[16 : 16 + payload.size] = payload
            tail = slice(16 + payload.size, 22 + payload.size)
        bits ^= scrambler_sequence(int(seed), n_data)
        bits[tail] = 0
        blocks.append(bits)
    coded = bcc.encode_blocks(blocks, code_rate)
    data_points = modulate(interleave(coded, mode.n_cbps, mode.n_bpsc, mode.n_col), modulation, "ieee")
    data_points = data_points.reshape(-1, len(mode.data_sc))

    # SIGNAL / L-SIG per packet: legacy at the data rate, VHT at 6 Mbit/s with the spoofed length.
    if mode.vht:
        sig_lengths = (5 + n_sym) * 3 - 3
        rate_bits = LEGACY_RATES[("BPSK", "1/2")][1]
    else:
        sig_lengths = lengths
        rate_bits = LEGACY_RATES[(modulation, code_rate)][1]
    sig_coded = bcc.encode_blocks([_sig_bits(rate_bits, int(n)) for n in sig_lengths], "1/2")
    sig_points = modulate(interleave(sig_coded, 48, 1, 16), "BPSK", "ieee").reshape(-1, 48)

    # Batched IFFTs: the SIGNAL symbols, the SIG-B symbols and all DATA symbols of all packets.
    scale = np.sqrt(N_FFT / mode.n_used)
    sig_pilots = np.broadcast_to(PILOT_POLARITY[0] * PILOT_BASE, (len(lengths), 4))
    sig_rows = _ofdm_rows(LEGACY_DATA_SC, sig_points, sig_pilots, np.sqrt(N_FFT / 52))
    symbol_index = np.concatenate([np.arange(c) for c in n_sym])
    data_rows = _ofdm_rows(mode.data_sc, data_points, mode.pilots(symbol_index), scale)
    data_first = np.concatenate([[0], np.cumsum(n_sym)[:-1]])
    fixed = [_preamble().astype(np.complex64)]
    if mode.vht:
        sig_b_coded = bcc.encode_blocks(sig_b_blocks, "1/2")
        sig_b_points = modulate(interleave(sig_b_coded, 52, 1, 13), "BPSK", "ieee").reshape(-1, 52)
        sig_b_rows = _ofdm_rows(
            VHT_DATA_SC, sig_b_points, np.broadcast_to(PILOT_POLARITY[3] * PILOT_BASE, (len(lengths), 4)), scale
        )
        vht_fixed = np.concatenate([_vht_sig_a(VHT_MCS[(modulation, code_rate)], rng), _vht_training()])
    iq = np.zeros(total, np.complex64)
    active = np.zeros(total, bool)
    pos = 0
    for p, (first, count, duration, gap) in enumerate(zip(data_first, n_sym, durations, gaps)):
        parts = [fixed[0], sig_rows[p]]
        if mode.vht:
            parts += [vht_fixed, sig_b_rows[p]]
        parts.append(data_rows[first : first + count].reshape(-1))
        iq[pos : pos + duration] = np.concatenate(parts)
        active[pos : pos + duration] = True
        pos += duration + gap
    iq, active = finish(*crop(iq, active, start, n_out))
    n_used_sc = 57 if mode.vht else 53
    meta = {
        "standard": "802.11ac VHT" if mode.vht else "802.11a/g",
        "n_fft": N_FFT,
        "cp": GI,
        "subcarrier_spacing_hz": SUBCARRIER_SPACING_HZ,
        "n_data_subcarriers": len(mode.data_sc),
        "n_packets": len(lengths),
        "psdu_bytes": [int(lengths.min()), int(lengths.max())],
        **traffic.summary(),
        "gap_us": [
            round(float(gaps[:-1].min()) / SAMPLE_RATE_HZ * 1e6, 2),
            round(float(gaps[:-1].max()) / SAMPLE_RATE_HZ * 1e6, 2),
        ]
        if n_packets > 1
        else [],
        "duty_cycle": round(float(active.mean()), 4),
        "start_sample": start,
    }
    if mode.vht:
        meta["mcs"] = VHT_MCS[(modulation, code_rate)]
    else:
        meta["rate_mbps"] = LEGACY_RATES[(modulation, code_rate)][0]
    return PhyWaveform(
        iq=iq,
        sample_rate_hz=SAMPLE_RATE_HZ,
        active=active,
        protocol="wifi",
        bandwidth_hz=bandwidth_hz,
        occupied_bw_hz=n_used_sc * SUBCARRIER_SPACING_HZ,
        modulation=modulation,
        code_rate=code_rate,
        coding="bcc",
        meta=meta,
    )
