"""LWM Readout Widget: the current readout as labels with confidence bars (a `?` after a value the
readout lists as uncertain), the tracked values beside them when the receiver tracks, the ground
truth when the stream carries one (the LWM Synthetic Source's), and a short history."""

from __future__ import annotations

import collections

from PyQt5 import QtCore, QtWidgets

from lwmspectro.readout import CONFIDENCE_OF, TRACKED_PREFIX, Tally, format_line, task_name

from .common import BlockBundle, ConfigError, ReadoutSink, load_bundle
from .scoreboard import line, truth_of

LABEL = "LWM Readout Widget"
ROWS = (("protocol", "Protocol"), ("modulation", "Modulation"), ("snr_db", "SNR"), ("mobility", "Mobility"))
MINIMUM_SIZE = (520, 340)
"""Pixels, so that labels, bars and a few history lines stay readable in a small window."""
VERDICT_STYLE = {True: "color: #1a7f37;", False: "color: #cf222e; font-weight: bold;", None: "color: gray;"}


def _value_text(readout: dict, field: str) -> str:
    """A value as the panel shows it (`field` a task, or a tracked one), `?` when uncertain."""
    value = readout.get(field)
    if value is None:
        status = readout.get("mobility_status") if field == "mobility" else None
        return status.replace("_", " ") if status else "-"
    text = f"{value:.0f} dB" if field.endswith("snr_db") else str(value)
    return text + ("?" if field in (readout.get("uncertain") or ()) else "")


def _tracked_text(readout: dict, field: str) -> str:
    """The tracked value of `field` and its confidence, e.g. '16QAM 0.91'."""
    confidence = readout.get(TRACKED_PREFIX + CONFIDENCE_OF[field])
    text = _value_text(readout, TRACKED_PREFIX + field)
    return text if confidence is None else f"{text} {confidence:.2f}"


