"""Signals of the `other` class: none of WiFi, LTE or NR, so the receiver learns to say so.

- cw: an unmodulated carrier at a random offset with a slow random frequency drift.
- sc_psk / sc_qam: single-carrier bursts (BPSK/QPSK or 16/64QAM), root-raised-cosine shaped,
  symbol rate 0.5-10 MBd (log-uniform), random roll-off and carrier offset, random on/off times.
- fm: an analogue FM carrier modulated by band-limited noise (an audio-like message) with a
  random peak deviation.

All at 30.72 MS/s by default (the spectrogram's analysis rate), so no resampling is needed.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from .. import labels
from .common import PhyWaveform, finish, modulate, n_samples_for, random_bits

SAMPLE_RATE_HZ = 30.72e6
KIND_MODULATIONS = {"cw": (None,), "sc_psk": ("BPSK", "QPSK"), "sc_qam": ("16QAM", "64QAM"), "fm": (None,)}
SYMBOL_RATE_RANGE = (0.5e6, 10e6)
ROLL_OFFS = (0.2, 0.25, 0.35, 0.5)
CW_NOMINAL_BW_HZ = 15e3
"""A tone has no width; the drift keeps it within this, which is what SNR is measured over."""


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


def _offset(rng: np.random.Generator, fs: float, width: float) -> float:
    """A carrier offset that keeps the signal inside +-0.4 fs."""
    room = max(0.4 * fs - width / 2, 0.0)
    return float(rng.uniform(-room, room))


def _phasor(cycles: np.ndarray) -> np.ndarray:
    """exp(j 2 pi cycles) in complex64 from float32 cos and sin (numpy's complex exp is ~50x slower).

    The phase is wrapped to one cycle in float64 first, so float32 keeps it accurate."""
    angle = (2 * np.pi * (cycles - np.floor(cycles))).astype(np.float32)
    out = np.empty(len(angle), np.complex64)
    out.real = np.cos(angle)
    out.imag = np.sin(angle)
    return out


def _cw(n: int, fs: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float, dict]:
    f0 = _offset(rng, fs, CW_NOMINAL_BW_HZ)
    drift = np.cumsum(rng.standard_normal(n // 4096 + 2))
    drift = np.interp(np.arange(n) / 4096, np.arange(len(drift)), drift)
    drift *= (CW_NOMINAL_BW_HZ / 4) / max(np.max(np.abs(drift)), 1e-12)
    carrier = _phasor(np.cumsum(f0 + drift) / fs + rng.uniform(0, 1))
    return carrier, np.ones(n, bool), CW_NOMINAL_BW_HZ, {"offset_hz": f0}


def _single_carrier(n: int, fs: float, rng: np.random.Generator, modulation: str):
    # Samples per symbol p/q with q <= 4 keeps the polyphase filter short (8 p taps) while the
    # symbol rate still takes hundreds of values across 0.5-10 MBd (log-uniform draw).
    beta = float(rng.choice(ROLL_OFFS))
    target = float(np.exp(rng.uniform(*np.log(SYMBOL_RATE_RANGE))))
    down = int(rng.integers(1, 5))
    up = max(int(round(fs / target * down)), 2 * down + 1)
    rate = fs * down / up
    n_symbols = int(np.ceil(n * down / up)) + 16
    bits = random_bits(rng, n_symbols * labels.BITS_PER_SYMBOL[modulation])
    symbols = modulate(bits, modulation, "3gpp")
    taps = rrc(beta, up) * np.sqrt(up)
    shaped = scipy.signal.upfirdn(taps, symbols, up=up, down=down)[len(taps) // (2 * down) :][:n]
    f0 = _offset(rng, fs, (1 + beta) * rate)
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


def _fm(n: int, fs: float, rng: np.random.Generator):
    audio_bw = float(rng.uniform(3e3, 15e3))
    deviation = float(rng.uniform(5e3, 75e3))
    sos = scipy.signal.butter(4, audio_bw, fs=fs / 64, output="sos")
    message = scipy.signal.sosfilt(sos, rng.standard_normal(n // 64 + 64))[64:]
    message = np.interp(np.arange(n) / 64, np.arange(len(message)), message)
    message /= max(np.max(np.abs(message)), 1e-12)
    width = 2 * (deviation + audio_bw)  # Carson's rule
    f0 = _offset(rng, fs, width)
    carrier = _phasor(np.cumsum(f0 + deviation * message) / fs + rng.uniform(0, 1))
    return carrier, np.ones(n, bool), width, {"deviation_hz": deviation, "audio_bw_hz": audio_bw, "offset_hz": f0}


def generate(
    *,
    kind: str | None,
    bandwidth_hz: float | None,
    modulation: str | None,
    code_rate: str | None,
    duration_s: float,
    rng: np.random.Generator,
    sample_rate_hz: float = SAMPLE_RATE_HZ,
    **unknown,
) -> PhyWaveform:
    if unknown:
        raise ValueError(f"unknown options for 'other' {sorted(unknown)}; valid: sample_rate_hz")
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
    n = n_samples_for(duration_s, sample_rate_hz)
    if kind == "cw":
        iq, active, width, meta = _cw(n, sample_rate_hz, rng)
    elif kind == "fm":
        iq, active, width, meta = _fm(n, sample_rate_hz, rng)
    else:
        assert modulation is not None, "every single-carrier kind lists its modulations"
        iq, active, width, meta = _single_carrier(n, sample_rate_hz, rng, modulation)
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
    )
