"""gr-lwmspectro: GNU Radio blocks that read out protocol, modulation, SNR and mobility
with the LWM-Spectro model, and embed channel estimates with the LWM channel model (thin
wrappers over the `lwmspectro` core package).

The Qt readout widget is imported on first use, so that headless flowgraphs never load Qt.
"""

from .channel_embedder import channel_embedder
from .classifier import classifier
from .console_sink import console_sink
from .receiver import receiver
from .scoreboard import scoreboard
from .sigmf_annotator import sigmf_annotator
from .sigmf_source import sigmf_source
from .spectrogram import spectrogram
from .synthetic_source import synthetic_source
from .zmq_pub_sink import zmq_pub_sink
from .zmq_source import zmq_source

__all__ = [
    "channel_embedder",
    "classifier",
    "console_sink",
    "readout_widget",
    "receiver",
    "scoreboard",
    "sigmf_annotator",
    "sigmf_source",
    "spectrogram",
    "synthetic_source",
    "zmq_pub_sink",
    "zmq_source",
]


def __getattr__(name):
    if name == "readout_widget":
        from .readout_widget import readout_widget

        # Importing the submodule bound its name here to the module; the block is what callers want.
        globals()["readout_widget"] = readout_widget
        return readout_widget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
