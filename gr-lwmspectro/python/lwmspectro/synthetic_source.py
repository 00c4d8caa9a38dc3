"""LWM Synthetic Source: labelled WiFi / LTE / NR (and noise / foreign) observations, streamed
back to back from lwmspectro.synth, with the ground truth of each as a stream tag."""

from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

from .common import TAG_TRUTH, ConfigError, to_pmt

LABEL = "LWM Synthetic Source"


def _choice(value):
    """GRC enums give '' for "draw / cycle"; the generator takes None."""
    return None if value in ("", None) else value


class synthetic_source(gr.sync_block):
    """Complex samples at the generator's analysis rate (`samp_rate`, 30.72 MS/s), one labelled
    observation after another. Each observation's first sample carries an `lwm_truth` tag:
    a PMT dict of its labels (protocol, modulation, snr_db, mobility, speed_kmh, ...).

    protocol, modulation, mobility: fixed values, or '' to draw one per observation (the
    protocol cycles through WiFi, LTE and NR when `cycle`).
    snr_db: a fixed SNR in dB, or None to draw one.
    seed: fixes the whole sequence.
    """

    def __init__(self, protocol="", modulation="", snr_db=None, mobility="", cycle=True, seed=0):
        from lwmspectro.synth import SyntheticStream

        try:
            self.stream = SyntheticStream(
                protocol=_choice(protocol),
                modulation=_choice(modulation),
                snr_db=snr_db,
                mobility=_choice(mobility),
                cycle=bool(cycle),
                seed=int(seed),
            )
        except ValueError as err:
            raise ConfigError(f"{LABEL}: {err}") from err
        self.samp_rate = float(self.stream.params.sample_rate_hz)
        self.observation_samples = self.stream.params.window_samples
        self._samples = np.zeros(0, np.complex64)
        self._position = 0
        self.observations = 0
        self._finishing = False
        gr.sync_block.__init__(self, name="lwm_synthetic_source", in_sig=None, out_sig=[np.complex64])

    def finish(self) -> None:
        """End the stream after the observation being streamed, so that the flowgraph drains
        and stops by itself with every readout delivered."""
        self._finishing = True

    def work(self, input_items, output_items):
        out = output_items[0]
        written = 0
        while written < len(out):
            if self._position >= len(self._samples):
                if self._finishing:
                    return written or -1
                self._samples, truth = self.stream.next_observation()
                self._position = 0
                self.observations += 1
                self.add_item_tag(0, self.nitems_written(0) + written, pmt.intern(TAG_TRUTH), to_pmt(truth))
            count = min(len(out) - written, len(self._samples) - self._position)
            out[written : written + count] = self._samples[self._position : self._position + count]
            self._position += count
            written += count
        return written
