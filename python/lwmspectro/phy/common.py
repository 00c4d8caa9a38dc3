"""Pieces every PHY chain shares: the waveform record, random bits, Gray constellations,
3GPP Gold sequences, batched OFDM modulation, the random start inside a frame and the
downlink scheduler that decides how loaded an LTE or NR cell is."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from .. import labels


@dataclass
class PhyWaveform:
    """One transmitted waveform at its protocol's native rate, with what was applied to make it."""

    iq: np.ndarray
    sample_rate_hz: float
    active: np.ndarray
    protocol: str
    bandwidth_hz: float
    occupied_bw_hz: float
    modulation: str | None
    code_rate: str | None
    coding: str
    meta: dict = field(default_factory=dict)
    occupied_centre_hz: float = 0.0
    """Centre of the occupied band relative to the carrier (DC): `other` signals sit off it."""


MIN_VISIBLE_RUN_S = 0.2e-3
"""Every waveform that pauses holds at least one transmission this long. The spectrogram looks
at a few microseconds every 125 us: a window whose transmissions all fell between its frames
would be noise under a signal's label."""


def n_samples_for(duration_s: float, sample_rate_hz: float) -> int:
    """ceil(duration * fs), refusing durations that make no waveform."""
    if not np.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    return int(np.ceil(round(duration_s * sample_rate_hz, 6)))


def random_bits(rng: np.random.Generator, n: int) -> np.ndarray:
    """n uniform bits (uint8 0/1); drawn as bytes, which is ~20x faster than rng.integers per bit."""
    return np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), np.uint8))[:n]


