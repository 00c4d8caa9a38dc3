"""Spectrogram G: Eq. 7-10 as documented, one definition for frames and streams."""

import numpy as np
import pytest

from lwmspectro.spectrogram import (
    DEFAULT_PARAMS,
    SpectrogramParams,
    frames_from_iq,
    spectrogram,
    spectrogram_from_frames,
    spectrograms,
)


def direct_eq7_to_10(y, params):
    """Eq. 7-10 written out term by term, as a reference."""
    m = np.arange(params.n_fft)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * m / params.n_fft)  # periodic Hann
    rows = []
    for t in range(params.n_frames):
        seg = y[t * params.hop : t * params.hop + params.n_fft]
        Y = np.array([np.sum(seg * w * np.exp(-2j * np.pi * k * m / params.n_fft)) for k in range(params.n_fft)])
        P = np.abs(Y) ** 2
        P = np.fft.fftshift(P).reshape(params.n_bins, -1).mean(axis=1)
        rows.append(10 * np.log10(P))
    S = np.array(rows)
    return (S - S.mean()) / S.std()


@pytest.mark.parametrize("n_fft,n_bins", [(32, 32), (64, 16)])
def test_matches_direct_evaluation_of_eq_7_to_10(n_fft, n_bins):
    params = SpectrogramParams(sample_rate_hz=1e6, n_fft=n_fft, hop=48, n_frames=12, n_bins=n_bins)
    rng = np.random.default_rng(0)
    y = rng.standard_normal(params.window_samples) + 1j * rng.standard_normal(params.window_samples)
    np.testing.assert_allclose(spectrogram(y, params), direct_eq7_to_10(y, params), atol=2e-4)


def test_default_shape_dtype_and_span():
    iq = np.exp(2j * np.pi * 0.1 * np.arange(DEFAULT_PARAMS.window_samples)).astype(np.complex64)
    S = spectrogram(iq)
    assert S.shape == (128, 128) and S.dtype == np.float32
    assert DEFAULT_PARAMS.window_seconds > 0.015  # long enough to see pedestrian fading


def test_tone_lands_in_its_bin_with_dc_centred():
    p = DEFAULT_PARAMS
    bin_hz = p.sample_rate_hz / p.n_bins
    for k_offset in (-20, 0, 31):
        iq = np.exp(2j * np.pi * k_offset * bin_hz / p.sample_rate_hz * np.arange(p.window_samples))
        assert spectrogram(iq).mean(axis=0).argmax() == p.n_bins // 2 + k_offset


def test_gain_invariant():
    rng = np.random.default_rng(1)
    iq = rng.standard_normal(DEFAULT_PARAMS.window_samples) + 1j * rng.standard_normal(DEFAULT_PARAMS.window_samples)
    np.testing.assert_allclose(spectrogram(iq), spectrogram(iq * 1e-3), atol=1e-4)


def test_frames_path_equals_stream_path_and_batches():
    rng = np.random.default_rng(2)
    iq = (rng.standard_normal(3 * DEFAULT_PARAMS.window_samples) + 0j).astype(np.complex64)
    batch = spectrograms(iq)
    assert batch.shape == (3, 128, 128)
    start = DEFAULT_PARAMS.window_samples
    np.testing.assert_array_equal(batch[1], spectrogram_from_frames(frames_from_iq(iq, start=start)))


def test_resamples_other_rates_to_the_analysis_rate():
    p = SpectrogramParams(sample_rate_hz=2e6, n_fft=32, hop=32, n_frames=16, n_bins=32)
    tone = np.exp(2j * np.pi * 250e3 * np.arange(2000) / 1e6)  # 250 kHz at 1 MS/s
    S = spectrogram(tone, p, sample_rate_hz=1e6)
    assert S.mean(axis=0).argmax() == 16 + 4  # 250 kHz / (2 MHz / 32 bins)


def test_short_input_and_bad_params_are_clear_errors():
    with pytest.raises(ValueError, match="need 487808 samples"):
        spectrogram(np.zeros(1000, np.complex64))
    with pytest.raises(ValueError, match="multiple of n_bins"):
        SpectrogramParams(n_fft=100, n_bins=64)
    with pytest.raises(ValueError, match="unknown spectrogram parameters"):
        SpectrogramParams.from_dict({"nfft": 3})


def test_params_round_trip_through_a_dict():
    assert SpectrogramParams.from_dict(DEFAULT_PARAMS.to_dict()) == DEFAULT_PARAMS
