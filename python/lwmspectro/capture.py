"""The capture chain: what an SDR makes of a signal, applied to an analysis-rate labelled stream.

The generator writes its streams at the analysis rate (30.72 MS/s) with the signal at DC (an
`other` signal off it by an offset of its own). A real capture differs in the ways listed here,
each drawn from a seeded generator (`draw_capture`) and recorded as a label
(`CaptureSettings.labels`), in the order a receive chain applies them (`apply_capture`):

1. the receiver is tuned off the signal's centre (`offset_hz`, kept small enough that the
   occupied band, wherever the stream holds it, stays inside the filter's passband) and its
   oscillator is off by a few ppm (`cfo_ppm`, uncompensated);
2. it samples at its own rate (`source_rate_hz`, one of `SOURCE_RATES_HZ`); above the
   analysis rate the band the stream does not hold is filled with noise at the stream's
   floor, as a receiver's own noise fills it;
3. its anti-alias filter passes `passband_fraction` of the Nyquist band and rolls off to
   the band edge;
4. its gain changes once during the capture (`gain_step_db`, an AGC step);
5. its mixer leaves an IQ imbalance and LO leakage at DC (`channels.impairments`);
6. its ADC quantises to 8 or 12 bits per rail.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import scipy.signal

from .channels import impairments
from .channels.noise import indexed_noise, mean_power, noise_key
from .config_base import ConfigBase, bounded
from .framer import SOURCE_RATE_RANGE_HZ
from .resample import PointResampler

SOURCE_RATES_HZ = (2.0e6, 2.4e6, 3.2e6, 5.0e6, 7.68e6, 10.0e6, 15.36e6, 20.0e6, 25.0e6, 30.72e6, 40.0e6, 61.44e6)
"""Sample rates SDRs commonly run at: RTL-SDR (2-3.2), Airspy and SDRplay (5-10), HackRF and
LimeSDR (up to 20), USRP B2xx and Pluto (LTE rates, 25, 40 and up to 61.44 MS/s)."""

PASSBAND_FRACTION_RANGE = (0.8, 0.95)
"""Passband of the anti-alias filter as a fraction of the Nyquist band (decimating filters of
SDR front ends pass 80-95 % of it)."""

STOPBAND_ATTENUATION_DB = 60.0
"""Attenuation the anti-alias filter reaches at the Nyquist frequency."""

CFO_PPM_RANGE = (-5.0, 5.0)
"""Oscillator error of an uncompensated capture (TCXOs of low-cost SDRs: a few ppm)."""

GAIN_STEP_DB_RANGE = (-12.0, 12.0)
DC_SPIKE_DBC_RANGE = (-40.0, -15.0)
ADC_BITS = (8, 12)
RECEIVER_STEP_PROBABILITY = 0.5
"""Chance that each receiver step (gain step, IQ imbalance, DC spike, quantisation) is applied."""

NOISE_FLOOR_PERCENTILE = 10.0
"""Percentile of the stream's PSD bins taken as its noise floor when filling the band beyond it."""
NOISE_FLOOR_SAMPLES = 1 << 18
"""Samples (8.5 ms at 30.72 MS/s, a thousand PSD segments) the noise floor is measured over."""
FILL_CROSSOVER_WIDTH = 0.05
"""Transition (fraction of Nyquist) between the stream's band and the noise that fills the band beyond it."""


def passband_width_hz(source_rate_hz: float | np.ndarray, passband_fraction: float | np.ndarray) -> float | np.ndarray:
    """Width of a capture's passband, centred at DC: the share `passband_fraction` of its
    Nyquist band (numbers or arrays, as a capture's labels hold them)."""
    return passband_fraction * source_rate_hz


