"""The capture chain does what each drawn label says: rate, band edges, offset, receiver steps."""

import json

import numpy as np
import pytest
import scipy.signal

from lwmspectro import capture
from lwmspectro.channels import impairments

FS = 30.72e6


def white_noise(n, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def band_signal(bandwidth_hz, n=1 << 16, seed=0):
    """Noise low-passed to +-bandwidth/2 at the analysis rate: a stand-in for an occupied band."""
    taps = scipy.signal.firwin(255, bandwidth_hz / FS)
    return scipy.signal.oaconvolve(white_noise(n, seed), taps, mode="same").astype(np.complex64)


def psd_db(y, rate_hz):
    freqs, psd = scipy.signal.welch(y, fs=rate_hz, nperseg=512, return_onesided=False, detrend=False)
    order = np.argsort(freqs)
    return freqs[order], 10 * np.log10(psd[order])


def test_the_capture_is_at_the_drawn_source_rate():
    iq = white_noise(30_720)
    for rate in (2.4e6, 20e6, 30.72e6, 61.44e6):
        settings = capture.draw_capture(np.random.default_rng(0), 1e6, 2.4e9, source_rate_hz=rate)
        y = capture.apply_capture(iq, settings, FS, np.random.default_rng(1))
        assert settings.source_rate_hz == rate
        assert y.dtype == np.complex64
        assert y.size == pytest.approx(iq.size * rate / FS, abs=2)


def test_the_anti_alias_filter_passes_its_passband_and_attenuates_the_band_edges():
    settings = capture.CaptureSettings(source_rate_hz=20e6, passband_fraction=0.8)
    y = capture.apply_capture(white_noise(1 << 17), settings, FS, np.random.default_rng(0))
    freqs, level = psd_db(y, 20e6)
    passband = level[np.abs(freqs) < 0.7 * 10e6]
    edges = level[np.abs(freqs) > 0.97 * 10e6]
    assert passband.max() - passband.min() < 2.5
    assert passband.mean() - edges.max() > 30


def test_a_band_wider_than_the_stream_is_filled_with_its_noise_floor():
    settings = capture.CaptureSettings(source_rate_hz=61.44e6, passband_fraction=0.9)
    y = capture.apply_capture(white_noise(1 << 16), settings, FS, np.random.default_rng(0))
    freqs, level = psd_db(y, 61.44e6)
    inner = level[np.abs(freqs) < 12e6].mean()
    beyond = level[(np.abs(freqs) > 18e6) & (np.abs(freqs) < 26e6)].mean()
    assert beyond == pytest.approx(inner, abs=1.5)


def test_the_offset_moves_the_spectrum_peak_and_keeps_the_band_inside_the_passband():
    iq = band_signal(2e6)
    for seed in range(5):
        settings = capture.draw_capture(np.random.default_rng(seed), 2e6, 1e9, source_rate_hz=FS)
        assert abs(settings.offset_hz) + 1e6 <= settings.passband_edge_hz
        y = capture.apply_capture(iq, settings, FS, np.random.default_rng(0))
        freqs, level = psd_db(y, FS)
        occupied = freqs[level > level.max() - 3]
        assert occupied.mean() == pytest.approx(settings.offset_hz + settings.cfo_hz, abs=0.2e6)


def test_a_band_wider_than_the_passband_stays_centred():
    settings = capture.draw_capture(np.random.default_rng(0), 18e6, 2.6e9, source_rate_hz=10e6)
    assert settings.offset_hz == 0.0
    assert capture.max_offset_hz(20e6, 0.9, 8e6) == pytest.approx(5e6)


def test_a_band_off_dc_lands_anywhere_inside_the_passband_and_a_centred_capture_leaves_it_there():
    centres = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        settings = capture.draw_capture(rng, 0.5e6, 0.9e9, source_rate_hz=2e6, occupied_centre_hz=0.5e6)
        centre = 0.5e6 + settings.offset_hz
        assert abs(centre) + 0.25e6 <= settings.passband_edge_hz
        centres.append(centre)
    assert min(centres) < -0.4e6 and max(centres) > 0.4e6
    wide = capture.draw_capture(np.random.default_rng(0), 3e6, 0.9e9, source_rate_hz=2e6, occupied_centre_hz=0.5e6)
    assert wide.offset_hz == -0.5e6, "a band wider than the passband is tuned to its centre"
    receiver = capture.draw_receiver(np.random.default_rng(0), 2e6)
    tuned = capture.draw_tuning(
        np.random.default_rng(1), receiver, 0.5e6, 0.9e9, occupied_centre_hz=0.5e6, centred=True
    )
    assert tuned.offset_hz == 0.0 and tuned.passband_fraction == receiver.passband_fraction
    assert receiver.passband_hz == pytest.approx(2e6 * receiver.passband_fraction)


def test_centred_captures_draw_no_offset_and_the_cfo_is_a_few_ppm_of_the_carrier():
    for seed in range(20):
        settings = capture.draw_capture(np.random.default_rng(seed), 1e6, 3.5e9, centred=True)
        assert settings.offset_hz == 0.0
        assert abs(settings.cfo_ppm) <= 5.0
        assert settings.cfo_hz == pytest.approx(settings.cfo_ppm * 3.5e3)
        assert settings.source_rate_hz in capture.SOURCE_RATES_HZ
        assert 0.8 <= settings.passband_fraction <= 0.95


def test_receiver_steps_are_drawn_labelled_and_applied():
    drawn = [capture.draw_capture(np.random.default_rng(seed), 1e6, 2.4e9) for seed in range(40)]
    assert any(s.adc_bits == 8 for s in drawn) and any(s.adc_bits == 12 for s in drawn)
    assert any(s.adc_bits is None for s in drawn) and any(s.dc_spike_dbc is not None for s in drawn)
    assert any(s.gain_step_db for s in drawn) and any(s.iq_gain_db is not None for s in drawn)
    bare = capture.draw_capture(np.random.default_rng(0), 1e6, 2.4e9, receiver_steps=False)
    assert (bare.gain_step_db, bare.iq_gain_db, bare.dc_spike_dbc, bare.adc_bits) == (0.0, None, None, None)

    settings = capture.CaptureSettings(
        source_rate_hz=FS, passband_fraction=0.9, gain_step_db=10.0, gain_step_at=0.5, dc_spike_dbc=-25.0, adc_bits=8
    )
    y = capture.apply_capture(white_noise(1 << 14), settings, FS, np.random.default_rng(0))
    first, second = y[1000:7000], y[9000:15000]
    assert 10 * np.log10(np.mean(np.abs(second) ** 2) / np.mean(np.abs(first) ** 2)) == pytest.approx(10, abs=1)
    assert abs(y.mean()) ** 2 > 0.001 * np.mean(np.abs(y) ** 2)
    assert len(np.unique(y.real)) <= 256


def test_capture_is_seeded_and_its_labels_are_json():
    iq = band_signal(5e6, n=1 << 14)
    first, labels = capture.capture(iq, np.random.default_rng(3), 5e6, 2.4e9)
    again, same = capture.capture(iq, np.random.default_rng(3), 5e6, 2.4e9)
    np.testing.assert_array_equal(first, again)
    assert labels == same and json.loads(json.dumps(labels)) == labels
    assert set(labels) >= {"source_rate_hz", "passband_fraction", "offset_hz", "cfo_hz", "adc_bits", "dc_spike_dbc"}


def test_the_frequency_shift_is_the_exact_rotation_and_a_stretch_gets_the_whole_streams_numbers():
    iq = white_noise(3 * impairments.PHASOR_BLOCK + 17)
    n = np.arange(iq.size)
    for shift_hz in (1.2345e6, -7.3e6, 12.5):
        exact = iq * np.exp(2j * np.pi * (shift_hz / FS) * n)
        shifted = capture.frequency_shift(iq, shift_hz, FS)
        assert shifted.dtype == np.complex64 and shifted.shape == iq.shape
        np.testing.assert_allclose(shifted, exact, atol=2e-6)
        stretch = np.arange(5000, 9000)
        np.testing.assert_array_equal(capture.frequency_shift(iq[stretch], shift_hz, FS, stretch), shifted[stretch])


def test_the_phasor_at_far_absolute_indices_is_the_exact_rotation():
    index = np.array([0, 1, 4095, 4096, 10**7 + 3, 10**8 + 12345])
    cycles = 1.2345e6 / FS
    expected = np.exp(2j * np.pi * ((cycles * index) % 1.0))
    np.testing.assert_allclose(impairments.phasor_at(index, cycles), expected, atol=2e-6)


def test_in_regions_marks_what_isin_of_the_regions_samples_marks():
    rng = np.random.default_rng(3)
    for _ in range(100):
        n = 20_000
        formed = capture.merge_regions([(int(a), int(a + rng.integers(0, 900))) for a in rng.integers(-50, n, 12)], n)
        measured = capture.merge_regions(
            [(int(a), int(a + rng.integers(0, 2000))) for a in rng.integers(-50, n, rng.integers(0, 6))], n
        )
        index = capture.region_index(formed)
        np.testing.assert_array_equal(
            capture.in_regions(index, measured), np.isin(index, capture.region_index(measured))
        )
