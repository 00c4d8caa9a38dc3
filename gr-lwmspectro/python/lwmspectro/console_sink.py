"""LWM Console Sink: readouts as text lines or JSON lines on stdout, or in the GNU Radio log."""

from __future__ import annotations

import sys

import pmt
from gnuradio import gr

from lwmspectro.readout import format_line, to_json

from .common import READOUT_PORT, ConfigError, readout_from_pmt

LABEL = "LWM Console Sink"
FORMATS = ("text", "json")
DESTINATIONS = ("stdout", "log")


class console_sink(gr.basic_block):
    """Prints each readout arriving on `readout`.

    fmt: "text" (readout.format_line) or "json" (one JSON object per line).
    destination: "stdout", or "log" for the block's GNU Radio logger (info level).
    """

    def __init__(self, fmt="text", destination="stdout"):
        if fmt not in FORMATS:
            raise ConfigError(f"{LABEL}: format {fmt!r} is unknown; valid: {', '.join(FORMATS)}")
        if destination not in DESTINATIONS:
            raise ConfigError(f"{LABEL}: destination {destination!r} is unknown; valid: {', '.join(DESTINATIONS)}")
        gr.basic_block.__init__(self, name="lwm_console_sink", in_sig=None, out_sig=None)
        self.format = format_line if fmt == "text" else to_json
        self.destination = destination
        self.lines = 0
        self.message_port_register_in(pmt.intern(READOUT_PORT))
        self.set_msg_handler(pmt.intern(READOUT_PORT), self.handle_readout)

    def handle_readout(self, message) -> None:
        try:
            line = self.format(readout_from_pmt(message))
        except ValueError as err:
            self.logger.warn(f"ignored a message that is not a readout: {err}")
            return
        if self.destination == "stdout":
            print(line, file=sys.stdout, flush=True)
        else:
            self.logger.info(line)
        self.lines += 1