@dataclass(frozen=True)
class CaptureSettings:
    """One capture's drawn values; None (or 0 dB) means the step was not applied."""

    source_rate_hz: float
    passband_fraction: float
    offset_hz: float = 0.0
    cfo_ppm: float = 0.0
    cfo_hz: float = 0.0
    gain_step_db: float = 0.0
    gain_step_at: float = 0.5
    """Where the gain step falls, as a fraction of the capture."""
    iq_gain_db: float | None = None
    iq_phase_deg: float | None = None
    dc_spike_dbc: float | None = None
    dc_spike_phase_rad: float = 0.0
    adc_bits: int | None = None
    agc_backoff_db: float = 12.0

    @property
    def passband_edge_hz(self) -> float:
        return self.passband_hz / 2

    @property
    def passband_hz(self) -> float:
        """Width of the passband, centred at DC."""
        return float(passband_width_hz(self.source_rate_hz, self.passband_fraction))

    def labels(self) -> dict:
        """The settings as a label dict (JSON-ready)."""
        return dataclasses.asdict(self)


def max_offset_hz(source_rate_hz: float, passband_fraction: float, occupied_bw_hz: float) -> float:
    """The largest offset from DC that keeps a band of `occupied_bw_hz` inside the passband (0 when
    even the centred band does not fit: a narrow capture of a wide signal stays centred)."""
    return max(0.0, passband_fraction * source_rate_hz / 2 - occupied_bw_hz / 2)


def draw_receiver(rng: np.random.Generator, source_rate_hz: float | None = None) -> CaptureSettings:
    """The receiver's rate (`source_rate_hz`, default: drawn from SOURCE_RATES_HZ) and anti-alias
    filter, nothing else yet: drawn before the signal, so that a signal that draws its own width
    can be drawn to fit the passband."""
    rate = float(source_rate_hz if source_rate_hz is not None else rng.choice(SOURCE_RATES_HZ))
    return CaptureSettings(rate, float(rng.uniform(*PASSBAND_FRACTION_RANGE)))


def draw_tuning(
    rng: np.random.Generator,
    receiver: CaptureSettings,
    occupied_bw_hz: float,
    carrier_hz: float,
    *,
    occupied_centre_hz: float = 0.0,
    analysis_rate_hz: float = 30.72e6,
    centred: bool = False,
    receiver_steps: bool = True,
) -> CaptureSettings:
    """The rest of the capture by `receiver` (draw_receiver) of a signal occupying `occupied_bw_hz`
    around `occupied_centre_hz` of the stream, at `carrier_hz`: offset, CFO and receiver steps.

    Off centre, the band's centre lands anywhere that keeps the band inside the passband (at
    DC when it does not fit); `centred` leaves the tuning on the carrier; `receiver_steps` False
    leaves out the gain step, IQ imbalance, DC spike and quantisation."""
    rate, fraction = receiver.source_rate_hz, receiver.passband_fraction
    # The offset must also keep the band inside the analysis-rate stream it is shifted in.
    limit = min(max_offset_hz(rate, fraction, occupied_bw_hz), max_offset_hz(analysis_rate_hz, 1.0, occupied_bw_hz))
    offset = 0.0 if centred else float(rng.uniform(-limit, limit)) - occupied_centre_hz
    ppm = float(rng.uniform(*CFO_PPM_RANGE))
    settings = CaptureSettings(rate, fraction, offset, ppm, ppm * 1e-6 * carrier_hz)
    if not receiver_steps:
        return settings

    def chosen() -> bool:
        return bool(rng.random() < RECEIVER_STEP_PROBABILITY)

    ranges = impairments.RECEIVER_IMPAIRMENT_RANGES
    updates: dict = {}
    if chosen():
        updates.update(gain_step_db=float(rng.uniform(*GAIN_STEP_DB_RANGE)), gain_step_at=float(rng.uniform(0, 1)))
    if chosen():
        updates["iq_gain_db"] = float(rng.uniform(*ranges["iq_gain_db"]))
        updates["iq_phase_deg"] = float(rng.uniform(*ranges["iq_phase_deg"]))
    if chosen():
        updates.update(
            dc_spike_dbc=float(rng.uniform(*DC_SPIKE_DBC_RANGE)), dc_spike_phase_rad=float(rng.uniform(-np.pi, np.pi))
        )
    if chosen():
        updates.update(adc_bits=int(rng.choice(ADC_BITS)), agc_backoff_db=float(rng.uniform(*ranges["agc_backoff_db"])))
    return dataclasses.replace(settings, **updates)


