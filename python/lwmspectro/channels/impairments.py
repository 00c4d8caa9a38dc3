"""Frequency offsets and receiver impairments, each optional and each returning its labels.

Every function takes `y` as a stream (1-D) or as frames (F, L) cut from a stream; where
time matters (CFO, phase noise) it also takes `sample_index`, the absolute sample index
of every element of `y` (`frame_sample_index` builds it for frames), so that frames
computed separately see one consistent impairment. Each returns (impaired y, labels).

Frequency offsets follow the paper's receiver: the transmitter's and receiver's reference
oscillators differ by a few ppm, the receiver estimates and removes the resulting carrier
and sampling frequency offsets, and a small residual of each remains
(`draw_frequency_offsets`). The residual CFO is applied with `carrier_frequency_offset`;
the residual SFO is a receiver clock that runs fast or slow, applied by
`TDLChannel.apply`/`apply_frames(..., sampling_offset_ppm=...)`, which can read the
signal between samples.

The receiver impairments real SDR front ends add, in the order a receive chain applies
them (`RECEIVER_IMPAIRMENTS`): local-oscillator phase noise (a Wiener process, whose
spectrum falls as 1/f^2), IQ gain/phase imbalance of the mixer, a DC offset from LO
leakage, and an AGC followed by an 8-bit ADC as in an RTL-SDR. `apply_random` draws
their parameters from `RECEIVER_IMPAIRMENT_RANGES` and applies the chosen ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..labels import check_choice
from .fading import require_generator
from .noise import CounterStreams, mean_power

RECEIVER_IMPAIRMENTS = ("phase_noise", "iq_imbalance", "dc_offset", "adc8")

RECEIVER_IMPAIRMENT_RANGES = {
    "phase_noise_dbc_hz": (-100.0, -80.0),  # at PHASE_NOISE_OFFSET_HZ: linewidths of 6 to 630 Hz
    "iq_gain_db": (-1.0, 1.0),
    "iq_phase_deg": (-5.0, 5.0),
    "dc_offset_dbc": (-40.0, -15.0),
    "agc_backoff_db": (8.0, 18.0),  # RMS below the ADC's full scale
}
"""Uniform ranges the augmentation draws from (typical of low-cost SDR front ends)."""

PHASE_NOISE_OFFSET_HZ = 100e3


def frame_sample_index(starts, frame_len: int) -> np.ndarray:
    """Absolute sample indices (F, frame_len) of frames starting at `starts`."""
    starts = np.atleast_1d(np.asarray(starts, np.int64))
    return starts[:, None] + np.arange(int(frame_len))[None, :]


def _sample_index(y: np.ndarray, sample_index) -> np.ndarray:
    if sample_index is None:
        if y.ndim != 1:
            raise ValueError(f"frames of shape {y.shape} need sample_index (see frame_sample_index)")
        return np.arange(y.size)
    sample_index = np.asarray(sample_index, np.int64)
    if sample_index.shape != y.shape:
        raise ValueError(f"sample_index has shape {sample_index.shape}, expected the signal's {y.shape}")
    return sample_index


def draw_frequency_offsets(
    rng: np.random.Generator, carrier_hz: float, max_ppm: float = 5.0, residual_fraction: float = 0.02
) -> dict:
    """Oscillator error drawn uniformly in +-`max_ppm`, compensated to a residual.

    One reference drives both the LO and the sampling clock (as in most SDRs), so the CFO
    (ppm x fc) and SFO (ppm) share the error; compensation leaves each a residual drawn
    uniformly within +-`residual_fraction` of it. Returns the labels, whose `cfo_hz` and
    `sfo_ppm` are the residuals to apply.
    """
    require_generator(rng)
    if not np.isfinite(carrier_hz) or carrier_hz <= 0:
        raise ValueError(f"carrier frequency must be positive (Hz), got {carrier_hz}")
    if max_ppm < 0 or not 0 <= residual_fraction <= 1:
        raise ValueError("max_ppm must be non-negative and residual_fraction within [0, 1]")
    ppm = float(rng.uniform(-max_ppm, max_ppm))
    cfo_hz = ppm * 1e-6 * carrier_hz
    return {
        "oscillator_ppm": ppm,
        "cfo_before_compensation_hz": cfo_hz,
        "cfo_hz": float(cfo_hz * rng.uniform(-residual_fraction, residual_fraction)),
        "sfo_ppm": float(ppm * rng.uniform(-residual_fraction, residual_fraction)),
    }


PHASOR_BITS = 12
PHASOR_BLOCK = 1 << PHASOR_BITS
"""Samples per block of `phasor_at`'s coarse table (a power of two: the block and the offset
within it are a shift and a mask)."""


def unit_phasors(phase: np.ndarray) -> np.ndarray:
    """exp(1j * phase) for a float32 `phase`, in complex64: numpy's complex exp works in double
    precision whatever the input, ten times the cost of float32 cos and sin."""
    phasors = np.empty(phase.shape, np.complex64)
    phasors.real = np.cos(phase)
    phasors.imag = np.sin(phase)
    return phasors


def phasor_at(sample_index, cycles_per_sample: float) -> np.ndarray:
    """exp(j 2 pi c n) (complex64) at the absolute indices n: the product of two short tables of
    exponentials, one per block of PHASOR_BLOCK samples and one per offset within a block, rather
    than an exponential per sample (several times slower on the millions of samples of a capture)."""
    n = np.asarray(sample_index, np.int64)
    if n.size == 0:
        return np.ones(n.shape, np.complex64)
    blocks = n >> PHASOR_BITS
    first = int(blocks.min())

    def turns(start: int, count: int, step: float) -> np.ndarray:
        cycles = (step * np.arange(start, start + count)) % 1.0
        return np.exp(2j * np.pi * cycles).astype(np.complex64)

    coarse = turns(first, int(blocks.max()) - first + 1, cycles_per_sample * PHASOR_BLOCK)
    fine = turns(0, PHASOR_BLOCK, cycles_per_sample)
    return coarse[blocks - first] * fine[n & (PHASOR_BLOCK - 1)]


def carrier_frequency_offset(y, cfo_hz: float, sample_rate_hz: float, sample_index=None) -> tuple[np.ndarray, dict]:
    """Shift the spectrum of `y` by `cfo_hz`: y[n] exp(j 2 pi cfo n / fs) at absolute n."""
    y = np.asarray(y)
    n = _sample_index(y, sample_index)
    return (y * phasor_at(n, cfo_hz / sample_rate_hz)).astype(np.complex64), {"cfo_hz": float(cfo_hz)}


def phase_noise(
    y,
    rng: np.random.Generator,
    sample_rate_hz: float,
    dbc_hz: float,
    offset_hz: float = PHASE_NOISE_OFFSET_HZ,
    sample_index=None,
) -> tuple[np.ndarray, dict]:
    """Wiener phase noise whose 1/f^2 spectrum is `dbc_hz` at `offset_hz`.

    A Wiener process with 3 dB linewidth b has L(f) = b / (2 pi f^2) far from the carrier,
    so b = 2 pi f^2 10^(L/10), and phase increments of variance 2 pi b dn / fs over dn
    samples; drawing the increments between the sorted absolute indices makes frames far
    apart correctly decorrelated without generating the samples between them.
    """
    require_generator(rng)
    y = np.asarray(y)
    n = _sample_index(y, sample_index)
    linewidth_hz = 2.0 * np.pi * offset_hz**2 * 10.0 ** (dbc_hz / 10.0)
    unique, inverse = np.unique(n, return_inverse=True)
    gaps = np.diff(unique, prepend=unique[:1])
    steps = rng.standard_normal(unique.size) * np.sqrt(2.0 * np.pi * linewidth_hz * gaps / sample_rate_hz)
    phase = np.cumsum(steps)[inverse].reshape(y.shape)
    labels = {
        "phase_noise_dbc_hz": float(dbc_hz),
        "phase_noise_offset_hz": float(offset_hz),
        "phase_noise_linewidth_hz": float(linewidth_hz),
    }
    return (y * np.exp(1j * phase)).astype(np.complex64), labels


def iq_imbalance(y, gain_db: float, phase_deg: float) -> tuple[np.ndarray, dict]:
    """Mixer imbalance: the Q branch has gain g and a phase error phi against I,
    y' = mu y + nu conj(y), mu = (1 + g e^-j phi) / 2, nu = (1 - g e^j phi) / 2,
    which leaves an image of relative power |nu / mu|^2 at the mirrored frequency."""
    gain = 10.0 ** (gain_db / 20.0)
    phi = np.deg2rad(phase_deg)
    mu = (1.0 + gain * np.exp(-1j * phi)) / 2.0
    nu = (1.0 - gain * np.exp(1j * phi)) / 2.0
    y = np.asarray(y)
    labels = {"iq_gain_db": float(gain_db), "iq_phase_deg": float(phase_deg)}
    return (mu * y + nu * np.conj(y)).astype(np.complex64), labels


def dc_offset(y, level_dbc: float, phase_rad: float = 0.0) -> tuple[np.ndarray, dict]:
    """Add a constant `level_dbc` below the mean power of `y` (LO leakage at DC)."""
    y = np.asarray(y)
    offset = np.sqrt(mean_power(y) * 10.0 ** (level_dbc / 10.0)) * np.exp(1j * phase_rad)
    return (y + offset).astype(np.complex64), {"dc_offset_dbc": float(level_dbc)}


def quantize(y, bits: int = 8, backoff_db: float = 12.0) -> tuple[np.ndarray, dict]:
    """AGC then an ADC of `bits` per rail, as in an RTL-SDR's unsigned 8-bit I/Q.

    The AGC scales `y` so that its RMS sits `backoff_db` below full scale (+-1 per rail);
    each rail is then clipped and rounded to one of 2^bits mid-rise levels. Output is in
    units of full scale.
    """
    if int(bits) < 1 or int(bits) > 16:
        raise ValueError(f"bits must be 1..16, got {bits}")
    y = np.asarray(y)
    return quantize_at(y, bits, backoff_db, mean_power(y)), {
        "adc_bits": int(bits),
        "agc_backoff_db": float(backoff_db),
    }


def _receiver_draws(rng: np.random.Generator, kinds) -> tuple[tuple[str, ...], Callable[[str], float]]:
    """`kinds` checked against RECEIVER_IMPAIRMENTS, and a draw of one named parameter from
    RECEIVER_IMPAIRMENT_RANGES: what apply_random and draw_receiver_impairments share, so that
    both draw the same values in the same order."""
    require_generator(rng)
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    for kind in kinds:
        check_choice("receiver impairment", kind, RECEIVER_IMPAIRMENTS)

    def draw(name: str) -> float:
        return float(rng.uniform(*RECEIVER_IMPAIRMENT_RANGES[name]))

    return kinds, draw


def apply_random(
    y, sample_index, sample_rate_hz: float, rng: np.random.Generator, kinds=RECEIVER_IMPAIRMENTS
) -> tuple[np.ndarray, dict]:
    """Apply the receiver impairments named in `kinds`, in receive-chain order, with
    parameters drawn from RECEIVER_IMPAIRMENT_RANGES; returns (y, all their labels).
    `sample_index` is as in `phase_noise` (None for a stream)."""
    kinds, draw = _receiver_draws(rng, kinds)

    labels = {"receiver_impairments": [k for k in RECEIVER_IMPAIRMENTS if k in kinds]}
    if "phase_noise" in kinds:
        y, more = phase_noise(y, rng, sample_rate_hz, draw("phase_noise_dbc_hz"), sample_index=sample_index)
        labels.update(more)
    if "iq_imbalance" in kinds:
        y, more = iq_imbalance(y, draw("iq_gain_db"), draw("iq_phase_deg"))
        labels.update(more)
    if "dc_offset" in kinds:
        y, more = dc_offset(y, draw("dc_offset_dbc"), float(rng.uniform(-np.pi, np.pi)))
        labels.update(more)
    if "adc8" in kinds:
        y, more = quantize(y, 8, draw("agc_backoff_db"))
        labels.update(more)
    return np.asarray(y, np.complex64), labels


def draw_receiver_impairments(rng: np.random.Generator, kinds=RECEIVER_IMPAIRMENTS) -> dict:
    """The parameters apply_random would draw for `kinds`, in its order, as labels; the phase
    noise's own samples are left to `indexed_phase_noise`."""
    kinds, draw = _receiver_draws(rng, kinds)

    drawn: dict = {"receiver_impairments": [k for k in RECEIVER_IMPAIRMENTS if k in kinds]}
    if "phase_noise" in kinds:
        dbc_hz = draw("phase_noise_dbc_hz")
        drawn.update(
            phase_noise_dbc_hz=dbc_hz,
            phase_noise_offset_hz=PHASE_NOISE_OFFSET_HZ,
            phase_noise_linewidth_hz=2.0 * np.pi * PHASE_NOISE_OFFSET_HZ**2 * 10.0 ** (dbc_hz / 10.0),
        )
    if "iq_imbalance" in kinds:
        drawn.update(iq_gain_db=draw("iq_gain_db"), iq_phase_deg=draw("iq_phase_deg"))
    if "dc_offset" in kinds:
        drawn.update(dc_offset_dbc=draw("dc_offset_dbc"), dc_offset_phase_rad=float(rng.uniform(-np.pi, np.pi)))
    if "adc8" in kinds:
        drawn.update(adc_bits=8, agc_backoff_db=draw("agc_backoff_db"))
    return drawn


