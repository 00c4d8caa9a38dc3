"""The core's channel reading and channel bundle checks, without torch."""

import json
import pickle

import numpy as np
import pytest

from lwmspectro.bundle import BundleError
from lwmspectro.lwm_embed import LwmBundle, check_channels, read_channels


def test_a_complex_npy_is_read_as_complex64(tmp_path):
    h = (np.ones((2, 4, 8)) + 1j * np.arange(8)).astype(np.complex128)
    np.save(tmp_path / "h.npy", h)
    read = read_channels(tmp_path / "h.npy", 4, 8)
    assert read.dtype == np.complex64 and np.array_equal(read, h.astype(np.complex64))


def test_a_text_file_is_not_taken_for_a_pickle(tmp_path):
    (tmp_path / "h.npy").write_text("user,h\n0,1+1j\n")
    with pytest.raises(ValueError, match=r"h\.npy: not a \.npy array \(it has no \.npy header"):
        read_channels(tmp_path / "h.npy", 4, 8)


def test_a_pickle_is_not_run(tmp_path):
    class Sentinel:
        def __reduce__(self):
            return (print, ("unpickled",))

    path = tmp_path / "h.npy"
    path.write_bytes(pickle.dumps(Sentinel()))
    with pytest.raises(ValueError, match="Python objects"):
        read_channels(path, 4, 8)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 8, 4), np.complex64), r"shape \(2, 8, 4\) is not \(users, 4, 8\)"),
        (np.zeros((4, 8), np.complex64), "is not"),
        (np.zeros((0, 4, 8), np.complex64), "no channel"),
        (np.zeros((2, 4, 8), np.float64), "not complex"),
        (np.array([[[np.inf + 0j] * 8] * 4]), "NaN or infinite"),
    ],
)
def test_arrays_that_are_not_channels_are_refused_saying_why(array, message):
    with pytest.raises(ValueError, match=message):
        check_channels(array, 4, 8)


def test_a_spectrogram_bundle_or_an_empty_folder_is_not_a_channel_bundle(tmp_path):
    with pytest.raises(BundleError, match=r"card\.json"):
        LwmBundle.load(tmp_path)
    (tmp_path / "card.json").write_text(json.dumps({"schema_version": 2, "name": "small", "spectrogram": {}}))
    with pytest.raises(BundleError, match="not a channel model bundle"):
        LwmBundle.load(tmp_path)
