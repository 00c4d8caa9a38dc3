"""The framer with several views: each window's views are those of the capture from where each
view starts (offline, views.compute_view), a view of the past is absent until the stream reaches
back far enough, and streaming gives what framing the whole recording gives. The dynamics view
takes the snippets it shares with the previous window from it, and still gives those numbers."""

import numpy as np
import pytest

from lwmspectro import dynamics
from lwmspectro import views as registered_views
from lwmspectro.dynamics import DynamicsParams
from lwmspectro.framer import ObservationFramer
from lwmspectro.ofdm_sync import Numerology
from lwmspectro.spectrogram import SpectrogramParams
from lwmspectro.views import (
    OfdmAlignedParams,
    aligned_offsets,
    compute_view,
    min_source_samples,
    past_period,
    view_output,
)

WIDEBAND = SpectrogramParams(sample_rate_hz=1e6, n_fft=32, hop=64, n_frames=32, n_bins=16)
ALIGNED = OfdmAlignedParams(
    Numerology(sample_rate_hz=1e6, n_fft=64, cp_first=16, cp_other=16, symbols_per_group=1),
    n_symbols=8,
    n_subcarriers=16,
    gain_symbols=3,
    gain_subcarriers=3,
    search_symbols=16,
)
PAST = DynamicsParams(
    sample_rate_hz=1e6, n_fft=32, frames_per_snippet=2, hop_s=5e-4, n_snippets=16, n_subbands=8, lags=(1, 2, 4)
)
VIEWS = [WIDEBAND, ALIGNED, PAST]


