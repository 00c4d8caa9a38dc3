"""G's named views: carried as data, today's G unchanged as ``wideband``, the OFDM views'
blind estimates and what they show, inputs checked, one observation's views computed together."""

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import threadpoolctl

from lwmspectro import phy, views
from lwmspectro.ofdm_sync import LTE, NR_30KHZ, WIFI, Numerology, PrefixFolds, estimate_timing
from lwmspectro.phy.common import constellation
from lwmspectro.resample import PointResampler, resample_to
from lwmspectro.spectrogram import SpectrogramParams, spectrogram
from lwmspectro.synth import ExampleSpec, make_stream
from lwmspectro.views import (
    LOG_SHARE_FLOOR,
    SPECTRAL_TIME_QUANTILES,
    VIEWS,
    CpProfileParams,
    CpSnrParams,
    OfdmAlignedParams,
    OfdmSyncParams,
    SpectralLevelsParams,
    SpreadLevelsParams,
    WifiPilotConstellationParams,
    compute_observation,
    compute_view,
    min_source_samples,
    observation_span,
    reads_past,
    view_from_dict,
    view_name,
    view_names,
    view_offsets,
    view_output,
    view_shape,
    view_to_dict,
)

SMALL_WIDEBAND = SpectrogramParams(n_fft=64, hop=640, n_frames=16, n_bins=32)


def noise(n, seed=0, power=1.0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) * np.sqrt(power / 2)).astype(np.complex64)


def received(wf, snr_db, seed=0, cfo_subcarriers=0.0, n_fft=1):
    """The unit-power waveform with AWGN at `snr_db` and a CFO of `cfo_subcarriers` spacings."""
    rotation = np.exp(2j * np.pi * cfo_subcarriers * np.arange(len(wf.iq)) / n_fft)
    return (wf.iq * rotation + noise(len(wf.iq), seed, 10 ** (-snr_db / 10))).astype(np.complex64)


def circular_error(estimate, truth, period):
    error = (estimate - truth) % period
    return min(error, period - error)


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
    """At another rate only the frames G reads are resampled: the same to float32 rounding."""
    iq = noise(min_source_samples(SMALL_WIDEBAND, rate) + 100)
    view = compute_view(SMALL_WIDEBAND, iq, rate)
    assert view.shape == view_shape(SMALL_WIDEBAND) and view.dtype == np.float32
    if rate == SMALL_WIDEBAND.sample_rate_hz:
        np.testing.assert_array_equal(view, spectrogram(iq, SMALL_WIDEBAND, rate))
    else:
        np.testing.assert_allclose(view, spectrogram(iq, SMALL_WIDEBAND, rate), atol=1e-3)


def test_batches_give_the_view_of_each_observation():
    iq = np.stack([noise(min_source_samples(SMALL_WIDEBAND, 30.72e6), seed) for seed in (1, 2)])
    batch = compute_view(SMALL_WIDEBAND, iq, 30.72e6)
    assert batch.shape == (2, *view_shape(SMALL_WIDEBAND))
    np.testing.assert_array_equal(batch[1], compute_view(SMALL_WIDEBAND, iq[1], 30.72e6))


