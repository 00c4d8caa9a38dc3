"""TDL profiles, fractional delays, and the stream and frame forms of the channel."""

import numpy as np
import pytest

from lwmspectro.channels import TDL_PROFILES, TapProfile, TDLChannel, fractional_delay_weights, tdl_profile
from lwmspectro.spectrogram import DEFAULT_PARAMS

FS = 30.72e6


def band_limited_noise(n, rng, band=0.33):
    """Complex noise occupying |f| < band * fs, and its spectrum."""
    spectrum = np.zeros(n, complex)
    inside = np.abs(np.fft.fftfreq(n)) < band
    spectrum[inside] = rng.standard_normal(inside.sum()) + 1j * rng.standard_normal(inside.sum())
    return np.fft.ifft(spectrum).astype(np.complex64), spectrum


@pytest.mark.parametrize("name", TDL_PROFILES)
def test_standard_profiles_scale_to_the_delay_spread(name):
    profile = tdl_profile(name, delay_spread_s=300e-9)
    assert profile.powers.sum() == pytest.approx(1.0)
    # TR 38.901 normalises each table to unit RMS delay spread.
    assert profile.rms_delay_spread_s == pytest.approx(300e-9, rel=0.01)
    assert profile.delays_s[0] == 0.0


def test_los_profiles_carry_their_k_factor():
    assert tdl_profile("TDL-D").k_factors_db[0] == pytest.approx(13.3)
    assert tdl_profile("TDL-E").k_factors_db[0] == pytest.approx(22.0)
    assert np.all(np.isneginf(tdl_profile("TDL-D").k_factors_db[1:]))
    assert np.all(np.isneginf(tdl_profile("TDL-A").k_factors_db))
    table = tdl_profile("TDL-D")
    custom = tdl_profile("TDL-D", k_factor_db=6.0)
    assert custom.k_factors_db[0] == 6.0
    np.testing.assert_allclose(custom.powers, table.powers)


def test_from_paths_keeps_strongest_and_the_los_path():
    delays = np.array([300e-9, 120e-9, 500e-9, 150e-9, 900e-9])
    powers = np.array([1.0, 0.001, 0.5, 0.2, 0.05])
    profile = TapProfile.from_paths(delays, powers, los=True, k_factor_db=9.0, max_paths=3)
    # The earliest path (120 ns) is the LOS one: kept although weak, and Rician.
    np.testing.assert_allclose(profile.delays_s, [0.0, 180e-9, 380e-9])
    np.testing.assert_allclose(profile.powers, np.array([0.001, 1.0, 0.5]) / 1.501)
    assert profile.k_factors_db[0] == 9.0 and np.all(np.isneginf(profile.k_factors_db[1:]))
    nlos = TapProfile.from_paths(delays, powers, max_paths=2)
    np.testing.assert_allclose(nlos.delays_s, [0.0, 200e-9])
    assert np.all(np.isneginf(nlos.k_factors_db))


def test_per_tap_mean_power_matches_the_profile():
    powers = np.array([0.5, 0.3, 0.15, 0.05])
    profile = TapProfile(np.array([0, 3, 7, 12]) / FS, powers, [6.0, -np.inf, -np.inf, -np.inf])
    rng = np.random.default_rng(11)
    times = np.arange(64) * 0.01
    collected = []
    for _ in range(200):
        channel = TDLChannel(profile, FS, 200.0, rng)
        first, taps = channel.taps(times)
        collected.append(np.abs(taps) ** 2)
    mean_power = np.concatenate(collected).mean(axis=0)
    np.testing.assert_allclose(mean_power[np.array([0, 3, 7, 12]) - first], powers, rtol=0.05)
    assert mean_power.sum() == pytest.approx(1.0, rel=0.03)


