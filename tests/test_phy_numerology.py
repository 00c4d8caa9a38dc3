"""Numerology measured from the generated waveforms: FFT size and CP lengths by CP
autocorrelation, subcarrier spacing, occupied bandwidth from the PSD; power, length, determinism
and bad input."""

import numpy as np
import pytest
import scipy.signal

from lwmspectro import labels
from lwmspectro.phy import generate, options

# The standards' values, written out here rather than read from the package.
LTE = {1.4e6: 128, 3e6: 256, 5e6: 512, 10e6: 1024, 15e6: 1536, 20e6: 2048}  # 15 kHz, fs = N x 15 kHz
NR = {(0, 5e6): 512, (0, 10e6): 1024, (0, 15e6): 1536, (0, 20e6): 2048, (1, 10e6): 512, (1, 15e6): 768, (1, 20e6): 1024}

CASES = (
    [("wifi", 20e6, {}, "64QAM", "3/4"), ("wifi", 20e6, {}, "256QAM", "3/4")]
    + [("lte", bw, {"load": 1.0}, "16QAM", "1/2") for bw in LTE]
    + [
        ("nr", bw, {"mu": mu, "load": 1.0, "dmrs_cdm_groups_without_data": 1, "pdcch": True}, "64QAM", "2/3")
        for mu, bw in NR
    ]
)
"""Full load: every symbol carries REs, so every cyclic prefix shows as a run (for NR, with PDSCH
on every RE of the DMRS symbols too: a DMRS symbol of every other subcarrier alone repeats
itself after half a symbol; and with PDCCH, so that symbol 0 and its long prefix are never empty)."""