def test_min_source_samples_scales_with_the_source_rate():
    """At another rate a view also reads the few samples its resampling filter reaches."""
    at_analysis = min_source_samples(SMALL_WIDEBAND, 30.72e6)
    assert at_analysis == SMALL_WIDEBAND.window_samples
    reach = PointResampler.for_rates(15.36e6, 30.72e6).n_taps
    assert -(-at_analysis // 2) < min_source_samples(SMALL_WIDEBAND, 15.36e6) <= -(-at_analysis // 2) + reach


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


# --- blind symbol timing and CFO --------------------------------------------------------------


@pytest.mark.parametrize(
    "protocol,options,numerology",
    [
        ("lte", {"bandwidth_hz": 20e6}, LTE),
        ("lte", {"bandwidth_hz": 5e6}, LTE),
        ("nr", {"bandwidth_hz": 20e6, "mu": 0}, LTE),
        ("nr", {"bandwidth_hz": 20e6, "mu": 1}, NR_30KHZ),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_blind_timing_finds_the_half_subframe_start_of_lte_and_nr(protocol, options, numerology, seed):
    wf = phy.generate(protocol, modulation="16QAM", duration_s=0.006, rng=np.random.default_rng(seed), **options)
    iq = resample_to(
        received(wf, 10, seed, 0.3, numerology.n_fft * wf.sample_rate_hz / 30.72e6), wf.sample_rate_hz, 30.72e6
    )
    timing = estimate_timing(iq, numerology)
    # The frame layout: the stream starts start_sample into whole half-subframes of 0.5 ms.
    truth = -wf.meta["start_sample"] * round(30.72e6 / wf.sample_rate_hz) % numerology.group_samples
    assert circular_error(timing.group_start, truth, numerology.group_samples) <= 2
    assert timing.cfo_subcarriers == pytest.approx(0.3, abs=0.02)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blind_timing_finds_the_symbol_start_inside_a_wifi_packet(seed):
    wf = phy.generate(
        "wifi",
        modulation="64QAM",
        code_rate="2/3",
        duration_s=0.003,
        rng=np.random.default_rng(seed),
        psdu_bytes=(2000, 2000),
    )
    iq = received(wf, 10, seed, -0.2, WIFI.n_fft)
    # A whole packet: 320 preamble samples, then symbols of 80 samples from its SIGNAL field on.
    packet_start = int(np.flatnonzero(np.diff(wf.active.astype(int)) == 1)[0]) + 1
    skip = 320 + 80 * 3 + 37
    timing = estimate_timing(iq[packet_start + skip :][: 64 * 80], WIFI)
    assert circular_error(timing.group_start, -skip % 80, 80) <= 2
    assert timing.cfo_subcarriers == pytest.approx(-0.2, abs=0.03)


# --- what the symbol-aligned view shows ----------------------------------------------------------


def fourth_moment(view):
    """E[r^4] / E[r^2]^2 of the element amplitudes r (E[P^2] / E[P]^2 of their powers), over the
    subcarriers the band profile (row 0) shows occupied."""
    occupied = view[0] > -1.0
    power = 10.0 ** view[1:, occupied].astype(np.float64)
    return float(np.mean(power**2) / np.mean(power) ** 2)


LTE_MODULATIONS = ("QPSK", "16QAM", "64QAM", "256QAM")


@pytest.fixture(scope="module")
def lte_at_25_db():
    """LTE 20 MHz of each modulation through AWGN at 25 dB, from the same cell (same seed)."""
    waveforms = {}
    for modulation in LTE_MODULATIONS:
        wf = phy.generate(
            "lte", bandwidth_hz=20e6, modulation=modulation, duration_s=0.016, rng=np.random.default_rng(3), load=1.0
        )
        waveforms[modulation] = (received(wf, 25, 7, 0.1, LTE.n_fft), wf.sample_rate_hz)
    return waveforms


def test_the_aligned_view_reads_the_constellation_of_lte(lte_at_25_db):
    measured = {m: fourth_moment(compute_view(VIEWS["ofdm_aligned_15khz"], *lte_at_25_db[m])) for m in LTE_MODULATIONS}
    theory = {m: float(np.mean(np.abs(constellation(m, "3gpp")) ** 4)) for m in LTE_MODULATIONS}
    print("E[r^4]/E[r^2]^2 measured", measured, "theory", theory)
    # Below theory by the QPSK control region and reference signals mixed into the PDSCH.
    for modulation in LTE_MODULATIONS:
        assert measured[modulation] == pytest.approx(theory[modulation], abs=0.08)
    values = [measured[m] for m in LTE_MODULATIONS]
    assert values == sorted(values) and values[1] - values[0] > 0.2


def test_todays_g_reads_every_lte_modulation_as_gaussian(lte_at_25_db):
    """The same statistic on G's bins (each subcarrier's power over its mean): about 2, the
    exponential law of a Gaussian mixture, whatever the modulation."""
    params = SpectrogramParams(normalisation="none")
    for iq, rate in lte_at_25_db.values():
        power = 10.0 ** (spectrogram(iq, params, rate).astype(np.float64) / 10)
        power = power[:, 20:-20] / power[:, 20:-20].mean(axis=0)
        assert np.mean(power**2) == pytest.approx(2.0, abs=0.1)


def test_the_aligned_view_shows_the_band_edges_and_the_wifi_pilots():
    wf = phy.generate(
        "wifi", modulation="16QAM", duration_s=0.003, rng=np.random.default_rng(4), psdu_bytes=(2000, 2000)
    )
    packet_start = int(np.flatnonzero(np.diff(wf.active.astype(int)) == 1)[0]) + 1
    iq = received(wf, 25, 4)[packet_start + 400 :]
    view = compute_view(VIEWS["ofdm_aligned_wifi"], resample_to(iq, 20e6, 30.72e6), 30.72e6)
    assert view.shape == view_shape(VIEWS["ofdm_aligned_wifi"]) == (64, 64)
    subcarrier = np.arange(64) - 32
    occupied = (np.abs(subcarrier) <= 26) & (subcarrier != 0)
    assert view[0, occupied].min() > view[0, ~occupied].max()
    spread = view[1:].std(axis=0)  # pilots are BPSK of one amplitude, 16QAM has three
    pilots = np.isin(subcarrier, (-21, -7, 7, 21))
    assert spread[pilots].max() < 0.5 * spread[occupied & ~pilots].min()


def test_the_aligned_view_is_invariant_to_gain_and_channel_per_subcarrier():
    """Over a few cells (each draws its DMRS and SS/PBCH layout, which moves one waveform's
    statistic by a few hundredths either way)."""
    params = VIEWS["ofdm_aligned_30khz"]
    plain, faded = [], []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        wf = phy.generate("nr", bandwidth_hz=20e6, mu=1, modulation="64QAM", duration_s=0.006, rng=rng, load=1.0)
        iq = received(wf, 30, seed)
        filtered = np.convolve(iq, [1.0, 0.5j, -0.2], mode="full")[: len(iq)] * 1e-3  # 3 taps, within the CP
        plain.append(fourth_moment(compute_view(params, iq, 30.72e6)))
        faded.append(fourth_moment(compute_view(params, filtered, 30.72e6)))
    assert np.mean(faded) == pytest.approx(np.mean(plain), abs=0.02)


@pytest.mark.parametrize("shift_hz", [2.0123e6, -4.4567e6])
def test_the_aligned_view_follows_a_signal_off_dc(shift_hz):
    wf = phy.generate(
        "lte", bandwidth_hz=5e6, modulation="64QAM", duration_s=0.012, rng=np.random.default_rng(2), load=1.0
    )
    iq = resample_to(received(wf, 25, 2), wf.sample_rate_hz, 30.72e6)
    shifted = iq * np.exp(2j * np.pi * shift_hz / 30.72e6 * np.arange(len(iq))).astype(np.complex64)
    params = VIEWS["ofdm_aligned_15khz"]
    centred, off_dc = compute_view(params, iq, 30.72e6), compute_view(params, shifted, 30.72e6)
    assert fourth_moment(off_dc) == pytest.approx(fourth_moment(centred), abs=0.01)
    empty_columns = [int((np.median(view[1:], axis=0) < -0.5).sum()) for view in (centred, off_dc)]
    assert empty_columns == [1, 1]  # LTE's DC subcarrier, and no column beyond the band


def test_the_aligned_view_reads_the_constellation_through_vehicular_fading(monkeypatch):
    generate = phy.generate
    monkeypatch.setattr(phy, "generate", lambda protocol, **options: generate(protocol, load=1.0, **options))
    fourth_moments = {}
    for modulation in ("QPSK", "64QAM"):
        spec = ExampleSpec(
            protocol="lte",
            snr_db=25.0,
            mobility="vehicular",
            speed_kmh=60.0,
            carrier_hz=2.6e9,
            seed=1,
            bandwidth_hz=20e6,
            modulation=modulation,
            channel="TDL-A",
        )
        iq, _labels = make_stream(spec)
        fourth_moments[modulation] = fourth_moment(compute_view(VIEWS["ofdm_aligned_15khz"], iq, 30.72e6))
    assert fourth_moments["QPSK"] < 1.15
    assert fourth_moments["64QAM"] == pytest.approx(1.38, abs=0.08)


def grid_share(view, modulation, params):
    """The share of a constellation view's weight within one bin of `modulation`'s points
    folded into the first quadrant."""
    points = constellation(modulation, "3gpp")
    folded = np.unique(np.round(np.stack([np.abs(points.real), np.abs(points.imag)], axis=1), 6), axis=0)
    near = np.zeros(view.shape, bool)
    for row, column in (folded * params.n_bins / params.extent).astype(int):
        near[max(row - 1, 0) : row + 2, max(column - 1, 0) : column + 2] = True
    share = 10.0 ** view.astype(np.float64) - LOG_SHARE_FLOOR
    return share[near].sum() / share.sum()


def test_the_constellation_view_shows_the_points_of_each_lte_modulation(lte_at_25_db):
    """Blindly equalised, QPSK falls on its four points and 16QAM on its sixteen (beside the
    QPSK of LTE's reference signals and control region); 64QAM on its grid more than on the
    coarser ones. 256QAM's grid covers nearly every bin at this resolution."""
    params = VIEWS["ofdm_constellation_15khz"]
    shares = {
        sent: {grid: grid_share(compute_view(params, *lte_at_25_db[sent]), grid, params) for grid in LTE_MODULATIONS}
        for sent in ("QPSK", "16QAM", "64QAM")
    }
    print("share of the weight near each grid's points, by modulation sent:", shares)
    assert shares["QPSK"]["QPSK"] > 0.9 and shares["QPSK"]["16QAM"] < 0.05
    assert shares["16QAM"]["16QAM"] > 0.45 and shares["16QAM"]["16QAM"] > 5 * shares["16QAM"]["QPSK"]
    assert shares["64QAM"]["64QAM"] > 3 * max(shares["64QAM"]["QPSK"], shares["64QAM"]["16QAM"])


def test_the_constellation_view_is_blind_to_the_channel_the_gain_and_the_cfo(lte_at_25_db):
    params = VIEWS["ofdm_constellation_15khz"]
    iq, rate = lte_at_25_db["16QAM"]
    # Three taps within the prefix, 60 dB less power and 0.37 more subcarrier spacings of CFO.
    turned = np.exp(2j * np.pi * 0.37 * np.arange(len(iq)) / LTE.n_fft)
    faded = (np.convolve(iq, [1.0, 0.5j, -0.2], mode="full")[: len(iq)] * 1e-3 * turned).astype(np.complex64)
    plain, through = compute_view(params, iq, rate), compute_view(params, faded, rate)
    assert np.abs(plain - through).mean() < 0.1
    assert grid_share(through, "16QAM", params) > 0.8 * grid_share(plain, "16QAM", params)


def test_the_constellation_view_of_wifi_reads_the_packets_of_the_whole_window():
    """A sparse WiFi stream: the view times each block of symbols and weighs the packets' elements
    by their gain, so that the gaps hardly count. Less sharp than LTE's: WiFi's BPSK pilots and
    preambles, whose fourth powers point the other way, blur the phase of their neighbours."""
    params = VIEWS["ofdm_constellation_wifi"]
    shares = {}
    for modulation in ("QPSK", "16QAM"):
        wf = phy.generate(
            "wifi", modulation=modulation, duration_s=0.016, rng=np.random.default_rng(5), psdu_bytes=(300, 300)
        )
        view = compute_view(params, resample_to(received(wf, 25, 5), wf.sample_rate_hz, 30.72e6), 30.72e6)
        shares[modulation] = {grid: grid_share(view, grid, params) for grid in ("QPSK", "16QAM")}
    print("share of the weight near each grid's points, by modulation sent:", shares)
    assert shares["QPSK"]["QPSK"] > 0.6 and shares["QPSK"]["QPSK"] > 10 * shares["QPSK"]["16QAM"]
    assert shares["16QAM"]["16QAM"] > 2 * shares["16QAM"]["QPSK"]


def wifi_views_at_25_db(modulation, seed=5):
    """Today's 802.11 constellation view and the pilot-tracked one of 16 ms of WiFi traffic."""
    wf = phy.generate("wifi", modulation=modulation, duration_s=0.016, rng=np.random.default_rng(seed))
    iq = resample_to(received(wf, 25, seed), wf.sample_rate_hz, 30.72e6)
    return [
        compute_view(VIEWS[name], iq, 30.72e6) for name in ("ofdm_constellation_wifi", "ofdm_constellation_wifi_pilots")
    ]


@pytest.mark.parametrize("modulation,gain", [("16QAM", 2.0), ("64QAM", 1.4)])
def test_pilot_tracking_shows_the_wifi_qam_grid_where_fourth_powers_alone_show_rings(modulation, gain):
    """48 data elements a symbol are too few for 16QAM's fourth powers to follow the phase from
    one symbol to the next: summed over the packet, the turns wander and the points spread into
    rings. The squares of the four BPSK pilots follow it whatever their polarity."""
    params = VIEWS["ofdm_constellation_wifi_pilots"]
    today, tracked = (grid_share(view, modulation, params) for view in wifi_views_at_25_db(modulation))
    print(f"{modulation}: share of the weight near its points, today's view {today:.3f}, pilot-tracked {tracked:.3f}")
    assert tracked > gain * today


def test_pilot_tracking_falls_back_to_fourth_powers_where_the_capture_drops_the_pilots():
    """A capture 2 MHz wide keeps 6 of 802.11's subcarriers and none of its pilots: each symbol's
    common phase then comes from the turns of its fourth powers, as in today's view."""
    wf = phy.generate("wifi", modulation="QPSK", duration_s=0.016, rng=np.random.default_rng(2))
    narrow = scipy.signal.lfilter(scipy.signal.firwin(129, 1e6, fs=wf.sample_rate_hz), 1.0, received(wf, 25, 2))
    iq = resample_to(narrow.astype(np.complex64), wf.sample_rate_hz, 30.72e6)
    today, tracked = (
        compute_view(VIEWS[name], iq, 30.72e6) for name in ("ofdm_constellation_wifi", "ofdm_constellation_wifi_pilots")
    )
    assert np.isfinite(tracked).all() and tracked.shape == today.shape
    shares = [grid_share(view, "QPSK", VIEWS["ofdm_constellation_wifi_pilots"]) for view in (today, tracked)]
    print("QPSK behind a 2 MHz capture, share of the weight near its points (today, pilot-tracked):", shares)
    assert shares[1] > 0.8 * shares[0]


def test_pilot_tracking_is_for_the_80211_numerology_in_bursts():
    with pytest.raises(ValueError, match="64-point FFT"):
        WifiPilotConstellationParams(LTE, n_symbols=216, n_subcarriers=512, search_symbols=218)


@pytest.mark.parametrize("offset_subcarriers", [0.0, 3.3])
def test_the_circularity_view_tells_bpsk_from_qpsk_which_the_folded_constellation_cannot(offset_subcarriers):
    """BPSK's elements lie on a line (near 1), QPSK's and 16QAM's do not (near 0.3 over 8
    symbols), whatever the packets' timing; off centre by a whole number of subcarriers and a
    fraction, each 802.11 symbol turns a quarter turn per subcarrier of offset, which the view
    estimates blindly."""
    params = VIEWS["ofdm_circularity_wifi"]
    medians = {}
    for modulation in ("BPSK", "QPSK", "16QAM"):
        wf = phy.generate(
            "wifi", modulation=modulation, duration_s=0.016, rng=np.random.default_rng(3), psdu_bytes=(1500, 1500)
        )
        iq = received(wf, 20, 3, cfo_subcarriers=offset_subcarriers, n_fft=64)
        view = compute_view(params, resample_to(iq, wf.sample_rate_hz, 30.72e6), 30.72e6)
        assert view.shape == params.shape and np.isfinite(view).all() and view.min() >= 0 and view.max() <= 1 + 1e-6
        medians[modulation] = float(np.median(view.mean(axis=0)))
    print("median circularity over the subcarriers, by modulation sent:", medians)
    assert medians["BPSK"] > 0.8
    assert medians["QPSK"] < 0.5 and medians["16QAM"] < 0.5


def test_the_circularity_view_of_noise_reads_no_line():
    params = VIEWS["ofdm_circularity_wifi"]
    view = compute_view(params, noise(min_source_samples(params, 30.72e6), 4), 30.72e6)
    assert 0.2 < np.median(view) < 0.5


def test_the_wifi_view_separates_constant_modulus_from_qam_across_packets_and_gaps():
    """A WiFi stream is packets, each with its own symbol timing, and gaps: the view times
    each block of symbols and puts the symbols with clear prefixes first. Short packets and
    long gaps leave fewer whole symbols than the view keeps (the rest are gaps), so both
    statistics rise, 16QAM's further."""
    medians = {}
    for modulation in ("QPSK", "16QAM"):
        values = []
        for seed in range(5):
            spec = ExampleSpec(
                protocol="wifi",
                snr_db=25.0,
                mobility="pedestrian",
                speed_kmh=3.0,
                carrier_hz=5.2e9,
                seed=seed,
                bandwidth_hz=20e6,
                modulation=modulation,
                channel="TDL-A",
            )
            values.append(fourth_moment(compute_view(VIEWS["ofdm_aligned_wifi"], make_stream(spec)[0], 30.72e6)))
        medians[modulation] = float(np.median(values))
    assert medians["16QAM"] > medians["QPSK"] + 0.15


# --- the router's CP profile ----------------------------------------------------------------------


# --- where reference signals repeat ---------------------------------------------------------------


def pattern_of(protocol, snr_db, shift_hz=0.0, seed=1, **options):
    """The 15 kHz pattern view of 17 ms of `protocol` at 30.72 MS/s through AWGN, off DC by `shift_hz`."""
    wf = phy.generate(protocol, modulation="16QAM", duration_s=0.017, rng=np.random.default_rng(seed), **options)
    iq = resample_to(wf.iq, wf.sample_rate_hz, 30.72e6)
    iq = iq * np.exp(2j * np.pi * shift_hz * np.arange(len(iq)) / 30.72e6)
    iq = iq + noise(len(iq), seed, 10 ** (-snr_db / 10) * 30.72e6 / wf.sample_rate_hz)
    return compute_view(VIEWS["ofdm_pattern_15khz"], iq.astype(np.complex64), 30.72e6)


CRS_ROWS = {1: [0, 4], 2: [0, 4], 4: [0, 1, 4]}
"""The symbols of each LTE slot that carry the CRS, in every subframe whatever the load, by the
number of antenna ports: 0 and 4 (ports 0 and 1), and 1 with four ports (ports 2 and 3)."""


def lag_6_peak(view):
    """Per row of the first block (powers), how far the lag-6 correlation stands above lags 5 and 7."""
    return view[:7, 6] - (view[:7, 5] + view[:7, 7]) / 2


@pytest.mark.parametrize(("shift_hz", "ports"), [(0.0, 1), (3.3e6, 1), (0.0, 2), (3.3e6, 4)])
def test_the_pattern_view_shows_the_crs_of_a_partly_loaded_lte_cell_every_six_subcarriers_at_0_db(shift_hz, ports):
    view = pattern_of("lte", 0.0, shift_hz, bandwidth_hz=5e6, load=0.3, crs_ports=ports)
    assert view.shape == view_shape(VIEWS["ofdm_pattern_15khz"]) == (14, 32)
    assert lag_6_peak(view)[CRS_ROWS[ports]].min() > 0.2
    assert np.abs(np.delete(lag_6_peak(view), CRS_ROWS[ports])).max() < 0.06


def test_the_pattern_view_of_nr_at_15_khz_has_no_crs():
    """NR on LTE's numerology, band and prefixes: what tells them apart is the CRS LTE always sends."""
    view = pattern_of("nr", 0.0, bandwidth_hz=5e6, mu=0, load=0.3)
    assert np.abs(lag_6_peak(view)).max() < 0.06


def test_the_pattern_view_does_not_depend_on_where_the_band_sits():
    centred = pattern_of("lte", 20.0, bandwidth_hz=10e6, load=0.5)
    shifted = pattern_of("lte", 20.0, -4.1e6, bandwidth_hz=10e6, load=0.5)
    np.testing.assert_allclose(centred, shifted, atol=0.1)


def test_the_pattern_view_of_noise_is_uncorrelated_with_unit_variance():
    params = VIEWS["ofdm_pattern_15khz"]
    view = compute_view(params, noise(min_source_samples(params, 30.72e6), 5), 30.72e6)
    assert np.abs(view[:7, 0]).max() < 0.1  # log10 of an exponential power's variance: 0
    assert np.abs(view[:, 1:]).max() < 0.06


# --- LTE's synchronisation signal ----------------------------------------------------------------


def sync_of(protocol, snr_db, shift_hz=0.0, seed=1, params=VIEWS["lte_sync_15khz"], **options):
    """The LTE sync view of 17 ms of `protocol` at 30.72 MS/s through AWGN, off DC by `shift_hz`."""
    wf = phy.generate(protocol, modulation="QPSK", duration_s=0.017, rng=np.random.default_rng(seed), **options)
    iq = resample_to(wf.iq, wf.sample_rate_hz, 30.72e6)
    iq = iq * np.exp(2j * np.pi * shift_hz * np.arange(len(iq)) / 30.72e6)
    iq = iq + noise(len(iq), seed, 10 ** (-snr_db / 10) * 30.72e6 / wf.sample_rate_hz)
    return view_output(params, iq.astype(np.complex64), 30.72e6)


@pytest.mark.parametrize(("shift_hz", "ports"), [(0.0, 1), (2.7e6, 2), (-4.1e6, 4)])
def test_the_sync_view_finds_the_pss_of_lte_every_5_ms_in_slots_0_and_10(shift_hz, ports):
    output = sync_of("lte", 5.0, shift_hz, bandwidth_hz=10e6, load=0.3, crs_ports=ports)
    view, starts = output.values, output.estimates["symbol_starts"]
    assert view.shape == view_shape(VIEWS["lte_sync_15khz"]) == (216, 3)
    strongest = view.max(axis=1)
    found = np.flatnonzero(strongest > 0.6)
    assert len(found) in (3, 4) and len(set(view[found].argmax(axis=1))) == 1  # 15.4 ms; one cell, one root
    assert np.all(np.diff(starts[found]) == 5e-3 * 30.72e6)
    assert set(starts[found] // 15360) <= {0, 10, 20, 30}  # 0.5 ms slots from the first subframe
    assert np.delete(strongest, found).max() < 0.5


@pytest.mark.parametrize(
    "protocol,options",
    [
        ("nr", {"mu": 0, "pdcch": False, "dmrs_cdm_groups_without_data": 1}),
        ("nr", {"mu": 0, "ssb_period_ms": 5}),
        ("wifi", {}),
    ],
)
@pytest.mark.parametrize("dc_candidates", [0, 3])
def test_the_sync_view_finds_no_lte_pss_in_nr_on_the_same_grid_nor_in_wifi(protocol, options, dc_candidates):
    params = dataclasses.replace(VIEWS["lte_sync_15khz"], dc_candidates=dc_candidates)
    view = sync_of(protocol, 20.0, params=params, bandwidth_hz=10e6 if protocol == "nr" else 20e6, **options).values
    assert view.max() < 0.5


def test_the_sync_view_finds_lte_off_the_middle_of_a_captures_passband_by_its_empty_dc():
    """With dc_candidates the view searches the band's deepest one-subcarrier notches too. A
    20 MS/s capture's noise fills +-8 MHz and sets the band's edges; the cell 2.4 MHz off DC
    sits 160 subcarriers from their middle, past the search, but its empty DC shows it."""
    wf = phy.generate("lte", modulation="QPSK", duration_s=0.017, bandwidth_hz=5e6, rng=np.random.default_rng(4))
    iq = resample_to(wf.iq, wf.sample_rate_hz, 30.72e6)
    iq = iq * np.exp(2j * np.pi * 2.4e6 * np.arange(len(iq)) / 30.72e6)
    passband = np.abs(np.fft.fftfreq(len(iq), 1 / 30.72e6)) < 8e6
    floor = np.fft.ifft(np.fft.fft(noise(len(iq), 4, 10 ** (-10 / 10) * 30.72e6 / wf.sample_rate_hz)) * passband)
    iq = (iq + floor).astype(np.complex64)
    middle_only = view_output(VIEWS["lte_sync_15khz"], iq, 30.72e6).values
    with_dc = view_output(dataclasses.replace(VIEWS["lte_sync_15khz"], dc_candidates=3), iq, 30.72e6).values
    assert middle_only.max() < 0.5 < 0.8 < with_dc.max()


def test_the_sync_view_of_noise_stays_low():
    params = VIEWS["lte_sync_15khz"]
    view = compute_view(params, noise(min_source_samples(params, 30.72e6), 3), 30.72e6)
    assert 0.2 < view.max() < 0.5


@pytest.mark.parametrize(
    "protocol,options,row",
    [
        ("wifi", {}, 0),
        ("lte", {"bandwidth_hz": 10e6}, 1),
        ("nr", {"bandwidth_hz": 10e6, "mu": 0}, 1),
        ("nr", {"bandwidth_hz": 20e6, "mu": 1}, 2),
    ],
)
def test_cp_profile_names_the_numerology_on_the_air(protocol, options, row):
    wf = phy.generate(protocol, duration_s=0.006, rng=np.random.default_rng(1), **options)
    profile = compute_view(VIEWS["cp_profile"], received(wf, 5, 1), wf.sample_rate_hz)
    assert profile.shape == view_shape(VIEWS["cp_profile"])
    assert profile.max(axis=1).argmax() == row
    assert profile[row, 0] > 3 * np.delete(profile[:, 0], row).max()


@pytest.mark.parametrize("rate", [2.4e6, 20e6, 30.72e6])
def test_cp_profile_of_noise_is_flat_and_low(rate):
    params = VIEWS["cp_profile"]
    profile = compute_view(params, noise(min_source_samples(params, rate), 2), rate)
    assert profile.max() < 0.1


# --- the SNR views ------------------------------------------------------------------------------


def lte_at_in_band_snr(snr_db, shift_hz=0.0, gain=1.0, seed=3):
    """LTE 10 MHz at its native 15.36 MS/s with white noise at `snr_db` over its occupied band."""
    wf = phy.generate("lte", bandwidth_hz=10e6, duration_s=0.02, rng=np.random.default_rng(seed))
    rate, occupied = wf.sample_rate_hz, wf.occupied_bw_hz
    shifted = wf.iq * np.exp(2j * np.pi * shift_hz / rate * np.arange(len(wf.iq)))
    noisy = shifted + noise(len(wf.iq), seed, 10 ** (-snr_db / 10) * rate / occupied)
    return (gain * noisy).astype(np.complex64), rate, occupied


@pytest.mark.parametrize("snr_db", [0, 10, 20])
def test_spectral_levels_read_the_in_band_snr_between_the_band_and_the_guard(snr_db):
    iq, rate, _ = lte_at_in_band_snr(snr_db)
    levels = compute_view(VIEWS["spectral_levels"], iq, rate)
    assert levels.shape == view_shape(VIEWS["spectral_levels"]) == (7, 32)
    band_over_guard = levels[0, -3] - levels[0, 2]
    assert band_over_guard == pytest.approx(np.log10(1 + 10 ** (snr_db / 10)), abs=0.15)


def test_spectral_levels_do_not_depend_on_where_the_band_sits_nor_on_the_gain():
    centred = compute_view(VIEWS["spectral_levels"], lte_at_in_band_snr(15)[0], 15.36e6)
    moved = compute_view(VIEWS["spectral_levels"], lte_at_in_band_snr(15, 2e6, gain=30.0)[0], 15.36e6)
    guard_and_band = [0, 2, -3, -1]
    np.testing.assert_allclose(moved[:, guard_and_band], centred[:, guard_and_band], atol=0.06)
    midway = (centred[0, 0] + centred[0, -1]) / 2
    assert abs(np.sum(moved[0] > midway) - np.sum(centred[0] > midway)) <= 1


def test_spectral_levels_show_the_noise_in_the_gaps_of_wifi_traffic():
    """A bursty signal at 20 dB over its band: the low time quantiles of its own bins read the
    gaps' noise, some 20 dB under its bursts; noise alone reads no such spread."""
    wf = phy.generate("wifi", duration_s=0.02, rng=np.random.default_rng(4))
    on = np.abs(wf.iq) > 0
    assert 0.1 < on.mean() < 0.9
    power = np.mean(np.abs(wf.iq[on]) ** 2)
    iq = wf.iq + noise(len(wf.iq), 4, power * 10 ** (-20 / 10) * wf.sample_rate_hz / wf.occupied_bw_hz)
    levels = compute_view(VIEWS["spectral_levels"], iq.astype(np.complex64), wf.sample_rate_hz)
    bursts_over_gaps = levels[6, -1] - levels[1, -1]
    assert bursts_over_gaps > 1.5
    flat = compute_view(VIEWS["spectral_levels"], noise(len(wf.iq), 5), wf.sample_rate_hz)
    assert flat[6, -1] - flat[1, -1] < 1.0
    assert np.abs(flat[0]).max() < 0.05


@pytest.mark.parametrize("rate", [2.4e6, 20e6, 30.72e6])
def test_spread_levels_read_as_many_blocks_as_the_present_view_from_the_start_to_the_end_of_their_span(rate):
    spread, present = VIEWS["spectral_levels_spread"], VIEWS["spectral_levels"]
    starts, block = spread.block_starts(rate), spread.block_samples(rate)
    assert reads_past(spread) and not reads_past(present)
    assert len(starts) == len(present.block_starts(rate))
    assert starts[0] == 0 and starts[-1] + block == min_source_samples(spread, rate) // block * block
    assert np.all(np.diff(starts) >= block)
    assert views.source_regions(spread, rate) == [(start, start + block) for start in starts]


def test_spread_levels_read_the_traffic_of_the_past_125_ms_where_the_present_view_reads_15():
    """LTE at 20 dB over its band for its first 20 ms, the same noise alone after: in the 15 ms
    view the band stands well above the guard in the median block; spread over 125 ms, most
    blocks are quiet and the median block's band is noise, level with the guard."""
    iq, rate, occupied = lte_at_in_band_snr(20)
    spread = VIEWS["spectral_levels_spread"]
    quiet = noise(min_source_samples(spread, rate) - len(iq), 8, 10 ** (-20 / 10) * rate / occupied)
    capture = np.concatenate([iq, quiet])
    present, past = compute_view(VIEWS["spectral_levels"], capture, rate), compute_view(spread, capture, rate)
    median = 1 + SPECTRAL_TIME_QUANTILES.index(0.5)
    assert present[median, -1] - present[median, 0] > 1.0
    assert abs(past[median, -1] - past[median, 0]) < 0.2


def test_spread_levels_spanning_only_what_they_read_are_the_present_view():
    iq, rate, _ = lte_at_in_band_snr(10)
    present = SpectralLevelsParams(span_s=0.01)
    np.testing.assert_array_equal(
        compute_view(SpreadLevelsParams(span_s=0.01, read_s=0.01), iq, rate), compute_view(present, iq, rate)
    )


@pytest.mark.parametrize("snr_db", [0, 10, 20])
def test_cp_snr_reads_the_snr_over_the_capture_band_from_the_cp_of_the_numerology_on_the_air(snr_db):
    iq, rate, occupied = lte_at_in_band_snr(snr_db)
    snr = compute_view(VIEWS["cp_snr"], iq, rate)
    assert snr.shape == view_shape(VIEWS["cp_snr"]) == (1, 4)
    over_capture_band = snr_db / 10 + np.log10(occupied / rate)
    lte_column = list(VIEWS["cp_snr"].numerologies).index(LTE)
    assert snr[0, lte_column] == pytest.approx(over_capture_band, abs=0.2)
    assert snr[0, lte_column] > np.delete(snr[0], lte_column).max() + 0.5


def test_cp_snr_of_noise_reads_far_below_0_db():
    params = VIEWS["cp_snr"]
    assert compute_view(params, noise(min_source_samples(params, 30.72e6), 6), 30.72e6).max() < -1


# --- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: Numerology(20e6, 64, 8, 16, 1), "cp_first"),
        (lambda: OfdmAlignedParams(WIFI, n_subcarriers=48), "must divide n_fft"),
        (lambda: OfdmAlignedParams(WIFI, n_subcarriers=32, subcarrier_stride=4), "exceeds n_fft"),
        (lambda: OfdmAlignedParams(WIFI, n_symbols=63, search_symbols=32), "at least n_symbols"),
        (lambda: OfdmAlignedParams(LTE, n_subcarriers=128, burst_block_symbols=8), "one prefix length"),
        (lambda: OfdmAlignedParams(WIFI, search_symbols=100, burst_block_symbols=8), "multiple of"),
        (lambda: CpProfileParams(span_s=1e-4), "shorter than one period"),
        (lambda: CpProfileParams(numerologies=()), "non-empty"),
        (lambda: CpProfileParams(n_bins=100), "shorter than n_bins"),
        (lambda: OfdmSyncParams(LTE, sequences="nr_pss"), "not one of lte_pss"),
        (lambda: OfdmSyncParams(LTE, search_subcarriers=1000), "reaches past the FFT"),
        (lambda: CpSnrParams(span_s=1e-4), "shorter than one period"),
        (lambda: CpSnrParams(numerologies=()), "non-empty"),
        (lambda: view_from_dict({"name": "spectral_levels", "params": {"n_levels": 1}}), "n_levels"),
        (lambda: SpreadLevelsParams(span_s=0.01, read_s=0.02), "at most span_s"),
    ],
)
def test_inconsistent_parameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_nested_numerology_is_checked_and_named():
    recorded = view_to_dict(VIEWS["ofdm_aligned_15khz"])
    recorded["params"]["numerology"]["n_ftt"] = 2048
    with pytest.raises(ValueError, match=r"numerology.*n_ftt"):
        view_from_dict(recorded)


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_silence_and_a_bare_carrier_give_finite_views(name):
    params = VIEWS[name]
    n = min_source_samples(params, 30.72e6)
    for iq in (np.zeros(n, np.complex64), np.ones(n, np.complex64)):
        view = compute_view(params, iq, 30.72e6)
        assert view.shape == view_shape(params) and np.isfinite(view).all()


# --- one observation's views together -----------------------------------------------------------


def test_names_say_which_registered_view_and_stay_unique():
    aligned = OfdmAlignedParams(WIFI, n_symbols=8, search_symbols=32)
    other = dataclasses.replace(aligned, n_symbols=16)
    assert view_name(VIEWS["ofdm_aligned_15khz"]) == "ofdm_aligned_15khz"
    assert view_names([SMALL_WIDEBAND, aligned, VIEWS["ofdm_aligned_wifi"], other]) == [
        "wideband",
        "ofdm_aligned",
        "ofdm_aligned_wifi",
        "ofdm_aligned_2",
    ]


def test_the_observation_is_as_long_as_its_views_but_the_past_ones():
    rate = 30.72e6
    span = observation_span(list(VIEWS.values()), rate)
    assert span == VIEWS["wideband"].source_window_samples(rate)
    offsets = view_offsets(list(VIEWS.values()), rate)
    past = [name for name in VIEWS if name.startswith("dynamics") or name.endswith("_spread")]
    assert past == ["spectral_levels_spread", "dynamics", "dynamics_wifi", "dynamics_lte", "dynamics_nr"]
    assert all(reads_past(VIEWS[name]) for name in past) and not reads_past(VIEWS["cp_profile"])
    for name in past:
        assert offsets[list(VIEWS).index(name)] == span - min_source_samples(VIEWS[name], rate) < 0
        assert observation_span([VIEWS[name]], rate) == min_source_samples(VIEWS[name], rate)
    assert [o for name, o in zip(VIEWS, offsets) if name not in past] == [0] * (len(VIEWS) - len(past))


@pytest.mark.parametrize("rate", [30.72e6, 20e6])
def test_views_computed_together_are_each_computed_alone(rate):
    """compute_observation shares resampled streams and CP correlations between the views of an
    observation (and runs them in threads): each view and its estimates are those of
    compute_view of the capture from where that view starts, exactly."""
    wf = phy.generate("lte", bandwidth_hz=10e6, modulation="16QAM", duration_s=0.02, rng=np.random.default_rng(6))
    iq = resample_to(received(wf, 15, 6, 0.2, LTE.n_fft * wf.sample_rate_hz / 30.72e6), wf.sample_rate_hz, rate)
    chosen = [v for v in VIEWS.values() if not reads_past(v)]
    start = 1234
    with ThreadPoolExecutor(2) as threads:
        together = compute_observation(chosen, iq, rate, start, executor=threads)
    for params, output in zip(chosen, together):
        alone = view_output(params, iq[start:], rate)
        np.testing.assert_array_equal(output.values, alone.values)
        np.testing.assert_array_equal(output.values, compute_view(params, iq[start:], rate))
        assert output.estimates.keys() == alone.estimates.keys()
        for key, value in output.estimates.items():
            np.testing.assert_array_equal(value, alone.estimates[key])
    aligned = together[chosen.index(VIEWS["ofdm_aligned_15khz"])].estimates
    assert len(aligned["symbol_starts"]) == VIEWS["ofdm_aligned_15khz"].n_symbols
    assert aligned["cfo_subcarriers"] == pytest.approx(0.2, abs=0.03)


def test_views_computed_in_stages_are_those_computed_together():
    """Staged (`lead`, then what `then` names, as a router and its expert), each view computed is
    the view computed with all the others, though the later views' resampled streams and CP
    correlations are formed once they are known; the views neither names are None."""
    wf = phy.generate("wifi", bandwidth_hz=20e6, modulation="16QAM", duration_s=0.02, rng=np.random.default_rng(7))
    iq = resample_to(received(wf, 15, 7, 0.1, 64), wf.sample_rate_hz, 30.72e6)
    names = ["cp_profile", "ofdm_pattern_15khz", "ofdm_constellation_wifi", "ofdm_constellation_30khz", "wideband"]
    chosen = [VIEWS[name] for name in names]
    together = compute_observation(chosen, iq, 30.72e6, 99)
    seen = []

    def then(outputs):
        seen.append([output is not None for output in outputs])
        return [2]

    with ThreadPoolExecutor(2) as threads:
        staged = compute_observation(chosen, iq, 30.72e6, 99, executor=threads, lead=[0, 1], then=then)
    assert seen == [[True, True, False, False, False]]
    assert [output is not None for output in staged] == [True, True, True, False, False]
    for output, whole in zip(staged[:3], together[:3]):
        np.testing.assert_array_equal(output.values, whole.values)


@pytest.mark.parametrize("periods", [21, 128])  # added row by row, and reduced from the first
def test_prefix_folds_are_the_same_numbers_whichever_lengths_were_asked_before(periods):
    """The CP correlation's folds: any prefix summed modulo the period, the numbers of a fold
    asked alone whatever the same PrefixFolds (shared by the views of a capture) formed before."""
    period = 96
    x = noise(periods * period + period // 2, seed=8)
    lengths = [period // 3, period, 5 * period + 7, len(x) // 2, len(x)]
    alone = [PrefixFolds(x, period).fold(length) for length in lengths]
    shared = PrefixFolds(x, period)
    for length, fold in reversed(list(zip(lengths, alone))):
        np.testing.assert_array_equal(shared.fold(length), fold)
        padded = np.concatenate([x[:length], np.zeros(-length % period, x.dtype)]).astype(np.complex128)
        np.testing.assert_allclose(fold, padded.reshape(-1, period).sum(axis=0), rtol=1e-9, atol=1e-9)


def test_a_view_of_the_past_reads_the_span_ending_with_the_observation_and_is_absent_before_it():
    rate = 30.72e6
    chosen = [VIEWS["wideband"], VIEWS["dynamics"]]
    span, past = observation_span(chosen, rate), min_source_samples(VIEWS["dynamics"], rate)
    iq = noise(past + span, seed=3)
    early, late = (compute_observation(chosen, iq, rate, start) for start in (past - span - 1, past - span))
    assert early[1] is None and early[0] is not None
    np.testing.assert_array_equal(late[1].values, compute_view(VIEWS["dynamics"], iq[:past], rate))
    np.testing.assert_array_equal(late[0].values, compute_view(VIEWS["wideband"], iq[past - span :], rate))


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
@pytest.mark.parametrize(
    ("symbols", "subcarriers", "wrap"), [(7, 13, True), (9, 7, False), (1, 4, False), (6, 1, False)]
)
def test_the_grid_mean_is_scipys_uniform_filter(dtype, symbols, subcarriers, wrap):
    rng = np.random.default_rng(1)
    grid = rng.standard_normal((40, 96)).astype(np.float32)
    if dtype is np.complex64:
        grid = (grid + 1j * rng.standard_normal((40, 96))).astype(np.complex64)
    expected = scipy.ndimage.uniform_filter(
        grid, (symbols, subcarriers), mode=("nearest", "wrap" if wrap else "nearest")
    )
    mean = views._grid_mean(grid, symbols, subcarriers, wrap=wrap)
    assert mean.dtype == grid.dtype
    np.testing.assert_allclose(mean, expected, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_the_runs_grid_mean_is_the_grid_mean_of_each_run_on_its_own(dtype):
    """Runs of 1 to 40 symbols (packets, blocks timed apart), each averaged over at most 9 of its
    own symbols: the same numbers as a _grid_mean per run."""
    rng = np.random.default_rng(2)
    lengths = np.array([1, 3, 9, 40, 2, 12, 1, 5])
    grid = rng.standard_normal((lengths.sum(), 64)).astype(np.float32)
    if dtype is np.complex64:
        grid = (grid + 1j * rng.standard_normal(grid.shape)).astype(np.complex64)
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    mean = views._runs_grid_mean(grid, firsts, 9, 3)
    for first, length in zip(firsts, lengths):
        run = grid[first : first + length]
        np.testing.assert_array_equal(mean[first : first + length], views._grid_mean(run, min(9, length), 3))
    assert mean.dtype == grid.dtype


@pytest.mark.parametrize(
    "columns",
    [
        np.arange(100, 612),  # a band inside the FFT
        np.arange(-300, 300) % 2048,  # round the FFT's ends, as a band on DC is kept
        np.arange(-512, 512, 2) % 2048,  # every second subcarrier, round the ends
        np.array([7]),
        np.array([5, 1, 9]),  # not evenly spaced: indexed as given
    ],
)
def test_columns_are_the_indexed_columns_as_a_new_contiguous_array(columns):
    rng = np.random.default_rng(4)
    grid = (rng.standard_normal((30, 2048)) + 1j * rng.standard_normal((30, 2048))).astype(np.complex64)
    taken = views._columns(grid, columns)
    np.testing.assert_array_equal(taken, grid[:, columns])
    assert taken.flags["C_CONTIGUOUS"] and not np.shares_memory(taken, grid)


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"}


@pytest.mark.parametrize("parallel", [False, True])
def test_views_keep_blas_to_the_calling_thread_and_give_its_threads_back_after(monkeypatch, parallel):
    """BLAS threads on the other cores spin between the views' small products, taking the core
    the model needs; the process's own setting is back once the observation's views are done."""
    seen: list[set[int]] = []
    compute = views._compute

    def recording(params, capture):
        seen.append(_blas_threads())
        return compute(params, capture)

    monkeypatch.setattr(views, "_compute", recording)
    chosen = [VIEWS["wideband"], VIEWS["cp_profile"], VIEWS["ofdm_aligned_15khz"]]
    iq = noise(observation_span(chosen, 30.72e6) + 100_000, seed=3)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        executor = ThreadPoolExecutor(2) if parallel else None
        views.compute_observation(chosen, iq, 30.72e6, executor=executor)
        views.view_output(VIEWS["cp_profile"], iq, 30.72e6)
        after = _blas_threads()
    assert seen and all(threads == {1} for threads in seen)
    assert after == {2}


def narrowband_of(iq, rate):
    return compute_view(VIEWS["narrowband"], iq, rate)


def test_a_tone_too_narrow_for_g_stands_out_of_its_band_in_the_narrowband_view():
    """A tone at 0 dB over 15 kHz: some -12 dB in one of G's 240 kHz bins, 7 dB over the bins
    around it here, in the band at its frequency; noise alone stays near 3 dB in every band."""
    rate = 30.72e6
    n = min_source_samples(VIEWS["narrowband"], rate)
    tone = np.sqrt(15e3 / rate) * np.exp(2j * np.pi * 3.1e6 * np.arange(n) / rate)
    alone = narrowband_of(noise(n), rate)
    with_tone = narrowband_of((noise(n) + tone).astype(np.complex64), rate)
    assert alone.shape == with_tone.shape == view_shape(VIEWS["narrowband"]) == (2, 128)
    band = 64 + int(3.1e6 / (rate / 128))
    assert np.argmax(with_tone[0]) == band and with_tone[0, band] > 6.0
    assert alone[0].max() < 4.5 and np.delete(with_tone[0], band).max() < 4.5
    np.testing.assert_allclose(alone[1], 0.0, atol=1.0)


def test_the_captures_dc_spike_does_not_read_as_a_tone_where_a_cw_beside_it_does():
    """A receiver's carrier leak at DC, 20 dB over the noise's bins, is left out of row 0; a CW at
    5 dB half a band above DC stands out in that same band."""
    rate = 30.72e6
    n = min_source_samples(VIEWS["narrowband"], rate)
    spike = np.full(n, np.sqrt(100 / views.NarrowbandParams().n_fft), np.complex64)
    tone_hz = 120e3
    tone = np.sqrt(10**0.5 * 15e3 / rate) * np.exp(2j * np.pi * tone_hz * np.arange(n) / rate)
    with_spike = narrowband_of((noise(n) + spike).astype(np.complex64), rate)
    assert with_spike[0].max() < 4.5
    with_tone = narrowband_of((noise(n) + spike + tone).astype(np.complex64), rate)
    assert np.argmax(with_tone[0]) == 64 + int(tone_hz / (rate / 128)) and with_tone[0].max() > 8.0


def test_a_record_written_before_the_dc_guard_reads_as_made_without_it_and_a_hand_config_gets_the_guard():
    recorded = views.view_to_dict(VIEWS["narrowband"])
    del recorded["params"]["dc_guard_bins"]
    assert views.view_from_dict(recorded).dc_guard_bins == 0
    assert views.view_from_dict(recorded, record=False) == VIEWS["narrowband"]
    assert views.view_from_dict(views.view_to_dict(VIEWS["narrowband"])) == VIEWS["narrowband"]


def test_a_dc_guard_wider_than_the_fft_is_refused():
    with pytest.raises(ValueError, match=r"dc_guard_bins \(40\) leaves out more than the 64 bins"):
        views.NarrowbandParams(n_fft=64, n_bands=8, dc_guard_bins=40)


@pytest.mark.parametrize("rate", [2e6, 20e6, 61.44e6])
def test_a_capture_narrower_or_wider_than_the_analysis_rate_shows_no_false_tone(rate):
    """Noise at other source rates: resampled to 30.72 MS/s, a narrower capture's filter edge
    slopes across a band and leaves its stopband empty, and neither reads as a tone; the empty
    bands' level is floored."""
    view = narrowband_of(noise(min_source_samples(VIEWS["narrowband"], rate)), rate)
    assert np.isfinite(view).all() and view[0].max() < 4.5
    assert view[1].max() == 0.0 and view[1].min() >= -views.NARROWBAND_RANGE_DB
    if rate < 30.72e6:
        stopband = view[1] == -views.NARROWBAND_RANGE_DB
        assert stopband.any() and not view[0][stopband].any()
