"""AWGN at the labelled in-band SNR, and mobility classes."""

import numpy as np
import pytest
import scipy.signal

from lwmspectro.channels import add_awgn, doppler_hz, draw_speed, measure_snr_db, noise_colour, noise_variance
from lwmspectro.channels.noise import CounterStreams, noise_key
from lwmspectro.labels import DOPPLER_RANGES_HZ, MOBILITY_CLASSES, mobility_of_doppler

FS = 30.72e6


def bursty_signal(rng, n=1 << 16, occupied=20e6):
    """Band-limited bursts (transmitter on half the time) occupying `occupied` Hz at FS."""
    spectrum = np.zeros(n, complex)
    inside = np.abs(np.fft.fftfreq(n, 1 / FS)) < occupied / 2
    spectrum[inside] = rng.standard_normal(inside.sum()) + 1j * rng.standard_normal(inside.sum())
    active = (np.arange(n) // 4096) % 2 == 0
    return (np.fft.ifft(spectrum) * active).astype(np.complex64), active


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 25.0])
def test_measured_snr_matches_the_label(snr_db):
    rng = np.random.default_rng(int(snr_db) + 10)
    signal, active = bursty_signal(rng)
    noisy, variance = add_awgn(signal, snr_db, 20e6, FS, None, rng, active=active)
    assert measure_snr_db(signal, noisy - signal, 20e6, FS, active=active) == pytest.approx(snr_db, abs=0.5)
    # The noise is white over the whole band: its full-band power is sigma^2.
    assert np.mean(np.abs(noisy - signal) ** 2) == pytest.approx(variance, rel=0.03)


def test_snr_counts_only_active_samples_and_in_band_noise():
    rng = np.random.default_rng(1)
    signal, active = bursty_signal(rng)
    power_active = np.mean(np.abs(signal[active]) ** 2)
    _, variance = add_awgn(signal, 10.0, 20e6, FS, None, rng, active=active)
    assert variance == pytest.approx(power_active * (FS / 20e6) / 10.0, rel=1e-6)


def test_frames_take_noise_at_the_given_power():
    rng = np.random.default_rng(2)
    frames = (rng.standard_normal((128, 128)) + 1j * rng.standard_normal((128, 128))).astype(np.complex64)
    noisy, variance = add_awgn(frames, 5.0, 15e6, FS, 2.0, rng)
    assert noisy.shape == frames.shape and noisy.dtype == np.complex64
    assert variance == pytest.approx(noise_variance(5.0, 15e6, FS, 2.0))
    assert np.mean(np.abs(noisy - frames) ** 2) == pytest.approx(variance, rel=0.03)


@pytest.mark.parametrize(
    "args, message",
    [
        ((80.0, 20e6, FS, 1.0), "valid: -30 to 60"),
        ((10.0, 40e6, FS, 1.0), "occupied_bw_hz"),
        ((10.0, 20e6, FS, 0.0), "signal power"),
    ],
)
def test_bad_noise_input_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        add_awgn(np.ones(16, np.complex64), *args, np.random.default_rng(0))


def test_no_active_samples_is_refused():
    with pytest.raises(ValueError, match="no active samples"):
        add_awgn(np.ones(16, np.complex64), 0.0, 20e6, FS, None, np.random.default_rng(0), active=np.zeros(16, bool))


@pytest.mark.parametrize("mobility", MOBILITY_CLASSES)
@pytest.mark.parametrize("carrier_hz", [0.433e9, 3.5e9, 5.8e9])
def test_speed_is_drawn_so_that_its_doppler_is_in_the_class(mobility, carrier_hz):
    rng = np.random.default_rng(3)
    doppler = np.array([doppler_hz(draw_speed(mobility, rng, carrier_hz), carrier_hz) for _ in range(300)])
    low, high = DOPPLER_RANGES_HZ[mobility]
    assert doppler.min() >= low - 1e-9 and doppler.max() <= high + 1e-9
    assert {mobility_of_doppler(fd) for fd in doppler} == {mobility}
    if mobility != "static":
        assert doppler.max() / doppler.min() > 0.5 * min(high, doppler_hz(500.0, carrier_hz)) / low


def test_mobility_is_a_class_of_the_doppler():
    assert [mobility_of_doppler(fd) for fd in (0.0, 0.99, 1.0, 39.9, 40.0, 900.0)] == [
        "static",
        "static",
        "pedestrian",
        "pedestrian",
        "vehicular",
        "vehicular",
    ]


def test_doppler_from_speed_and_carrier():
    assert doppler_hz(120.0, 3.5e9) == pytest.approx(120 / 3.6 * 3.5e9 / 299792458.0)
    assert doppler_hz(0.0, 2.4e9) == 0.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: draw_speed("flying", np.random.default_rng(0), 2.4e9), "static, pedestrian, vehicular"),
        (lambda: doppler_hz(-3.0, 2.4e9), "non-negative"),
        (lambda: doppler_hz(3.0, 0.0), "carrier"),
    ],
)
def test_bad_mobility_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_coloured_noise_keeps_the_snr_inside_the_occupied_band():
    rng = np.random.default_rng(7)
    colour = noise_colour(rng, ripple_db=4.0)
    signal = np.exp(2j * np.pi * rng.random((64, 4096))).astype(np.complex64)
    noisy, _ = add_awgn(signal, 10.0, 18e6, FS, None, rng, colour=colour)
    assert measure_snr_db(signal, noisy - signal, 18e6, FS) == pytest.approx(10.0, abs=0.2)
    freqs, psd = scipy.signal.welch(noisy - signal, fs=FS, nperseg=256, return_onesided=False, axis=-1)
    shape_db = 10 * np.log10(psd.mean(axis=0))
    assert 1.0 < np.ptp(shape_db[np.abs(freqs) < 12e6]) < 10.0


def test_noise_colours_differ_and_are_unit_gain():
    rng = np.random.default_rng(8)
    first, second = noise_colour(rng, 3.0), noise_colour(rng, 3.0)
    assert np.sum(np.abs(first) ** 2) == pytest.approx(1.0, rel=1e-5)
    assert not np.allclose(first, second)


def test_a_moved_counter_draws_what_a_generator_made_at_that_counter_draws_whatever_came_before():
    key = noise_key(4, 5)
    streams = CounterStreams(key)
    streams.at(9).integers(0, 2**31, 3, dtype=np.uint32)  # leaves half a word and a partly used buffer
    streams.at(2).standard_normal(5, np.float32)
    for block in (7, 2**40, 7):
        fresh = np.random.Generator(np.random.Philox(counter=[0, block, 0, 0], key=key))
        np.testing.assert_array_equal(
            streams.at(block).standard_normal(1000, np.float32), fresh.standard_normal(1000, np.float32)
        )
