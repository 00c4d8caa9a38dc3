"""The sent-power views: each protocol's view of what it sends at a fixed power keeps one level
while its traffic comes and goes, and still moves with the channel's fading."""

import dataclasses

import numpy as np
import pytest
from waveforms import clean_waveform

from lwmspectro import dynamics, synth, views
from lwmspectro.channels.mobility import speed_for_doppler
from lwmspectro.dynamics import SentPowerParams, SnippetHistory, sent_power_from_measures
from lwmspectro.framer import ObservationFramer

TODAY = views.VIEWS["dynamics"]
N_LAGS = len(TODAY.lags)
CHANGE_ROWS = slice(1, 2 * N_LAGS + 1)


def sent_power(protocol, iq, rate=30.72e6):
    """(power, where it counts) of a capture, as the view reads them before its rows."""
    params = views.VIEWS[f"dynamics_{protocol}"]
    return sent_power_from_measures(params, SnippetHistory().measures(params, iq, rate, 0))


def spanned(power, on):
    """The subbands the signal holds."""
    on = np.broadcast_to(on.reshape(len(power), -1), power.shape)
    mean = np.where(on, power, 0).sum(axis=0) / np.maximum(on.sum(axis=0), 1)
    return mean > 0.05 * mean.max()


def test_the_registered_views_span_the_dynamics_view_read_under_half_of_it_and_round_trip():
    for protocol in ("wifi", "lte", "nr"):
        params = views.VIEWS[f"dynamics_{protocol}"]
        assert params.shape == TODAY.shape and views.reads_past(params)
        assert abs(params.span_s - TODAY.span_s) < 1e-3
        read = sum(b - a for a, b in views.source_regions(params, 30.72e6))
        assert read < 0.4 * params.window_samples
        assert views.view_from_dict(views.view_to_dict(params)) == params
        assert views.view_name(params) == f"dynamics_{protocol}"
    with pytest.raises(ValueError, match="protocol"):
        SentPowerParams(protocol="gsm")
    with pytest.raises(ValueError, match="read_samples"):
        SentPowerParams(protocol="lte", read_samples=8000, wifi_frames=16)
    with pytest.raises(ValueError, match="do not fit"):
        SentPowerParams(protocol="wifi", wifi_frames=45)
    with pytest.raises(ValueError, match="n_subbands"):
        SentPowerParams(n_subbands=24)


def test_lte_reference_signals_keep_their_level_whatever_the_cell_schedules():
    """A cell at 20 % load switches its resource blocks every subframe, so today's view reads
    several dB of change with no motion at all; its cell reference signals, found on their comb
    at the slot timing folded over each group's reads, keep one power in every subband."""
    waveform = clean_waveform("lte", 5, load=0.2, cell_id=7, crs_ports=1)
    power, on = sent_power("lte", waveform.iq)
    inside = spanned(power, on)
    assert on.all() and inside.sum() >= 18
    swing = 10 * np.log10(power[:, inside].max(axis=0) / power[:, inside].min(axis=0))
    assert swing.max() < 0.5
    view = views.compute_view(views.VIEWS["dynamics_lte"], waveform.iq, 30.72e6)
    today = views.compute_view(TODAY, waveform.iq, 30.72e6)
    assert np.percentile(view[CHANGE_ROWS, :18], 90) < 0.1 and view[CHANGE_ROWS, :18].max() < 0.5
    assert today[N_LAGS + 1 :, :18].mean() > 3


def test_an_lte_cell_off_the_captures_centre_keeps_its_reference_signals_level_on_both_sides_of_dc():
    """Tuned 3 MHz and 4 kHz off the cell's carrier: the comb of the bins changes at the cell's
    DC subcarrier, not at the capture's, and each subband's comb is found where it is."""
    waveform = clean_waveform("lte", 5, load=0.2, cell_id=7, crs_ports=1)
    n = np.arange(len(waveform.iq))
    shifted = (waveform.iq * np.exp(2j * np.pi * (3e6 + 4e3) * n / waveform.sample_rate_hz)).astype(np.complex64)
    power, on = sent_power("lte", shifted)
    inside = np.flatnonzero(spanned(power, on))[1:-1]  # the band's edges fill their subbands in part
    assert on.all() and len(inside) >= 16
    swing = 10 * np.log10(power[:, inside].max(axis=0) / power[:, inside].min(axis=0))
    # The subband that holds the cell's DC has half its bins on each of two combs.
    assert np.sort(swing)[-2] < 0.1 and swing.max() < 1.5


