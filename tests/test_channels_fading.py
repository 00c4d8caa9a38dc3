"""Statistics of the sum-of-sinusoids fading processes against the Clarke/Jakes model."""

import numpy as np
import pytest
import scipy.special
import scipy.stats

from lwmspectro.channels import jakes_fading


def test_unit_mean_power_rayleigh_and_rician():
    rng = np.random.default_rng(1)
    times = np.linspace(0.0, 1.0, 16)
    for k_db in (None, 10.0):
        power = np.abs(jakes_fading(4000, 150.0, rng, k_factor_db=k_db)(times)) ** 2
        assert power.mean() == pytest.approx(1.0, rel=0.03)


def test_autocorrelation_matches_bessel_j0():
    rng = np.random.default_rng(2)
    fd = 100.0
    lags = np.linspace(0.0, 0.02, 41)
    process = jakes_fading(6000, fd, rng)
    start = 0.731
    values = process(start + lags)  # (lags, processes)
    correlation = (values * np.conj(values[:1])).mean(axis=1)
    expected = scipy.special.j0(2 * np.pi * fd * lags)
    np.testing.assert_allclose(correlation.real, expected, atol=0.05)
    np.testing.assert_allclose(correlation.imag, 0.0, atol=0.05)


def test_doppler_spectrum_is_jakes_shaped_and_inside_fd():
    rng = np.random.default_rng(3)
    fd, rate, n = 200.0, 1600.0, 4096
    values = jakes_fading(200, fd, rng)(np.arange(n) / rate)
    spectrum = (np.abs(np.fft.fft(values * np.hanning(n)[:, None], axis=0)) ** 2).mean(axis=1)
    freqs = np.abs(np.fft.fftfreq(n, 1 / rate))
    total = spectrum.sum()
    assert spectrum[freqs > 1.02 * fd].sum() / total < 1e-3
    # Clarke's density 1 / (pi sqrt(fd^2 - f^2)) puts 12.8 % of the power below 0.2 fd
    # and 41.0 % above 0.8 fd.
    assert spectrum[freqs < 0.2 * fd].sum() / total == pytest.approx(0.128, abs=0.03)
    assert spectrum[freqs > 0.8 * fd].sum() / total == pytest.approx(0.410, abs=0.04)


def test_rayleigh_amplitude_distribution():
    amplitude = np.abs(jakes_fading(4000, 50.0, np.random.default_rng(4))(0.37))
    assert scipy.stats.kstest(amplitude, "rayleigh", args=(0.0, np.sqrt(0.5))).pvalue > 0.01


def test_rician_amplitude_distribution_for_los():
    k = 10.0
    amplitude = np.abs(jakes_fading(4000, 50.0, np.random.default_rng(5), k_factor_db=10.0)(0.37))
    sigma = np.sqrt(1.0 / (2.0 * (1.0 + k)))
    assert scipy.stats.kstest(amplitude, "rice", args=(np.sqrt(2.0 * k), 0.0, sigma)).pvalue > 0.01
    rayleigh = np.abs(jakes_fading(4000, 50.0, np.random.default_rng(5))(0.37))
    assert scipy.stats.kstest(rayleigh, "rice", args=(np.sqrt(2.0 * k), 0.0, sigma)).pvalue < 1e-6


def test_los_component_has_its_doppler_shift():
    fd, aoa, rate, n = 100.0, np.pi / 3, 1000.0, 8192
    values = jakes_fading(1, fd, np.random.default_rng(6), k_factor_db=30.0, los_aoa_rad=aoa)(np.arange(n) / rate)
    freqs = np.fft.fftfreq(n, 1 / rate)
    peak = freqs[np.argmax(np.abs(np.fft.fft(values[:, 0])))]
    assert peak == pytest.approx(fd * np.cos(aoa), abs=rate / n)


def test_zero_doppler_is_a_constant_random_channel():
    process = jakes_fading(3, 0.0, np.random.default_rng(7))
    values = process(np.array([0.0, 0.01, 5.0]))
    np.testing.assert_allclose(values, np.broadcast_to(values[0], values.shape), atol=1e-6)
    assert len(set(np.round(values[0], 5))) == 3


def test_same_seed_same_process():
    a = jakes_fading(4, 80.0, np.random.default_rng(8))(np.linspace(0, 1, 7))
    b = jakes_fading(4, 80.0, np.random.default_rng(8))(np.linspace(0, 1, 7))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"doppler_hz": -1.0}, "doppler_hz"),
        ({"n_processes": 0}, "n_processes"),
        ({"k_factor_db": np.inf}, "k_factor_db"),
        ({"rng": 3}, "Generator"),
    ],
)
def test_bad_input_is_refused(kwargs, message):
    args = {"n_processes": 2, "doppler_hz": 10.0, "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        jakes_fading(**args)