def finish(iq: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale to unit mean power over the samples where the transmitter is on; complex64.

    Samples outside `active` are zero by construction (transmitter off), so the power over
    the active samples is the total energy over their count: one BLAS dot product.
    """
    n_on = int(np.count_nonzero(active))
    power = float(np.vdot(iq, iq).real) / n_on if n_on else 0.0
    if power > 0:
        iq = iq * np.float32(1.0 / np.sqrt(power))
    return iq.astype(np.complex64, copy=False), active


# --- constellations ---------------------------------------------------------------------

_NORM = {"BPSK": 1.0, "QPSK": np.sqrt(2.0), "16QAM": np.sqrt(10.0), "64QAM": np.sqrt(42.0), "256QAM": np.sqrt(170.0)}


def _pam_levels(bits: np.ndarray, polarity: int) -> np.ndarray:
    """Gray PAM amplitude of the magnitude bits (MSB first), built inside out.

    3GPP (36.211 7.1, 38.211 5.1) nests as 2^(m-1) - s1 (2^(m-2) - s2 (...)), 802.11
    (17.3.5.8, 21.3.10.9) as 2^(m-1) + s1 (2^(m-2) + s2 (...)), with s = 1 - 2b.
    """
    level = np.ones(bits.shape[0])
    for i in range(bits.shape[1] - 1, -1, -1):
        level = 2.0 ** (bits.shape[1] - i) + polarity * (1 - 2.0 * bits[:, i]) * level
    return level


def constellation(modulation: str, standard: str) -> np.ndarray:
    """Points indexed by the bit label read MSB first (b0 is the MSB), unit mean energy.

    standard "3gpp": b0 sign I, b1 sign Q, then I and Q magnitude bits alternate, 0 -> positive.
    standard "ieee": first half of the bits is I, second half Q, 0 -> negative.
    """
    labels.check_choice("modulation", modulation, labels.MODULATIONS)
    labels.check_choice("constellation standard", standard, ("3gpp", "ieee"))
    m = labels.BITS_PER_SYMBOL[modulation]
    index = np.arange(2**m)
    bits = ((index[:, None] >> np.arange(m - 1, -1, -1)) & 1).astype(float)
    if modulation == "BPSK":
        points = (2 * bits[:, 0] - 1) if standard == "ieee" else (1 - 2 * bits[:, 0]) * (1 + 1j) / np.sqrt(2)
        return np.asarray(points, np.complex64)
    if standard == "3gpp":
        i_bits, q_bits = bits[:, 0::2], bits[:, 1::2]
        i_amp = (1 - 2 * i_bits[:, 0]) * _pam_levels(i_bits[:, 1:], -1)
        q_amp = (1 - 2 * q_bits[:, 0]) * _pam_levels(q_bits[:, 1:], -1)
    else:
        i_bits, q_bits = bits[:, : m // 2], bits[:, m // 2 :]
        i_amp = (2 * i_bits[:, 0] - 1) * _pam_levels(i_bits[:, 1:], +1)
        q_amp = (2 * q_bits[:, 0] - 1) * _pam_levels(q_bits[:, 1:], +1)
    return ((i_amp + 1j * q_amp) / _NORM[modulation]).astype(np.complex64)


_TABLES: dict[tuple[str, str], np.ndarray] = {}


def modulate(bits: np.ndarray, modulation: str, standard: str) -> np.ndarray:
    """Map a bit stream (length a multiple of the bits per symbol) to constellation points."""
    key = (modulation, standard)
    if key not in _TABLES:
        _TABLES[key] = constellation(modulation, standard)
    m = labels.BITS_PER_SYMBOL[modulation]
    groups = np.asarray(bits, np.uint8).reshape(-1, m)
    weights = (1 << np.arange(m - 1, -1, -1)).astype(np.uint8)  # sum <= 255: no overflow
    return _TABLES[key][groups @ weights]


# --- 3GPP pseudo-random (Gold) sequence, 36.211 7.2 / 38.211 5.2.1 ------------------------

_GOLD_NC = 1600
_gold_cache: dict[str, np.ndarray] = {}


def _gold_basis(length: int) -> np.ndarray:
    """Packed bits of x1 and of x2 for each single-bit initial state, from n = Nc on.

    x2 is linear in its 31-bit initial state, so x2 for any c_init is the XOR of the basis
    rows of its set bits: one XOR of a few packed rows instead of an LFSR run per sequence.
    """
    cached = _gold_cache.get("basis")
    if cached is not None and cached.shape[1] * 8 >= length:
        return cached
    total = _GOLD_NC + max(length, 1 << 18)
    seq = np.zeros((32, total + 31), np.uint8)
    seq[np.arange(31), np.arange(31)] = 1  # rows 0..30: x2 basis
    seq[31, 0] = 1  # row 31: x1
    x2_rows = slice(0, 31)
    # The recursions look back at most 31 and ahead at most 3, so 28 new samples at a time are safe.
    for n in range(0, total, 28):
        stop = min(n + 28, total)
        w = stop - n
        seq[x2_rows, n + 31 : stop + 31] = (
            seq[x2_rows, n + 3 : n + 3 + w]
            ^ seq[x2_rows, n + 2 : n + 2 + w]
            ^ seq[x2_rows, n + 1 : n + 1 + w]
            ^ seq[x2_rows, n : n + w]
        )
        seq[31, n + 31 : stop + 31] = seq[31, n + 3 : n + 3 + w] ^ seq[31, n : n + w]
    packed = np.packbits(seq[:, _GOLD_NC : _GOLD_NC + total - _GOLD_NC], axis=1)
    _gold_cache["basis"] = packed
    return packed


def gold_sequence(c_init, length: int) -> np.ndarray:
    """c(0..length-1) for the given c_init (uint8 0/1); an array of c_init gives one row each."""
    basis = _gold_basis(length)
    n_bytes = (length + 7) // 8
    inits = np.asarray(c_init, np.int64)
    chosen = ((inits.reshape(-1, 1) >> np.arange(31)) & 1).astype(bool)  # (n, 31)
    rows = np.empty((len(chosen), n_bytes), np.uint8)
    for i, bits in enumerate(chosen):
        rows[i] = np.bitwise_xor.reduce(basis[np.r_[31, np.flatnonzero(bits)], :n_bytes], axis=0)
    return np.unpackbits(rows, axis=1)[:, :length].reshape(inits.shape + (length,))


def gold_qpsk(c_init, n_symbols: int) -> np.ndarray:
    """Reference-signal QPSK r(m) = ((1 - 2c(2m)) + j (1 - 2c(2m+1))) / sqrt(2), per c_init."""
    c = gold_sequence(c_init, 2 * n_symbols).astype(np.float32)
    return ((1 - 2 * c[..., 0::2]) + 1j * (1 - 2 * c[..., 1::2])).astype(np.complex64) / np.float32(np.sqrt(2))


# --- OFDM -----------------------------------------------------------------------------------


def ofdm_modulate(grid: np.ndarray, cp_first: int, cp_other: int) -> np.ndarray:
    """Batched IFFT plus cyclic prefix.

    grid: (n_groups, symbols_per_group, n_fft) in FFT bin order; the first symbol of each group
    gets the longer prefix (LTE slot, NR half-subframe). Unit-power subcarriers give unit-power
    samples when every bin is used (scaled by sqrt(n_fft)).
    """
    n_groups, _n_sym, n_fft = grid.shape
    td = scipy.fft.ifft(grid.astype(np.complex64, copy=False), axis=-1, norm="ortho")
    first = np.concatenate([td[:, 0, n_fft - cp_first :], td[:, 0]], axis=-1)
    rest = np.concatenate([td[:, 1:, n_fft - cp_other :], td[:, 1:]], axis=-1).reshape(n_groups, -1)
    return np.concatenate([first, rest], axis=-1).reshape(-1)


def crop(iq: np.ndarray, active: np.ndarray, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n samples from `start`, refusing a stream that is too short (a bug, not bad input)."""
    if start + n > len(iq):
        raise RuntimeError(f"generated {len(iq)} samples, need {start + n}")
    return iq[start : start + n], active[start : start + n]


# --- downlink traffic: which resource blocks carry PDSCH ------------------------------------

FULL_LOAD_SHARE = 0.3
"""Share of LTE / NR waveforms whose cell is fully loaded (every RB of every subframe / slot)."""
LOAD_RANGE = (0.05, 1.0)
"""Offered load of the other waveforms (uniform), as a share of the PDSCH capacity; its floor
and MAX_IDLE_S keep the labelled modulation visible."""
MAX_IDLE_S = 4e-3
"""Longest run without PDSCH: every 5 ms holds some, and so does every waveform, so the
labelled modulation is always on the air."""
LONGEST_MEAN_BURST_S = 4e-3
"""Busy runs last 1 subframe / slot to this long on average (log-uniform per waveform)."""


def draw_load(rng: np.random.Generator) -> float:
    """The cell's offered load: full in FULL_LOAD_SHARE of waveforms, else uniform over LOAD_RANGE."""
    return 1.0 if rng.random() < FULL_LOAD_SHARE else float(rng.uniform(*LOAD_RANGE))


def check_load(load: float) -> float:
    """A caller's load, refused outside LOAD_RANGE with the range named."""
    if not LOAD_RANGE[0] <= load <= LOAD_RANGE[1]:
        raise ValueError(
            f"load must be {LOAD_RANGE[0]:g}..{LOAD_RANGE[1]:g} (a share of the PDSCH capacity), got {load}"
        )
    return float(load)


@dataclass(frozen=True)
class Schedule:
    """PDSCH resource blocks of consecutive subframes / slots and how the scheduler drew them."""

    rbs: np.ndarray
    """(units, N_RB) bool: the RBs that carry PDSCH in each subframe / slot."""
    busy_share: float
    """Drawn share of subframes / slots with PDSCH (before the MAX_IDLE_S floor)."""
    mean_burst_units: float
    """Drawn mean length of a run of busy subframes / slots."""
    scattered_share: float
    """Drawn share of allocations scattered over resource block groups (type 0) rather than contiguous."""

    def summary(self) -> dict:
        busy = self.rbs.any(axis=1)
        counts = self.rbs.sum(axis=1)[busy]
        return {
            "busy_fraction": round(float(busy.mean()), 4),
            "mean_burst_units": round(self.mean_burst_units, 3),
            "scattered_share": round(self.scattered_share, 3),
            "pdsch_rb_per_busy_unit": [int(counts.min()), int(counts.max())] if len(counts) else [0, 0],
        }


def _busy_units(rng: np.random.Generator, busy_share: float, mean_burst: float, n_units: int, max_idle: int):
    """On/off traffic: a two-state Markov chain with stationary busy share and mean busy-run length,
    then the longest idle run cut to max_idle units."""
    leave = 1.0 / mean_burst
    enter = min(1.0, leave * busy_share / (1.0 - busy_share))
    busy = np.empty(n_units, bool)
    state = rng.random() < busy_share
    idle_run = 0
    for i, u in enumerate(rng.random(n_units)):
        if not state and idle_run >= max_idle:
            state = True
        busy[i] = state
        idle_run = 0 if state else idle_run + 1
        state = u >= leave if state else u < enter
    return busy


def _rb_counts(rng: np.random.Generator, total: float, n_busy: int, n_rb: int) -> np.ndarray:
    """Random RB counts (1..n_rb) of the busy units that add up to about `total`: gamma weights
    scaled so that sum(min(n_rb, scale w)) = total (bisection)."""
    weights = rng.gamma(2.0, size=n_busy)
    if total >= n_busy * n_rb:
        return np.full(n_busy, n_rb)
    low, high = 0.0, n_rb / weights.min()
    for _ in range(40):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if np.minimum(n_rb, mid * weights).sum() < total else (low, mid)
    return np.clip(np.round(np.minimum(n_rb, high * weights)), 1, n_rb).astype(int)


def schedule_pdsch(
    rng: np.random.Generator, load: float, n_units: int, n_rb: int, rbg_size: int, units_per_ms: int
) -> Schedule:
    """PDSCH allocations of `n_units` subframes / slots for a cell at `load`.

    Traffic comes in bursts (busy runs of a drawn mean length) and the busy units share the
    offered RBs unevenly; each allocation is contiguous (LTE type 2, NR type 1) or whole
    resource block groups of `rbg_size` RBs scattered over the band (type 0). At load 1 every
    RB of every unit is allocated."""
    if load >= 1.0:
        return Schedule(np.ones((n_units, n_rb), bool), 1.0, float(n_units), 0.0)
    busy_share = float(np.exp(rng.uniform(np.log(load), 0.0)))  # log-uniform: bursty traffic is common at low load
    mean_burst = float(np.exp(rng.uniform(0.0, np.log(LONGEST_MEAN_BURST_S * 1e3 * units_per_ms))))
    mean_burst = max(mean_burst, busy_share / (1.0 - busy_share))  # idle runs last a unit or more on average
    scattered_share = float(rng.random())
    max_idle = round(MAX_IDLE_S * 1e3 * units_per_ms)
    busy = _busy_units(rng, busy_share, mean_burst, n_units, max_idle)
    if not busy.any():  # a window shorter than the longest idle run still shows the modulation
        busy[rng.integers(n_units)] = True
    busy_index = np.flatnonzero(busy)
    counts = _rb_counts(rng, load * n_units * n_rb, len(busy_index), n_rb)
    rbs = np.zeros((n_units, n_rb), bool)
    n_groups = -(-n_rb // rbg_size)
    for unit, count, scattered in zip(busy_index, counts, rng.random(len(busy_index)) < scattered_share):
        if scattered and count < n_rb:
            groups = rng.choice(n_groups, size=min(n_groups, max(1, round(count / rbg_size))), replace=False)
            rbs[unit, (groups[:, None] * rbg_size + np.arange(rbg_size)).ravel().clip(max=n_rb - 1)] = True
        else:
            first = int(rng.integers(n_rb - count + 1))
            rbs[unit, first : first + count] = True
    return Schedule(rbs, busy_share, mean_burst, scattered_share)


def traffic_meta(load: float, schedule: Schedule, pdsch_res: int, full_load_res: int, total_res: int) -> dict:
    """What the scheduler drew and what it served: `served_load` is the PDSCH REs over those a
    full load would fill, `pdsch_re_fraction` the PDSCH REs over all REs of the grid."""
    return {
        "load": round(load, 4),
        "served_load": round(pdsch_res / full_load_res, 4),
        "pdsch_re_fraction": round(pdsch_res / total_res, 4),
        **schedule.summary(),
    }