class ReadoutView(QtWidgets.QWidget):
    """The Qt side. Readouts reach it through a queued signal, so the GNU Radio thread that
    receives them never touches a widget."""

    readout_arrived = QtCore.pyqtSignal(object, object)

    def __init__(self, title: str, history: int, snr_bins_db: tuple[float, ...], parent=None):
        super().__init__(parent)
        self.setMinimumSize(*MINIMUM_SIZE)
        layout = QtWidgets.QVBoxLayout(self)
        box = QtWidgets.QGroupBox(title)
        grid = QtWidgets.QGridLayout(box)
        grid.setColumnStretch(2, 1)
        self.values, self.bars, self.truths, self.tracked = {}, {}, {}, {}
        self.truth_heading = QtWidgets.QLabel("<b>Truth</b>")
        self.truth_heading.hide()
        self.tracked_heading = QtWidgets.QLabel("<b>Tracked</b>")
        self.tracked_heading.hide()
        grid.addWidget(QtWidgets.QLabel("<b>Readout</b>"), 0, 1)
        grid.addWidget(QtWidgets.QLabel("<b>Confidence</b>"), 0, 2)
        grid.addWidget(self.truth_heading, 0, 3)
        grid.addWidget(self.tracked_heading, 0, 4)
        for row, (field, name) in enumerate(ROWS, start=1):
            grid.addWidget(QtWidgets.QLabel(name), row, 0)
            self.values[field] = QtWidgets.QLabel("-")
            self.values[field].setMinimumWidth(90)
            grid.addWidget(self.values[field], row, 1)
            bar = QtWidgets.QProgressBar()
            bar.setRange(0, 100)
            bar.setValue(0)
            bar.setFormat("%p %")
            self.bars[field] = bar
            grid.addWidget(bar, row, 2)
            self.truths[field] = QtWidgets.QLabel("")
            self.truths[field].setMinimumWidth(110)
            self.truths[field].hide()
            grid.addWidget(self.truths[field], row, 3)
            self.tracked[field] = QtWidgets.QLabel("")
            self.tracked[field].setMinimumWidth(110)
            self.tracked[field].hide()
            grid.addWidget(self.tracked[field], row, 4)
        self.status = QtWidgets.QLabel("waiting for readouts")
        grid.addWidget(self.status, len(ROWS) + 1, 0, 1, 5)
        self.score = QtWidgets.QLabel("")
        self.score.hide()
        grid.addWidget(self.score, len(ROWS) + 2, 0, 1, 5)
        layout.addWidget(box)
        self.history = QtWidgets.QListWidget()
        self.history.setMinimumHeight(18 * min(max(history, 1), 4) + 6)
        layout.addWidget(self.history, 1)
        self.lines = collections.deque(maxlen=history)
        self.tally = Tally(snr_bins_db)
        self.readout_arrived.connect(self.show_readout)

    def show_readout(self, readout: dict, truth: dict | None = None) -> None:
        """Show a readout, and beside it the truth of its window when there is one (each task
        green when the readout agrees, red when not, grey when the truth does not decide it)."""
        verdict = self.tally.record(readout, truth) if truth is not None else {}
        for field, _ in ROWS:
            confidence = readout.get(CONFIDENCE_OF[field])
            self.values[field].setText(_value_text(readout, field) if readout["valid"] else "invalid")
            self.bars[field].setValue(0 if confidence is None else round(100 * confidence))
        if truth is not None:
            self._show_truth(readout, truth, verdict)
        windows = readout.get("tracked_windows")
        if windows:
            self.tracked_heading.setText(f"<b>Tracked ({windows} windows)</b>")
            self.tracked_heading.show()
            for field, _ in ROWS:
                self.tracked[field].setText(_tracked_text(readout, field))
                self.tracked[field].show()
        reason = "" if readout["valid"] else f"  input not judged: {readout['invalid_reason']}"
        self.status.setText(
            f"window @{readout['window_start']}  latency {readout['latency_ms']:.1f} ms  "
            f"seen {readout['windows_seen']}  classified {readout['windows_classified']}  "
            f"dropped {readout['windows_dropped']}{reason}"
        )
        text = line(readout, truth, verdict) if truth is not None else format_line(readout)
        self.lines.appendleft(text.strip())
        self.history.clear()
        self.history.addItems(list(self.lines))

    def _show_truth(self, readout: dict, truth: dict, verdict: dict) -> None:
        self.truth_heading.show()
        for field, _ in ROWS:
            label = self.truths[field]
            label.setText(_value_text(truth, field))
            label.setStyleSheet(VERDICT_STYLE[verdict.get(field)])
            label.show()
        agreement = ", ".join(
            f"{task_name(task)} {100 * fraction:.0f} %"
            for task, fraction in self.tally.accuracy().items()
            if fraction is not None
        )
        self.score.setText(f"agreement with the truth over {self.tally.readouts} readouts: {agreement or '-'}")
        self.score.show()


class readout_widget(ReadoutSink):
    """A Qt GUI readout panel fed by the `readout` message port; place it with gui_hint like
    other QT GUI blocks (its widget is `qwidget()`). Readouts of a labelled stream (the LWM
    Synthetic Source's) show their ground truth beside them and the running agreement.

    history: readout lines kept in the list under the panel.
    title: the panel's caption.
    bundle: the receiver's model bundle ('' = the shipped one): the truth's SNR is judged on its bins.
    """

    def __init__(self, history=10, title="LWM-Spectro readout", bundle: BlockBundle = "", parent=None):
        if int(history) < 0:
            raise ConfigError(f"{LABEL}: history {history} is negative; give the number of lines to keep (0 or more)")
        ReadoutSink.__init__(self, "lwm_readout_widget")
        snr_bins_db = load_bundle(bundle, LABEL).labels.snr_bins_db
        self.view = ReadoutView(title, int(history), snr_bins_db, parent)

    def qwidget(self) -> QtWidgets.QWidget:
        return self.view

    def handle_readout(self, readout: dict, message) -> None:
        self.view.readout_arrived.emit(readout, truth_of(message))
