"""The `other` class's OFDM of a non-standard numerology and its chirps: the cyclic prefix
correlates at the signal's own FFT size and at none of WiFi's, LTE's or NR's; the drawn
numerology, band and timing stay inside their ranges; chirps sweep linearly; every waveform
that pauses shows a transmission long enough for the spectrogram's frames to catch it."""

import numpy as np
import pytest

from lwmspectro import ofdm_sync
from lwmspectro.phy import generate, other
from lwmspectro.resample import resample_to

STANDARD_NUMEROLOGIES = {
    "LTE / NR 15 kHz": ofdm_sync.LTE,
    "NR 30 kHz": ofdm_sync.NR_30KHZ,
    "NR 60 kHz": ofdm_sync.NR_60KHZ,
    "WiFi": ofdm_sync.WIFI,
}


def ofdm_other(seed, duration_s=0.016):
    return generate("other", kind="ofdm_other", duration_s=duration_s, rng=np.random.default_rng(seed))


def cp_peak(iq, sample_rate_hz, numerology):
    """Largest CP correlation coefficient, the signal brought to the numerology's rate first."""
    iq = resample_to(iq, sample_rate_hz, numerology.sample_rate_hz)
    return float(ofdm_sync.cp_correlation(iq, numerology).coefficient.max())


def own_numerology(wf):
    cp = wf.meta["cp_samples"]
    return ofdm_sync.Numerology(wf.sample_rate_hz, wf.meta["n_fft"], cp, cp, 1)


@pytest.mark.parametrize("seed", range(6))
def test_cp_correlates_at_its_own_fft_size_and_at_no_standard_one(seed):
    wf = next(w for w in map(ofdm_other, range(seed * 20, seed * 20 + 20)) if w.meta["cp_samples"] > 0)
    assert cp_peak(wf.iq, wf.sample_rate_hz, own_numerology(wf)) > 0.9
    for name, numerology in STANDARD_NUMEROLOGIES.items():
        assert cp_peak(wf.iq, wf.sample_rate_hz, numerology) < 0.2, name


def test_a_standard_signal_does_correlate_at_its_numerology():
    lte = generate("lte", bandwidth_hz=20e6, duration_s=0.016, rng=np.random.default_rng(0), load=1.0)
    assert cp_peak(lte.iq, lte.sample_rate_hz, ofdm_sync.LTE) > 0.9


def test_numerology_band_and_prefix_stay_in_their_ranges_and_away_from_the_standards():
    metas = [ofdm_other(seed, duration_s=0.002) for seed in range(40)]
    spacings = np.array([wf.meta["subcarrier_spacing_hz"] for wf in metas])
    assert spacings.min() >= 0.95 * 5e3 and spacings.max() <= 1.05 * 500e3
    for standard in (312.5e3, 78.125e3, 7.5e3, 15e3, 30e3, 60e3, 120e3):
        assert np.all(np.abs(spacings / standard - 1) > 0.1)
    for wf in metas:
        assert wf.meta["n_fft"] * wf.meta["subcarrier_spacing_hz"] == pytest.approx(wf.sample_rate_hz)
        cp_fraction = wf.meta["cp_samples"] / wf.meta["n_fft"]
        assert cp_fraction == 0 or 1 / 32 - 1 / wf.meta["n_fft"] <= cp_fraction <= 1 / 4 + 1 / wf.meta["n_fft"]
        assert (
            1e6 - wf.meta["subcarrier_spacing_hz"] <= wf.occupied_bw_hz <= 25e6 + 2 * wf.meta["subcarrier_spacing_hz"]
        )
        assert wf.modulation in ("BPSK", "QPSK", "16QAM", "64QAM")
    assert {wf.meta["cp_samples"] > 0 for wf in metas} == {True, False}
    assert spacings.max() / spacings.min() > 20


def test_continuous_or_in_bursts_silent_between():
    waveforms = [ofdm_other(seed, duration_s=0.01) for seed in range(16)]
    continuous = [wf for wf in waveforms if wf.meta["continuous"]]
    bursty = [wf for wf in waveforms if not wf.meta["continuous"]]
    assert continuous and bursty
    assert all(wf.active.all() for wf in continuous)
    for wf in bursty:
        assert not wf.active.all() and not np.any(wf.iq[~wf.active])


def test_fmcw_sweeps_ramp_linearly_across_their_band():
    wf = next(
        w
        for w in (generate("other", kind="chirp", duration_s=0.004, rng=np.random.default_rng(s)) for s in range(20))
        if w.meta["style"] == "fmcw"
    )
    on = wf.iq[wf.active]
    frequency = np.angle(on[1:] * np.conj(on[:-1])) * wf.sample_rate_hz / (2 * np.pi)
    step = np.diff(frequency)
    sweep, period = wf.meta["sweep_hz"], wf.meta["sweep_us"] * 1e-6
    slope = np.median(step) * wf.sample_rate_hz  # the ramp, off the flybacks
    assert slope == pytest.approx((1 if wf.meta["up"] else -1) * sweep / period, rel=0.02)
    low, high = np.percentile(frequency, [0.5, 99.5])
    assert high - low == pytest.approx(sweep, rel=0.05)
    assert (high + low) / 2 == pytest.approx(wf.meta["offset_hz"], abs=0.05 * sweep)


def test_lora_like_symbols_wrap_inside_their_band():
    wf = next(
        w
        for w in (generate("other", kind="chirp", duration_s=0.01, rng=np.random.default_rng(s)) for s in range(20))
        if w.meta["style"] == "lora"
    )
    on = wf.iq[wf.active]
    frequency = np.angle(on[1:] * np.conj(on[:-1])) * wf.sample_rate_hz / (2 * np.pi) - wf.meta["offset_hz"]
    steady = frequency[np.abs(np.diff(np.r_[frequency[0], frequency])) < 1e3]  # off the wraps
    bw = wf.meta["chirp_bw_hz"]
    assert steady.min() == pytest.approx(-bw / 2, abs=0.02 * bw) and steady.max() == pytest.approx(
        bw / 2, abs=0.02 * bw
    )
    assert wf.occupied_bw_hz == bw and wf.modulation is None


def test_other_kinds_are_listed_with_their_modulations():
    opts = other.options()
    assert opts["kind"][-2:] == ["ofdm_other", "chirp"]
    assert set(other.KIND_MODULATIONS["ofdm_other"]) <= set(opts["modulation"])


@pytest.mark.parametrize("kind", ["ofdm_other", "chirp"])
def test_every_window_holds_a_transmission_the_spectrogram_sees(kind):
    for seed in range(30):
        wf = generate("other", kind=kind, duration_s=0.016, rng=np.random.default_rng(seed))
        edges = np.diff(np.r_[0, wf.active.astype(np.int8), 0])
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        assert runs.max() >= 0.2e-3 * wf.sample_rate_hz
