"""LWM Console Sink: readouts as text lines or JSON lines on stdout, or in the GNU Radio log."""

from __future__ import annotations

import sys

from lwmspectro.readout import format_line, to_json

from .common import ConfigError, ReadoutSink

LABEL = "LWM Console Sink"
FORMATS = ("text", "json")
DESTINATIONS = ("stdout", "log")


class console_sink(ReadoutSink):
    """Prints each readout arriving on `readout`.

    fmt: "text" (readout.format_line) or "json" (one JSON object per line).
    destination: "stdout", or "log" for the block's GNU Radio logger (info level).
    """

    def __init__(self, fmt="text", destination="stdout"):
        if fmt not in FORMATS:
            raise ConfigError(f"{LABEL}: format {fmt!r} is unknown; valid: {', '.join(FORMATS)}")
        if destination not in DESTINATIONS:
            raise ConfigError(f"{LABEL}: destination {destination!r} is unknown; valid: {', '.join(DESTINATIONS)}")
        ReadoutSink.__init__(self, "lwm_console_sink")
        self.format = format_line if fmt == "text" else to_json
        self.destination = destination
        self.lines = 0
        self.stdout_closed = False

    def handle_readout(self, readout: dict, message) -> None:
        line = self.format(readout)
        if self.destination == "stdout":
            if self.stdout_closed:
                return
            try:
                print(line, file=sys.stdout, flush=True)
            except BrokenPipeError:  # the reader went away (`| head`): stop printing, say so to the caller
                self.stdout_closed = True
                return
        else:
            self.logger.info(line)
        self.lines += 1
