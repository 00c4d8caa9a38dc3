"""Labelled SigMF recordings: round trip, lwm: labels, no silent overwrite."""

import json

import numpy as np
import pytest

from lwmspectro.sigmf_io import RecordingError, SigMFReader, read_recording, write_recording


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


def test_a_data_file_cut_inside_a_sample_reads_the_whole_samples_and_warns(tmp_path, caplog):
    meta = write_recording(tmp_path / "rec", np.arange(4, dtype=np.complex64), 1e6, 0.0)
    with open(meta.with_suffix(".sigmf-data"), "ab") as data:
        data.write(b"\0\0\0")
    assert len(read_recording(meta).iq) == 4
    assert "ends 3 bytes into a 8-byte cf32_le sample" in caplog.text


@pytest.mark.parametrize(("datatype", "dtype"), [("ci8", np.int8), ("ci16_le", np.int16)])
def test_fixed_point_data_cut_inside_a_sample_reads_the_whole_samples(tmp_path, datatype, dtype):
    meta = write_recording(tmp_path / "rec", np.zeros(1, np.complex64), 1e6, 0.0)
    doc = json.loads(meta.read_text())
    doc["global"]["core:datatype"] = datatype
    meta.write_text(json.dumps(doc))
    whole = np.array([1, -2, 3, -4, 5, -6], dtype)
    meta.with_suffix(".sigmf-data").write_bytes(whole.tobytes() + b"\x07")
    scale = 2.0 ** (8 * np.dtype(dtype).itemsize - 1)
    np.testing.assert_allclose(read_recording(meta).iq, (whole[0::2] + 1j * whole[1::2]) / scale)


def test_the_reader_reads_slices_on_demand(tmp_path):
    iq = (np.arange(100) * 1j).astype(np.complex64)
    reader = SigMFReader(write_recording(tmp_path / "rec", iq, 2e6, 1e9))
    assert len(reader) == 100 and reader.sample_rate_hz == 2e6 and reader.frequency_hz == 1e9
    np.testing.assert_array_equal(reader[10:20], iq[10:20])
    np.testing.assert_array_equal(reader[95:200], iq[95:])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"core:num_channels": 2}, "core:num_channels 2: only recordings of one channel"),
        ({"core:sample_rate": "1e6"}, "core:sample_rate '1e6' is not a number"),
        ({"core:datatype": None}, "core:datatype is missing"),
    ],
)
def test_a_bad_global_field_is_named(tmp_path, change, message):
    meta = write_recording(tmp_path / "rec", np.zeros(4, np.complex64), 1e6, 0.0)
    doc = json.loads(meta.read_text())
    doc["global"].update(change)
    meta.write_text(json.dumps(doc))
    with pytest.raises(RecordingError, match=message):
        read_recording(meta)