@pytest.mark.parametrize("delay", [0.0, 2.3, 5.5, 17.81])
def test_fractional_delay_is_band_limited_and_exact_in_band(delay):
    rng = np.random.default_rng(12)
    n = 1 << 14
    x, spectrum = band_limited_noise(n, rng)
    channel = TDLChannel(TapProfile([delay / FS], [1.0], [-np.inf]), FS, 0.0, rng)
    gain = channel.path_gains(0.0)[0]
    ideal = gain * np.fft.ifft(spectrum * np.exp(-2j * np.pi * np.fft.fftfreq(n) * delay))
    y = channel.apply(x)
    middle = slice(64, n - 64)
    error = np.sum(np.abs(y[middle] - ideal[middle]) ** 2) / np.sum(np.abs(ideal[middle]) ** 2)
    assert 10 * np.log10(error + 1e-30) < -35
    taps = np.arange(-8, 32)
    weights = fractional_delay_weights(delay, taps)
    assert np.all(np.abs(taps[weights != 0] - delay) < 4)
    nearest = (taps == np.floor(delay)) | (taps == np.floor(delay) + 1)
    assert np.sum(weights[nearest] ** 2) / np.sum(weights**2) > 0.8


def test_integer_delays_give_single_taps():
    weights = fractional_delay_weights(np.array([0.0, 4.0]), np.arange(-4, 9))
    expected = np.zeros((2, 13))
    expected[0, 4] = expected[1, 8] = 1.0
    np.testing.assert_array_equal(weights, expected)


def test_frames_equal_the_stream_for_a_static_channel():
    rng = np.random.default_rng(13)
    params = DEFAULT_PARAMS
    n = params.window_samples
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    channel = TDLChannel(tdl_profile("TDL-C", 300e-9), FS, 0.0, rng)
    stream = channel.apply(x)
    starts = params.frame_starts
    frames = channel.apply_frames(x, starts, params.n_fft)
    index = starts[:, None] + np.arange(params.n_fft)
    np.testing.assert_allclose(frames, stream[index], atol=1e-5)
    # A frame that begins before the channel's longest delay reads zeros before x[0].
    assert np.abs(frames[0, 0]) > 0


def test_frames_equal_the_stream_on_its_blocks_when_fading():
    rng = np.random.default_rng(14)
    x = (rng.standard_normal(40000) + 1j * rng.standard_normal(40000)).astype(np.complex64)
    channel = TDLChannel(tdl_profile("TDL-A", 100e-9), FS, 900.0, rng)
    hold = channel.hold_samples
    stream = channel.apply(x)
    starts = np.arange(3, 150, 7) * hold
    frames = channel.apply_frames(x, starts, hold)
    np.testing.assert_allclose(frames, stream[starts[:, None] + np.arange(hold)], atol=1e-5)
    # And the channel does change over the stream.
    assert not np.allclose(frames[0] / x[starts[0] : starts[0] + hold], frames[-1] / x[starts[-1] : starts[-1] + hold])


def test_regions_read_apart_get_the_whole_streams_numbers_there():
    rng = np.random.default_rng(15)
    x = (rng.standard_normal(60000) + 1j * rng.standard_normal(60000)).astype(np.complex64)
    channel = TDLChannel(tdl_profile("TDL-C", 300e-9), FS, 400.0, rng)
    stream = channel.apply(x, sampling_offset_ppm=3.0)
    regions = [(1000, 2000), (1500, 4000), (10000, 10001), (0, 3), (50000, 59990), (7000, 7000)]
    formed = channel.apply_regions(x, regions, sampling_offset_ppm=3.0)
    np.testing.assert_array_equal(formed, np.concatenate([stream[a:b] for a, b in regions]))
    np.testing.assert_array_equal(channel.apply_range(x, 1500, 4000, 3.0), stream[1500:4000])
    assert channel.apply_regions(x, []).shape == (0,)


def test_hold_interval_follows_doppler():
    profile = tdl_profile("TDL-B")
    rng = np.random.default_rng(15)
    assert TDLChannel(profile, FS, 0.0, rng).hold_samples == 256
    assert TDLChannel(profile, FS, 100.0, rng).hold_samples == 256
    assert TDLChannel(profile, FS, 4000.0, rng).hold_samples == int(FS / (50 * 4000.0))