def draw_capture(
    rng: np.random.Generator,
    occupied_bw_hz: float,
    carrier_hz: float,
    *,
    source_rate_hz: float | None = None,
    occupied_centre_hz: float = 0.0,
    analysis_rate_hz: float = 30.72e6,
    centred: bool = False,
    receiver_steps: bool = True,
) -> CaptureSettings:
    """Draw one capture of a signal occupying `occupied_bw_hz` around `occupied_centre_hz` at
    `carrier_hz`: its receiver (draw_receiver, at `source_rate_hz` when given), then its tuning
    (draw_tuning, which the other options go to)."""
    return draw_tuning(
        rng,
        draw_receiver(rng, source_rate_hz),
        occupied_bw_hz,
        carrier_hz,
        occupied_centre_hz=occupied_centre_hz,
        analysis_rate_hz=analysis_rate_hz,
        centred=centred,
        receiver_steps=receiver_steps,
    )


@dataclass(frozen=True)
class CaptureConfig(ConfigBase):
    """How a dataset puts its examples through a capture chain (the `capture` section of a
    generator config): each example with `probability`, at one of `source_rates_hz` drawn
    uniformly, off DC when `off_centre`, with the receiver steps when `receiver_impairments`."""

    keys_name: ClassVar[str] = "capture keys"

    probability: float = bounded(1.0, 0.0, 1.0)
    source_rates_hz: list = field(default_factory=lambda: list(SOURCE_RATES_HZ))
    off_centre: bool = True
    receiver_impairments: bool = True

    def __post_init__(self):
        low, high = SOURCE_RATE_RANGE_HZ
        if not self.source_rates_hz:
            raise ValueError("source_rates_hz: list at least one sample rate")
        for rate in self.source_rates_hz:
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not low <= rate <= high:
                raise ValueError(
                    f"source_rates_hz: {rate!r} is not a sample rate the receiver takes "
                    f"({low / 1e6:g} to {high / 1e6:g} MS/s, in Hz)"
                )

    def draw_receiver(self, rng: np.random.Generator) -> CaptureSettings | None:
        """The receiver of one example (the module's draw_receiver at one of `source_rates_hz`), or
        None when the example goes without a capture; its tuning follows with draw_tuning."""
        if not rng.random() < self.probability:
            return None
        return draw_receiver(rng, float(self.source_rates_hz[int(rng.integers(len(self.source_rates_hz)))]))

    def draw_tuning(
        self,
        rng: np.random.Generator,
        receiver: CaptureSettings,
        occupied_bw_hz: float,
        occupied_centre_hz: float,
        carrier_hz: float,
        analysis_rate_hz: float,
    ) -> CaptureSettings:
        """The whole capture by `receiver` of a signal occupying `occupied_bw_hz` around
        `occupied_centre_hz` (the module's draw_tuning, off centre and with receiver steps as set)."""
        return draw_tuning(
            rng,
            receiver,
            occupied_bw_hz,
            carrier_hz,
            occupied_centre_hz=occupied_centre_hz,
            analysis_rate_hz=analysis_rate_hz,
            centred=not self.off_centre,
            receiver_steps=self.receiver_impairments,
        )


def lowpass_taps(cutoff: float, width: float) -> np.ndarray:
    """Linear-phase low-pass FIR (Kaiser), half amplitude at `cutoff` and STOPBAND_ATTENUATION_DB
    down `width` / 2 beyond it (both as fractions of the Nyquist frequency). float32, so that
    filtering complex64 I/Q runs in single precision (2.7 times faster, 1e-7 apart)."""
    n_taps, beta = scipy.signal.kaiserord(STOPBAND_ATTENUATION_DB, width)
    return scipy.signal.firwin(n_taps | 1, cutoff, window=("kaiser", beta)).astype(np.float32)


def anti_alias_taps(passband_fraction: float) -> np.ndarray:
    """The anti-alias filter: flat to `passband_fraction` of Nyquist, STOPBAND_ATTENUATION_DB down at Nyquist."""
    if not 0 < passband_fraction < 1:
        raise ValueError(f"passband_fraction must be within (0, 1), got {passband_fraction}")
    width = 1.0 - passband_fraction
    return lowpass_taps(passband_fraction + width / 2, width)


