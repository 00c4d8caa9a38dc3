"""The readout: one dict, the same on the PMT port, the CLI and ZMQ (DESIGN.md schema).

The model's answer for a window (`ModelOutput`, or `InvalidWindow` for a window it cannot
judge) carries no stamp; the caller that knows where the window came from and what it has
counted builds the readout once, with `build_readout`.

Every value is kept flat, one scalar per field, so that a readout is one row of a table (a
JSON line, a PMT dict of plain values, a SigMF annotation's keys). Beside the window's own
values a readout may carry those tracked over the emission's recent windows
(`lwmspectro.tracking`) under the same names prefixed `tracked_`, and `uncertain` lists the
value fields whose confidence is below the user's threshold: the value stays (the arg-max is
still the best guess) but a consumer that must not guess reads it as unknown.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from . import labels

TASKS = ("protocol", "modulation", "snr_db", "mobility")
"""The values a readout reads, each with a confidence (CONFIDENCE_OF): the fields a threshold
of `uncertain_thresholds` and a tracker (lwmspectro.tracking) are keyed by."""

CONFIDENCE_OF = {
    "protocol": "protocol_confidence",
    "modulation": "modulation_confidence",
    "snr_db": "snr_confidence",
    "mobility": "mobility_confidence",
}
"""The confidence field of each task's value."""

TRACKED_PREFIX = "tracked_"
TRACKED_FIELDS = (
    *(TRACKED_PREFIX + name for task in TASKS for name in (task, CONFIDENCE_OF[task])),
    "tracked_doppler_hz",
    "tracked_windows",
)
"""The values read over the emission's recent windows, and how many windows they rest on; None
when the readout is not tracked."""

FIELDS = (
    "valid",
    "invalid_reason",
    "protocol",
    "protocol_confidence",
    "modulation",
    "modulation_confidence",
    "snr_db",
    "snr_confidence",
    "mobility",
    "mobility_confidence",
    "mobility_status",
    "doppler_hz",
    *TRACKED_FIELDS,
    "uncertain",
    "expert",
    "window_start",
    "rx_time",
    "latency_ms",
    "windows_seen",
    "windows_classified",
    "windows_dropped",
    "samples_dropped",
)

INVALID_REASONS = ("nan_or_inf", "all_zero", "dc_only", "clipped", "too_short", "out_of_range")

MOBILITY_STATUSES = ("needs_longer_capture",)
"""Why a window judged otherwise has no mobility: its capture does not yet reach back as far as
the view of the fading's dynamics reads (128 ms); protocol, modulation and SNR are still read."""

COUNTERS = ("windows_seen", "windows_classified", "windows_dropped", "samples_dropped")
"""The counters a readout carries; samples_dropped counts the samples a source lost before the
receiver saw them (e.g. the LWM ZMQ Source's queue full), 0 when the source loses none."""


Thresholds = float | Mapping[str, float]
"""What `uncertain_below` takes: one confidence threshold for every task, or some tasks' (TASKS)
by name."""


def uncertain_thresholds(below: Thresholds) -> dict[str, float]:
    """{task: threshold} for every task of TASKS: `below` for all of them, or for those it names
    (the others 0: never uncertain). A threshold is a probability from 0 to 1; anything else
    (NaN, a negative number, an unknown task) is a ValueError naming it."""
    given = dict(below) if isinstance(below, Mapping) else dict.fromkeys(TASKS, below)
    unknown = sorted(set(given) - set(TASKS))
    if unknown:
        raise ValueError(f"uncertain threshold for unknown {', '.join(map(repr, unknown))}; valid: {', '.join(TASKS)}")
    thresholds = dict.fromkeys(TASKS, 0.0)
    for task, value in given.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
            raise ValueError(
                f"uncertain threshold {value!r} for {task}: give a confidence from 0 to 1 (0: never uncertain)"
            )
        thresholds[task] = float(value)
    return thresholds


def snr_half_bin_db(snr_bins_db: Sequence[float]) -> float:
    """Half the spacing of the SNR bins (their median step; 2.5 dB for a single bin): the margin
    within which a Gaussian SNR estimate counts as right (`snr_confidence`)."""
    return 0.5 * float(np.median(np.diff(snr_bins_db))) if len(snr_bins_db) > 1 else 2.5


def snr_confidence(sigma_db: float, half_bin_db: float) -> float:
    """The confidence of an SNR estimated as a Gaussian of standard deviation `sigma_db`: the
    probability that the SNR lies within half an SNR bin (`half_bin_db`) of the estimate, so that
    it means what a joint head's bin probability means."""
    return math.erf(half_bin_db / (sigma_db * math.sqrt(2.0)))


