"""The framer with several views: each window's views are those of the capture from where each
view starts (offline, views.compute_view), a view of the past is absent until the stream reaches
back far enough, and streaming gives what framing the whole recording gives."""

import numpy as np
import pytest

from lwmspectro.dynamics import DynamicsParams
from lwmspectro.framer import ObservationFramer
from lwmspectro.ofdm_sync import Numerology
from lwmspectro.spectrogram import SpectrogramParams
from lwmspectro.views import OfdmAlignedParams, compute_view, min_source_samples, view_output

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
        begins = start + span - past
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
        assert np.isnan(views[2][i]).all() == (starts[i] + span - past <= k * span + 10)


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