def frequency_shift(iq: np.ndarray, shift_hz: float, sample_rate_hz: float, index=None) -> np.ndarray:
    """iq[i] exp(j 2 pi shift n_i / fs), complex64, at the absolute sample indices n_i of `iq`'s
    samples (default 0, 1, ...; impairments.phasor_at): samples shifted apart get the numbers the
    whole stream gets there."""
    iq = np.asarray(iq, np.complex64)
    index = np.arange(iq.size) if index is None else index
    return iq * impairments.phasor_at(index, shift_hz / sample_rate_hz)


FILTER_BLOCK = 256
"""Source-rate outputs per block of the capture's filters: each block is filtered alone, from its
inputs and its filter's reach either side, with one FFT size, so that a sample is the same number
whichever other blocks are formed. Short, because the views read short stretches (a snippet of 33
us every millisecond) and a block is formed whole: blocks of 4096 formed 2.4 M analysis-rate
samples per example for the 0.15 M that the wideband and dynamics views read, blocks of 256 form
0.7 M (with the resampler's narrow pieces, capture_reach), at 2.2 times the examples per second."""


def merge_regions(regions, n_samples: int) -> list[tuple[int, int]]:
    """`regions` ((start, stop) pairs) clipped to [0, n_samples), sorted, overlapping or touching
    ones merged. In numpy: a capture's reach lists thousands of regions."""
    pairs = np.array(list(regions), np.int64).reshape(-1, 2)
    starts, stops = np.maximum(pairs[:, 0], 0), np.minimum(pairs[:, 1], int(n_samples))
    kept = stops > starts
    order = np.argsort(starts[kept], kind="stable")
    starts, stops = starts[kept][order], stops[kept][order]
    if not len(starts):
        return []
    opens = np.ones(len(starts), bool)
    opens[1:] = starts[1:] > np.maximum.accumulate(stops)[:-1]
    firsts = np.flatnonzero(opens)
    return list(zip(starts[firsts].tolist(), np.maximum.reduceat(stops, firsts).tolist()))


def region_index(regions) -> np.ndarray:
    """The sample indices of `regions`, in order."""
    if not regions:
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in regions])


def in_regions(index: np.ndarray, regions) -> np.ndarray:
    """Whether each sample index lies in one of `regions` (merge_regions' sorted, disjoint
    pairs): np.isin of their region_index, read off a mask of the span `index` covers rather
    than by sorting both arrays."""
    index = np.asarray(index, np.int64)
    if not regions or not index.size:
        return np.zeros(index.shape, bool)
    low, high = int(index.min()), int(index.max()) + 1
    mask = np.zeros(high - low, bool)
    for start, stop in regions:
        mask[max(start, low) - low : max(min(stop, high), low) - low] = True
    return mask[index - low]


