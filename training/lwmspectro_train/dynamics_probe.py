"""Which form of the dynamics view shows mobility best: the variants side by side, before a corpus is
remade for one.

Each example of a generator config is re-synthesised (`dataset_generation.example_source`, its
capture chain included) and the snippet powers of four snippet layouts are kept: today's (33 us
every 1 ms), longer snippets (133 us every 1 ms), a finer hop (33 us every 0.25 ms) and subbands
as narrow as a scheduler's allocation unit, each over the same 128 ms. A variant turns one
layout's powers into view rows (`dynamics_from_powers`), optionally over fewer, wider subbands,
gated per subband as well as over the band, and with the common-mode rows: the same change
quantiles after each snippet's level is taken relative to its strongest subbands', where a
receiver's gain step or a burst switching the whole band cancels and the frequency-selective
fading stays. A gradient-boosted classifier (the view's rows and the true SNR) is fitted per
variant on the examples of one config (the training sites) and scored on those of another (the
held-out site), signals at SNR >= 10 dB, overall and by protocol, class, LTE/NR load and gain
step. The powers are cached by chunk under `--out`, so a rerun fits again without generating.

Other modes set the bounds. `--ceiling` makes the view of each example's channel alone
(no signal is synthesised): what a perfect estimate of the channel would show, and the same
measured through one snippet's data and noise. `--reference` puts today's view beside a view of
what one protocol sends at a fixed power, on that protocol's examples (REFERENCES: LTE's cell
reference signals, sent at one power whatever the cell schedules; a WiFi medium's busy time).
`--view` does the same for the registered sent-power view of a protocol (`dynamics_lte`, ...), as
the views compute it. `--stored` fits the same classifier on today's view as two generated folders hold it, to set
what a whole corpus shows beside what the variants show on a few thousand examples.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import multiprocessing
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal
from sklearn.ensemble import HistGradientBoostingClassifier
from tqdm import tqdm

from lwmspectro import dataset_generation, labels, ofdm_sync, views
from lwmspectro.dataset import open_dataset
from lwmspectro.dynamics import (
    CHANGE_QUANTILES,
    GATE_FRACTION,
    LOG_FLOOR,
    DynamicsParams,
    SnippetHistory,
    dynamics_from_powers,
    snippets_on,
)
from lwmspectro.fileio import atomic_write
from lwmspectro.resample import PointResampler
from lwmspectro.synth import GeneratorConfig, draw_example, example_channel

LAYOUTS = {
    "33 us every 1 ms": views.VIEWS["dynamics"],
    "133 us every 1 ms": dataclasses.replace(views.VIEWS["dynamics"], frames_per_snippet=16),
    "33 us every 0.25 ms": dataclasses.replace(
        views.VIEWS["dynamics"],
        hop_s=0.25e-3,
        n_snippets=512,
        lags=(1, 2, 4, 8, 12, 16, 24, 32, 44, 64, 90, 128, 180, 256),
    ),
    "33 us in 128 subbands every 1 ms": dataclasses.replace(
        views.VIEWS["dynamics"], n_fft=1024, frames_per_snippet=1, n_subbands=128
    ),
}
"""Snippet layouts, each over the same 128 ms (the last lag reaches 64 ms in each); the last one's
subbands (240 kHz) are as narrow as a scheduler's allocation unit (LTE's 180 kHz RB, a 4-RB
group at 20 MHz being 720 kHz), so that a subband is mostly either allocated or empty."""


@dataclass(frozen=True)
class Variant:
    """View rows of one layout's powers: over `subbands` (None: the layout's own), with the
    common-mode rows, and gated per subband (`subband_gate`) rather than over the whole band."""

    layout: str
    subbands: int | None = None
    common_mode: bool = False
    subband_gate: bool = False

    @property
    def params(self) -> DynamicsParams:
        references = dict.fromkeys(
            [name for r in REFERENCES.values() for name in (r.today_name, r.name)], views.VIEWS["dynamics"]
        )
        layout = {**LAYOUTS, **CEILING_LAYOUTS, **references}[self.layout]
        return dataclasses.replace(layout, n_subbands=self.subbands or layout.n_subbands)


VARIANTS = {
    "today's view": Variant("33 us every 1 ms"),
    "today's + common-mode rows": Variant("33 us every 1 ms", common_mode=True),
    "133 us snippets": Variant("133 us every 1 ms"),
    "133 us snippets + common-mode rows": Variant("133 us every 1 ms", common_mode=True),
    "0.25 ms hop": Variant("33 us every 0.25 ms"),
    "0.25 ms hop, 8 subbands": Variant("33 us every 0.25 ms", subbands=8),
    "0.25 ms hop, 8 subbands + common-mode rows": Variant("33 us every 0.25 ms", subbands=8, common_mode=True),
    "today's view, gated per subband": Variant("33 us every 1 ms", subband_gate=True),
    "128 subbands": Variant("33 us in 128 subbands every 1 ms"),
    "128 subbands, gated per subband": Variant("33 us in 128 subbands every 1 ms", subband_gate=True),
    "133 us snippets, gated per subband": Variant("133 us every 1 ms", subband_gate=True),
}
CEILING_LAYOUTS = {
    "the channel itself": views.VIEWS["dynamics"],
    "the channel through a snippet's spread": views.VIEWS["dynamics"],
}
"""The ceiling's powers, at today's snippets: the channel's own subband power |H(t, f)|^2 over the
signal's band (what a perfect channel estimate would give), and the same as one 33 us snippet
measures it: scaled by the mean of its subband's n_fft / n_subbands x frames_per_snippet
exponential elements (an OFDM signal's data) plus noise at the example's SNR measured alike."""
CEILING_VARIANTS = {name: Variant(name) for name in CEILING_LAYOUTS}
CEILING_DRAW = 7
"""Stream of the ceiling's own fading draw (the example's channel, its phases drawn anew)."""
COMMON_MODE_SUBBANDS = 0.25
"""Share of the subbands (the strongest) whose median level a common-mode row is taken against."""
CHUNK = 50
FULL_OCCUPANCY = 0.95
"""An LTE or NR cell counts as at full load from this served load on (`_occupancy`)."""
GAIN_STEP_DB = 1.0
"""A capture counts as holding a gain step from this size on."""
MIN_SNR_DB = 10.0
SEEDS = 3


Measure = Callable[[DynamicsParams, np.ndarray, float], np.ndarray]
"""What a probe makes of the capture a layout reads: (its params, the source-rate I/Q, the rate)."""


class _RecordingHistory(SnippetHistory):
    """A stream history that also keeps, by name, what each of `measures` makes of the capture its
    layout reads (None: that layout's snippet powers)."""

    def __init__(self, measures: dict[str, tuple[DynamicsParams, Measure | None]]) -> None:
        super().__init__()
        self.layouts = measures
        self.recorded: dict[str, np.ndarray] = {}

    def measures(self, params, iq: np.ndarray, source_rate_hz: float, position: int) -> dict[str, np.ndarray]:
        measured = super().measures(params, iq, source_rate_hz, position)
        for name, (reads, measure) in self.layouts.items():
            if reads == params:
                self.recorded[name] = measured["power"] if measure is None else measure(params, iq, source_rate_hz)
        return measured


def _recorded_examples(
    config_path: str,
    first: int,
    count: int,
    measures: dict[str, tuple[DynamicsParams, Measure | None]],
    protocol: str | None = None,
    computed: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """The labels (protocol, SNR, mobility index or -1, occupancy, gain step) and what each of
    `measures` records of the examples first .. first + count - 1 of a config (those of
    `protocol` alone when given: the others are not synthesised), each made with G, the
    measures' layouts and the registered views `computed` as its views; the latter as computed."""
    config = GeneratorConfig.from_file(config_path)
    plan = dataset_generation.ExamplePlan.of(
        config,
        {
            "wideband": config.params,
            **{name: reads for name, (reads, _) in measures.items()},
            **{name: views.VIEWS[name] for name in computed},
        },
    )
    rows: list[dict] = []
    recorded: dict[str, list[np.ndarray]] = {name: [] for name in [*measures, *computed]}
    for index in range(first, first + count):
        if protocol is not None and draw_example(config, index).protocol != protocol:
            continue
        source, rate, start, row = dataset_generation.example_source(config, index, plan)
        history = _RecordingHistory(measures)
        outputs = dict(
            zip(plan.views, views.compute_observation(list(plan.views.values()), source, rate, start, history=history))
        )
        for name in measures:
            recorded[name].append(history.recorded[name].astype(np.float32))
        for name in computed:
            recorded[name].append(outputs[name].values)
        rows.append(row)
    shapes = {
        **{name: (reads.n_snippets, reads.n_subbands) for name, (reads, _) in measures.items()},
        **{name: views.view_shape(views.VIEWS[name]) for name in computed},
    }
    return {
        **_label_arrays([r["protocol"] for r in rows], [r["snr_db"] for r in rows], [r["mobility"] for r in rows]),
        "occupancy": np.array([_occupancy(r) for r in rows]),
        "gain_step_db": np.array([abs((r["capture"] or {}).get("gain_step_db", 0.0)) for r in rows]),
        **{
            name: np.stack(kept) if kept else np.zeros((0, *shapes[name]), np.float32)
            for name, kept in recorded.items()
        },
    }


def example_powers(config_path: str, first: int, count: int) -> dict[str, np.ndarray]:
    """The labels and each layout's snippet powers of the examples first .. first + count - 1 of a config."""
    return _recorded_examples(config_path, first, count, {name: (params, None) for name, params in LAYOUTS.items()})


def channel_powers(config_path: str, first: int, count: int) -> dict[str, np.ndarray]:
    """The labels and the ceiling's powers (CEILING_LAYOUTS) of the examples first .. first +
    count - 1 of a config, from their channels alone: no signal is synthesised, so the channel's
    fading is drawn anew (the same site, paths, K-factors and Doppler) and each ceiling powers the
    subbands of the analysis band inside the signal's channel bandwidth, zero elsewhere."""
    config = GeneratorConfig.from_file(config_path)
    params = views.VIEWS["dynamics"]
    rate = params.sample_rate_hz
    frequencies = (np.arange(params.n_fft) - params.n_fft // 2) * rate / params.n_fft
    elements = params.n_fft // params.n_subbands * params.frames_per_snippet
    times = params.snippet_starts() / rate
    specs = [draw_example(config, index) for index in range(first, first + count)]
    exact, spread = [], []
    for spec in specs:
        power = np.zeros((params.n_snippets, params.n_subbands), np.float32)
        measured = power
        if spec.protocol in labels.PROTOCOLS:
            rng = np.random.default_rng([spec.seed, CEILING_DRAW])
            channel = example_channel(spec, rate, rng, config.scenario_folder)
            inside = np.abs(frequencies) < spec.bandwidth_hz / 2
            response = np.abs(channel.frequency_response(times, frequencies)) ** 2 * inside
            power = response.reshape(len(times), params.n_subbands, -1).mean(axis=-1)
            data, noise = rng.gamma(elements, 1 / elements, (2, *power.shape))
            in_band_power = power[:, power.any(axis=0)].mean()
            measured = power * data + noise * in_band_power * 10 ** (-spec.snr_db / 10)
        exact.append(power)
        spread.append(measured.astype(np.float32))
    return {
        **_label_arrays([s.protocol for s in specs], [s.snr_db for s in specs], [s.mobility for s in specs]),
        "occupancy": np.full(len(specs), np.nan),
        "gain_step_db": np.zeros(len(specs)),
        "the channel itself": np.stack(exact),
        "the channel through a snippet's spread": np.stack(spread).astype(np.float32),
    }


def _read_snippets(params: DynamicsParams, iq: np.ndarray, source_rate_hz: float) -> np.ndarray:
    """(n_snippets, snippet_samples) the reads of a reference layout, resampled to its analysis rate."""
    resampler = PointResampler.for_rates(source_rate_hz, params.sample_rate_hz)
    return resampler.frames(iq, 0, params.snippet_starts(), params.snippet_samples)


def _symbol_powers(
    snippet: np.ndarray, numerology: ofdm_sync.Numerology, timing: ofdm_sync.SymbolTiming, fft_starts
) -> np.ndarray:
    """(len(fft_starts), n_fft) power of the OFDM symbols whose FFT windows start at `fft_starts`,
    the fractional CFO of `timing` derotated, DC-centred."""
    within = np.arange(numerology.n_fft)
    derotation = np.exp(-2j * np.pi * timing.cfo_subcarriers * within / numerology.n_fft)
    symbols = snippet[np.asarray(fft_starts)[:, None] + within] * derotation
    return np.abs(np.fft.fftshift(np.fft.fft(symbols, axis=-1), axes=-1)) ** 2


def lte_reference_powers(params: DynamicsParams, iq: np.ndarray, source_rate_hz: float) -> np.ndarray:
    """(n_snippets, 32) power of an LTE cell's reference signals in today's subbands, one symbol per
    snippet of `params` (REFERENCES["lte"].reads): the fourth symbol of the first whole slot the
    snippet holds, found by its cyclic prefixes (`ofdm_sync`, timing and fractional CFO per
    snippet, so that a sampling-clock offset does not walk it out of its prefix). A port's CRS
    sit on one comb of every sixth subcarrier at a fixed power whatever the cell's traffic; the
    comb is the one of the six whose power is the highest in the snippets' lowest decile (data
    come and go, the reference signals stay). Subcarrier k of the grid is FFT bin k - 6 N_RB below
    DC and k - 6 N_RB + 1 above it (DC is skipped), so the comb of bin b is b mod 6 below DC and
    (b - 1) mod 6 above, whatever the bandwidth."""
    lte = ofdm_sync.LTE
    snippets = _read_snippets(params, iq, source_rate_hz)
    within = np.arange(lte.n_fft)
    spectra = np.empty((len(snippets), lte.n_fft), np.float32)
    for row, snippet in enumerate(snippets):
        timing = ofdm_sync.estimate_timing(snippet, lte)
        start = timing.group_start + lte.fft_starts[4] - lte.cp_other // 4
        spectra[row] = _symbol_powers(snippet, lte, timing, [start])[0]
    bins = within - lte.n_fft // 2
    comb = np.where(bins < 0, bins, bins - 1) % 6
    totals = np.stack([spectra[:, comb == c].sum(axis=1) for c in range(6)], axis=1)
    reference = comb == np.argmax(np.percentile(totals, 10, axis=0))
    subbands = within // (lte.n_fft // views.VIEWS["dynamics"].n_subbands)
    counts = np.bincount(subbands[reference], minlength=views.VIEWS["dynamics"].n_subbands)
    return np.stack(
        [np.bincount(subbands[reference], s[reference], counts.size) / np.maximum(counts, 1) for s in spectra]
    )


def wifi_busy_powers(params: DynamicsParams, iq: np.ndarray, source_rate_hz: float) -> np.ndarray:
    """(n_snippets, 32) power of a WiFi medium's busy time in today's subbands, per millisecond:
    every 256-sample frame of each millisecond (REFERENCES["wifi"].reads reads all of them) that lies inside
    a packet, its neighbours on both sides busy too, so that no frame straddles a packet's edge
    (a half-busy frame reads a fade of a few dB). An 802.11 transmitter keeps its power for a
    whole packet and fills every subcarrier of every symbol, so what moves between these is the
    channel; a millisecond without such a frame is left at zero (out of the view's gate)."""
    today = views.VIEWS["dynamics"]
    frames = _read_snippets(params, iq, source_rate_hz).reshape(-1, today.n_fft)
    spectrum = np.fft.fftshift(np.fft.fft(frames * scipy.signal.get_window("hann", today.n_fft)), axes=-1)
    power = (np.abs(spectrum) ** 2).reshape(len(frames), today.n_subbands, -1).mean(axis=-1)
    total = power.sum(axis=1)
    busy = total >= GATE_FRACTION * np.percentile(total, BUSY_PERCENTILE)
    inside = busy & np.r_[False, busy[:-1]] & np.r_[busy[1:], False]
    per_snippet = len(frames) // params.n_snippets
    inside = inside.reshape(params.n_snippets, per_snippet)
    power = power.reshape(params.n_snippets, per_snippet, today.n_subbands)
    kept = (power * inside[..., None]).sum(axis=1)
    return kept / np.maximum(inside.sum(axis=1), 1)[:, None]


BUSY_PERCENTILE = 99.5
"""A frame is busy at GATE_FRACTION of this percentile of the frames' power: inside the packets
for a medium busy 0.5 % of the time or more (the view's own gate, at the 90th percentile of 128
snippets, passes noise as signal where the medium is busy less than a tenth of the time)."""


def nr_scheduled_powers(params: DynamicsParams, iq: np.ndarray, source_rate_hz: float) -> np.ndarray:
    """(n_snippets, 32) power of an NR carrier's scheduled resource blocks in today's subbands,
    per millisecond (REFERENCES["nr"].reads reads every sample). The subcarrier spacing is the one (15 or
    30 kHz) whose cyclic prefixes correlate best; in each millisecond the symbols are found by
    their prefixes (`ofdm_sync`, timing and fractional CFO per millisecond) and transformed, and
    the power of each 12-subcarrier block (a resource block, give or take its offset) in each
    symbol counts where it is scheduled: at least GATE_FRACTION of that block's BUSY_PERCENTILE
    over the 128 ms (a scheduled block keeps one power over its symbols, an unscheduled one is
    empty; no block is half-scheduled, as a 960 kHz subband is). Each block's counted power is
    taken relative to its mean over them, so that blocks scheduled at different times compare,
    and a subband's value is the median over its counted blocks and symbols (the data's: DMRS,
    control and SS/PBCH symbols, a few of a slot's, have powers of their own), times its own
    mean power; a subband without one in a millisecond is left at zero (out of the per-subband
    gate)."""
    today = views.VIEWS["dynamics"]
    snippets = _read_snippets(params, iq, source_rate_hz)
    numerology = max(
        (ofdm_sync.LTE, ofdm_sync.NR_30KHZ),
        key=lambda n: np.mean([ofdm_sync.estimate_timing(s, n).correlation for s in snippets[:: len(snippets) // 8]]),
    )
    n_fft = numerology.n_fft
    symbols_per_ms = int(1e-3 * numerology.sample_rate_hz) // (n_fft + numerology.cp_other) - 1
    spectra = []
    for snippet in snippets:
        timing = ofdm_sync.estimate_timing(snippet, numerology)
        starts = ofdm_sync.symbol_starts(timing, numerology, len(snippet), symbols_per_ms, numerology.cp_other // 4)
        spectra.append(_symbol_powers(snippet, numerology, timing, starts))
    grid = np.stack(spectra)  # (n_snippets, symbols, n_fft)
    blocks = grid[..., : n_fft // 12 * 12].reshape(*grid.shape[:2], -1, 12).mean(axis=-1)
    scheduled = blocks >= GATE_FRACTION * np.percentile(blocks, BUSY_PERCENTILE, axis=(0, 1))
    mean_scheduled = (blocks * scheduled).sum(axis=(0, 1)) / np.maximum(scheduled.sum(axis=(0, 1)), 1)
    relative = blocks / np.maximum(mean_scheduled, LOG_FLOOR)
    subband = (np.arange(blocks.shape[-1]) * 12 + 6) * today.n_subbands // n_fft
    counted = np.where(scheduled, relative, np.nan)
    out = np.zeros((len(snippets), today.n_subbands))
    for k in range(today.n_subbands):
        mine = subband == k
        if mine.any() and scheduled[..., mine].any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a millisecond without a scheduled block here
                median = np.nanmedian(counted[..., mine].reshape(len(snippets), -1), axis=1)
            out[:, k] = np.nan_to_num(median) * mean_scheduled[mine].mean()
    return out


@dataclass(frozen=True)
class Reference:
    """A protocol's view of the power it sends fixed: what it reads and how it is made of that."""

    label: str
    name: str
    reads: DynamicsParams
    powers: Measure
    subband_gate: bool = False
    """Its rows are gated per subband (subband_gated_rows): where its powers leave subbands at zero."""

    @property
    def today_name(self) -> str:
        """Today's view on the same windows."""
        return f"today's view, {self.label}"

    @property
    def variants(self) -> dict[str, Variant]:
        """Today's view and the reference's, side by side."""
        return {
            self.today_name: Variant(self.today_name),
            self.name: Variant(self.name, subband_gate=self.subband_gate),
        }


REFERENCES = {
    "lte": Reference(
        "LTE",
        "LTE cell reference signals",
        dataclasses.replace(views.VIEWS["dynamics"], n_fft=ofdm_sync.LTE.n_fft, frames_per_snippet=13),
        lte_reference_powers,
    ),
    "wifi": Reference(
        "WiFi",
        "WiFi busy time",
        dataclasses.replace(views.VIEWS["dynamics"], frames_per_snippet=120),
        wifi_busy_powers,
    ),
    "nr": Reference(
        "NR",
        "NR scheduled resource blocks",
        dataclasses.replace(views.VIEWS["dynamics"], frames_per_snippet=120),
        nr_scheduled_powers,
        subband_gate=True,
    ),
}
"""The reference views probed. LTE's reads 0.87 ms every 1 ms at 30.72 MS/s, so that each read
holds the fourth symbol of a whole slot (a slot is 15 360 samples, its fourth symbol ends 10 976
in); WiFi's and NR's read every sample, 120 frames of 256 a millisecond."""


def reference_examples(protocol: str, config_path: str, first: int, count: int) -> dict[str, np.ndarray]:
    """The labels, today's snippet powers and the reference powers (REFERENCES[protocol]) of the
    examples of that protocol among first .. first + count - 1 of a config."""
    reference = REFERENCES[protocol]
    measures = {
        reference.today_name: (views.VIEWS["dynamics"], None),
        reference.name: (reference.reads, reference.powers),
    }
    return _recorded_examples(config_path, first, count, measures, protocol)


def view_examples(protocol: str, config_path: str, first: int, count: int) -> dict[str, np.ndarray]:
    """The labels, today's snippet powers and the registered sent-power view of `protocol`
    (views.VIEWS["dynamics_" + protocol], as computed) of the examples of that protocol among
    first .. first + count - 1 of a config."""
    measures = {f"today's view, {REFERENCES[protocol].label}": (views.VIEWS["dynamics"], None)}
    return _recorded_examples(config_path, first, count, measures, protocol, computed=(f"dynamics_{protocol}",))


def _occupancy(row: dict) -> float:
    """The share of its capacity a signal used: the PDSCH load an LTE or NR cell served, the time
    a WiFi medium was busy (NaN for noise and other signals)."""
    phy = row.get("phy") or {}
    return float(phy.get("served_load", phy.get("duty_cycle", np.nan)))


def _label_arrays(protocols: list, snrs: list, mobilities: list) -> dict[str, np.ndarray]:
    """Label rows' fields as arrays: the SNR NaN and the mobility index -1 where a row has none."""
    return {
        "protocol": np.array(protocols),
        "snr_db": np.array([np.nan if v is None else v for v in snrs], float),
        "mobility": np.array([labels.MOBILITY_CLASSES.index(m) if m else -1 for m in mobilities]),
    }


def examples(
    config_path: str, count: int, folder: Path, workers: int, progress: bool, make=example_powers
) -> dict[str, np.ndarray]:
    """The powers and labels of the first `count` examples of a config, from the cache or made
    (`make`: example_powers, channel_powers for the ceiling, or reference_examples)."""
    folder.mkdir(parents=True, exist_ok=True)
    starts = list(range(0, count, CHUNK))
    paths = [folder / f"chunk-{first:06d}.npz" for first in starts]
    missing = [(first, path) for first, path in zip(starts, paths) if not path.exists()]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        jobs = [
            (path, pool.apply_async(make, (config_path, first, min(CHUNK, count - first)))) for first, path in missing
        ]
        for path, job in tqdm(jobs, desc=folder.name, unit="chunk", disable=not progress):
            arrays = job.get()
            atomic_write(path, lambda f, a=arrays: np.savez(f, **a))
    parts = [np.load(path) for path in paths]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0].files}


def subband_gated_rows(params: DynamicsParams, power: np.ndarray) -> np.ndarray:
    """The view's rows with a gate per subband as well as the band's: a snippet counts in a
    subband when that subband's power is at least GATE_FRACTION of its own 90th percentile, so
    that resource blocks a scheduler switches on and off drop out there, as a WiFi gap does
    from the whole band."""
    out = dynamics_from_powers(params, power)
    band_on = snippets_on(power)
    if band_on.sum() < 2:
        return out
    on = band_on[:, None] & (power >= GATE_FRACTION * np.percentile(power[band_on], 90, axis=0))
    level = 10 * np.log10(np.maximum(power, LOG_FLOOR))
    order = np.argsort(-level[band_on].mean(axis=0), kind="stable")
    n_lags = len(params.lags)
    for row, lag in enumerate(params.lags, start=1):
        pairs = on[lag:] & on[:-lag]
        change = np.where(pairs, np.abs(level[lag:] - level[:-lag]), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a subband without pairs at this lag
            quartile, median = np.nan_to_num(np.nanquantile(change, CHANGE_QUANTILES, axis=0))
        out[row], out[row + n_lags] = quartile[order], median[order]
    return out


def features(variant: Variant, power: np.ndarray) -> np.ndarray:
    """The view rows a variant makes of one example's snippet powers (n_snippets, the layout's
    subbands); a registered view's (its layout named as in views.VIEWS) are recorded as computed."""
    if variant.layout in views.VIEWS:
        return power.ravel()
    params = variant.params
    pooled = power.reshape(len(power), params.n_subbands, -1).sum(axis=-1)
    rows = [(subband_gated_rows if variant.subband_gate else dynamics_from_powers)(params, pooled).ravel()]
    if variant.common_mode:
        on = snippets_on(pooled)
        strongest = np.argsort(-pooled[on].mean(axis=0) if on.any() else np.zeros(params.n_subbands))
        top = strongest[: max(1, int(COMMON_MODE_SUBBANDS * params.n_subbands))]
        reference = np.median(pooled[:, top], axis=1, keepdims=True)
        relative = np.where(on[:, None], pooled / np.maximum(reference, 1e-30), 0.0)
        rows.append(dynamics_from_powers(params, relative)[1:].ravel())
    return np.concatenate(rows)


def _accuracy(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_held: np.ndarray,
    truth: np.ndarray,
    protocol: np.ndarray,
    groups: dict[str, np.ndarray] | None = None,
) -> dict:
    """The classifier's held-out accuracy (mean over SEEDS fits), overall, by protocol, by class
    and over each of `groups` (masks of the scored rows)."""
    hits = np.mean(
        [
            HistGradientBoostingClassifier(max_iter=200, early_stopping=False, random_state=seed)
            .fit(x_fit, y_fit)
            .predict(x_held)
            == truth
            for seed in range(SEEDS)
        ],
        axis=0,
    )
    return {
        "accuracy": float(hits.mean()),
        "by_protocol": {p: float(hits[protocol == p].mean()) for p in labels.PROTOCOLS if (protocol == p).any()},
        "by_class": {
            c: float(hits[truth == i].mean()) for i, c in enumerate(labels.MOBILITY_CLASSES) if (truth == i).any()
        },
        "by_group": {name: float(hits[mask].mean()) for name, mask in (groups or {}).items() if mask.any()},
        "fit_rows": len(y_fit),
        "scored_rows": len(truth),
    }


def _signals(data: dict[str, np.ndarray]) -> np.ndarray:
    return np.isin(data["protocol"], labels.PROTOCOLS) & (data["mobility"] >= 0)


def scores(
    fit: dict[str, np.ndarray], held_out: dict[str, np.ndarray], variants: dict[str, Variant] = VARIANTS
) -> dict[str, dict]:
    """Held-out mobility accuracy per variant (signals at SNR >= MIN_SNR_DB), by protocol and class."""

    def table(data: dict, variant: Variant) -> np.ndarray:
        return np.array([np.r_[features(variant, p), s] for p, s in zip(data[variant.layout], data["snr_db"])])

    fitted = _signals(fit)
    scored = _signals(held_out) & (held_out["snr_db"] >= MIN_SNR_DB)
    truth, protocol = held_out["mobility"][scored], held_out["protocol"][scored]
    occupancy, step = held_out["occupancy"][scored], held_out["gain_step_db"][scored]
    cell = protocol != "wifi"
    groups = {
        "LTE/NR full load": cell & (occupancy >= FULL_OCCUPANCY),
        "LTE/NR partial load": cell & (occupancy < FULL_OCCUPANCY),
        "gain step": step >= GAIN_STEP_DB,
        "no gain step": step < GAIN_STEP_DB,
    }
    return {
        name: _accuracy(
            table(fit, variant)[fitted],
            fit["mobility"][fitted],
            table(held_out, variant)[scored],
            truth,
            protocol,
            groups,
        )
        for name, variant in variants.items()
    }


def stored_view(folder: str) -> dict[str, np.ndarray]:
    """The stored dynamics view (flattened) and the labels of every example of a dataset folder."""
    dataset = open_dataset(folder)
    return {
        "view": dataset.view("dynamics").reshape(len(dataset), -1),
        **_label_arrays(dataset.column("protocol"), dataset.column("snr_db"), dataset.column("mobility")),
    }


def stored_scores(fit_folder: str, score_folder: str) -> dict:
    """The same classifier on today's view as two `lwmspectro generate` folders store it: what a
    corpus of their size shows."""
    fit, held_out = stored_view(fit_folder), stored_view(score_folder)
    fitted = _signals(fit) & np.isfinite(fit["view"]).all(axis=1)
    scored = _signals(held_out) & (held_out["snr_db"] >= MIN_SNR_DB) & np.isfinite(held_out["view"]).all(axis=1)
    return _accuracy(
        np.c_[fit["view"], fit["snr_db"]][fitted],
        fit["mobility"][fitted],
        np.c_[held_out["view"], held_out["snr_db"]][scored],
        held_out["mobility"][scored],
        held_out["protocol"][scored],
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit-config", default="python/lwmspectro/configs/train-constellation.json")
    parser.add_argument("--score-config", default="python/lwmspectro/configs/heldout-constellation.json")
    parser.add_argument("--fit", type=int, default=1500, help="examples of --fit-config to fit on")
    parser.add_argument("--score", type=int, default=600, help="examples of --score-config to score")
    parser.add_argument("--out", default="runs/dynamics-probe", help="cache and results folder")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--stored",
        nargs=2,
        metavar=("FIT_DIR", "SCORE_DIR"),
        help="instead, fit today's view as two generated dataset folders store it (a whole corpus)",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="instead, the view made of each example's channel alone (CEILING_LAYOUTS): what estimating it can reach",
    )
    parser.add_argument(
        "--reference",
        choices=tuple(REFERENCES),
        help="instead, today's view beside a reference view of one protocol (REFERENCES), on its examples",
    )
    parser.add_argument(
        "--view",
        choices=tuple(REFERENCES),
        help="instead, today's view beside the registered sent-power view of one protocol, on its examples",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.stored:
        result = stored_scores(*args.stored)
        print(
            f"today's view, stored: mobility at SNR >= {MIN_SNR_DB:g} dB {100 * result['accuracy']:.1f} % "
            f"({result['fit_rows']} rows fitted, {result['scored_rows']} scored)"
        )
        return 0
    make, prefix, variants = (
        (channel_powers, "ceiling-", CEILING_VARIANTS)
        if args.ceiling
        else (
            functools.partial(view_examples, args.view),
            f"{args.view}-view-",
            {
                REFERENCES[args.view].today_name: Variant(REFERENCES[args.view].today_name),
                f"dynamics_{args.view}": Variant(f"dynamics_{args.view}"),
            },
        )
        if args.view
        else (
            functools.partial(reference_examples, args.reference),
            f"{args.reference}-reference-",
            REFERENCES[args.reference].variants,
        )
        if args.reference
        else (example_powers, "", VARIANTS)
    )
    progress = not args.no_progress
    fit = examples(args.fit_config, args.fit, out / f"{prefix}fit", args.workers, progress, make)
    held_out = examples(args.score_config, args.score, out / f"{prefix}score", args.workers, progress, make)
    results = scores(fit, held_out, variants)
    atomic_write(out / f"{prefix}results.json", json.dumps(results, indent=1))
    first = next(iter(results.values()))
    print(f"mobility at SNR >= {MIN_SNR_DB:g} dB, {first['fit_rows']} rows fitted, {first['scored_rows']} scored")
    print(
        "| variant | accuracy | WiFi / LTE / NR | static / pedestrian / vehicular | LTE/NR full / partial load "
        "| gain step / none |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        cells = [
            " / ".join(f"{100 * r[key][k]:.1f}" if k in r[key] else "-" for k in keys)
            for key, keys in (
                ("by_protocol", labels.PROTOCOLS),
                ("by_class", labels.MOBILITY_CLASSES),
                ("by_group", ("LTE/NR full load", "LTE/NR partial load")),
                ("by_group", ("gain step", "no gain step")),
            )
        ]
        print(f"| {name} | {100 * r['accuracy']:.1f} % | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
