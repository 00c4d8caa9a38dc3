"""Frequency offsets and receiver impairments do what their labels say, on streams and frames."""

import numpy as np
import pytest

from lwmspectro.channels import impairments

FS = 30.72e6


def tone(freq_hz, n, start=0):
    return np.exp(2j * np.pi * freq_hz / FS * (start + np.arange(n))).astype(np.complex64)


def peak_frequency(y, pad=1 << 18):
    spectrum = np.abs(np.fft.fft(y * np.hanning(y.size), pad))
    return np.fft.fftfreq(pad, 1 / FS)[np.argmax(spectrum)]


def test_cfo_shifts_the_spectrum_by_the_stated_hz():
    y, labels = impairments.carrier_frequency_offset(tone(1.0e6, 1 << 15), 37_500.0, FS)
    assert labels == {"cfo_hz": 37_500.0}
    assert peak_frequency(y) == pytest.approx(1.0e6 + 37_500.0, abs=FS / (1 << 18))


def test_cfo_on_frames_uses_absolute_sample_indices():
    stream = tone(2e6, 60_000)
    starts = np.array([0, 17_000, 51_000])
    index = impairments.frame_sample_index(starts, 128)
    shifted, _ = impairments.carrier_frequency_offset(stream, 5e3, FS)
    frames, _ = impairments.carrier_frequency_offset(stream[index], 5e3, FS, sample_index=index)
    np.testing.assert_allclose(frames, shifted[index], atol=1e-5)
    with pytest.raises(ValueError, match="sample_index"):
        impairments.carrier_frequency_offset(stream[index], 5e3, FS)


def test_frequency_offsets_are_compensated_to_a_small_residual():
    rng = np.random.default_rng(1)
    for _ in range(50):
        labels = impairments.draw_frequency_offsets(rng, 3.5e9, max_ppm=5.0, residual_fraction=0.02)
        assert abs(labels["oscillator_ppm"]) <= 5.0
        assert labels["cfo_before_compensation_hz"] == pytest.approx(labels["oscillator_ppm"] * 3.5e3)
        assert abs(labels["cfo_hz"]) <= 0.02 * abs(labels["cfo_before_compensation_hz"])
        assert abs(labels["sfo_ppm"]) <= 0.02 * abs(labels["oscillator_ppm"])
    with pytest.raises(ValueError, match="carrier"):
        impairments.draw_frequency_offsets(rng, -1.0)


def test_phase_noise_is_a_wiener_process_with_the_stated_linewidth():
    rng = np.random.default_rng(2)
    clean = np.ones(200_000, np.complex64)
    y, labels = impairments.phase_noise(clean, rng, FS, dbc_hz=-70.0, offset_hz=100e3)
    linewidth = labels["phase_noise_linewidth_hz"]
    assert linewidth == pytest.approx(2 * np.pi * 1e10 * 1e-7)
    phase = np.unwrap(np.angle(y))
    for lag in (1, 100):
        steps = phase[lag:] - phase[:-lag]
        assert np.var(steps) == pytest.approx(2 * np.pi * linewidth * lag / FS, rel=0.1)


def test_phase_noise_on_frames_decorrelates_with_the_gap_between_frames():
    rng = np.random.default_rng(3)
    hop, frames_n = 3840, 4000
    index = impairments.frame_sample_index(np.arange(frames_n) * hop, 16)
    y, labels = impairments.phase_noise(np.ones(index.shape, np.complex64), rng, FS, -90.0, sample_index=index)
    phase = np.angle(y[:, 0])
    steps = np.angle(np.exp(1j * np.diff(phase)))
    expected = 2 * np.pi * labels["phase_noise_linewidth_hz"] * hop / FS
    assert np.var(steps) == pytest.approx(expected, rel=0.1)