def doppler_hz_of(log_doppler: float) -> float:
    """The maximum Doppler in Hz (to 0.1 Hz, never negative) that a Doppler head's estimate of
    log10(1 + fD / Hz) stands for."""
    return round(max(10.0 ** float(log_doppler) - 1.0, 0.0), 1)


@dataclass(frozen=True)
class ModelOutput:
    """What the model reads in one window: the router's class and, when an expert took the
    window, that expert's task fields and embedding (None for `none` and `other`)."""

    protocol: str
    protocol_confidence: float
    modulation: str | None = None
    modulation_confidence: float | None = None
    snr_db: float | None = None
    snr_confidence: float | None = None
    mobility: str | None = None
    mobility_confidence: float | None = None
    mobility_status: str | None = None
    """None when mobility is read; else why not (MOBILITY_STATUSES)."""
    doppler_hz: float | None = None
    """The maximum Doppler the model estimates, for models with a Doppler head."""
    expert: str | None = None
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)
    probabilities: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    """The class probabilities of each classification head by the task it reads (TASKS: protocol
    over the router's classes, modulation, mobility, and snr_db over the SNR bins when a joint SNR
    x mobility head gives it), in the order of the runtime's `head_classes`. They are what a
    tracker averages; the readout carries only the chosen class and its probability."""
    snr_sigma_db: float | None = None
    """The standard deviation of the SNR estimate of a Gaussian SNR head (None for a joint head)."""
    log_doppler: tuple[float, float] | None = None
    """The Doppler head's Gaussian over log10(1 + fD / Hz), (mean, standard deviation): what a
    tracker weighs windows' Doppler estimates by (None without a Doppler head)."""

    def __post_init__(self) -> None:
        if self.mobility_status is not None and self.mobility_status not in MOBILITY_STATUSES:
            raise ValueError(f"unknown mobility status {self.mobility_status!r}; valid: {', '.join(MOBILITY_STATUSES)}")