def test_wifi_busy_frames_keep_the_packets_level_and_idle_milliseconds_drop_out():
    """A medium busy in a few milliseconds of the 128: the frames inside its packets keep one
    power in each subband and the idle milliseconds are left out, where today's view counts
    their noise as signal (its gate is set at the 90th percentile of the snippets) and reads
    the noise's change."""
    waveform = clean_waveform("wifi", 5)
    rate = waveform.sample_rate_hz
    per_ms = int(rate * 1e-3)
    iq = waveform.iq.copy()
    busy = np.zeros(len(iq) // per_ms + 1, bool)
    busy[[3, 4, 40, 41, 42, 90, 120]] = True
    iq *= np.repeat(busy, per_ms)[: len(iq)]
    iq += (1e-3 * np.array([1, 1j]) @ np.random.default_rng(1).standard_normal((2, len(iq)))).astype(np.complex64)
    power, on = sent_power("wifi", iq, rate)
    assert 3 <= on.sum() <= busy.sum() and not on[5:40].any()
    inside = spanned(power, on)
    counted = power[on][:, inside]
    assert inside.sum() >= 16 and (10 * np.log10(counted.max(axis=0) / counted.min(axis=0))).max() < 3
    view = views.compute_view(views.VIEWS["dynamics_wifi"], iq, rate)
    today = views.compute_view(TODAY, iq, rate)
    assert view[CHANGE_ROWS, :16].max() < 1.5 and (view[0] > -3).sum() >= 16
    assert today[CHANGE_ROWS, :16].mean() > 2 * view[CHANGE_ROWS, :16].mean()


@pytest.mark.parametrize("mu", [0, 1])
def test_nr_scheduled_blocks_keep_their_level_whatever_the_slot_schedules(mu):
    """An NR carrier at 30 % load schedules other resource blocks in each slot; its blocks, each
    counted where scheduled, at the subcarrier spacing found from the prefixes, keep one level
    in most subbands (the 12-subcarrier blocks are not aligned to the grid's resource blocks,
    so a subband at an allocation's or the band's edge may not)."""
    waveform = clean_waveform("nr", 6, mu=mu, load=0.3)
    view = views.compute_view(views.VIEWS["dynamics_nr"], waveform.iq, waveform.sample_rate_hz)
    today = views.compute_view(TODAY, waveform.iq, waveform.sample_rate_hz)
    lag_1_median = N_LAGS + 1
    signal = view[0] > -20
    assert signal.sum() >= 16
    assert np.median(view[lag_1_median, signal]) < 0.5
    assert np.median(today[lag_1_median, :16]) > 3 * np.median(view[lag_1_median, signal])


def faded(protocol, doppler_hz, seed):
    config = synth.GeneratorConfig(classes={protocol: 1.0}, channel="TDL-C", snr_db=[25])
    spec = synth.draw_spec(config, seed)
    spec = dataclasses.replace(spec, speed_kmh=speed_for_doppler(doppler_hz, spec.carrier_hz), mobility="static")
    params = views.VIEWS[f"dynamics_{protocol}"]
    iq, _ = synth.make_stream(spec, n_samples=params.window_samples + 4096)
    return views.compute_view(params, iq, 30.72e6)


@pytest.mark.parametrize("protocol", ["wifi", "lte", "nr"])
def test_faster_fading_changes_the_sent_power_sooner(protocol):
    lag_1_quartile = 1
    static = np.mean([faded(protocol, 0, seed)[lag_1_quartile, :8].mean() for seed in (3, 4)])
    fast = np.mean([faded(protocol, 300, seed)[lag_1_quartile, :8].mean() for seed in (3, 4)])
    assert fast > 2 * static


SHORT = SentPowerParams(protocol="nr", n_snippets=48, lags=(1, 2, 4))
"""A sent-power view of 3 groups of snippets (dynamics.SNIPPET_GROUP)."""


def test_a_stream_reuses_the_previous_windows_groups_and_gives_the_offline_numbers(monkeypatch):
    """Back-to-back windows (the receiver's default): each computes only the groups of reads the
    one before did not, on the stream's grid, and gives compute_view's numbers."""
    rate = 30.72e6
    chosen = [views.VIEWS["wideband"], SHORT]
    framer = ObservationFramer(chosen, rate)
    samples = clean_waveform("nr", 2, mu=1, load=0.5).iq[: framer.samples_read + 4 * framer.stride]
    measured = [0]
    measure = dynamics.measure_group

    def counting(params, reads, starts):
        measured[0] += len(starts)
        return measure(params, reads, starts)

    monkeypatch.setattr(dynamics, "measure_group", counting)
    framed = list(framer.frame_recording(samples, batch_windows=2))
    starts = np.concatenate([w.starts for w in framed])
    values = np.concatenate([w.views[1] for w in framed])
    begins = np.array([start + views.aligned_offsets(chosen, rate, start)[1] for start in starts])
    present = begins >= 0
    assert present.sum() >= 3
    new_groups = np.diff(begins[present]) // views.past_period(SHORT, rate)
    assert measured[0] == SHORT.n_snippets + new_groups.sum() * dynamics.SNIPPET_GROUP
    for begin, view in zip(begins[present], values[present]):
        np.testing.assert_array_equal(view, views.compute_view(SHORT, samples[begin:], rate))