def covering_blocks(regions, block: int) -> np.ndarray:
    """The indices of the blocks of `block` samples (from sample 0) that `regions` touch."""
    if not regions:
        return np.zeros(0, np.int64)
    return np.unique(np.concatenate([np.arange(a // block, -(-b // block)) for a, b in regions]))


def _block_reads(blocks: np.ndarray, taps: np.ndarray, n_samples: int) -> list[tuple[int, int]]:
    """What fir_blocks reads of a stream of n_samples to filter the grid `blocks` with `taps`."""
    half = len(taps) // 2
    return merge_regions([(b * FILTER_BLOCK - half, (b + 1) * FILTER_BLOCK + half) for b in blocks.tolist()], n_samples)


def fir_blocks(signal: np.ndarray, taps: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """(len(blocks), FILTER_BLOCK): oaconvolve(signal, taps, mode="same") over each grid block of
    `signal` (zero outside it; odd-length `taps`), each block from its inputs and the filter's
    reach either side, all blocks in one batch of FFTs of one size."""
    half = len(taps) // 2
    index = blocks[:, None] * FILTER_BLOCK - half + np.arange(FILTER_BLOCK + 2 * half)
    inside = (index >= 0) & (index < len(signal))
    segments = np.where(inside, signal[np.clip(index, 0, max(len(signal) - 1, 0))], np.complex64(0))
    return scipy.signal.fftconvolve(segments, taps[None, :], mode="valid", axes=1).astype(np.complex64)


def _scatter(blocks: np.ndarray, values: np.ndarray, block: int, n_samples: int) -> np.ndarray:
    """A stream of n_samples, zero but for the `values` of the grid `blocks`."""
    out = np.zeros(n_samples + block, np.complex64)
    out[(blocks[:, None] * block + np.arange(block)[None, :]).ravel()] = values.ravel()
    return out[:n_samples]


@dataclass(frozen=True)
class CaptureReach:
    """What a capture's outputs over some source-rate regions read, stage by stage back to the
    analysis-rate stream: the anti-alias filter's blocks, the resampler's pieces, and the
    analysis-rate regions those read."""

    n_source: int
    filter_blocks: np.ndarray
    filter_inputs: list[tuple[int, int]]
    fill_blocks: np.ndarray
    piece: int
    """Source-rate outputs per resampler piece."""
    pieces: np.ndarray
    analysis_regions: list[tuple[int, int]]


def _fill_taps(analysis_rate_hz: float, source_rate_hz: float) -> np.ndarray | None:
    """The filter that shapes the noise filling a band wider than the stream's (None: no fill)."""
    if source_rate_hz <= analysis_rate_hz:
        return None
    return lowpass_taps(analysis_rate_hz / source_rate_hz, FILL_CROSSOVER_WIDTH)


def capture_reach(settings: CaptureSettings, analysis_rate_hz: float, n_analysis: int, source_regions) -> CaptureReach:
    """Where the capture of an n_analysis-sample stream reads to form its samples in `source_regions`."""
    resampler = PointResampler.for_rates(analysis_rate_hz, settings.source_rate_hz)
    n_source = -(-n_analysis * resampler.up // resampler.down)
    filter_blocks = covering_blocks(merge_regions(source_regions, n_source), FILTER_BLOCK)
    filter_inputs = _block_reads(filter_blocks, anti_alias_taps(settings.passband_fraction), n_source)
    fill = _fill_taps(analysis_rate_hz, settings.source_rate_hz)
    fill_blocks = covering_blocks(filter_inputs, FILTER_BLOCK) if fill is not None else np.zeros(0, np.int64)
    # Narrow pieces: at 2 MS/s a piece of `resampler.piece` (250 outputs) reads 3840 analysis-rate
    # samples, where a snippet of the dynamics view needs 67 outputs.
    piece = resampler.narrow_piece
    pieces = covering_blocks(filter_inputs, piece)
    firsts = resampler.first_input(pieces * piece)
    spans = zip(firsts.tolist(), (resampler.first_input(pieces * piece + piece - 1) + resampler.n_taps).tolist())
    analysis_regions = merge_regions(spans, n_analysis)
    return CaptureReach(n_source, filter_blocks, filter_inputs, fill_blocks, piece, pieces, analysis_regions)


def _noise_floor_density(iq: np.ndarray, sample_rate_hz: float) -> float:
    """Noise power per Hz of `iq`: a low percentile of its PSD bins (the band the signal leaves free)
    over its first NOISE_FLOOR_SAMPLES."""
    _, psd = scipy.signal.welch(
        iq[:NOISE_FLOOR_SAMPLES], fs=sample_rate_hz, nperseg=256, return_onesided=False, detrend=False
    )
    return float(np.percentile(psd, NOISE_FLOOR_PERCENTILE))


def apply_capture_regions(
    iq: np.ndarray,
    settings: CaptureSettings,
    analysis_rate_hz: float,
    key: np.ndarray,
    source_regions,
    measured_analysis=None,
    measured_source=None,
) -> np.ndarray:
    """The capture `settings` describe of the analysis-rate stream `iq` (signal at DC), formed only
    over `source_regions` (source-rate samples; zero elsewhere): `iq` must hold the analysis-rate
    regions capture_reach names. Each sample is the number the whole capture gives there: the
    filters run on a fixed grid, the fill noise is a function of the sample index (`key`), and
    the levels (the noise floor; the DC spike's and the ADC's) are measured over
    `measured_analysis` and `measured_source` (regions; default: all that is formed)."""
    iq = np.asarray(iq, np.complex64)
    rate = settings.source_rate_hz
    reach = capture_reach(settings, analysis_rate_hz, len(iq), source_regions)
    shift = settings.offset_hz + settings.cfo_hz
    shifted = np.zeros(len(iq), np.complex64)
    formed = region_index(reach.analysis_regions)
    shifted[formed] = frequency_shift(iq[formed], shift, analysis_rate_hz, formed) if shift else iq[formed]
    resampler = PointResampler.for_rates(analysis_rate_hz, rate)
    resampled = resampler.frames(shifted, 0, reach.pieces * reach.piece, reach.piece)
    resampled = _scatter(reach.pieces, resampled, reach.piece, reach.n_source)
    fill = _fill_taps(analysis_rate_hz, rate)
    if fill is not None:
        measured = merge_regions(measured_analysis or reach.analysis_regions, len(iq))
        density = _noise_floor_density(shifted[region_index(measured)], analysis_rate_hz)
        scale = np.float32(np.sqrt(density * rate / 2))

        # The fill noise wherever a block's filter reads it, drawn once (a function of the index).
        fill_noise = np.zeros(reach.n_source, np.complex64)
        for start, stop in _block_reads(reach.fill_blocks, fill, reach.n_source):
            fill_noise[start:stop] = indexed_noise(key, start, stop) * scale
        filtered_fill = fir_blocks(fill_noise, fill, reach.fill_blocks)
        inside = _scatter(reach.fill_blocks, filtered_fill, FILTER_BLOCK, reach.n_source)
        for start, stop in reach.filter_inputs:
            resampled[start:stop] += fill_noise[start:stop] - inside[start:stop]
    filtered = fir_blocks(resampled, anti_alias_taps(settings.passband_fraction), reach.filter_blocks)
    y = _scatter(reach.filter_blocks, filtered, FILTER_BLOCK, reach.n_source)
    regions = merge_regions(source_regions, reach.n_source)
    index = region_index(regions)
    values = y[index]
    if settings.gain_step_db:
        step = int(settings.gain_step_at * reach.n_source)
        values[index >= step] *= np.float32(10.0 ** (settings.gain_step_db / 20.0))
    level_mask = in_regions(index, merge_regions(measured_source or regions, reach.n_source))
    if settings.iq_gain_db is not None and settings.iq_phase_deg is not None:
        values, _ = impairments.iq_imbalance(values, settings.iq_gain_db, settings.iq_phase_deg)
    if settings.dc_spike_dbc is not None:
        level = mean_power(values[level_mask]) * 10.0 ** (settings.dc_spike_dbc / 10.0)
        values = (values + np.sqrt(level) * np.exp(1j * settings.dc_spike_phase_rad)).astype(np.complex64)
    if settings.adc_bits is not None:
        power = mean_power(values[level_mask])
        values = impairments.quantize_at(values, settings.adc_bits, settings.agc_backoff_db, power)
    out = np.zeros(reach.n_source, np.complex64)
    out[index] = values
    return out


def capture_key(rng: np.random.Generator) -> np.ndarray:
    """The key of a capture's fill noise, drawn once from the capture's generator."""
    return noise_key(int(rng.integers(2**63)))


def apply_capture(
    iq: np.ndarray, settings: CaptureSettings, analysis_rate_hz: float, rng: np.random.Generator
) -> np.ndarray:
    """The capture `settings` describe of the whole analysis-rate stream `iq` (signal at DC):
    complex64 at `settings.source_rate_hz` (apply_capture_regions over every sample). `rng`
    draws the key of the noise that fills a band wider than the stream's."""
    iq = np.asarray(iq, np.complex64)
    n_source = capture_reach(settings, analysis_rate_hz, len(iq), []).n_source
    return apply_capture_regions(iq, settings, analysis_rate_hz, capture_key(rng), [(0, n_source)])


def capture(
    iq: np.ndarray,
    rng: np.random.Generator,
    occupied_bw_hz: float,
    carrier_hz: float,
    analysis_rate_hz: float = 30.72e6,
    **choices,
) -> tuple[np.ndarray, dict]:
    """Draw a capture (`draw_capture`, with `choices`) and apply it: (source-rate I/Q, labels)."""
    settings = draw_capture(rng, occupied_bw_hz, carrier_hz, analysis_rate_hz=analysis_rate_hz, **choices)
    return apply_capture(iq, settings, analysis_rate_hz, rng), settings.labels()
