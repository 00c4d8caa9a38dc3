"""LWM Scoreboard: readouts beside the ground truth of a labelled stream, with running accuracy."""

from __future__ import annotations

import sys

import pmt

from lwmspectro.readout import Tally, format_line, task_name, truth_text

from .common import BlockBundle, ReadoutSink, load_bundle

LABEL = "LWM Scoreboard"


def truth_of(message) -> dict | None:
    """The ground truth a readout message carries (its `truth` key), or None."""
    return pmt.to_python(pmt.dict_ref(message, pmt.intern("truth"), pmt.PMT_NIL))


def line(readout: dict, truth: dict | None, verdict: dict) -> str:
    """The readout's line, the truth beside it and the verdict per task."""
    text = format_line(readout)
    if truth is None:
        return f"{text}  | truth unknown"
    marks = " ".join(f"{task_name(task)} {'ok' if right else 'WRONG'}" for task, right in verdict.items())
    return f"{text}  | truth {truth_text(truth)}" + (f"  [{marks}]" if marks else "")


class scoreboard(ReadoutSink, Tally):
    """Prints each readout beside the ground truth of its window and keeps the running
    accuracy per task. The truth rides with the readout: the LWM Synthetic Source tags each
    observation (lwm_truth), the spectrogram carries the tag to the window, and the
    classifier publishes it under a `truth` key beside the readout fields.

    show: print one line per readout (the readout, the truth and the verdict).
    bundle: the receiver's model bundle ('' = the shipped one): the SNR is judged on its bins.
    """

    def __init__(self, show=True, bundle: BlockBundle = ""):
        ReadoutSink.__init__(self, "lwm_scoreboard")
        Tally.__init__(self, load_bundle(bundle, LABEL).labels.snr_bins_db)
        self.show = bool(show)
        self.stdout_closed = False

    def handle_readout(self, readout: dict, message) -> None:
        truth = truth_of(message)
        verdict = self.record(readout, truth)
        if self.show and not self.stdout_closed:
            try:
                print(line(readout, truth, verdict), file=sys.stdout, flush=True)
            except BrokenPipeError:  # the reader went away (`| head`): stop printing, say so to the caller
                self.stdout_closed = True
