"""LWM Scoreboard: readouts beside the ground truth of a labelled stream, with running accuracy."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import pmt

from lwmspectro import labels
from lwmspectro.readout import JUDGED_TASKS as TASKS
from lwmspectro.readout import format_line, judge

from .common import BlockBundle, ReadoutSink, load_bundle

LABEL = "LWM Scoreboard"


def task_name(task: str) -> str:
    """How a line or a summary names a task: 'snr', 'tracked modulation'."""
    return task.removesuffix("_db").replace("_", " ")


def truth_of(message) -> dict | None:
    """The ground truth a readout message carries (its `truth` key), or None."""
    return pmt.to_python(pmt.dict_ref(message, pmt.intern("truth"), pmt.PMT_NIL))


def truth_text(truth: dict) -> str:
    """The truth's labels in one short phrase, e.g. 'lte 64QAM 10 dB static'."""
    text = truth["protocol"]
    if truth["protocol"] in labels.PROTOCOLS:
        text += f" {truth['modulation']} {truth['snr_db']:.0f} dB {truth['mobility']}"
    return text


def line(readout: dict, truth: dict | None, verdict: dict) -> str:
    """The readout's line, the truth beside it and the verdict per task."""
    text = format_line(readout)
    if truth is None:
        return f"{text}  | truth unknown"
    marks = " ".join(f"{task_name(task)} {'ok' if right else 'WRONG'}" for task, right in verdict.items())
    return f"{text}  | truth {truth_text(truth)}" + (f"  [{marks}]" if marks else "")


class Tally:
    """Running agreement of readouts with their truth, per task (the scoreboard's and the readout
    widget's)."""

    def __init__(self, snr_bins_db: Sequence[float] = labels.SNR_GRID_DB) -> None:
        self.snr_bins_db = tuple(snr_bins_db)
        self.correct = dict.fromkeys(TASKS, 0)
        self.judged = dict.fromkeys(TASKS, 0)
        self.invalid = 0
        self.unlabelled = 0
        self.readouts = 0

    def record(self, readout: dict, truth: dict | None) -> dict:
        """Count one readout; returns its verdict ({task: right}, empty when nothing is judged)."""
        self.readouts += 1
        if not readout["valid"]:
            self.invalid += 1
            return {}
        if truth is None:
            self.unlabelled += 1
            return {}
        verdict = judge(readout, truth, self.snr_bins_db)
        for task, right in verdict.items():
            self.judged[task] += 1
            self.correct[task] += int(right)
        return verdict

    def accuracy(self) -> dict:
        """{task: fraction correct or None when nothing was judged} (tracked tasks None without tracking)."""
        return {task: (self.correct[task] / self.judged[task] if self.judged[task] else None) for task in TASKS}

    def summary(self) -> str:
        parts = []
        for task in TASKS:
            if self.judged[task]:
                parts.append(
                    f"{task_name(task)} {100 * self.correct[task] / self.judged[task]:.0f} % "
                    f"({self.correct[task]}/{self.judged[task]})"
                )
        parts.append(f"invalid {self.invalid}")
        if self.unlabelled:
            parts.append(f"without truth {self.unlabelled}")
        return "accuracy: " + ", ".join(parts)


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