def noise(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


def ofdm(n, seed=0):
    """OFDM symbols of ALIGNED's numerology (random QPSK on 48 subcarriers) in noise."""
    rng = np.random.default_rng(seed)
    grid = np.zeros((n // 80 + 1, 64), complex)
    grid[:, np.r_[1:25, 40:64]] = np.exp(0.5j * np.pi * rng.integers(4, size=(len(grid), 48)))
    symbols = np.fft.ifft(grid, axis=1)
    return (np.hstack([symbols[:, -16:], symbols]).ravel()[:n] + 0.05 * noise(n, seed)).astype(np.complex64)


def windows_of(framer, samples):
    framed = list(framer.frame_recording(samples, batch_windows=3))
    return (
        np.concatenate([w.starts for w in framed]),
        sum((w.invalid_reasons for w in framed), ()),
        [np.concatenate([w.views[v] for w in framed]) for v in range(len(VIEWS))],
        sum((w.estimates for w in framed), ()),
    )


@pytest.mark.parametrize("rate", [1e6, 0.8e6])
def test_each_view_is_that_of_the_capture_from_where_it_starts(rate):
    framer = ObservationFramer(VIEWS, rate)
    span, past = framer.span, min_source_samples(PAST, rate)
    assert span == WIDEBAND.source_window_samples(rate) and past > 3 * span
    samples = ofdm(past + 4 * span, seed=1)
    ended = np.concatenate([samples, np.zeros(span, np.complex64)])  # zeros past the recording's end
    starts, reasons, views, estimates = windows_of(framer, samples)
    assert list(starts) == [k * span for k in range(len(starts))] and len(starts) >= 7
    assert set(reasons) == {None}
    for i, start in enumerate(starts):
        np.testing.assert_array_equal(views[0][i], compute_view(WIDEBAND, ended[start:], rate))
        aligned = view_output(ALIGNED, ended[start:], rate)
        np.testing.assert_array_equal(views[1][i], aligned.values)
        for key, value in aligned.estimates.items():
            np.testing.assert_array_equal(estimates[i]["ofdm_aligned"][key], value)
        begins = start + aligned_offsets(VIEWS, rate, start)[2]
        assert begins % past_period(PAST, rate) == 0 and start + span - past - past_period(PAST, rate) < begins
        if begins < 0:
            assert np.isnan(views[2][i]).all()
        else:
            np.testing.assert_array_equal(views[2][i], compute_view(PAST, samples[begins:], rate))
    assert np.isnan(views[2][0]).all() and np.isfinite(views[2][-1]).all()


def test_a_capture_shorter_than_the_past_view_gets_the_other_views():
    framer = ObservationFramer(VIEWS, 1e6)
    (windows,) = framer.frame_recording(ofdm(3 * framer.span, seed=2))
    assert len(windows) == 3 and all(windows.valid)
    assert np.isfinite(windows.views[0]).all() and np.isfinite(windows.views[1]).all()
    assert np.isnan(windows.views[2]).all()
    assert windows.flat().shape == (3, framer.vlen)
    np.testing.assert_array_equal(windows.flat()[:, : 32 * 16], windows.views[0].reshape(3, -1))
    np.testing.assert_array_equal(windows.flat()[:, -PAST.shape[0] * PAST.shape[1] :], windows.views[2].reshape(3, -1))


def test_a_nan_in_the_past_drops_that_view_only_and_one_in_the_window_drops_the_window():
    framer = ObservationFramer(VIEWS, 1e6)
    span, past = framer.span, min_source_samples(PAST, 1e6)
    samples = noise(past + 6 * span, seed=3)
    first_whole = -(-(past - span) // span)  # the first window whose past the stream holds
    samples[(first_whole + 2) * span + 10] = np.nan  # in window first_whole + 2, and in the past of the next ones
    starts, reasons, views, _estimates = windows_of(framer, samples)
    k = first_whole + 2
    assert reasons[k] == "nan_or_inf" and np.isnan(views[0][k]).all()
    assert [r for i, r in enumerate(reasons) if i != k] == [None] * (len(reasons) - 1)
    assert np.isfinite(views[2][first_whole:k]).all()
    for i in range(k + 1, len(starts)):
        assert np.isfinite(views[0][i]).all() and np.isfinite(views[1][i]).all()
        begins = starts[i] + aligned_offsets(VIEWS, 1e6, starts[i])[2]
        assert np.isnan(views[2][i]).all() == (begins <= k * span + 10 < begins + past)


@pytest.mark.parametrize("rate", [1e6, 0.8e6])
def test_buffer_by_buffer_equals_the_whole_recording(rate):
    samples = ofdm(8 * ObservationFramer(VIEWS, rate).span, seed=4)
    samples[5000] = np.nan
    whole = windows_of(ObservationFramer(VIEWS, rate, 1500), samples)
    framer = ObservationFramer(VIEWS, rate, 1500)
    rng = np.random.default_rng(5)
    streamed: list = [[], [], [[], [], []]]
    available = 0
    while True:
        available = min(len(samples), available + int(rng.integers(1, 4000)))
        first = framer.keep_from
        windows = framer.take(samples[first:available], first, limit=int(rng.integers(1, 4)))
        streamed[0] += list(windows.starts)
        streamed[1] += list(windows.invalid_reasons)
        for v in range(len(VIEWS)):
            streamed[2][v] += list(windows.views[v])
        if available == len(samples) and not len(windows):
            break
    n = len(streamed[0])
    assert n >= len(whole[0]) - 1
    assert streamed[0] == list(whole[0][:n]) and streamed[1] == list(whole[1][:n])
    for v in range(len(VIEWS)):
        np.testing.assert_array_equal(np.array(streamed[2][v]), whole[2][v][:n])


GROUPED_PAST = DynamicsParams(
    sample_rate_hz=1e6, n_fft=32, frames_per_snippet=2, hop_s=2e-4, n_snippets=64, n_subbands=8, lags=(1, 2, 4, 16)
)
"""A view of the past of 4 groups of snippets (dynamics.SNIPPET_GROUP)."""


def snippets_computed(monkeypatch) -> list[int]:
    """A list that counts the snippets whose powers are computed from then on."""
    counted = [0]
    compute = dynamics.snippet_powers

    def counting(params, snippets):
        counted[0] += len(snippets)
        return compute(params, snippets)

    monkeypatch.setattr(dynamics, "snippet_powers", counting)
    return counted


@pytest.mark.parametrize("rate", [1e6, 0.8e6])
@pytest.mark.parametrize("stride_groups", [1, 0.6, 1.3])
def test_the_past_view_reuses_the_previous_windows_snippets_and_gives_the_offline_numbers(
    monkeypatch, rate, stride_groups
):
    """The view of the past starts on the stream's grid of snippet groups, so that whatever the
    stride a window computes only the groups the window before did not (and the first, which a
    resampled capture reads before its start). Each window's view is compute_view's of the
    capture from where it starts, and absent while the stream does not reach back that far."""
    period = past_period(GROUPED_PAST, rate)
    assert period == int(round(dynamics.SNIPPET_GROUP * GROUPED_PAST.hop_s * rate))
    stride = int(stride_groups * period)
    framer = ObservationFramer([WIDEBAND, GROUPED_PAST], rate, stride)
    samples = ofdm(min_source_samples(GROUPED_PAST, rate) + 6 * period, seed=6)
    counted = snippets_computed(monkeypatch)
    framed = list(framer.frame_recording(samples, batch_windows=2))
    starts = np.concatenate([w.starts for w in framed])
    views = np.concatenate([w.views[1] for w in framed])
    begins = np.array([start + aligned_offsets([WIDEBAND, GROUPED_PAST], rate, start)[1] for start in starts])
    present = begins >= 0
    assert present.argmax() > 0 and present.sum() >= 5 and (begins % period == 0).all()
    assert np.isnan(views[~present]).all()
    new_groups = np.diff(begins[present]) // period
    resampled = int(rate != GROUPED_PAST.sample_rate_hz)
    later = sum(n + resampled for n in new_groups) * dynamics.SNIPPET_GROUP
    assert counted[0] == GROUPED_PAST.n_snippets + later
    for begin, view in zip(begins[present], views[present]):
        np.testing.assert_array_equal(view, compute_view(GROUPED_PAST, samples[begin:], rate))


def test_a_resampled_stream_of_back_to_back_windows_reuses_the_registered_views_groups(monkeypatch):
    """The registered dynamics view at 20 MS/s, windows back to back (15.88 ms apart, the
    receiver's default), streamed buffer by buffer: its start on the 16 ms grid moves by one
    group from most windows to the next (two groups computed: the new one and the first, read
    before the capture), by none from some (only the first), the numbers compute_view gives."""
    rate, params = 20e6, registered_views.VIEWS["dynamics"]
    chosen = [registered_views.VIEWS["wideband"], params]
    framer = ObservationFramer(chosen, rate)
    past = min_source_samples(params, rate)
    samples = noise(framer.end_needed(0) + past + 4 * framer.stride, seed=7)
    counted = snippets_computed(monkeypatch)
    starts, values = [], []
    for end in [*range(framer.span, len(samples), 1 << 20), len(samples)]:
        first = framer.keep_from
        windows = framer.take(samples[first:end], first, limit=100)
        starts += list(windows.starts)
        values += list(windows.views[1])
    begins = np.array([start + aligned_offsets(chosen, rate, start)[1] for start in starts])
    present = begins >= 0
    assert present.sum() >= 4 and np.isnan(np.array(values)[~present]).all()
    new_groups = np.diff(begins[present]) // past_period(params, rate)
    assert set(new_groups) <= {0, 1}
    later = sum(n + 1 for n in new_groups) * dynamics.SNIPPET_GROUP
    assert counted[0] == params.n_snippets + later
    for begin, view in zip(begins[present], np.array(values)[present]):
        np.testing.assert_array_equal(view, compute_view(params, samples[begin:], rate))


def test_snippets_computed_around_a_nan_serve_only_windows_that_drop_the_past_view():
    rate = 0.8e6
    stride = int(round(dynamics.SNIPPET_GROUP * GROUPED_PAST.hop_s * rate))
    framer = ObservationFramer([WIDEBAND, GROUPED_PAST], rate, stride)
    span, past = framer.span, min_source_samples(GROUPED_PAST, rate)
    samples = ofdm(past + 8 * stride, seed=8)
    broken = past + 2 * stride + 100
    samples[broken] = np.nan
    framed = list(framer.frame_recording(samples, batch_windows=3))
    starts = np.concatenate([w.starts for w in framed])
    views = np.concatenate([w.views[1] for w in framed])
    begins = np.array([start + aligned_offsets([WIDEBAND, GROUPED_PAST], rate, start)[1] for start in starts])
    reads_nan = (begins <= broken) & (broken < starts + span)
    assert reads_nan.any() and (begins[~reads_nan] >= 0).sum() >= 3
    assert np.isnan(views[reads_nan]).all()
    for begin, view in zip(begins[~reads_nan & (begins >= 0)], views[~reads_nan & (begins >= 0)]):
        np.testing.assert_array_equal(view, compute_view(GROUPED_PAST, samples[begin:], rate))


def test_the_framer_counts_each_views_cpu_time_and_none_for_a_view_it_skips():
    """Every view framed gains CPU time; with a chooser that names no view after the lead, the
    others are not computed and gain none (the receiver's routed windows)."""
    framer = ObservationFramer(VIEWS, 1e6)
    iq = noise(framer.samples_read + 4 * framer.span)
    assert not framer.view_cpu_s.any()
    next(framer.frame_recording(iq))
    assert (framer.view_cpu_s > 0).all()

    spent = np.zeros(len(VIEWS))
    computed = registered_views.compute_observation(
        VIEWS, iq, 1e6, framer.samples_read, lead=[0], then=lambda _computed: [], cpu_seconds=spent
    )
    assert computed[0] is not None and computed[1] is None and computed[2] is None
    assert spent[0] > 0 and not spent[1:].any()
