"""LWM SigMF Annotator: writes readouts as annotations into a recording's .sigmf-meta.

The annotations follow the SigMF core (sample range, frequency edges of the measured occupied
band, label, comment, generator) and carry the model's predictions in the `lwm` extension
(docs/sigmf-lwm-extension.md) under keys of their own, so that a recording's ground truth
(`lwm:protocol`, ... in `global`) and what the model read in it never share a name.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import numpy as np
from scipy import signal as sps

from lwmspectro import views as view_registry
from lwmspectro.fileio import atomic_write
from lwmspectro.readout import TRACKED_FIELDS, mobility_text
from lwmspectro.sigmf_io import RecordingError, SigMFReader, load_metadata

from .common import BlockBundle, ConfigError, ReadoutSink, finite_number, load_bundle
from .sigmf_source import meta_path_of

LABEL = "LWM SigMF Annotator"
GENERATOR = "gr-lwmspectro"
NAMESPACE = "lwm"
EXTENSION = {"name": NAMESPACE, "version": "1.0.0", "optional": True}

PREDICTION_KEYS = {
    "protocol": "predicted_protocol",
    "protocol_confidence": "protocol_confidence",
    "modulation": "predicted_modulation",
    "modulation_confidence": "modulation_confidence",
    "snr_db": "predicted_snr_db",
    "snr_confidence": "snr_confidence",
    "mobility": "predicted_mobility",
    "mobility_confidence": "mobility_confidence",
    "mobility_status": "mobility_status",
    "doppler_hz": "predicted_doppler_hz",
    **{name: name for name in TRACKED_FIELDS},
    "uncertain": "uncertain",
    "expert": "expert",
    "valid": "valid",
    "invalid_reason": "invalid_reason",
}
"""Readout field -> its key in the `lwm` namespace of an annotation. Runtime counters (latency,
windows seen / classified / dropped) and the receive time are not written: they describe a run,
not the recording. The tracked values (when the receiver tracks) are the model's reading of the
emission up to the window; `uncertain` is written only when it lists something."""

PSD_BINS = 256
"""Frequency resolution of the occupied-band estimate: the captured band in this many bins."""
FLOOR_PERCENTILE = 25
"""The noise floor is this percentile of the window's spectrum (signals up to 3/4 of the band wide)."""
OCCUPIED_ABOVE_FLOOR = 4.0
"""A bin is occupied when its power is at least this many times the floor (6 dB)."""
OCCUPIED_FRACTION = 0.99
"""The occupied band holds this fraction of the power above the floor in the occupied bins."""

log = logging.getLogger(__name__)


def occupied_band(iq: np.ndarray, sample_rate: float) -> tuple[float, float] | None:
    """(lower, upper) edge in Hz, relative to the centre frequency, of the band holding
    OCCUPIED_FRACTION of the power that stands OCCUPIED_ABOVE_FLOOR above the noise floor of
    `iq`; None when nothing does (noise only, or too few samples)."""
    iq = np.asarray(iq, np.complex64)
    if len(iq) < PSD_BINS or not np.isfinite(iq).all():
        return None
    freqs, psd = sps.welch(iq, fs=sample_rate, nperseg=PSD_BINS, return_onesided=False, detrend=False)
    freqs, psd = np.fft.fftshift(freqs), np.fft.fftshift(psd)
    floor = np.percentile(psd, FLOOR_PERCENTILE)
    if floor <= 0:
        return None
    excess = np.where(psd >= OCCUPIED_ABOVE_FLOOR * floor, psd - floor, 0.0)
    total = excess.sum()
    if total <= 0:
        return None
    cumulative = np.cumsum(excess) / total
    tail = (1.0 - OCCUPIED_FRACTION) / 2
    low = int(np.searchsorted(cumulative, tail, side="right"))
    high = int(np.searchsorted(cumulative, 1.0 - tail, side="left"))
    bin_width = sample_rate / PSD_BINS
    return float(freqs[low] - bin_width / 2), float(freqs[min(high, PSD_BINS - 1)] + bin_width / 2)


def describe(readout: dict) -> str:
    """The annotation's core:comment: what the model read in the window, without runtime figures;
    `?` after a value listed uncertain."""
    if not readout["valid"]:
        return f"LWM-Spectro: window not judged ({readout['invalid_reason']})"
    marked = set(readout.get("uncertain") or ())

    def mark(task: str) -> str:
        return "?" if task in marked else ""

    parts = [f"{readout['protocol']}{mark('protocol')} {readout['protocol_confidence']:.2f}"]
    if readout["modulation"] is not None:
        parts += [
            f"{readout['modulation']}{mark('modulation')} {readout['modulation_confidence']:.2f}",
            f"SNR {readout['snr_db']:.0f} dB{mark('snr_db')} {readout['snr_confidence']:.2f}",
            mobility_text(readout),
        ]
    return "LWM-Spectro: " + ", ".join(parts)