def expected_numerology(protocol, bw, opts):
    """(FFT size, subcarrier spacing, CP lengths that must appear, long-CP share)."""
    if protocol == "wifi":
        return 64, 312.5e3, {16}, None
    if protocol == "lte":
        n = LTE[bw]
        return n, 15e3, {160 * n // 2048, 144 * n // 2048}, 1 / 7
    mu = opts["mu"]
    n = NR[(mu, bw)]
    short = 144 * n // 2048
    return n, 15e3 * 2**mu, {short, short + 16 * n * 2**mu // 2048}, 1 / (7 * 2**mu)


def fft_size_by_autocorrelation(iq, lags=range(24, 4097)):
    """The lag at which the waveform best correlates with itself: the CP repeats the symbol end."""
    x = iq[:200_000]
    spectrum = np.fft.fft(x, 2 * len(x))
    r = np.abs(np.fft.ifft(np.abs(spectrum) ** 2))
    lags = np.array(lags)
    return int(lags[np.argmax(r[lags])])


def cp_run_lengths(iq, n_fft):
    """Lengths of the runs where x[n] == x[n + N]: each is one cyclic prefix."""
    rms = np.sqrt(np.mean(np.abs(iq) ** 2))
    same = (np.abs(iq[:-n_fft] - iq[n_fft:]) < 1e-4 * rms) & (np.abs(iq[:-n_fft]) > 1e-3 * rms)
    edges = np.diff(np.r_[0, same.astype(np.int8), 0])
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    runs = (stops - starts)[1:-1]  # the first and last may be cut by the window
    values, counts = np.unique(runs, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def occupied_bandwidth(iq, fs, resolution_hz):
    """Span of the PSD bins within 10 dB of the in-band median."""
    nperseg = int(2 ** np.ceil(np.log2(fs / resolution_hz)))
    f, p = scipy.signal.welch(iq, fs=fs, nperseg=nperseg, return_onesided=False, detrend=False)
    f, p = np.fft.fftshift(f), np.fft.fftshift(p)
    strong = p > np.median(p[p > 0.01 * p.max()]) / 10
    return f[strong].max() - f[strong].min() + fs / nperseg


@pytest.mark.parametrize("protocol,bw,opts,modulation,rate", CASES)
def test_numerology_measured_from_waveform(protocol, bw, opts, modulation, rate):
    wf = generate(
        protocol,
        bandwidth_hz=bw,
        modulation=modulation,
        code_rate=rate,
        duration_s=0.003,
        rng=np.random.default_rng(11),
        **opts,
    )
    n_fft, scs, cps, long_share = expected_numerology(protocol, bw, opts)
    measured_n = fft_size_by_autocorrelation(wf.iq)
    assert measured_n == n_fft
    assert wf.sample_rate_hz / measured_n == pytest.approx(scs)
    runs = cp_run_lengths(wf.iq, measured_n)
    common = sorted(runs, key=runs.get, reverse=True)[: len(cps)]
    assert set(common) == cps
    if long_share is not None:
        long_cp = max(cps)
        assert runs[long_cp] / (runs[long_cp] + runs[min(cps)]) == pytest.approx(long_share, abs=0.03)
    measured_bw = occupied_bandwidth(wf.iq, wf.sample_rate_hz, scs / 4)
    assert abs(measured_bw - wf.occupied_bw_hz) < 3 * scs
    assert wf.occupied_bw_hz < bw


def test_occupied_bandwidth_labels_follow_the_standards():
    rng = np.random.default_rng(0)
    assert generate(
        "lte", bandwidth_hz=20e6, modulation="QPSK", code_rate="1/2", duration_s=0.001, rng=rng
    ).occupied_bw_hz == pytest.approx(1201 * 15e3)
    assert generate(
        "nr", bandwidth_hz=20e6, mu=1, modulation="QPSK", code_rate="1/2", duration_s=0.001, rng=rng
    ).occupied_bw_hz == pytest.approx(51 * 12 * 30e3)
    assert generate(
        "wifi", modulation="BPSK", code_rate="1/2", duration_s=0.001, rng=rng
    ).occupied_bw_hz == pytest.approx(53 * 312.5e3)


@pytest.mark.parametrize("max_band_hz", [None, 1.6e6])
@pytest.mark.parametrize("kind", ["sc_psk", "sc_qam", "fm", "cw", "ofdm_other", "chirp"])
def test_other_signals_sit_inside_their_labelled_band(kind, max_band_hz):
    wf = generate("other", kind=kind, duration_s=0.004, rng=np.random.default_rng(4), max_band_hz=max_band_hz)
    f, p = scipy.signal.welch(wf.iq, fs=wf.sample_rate_hz, nperseg=8192, return_onesided=False, detrend=False)
    centre = wf.meta["offset_hz"]
    inside = np.abs(f - centre) <= wf.occupied_bw_hz / 2 + wf.sample_rate_hz / 8192
    assert p[inside].sum() / p.sum() > 0.95
    if kind.startswith("sc"):
        assert wf.modulation in {"sc_psk": ("BPSK", "QPSK"), "sc_qam": ("16QAM", "64QAM")}[kind]
        assert 0.5e6 * 0.99 <= wf.meta["symbol_rate_hz"] <= 10e6 * 1.01
        assert not wf.active.all() and not np.any(wf.iq[~wf.active])  # bursts with silence between


NARROW_PASSBANDS_HZ = (1.6e6, 1.9e6, 2.28e6, 3.04e6)
"""Passbands of captures at 2-3.2 MS/s (80-95 % of the rate), narrower than many `other` signals."""


@pytest.mark.parametrize("kind", labels.OTHER_KINDS)
def test_other_signals_drawn_for_a_narrow_passband_lie_inside_it_and_still_span_widths(kind):
    for band in NARROW_PASSBANDS_HZ:
        widths = []
        for seed in range(30):
            wf = generate("other", kind=kind, duration_s=0.001, rng=np.random.default_rng(seed), max_band_hz=band)
            assert wf.occupied_centre_hz == wf.meta["offset_hz"]
            assert abs(wf.occupied_centre_hz) + wf.occupied_bw_hz / 2 <= band / 2 * (1 + 1e-12), (band, seed)
            widths.append(wf.occupied_bw_hz)
        if kind in ("sc_psk", "sc_qam", "ofdm_other", "chirp"):  # up to 10-25 MHz wide when nothing limits them
            assert min(widths) < 0.7 * band and max(widths) > 0.85 * band
        elif kind == "fm":
            assert max(widths) > 3 * min(widths)


def test_other_signals_refuse_a_band_too_narrow_for_them():
    with pytest.raises(ValueError, match="max_band_hz must be at least 50000 Hz"):
        generate("other", kind="fm", duration_s=0.001, rng=np.random.default_rng(0), max_band_hz=10e3)


@pytest.mark.parametrize("protocol", labels.PROTOCOLS + ("other",))
def test_power_length_and_dtype(protocol):
    wf = generate(protocol, duration_s=0.002, rng=np.random.default_rng(8))
    assert wf.iq.dtype == np.complex64 and wf.active.dtype == bool
    assert len(wf.iq) == len(wf.active) == int(np.ceil(0.002 * wf.sample_rate_hz))
    assert np.mean(np.abs(wf.iq[wf.active]) ** 2) == pytest.approx(1.0, abs=1e-4)
    assert wf.coding == {"wifi": "bcc", "lte": "turbo", "nr": "ldpc", "other": "none"}[protocol]


@pytest.mark.parametrize("protocol", labels.PROTOCOLS + ("other",))
def test_same_seed_same_waveform_other_seed_differs(protocol):
    a = generate(protocol, duration_s=0.002, rng=np.random.default_rng(21))
    b = generate(protocol, duration_s=0.002, rng=np.random.default_rng(21))
    c = generate(protocol, duration_s=0.002, rng=np.random.default_rng(22))
    assert a.iq.tobytes() == b.iq.tobytes() and a.meta == b.meta
    assert a.iq.tobytes() != c.iq.tobytes()


def test_random_start_inside_the_frame():
    starts = {
        generate(
            "lte",
            bandwidth_hz=1.4e6,
            modulation="QPSK",
            code_rate="1/2",
            duration_s=0.001,
            rng=np.random.default_rng(s),
        ).meta["start_sample"]
        for s in range(6)
    }
    assert len(starts) == 6 and max(starts) < 10 * 1920


def test_options_list_what_each_standard_allows():
    assert options("wifi")["code_rate"]["256QAM"] == ["3/4"]
    assert options("lte")["bandwidth_hz"] == [1.4e6, 3e6, 5e6, 10e6, 15e6, 20e6]
    assert options("nr")["bandwidth_hz"] == [5e6, 10e6, 15e6, 20e6]
    assert options("nr")["dmrs_cdm_groups_without_data"] == {"1": [1, 2], "2": [1, 2, 3]}
    assert "BPSK" not in options("nr")["modulation"]
    for protocol in labels.PROTOCOLS:
        opts = options(protocol)
        assert opts["modulation"] == list(labels.ALLOWED_MODULATIONS[protocol])
        assert all(opts["code_rate"][m] for m in opts["modulation"])
    assert options("other")["kind"] == list(labels.OTHER_KINDS)


@pytest.mark.parametrize(
    "call,needle",
    [
        (dict(protocol="bluetooth"), "valid choices: wifi, lte, nr, other"),
        (dict(protocol="lte", modulation="BPSK"), "QPSK, 16QAM, 64QAM, 256QAM"),
        (dict(protocol="nr", bandwidth_hz=7e6), "5000000.0, 10000000.0, 15000000.0, 20000000.0"),
        (dict(protocol="wifi", modulation="256QAM", code_rate="5/6"), "valid choices: 3/4"),
        (dict(protocol="nr", bandwidth_hz=5e6, mu=1), "valid choices: 0"),
        (dict(protocol="lte", kind="cw"), "cw, sc_psk, sc_qam, fm, ofdm_other, chirp"),
        (dict(protocol="other", kind="radar"), "cw, sc_psk, sc_qam, fm, ofdm_other, chirp"),
        (dict(protocol="other", kind="cw", modulation="QPSK"), "valid choices: None"),
        (dict(protocol="lte", cell_id=600), "0..503"),
        (dict(protocol="wifi", antennas=2), "valid: psdu_bytes"),
        (dict(protocol="lte", duration_s=0.0), "positive"),
    ],
)
def test_bad_input_names_the_valid_choices(call, needle):
    call = dict(call)
    protocol = call.pop("protocol")
    call.setdefault("duration_s", 0.001)
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        generate(protocol, rng=np.random.default_rng(0), **call)
