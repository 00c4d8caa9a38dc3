"""The Qt readout widget beside the ground truth: a readout message that carries the synthetic
source's truth shows it in its own column, each task marked by whether the readout agrees, with the
running agreement; without a truth the column stays hidden."""

import os
import sys
import types

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import gnuradio.lwmspectro as lwm_blocks
import pmt
from gnuradio.lwmspectro.common import readout_to_pmt
from PyQt5 import QtWidgets

from lwmspectro.readout import make_readout

READOUT = make_readout(
    protocol="lte",
    protocol_confidence=0.97,
    modulation="64QAM",
    modulation_confidence=0.81,
    snr_db=15.0,
    snr_confidence=0.6,
    mobility="pedestrian",
    mobility_confidence=0.7,
    expert="lte",
    window_start=0,
    latency_ms=8.0,
    windows_seen=1,
    windows_classified=1,
)
TRUTH = {"protocol": "lte", "modulation": "16QAM", "snr_db": 14.0, "mobility": "pedestrian"}


def with_truth(readout: dict, truth: dict):
    return pmt.dict_add(readout_to_pmt(readout), pmt.intern("truth"), pmt.to_pmt(truth))


def test_the_truth_shows_beside_the_readout_with_the_running_agreement():
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    widget = lwm_blocks.readout_widget(history=3, title="LWM test")
    assert isinstance(lwm_blocks.readout_widget(history=1), lwm_blocks.readout_widget), "a second one too"
    styles = sys.modules[lwm_blocks.readout_widget.__module__].VERDICT_STYLE
    view = widget.qwidget()
    assert view.minimumWidth() >= 500 and view.minimumHeight() >= 300
    widget.handle_readout(READOUT, readout_to_pmt(READOUT))
    app.processEvents()
    assert view.truth_heading.isHidden() and "truth" not in view.lines[0]

    widget.handle_readout(READOUT, with_truth(READOUT, TRUTH))
    app.processEvents()
    assert not view.truth_heading.isHidden()
    texts = {field: label.text() for field, label in view.truths.items()}
    assert texts == {"protocol": "lte", "modulation": "16QAM", "snr_db": "14 dB", "mobility": "pedestrian"}
    assert view.truths["protocol"].styleSheet() == styles[True]
    assert view.truths["modulation"].styleSheet() == styles[False]
    assert "protocol 100 %" in view.score.text() and "modulation 0 %" in view.score.text()
    assert "| truth lte 16QAM 14 dB pedestrian" in view.lines[0]


def test_the_truth_snr_is_judged_on_the_bins_of_the_named_bundle(monkeypatch):
    module = sys.modules[lwm_blocks.readout_widget.__module__]
    bundle = types.SimpleNamespace(labels=types.SimpleNamespace(snr_bins_db=(0.0, 8.0, 16.0)))
    monkeypatch.setattr(module, "load_bundle", lambda name, label: bundle if name == "coarse" else None)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    widget = lwm_blocks.readout_widget(history=1, bundle="coarse")
    widget.handle_readout({**READOUT, "snr_db": 16.0}, with_truth({**READOUT, "snr_db": 16.0}, TRUTH))
    app.processEvents()
    # 14 dB is nearest the bundle's 16 dB bin (on the default 5 dB grid it would be 15 dB).
    assert widget.qwidget().truths["snr_db"].styleSheet() == module.VERDICT_STYLE[True]
