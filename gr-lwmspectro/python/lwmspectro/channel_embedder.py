"""LWM Channel Embedder: channel estimates in, LWM CLS embeddings out, a readout per channel.

The input is what a user's own receiver, or a multi-antenna front end with a channel estimator,
produces: one vector of M x N complex values per channel (M base-station antennas, N
subcarriers, antenna-major: the M rows of H one after the other, as numpy's reshape(M, N) reads
them), M and N as the channel model bundle was pretrained on. Each vector gives one float vector
of D values out, the CLS embedding lwmspectro.lwm_embed.ChannelEmbedder computes for it, and one
PMT dict on the `readout` message port (lwm_embed.channel_readout): the channel's item offset in
the stream (`user`), whether it was embedded, and the LoS/NLoS class and confidence when the
bundle has a LoS head.

A channel that cannot be embedded (NaN or infinite values, all zeros, or a scale a million times
off the channels the model was pretrained on: lwm_embed.channel_faults) gives a NaN embedding
and a readout that says why, never a guess; the stream goes on. Inference runs in work(), in
batches of the vectors at hand: channel estimates arrive at frame rates, and a batch of a few
hundred costs milliseconds, so the scheduler is not held up the way a stream of I/Q windows would be.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pmt
from gnuradio import gr

from lwmspectro.bundle import CARD_FILE, BundleError
from lwmspectro.lwm_embed import ChannelEmbedder, LwmBundle, channel_faults, channel_readout

from .common import READOUT_PORT, ConfigError, to_pmt

LABEL = "LWM Channel Embedder"


def load_embedder(bundle: ChannelEmbedder | LwmBundle | str | os.PathLike) -> ChannelEmbedder:
    """The embedder a block uses: `bundle` itself when loaded, else one on that folder (or its
    card.json, which a GRC file dialog picks); a bundle that cannot be used is a ConfigError."""
    if isinstance(bundle, ChannelEmbedder):
        return bundle
    if isinstance(bundle, (str, os.PathLike)):
        if not str(bundle):
            raise ConfigError(
                f"{LABEL}: no channel model bundle given; set the bundle parameter to the folder "
                "`lwmspectro lwm export` wrote (card.json beside lwm_encoder.onnx)"
            )
        path = Path(bundle)
        bundle = path.parent if path.name == CARD_FILE else path
    try:
        return ChannelEmbedder(bundle, threads=1)
    except BundleError as err:
        raise ConfigError(
            f"{LABEL}: bundle {str(getattr(bundle, 'path', bundle))!r} cannot be used: {err}. Fix: set the "
            "bundle parameter to a channel model bundle folder (`lwmspectro lwm export` writes one)"
        ) from err


class channel_embedder(gr.sync_block):
    """Complex vectors of M*N (one channel estimate each) in; float vectors of D (its CLS
    embedding) out, and a readout per channel on `readout`.

    bundle: channel model bundle folder (or its card.json), or a loaded LwmBundle or ChannelEmbedder.
    vlen: the input vector length the flowgraph feeds (0 = M*N of the bundle).
    embedding_dim: the output vector length the flowgraph expects (0 = D of the bundle).
    """

    def __init__(
        self,
        bundle: ChannelEmbedder | LwmBundle | str | os.PathLike = "",
        vlen: int = 0,
        embedding_dim: int = 0,
    ):
        self.embedder = load_embedder(bundle)
        card = self.embedder.bundle
        self.shape = (card.antennas, card.subcarriers)
        self.vlen = card.antennas * card.subcarriers
        self.embedding_dim = card.embedding_dim
        if vlen and int(vlen) != self.vlen:
            raise ConfigError(
                f"{LABEL}: vector length {vlen} does not match the bundle's channels ({card.antennas} antennas x "
                f"{card.subcarriers} subcarriers = {self.vlen}); feed it {self.vlen}-sample channel vectors and "
                f"set the vector length to {self.vlen} (or 0)"
            )
        if embedding_dim and int(embedding_dim) != self.embedding_dim:
            raise ConfigError(
                f"{LABEL}: embedding size {embedding_dim} does not match the bundle's {self.embedding_dim}; "
                f"set it to {self.embedding_dim} (or 0)"
            )
        gr.sync_block.__init__(
            self,
            name="lwm_channel_embedder",
            in_sig=[(np.complex64, self.vlen)],
            out_sig=[(np.float32, self.embedding_dim)],
        )
        self.message_port_register_out(pmt.intern(READOUT_PORT))
        self.channels_seen = 0
        self.channels_invalid = 0

    def work(self, input_items, output_items):
        channels = np.asarray(input_items[0]).reshape(-1, *self.shape)
        out = output_items[0]
        faults = channel_faults(channels, self.embedder.channel_scale)
        valid = np.array([fault is None for fault in faults])
        out[:] = np.nan
        probabilities = None
        if valid.any():
            cls = self.embedder.embed(channels[valid]).cls
            out[valid] = cls
            if self.embedder.los_session is not None:
                probabilities = iter(self.embedder.los_probabilities(cls))
        first = self.nitems_read(0)
        for offset, fault in enumerate(faults):
            self.channels_seen += 1
            self.channels_invalid += fault is not None
            readout = channel_readout(
                first + offset,
                channels_seen=self.channels_seen,
                channels_invalid=self.channels_invalid,
                invalid_reason=fault,
                los_probabilities=next(probabilities) if probabilities is not None and fault is None else None,
            )
            self.message_port_pub(pmt.intern(READOUT_PORT), to_pmt(readout))
        return len(channels)