PHASE_NOISE_BLOCK = 1024
"""Samples per block of `indexed_phase_noise`'s coarse walk."""


def indexed_phase_noise(
    key: np.ndarray, sample_index: np.ndarray, linewidth_hz: float, sample_rate_hz: float
) -> np.ndarray:
    """Wiener phase (radians) at the absolute `sample_index` (sorted, 1-D), a function of the index
    alone: a coarse walk over blocks of PHASE_NOISE_BLOCK samples (one step per block, drawn in
    order from `key`'s first stream), filled in each block with a Brownian bridge from the block's
    own generator. Its increments are those of phase_noise's process, whichever samples are asked."""
    sample_index = np.asarray(sample_index, np.int64)
    if sample_index.size == 0:
        return np.zeros(0)
    if np.any(np.diff(sample_index) < 0):
        raise ValueError("sample_index must be sorted")
    step_std = np.sqrt(2.0 * np.pi * linewidth_hz / sample_rate_hz)
    length = PHASE_NOISE_BLOCK
    blocks = sample_index // length
    walk = np.random.Generator(np.random.Philox(key=key)).standard_normal(int(blocks.max()) + 1)
    corners = np.concatenate([[0.0], np.cumsum(walk)]) * step_std * np.sqrt(length)
    phase = np.empty(sample_index.size)
    unique, firsts = np.unique(blocks, return_index=True)  # sorted indices: each block's samples are a run
    streams = CounterStreams(key)
    fraction = np.arange(1, length + 1) / length
    for block, first, end in zip(unique, firsts, [*firsts[1:], sample_index.size]):
        chosen = slice(first, end)
        path = np.cumsum(streams.at(int(block) + 1).standard_normal(length)) * step_std
        bridge = path - fraction * path[-1]
        within = sample_index[chosen] - block * length
        start, end = corners[block], corners[block + 1]
        phase[chosen] = start + fraction[within] * (end - start) + bridge[within]
    return phase


