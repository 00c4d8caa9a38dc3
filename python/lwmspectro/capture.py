"""The capture chain: what an SDR makes of a signal, applied to an analysis-rate labelled stream.

The generator writes its streams at the analysis rate (30.72 MS/s) with the signal at DC. A
real capture differs in the ways listed here, each drawn from a seeded generator
(`draw_capture`) and recorded as a label (`CaptureSettings.labels`), in the order a receive
chain applies them (`apply_capture`):

1. the receiver is tuned off the signal's centre (`offset_hz`, kept small enough that the
   occupied band stays inside the filter's passband) and its oscillator is off by a few ppm
   (`cfo_ppm`, uncompensated);
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
from .config_base import ConfigBase, bounded
from .framer import SOURCE_RATE_RANGE_HZ
from .resample import resample_to

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
        return self.passband_fraction * self.source_rate_hz / 2

    def labels(self) -> dict:
        """The settings as a label dict (JSON-ready)."""
        return dataclasses.asdict(self)


def max_offset_hz(source_rate_hz: float, passband_fraction: float, occupied_bw_hz: float) -> float:
    """The largest offset from DC that keeps a band of `occupied_bw_hz` inside the passband (0 when
    even the centred band does not fit: a narrow capture of a wide signal stays centred)."""
    return max(0.0, passband_fraction * source_rate_hz / 2 - occupied_bw_hz / 2)


def draw_capture(
    rng: np.random.Generator,
    occupied_bw_hz: float,
    carrier_hz: float,
    *,
    source_rate_hz: float | None = None,
    analysis_rate_hz: float = 30.72e6,
    centred: bool = False,
    receiver_steps: bool = True,
) -> CaptureSettings:
    """Draw one capture of a signal occupying `occupied_bw_hz` at `carrier_hz`.

    `source_rate_hz` fixes the rate (default: drawn from SOURCE_RATES_HZ); `centred` keeps the
    signal at DC; `receiver_steps` False leaves out the gain step, IQ imbalance, DC spike and
    quantisation (rate, filter, offset and CFO are always drawn)."""
    rate = float(source_rate_hz if source_rate_hz is not None else rng.choice(SOURCE_RATES_HZ))
    fraction = float(rng.uniform(*PASSBAND_FRACTION_RANGE))
    # The offset must also keep the band inside the analysis-rate stream it is shifted in.
    limit = min(max_offset_hz(rate, fraction, occupied_bw_hz), max_offset_hz(analysis_rate_hz, 1.0, occupied_bw_hz))
    offset = 0.0 if centred else float(rng.uniform(-limit, limit))
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

    def draw(
        self, rng: np.random.Generator, occupied_bw_hz: float, carrier_hz: float, analysis_rate_hz: float
    ) -> CaptureSettings | None:
        """The capture of one example, or None when it goes without one."""
        if not rng.random() < self.probability:
            return None
        rate = float(self.source_rates_hz[int(rng.integers(len(self.source_rates_hz)))])
        return draw_capture(
            rng,
            occupied_bw_hz,
            carrier_hz,
            source_rate_hz=rate,
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


SHIFT_BLOCK = 4096
"""Samples per block of the frequency shift's phasor (see frequency_shift)."""


def frequency_shift(iq: np.ndarray, shift_hz: float, sample_rate_hz: float) -> np.ndarray:
    """iq[n] exp(j 2 pi shift n / fs), complex64: the phasor is a block's phasors times each
    block's starting phase, two short tables of exponentials (impairments.carrier_frequency_offset
    takes one per sample: 8 times slower on a 128 ms capture)."""
    iq = np.asarray(iq, np.complex64)
    cycles_per_sample = shift_hz / sample_rate_hz
    n_blocks = -(-iq.size // SHIFT_BLOCK)

    def turns(count: int, step: float) -> np.ndarray:
        cycles = (step * np.arange(count)) % 1.0
        return np.exp(2j * np.pi * cycles).astype(np.complex64)

    phasor = turns(n_blocks, cycles_per_sample * SHIFT_BLOCK)[:, None] * turns(SHIFT_BLOCK, cycles_per_sample)[None, :]
    return iq * phasor.ravel()[: iq.size]


def _noise_floor_density(iq: np.ndarray, sample_rate_hz: float) -> float:
    """Noise power per Hz of `iq`: a low percentile of its PSD bins (the band the signal leaves free)
    over its first NOISE_FLOOR_SAMPLES."""
    _, psd = scipy.signal.welch(
        iq[:NOISE_FLOOR_SAMPLES], fs=sample_rate_hz, nperseg=256, return_onesided=False, detrend=False
    )
    return float(np.percentile(psd, NOISE_FLOOR_PERCENTILE))


def _fill_beyond(iq: np.ndarray, band_fraction: float, density: float, sample_rate_hz: float, rng) -> np.ndarray:
    """Add white noise of `density` (power/Hz) outside the central `band_fraction` of the Nyquist
    band, crossing over where the upsampling filter that made `iq` cuts off."""
    noise = np.empty(iq.size, np.complex64)
    noise.real = rng.standard_normal(iq.size, np.float32)
    noise.imag = rng.standard_normal(iq.size, np.float32)
    noise *= np.float32(np.sqrt(density * sample_rate_hz / 2))
    inside = scipy.signal.oaconvolve(noise, lowpass_taps(band_fraction, FILL_CROSSOVER_WIDTH), mode="same")
    return (iq + noise - inside).astype(np.complex64)


def apply_capture(
    iq: np.ndarray, settings: CaptureSettings, analysis_rate_hz: float, rng: np.random.Generator
) -> np.ndarray:
    """The capture `settings` describe of the analysis-rate stream `iq` (signal at DC): complex64 at
    `settings.source_rate_hz`. `rng` draws the noise that fills a band wider than the stream's."""
    iq = np.asarray(iq, np.complex64)
    shift = settings.offset_hz + settings.cfo_hz
    if shift:
        iq = frequency_shift(iq, shift, analysis_rate_hz)
    rate = settings.source_rate_hz
    if rate > analysis_rate_hz:
        density = _noise_floor_density(iq, analysis_rate_hz)
        iq = _fill_beyond(resample_to(iq, analysis_rate_hz, rate), analysis_rate_hz / rate, density, rate, rng)
    else:
        iq = resample_to(iq, analysis_rate_hz, rate)
    y = scipy.signal.oaconvolve(iq, anti_alias_taps(settings.passband_fraction), mode="same").astype(np.complex64)
    if settings.gain_step_db:
        step = int(settings.gain_step_at * y.size)
        y[step:] *= np.float32(10.0 ** (settings.gain_step_db / 20.0))
    if settings.iq_gain_db is not None and settings.iq_phase_deg is not None:
        y, _ = impairments.iq_imbalance(y, settings.iq_gain_db, settings.iq_phase_deg)
    if settings.dc_spike_dbc is not None:
        y, _ = impairments.dc_offset(y, settings.dc_spike_dbc, settings.dc_spike_phase_rad)
    if settings.adc_bits is not None:
        y, _ = impairments.quantize(y, settings.adc_bits, settings.agc_backoff_db)
    return np.asarray(y, np.complex64)


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
