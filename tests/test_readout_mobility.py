"""A readout without mobility says why, and one with a Doppler estimate shows it."""

import pytest

from lwmspectro.readout import FIELDS, ModelOutput, build_readout, format_line, make_readout, to_json


def lte_readout(**mobility):
    fields = dict(mobility="pedestrian", mobility_confidence=0.8) | mobility
    return make_readout(
        protocol="lte",
        protocol_confidence=0.9,
        modulation="16QAM",
        modulation_confidence=0.7,
        snr_db=20.0,
        snr_confidence=0.6,
        expert="lte",
        **fields,
    )


def test_a_capture_too_short_for_mobility_reads_the_rest_and_says_so():
    readout = lte_readout(mobility=None, mobility_confidence=None, mobility_status="needs_longer_capture")
    line = format_line(readout)
    assert "16QAM" in line and "SNR  20 dB" in line and "mobility: needs longer capture" in line
    assert '"mobility":null' in to_json(readout) and '"mobility_status":"needs_longer_capture"' in to_json(readout)


def test_a_doppler_estimate_is_shown_beside_the_mobility():
    assert "pedestrian 0.80 (fD 12 Hz)" in format_line(lte_readout(doppler_hz=12.3))
    assert "(fD" not in format_line(lte_readout())


def test_the_readout_keeps_the_model_outputs_mobility_fields_in_schema_order():
    output = ModelOutput("nr", 0.9, "QPSK", 0.8, 10.0, 0.5, None, None, "needs_longer_capture", None, "nr")
    readout = build_readout(output, window_start=7)
    assert tuple(readout) == FIELDS
    assert readout["mobility"] is None and readout["mobility_status"] == "needs_longer_capture"


def test_an_unknown_mobility_status_is_refused():
    with pytest.raises(ValueError, match="needs_longer_capture"):
        ModelOutput("nr", 0.9, mobility_status="too_fast")