def apply_drawn(
    y: np.ndarray, sample_index: np.ndarray, sample_rate_hz: float, drawn: dict, key: np.ndarray, measured
) -> np.ndarray:
    """The impairments `drawn` (draw_receiver_impairments) applied to the samples `y` at the absolute
    `sample_index`: phase noise by index, the levels of the DC offset and the ADC's AGC measured
    over y[measured] (a mask), so that any stretch of a stream is impaired as the whole is."""
    y = np.asarray(y, np.complex64)
    kinds = drawn["receiver_impairments"]
    if "phase_noise" in kinds:
        phase = indexed_phase_noise(key, sample_index, drawn["phase_noise_linewidth_hz"], sample_rate_hz)
        # Wrapped in double precision, turned in single: the walk reaches thousands of radians.
        y = y * unit_phasors(np.remainder(phase, 2 * np.pi).astype(np.float32))
    if "iq_imbalance" in kinds:
        y, _ = iq_imbalance(y, drawn["iq_gain_db"], drawn["iq_phase_deg"])
    if "dc_offset" in kinds:
        level = mean_power(y[measured]) * 10.0 ** (drawn["dc_offset_dbc"] / 10.0)
        y = (y + np.sqrt(level) * np.exp(1j * drawn["dc_offset_phase_rad"])).astype(np.complex64)
    if "adc8" in kinds:
        y = quantize_at(y, drawn["adc_bits"], drawn["agc_backoff_db"], mean_power(y[measured]))
    return y


def quantize_at(y, bits: int, backoff_db: float, power: float) -> np.ndarray:
    """quantize with the AGC set for a signal of mean power `power` (measured elsewhere)."""
    levels = 2 ** (int(bits) - 1)
    scaled = np.asarray(y) * (10.0 ** (-backoff_db / 20.0) / np.sqrt(power))

    def rail(v):
        return (np.clip(np.floor(v * levels), -levels, levels - 1) + 0.5) / levels

    return (rail(scaled.real) + 1j * rail(scaled.imag)).astype(np.complex64)
