"""A value whose confidence is below the user's threshold is listed in `uncertain` (its value kept),
and a tracked readout carries the tracked values beside the window's."""

import json
import math

import pytest

from lwmspectro.readout import (
    FIELDS,
    TRACKED_FIELDS,
    ModelOutput,
    Tracked,
    build_readout,
    format_line,
    invalid_readout,
    to_json,
    uncertain_thresholds,
)

OUTPUT = ModelOutput("lte", 0.95, "16QAM", 0.45, 10.0, 0.7, "pedestrian", 0.55, expert="lte")
TRACKED = Tracked(
    windows=42,
    protocol="lte",
    protocol_confidence=0.97,
    modulation="64QAM",
    modulation_confidence=0.62,
    snr_db=10.0,
    snr_confidence=0.8,
    mobility="static",
    mobility_confidence=0.4,
)


def test_by_default_nothing_is_uncertain_and_an_untracked_readout_has_no_tracked_values():
    readout = build_readout(OUTPUT, window_start=5)
    assert tuple(readout) == FIELDS
    assert readout["uncertain"] == [] and all(readout[name] is None for name in TRACKED_FIELDS)
    assert "?" not in format_line(readout) and "windows:" not in format_line(readout)


def test_one_threshold_marks_every_value_below_it_and_keeps_the_value():
    readout = build_readout(OUTPUT, window_start=5, uncertain_below=0.6)
    assert readout["uncertain"] == ["modulation", "mobility"]
    assert readout["modulation"] == "16QAM" and readout["mobility"] == "pedestrian"
    line = format_line(readout)
    assert "16QAM?" in line and "pedestrian?" in line and "lte " in line and "SNR  10 dB 0.70" in line
    assert json.loads(to_json(readout))["uncertain"] == ["modulation", "mobility"]


def test_thresholds_per_task_and_for_the_tracked_values():
    readout = build_readout(OUTPUT, window_start=5, tracked=TRACKED, uncertain_below={"mobility": 0.5, "snr_db": 0.75})
    assert readout["uncertain"] == ["snr_db", "tracked_mobility"]
    assert readout["tracked_modulation"] == "64QAM" and readout["tracked_windows"] == 42
    line = format_line(readout)
    assert "SNR  10 dB? 0.70" in line
    assert "[42 windows: lte   0.97  64QAM  0.62  SNR  10 dB 0.80  static?    0.40]" in line


def test_a_readout_without_mobility_is_not_uncertain_about_it():
    output = ModelOutput("nr", 0.9, "QPSK", 0.8, 10.0, 0.5, None, None, "needs_longer_capture", None, "nr")
    assert build_readout(output, window_start=0, uncertain_below=0.95)["uncertain"] == [
        "protocol",
        "modulation",
        "snr_db",
    ]


def test_an_invalid_readout_has_nothing_uncertain_and_nothing_tracked():
    readout = invalid_readout("clipped")
    assert readout["uncertain"] == [] and readout["tracked_protocol"] is None
    assert build_readout(OUTPUT, window_start=0, tracked=None)["tracked_windows"] is None


@pytest.mark.parametrize(
    ("below", "message"),
    [
        (math.nan, r"uncertain threshold nan for protocol: give a confidence from 0 to 1"),
        (-0.1, r"uncertain threshold -0.1 for protocol"),
        (1.5, r"uncertain threshold 1.5"),
        ("0.5", r"uncertain threshold '0.5'"),
        (True, r"uncertain threshold True"),
        ({"snr": 0.5}, r"uncertain threshold for unknown 'snr'; valid: protocol, modulation, snr_db, mobility"),
    ],
)
def test_a_threshold_that_is_not_a_probability_is_refused(below, message):
    with pytest.raises(ValueError, match=message):
        uncertain_thresholds(below)
    with pytest.raises(ValueError, match=message):
        build_readout(OUTPUT, window_start=0, uncertain_below=below)


def test_thresholds_name_every_task():
    assert uncertain_thresholds(0.3) == {"protocol": 0.3, "modulation": 0.3, "snr_db": 0.3, "mobility": 0.3}
    assert uncertain_thresholds({"modulation": 1}) == {
        "protocol": 0.0,
        "modulation": 1.0,
        "snr_db": 0.0,
        "mobility": 0.0,
    }
