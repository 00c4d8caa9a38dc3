"""LWM SigMF Source: replays a SigMF recording as complex64 samples, with rx_time/rx_freq tags."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
import pmt
from gnuradio import gr

from lwmspectro.sigmf_io import RecordingError, SigMFReader

from .common import TAG_RX_FREQ, TAG_RX_RATE, TAG_RX_TIME, ConfigError, rx_time_pmt

LABEL = "LWM SigMF Source"


def meta_path_of(path, block_label: str, hint: str) -> Path:
    """`path` as the .sigmf-meta file of a recording (given as base, .sigmf-meta or .sigmf-data),
    or a ConfigError naming the block and ending with `hint` when no path is given."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ConfigError(f"{block_label}: no recording given ({path!r}); {hint}")
    path = Path(path)
    if path.suffix in (".sigmf-meta", ".sigmf-data"):
        path = path.with_suffix("")
    return path.with_suffix(".sigmf-meta")


def _capture_time(meta_path: Path, capture: dict) -> tuple[int, float] | None:
    """(whole seconds, fraction) since the epoch of a capture's core:datetime, or None."""
    stamp = capture.get("core:datetime")
    if not stamp:
        return None
    try:
        moment = datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{LABEL}: {meta_path}: a capture's core:datetime {stamp!r} is not an ISO 8601 time "
            "(such as 2026-01-31T12:00:00.5Z); fix or remove it"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    seconds = moment.timestamp()
    return int(seconds // 1), moment.microsecond / 1e6


class sigmf_source(gr.sync_block):
    """Streams a single-channel SigMF recording (cf32_le, ci16_le, ci8, cf64_le) as complex64,
    fixed-point data scaled to [-1, 1). Tags rx_rate, rx_freq (core:frequency) and rx_time
    (core:datetime) at the start of each capture.

    path: the recording (base name, .sigmf-meta or .sigmf-data).
    repeat: start over at the end instead of ending the stream.
    """

    def __init__(self, path, repeat=False):
        meta_path = meta_path_of(path, LABEL, "give the path of a .sigmf-meta file")
        if not meta_path.exists():
            raise ConfigError(
                f"{LABEL}: no SigMF recording at {str(path)!r} ({meta_path} is missing); "
                "give the path of a .sigmf-meta file with its .sigmf-data beside it"
            )
        # The reader `lwmspectro classify` uses: every field reading the samples relies on is
        # checked there, with a message naming the field and the fix.
        try:
            self.reader = SigMFReader(meta_path)
        except RecordingError as err:
            raise ConfigError(f"{LABEL}: {err}") from None
        self.samp_rate = self.reader.sample_rate_hz
        self.sample_count = len(self.reader)
        if self.sample_count == 0:
            raise ConfigError(f"{LABEL}: {self.reader.data_path} holds no whole sample; record some samples into it")
        self.captures = [
            (int(c.get("core:sample_start", 0)), c, _capture_time(meta_path, c)) for c in self.reader.captures
        ]
        self.center_freq = self.reader.frequency_hz
        self.path = meta_path
        self.repeat = bool(repeat)
        self._position = 0
        gr.sync_block.__init__(self, name="lwm_sigmf_source", in_sig=None, out_sig=[np.complex64])

    def work(self, input_items, output_items):
        out = output_items[0]
        if self._position >= self.sample_count:
            if not self.repeat:
                return -1
            self._position = 0
        count = min(len(out), self.sample_count - self._position)
        out[:count] = self.reader.read(self._position, count)
        for start, capture, moment in self.captures:
            if self._position <= start < self._position + count:
                self._tag_capture(self.nitems_written(0) + start - self._position, capture, moment)
        self._position += count
        return count

    def _tag_capture(self, offset: int, capture: dict, moment: tuple[int, float] | None) -> None:
        self.add_item_tag(0, offset, pmt.intern(TAG_RX_RATE), pmt.from_double(self.samp_rate))
        if "core:frequency" in capture:
            self.add_item_tag(0, offset, pmt.intern(TAG_RX_FREQ), pmt.from_double(float(capture["core:frequency"])))
        if moment is not None:
            self.add_item_tag(0, offset, pmt.intern(TAG_RX_TIME), rx_time_pmt(*moment))
