"""Labelled examples: PHY waveform -> site-specific fading channel -> AWGN -> impairments -> G.

One draw is an `ExampleSpec` (every label fixed by a seed); `make_frames` realises it
only at the T frames G reads (how datasets are made fast), `make_stream` realises the
whole observation (recordings), `SyntheticStream` an emission stretch by stretch (the synthetic
source). They give the same labels.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import labels, phy, views
from .capture import CaptureConfig, covering_blocks, in_regions, merge_regions, region_index
from .channels import (
    TDL_PROFILES,
    TapProfile,
    TDLChannel,
    add_awgn,
    band_normalised,
    coloured_noise,
    doppler_hz,
    draw_speed,
    impairments,
    indexed_noise,
    mean_power,
    noise_colour,
    noise_key,
    noise_variance,
    tdl_profile,
)
from .config_base import ConfigBase, bounded
from .resample import PointResampler, resample_segments
from .spectrogram import DEFAULT_PARAMS, SpectrogramParams, spectrogram_from_frames

CARRIERS_HZ = {
    "wifi": (2.412e9, 2.437e9, 5.18e9, 5.5e9, 5.785e9),
    "lte": (0.796e9, 1.842e9, 2.14e9, 2.655e9),
    "nr": (2.5e9, 3.5e9, 3.7e9),
    "other": (0.433e9, 0.868e9, 2.45e9),
    "none": (1.0e9,),
}
"""Carriers drawn per class; they set the Doppler frequency of a given speed."""

NOISE_POWER_NONE = 1.0
"""Noise variance per sample of a noise-only (`none`) example."""
COLOURED_NOISE_PROBABILITY = 0.5
MAX_NOISE_RIPPLE_DB = 4.0
"""Half the examples, signals and noise alike, get receiver noise that is not white: a smooth
tilt and ripple of up to about +-4 dB across the band (`channels.noise_colour`), as an SDR's
front end gives it; the SNR inside the occupied band stays the label's."""

MAX_SAMPLES = 10_000_000
"""The most spectrograms a dataset config may ask for (20 kB each in float16: 330 GB)."""
MAX_SHARD_SIZE = 20_000
"""The most spectrograms a shard may hold: a worker holds one shard (float16) in memory."""
SPEED_RANGE_KMH = (0.0, 500.0)
"""Receiver speeds the channel models accept (0 to a high-speed train's)."""
CARRIER_RANGE_HZ = (1e6, 100e9)
"""Carriers the Doppler model accepts."""
CHANNELS = ("site", *TDL_PROFILES)
"""Channel models a config may draw: the ray-traced sites, or a TR 38.901 TDL profile."""