@dataclass(frozen=True)
class Tracked:
    """The values read over the recent windows of one emission (lwmspectro.tracking.Tracker) and
    how many windows they rest on; a task the tracked windows do not read is None."""

    windows: int
    protocol: str
    protocol_confidence: float
    modulation: str | None = None
    modulation_confidence: float | None = None
    snr_db: float | None = None
    snr_confidence: float | None = None
    mobility: str | None = None
    mobility_confidence: float | None = None
    doppler_hz: float | None = None

    def readout_fields(self) -> dict[str, Any]:
        """Its fields as a readout names them (TRACKED_FIELDS)."""
        return {TRACKED_PREFIX + f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class InvalidWindow:
    """A window that cannot be judged, and why (one of INVALID_REASONS)."""

    reason: str

    def __post_init__(self) -> None:
        if self.reason not in INVALID_REASONS:
            raise ValueError(f"unknown invalid reason {self.reason!r}; valid: {', '.join(INVALID_REASONS)}")


def build_readout(
    outcome: ModelOutput | InvalidWindow,
    *,
    window_start: int,
    rx_time: float | None = None,
    latency_ms: float = 0.0,
    counters: Mapping[str, int] | None = None,
    tracked: Tracked | None = None,
    uncertain_below: Thresholds = 0.0,
) -> dict:
    """The readout of one window: the model's outcome stamped with where the window starts,
    when it was received, how long it took and the caller's counters (COUNTERS; others ignored),
    with the values `tracked` over the emission's windows up to this one, and `uncertain` listing
    the values whose confidence is below `uncertain_below` (see `uncertain_thresholds`)."""
    stamps: dict[str, Any] = {
        "window_start": int(window_start),
        "rx_time": rx_time,
        "latency_ms": float(latency_ms),
        **{name: int((counters or {}).get(name, 0)) for name in COUNTERS},
    }
    if isinstance(outcome, InvalidWindow):
        return invalid_readout(outcome.reason, **stamps)
    task_fields = {f.name: getattr(outcome, f.name) for f in fields(outcome) if f.name in FIELDS}
    tracked_fields = tracked.readout_fields() if tracked is not None else {}
    return make_readout(**task_fields, **tracked_fields, **stamps, uncertain_below=uncertain_below)


def make_readout(
    *,
    protocol: str,
    protocol_confidence: float,
    modulation: str | None = None,
    modulation_confidence: float | None = None,
    snr_db: float | None = None,
    snr_confidence: float | None = None,
    mobility: str | None = None,
    mobility_confidence: float | None = None,
    mobility_status: str | None = None,
    doppler_hz: float | None = None,
    tracked_protocol: str | None = None,
    tracked_protocol_confidence: float | None = None,
    tracked_modulation: str | None = None,
    tracked_modulation_confidence: float | None = None,
    tracked_snr_db: float | None = None,
    tracked_snr_confidence: float | None = None,
    tracked_mobility: str | None = None,
    tracked_mobility_confidence: float | None = None,
    tracked_doppler_hz: float | None = None,
    tracked_windows: int | None = None,
    expert: str | None = None,
    window_start: int = 0,
    rx_time: float | None = None,
    latency_ms: float = 0.0,
    windows_seen: int = 0,
    windows_classified: int = 0,
    windows_dropped: int = 0,
    samples_dropped: int = 0,
    uncertain_below: Thresholds = 0.0,
) -> dict:
    """A valid readout; task fields are None when the protocol is `none` or `other`, tracked
    fields when the readout is not tracked. `uncertain` lists the value fields (the window's and
    the tracked ones) whose confidence is below `uncertain_below` (see `uncertain_thresholds`)."""
    readout = dict(locals())
    thresholds = uncertain_thresholds(readout.pop("uncertain_below"))
    readout.update(valid=True, invalid_reason=None)
    readout["uncertain"] = [
        prefix + task
        for prefix in ("", TRACKED_PREFIX)
        for task in TASKS
        if readout[prefix + task] is not None
        and readout[prefix + CONFIDENCE_OF[task]] is not None
        and readout[prefix + CONFIDENCE_OF[task]] < thresholds[task]
    ]
    return {key: readout[key] for key in FIELDS}


def invalid_readout(
    reason: str,
    *,
    window_start: int = 0,
    rx_time: float | None = None,
    latency_ms: float = 0.0,
    windows_seen: int = 0,
    windows_classified: int = 0,
    windows_dropped: int = 0,
    samples_dropped: int = 0,
) -> dict:
    """A readout that says the input could not be judged, and why; it carries no guess."""
    stamps = {key: value for key, value in locals().items() if key != "reason"}
    if reason not in INVALID_REASONS:
        raise ValueError(f"unknown invalid reason {reason!r}; valid: {', '.join(INVALID_REASONS)}")
    return {**dict.fromkeys(FIELDS), **stamps, "valid": False, "invalid_reason": reason, "uncertain": []}


def to_json(readout: dict) -> str:
    """One JSON line; non-finite floats become null so every consumer can parse it."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in readout.items()}
    return json.dumps(clean, separators=(",", ":"))


def format_line(readout: dict) -> str:
    """A short human-readable line for consoles and logs: the window's values, a `?` after each
    uncertain one, and in brackets the tracked values with the number of windows they rest on."""
    if not readout["valid"]:
        return f"@{readout['window_start']:>12d}  INVALID ({readout['invalid_reason']})"
    parts = [f"@{readout['window_start']:>12d}", *_values_text(readout, "")]
    parts.append(f"{readout['latency_ms']:.1f} ms")
    if readout.get("tracked_windows"):
        tracked = "  ".join(_values_text(readout, TRACKED_PREFIX))
        parts.append(f"[{readout['tracked_windows']} windows: {tracked}]")
    return "  ".join(parts)


def _values_text(readout: dict, prefix: str) -> list[str]:
    """The protocol and, when the window (or the track, `prefix`) reads more, modulation, SNR and
    mobility, each with its confidence."""
    marked = set(readout.get("uncertain") or ())

    def value(task: str) -> str:
        shown = readout[prefix + task]
        return "-" if shown is None else f"{shown}{'?' if prefix + task in marked else ''}"

    def confidence(task: str) -> str:
        shown = readout[prefix + CONFIDENCE_OF[task]]
        return "-" if shown is None else f"{shown:.2f}"

    parts = [f"{value('protocol'):<5s} {confidence('protocol')}"]
    if all(readout[prefix + task] is None for task in TASKS[1:]):
        return parts
    snr = readout[prefix + "snr_db"]
    snr_text = "-" if snr is None else f"{snr:>3.0f} dB{'?' if prefix + 'snr_db' in marked else ''}"
    return parts + [
        f"{value('modulation'):<6s} {confidence('modulation')}",
        f"SNR {snr_text} {confidence('snr_db')}",
        mobility_text(readout, prefix),
    ]


def mobility_text(readout: dict, prefix: str = "") -> str:
    """The mobility part of a readout line: the class and its confidence (`?` when uncertain, and
    the Doppler estimate when there is one), or why there is none; `prefix` TRACKED_PREFIX for
    the tracked mobility."""
    mobility = readout.get(prefix + "mobility")
    if mobility is None:
        status = readout.get(prefix + "mobility_status")
        return "mobility: " + (status.replace("_", " ") if status else "n/a")
    mark = "?" if prefix + "mobility" in (readout.get("uncertain") or ()) else ""
    text = f"{mobility + mark:<10s} {readout[prefix + 'mobility_confidence']:.2f}"
    doppler = readout.get(prefix + "doppler_hz")
    return text if doppler is None else f"{text} (fD {doppler:.0f} Hz)"


JUDGED_TASKS = (*TASKS, *(TRACKED_PREFIX + task for task in TASKS))
"""What `judge` decides: the window's values, and the tracked ones when the readout has them."""


def judge(readout: dict, truth: Mapping[str, Any], snr_bins_db: Sequence[float] = labels.SNR_GRID_DB) -> dict:
    """{task: True/False} for the tasks the truth decides, for the window's values and the
    tracked ones alike: the protocol always; modulation, SNR (the readout and the truth each as
    the nearest of the bundle's SNR bins, `snr_bins_db`, so that an SNR read as a number in dB is
    judged by its bin) and mobility when the truth is WiFi, LTE or NR, states that value (a
    recording labelled with its protocol alone is judged on the protocol) and the readout has
    them (mobility only when the readout has one: a capture too short for it says so rather than
    guess)."""
    verdict = {}
    for prefix in ("", TRACKED_PREFIX):
        if readout.get(prefix + "protocol") is None:
            continue
        verdict[prefix + "protocol"] = readout[prefix + "protocol"] == truth["protocol"]
        if truth["protocol"] not in labels.PROTOCOLS or readout[prefix + "modulation"] is None:
            continue
        if truth.get("modulation") is not None:
            verdict[prefix + "modulation"] = readout[prefix + "modulation"] == truth["modulation"]
        if readout[prefix + "snr_db"] is not None and truth.get("snr_db") is not None:
            verdict[prefix + "snr_db"] = labels.nearest_snr_bin(
                readout[prefix + "snr_db"], snr_bins_db
            ) == labels.nearest_snr_bin(truth["snr_db"], snr_bins_db)
        if readout[prefix + "mobility"] is not None and truth.get("mobility") is not None:
            verdict[prefix + "mobility"] = readout[prefix + "mobility"] == truth["mobility"]
    return verdict


def task_name(task: str) -> str:
    """How a line or a summary names a task: 'snr', 'tracked modulation'."""
    return task.removesuffix("_db").replace("_", " ")


def truth_text(truth: Mapping[str, Any]) -> str:
    """The truth's labels in one short phrase, e.g. 'lte 64QAM 10 dB static' (those it states)."""
    parts = [str(truth["protocol"])]
    if truth["protocol"] in labels.PROTOCOLS:
        if truth.get("modulation") is not None:
            parts.append(str(truth["modulation"]))
        if truth.get("snr_db") is not None:
            parts.append(f"{truth['snr_db']:.0f} dB")
        if truth.get("mobility") is not None:
            parts.append(str(truth["mobility"]))
    return " ".join(parts)


class Tally:
    """Running agreement of readouts with their truth, per task (`judge`): the scoreboard's, the
    readout widget's and `lwmspectro score`'s."""

    def __init__(self, snr_bins_db: Sequence[float] = labels.SNR_GRID_DB) -> None:
        self.snr_bins_db = tuple(snr_bins_db)
        self.correct = dict.fromkeys(JUDGED_TASKS, 0)
        self.judged = dict.fromkeys(JUDGED_TASKS, 0)
        self.invalid = 0
        self.unlabelled = 0
        self.readouts = 0

    def record(self, readout: dict, truth: Mapping[str, Any] | None) -> dict:
        """Count one readout; returns its verdict ({task: right}, empty when nothing is judged)."""
        self.readouts += 1
        if not readout["valid"]:
            self.invalid += 1
            return {}
        if truth is None:
            self.unlabelled += 1
            return {}
        verdict = judge(readout, truth, self.snr_bins_db)
        for task, right in verdict.items():
            self.judged[task] += 1
            self.correct[task] += int(right)
        return verdict

    def accuracy(self) -> dict:
        """{task: fraction correct or None when nothing was judged} (tracked tasks None without tracking)."""
        return {task: (self.correct[task] / self.judged[task] if self.judged[task] else None) for task in JUDGED_TASKS}

    def summary(self) -> str:
        parts = []
        for task in JUDGED_TASKS:
            if self.judged[task]:
                parts.append(
                    f"{task_name(task)} {100 * self.correct[task] / self.judged[task]:.0f} % "
                    f"({self.correct[task]}/{self.judged[task]})"
                )
        parts.append(f"invalid {self.invalid}")
        if self.unlabelled:
            parts.append(f"without truth {self.unlabelled}")
        return "accuracy: " + ", ".join(parts)
