"""Labelled SigMF recordings: round trip, lwm: labels, no silent overwrite."""

import json

import numpy as np
import pytest

from lwmspectro.sigmf_io import read_recording, write_recording


def test_round_trip_keeps_samples_rate_frequency_and_labels(tmp_path):
    iq = (np.arange(64) * (1 - 0.5j)).astype(np.complex64)
    meta = write_recording(tmp_path / "rec", iq, 30.72e6, 2.14e9, {"protocol": "lte", "snr_db": 10.0})
    doc = json.loads(meta.read_text())
    assert doc["global"]["core:datatype"] == "cf32_le"
    assert doc["global"]["lwm:protocol"] == "lte"
    rec = read_recording(meta)
    np.testing.assert_array_equal(rec.iq, iq)
    assert (rec.sample_rate_hz, rec.frequency_hz) == (30.72e6, 2.14e9)
    assert rec.labels == {"protocol": "lte", "snr_db": 10.0}


def test_existing_recording_is_not_overwritten(tmp_path):
    write_recording(tmp_path / "rec", np.zeros(4, np.complex64), 1e6, 0.0)
    with pytest.raises(FileExistsError):
        write_recording(tmp_path / "rec", np.ones(4, np.complex64), 1e6, 0.0)
    assert read_recording(tmp_path / "rec.sigmf-meta").iq.sum() == 0


def test_unsupported_datatype_is_named(tmp_path):
    meta = write_recording(tmp_path / "rec", np.zeros(4, np.complex64), 1e6, 0.0)
    doc = json.loads(meta.read_text())
    doc["global"]["core:datatype"] = "rf32_le"
    meta.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="rf32_le"):
        read_recording(meta)