@dataclass
class GeneratorConfig(ConfigBase):
    """What a dataset holds; written verbatim into its manifest."""

    n_samples: int = bounded(1000, 1, MAX_SAMPLES)
    shard_size: int = bounded(250, 1, MAX_SHARD_SIZE)
    seed: int = bounded(0, 0, 2**63 - 1)
    classes: dict = field(default_factory=lambda: {"wifi": 0.28, "lte": 0.28, "nr": 0.28, "none": 0.08, "other": 0.08})
    snr_db: list = field(default_factory=lambda: list(labels.SNR_GRID_DB))
    mobility: list = field(default_factory=lambda: list(labels.MOBILITY_CLASSES))
    channel: Any = "site"
    """'site' for ray-traced scenario users, a standard profile name (TDL-A..E), or
    {name: weight} to draw one of them per example (`draw_example`, which hands draw_spec
    a config naming the one drawn)."""
    scenarios: list | str = "train"
    """Scenario names, or "train" (the training sites) or "heldout" (the held-out site)."""
    scenario_folder: str | None = None
    users_per_scenario: int = bounded(1000, 1, 10_000_000)
    delay_spread_s: float = bounded(100e-9, 0.0, 10e-6)
    impairment_probability: float = bounded(0.0, 0.0, 1.0)
    spectrogram: dict = field(default_factory=lambda: DEFAULT_PARAMS.to_dict())
    views: list | None = None
    """What each example stores: names of registered views (`views.VIEWS`; "wideband" is G as
    `spectrogram` sets it) or `views.view_to_dict` entries (stored under their kind's name).
    None: G alone, realised only at the frames it reads."""
    capture: dict | None = None
    """The capture chain (`capture.CaptureConfig`); None: every example as the generator writes
    it, centred at the analysis rate."""

    def __post_init__(self):
        _check_weights("classes", "class", self.classes, labels.ROUTER_CLASSES)
        if isinstance(self.channel, str):
            labels.check_choice("channel", self.channel, CHANNELS)
        elif isinstance(self.channel, dict):
            _check_weights("channel", "channel", self.channel, CHANNELS)
        else:
            raise ValueError(f"channel: {self.channel!r} is neither a channel name nor an object of channel weights")
        for mob in self.mobility:
            labels.check_choice("mobility", mob, labels.MOBILITY_CLASSES)
        for snr in self.snr_db:
            check_snr(snr)
        if not self.mobility or not self.snr_db:
            raise ValueError("mobility and snr_db must each list at least one value")
        if self.n_samples < 1 or self.shard_size < 1:
            raise ValueError("n_samples and shard_size must be positive")
        SpectrogramParams.from_dict(self.spectrogram, "spectrogram")
        self.view_params()
        self.capture_config()

    @property
    def params(self) -> SpectrogramParams:
        return SpectrogramParams.from_dict(self.spectrogram)

    def view_params(self) -> dict[str, Any]:
        """The stored views by name, in the listed order; a ValueError naming the entry that is not one."""
        stored: dict[str, Any] = {}
        for i, entry in enumerate(self.views if self.views is not None else ["wideband"]):
            where = f"views.{i}"
            if isinstance(entry, str):
                labels.check_choice(where, entry, list(views.VIEWS))
                name, params = entry, self.params if entry == "wideband" else views.VIEWS[entry]
            else:
                params = views.view_from_dict(entry, where, record=False)
                name = entry["name"]
            if name == "wideband" and params != self.params:
                raise ValueError(f"{where}: the wideband view is G; set its parameters in `spectrogram`")
            if name in stored:
                raise ValueError(f"{where}: a second view named {name!r}; each view is stored under its name")
            stored[name] = params
        if "wideband" not in stored:
            raise ValueError('views: list "wideband" (G, which every model reads) among them')
        return stored

    def capture_config(self) -> CaptureConfig | None:
        return None if self.capture is None else CaptureConfig.from_dict(self.capture, "capture")

    def to_dict(self) -> dict[str, Any]:
        """The config as its manifest records it; `views` and `capture` are left out while unset,
        so that a config without them keeps the manifest it had before they existed."""
        values = super().to_dict()
        for name in ("views", "capture"):
            if values[name] is None:
                del values[name]
        return values

    @property
    def n_shards(self) -> int:
        return -(-self.n_samples // self.shard_size)

    def shard_count(self, index: int) -> int:
        """Examples in shard `index`: shard_size, fewer in a last shard cut short by n_samples."""
        return max(0, min(self.shard_size, self.n_samples - index * self.shard_size))

    @classmethod
    def from_file(cls, path) -> GeneratorConfig:
        try:
            values = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: a generator config is a JSON object, not {type(values).__name__}")
        return cls.from_dict(values, str(path))


def scenario_names(selection) -> list[str]:
    """Scenario names from a config's selection: "train", "heldout" or explicit names."""
    from . import scenarios

    if selection == "train":
        return list(scenarios.TRAIN_SCENARIOS)
    if selection == "heldout":
        return [scenarios.HELDOUT_SCENARIO]
    if isinstance(selection, str):
        return [selection]
    return list(selection)


def check_snr(snr_db: float) -> None:
    low, high = labels.SNR_RANGE_DB
    if isinstance(snr_db, bool) or not isinstance(snr_db, (int, float)):
        raise ValueError(f"SNR {snr_db!r} is not a number of dB; valid: {low:g} to {high:g} dB")
    if not low <= snr_db <= high:
        raise ValueError(f"SNR {snr_db:g} dB is out of range; valid: {low:g} to {high:g} dB")


@dataclass(frozen=True)
class ExampleSpec:
    """Every label of one example; with `seed` it fixes the example bit for bit."""

    protocol: str
    snr_db: float | None
    mobility: str | None
    speed_kmh: float | None
    carrier_hz: float
    seed: int
    bandwidth_hz: float | None = None
    modulation: str | None = None
    code_rate: str | None = None
    other_kind: str | None = None
    scenario: str | None = None
    user: int | None = None
    channel: str = "site"
    delay_spread_s: float = 100e-9
    impairments: bool = False
    max_band_hz: float | None = None
    """The band, centred at DC, an `other` signal is drawn to fit (the passband of the capture it
    goes through); None: the generator's own. The other classes' widths are their standards'."""

    def __post_init__(self):
        labels.check_choice("protocol", self.protocol, labels.ROUTER_CLASSES)
        if self.protocol in labels.PROTOCOLS and self.modulation is not None:
            labels.check_modulation(self.protocol, self.modulation)
        if self.snr_db is not None:
            check_snr(self.snr_db)
        if self.mobility is not None:
            labels.check_choice("mobility", self.mobility, labels.MOBILITY_CLASSES)
        if self.other_kind is not None:
            labels.check_choice("other kind", self.other_kind, labels.OTHER_KINDS)
        if self.max_band_hz is not None and self.protocol != "other":
            raise ValueError(f"max_band_hz applies to 'other' signals, which draw their own width, not {self.protocol}")
        if self.speed_kmh is not None and not SPEED_RANGE_KMH[0] <= self.speed_kmh <= SPEED_RANGE_KMH[1]:
            raise ValueError(
                f"speed {self.speed_kmh:g} km/h is out of range; valid: "
                f"{SPEED_RANGE_KMH[0]:g} to {SPEED_RANGE_KMH[1]:g} km/h"
            )
        if not CARRIER_RANGE_HZ[0] <= self.carrier_hz <= CARRIER_RANGE_HZ[1]:
            raise ValueError(
                f"carrier {self.carrier_hz:g} Hz is out of range; valid: "
                f"{CARRIER_RANGE_HZ[0]:g} to {CARRIER_RANGE_HZ[1]:g} Hz"
            )

    @property
    def doppler_hz(self) -> float:
        return 0.0 if not self.speed_kmh else doppler_hz(self.speed_kmh, self.carrier_hz)


def draw_spec(config: GeneratorConfig, index: int) -> ExampleSpec:
    """The `index`-th example of a dataset: a pure function of (config.seed, index)."""
    rng = np.random.default_rng([config.seed, index])
    names = list(config.classes)
    weights = np.asarray([config.classes[n] for n in names], float)
    protocol = names[rng.choice(len(names), p=weights / weights.sum())]
    seed = int(rng.integers(2**31))
    carrier = float(rng.choice(CARRIERS_HZ[protocol]))
    if protocol == "none":
        return ExampleSpec(protocol, None, None, None, carrier, seed)
    mobility = str(rng.choice(config.mobility))
    speed = draw_speed(mobility, rng, carrier)
    snr = float(rng.choice(config.snr_db))
    scenario = user = None
    if config.channel == "site":
        from . import scenarios

        names = scenario_names(config.scenarios)
        scenario = str(rng.choice(names))
        users = scenarios.active_users(scenarios.load_scenario(scenario, config.scenario_folder))
        user = int(users[rng.integers(min(len(users), config.users_per_scenario))])
    impaired = bool(rng.random() < config.impairment_probability)
    spec = ExampleSpec(
        protocol,
        snr,
        mobility,
        speed,
        carrier,
        seed,
        scenario=scenario,
        user=user,
        channel=config.channel,
        delay_spread_s=config.delay_spread_s,
        impairments=impaired,
    )
    if protocol == "other":
        return dataclasses.replace(spec, other_kind=str(rng.choice(labels.OTHER_KINDS)))
    opts = phy.options(protocol)
    modulation = str(rng.choice(opts["modulation"]))
    bandwidth = float(rng.choice(opts["bandwidth_hz"]))
    code_rate = str(rng.choice(opts["code_rate"][modulation]))
    return dataclasses.replace(spec, bandwidth_hz=bandwidth, modulation=modulation, code_rate=code_rate)


def example_channel(spec: ExampleSpec, sample_rate_hz: float, rng, scenario_folder=None) -> TDLChannel:
    """The channel an example's labels ask for (its site's paths or a TDL profile, its Doppler), its
    fading drawn from `rng`."""
    if spec.channel == "site":
        from . import scenarios

        if spec.scenario is None or spec.user is None:
            raise ValueError("a site channel needs a scenario and a user")
        paths = scenarios.user_paths(scenarios.load_scenario(spec.scenario, scenario_folder), spec.user)
        profile = TapProfile.from_paths(paths.delays_s, paths.powers_lin, los=paths.los)
    else:
        profile = tdl_profile(spec.channel, delay_spread_s=spec.delay_spread_s)
    return TDLChannel(profile, sample_rate_hz=sample_rate_hz, doppler_hz=spec.doppler_hz, rng=rng)


def _phy_waveform(spec: ExampleSpec, duration_s: float, rng) -> phy.PhyWaveform:
    if spec.protocol == "other":
        return phy.generate("other", kind=spec.other_kind, duration_s=duration_s, rng=rng, max_band_hz=spec.max_band_hz)
    return phy.generate(
        spec.protocol,
        bandwidth_hz=spec.bandwidth_hz,
        modulation=spec.modulation,
        code_rate=spec.code_rate,
        duration_s=duration_s,
        rng=rng,
    )


def _at_analysis_rate(
    wf: phy.PhyWaveform, params: SpectrogramParams, starts: np.ndarray, length: int, support: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The transmit stream and its tx-on mask at the analysis rate, filled only where the
    channel output at [s, s + length) reads them (the channel's `support` around each frame)."""
    first_tap, last_tap = support
    n_samples = int(starts.max()) + length - min(first_tap, 0) + 1
    region_starts = np.maximum(starts - max(last_tap, 0), 0)
    region_length = int(length + (starts - region_starts).max() - min(first_tap, 0) + 1)
    segments = resample_segments(wf.iq, wf.sample_rate_hz, params.sample_rate_hz, region_starts, region_length)
    index = region_starts[:, None] + np.arange(region_length)[None, :]
    native = np.floor(index * (wf.sample_rate_hz / params.sample_rate_hz)).astype(np.int64)
    x = np.zeros(n_samples, np.complex64)
    active = np.zeros(n_samples, bool)
    x[index] = segments
    active[index] = np.where(native < len(wf.active), wf.active[np.minimum(native, len(wf.active) - 1)], False)
    return x, active


def label_row(spec: ExampleSpec, extra: dict) -> dict:
    """The manifest / SigMF label dict of an example."""
    row = {
        "protocol": spec.protocol,
        "bandwidth_hz": spec.bandwidth_hz,
        "modulation": spec.modulation,
        "code_rate": spec.code_rate,
        "coding": None,
        "snr_db": spec.snr_db,
        "mobility": spec.mobility,
        "speed_kmh": spec.speed_kmh,
        "doppler_hz": spec.doppler_hz if spec.mobility else None,
        "carrier_hz": spec.carrier_hz,
        "scenario": spec.scenario,
        "user": spec.user,
        "seed": spec.seed,
        "channel": spec.channel if spec.mobility else None,
        "other_kind": spec.other_kind,
    }
    row.update(extra)
    return row


def _realise(
    spec: ExampleSpec,
    params: SpectrogramParams,
    starts: np.ndarray,
    length: int,
    scenario_folder=None,
    stream: bool = False,
) -> tuple[np.ndarray, dict]:
    """Received samples y[s : s + length] for each start s (absolute, analysis rate), and labels.

    Frames (`stream` False) hold the channel fixed within each short frame; a stream (one
    start) lets it fade sample by sample."""
    rng = np.random.default_rng(spec.seed)
    ripple_db = float(rng.uniform(0.0, MAX_NOISE_RIPPLE_DB)) if rng.random() < COLOURED_NOISE_PROBABILITY else 0.0
    colour = noise_colour(rng, ripple_db) if ripple_db else None
    noise_labels = {"noise_ripple_db": ripple_db}
    if spec.protocol == "none":
        shape = (len(starts), length)
        if colour is None:
            noise = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        else:
            noise = coloured_noise(shape, colour, rng)
        return (noise * np.sqrt(NOISE_POWER_NONE / 2)).astype(np.complex64), label_row(spec, noise_labels)
    if spec.snr_db is None:
        raise ValueError(f"a {spec.protocol} example needs an SNR")
    wf = _phy_waveform(spec, (int(starts.max()) + length) / params.sample_rate_hz, rng)
    channel = example_channel(spec, params.sample_rate_hz, rng, scenario_folder)
    x, active = _at_analysis_rate(wf, params, starts, length, channel.support)
    occupied_bw = wf.occupied_bw_hz
    phy_labels = {
        "coding": wf.coding,
        "bandwidth_hz": wf.bandwidth_hz,
        "occupied_bw_hz": wf.occupied_bw_hz,
        "phy": wf.meta,
    }
    offsets = impairments.draw_frequency_offsets(rng, spec.carrier_hz)
    if stream:
        y = channel.apply(x, sampling_offset_ppm=offsets["sfo_ppm"])[starts[0] : starts[0] + length][None, :]
    else:
        y = channel.apply_frames(x, starts, length, sampling_offset_ppm=offsets["sfo_ppm"])
    index = impairments.frame_sample_index(starts, length)
    y, _ = impairments.carrier_frequency_offset(y, offsets["cfo_hz"], params.sample_rate_hz, index)
    on = active[index]
    signal_power = mean_power(y, on if on.any() else None)
    y, _ = add_awgn(y, spec.snr_db, occupied_bw, params.sample_rate_hz, signal_power, rng, colour=colour)
    extra = dict(phy_labels, cfo_hz=offsets["cfo_hz"], sfo_ppm=offsets["sfo_ppm"], **noise_labels)
    if spec.impairments:
        y, impairment_labels = impairments.apply_random(y, index, params.sample_rate_hz, rng)
        extra["impairments"] = impairment_labels
    return y.astype(np.complex64), label_row(spec, extra)


def guard_samples(params: SpectrogramParams) -> int:
    """Lead-in before the first frame so that every frame sees the channel's full memory."""
    return params.hop


def make_frames(spec: ExampleSpec, params: SpectrogramParams = DEFAULT_PARAMS, scenario_folder=None):
    """(frames (T, N_w) complex64, labels): the example only where G reads it."""
    starts = guard_samples(params) + params.frame_starts
    return _realise(spec, params, starts, params.n_fft, scenario_folder)


def make_spectrogram(spec: ExampleSpec, params: SpectrogramParams = DEFAULT_PARAMS, scenario_folder=None):
    frames, row = make_frames(spec, params, scenario_folder)
    return spectrogram_from_frames(frames, params), row


NOISE_DRAW = 3
"""Extra seed word of the key of a stream's noise, drawn per absolute sample block (`indexed_noise`)."""
PHASE_NOISE_DRAW = 4
"""Extra seed word of the key of a stream's receiver phase noise (`impairments.indexed_phase_noise`)."""


def _waveform_at(
    wf: phy.PhyWaveform, params: SpectrogramParams, ranges, n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """The transmit stream and its tx-on mask at the analysis rate (absolute indices, n_samples
    long), formed over the resampler's pieces (a fixed grid from sample 0) that `ranges` touch,
    zero elsewhere: a piece is the same numbers whichever others are formed."""
    piece = PointResampler.for_rates(wf.sample_rate_hz, params.sample_rate_hz).piece
    pieces = covering_blocks(merge_regions(ranges, n_samples), piece)
    starts = pieces * piece
    index = (starts[:, None] + np.arange(piece)[None, :]).ravel()
    x = np.zeros(n_samples + piece, np.complex64)
    active = np.zeros(n_samples + piece, bool)
    x[index] = resample_segments(wf.iq, wf.sample_rate_hz, params.sample_rate_hz, starts, piece).ravel()
    native = np.floor(index * (wf.sample_rate_hz / params.sample_rate_hz)).astype(np.int64)
    active[index] = np.where(native < len(wf.active), wf.active[np.minimum(native, len(wf.active) - 1)], False)
    return x, active


class ReceivedStream:
    """One example's received stream at the analysis rate (n_samples; sample 0 follows
    guard_samples of lead-in), its draws made once, formed over chosen regions on demand
    (`realise`) with the numbers the whole stream has there: the channel's taps held over its
    blocks on the stream's grid, the CFO by sample index, the noise (and the receiver's phase
    noise) a function of the sample index."""

    def __init__(self, spec: ExampleSpec, params: SpectrogramParams, n_samples: int, scenario_folder=None):
        self.spec, self.params, self.n_samples = spec, params, int(n_samples)
        self.guard = guard_samples(params)
        rng = np.random.default_rng(spec.seed)
        ripple_db = float(rng.uniform(0.0, MAX_NOISE_RIPPLE_DB)) if rng.random() < COLOURED_NOISE_PROBABILITY else 0.0
        self.colour = noise_colour(rng, ripple_db) if ripple_db else None
        self.extra: dict[str, Any] = {"noise_ripple_db": ripple_db}
        self.key = noise_key(spec.seed, NOISE_DRAW)
        self.wf: phy.PhyWaveform | None = None
        if spec.protocol == "none":
            return
        if spec.snr_db is None:
            raise ValueError(f"a {spec.protocol} example needs an SNR")
        fs = params.sample_rate_hz
        self.wf = _phy_waveform(spec, (self.guard + self.n_samples) / fs, rng)
        self.channel = example_channel(spec, fs, rng, scenario_folder)
        self.offsets = impairments.draw_frequency_offsets(rng, spec.carrier_hz)
        self.drawn = impairments.draw_receiver_impairments(rng) if spec.impairments else None
        self.extra = {
            "coding": self.wf.coding,
            "bandwidth_hz": self.wf.bandwidth_hz,
            "occupied_bw_hz": self.wf.occupied_bw_hz,
            "phy": self.wf.meta,
            "cfo_hz": self.offsets["cfo_hz"],
            "sfo_ppm": self.offsets["sfo_ppm"],
            **self.extra,
        }
        if self.drawn is not None:
            self.extra["impairments"] = self.drawn

    @property
    def occupied_bw_hz(self) -> float | None:
        return None if self.wf is None else self.wf.occupied_bw_hz

    @property
    def occupied_centre_hz(self) -> float:
        """Where the occupied band sits in the stream, before the channel's and oscillators' offsets."""
        return 0.0 if self.wf is None else self.wf.occupied_centre_hz

    def _noise(self, regions, taps: np.ndarray | None) -> np.ndarray:
        parts = [indexed_noise(self.key, start + self.guard, stop + self.guard, taps) for start, stop in regions]
        return np.concatenate(parts) if parts else np.zeros(0, np.complex64)

    def realise(self, regions, measured=None) -> tuple[np.ndarray, dict]:
        """(the stream, zero outside `regions`, labels). The SNR's signal power and the
        impairments' levels are measured over `measured` (regions within `regions`; default: all
        of them), so that a stream formed in part and one formed whole agree where both are
        formed when they are given the same `measured`."""
        fs, guard = self.params.sample_rate_hz, self.guard
        regions = merge_regions(regions, self.n_samples)
        index = region_index(regions)
        absolute = index + guard
        measured_mask = in_regions(index, merge_regions(measured or regions, self.n_samples))
        out = np.zeros(self.n_samples, np.complex64)
        row = label_row(self.spec, self.extra)
        if self.wf is None:
            out[index] = self._noise(regions, self.colour) * np.float32(np.sqrt(NOISE_POWER_NONE / 2))
            return out, row
        reads = [self.channel.input_range(start + guard, stop + guard) for start, stop in regions]
        x, active = _waveform_at(self.wf, self.params, reads, guard + self.n_samples)
        sfo_ppm = self.offsets["sfo_ppm"]
        y = self.channel.apply_regions(x, [(start + guard, stop + guard) for start, stop in regions], sfo_ppm)
        y, _ = impairments.carrier_frequency_offset(y, self.offsets["cfo_hz"], fs, absolute)
        on = active[absolute] & measured_mask
        signal_power = mean_power(y[on] if on.any() else y[measured_mask])
        variance = noise_variance(float(self.spec.snr_db or 0.0), self.wf.occupied_bw_hz, fs, signal_power)
        taps = None if self.colour is None else band_normalised(self.colour, self.wf.occupied_bw_hz, fs)
        y = (y + np.float32(np.sqrt(variance / 2.0)) * self._noise(regions, taps)).astype(np.complex64)
        if self.drawn is not None:
            phase_key = noise_key(self.spec.seed, PHASE_NOISE_DRAW)
            y = impairments.apply_drawn(y, absolute, fs, self.drawn, phase_key, measured_mask)
        out[index] = y
        return out, row


def make_stream(
    spec: ExampleSpec, params: SpectrogramParams = DEFAULT_PARAMS, n_samples: int | None = None, scenario_folder=None
) -> tuple[np.ndarray, dict]:
    """The whole received stream at the analysis rate (n_samples, default one observation):
    ReceivedStream formed over every sample."""
    n_samples = n_samples or params.window_samples
    return ReceivedStream(spec, params, n_samples, scenario_folder).realise([(0, n_samples)])


DEFAULT_EMISSION_S = 0.25
"""How long a synthetic emission lasts by default: 16 observations (0.254 s), longer than the
dynamics view's 128 ms reach into the past plus a window, so that the later windows of each emission
read it alone, and enough windows for tracking to gain over one."""
MAX_EMISSION_S = 10.0
"""The longest emission: its PHY waveform is held whole (up to 160 MB a second, WiFi's 20 MS/s)."""
EMISSION_LEVEL_DB_RANGE = (-15.0, 15.0)
"""Each synthetic emission arrives at its own level (the emitter's distance, the receiver's gain),
drawn uniformly over this range, as consecutive emissions do at a radio: what lets a tracker
tell where one emission ends from the power alone."""
EMISSION_LEVEL_DRAW = 2
"""Extra seed word of an emission's level, apart from its example's draws."""
EMISSION_SNIPPETS = 16
EMISSION_SNIPPET_SAMPLES = 2048
"""An emission's SNR is measured over this many snippets of this many samples spread over it."""


def emission_measured(n_samples: int) -> list[tuple[int, int]]:
    """Where the SNR of an emission n_samples long is measured: the same snippets, spread evenly
    over it, for every stretch of it, so that its noise floor holds across stretches (each stretch
    measured over itself would make it jump at every boundary) at a small cost per stretch."""
    length = min(EMISSION_SNIPPET_SAMPLES, n_samples)
    starts = np.linspace(0, n_samples - length, EMISSION_SNIPPETS).astype(np.int64)
    return [(int(start), int(start) + length) for start in starts]


class SyntheticStream:
    """Endless labelled observations for the synthetic source block and the demo: emissions of
    `emission_s` (rounded up to whole observations), each the consecutive stretches of one
    received stream of one example (ReceivedStream), so that its channel fades on across
    observations as a radio sees it, with one truth; `emission_s` of one observation or less
    gives a new example per observation.

    Fixed fields stay as given; fields left None are drawn per emission (cycling
    through the protocols in turn when `cycle`)."""

    def __init__(
        self,
        protocol=None,
        modulation=None,
        snr_db=None,
        mobility=None,
        cycle=True,
        seed=0,
        params: SpectrogramParams = DEFAULT_PARAMS,
        channel="TDL-C",
        scenario_folder=None,
        emission_s: float = DEFAULT_EMISSION_S,
    ):
        if protocol is not None:
            labels.check_choice("protocol", protocol, labels.ROUTER_CLASSES)
        if modulation is not None:
            if protocol is None or protocol not in labels.PROTOCOLS:
                raise ValueError("a fixed modulation needs a fixed protocol among " + ", ".join(labels.PROTOCOLS))
            labels.check_modulation(protocol, modulation)
        if snr_db is not None:
            check_snr(snr_db)
        if mobility is not None:
            labels.check_choice("mobility", mobility, labels.MOBILITY_CLASSES)
        if (
            isinstance(emission_s, bool)
            or not isinstance(emission_s, (int, float))
            or not 0 < emission_s <= MAX_EMISSION_S
        ):
            raise ValueError(
                f"emission length {emission_s!r} s: give a number of seconds above 0, at most {MAX_EMISSION_S:g}"
            )
        self.fixed = {"protocol": protocol, "modulation": modulation, "snr_db": snr_db, "mobility": mobility}
        self.cycle = cycle
        self.params = params
        self.config = GeneratorConfig(seed=seed, channel=channel)
        self.scenario_folder = scenario_folder
        self.emission_observations = max(1, math.ceil(emission_s / params.window_seconds - 1e-9))
        """Observations per emission."""
        self.measured = emission_measured(self.emission_observations * params.window_samples)
        self.index = 0
        """The next emission's index in the seeded sequence."""
        self._emission: ReceivedStream | None = None
        self._played = 0
        self._level_db = 0.0

    def next_spec(self) -> ExampleSpec:
        """The next emission's labels."""
        protocol = self.fixed["protocol"]
        if protocol is None and self.cycle:
            protocol = labels.PROTOCOLS[self.index % len(labels.PROTOCOLS)]
        config = self.config if protocol is None else dataclasses.replace(self.config, classes={protocol: 1.0})
        spec = draw_spec(config, self.index)
        self.index += 1
        updates = {k: v for k, v in self.fixed.items() if v is not None and k != "protocol"}
        if spec.protocol == "none":
            updates = {}
        elif spec.protocol == "other":
            updates.pop("modulation", None)
        rng = np.random.default_rng(spec.seed)
        if "mobility" in updates:
            updates["speed_kmh"] = draw_speed(updates["mobility"], rng, spec.carrier_hz)
        if "modulation" in updates:
            rates = phy.options(spec.protocol)["code_rate"][updates["modulation"]]
            if spec.code_rate not in rates:
                updates["code_rate"] = str(rng.choice(rates))
        return dataclasses.replace(spec, **updates)

    def emission(self, spec: ExampleSpec) -> ReceivedStream:
        """The received stream of the emission `spec`, emission_observations long."""
        n_samples = self.emission_observations * self.params.window_samples
        return ReceivedStream(spec, self.params, n_samples, self.scenario_folder)

    def next_observation(self) -> tuple[np.ndarray, dict]:
        """(the next observation's samples, its emission's truth): the emission's next stretch,
        formed with the SNR measured over `measured`, at the emission's level (`level_db` in the
        truth, EMISSION_LEVEL_DB_RANGE); a new emission after the last. Between
        calls the emission's draws and transmit waveform are held, not its received samples."""
        if self._emission is None:
            spec = self.next_spec()
            self._emission, self._played = self.emission(spec), 0
            self._level_db = float(
                np.random.default_rng([spec.seed, EMISSION_LEVEL_DRAW]).uniform(*EMISSION_LEVEL_DB_RANGE)
            )
        span = self.params.window_samples
        start = self._played * span
        iq, row = self._emission.realise([(start, start + span), *self.measured], measured=self.measured)
        self._played += 1
        if self._played == self.emission_observations:
            self._emission = None  # its waveform is not kept (nor pickled with the stream)
        gain = np.float32(10.0 ** (self._level_db / 20.0))
        return iq[start : start + span] * gain, {**row, "level_db": self._level_db}


CHANNEL_DRAW = 1
"""Extra seed word of the per-example channel draw, apart from draw_spec's (seed, index) stream."""


def draw_example(config: GeneratorConfig, index: int) -> ExampleSpec:
    """The `index`-th example of a dataset, its channel drawn from `config.channel`'s weights when
    it lists several. The channel is drawn from a stream of its own, so a config naming one
    channel draws exactly what draw_spec does."""
    if isinstance(config.channel, str):
        return draw_spec(config, index)
    names = list(config.channel)
    weights = np.asarray([config.channel[name] for name in names], float)
    rng = np.random.default_rng([config.seed, index, CHANNEL_DRAW])
    drawn = copy.copy(config)  # not dataclasses.replace: the config is valid, and checking it again costs 1 ms
    drawn.channel = names[rng.choice(len(names), p=weights / weights.sum())]
    return draw_spec(drawn, index)


def _check_weights(where: str, what: str, weights: dict, choices) -> None:
    """`weights` maps choices to weights >= 0, one of them positive; a ValueError naming `where` if not."""
    for name, weight in weights.items():
        labels.check_choice(what, name, choices)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
            raise ValueError(f"{where}.{name}: {weight!r} is not a {what} weight (a number >= 0)")
    if not weights or sum(weights.values()) <= 0:
        raise ValueError(f"{where}: {weights!r} needs a positive weight for at least one {what}")