def test_iq_imbalance_leaves_the_stated_image():
    gain_db, phase_deg = 1.0, 5.0
    y, labels = impairments.iq_imbalance(tone(3e6, 1 << 14), gain_db, phase_deg)
    assert labels == {"iq_gain_db": 1.0, "iq_phase_deg": 5.0}
    spectrum = np.abs(np.fft.fft(y)) ** 2
    freqs = np.fft.fftfreq(y.size, 1 / FS)
    wanted = spectrum[np.argmin(np.abs(freqs - 3e6))]
    image = spectrum[np.argmin(np.abs(freqs + 3e6))]
    g, phi = 10 ** (gain_db / 20), np.deg2rad(phase_deg)
    expected = abs((1 - g * np.exp(1j * phi)) / (1 + g * np.exp(-1j * phi))) ** 2
    assert 10 * np.log10(image / wanted) == pytest.approx(10 * np.log10(expected), abs=0.1)
    unchanged, _ = impairments.iq_imbalance(tone(3e6, 64), 0.0, 0.0)
    np.testing.assert_allclose(unchanged, tone(3e6, 64), atol=1e-6)


def test_dc_offset_at_the_stated_level():
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(1 << 16) + 1j * rng.standard_normal(1 << 16)).astype(np.complex64)
    y, labels = impairments.dc_offset(x, -20.0, phase_rad=1.0)
    offset = np.mean(y - x)
    assert 10 * np.log10(abs(offset) ** 2 / np.mean(np.abs(x) ** 2)) == pytest.approx(-20.0, abs=0.01)
    assert np.angle(offset) == pytest.approx(1.0, abs=1e-4)
    assert labels == {"dc_offset_dbc": -20.0}


def test_8bit_quantisation_with_agc():
    rng = np.random.default_rng(5)
    x = 0.003 * (rng.standard_normal(1 << 16) + 1j * rng.standard_normal(1 << 16))
    y, labels = impairments.quantize(x, bits=8, backoff_db=15.0)
    assert labels == {"adc_bits": 8, "agc_backoff_db": 15.0}
    for rail in (y.real, y.imag):
        codes = rail * 128 - 0.5
        np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)
        assert len(np.unique(rail)) <= 256 and np.abs(rail).max() <= 1.0
    assert 10 * np.log10(np.mean(np.abs(y) ** 2)) == pytest.approx(-15.0, abs=0.1)
    scaled = x * 10 ** (-15 / 20) / np.sqrt(np.mean(np.abs(x) ** 2))
    # Uniform quantiser noise: step^2 / 12 per rail, step = 2 / 256.
    sqnr = np.mean(np.abs(scaled) ** 2) / np.mean(np.abs(y - scaled) ** 2)
    assert 10 * np.log10(sqnr) == pytest.approx(10 * np.log10(10**-1.5 / (2 * (2 / 256) ** 2 / 12)), abs=0.5)
    clipped, _ = impairments.quantize(x, bits=8, backoff_db=0.0)
    assert np.abs(clipped.real).max() == pytest.approx(127.5 / 128)


def test_receiver_impairments_apply_the_chosen_ones_with_labels():
    rng = np.random.default_rng(6)
    index = impairments.frame_sample_index(np.arange(8) * 3840, 128)
    frames = (rng.standard_normal(index.shape) + 1j * rng.standard_normal(index.shape)).astype(np.complex64)
    y, labels = impairments.apply_random(frames, index, FS, rng)
    assert y.shape == frames.shape and y.dtype == np.complex64
    assert labels["receiver_impairments"] == list(impairments.RECEIVER_IMPAIRMENTS)
    ranges = impairments.RECEIVER_IMPAIRMENT_RANGES
    for key in ("phase_noise_dbc_hz", "iq_gain_db", "iq_phase_deg", "dc_offset_dbc", "agc_backoff_db"):
        low, high = ranges[key]
        assert low <= labels[key] <= high
    assert labels["adc_bits"] == 8
    only_dc, labels = impairments.apply_random(frames, index, FS, rng, kinds="dc_offset")
    assert set(labels) == {"receiver_impairments", "dc_offset_dbc"}
    assert np.ptp(only_dc - frames) < 1e-6
    none, labels = impairments.apply_random(frames, index, FS, rng, kinds=())
    np.testing.assert_array_equal(none, frames)
    with pytest.raises(ValueError, match="phase_noise, iq_imbalance, dc_offset, adc8"):
        impairments.apply_random(frames, index, FS, rng, kinds=("adc12",))


def test_unit_phasors_are_exp_1j_phase_in_single_precision():
    phase = np.linspace(-40, 40, 1001, dtype=np.float32).reshape(7, 143)
    phasors = impairments.unit_phasors(phase)
    assert phasors.dtype == np.complex64
    np.testing.assert_allclose(phasors, np.exp(1j * phase.astype(np.float64)), atol=1e-6)
