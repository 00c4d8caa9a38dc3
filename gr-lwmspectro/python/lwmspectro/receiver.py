"""LWM Receiver: the spectrogram and the classifier in one hierarchical block."""

from __future__ import annotations

from gnuradio import gr

from lwmspectro.readout import Thresholds
from lwmspectro.runtime import Runtime
from lwmspectro.tracking import TRACK_POWER_JUMP_DB

from .classifier import classifier
from .common import DROPS_PORT, READOUT_PORT, BlockBundle, BlockViews
from .spectrogram import spectrogram


class receiver(gr.hier_block2):
    """Complex samples in; readouts on the `readout` message port (and, optionally, the
    embeddings of windows read as WiFi, LTE or NR on a vector output).

    See `spectrogram` and `classifier` for the parameters (`views` goes to both, `samp_rate`
    times the windows for tracking too). `drop_when_full` (a live source) also has the
    spectrogram keep up with the stream, skipping the oldest windows when the views fall behind;
    off (a file replay), every window is computed and read out. The spectrogram is `routed`: it
    computes the views of the router and of the expert the router picks only, the same readouts
    for less CPU. The `drops` message input takes a source's loss counters (the LWM ZMQ Source's
    `drops`). The bundle is read once; both halves, and any block built after it (e.g. the SigMF
    annotator), share `self.bundle`.
    """

    def __init__(
        self,
        bundle: Runtime | BlockBundle = "",
        samp_rate: float = 30.72e6,
        hop: int = 0,
        max_rate: float = 0.0,
        one_in_n: int = 1,
        queue_size: int = 8,
        embedding_output: bool = False,
        embedding_dim: int = 0,
        drop_when_full: bool = True,
        views: BlockViews = "",
        uncertain_below: Thresholds = 0.0,
        track_seconds: float = 0.0,
        track_power_jump_db: float = TRACK_POWER_JUMP_DB,
    ):
        self.classifier = classifier(
            bundle,
            max_rate,
            one_in_n,
            queue_size,
            embedding_output,
            embedding_dim=embedding_dim,
            drop_when_full=drop_when_full,
            views=views,
            uncertain_below=uncertain_below,
            track_seconds=track_seconds,
            samp_rate=samp_rate,
            track_power_jump_db=track_power_jump_db,
        )
        runtime = self.classifier.runtime
        self.bundle = runtime.bundle
        self.spectrogram = spectrogram(
            runtime,
            samp_rate,
            hop,
            views=self.classifier.views,
            keep_up=self.classifier.drop_when_full,
            routed=True,
        )
        out_sig = (
            gr.io_signature(1, 1, gr.sizeof_float * runtime.embedding_dim)
            if embedding_output
            else gr.io_signature(0, 0, 0)
        )
        gr.hier_block2.__init__(self, "lwm_receiver", gr.io_signature(1, 1, gr.sizeof_gr_complex), out_sig)
        self.message_port_register_hier_out(READOUT_PORT)
        self.message_port_register_hier_in(DROPS_PORT)
        self.connect(self, self.spectrogram, self.classifier)
        if embedding_output:
            self.connect(self.classifier, self)
        self.msg_connect(self.classifier, READOUT_PORT, self, READOUT_PORT)
        self.msg_connect(self, DROPS_PORT, self.classifier, DROPS_PORT)

    def set_drop_when_full(self, drop_when_full: bool) -> None:
        """Live (drop and skip windows to keep up) or replay (every window read out)."""
        self.classifier.drop_when_full = self.spectrogram.keep_up = bool(drop_when_full)

    def counters(self) -> dict[str, int]:
        return {**self.classifier.counters(), "windows_out": self.spectrogram.windows_out}
