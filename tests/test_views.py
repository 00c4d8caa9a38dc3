"""G's named views: carried as data, today's G unchanged as ``wideband``, inputs checked."""

import numpy as np
import pytest

from lwmspectro.spectrogram import SpectrogramParams, spectrogram
from lwmspectro.views import (
    VIEWS,
    compute_view,
    min_source_samples,
    view_from_dict,
    view_shape,
    view_to_dict,
)

SMALL_WIDEBAND = SpectrogramParams(n_fft=64, hop=640, n_frames=16, n_bins=32)


def noise(n, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_every_view_round_trips_through_a_dict(name):
    params = VIEWS[name]
    recorded = view_to_dict(params)
    assert view_from_dict(recorded) == params
    assert view_to_dict(view_from_dict(recorded)) == recorded


def test_a_shipped_cards_spectrogram_is_the_wideband_view():
    card_g = SpectrogramParams().to_dict()
    assert view_from_dict({"name": "wideband", "params": card_g}) == VIEWS["wideband"]


@pytest.mark.parametrize("rate", [30.72e6, 20e6])
def test_wideband_is_todays_g_sample_for_sample(rate):
    iq = noise(min_source_samples(SMALL_WIDEBAND, rate) + 100)
    view = compute_view(SMALL_WIDEBAND, iq, rate)
    assert view.shape == view_shape(SMALL_WIDEBAND) and view.dtype == np.float32
    np.testing.assert_array_equal(view, spectrogram(iq, SMALL_WIDEBAND, rate))


def test_batches_give_the_view_of_each_observation():
    iq = np.stack([noise(min_source_samples(SMALL_WIDEBAND, 30.72e6), seed) for seed in (1, 2)])
    batch = compute_view(SMALL_WIDEBAND, iq, 30.72e6)
    assert batch.shape == (2, *view_shape(SMALL_WIDEBAND))
    np.testing.assert_array_equal(batch[1], compute_view(SMALL_WIDEBAND, iq[1], 30.72e6))


def test_min_source_samples_scales_with_the_source_rate():
    at_analysis = min_source_samples(SMALL_WIDEBAND, 30.72e6)
    assert at_analysis == SMALL_WIDEBAND.window_samples
    assert min_source_samples(SMALL_WIDEBAND, 15.36e6) == -(-at_analysis // 2)


@pytest.mark.parametrize(
    "values,match",
    [
        ({"name": "wideband"}, "exactly the keys"),
        ({"name": "nope", "params": {}}, "unknown view 'nope'"),
        ({"name": "wideband", "params": {"n_ftt": 64}}, "unknown spectrogram parameters"),
        ({"name": "wideband", "params": {"n_fft": "big"}}, "view.params.n_fft"),
        ({"name": "wideband", "params": []}, "is not an object"),
    ],
)
def test_bad_view_dicts_are_named(values, match):
    with pytest.raises(ValueError, match=match):
        view_from_dict(values)


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_too_short_iq_names_the_length_needed(name):
    params = VIEWS[name]
    needed = min_source_samples(params, 20e6)
    with pytest.raises(ValueError, match=f"needs {needed} samples at 20 MS/s, got {needed - 1}"):
        compute_view(params, noise(needed - 1), 20e6)


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_nan_iq_is_refused(name):
    params = VIEWS[name]
    iq = noise(min_source_samples(params, 30.72e6))
    iq[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compute_view(params, iq, 30.72e6)


def test_unknown_parameters_are_refused():
    with pytest.raises(TypeError, match="not the parameters of a view"):
        view_shape({"n_fft": 64})
