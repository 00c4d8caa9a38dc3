"""LWM SigMF Source: replays a SigMF recording as complex64 samples, with rx_time/rx_freq tags."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pmt
from gnuradio import gr
from sigmf.error import SigMFError
from sigmf.sigmffile import fromfile

from lwmspectro.sigmf_io import SUPPORTED_DATATYPES

from .common import TAG_RX_FREQ, TAG_RX_TIME, ConfigError, rx_time_pmt

LABEL = "LWM SigMF Source"
TAG_RX_RATE = "rx_rate"


def meta_path_of(path) -> Path:
    """`path` as the .sigmf-meta file of a recording (given as base, .sigmf-meta or .sigmf-data)."""
    path = Path(path)
    if path.suffix in (".sigmf-meta", ".sigmf-data"):
        path = path.with_suffix("")
    return path.with_suffix(".sigmf-meta")


def _capture_time(capture: dict):
    """(whole seconds, fraction) since the epoch of a capture's core:datetime, or None."""
    stamp = capture.get("core:datetime")
    if not stamp:
        return None
    moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
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
        meta_path = meta_path_of(path)
        if not meta_path.exists():
            raise ConfigError(
                f"{LABEL}: no SigMF recording at {str(path)!r} ({meta_path} is missing); "
                "give the path of a .sigmf-meta file with its .sigmf-data beside it"
            )
        try:
            self.meta = fromfile(str(meta_path), skip_checksum=True, autoscale=True)
        except (SigMFError, ValueError, OSError) as err:
            raise ConfigError(f"{LABEL}: {meta_path} is not a readable SigMF recording: {err}") from err
        datatype = self.meta.get_global_field("core:datatype")
        if datatype not in SUPPORTED_DATATYPES:
            raise ConfigError(
                f"{LABEL}: {meta_path} has core:datatype {datatype!r}, which is not supported; "
                f"supported: {', '.join(SUPPORTED_DATATYPES)}. Fix: convert the recording to "
                "cf32_le (for example `lwmspectro iq`-style writing with lwmspectro.sigmf_io)"
            )
        channels = self.meta.get_global_field("core:num_channels", 1)
        if channels != 1:
            raise ConfigError(
                f"{LABEL}: {meta_path} holds {channels} channels; only single-channel "
                "recordings can be replayed, split it into one recording per channel"
            )
        rate = self.meta.get_global_field("core:sample_rate")
        if not rate or rate <= 0:
            raise ConfigError(f"{LABEL}: {meta_path} has no positive core:sample_rate; add it to the global object")
        self.samp_rate = float(rate)
        self.sample_count = int(self.meta.sample_count)
        if self.sample_count == 0:
            raise ConfigError(f"{LABEL}: {meta_path} has no samples in its data file")
        self.captures = [(int(c.get("core:sample_start", 0)), c) for c in self.meta.get_captures()]
        self.center_freq = float(self.captures[0][1].get("core:frequency", 0.0)) if self.captures else 0.0
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
        out[:count] = self.meta.read_samples(self._position, count)
        for start, capture in self.captures:
            if self._position <= start < self._position + count:
                self._tag_capture(self.nitems_written(0) + start - self._position, capture)
        self._position += count
        return count

    def _tag_capture(self, offset: int, capture: dict) -> None:
        self.add_item_tag(0, offset, pmt.intern(TAG_RX_RATE), pmt.from_double(self.samp_rate))
        if "core:frequency" in capture:
            self.add_item_tag(0, offset, pmt.intern(TAG_RX_FREQ), pmt.from_double(float(capture["core:frequency"])))
        moment = _capture_time(capture)
        if moment is not None:
            self.add_item_tag(0, offset, pmt.intern(TAG_RX_TIME), rx_time_pmt(*moment))
