"""The dynamics-view study: its variants read the snippet powers as the view does, and its
common-mode rows cancel what moves the whole band at once."""

import numpy as np
import pytest
from waveforms import clean_waveform

from lwmspectro import labels
from lwmspectro.dynamics import SnippetHistory, dynamics, dynamics_from_powers
from lwmspectro_train.dynamics_probe import (
    CEILING_LAYOUTS,
    LAYOUTS,
    REFERENCES,
    VARIANTS,
    Variant,
    channel_powers,
    example_powers,
    features,
    lte_reference_powers,
    nr_scheduled_powers,
    wifi_busy_powers,
)

TODAY = LAYOUTS["33 us every 1 ms"]


def static_powers(seed=0):
    """A static channel: each subband keeps its gain, the data moves each snippet by ~0.3 dB."""
    rng = np.random.default_rng(seed)
    gains = 10 ** (rng.uniform(-10, 0, TODAY.n_subbands) / 10)
    return gains * (1 + 0.07 * rng.standard_normal((TODAY.n_snippets, TODAY.n_subbands)))


def test_todays_variant_is_the_registered_view():
    power = static_powers()
    assert np.array_equal(features(VARIANTS["today's view"], power), dynamics_from_powers(TODAY, power).ravel())


def test_a_gain_step_moves_the_view_but_not_its_common_mode_rows():
    power = static_powers()
    power[TODAY.n_snippets // 2 :] *= 10 ** (8 / 10)
    rows = features(Variant("33 us every 1 ms", common_mode=True), power).reshape(-1, TODAY.n_subbands)
    n_lags = len(TODAY.lags)
    view, common_mode = rows[: 2 * n_lags + 1], rows[2 * n_lags + 1 :]
    longest_median = 2 * n_lags
    assert view[longest_median].mean() == pytest.approx(8, abs=0.5)
    assert common_mode[-1].mean() < 0.5


def test_wider_subbands_pool_the_power_of_their_narrow_ones():
    power = static_powers()
    rows = features(Variant("33 us every 1 ms", subbands=8), power).reshape(-1, 8)
    assert rows.shape == (2 * len(TODAY.lags) + 1, 8)
    pooled = power.reshape(len(power), 8, 4).sum(-1)
    assert rows[0].max() == 0 and rows[0].min() == pytest.approx(
        10 * np.log10(pooled.mean(0).min() / pooled.mean(0).max()), abs=0.2
    )


def test_every_snippet_of_each_layout_is_read_from_the_re_synthesised_example():
    """The examples are made with G and the layouts as their views, so each layout's snippets
    hold the signal and its noise, none the zeros of samples left unformed."""
    chunk = example_powers("python/lwmspectro/configs/heldout-constellation.json", 0, 1)
    assert chunk["protocol"].tolist() == ["wifi"] and chunk["mobility"][0] >= 0
    for name, params in LAYOUTS.items():
        assert chunk[name].shape == (1, params.n_snippets, params.n_subbands)
        assert (chunk[name][0].sum(axis=1) > 0).all(), name


def test_a_scheduler_switching_resource_blocks_drops_out_of_the_subband_gated_rows():
    """A static channel whose cell allocates a quarter of its subbands in half the subframes:
    gated over the whole band, those subbands' changes read ~20 dB, as a fast channel's would;
    gated per subband, only the static channel's ~0.3 dB remain."""
    power = static_powers()
    switched = np.random.default_rng(1).random(TODAY.n_snippets) < 0.5
    power[np.ix_(switched, np.arange(0, TODAY.n_subbands, 4))] *= 0.01
    n_lags = len(TODAY.lags)
    medians = slice(n_lags + 1, 2 * n_lags + 1)
    band_gated = features(Variant("33 us every 1 ms"), power).reshape(-1, TODAY.n_subbands)
    subband_gated = features(Variant("33 us every 1 ms", subband_gate=True), power).reshape(-1, TODAY.n_subbands)
    assert band_gated[medians].max() > 15
    assert subband_gated[medians].max() < 1
    assert np.array_equal(subband_gated[0], band_gated[0])


def test_the_ceiling_is_the_channel_alone_inside_the_signal_band():
    chunk = channel_powers("python/lwmspectro/configs/heldout-constellation.json", 0, 12)
    signals = np.flatnonzero(np.isin(chunk["protocol"], labels.PROTOCOLS))
    assert len(signals) >= 3
    for index in signals:
        exact = chunk["the channel itself"][index]
        assert exact.shape == (TODAY.n_snippets, TODAY.n_subbands)
        assert exact[:, TODAY.n_subbands // 2].min() > 0 and (exact[:, 0] == 0).all()
        change_per_ms = np.median(np.abs(np.diff(10 * np.log10(exact[:, TODAY.n_subbands // 2]))))
        mobility = labels.MOBILITY_CLASSES[chunk["mobility"][index]]
        if mobility == "static":
            assert change_per_ms < 0.2
        elif mobility == "vehicular":
            assert change_per_ms > 0.5
        spread = chunk["the channel through a snippet's spread"][index]
        assert (spread > 0).all() and not np.allclose(spread, exact)
    assert set(CEILING_LAYOUTS) <= set(chunk)


def test_lte_reference_signals_hold_their_power_whatever_the_cell_schedules():
    """A cell at 20 % load switches its resource blocks every subframe, so today's subband powers
    swing by many dB with no motion at all; its cell reference signals, found blind on their comb,
    keep one power in every subband the cell spans."""
    waveform = clean_waveform("lte", 5, load=0.2, cell_id=7, crs_ports=1)
    reads = REFERENCES["lte"].reads
    assert waveform.sample_rate_hz == reads.sample_rate_hz
    reference = lte_reference_powers(reads, waveform.iq, waveform.sample_rate_hz)
    today = dynamics(TODAY, waveform.iq, waveform.sample_rate_hz)
    spanned = reference.min(axis=0) > 0.01 * reference.max()
    assert spanned.sum() >= 18
    swing = 10 * np.log10(reference[:, spanned].max(axis=0) / reference[:, spanned].min(axis=0))
    assert swing.max() < 0.5
    n_lags = len(TODAY.lags)
    assert today[n_lags + 1 : 2 * n_lags + 1, :18].mean() > 3


def test_wifi_busy_time_keeps_the_packets_power_and_leaves_idle_milliseconds_out():
    """A static medium's packets keep one power in each subband, whichever millisecond of busy
    time reads them; a millisecond without a whole frame of a packet is left at zero."""
    waveform = clean_waveform("wifi", 5)
    iq = waveform.iq.copy()
    per_ms = int(waveform.sample_rate_hz * 1e-3)
    iq[10 * per_ms : 20 * per_ms] = 0
    reads = REFERENCES["wifi"].reads
    reference = wifi_busy_powers(reads, iq, waveform.sample_rate_hz)
    assert reference.shape == (reads.n_snippets, TODAY.n_subbands)
    idle = reference.sum(axis=1) == 0
    assert idle[11:19].all() and idle.sum() < 12
    busy = reference[~idle]
    spanned = busy.mean(axis=0) > 0.05 * busy.mean(axis=0).max()
    assert spanned.sum() >= 16
    swing = 10 * np.log10(busy[:, spanned].max(axis=0) / busy[:, spanned].min(axis=0))
    assert swing.max() < 1.5


@pytest.mark.parametrize("mu", [0, 1])
def test_nr_scheduled_blocks_hold_their_power_whatever_the_slot_schedules(mu):
    """An NR carrier at 30 % load schedules other resource blocks in each slot, so today's
    subband powers swing by many dB with no motion at all; its scheduled blocks, each counted
    where it is scheduled, keep one power from one millisecond to the next at either subcarrier
    spacing, as the view's change quantiles read them (the 12-subcarrier blocks are not aligned
    to the grid's resource blocks, so a subband at an allocation's or the band's edge may not)."""
    waveform = clean_waveform("nr", 6, mu=mu, load=0.3)
    reads = REFERENCES["nr"].reads
    reference = nr_scheduled_powers(reads, waveform.iq, waveform.sample_rate_hz)
    today = SnippetHistory().measures(TODAY, waveform.iq, waveform.sample_rate_hz, 0)["power"]
    spanned = np.flatnonzero(reference.mean(axis=0) > 0.05 * reference.mean(axis=0).max())
    assert len(spanned) >= 16
    steady = [np.median(np.abs(np.diff(10 * np.log10(reference[reference[:, k] > 0, k])))) < 0.3 for k in spanned]
    assert np.mean(steady) >= 0.9
    sent = today[:, spanned] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        today_change = np.abs(np.diff(10 * np.log10(today[:, spanned]), axis=0))
    both_sent = sent[1:] & sent[:-1]
    assert np.median([np.percentile(today_change[both_sent[:, k], k], 75) for k in range(len(spanned))]) > 3
