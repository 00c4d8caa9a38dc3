"""Signals of the `other` class: none of WiFi, LTE or NR, so the receiver learns to say so.

- cw: an unmodulated carrier at a random offset with a slow random frequency drift.
- sc_psk / sc_qam: single-carrier bursts (BPSK/QPSK or 16/64QAM), root-raised-cosine shaped,
  symbol rate 0.5-10 MBd (log-uniform), random roll-off and carrier offset, random on/off times.
- fm: an analogue FM carrier modulated by band-limited noise (an audio-like message) with a
  random peak deviation.
- ofdm_other: OFDM with a numerology none of the standards uses: subcarrier spacing 5-500 kHz
  (log-uniform, at least 10 % away from WiFi's 312.5 and 78.125 kHz and 3GPP's 7.5-120 kHz),
  FFT size = sample rate / spacing, cyclic prefix 1/32-1/4 of the FFT or none, 1-25 MHz wide,
  BPSK-64QAM data with or without comb pilots and a DC null; continuous or in bursts.
- chirp: linear FM sweeps, FMCW radar-like (1-20 MHz swept in 10 us-1 ms with a time-bandwidth
  product of 20 or more, continuous or in frames) or LoRa-like packets (125-500 kHz, spreading
  factor 7-12, each symbol a cyclic shift of the up-chirp).

All at 30.72 MS/s by default (the spectrogram's analysis rate), so no resampling is needed,
and inside +-0.4 fs. `max_band_hz` narrows that band (centred at DC) to a capture's passband: a
signal wider than the passband would reach the receiver as band-limited noise under an `other`
label. Each kind then draws its width (symbol rate, OFDM width and subcarrier spacing, FM
deviation, chirp sweep and bandwidth) over what fits, as above, and its offset so that the whole
labelled band stays inside; a kind whose narrowest form does not fit takes the widest that does.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal

from .. import labels
from .common import MIN_VISIBLE_RUN_S, PhyWaveform, finish, modulate, n_samples_for, random_bits

SAMPLE_RATE_HZ = 30.72e6
KIND_MODULATIONS = {
    "cw": (None,),
    "sc_psk": ("BPSK", "QPSK"),
    "sc_qam": ("16QAM", "64QAM"),
    "fm": (None,),
    "ofdm_other": ("BPSK", "QPSK", "16QAM", "64QAM"),
    "chirp": (None,),
}
SYMBOL_RATE_RANGE = (0.5e6, 10e6)
ROLL_OFFS = (0.2, 0.25, 0.35, 0.5)
CW_NOMINAL_BW_HZ = 15e3
"""A tone has no width; the drift keeps it within this, which is what SNR is measured over."""
STANDARD_SPACINGS_HZ = (312.5e3, 78.125e3, 7.5e3, 15e3, 30e3, 60e3, 120e3)
"""Subcarrier spacings of WiFi (802.11a-ac, 802.11ax) and LTE / NR, which ofdm_other keeps 10 % away from."""
OFDM_SPACING_RANGE_HZ = (5e3, 500e3)
OFDM_BW_RANGE_HZ = (1e6, 25e6)
OFDM_CP_FRACTION_RANGE = (1 / 32, 1 / 4)
OFDM_MIN_SUBCARRIERS = 24
"""Fewer would make a narrow single-carrier-like signal, not an OFDM one."""
FM_DEVIATION_RANGE_HZ = (5e3, 75e3)
RADAR_SWEEP_RANGE_HZ = (1e6, 20e6)
RADAR_PERIOD_RANGE_S = (10e-6, 1e-3)
LORA_BANDWIDTHS_HZ = (125e3, 250e3, 500e3)
OWN_BAND_FRACTION = 0.8
"""Without `max_band_hz` a signal stays inside this fraction of its sample rate, centred at DC."""
MIN_BAND_HZ = 50e3
"""The narrowest `max_band_hz`: a tone and its drift, and FM of the widest message, still fit."""


def options() -> dict:
    mods = [m for kind in labels.OTHER_KINDS for m in KIND_MODULATIONS[kind] if m]
    return {
        "kind": list(labels.OTHER_KINDS),
        "bandwidth_hz": [],
        "modulation": mods,
        "code_rate": {m: [] for m in mods},
    }


def rrc(beta: float, samples_per_symbol: int, span_symbols: int = 8) -> np.ndarray:
    """Root-raised-cosine taps, unit energy (hand-written: scipy.signal has no RRC design)."""
    half = span_symbols * samples_per_symbol // 2
    t = np.arange(-half, half + 1) / samples_per_symbol
    taps = np.empty_like(t)
    zero = np.isclose(t, 0)
    edge = np.isclose(np.abs(t), 1 / (4 * beta))
    regular = ~zero & ~edge
    tr = t[regular]
    taps[regular] = (np.sin(np.pi * tr * (1 - beta)) + 4 * beta * tr * np.cos(np.pi * tr * (1 + beta))) / (
        np.pi * tr * (1 - (4 * beta * tr) ** 2)
    )
    taps[zero] = 1 - beta + 4 * beta / np.pi
    taps[edge] = (
        beta
        / np.sqrt(2)
        * ((1 + 2 / np.pi) * np.sin(np.pi / (4 * beta)) + (1 - 2 / np.pi) * np.cos(np.pi / (4 * beta)))
    )
    return taps / np.sqrt(np.sum(taps**2))


def _offset(rng: np.random.Generator, edge: float, width: float) -> float:
    """A carrier offset that keeps a band of `width` inside +-`edge`."""
    room = max(edge - width / 2, 0.0)
    return float(rng.uniform(-room, room))


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Uniform over [low, high]; `high` when the range is empty (the least value does not fit)."""
    return float(rng.uniform(min(low, high), high))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Log-uniform over [low, high]; `high` when the range is empty (the least value does not fit)."""
    return float(np.exp(rng.uniform(np.log(min(low, high)), np.log(high))))


def _on_grid(value: float, step: float, room: float) -> float:
    """`value` rounded to a whole number of `step`, kept within +-`room` (a grid point is: 0)."""
    limit = np.floor(room / step)
    return float(np.clip(np.round(value / step), -limit, limit) * step)


def _phasor(cycles: np.ndarray) -> np.ndarray:
    """exp(j 2 pi cycles) in complex64 from float32 cos and sin (numpy's complex exp is ~50x slower).

    The phase is wrapped to one cycle in float64 first, so float32 keeps it accurate."""
    angle = (2 * np.pi * (cycles - np.floor(cycles))).astype(np.float32)
    out = np.empty(len(angle), np.complex64)
    out.real = np.cos(angle)
    out.imag = np.sin(angle)
    return out


def _cw(n: int, fs: float, edge: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float, dict]:
    f0 = _offset(rng, edge, CW_NOMINAL_BW_HZ)
    drift = np.cumsum(rng.standard_normal(n // 4096 + 2))
    drift = np.interp(np.arange(n) / 4096, np.arange(len(drift)), drift)
    drift *= (CW_NOMINAL_BW_HZ / 4) / max(np.max(np.abs(drift)), 1e-12)
    carrier = _phasor(np.cumsum(f0 + drift) / fs + rng.uniform(0, 1))
    return carrier, np.ones(n, bool), CW_NOMINAL_BW_HZ, {"offset_hz": f0}


def _single_carrier(n: int, fs: float, edge: float, rng: np.random.Generator, modulation: str):
    # Samples per symbol p/q with q <= 4 keeps the polyphase filter short (8 p taps) while the
    # symbol rate still takes hundreds of values across 0.5-10 MBd (log-uniform draw), up to
    # the rate whose band, (1 + roll-off) times it, spans +-edge.
    beta = float(rng.choice(ROLL_OFFS))
    target = _log_uniform(rng, SYMBOL_RATE_RANGE[0], min(SYMBOL_RATE_RANGE[1], 2 * edge / (1 + beta)))
    down = int(rng.integers(1, 5))
    up = max(int(round(fs / target * down)), int(np.ceil(fs * down * (1 + beta) / (2 * edge))), 2 * down + 1)
    rate = fs * down / up
    n_symbols = int(np.ceil(n * down / up)) + 16
    bits = random_bits(rng, n_symbols * labels.BITS_PER_SYMBOL[modulation])
    symbols = modulate(bits, modulation, "3gpp")
    taps = rrc(beta, up) * np.sqrt(up)
    shaped = scipy.signal.upfirdn(taps, symbols, up=up, down=down)[len(taps) // (2 * down) :][:n]
    f0 = _offset(rng, edge, (1 + beta) * rate)
    iq = shaped.astype(np.complex64) * _phasor(f0 / fs * np.arange(n))
    # Bursts: on for 0.2-4 ms, off for 0.05-2 ms, starting at a random point of the pattern.
    active = np.zeros(n, bool)
    pos = -int(rng.integers(int(4e-3 * fs)))
    while pos < n:
        on = int(rng.uniform(0.2e-3, 4e-3) * fs)
        active[max(pos, 0) : max(pos + on, 0)] = True
        pos += on + int(rng.uniform(0.05e-3, 2e-3) * fs)
    iq[~active] = 0
    return iq, active, (1 + beta) * rate, {"symbol_rate_hz": rate, "roll_off": beta, "offset_hz": f0}


def _fm(n: int, fs: float, edge: float, rng: np.random.Generator):
    audio_bw = float(rng.uniform(3e3, 15e3))
    deviation = _uniform(rng, FM_DEVIATION_RANGE_HZ[0], min(FM_DEVIATION_RANGE_HZ[1], edge - audio_bw))
    sos = scipy.signal.butter(4, audio_bw, fs=fs / 64, output="sos")
    message = scipy.signal.sosfilt(sos, rng.standard_normal(n // 64 + 64))[64:]
    message = np.interp(np.arange(n) / 64, np.arange(len(message)), message)
    message /= max(np.max(np.abs(message)), 1e-12)
    width = 2 * (deviation + audio_bw)  # Carson's rule
    f0 = _offset(rng, edge, width)
    carrier = _phasor(np.cumsum(f0 + deviation * message) / fs + rng.uniform(0, 1))
    return carrier, np.ones(n, bool), width, {"deviation_hz": deviation, "audio_bw_hz": audio_bw, "offset_hz": f0}


def _bursts(
    rng: np.random.Generator,
    n: int,
    on_range_s: tuple[float, float],
    off_range_s: tuple[float, float],
    fs: float,
    unit: int = 1,
) -> list[tuple[int, int]]:
    """(start, length) of bursts covering n samples from a random point of the pattern: on and
    off times log-uniform in their ranges and whole numbers of `unit`-long symbols, so that every
    burst keeps to one symbol clock (as a TDMA link does)."""
    on_log, off_log = np.log(on_range_s), np.log(off_range_s)
    bursts = []
    pos = -int(rng.integers(int(on_range_s[1] * fs)))
    while pos < n:
        on = unit * max(1, int(np.ceil(np.exp(rng.uniform(*on_log)) * fs / unit)))
        bursts.append((pos, on))
        pos += on + unit * max(1, int(round(np.exp(rng.uniform(*off_log)) * fs / unit)))
    return bursts


def _ofdm_numerology(rng: np.random.Generator, fs: float, widest: float) -> tuple[int, float]:
    """FFT size and subcarrier spacing fs / N_FFT, log-uniform up to `widest`, away from the
    standards' spacings."""
    while True:
        drawn = _log_uniform(rng, OFDM_SPACING_RANGE_HZ[0], min(OFDM_SPACING_RANGE_HZ[1], widest))
        n_fft = max(int(round(fs / drawn)), int(np.ceil(fs / widest)))
        spacing = fs / n_fft
        if all(abs(spacing / standard - 1) > 0.1 for standard in STANDARD_SPACINGS_HZ):
            return n_fft, spacing


def _ofdm_other(n: int, fs: float, edge: float, rng: np.random.Generator, modulation: str):
    # The band spans the used subcarriers and the DC null: with two spacings to spare, a shift of
    # whole subcarriers can always keep it inside +-edge.
    n_fft, spacing = _ofdm_numerology(rng, fs, 2 * edge / (OFDM_MIN_SUBCARRIERS + 2))
    widest = min(OFDM_BW_RANGE_HZ[1], 2 * edge)
    narrowest = max(OFDM_BW_RANGE_HZ[0], OFDM_MIN_SUBCARRIERS * spacing)
    n_used = min(int(round(_log_uniform(rng, narrowest, widest) / spacing)), int(2 * edge // spacing) - 2)
    dc_null = bool(rng.random() < 0.5)
    below = n_used // 2
    subcarriers = np.arange(-below, n_used - below + dc_null)
    if dc_null:
        subcarriers = subcarriers[subcarriers != 0]
    pilot_step = int(rng.choice((0, 6, 8, 12, 16)))  # 0: no pilots
    pilots = (subcarriers % pilot_step == 0) if pilot_step else np.zeros(n_used, bool)
    cp = int(round(np.exp(rng.uniform(*np.log(OFDM_CP_FRACTION_RANGE))) * n_fft)) if rng.random() < 0.8 else 0
    symbol_len = n_fft + cp
    continuous = bool(rng.random() < 0.4)
    if continuous:
        bursts = [(-int(rng.integers(symbol_len)), symbol_len * (n // symbol_len + 2))]
    else:
        bursts = _bursts(rng, n, (MIN_VISIBLE_RUN_S, 5e-3), (20e-6, 3e-3), fs, unit=symbol_len)
    counts = [length // symbol_len for _, length in bursts]
    n_symbols = sum(counts)
    # The carrier offset is a whole number of subcarriers: a shift of the grid keeps every prefix cyclic.
    middle = (subcarriers.min() + subcarriers.max()) / 2
    width = (subcarriers.max() - subcarriers.min() + 1) * spacing
    room = edge - width / 2
    shift = int(
        np.clip(
            round(_offset(rng, edge, width) / spacing - middle),
            np.ceil(-room / spacing - middle),
            np.floor(room / spacing - middle),
        )
    )
    bins = np.mod(subcarriers + shift, n_fft)
    grid = np.zeros((n_symbols, n_fft), np.complex64)
    data = ~pilots
    bits = random_bits(rng, n_symbols * int(data.sum()) * labels.BITS_PER_SYMBOL[modulation])
    grid[:, bins[data]] = modulate(bits, modulation, "3gpp").reshape(n_symbols, -1)
    grid[:, bins[pilots]] = 1 - 2 * random_bits(rng, int(pilots.sum())).astype(np.float32)
    td = scipy.fft.ifft(grid, axis=1, norm="ortho", overwrite_x=True)
    symbols = np.concatenate([td[:, n_fft - cp :], td], axis=1).reshape(-1)
    iq = np.zeros(n, np.complex64)
    active = np.zeros(n, bool)
    first = 0
    for (pos, length), count in zip(bursts, counts):
        lo, hi = max(pos, 0), min(pos + length, n)
        if hi > lo:
            offset = first * symbol_len + lo - pos
            iq[lo:hi] = symbols[offset : offset + hi - lo]
            active[lo:hi] = True
        first += count
    lowest, highest = subcarriers.min() + shift, subcarriers.max() + shift
    meta = {
        "n_fft": n_fft,
        "subcarrier_spacing_hz": spacing,
        "cp_samples": cp,
        "n_subcarriers": n_used,
        "dc_null": dc_null,
        "pilot_step": pilot_step,
        "continuous": continuous,
        "offset_hz": (lowest + highest) / 2 * spacing,
    }
    return iq, active, (highest - lowest + 1) * spacing, meta


def _chirp(n: int, fs: float, edge: float, rng: np.random.Generator):
    if rng.random() < 0.5:
        return _radar_chirp(n, fs, edge, rng)
    return _lora_chirp(n, fs, edge, rng)


def _radar_chirp(n: int, fs: float, edge: float, rng: np.random.Generator):
    """Sawtooth FMCW: back-to-back linear sweeps across `sweep` Hz, coherent from sweep to sweep,
    continuous or in frames of sweeps (automotive and altimeter radars). The band is the sweep
    widened by the ramp's own main lobe (2 / period): the sweep leaves room for the longest
    period's, and the period is drawn long enough for its own."""
    shortest_s, longest_s = RADAR_PERIOD_RANGE_S
    sweep = _log_uniform(rng, RADAR_SWEEP_RANGE_HZ[0], min(RADAR_SWEEP_RANGE_HZ[1], 2 * edge - 2 / longest_s))
    shortest_s = max(shortest_s, 20 / sweep, 2 / (2 * edge - sweep))  # time-bandwidth >= 20
    period_s = _log_uniform(rng, shortest_s, longest_s)
    width = sweep + 2 / period_s
    direction = 1 if rng.random() < 0.5 else -1
    f0 = _offset(rng, edge, width)
    length = int(period_s * fs)
    t = np.arange(length) / fs
    ramp = _phasor(direction * (0.5 * sweep / period_s * t**2 - 0.5 * sweep * t) + f0 * t)
    continuous = bool(rng.random() < 0.5)
    if continuous:
        bursts = [(-int(rng.integers(length)), length * (n // length + 2))]
    else:
        bursts = _bursts(rng, n, (MIN_VISIBLE_RUN_S, 5e-3), (50e-6, 3e-3), fs, unit=length)
    phase = rng.uniform(0, 1)
    iq = np.zeros(n, np.complex64)
    active = np.zeros(n, bool)
    for pos, span in bursts:
        lo, hi = max(pos, 0), min(pos + span, n)
        if hi <= lo:
            continue
        starts = pos + length * np.arange(span // length)
        coherent = _phasor(f0 * starts / fs + phase)
        iq[lo:hi] = (coherent[:, None] * ramp[None, :]).reshape(-1)[lo - pos : hi - pos]
        active[lo:hi] = True
    meta = {
        "style": "fmcw",
        "sweep_hz": sweep,
        "sweep_us": period_s * 1e6,
        "up": direction > 0,
        "continuous": continuous,
        "offset_hz": f0,
    }
    return iq, active, width, meta


def _lora_chirp(n: int, fs: float, edge: float, rng: np.random.Generator):
    """Packets of chirp-spread-spectrum symbols: 8 plain up-chirps, then up-chirps cyclically
    shifted by the symbol value (the frequency wraps from +bw/2 to -bw/2), phase-continuous."""
    bw = float(rng.choice([bw for bw in LORA_BANDWIDTHS_HZ if bw <= 2 * edge] or [2 * edge]))
    sf = int(rng.integers(7, 13))
    chips = 2**sf
    symbol_s = chips / bw
    symbol_len = int(round(symbol_s * fs))
    # An offset of whole cycles per symbol keeps the wrapped chirp continuous: a symbol is a roll of one.
    f0 = _on_grid(_offset(rng, edge, bw), 1 / symbol_s, edge - bw / 2)
    t = np.arange(symbol_len) / fs
    up = _phasor(0.5 * bw / symbol_s * t**2 + (f0 - 0.5 * bw) * t)
    twice = np.concatenate([up, up])
    bursts = _bursts(rng, n, (16 * symbol_s, 64 * symbol_s), (0.2e-3, 8e-3), fs, unit=symbol_len)
    iq = np.zeros(n, np.complex64)
    active = np.zeros(n, bool)
    for pos, length in bursts:
        shifts = rng.integers(chips, size=length // symbol_len) * symbol_len // chips
        shifts[:8] = 0
        # Each symbol starts where the previous one's phase left off.
        scale = np.cumprod(np.concatenate([[1.0], up[shifts[:-1]] / up[shifts[1:]]])).astype(np.complex64)
        scale *= np.complex64(np.exp(2j * np.pi * rng.uniform(0, 1)))
        for index, (shift, factor) in enumerate(zip(shifts, scale)):
            begin = pos + index * symbol_len
            lo, hi = max(begin, 0), min(begin + symbol_len, n)
            if hi > lo:
                iq[lo:hi] = twice[shift + lo - begin : shift + hi - begin] * factor
        active[max(pos, 0) : max(min(pos + length, n), 0)] = True
    meta = {"style": "lora", "chirp_bw_hz": bw, "spreading_factor": sf, "offset_hz": f0}
    return iq, active, bw, meta


def generate(
    *,
    kind: str | None,
    bandwidth_hz: float | None,
    modulation: str | None,
    code_rate: str | None,
    duration_s: float,
    rng: np.random.Generator,
    sample_rate_hz: float = SAMPLE_RATE_HZ,
    max_band_hz: float | None = None,
    **unknown,
) -> PhyWaveform:
    """One `other` signal; `max_band_hz` (default: OWN_BAND_FRACTION of the sample rate) is the
    band, centred at DC, its labelled occupied band is drawn to lie inside."""
    if unknown:
        raise ValueError(f"unknown options for 'other' {sorted(unknown)}; valid: sample_rate_hz, max_band_hz")
    if bandwidth_hz is not None or code_rate is not None:
        raise ValueError(
            "'other' signals draw their own width and carry no code rate: leave bandwidth_hz and code_rate as None"
        )
    if kind is None:
        fitting = [k for k in labels.OTHER_KINDS if modulation is None or modulation in KIND_MODULATIONS[k]]
        if not fitting:
            raise ValueError(
                f"no 'other' kind carries {modulation!r}; valid modulations: {', '.join(options()['modulation'])}"
            )
        kind = str(rng.choice(fitting))
    labels.check_choice("kind", kind, labels.OTHER_KINDS)
    if modulation is None:
        modulation = KIND_MODULATIONS[kind][int(rng.integers(len(KIND_MODULATIONS[kind])))]
    labels.check_choice(f"modulation of {kind}", modulation, KIND_MODULATIONS[kind])
    if not sample_rate_hz > 0:
        raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
    edge = OWN_BAND_FRACTION * sample_rate_hz / 2
    if max_band_hz is not None:
        if not MIN_BAND_HZ <= max_band_hz < float("inf"):
            raise ValueError(f"max_band_hz must be at least {MIN_BAND_HZ:g} Hz, got {max_band_hz}")
        edge = min(edge, max_band_hz / 2)
    n = n_samples_for(duration_s, sample_rate_hz)
    if kind == "cw":
        iq, active, width, meta = _cw(n, sample_rate_hz, edge, rng)
    elif kind == "fm":
        iq, active, width, meta = _fm(n, sample_rate_hz, edge, rng)
    elif kind == "chirp":
        iq, active, width, meta = _chirp(n, sample_rate_hz, edge, rng)
    elif kind == "ofdm_other":
        assert modulation is not None, "ofdm_other lists its modulations"
        iq, active, width, meta = _ofdm_other(n, sample_rate_hz, edge, rng, modulation)
    else:
        assert modulation is not None, "every single-carrier kind lists its modulations"
        iq, active, width, meta = _single_carrier(n, sample_rate_hz, edge, rng, modulation)
    iq, active = finish(iq, active)
    meta["kind"] = kind
    return PhyWaveform(
        iq=iq,
        sample_rate_hz=sample_rate_hz,
        active=active,
        protocol="other",
        bandwidth_hz=width,
        occupied_bw_hz=width,
        modulation=modulation,
        code_rate=None,
        coding="none",
        meta=meta,
        occupied_centre_hz=meta["offset_hz"],
    )