def test_sampling_offset_reads_the_stream_at_the_drifted_clock():
    rng = np.random.default_rng(16)
    x, spectrum = band_limited_noise(1 << 15, rng)
    channel = TDLChannel(TapProfile([0.0], [1.0], [-np.inf]), FS, 0.0, rng)
    gain = channel.path_gains(0.0)[0]
    # 200 ppm at sample 10000 is a drift of exactly 2 samples.
    frame = channel.apply_frames(x, [10000], 128, sampling_offset_ppm=200.0)[0]
    np.testing.assert_allclose(frame, gain * x[10002:10130], atol=1e-5)
    # 50 ppm is half a sample: the band-limited signal read between samples.
    frame = channel.apply_frames(x, [10000], 128, sampling_offset_ppm=50.0)[0]
    n = x.size
    between = gain * np.fft.ifft(spectrum * np.exp(2j * np.pi * np.fft.fftfreq(n) * 10000.5))[:128]
    assert np.sum(np.abs(frame - between) ** 2) / np.sum(np.abs(between) ** 2) < 10 ** (-3.5)


def test_labels_and_determinism():
    profile = tdl_profile("TDL-C", 100e-9)
    x = np.exp(1j * np.arange(5000) * 0.1).astype(np.complex64)
    a = TDLChannel(profile, FS, 30.0, np.random.default_rng(3)).apply_frames(x, [0, 1000, 3000], 128)
    b = TDLChannel(profile, FS, 30.0, np.random.default_rng(3)).apply_frames(x, [0, 1000, 3000], 128)
    np.testing.assert_array_equal(a, b)
    labels = TDLChannel(profile, FS, 30.0, np.random.default_rng(3)).labels()
    assert labels["channel_profile"] == "TDL-C" and labels["doppler_hz"] == 30.0 and labels["n_paths"] == 24


def tdl_a_channel():
    return TDLChannel(tdl_profile("TDL-A"), FS, 5.0, np.random.default_rng(0))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: tdl_profile("TDL-X"), "TDL-A, TDL-B"),
        (lambda: tdl_profile("TDL-A", k_factor_db=3.0), "no LOS tap"),
        (lambda: tdl_profile("TDL-A", delay_spread_s=-1e-9), "delay_spread_s"),
        (lambda: TapProfile([0.0, 1e-7], [1.0], [-np.inf]), "equal"),
        (lambda: TapProfile([-1e-9], [1.0], [-np.inf]), "non-negative"),
        (lambda: TapProfile.from_paths([], []), "non-zero length"),
        (lambda: TDLChannel("TDL-A", FS, 0.0, np.random.default_rng(0)), "TapProfile"),
        (lambda: TDLChannel(tdl_profile("TDL-A"), FS, -5.0, np.random.default_rng(0)), "doppler_hz"),
        (lambda: tdl_a_channel().apply_frames(np.ones(100), [-1], 8), "starts"),
        (lambda: tdl_a_channel().apply_frames(np.ones(100), [0], 8, sampling_offset_ppm=np.nan), "sampling_offset"),
        (lambda: tdl_a_channel().apply(np.ones((2, 100))), "1-D"),
    ],
)
def test_bad_input_is_refused(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_frequency_response_is_what_the_channel_does_to_a_tone():
    """A static channel multiplies a tone at f by H(f): the frequency response a perfect
    receiver would estimate is the one the stream's filter applies."""
    channel = TDLChannel(tdl_profile("TDL-C", delay_spread_s=300e-9), FS, 0.0, np.random.default_rng(3))
    n = np.arange(8192)
    for f in (-7e6, 1.3e6, 9e6):
        tone = np.exp(2j * np.pi * f * n / FS).astype(np.complex64)
        settled = slice(256, None)
        gain = np.mean(channel.apply(tone)[settled] / tone[settled])
        assert channel.frequency_response([0.0], [f])[0, 0] == pytest.approx(gain, abs=0.02 * abs(gain) + 1e-3)


def test_frequency_response_follows_the_fading_over_time():
    channel = TDLChannel(tdl_profile("TDL-A", delay_spread_s=100e-9), FS, 200.0, np.random.default_rng(4))
    response = channel.frequency_response(np.arange(64) * 1e-3, np.linspace(-5e6, 5e6, 16))
    assert response.shape == (64, 16) and response.dtype == np.complex64
    static = TDLChannel(tdl_profile("TDL-A", delay_spread_s=100e-9), FS, 0.0, np.random.default_rng(4))
    steady = np.abs(static.frequency_response(np.arange(64) * 1e-3, [0.0]))
    assert np.ptp(steady, axis=0) == pytest.approx(0.0, abs=1e-6)
    assert np.ptp(np.abs(response), axis=0).min() > 0.05