def _json_value(value: Any) -> Any:
    """A readout value as a plain JSON value (None for non-finite floats)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _sample_start(annotation: Any) -> int:
    start = annotation.get("core:sample_start", 0) if isinstance(annotation, dict) else 0
    return start if isinstance(start, int) else 0


class sigmf_annotator(ReadoutSink):
    """Adds one SigMF annotation per readout to `path`'s .sigmf-meta: core:sample_start is
    the readout's window_start, core:sample_count the window length at the recording's rate,
    core:freq_lower_edge / core:freq_upper_edge the occupied band measured in the window's samples
    (the capture's core:frequency plus the offsets; left out when nothing stands above the noise,
    or the window was not judged), core:label the predicted protocol (or "invalid"), core:comment
    a line saying what was read, and the predictions under `lwm:` keys (PREDICTION_KEYS, plus
    lwm:model, the bundle's name; a field without a value is left out).

    Everything else in the file is kept. Annotations an earlier run of this block wrote
    (core:generator "gr-lwmspectro") are replaced, so replaying a recording twice does not
    double them. The file is rewritten atomically (temporary file, then rename) at most every
    `flush_seconds` while readouts arrive, and when the flowgraph stops, so a crash never leaves
    it half written and a long recording is not rewritten for every window.

    path: the recording (base name, .sigmf-meta or .sigmf-data).
    bundle: the model bundle the receiver uses ('' = the shipped model, or the receiver's
    loaded lwmspectro Bundle), for the window length.
    flush_seconds: least time between two rewrites of the file (0 = after every readout).
    """

    def __init__(self, path, bundle: BlockBundle = "", flush_seconds: float = 5.0):
        self.path = meta_path_of(path, LABEL, "give the path of the recording the receiver reads")
        if not self.path.exists():
            raise ConfigError(
                f"{LABEL}: no SigMF metadata at {self.path}; give the path of the recording "
                "whose samples the receiver reads"
            )
        # The checks `lwmspectro classify` makes, with the message naming the field and the fix.
        try:
            self.meta = load_metadata(self.path)
        except RecordingError as err:
            raise ConfigError(f"{LABEL}: {err}") from None
        if not os.access(self.path.parent, os.W_OK):
            raise ConfigError(
                f"{LABEL}: the folder of {self.path} is not writable, so its annotations could not be "
                "written; copy the recording into a folder this user may write to"
            )
        self.flush_seconds = finite_number(flush_seconds, LABEL, "flush interval", "give 0 or more seconds")
        rate = self.meta["global"]["core:sample_rate"]
        loaded = load_bundle(bundle, LABEL)
        self.model = loaded.name
        self.sample_rate = float(rate)
        self.sample_count = view_registry.observation_span(loaded.views, self.sample_rate)
        self.captures = sorted(
            (int(c.get("core:sample_start", 0)), float(c.get("core:frequency", 0.0)))
            for c in self.meta.get("captures", [])
            if isinstance(c, dict)
        ) or [(0, 0.0)]
        self.samples = self._open_samples()
        self._written_at = time.monotonic()
        self.kept = [
            a
            for a in self.meta.get("annotations", [])
            if not isinstance(a, dict) or a.get("core:generator") != GENERATOR
        ]
        self.added: list[dict] = []
        ReadoutSink.__init__(self, "lwm_sigmf_annotator")

    def _open_samples(self) -> SigMFReader | None:
        """The recording's samples, for the occupied band; None (and a warning) when they cannot be read."""
        try:
            return SigMFReader(self.path)
        except RecordingError as err:
            log.warning("%s: cannot read the samples (%s); annotations get no frequency edges", LABEL, err)
            return None

    def handle_readout(self, readout: dict, message) -> None:
        self.added.append(self.annotation(readout))
        if time.monotonic() - self._written_at >= self.flush_seconds:
            self._write_or_log()

    def _write_or_log(self) -> None:
        """write(), an OSError (the disk full, the folder made read-only since) logged, never
        raised into the scheduler: the annotations stay in memory for the next attempt."""
        try:
            self.write()
        except OSError as err:
            log.error("%s: cannot write the annotations into %s: %s", LABEL, self.path, err)

    def centre_frequency(self, sample: int) -> float:
        """core:frequency of the capture holding `sample`."""
        frequency = self.captures[0][1]
        for start, capture_frequency in self.captures:
            if start > sample:
                break
            frequency = capture_frequency
        return frequency

    def frequency_edges(self, start: int) -> tuple[float, float] | None:
        """The absolute edges of the occupied band in the window starting at `start`, or None."""
        if self.samples is None:
            return None
        count = min(self.sample_count, len(self.samples) - start)
        if count <= 0:
            return None
        try:
            band = occupied_band(self.samples.read(start, count), self.sample_rate)
        except (ValueError, OSError) as err:
            log.warning("%s: cannot read samples %d..%d of %s: %s", LABEL, start, start + count, self.path, err)
            return None
        if band is None:
            return None
        centre = self.centre_frequency(start)
        return centre + band[0], centre + band[1]

    def annotation(self, readout: dict) -> dict:
        start = int(readout["window_start"])
        annotation: dict[str, Any] = {"core:sample_start": start, "core:sample_count": self.sample_count}
        edges = self.frequency_edges(start) if readout["valid"] else None
        if edges is not None:
            annotation["core:freq_lower_edge"], annotation["core:freq_upper_edge"] = edges
        annotation.update(
            {
                "core:generator": GENERATOR,
                "core:label": readout["protocol"] if readout["valid"] else "invalid",
                "core:comment": describe(readout),
                f"{NAMESPACE}:model": self.model,
            }
        )
        for field, key in PREDICTION_KEYS.items():
            value = _json_value(readout.get(field))
            if value is not None and value != []:
                annotation[f"{NAMESPACE}:{key}"] = value
        return annotation

    def write(self) -> None:
        """Rewrite the metadata file atomically with the kept and the added annotations."""
        meta = dict(self.meta)
        extensions = list(meta["global"].get("core:extensions", []))
        if not any(isinstance(e, dict) and e.get("name") == NAMESPACE for e in extensions):
            extensions.append(EXTENSION)
            meta["global"] = {**meta["global"], "core:extensions": extensions}
        meta["annotations"] = sorted(self.kept + self.added, key=_sample_start)
        # Written by hand rather than with sigmf's SigMFFile.tofile: that rewrites the file in
        # place (a crash leaves it truncated) and drops fields the library does not model.
        atomic_write(self.path, json.dumps(meta, indent=4))
        self._written_at = time.monotonic()

    def stop(self):
        self._write_or_log()
        return True
