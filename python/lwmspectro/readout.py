"""The readout: one dict, the same on the PMT port, the CLI and ZMQ (DESIGN.md schema).

The model's answer for a window (`ModelOutput`, or `InvalidWindow` for a window it cannot
judge) carries no stamp; the caller that knows where the window came from and what it has
counted builds the readout once, with `build_readout`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

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
    "expert",
    "window_start",
    "rx_time",
    "latency_ms",
    "windows_seen",
    "windows_classified",
    "windows_dropped",
    "samples_dropped",
)

INVALID_REASONS = ("nan_or_inf", "all_zero", "dc_only", "clipped", "too_short")

MOBILITY_STATUSES = ("needs_longer_capture",)
"""Why a window judged otherwise has no mobility: its capture does not yet reach back as far as
the view of the fading's dynamics reads (128 ms); protocol, modulation and SNR are still read."""

COUNTERS = ("windows_seen", "windows_classified", "windows_dropped", "samples_dropped")
"""The counters a readout carries; samples_dropped counts the samples a source lost before the
receiver saw them (e.g. the LWM ZMQ Source's queue full), 0 when the source loses none."""


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

    def __post_init__(self) -> None:
        if self.mobility_status is not None and self.mobility_status not in MOBILITY_STATUSES:
            raise ValueError(f"unknown mobility status {self.mobility_status!r}; valid: {', '.join(MOBILITY_STATUSES)}")


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
) -> dict:
    """The readout of one window: the model's outcome stamped with where the window starts,
    when it was received, how long it took and the caller's counters (COUNTERS; others ignored)."""
    stamps: dict[str, Any] = {
        "window_start": int(window_start),
        "rx_time": rx_time,
        "latency_ms": float(latency_ms),
        **{name: int((counters or {}).get(name, 0)) for name in COUNTERS},
    }
    if isinstance(outcome, InvalidWindow):
        return invalid_readout(outcome.reason, **stamps)
    task_fields = {f.name: getattr(outcome, f.name) for f in fields(outcome) if f.name != "embedding"}
    return make_readout(**task_fields, **stamps)


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
    expert: str | None = None,
    window_start: int = 0,
    rx_time: float | None = None,
    latency_ms: float = 0.0,
    windows_seen: int = 0,
    windows_classified: int = 0,
    windows_dropped: int = 0,
    samples_dropped: int = 0,
) -> dict:
    """A valid readout; task fields are None when the protocol is `none` or `other`."""
    readout = dict(locals())
    readout.update(valid=True, invalid_reason=None)
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
    return {**dict.fromkeys(FIELDS), **stamps, "valid": False, "invalid_reason": reason}


def to_json(readout: dict) -> str:
    """One JSON line; non-finite floats become null so every consumer can parse it."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in readout.items()}
    return json.dumps(clean, separators=(",", ":"))


def format_line(readout: dict) -> str:
    """A short human-readable line for consoles and logs."""
    if not readout["valid"]:
        return f"@{readout['window_start']:>12d}  INVALID ({readout['invalid_reason']})"
    parts = [f"@{readout['window_start']:>12d}", f"{readout['protocol']:<5s} {readout['protocol_confidence']:.2f}"]
    if readout["modulation"] is not None:
        parts += [
            f"{readout['modulation']:<6s} {readout['modulation_confidence']:.2f}",
            f"SNR {readout['snr_db']:>3.0f} dB {readout['snr_confidence']:.2f}",
            mobility_text(readout),
        ]
    parts.append(f"{readout['latency_ms']:.1f} ms")
    return "  ".join(parts)


def mobility_text(readout: dict) -> str:
    """The mobility part of a readout line: the class and its confidence (and the Doppler
    estimate when there is one), or why there is none."""
    if readout.get("mobility") is None:
        status = readout.get("mobility_status")
        return "mobility: " + (status.replace("_", " ") if status else "n/a")
    text = f"{readout['mobility']:<10s} {readout['mobility_confidence']:.2f}"
    doppler = readout.get("doppler_hz")
    return text if doppler is None else f"{text} (fD {doppler:.0f} Hz)"
