"""LWM Readout Widget: the current readout as labels with confidence bars, and a short history."""

from __future__ import annotations

import collections

from PyQt5 import QtCore, QtWidgets

from lwmspectro.readout import format_line

from .common import ConfigError, ReadoutSink

LABEL = "LWM Readout Widget"
ROWS = (("protocol", "Protocol"), ("modulation", "Modulation"), ("snr_db", "SNR"), ("mobility", "Mobility"))


def _value_text(readout: dict, field: str) -> str:
    value = readout.get(field)
    if value is None:
        return "-"
    return f"{value:.0f} dB" if field == "snr_db" else str(value)


class ReadoutView(QtWidgets.QWidget):
    """The Qt side. Readouts reach it through a queued signal, so the GNU Radio thread that
    receives them never touches a widget."""

    readout_arrived = QtCore.pyqtSignal(object)

    def __init__(self, title: str, history: int, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        box = QtWidgets.QGroupBox(title)
        grid = QtWidgets.QGridLayout(box)
        self.values, self.bars = {}, {}
        for row, (field, name) in enumerate(ROWS):
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
        self.status = QtWidgets.QLabel("waiting for readouts")
        grid.addWidget(self.status, len(ROWS), 0, 1, 3)
        layout.addWidget(box)
        self.history = QtWidgets.QListWidget()
        self.history.setMaximumHeight(18 * max(history, 1) + 6)
        layout.addWidget(self.history)
        self.lines = collections.deque(maxlen=history)
        self.readout_arrived.connect(self.show_readout)

    def show_readout(self, readout: dict) -> None:
        for field, _ in ROWS:
            confidence_key = "snr_confidence" if field == "snr_db" else f"{field}_confidence"
            confidence = readout.get(confidence_key)
            self.values[field].setText(_value_text(readout, field) if readout["valid"] else "invalid")
            self.bars[field].setValue(0 if confidence is None else round(100 * confidence))
        reason = "" if readout["valid"] else f"  input not judged: {readout['invalid_reason']}"
        self.status.setText(
            f"window @{readout['window_start']}  latency {readout['latency_ms']:.1f} ms  "
            f"seen {readout['windows_seen']}  classified {readout['windows_classified']}  "
            f"dropped {readout['windows_dropped']}{reason}"
        )
        self.lines.appendleft(format_line(readout).strip())
        self.history.clear()
        self.history.addItems(list(self.lines))


class readout_widget(ReadoutSink):
    """A Qt GUI readout panel fed by the `readout` message port; place it with gui_hint like
    other QT GUI blocks (its widget is `qwidget()`).

    history: readout lines kept in the list under the panel.
    title: the panel's caption.
    """

    def __init__(self, history=10, title="LWM-Spectro readout", parent=None):
        if int(history) < 0:
            raise ConfigError(f"{LABEL}: history {history} is negative; give the number of lines to keep (0 or more)")
        ReadoutSink.__init__(self, "lwm_readout_widget")
        self.view = ReadoutView(title, int(history), parent)

    def qwidget(self) -> QtWidgets.QWidget:
        return self.view

    def handle_readout(self, readout: dict, message) -> None:
        self.view.readout_arrived.emit(readout)
