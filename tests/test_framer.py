"""The observation framer: windows, verdicts and G, the same whole or buffer by buffer."""

import numpy as np
import pytest

from lwmspectro.framer import ObservationFramer
from lwmspectro.spectrogram import SpectrogramParams, frames_from_iq, spectrogram
from lwmspectro.views import compute_view

PARAMS = SpectrogramParams(sample_rate_hz=1e6, n_fft=32, hop=64, n_frames=32, n_bins=16)


def noise(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


def streamed(framer, samples, seed):
    """What a streaming caller gets: buffers of random sizes from keep_from on, a few windows each."""
    rng = np.random.default_rng(seed)
    starts, reasons, spectrograms = [], [], []
    available = 0
    while True:
        available = min(len(samples), available + int(rng.integers(1, 3 * framer.span)))
        first = framer.keep_from
        windows = framer.take(samples[first:available], first, limit=int(rng.integers(1, 4)))
        starts += list(windows.starts)
        reasons += list(windows.invalid_reasons)
        spectrograms += list(windows.views[0])
        if available == len(samples) and not len(windows):
            return starts, reasons, np.array(spectrograms)


@pytest.mark.parametrize("rate", [1e6, 0.8e6, 2.5e6])
@pytest.mark.parametrize("gap", [-700, 0, 333])
def test_buffer_by_buffer_equals_the_whole_recording(rate, gap):
    span = PARAMS.source_window_samples(rate)
    samples = noise(6 * span + 500, seed=1)
    samples[2 * (span + gap) + span // 3] = np.nan  # inside the third window
    samples[5 * span + span // 2] = np.nan  # inside a window, or between two of them
    whole = list(ObservationFramer(PARAMS, rate, span + gap).frame_recording(samples, batch_windows=3))
    starts = np.concatenate([w.starts for w in whole])
    reasons = sum((w.invalid_reasons for w in whole), ())
    spectrograms = np.concatenate([w.views[0] for w in whole])
    got_starts, got_reasons, got_spectrograms = streamed(ObservationFramer(PARAMS, rate, span + gap), samples, seed=2)
    # A stream whose end is unknown cannot finish a window whose filter reads past it.
    n = len(got_starts)
    assert n >= len(starts) - 1
    assert got_starts == list(starts[:n])
    assert got_reasons == list(reasons[:n])
    assert "nan_or_inf" in got_reasons
    np.testing.assert_allclose(got_spectrograms, spectrograms[:n], atol=1e-5)


@pytest.mark.parametrize("rate", [1e6, 0.8e6])
def test_windows_are_the_view_of_a_capture_starting_at_each(rate):
    """Each window is G of the recording cut at its start (resampled from there on), as a
    capture of that observation gives it offline; the first is G of the whole stream resampled."""
    framer = ObservationFramer(PARAMS, rate)
    samples = noise(4 * framer.span, seed=3)
    (windows,) = framer.frame_recording(samples)
    ended = np.concatenate([samples, np.zeros(framer.span, np.complex64)])  # zeros past the recording's end
    expected = np.stack([compute_view(PARAMS, ended[start:], rate) for start in windows.starts])
    np.testing.assert_array_equal(windows.views[0], expected)
    whole = spectrogram(samples, PARAMS, rate)
    np.testing.assert_allclose(windows.views[0][0], whole, atol=2e-3)


def test_a_stream_that_falls_behind_skips_its_oldest_windows_and_frames_the_rest_as_ever():
    framer = ObservationFramer(PARAMS, 0.8e6, stride=700)
    samples = noise(12 * framer.span, seed=4)
    reach = framer.end_needed(0)
    assert framer.windows_ready(reach - 1) == 0
    assert framer.windows_ready(reach) == 1
    assert framer.windows_ready(reach + 3 * 700 + 699) == 4
    framer.skip(3)
    assert (framer.next_start, framer.windows_skipped, framer.windows_ready(reach + 3 * 700 + 699)) == (2100, 3, 1)
    first = framer.keep_from
    windows = framer.take(samples[first:], first, limit=2)
    assert list(windows.starts) == [2100, 2800]
    ended = np.concatenate([samples, np.zeros(framer.span, np.complex64)])
    for start, view in zip(windows.starts, windows.views[0]):
        np.testing.assert_array_equal(view, compute_view(PARAMS, ended[start:], 0.8e6))
    with pytest.raises(ValueError, match="skip -1"):
        framer.skip(-1)


@pytest.mark.parametrize("rate", [1e6, 0.8e6])
def test_a_nan_in_a_window_invalidates_it_and_one_between_windows_spares_both(rate):
    span = PARAMS.source_window_samples(rate)
    stride = span + 200
    samples = noise(3 * stride, seed=4)
    samples[PARAMS.n_fft + 3] = np.nan  # between the first window's first two frames
    samples[stride + span + 100] = np.nan  # in the gap after the second window
    (windows,) = ObservationFramer(PARAMS, rate, stride).frame_recording(samples)
    assert windows.invalid_reasons == ("nan_or_inf", None, None)
    assert list(windows.valid) == [False, True, True]
    assert np.isnan(windows.views[0][0]).all()
    assert np.isfinite(windows.views[0][1:]).all()


def test_faults_other_than_nan_are_judged_on_the_samples_g_reads():
    framer = ObservationFramer(PARAMS, PARAMS.sample_rate_hz)
    span = framer.span
    samples = noise(3 * span, seed=5)
    # The second window: quiet frames, and a loud signal clipped at the rails between them.
    between = np.ones(span, bool)
    between[frames_from_iq(np.arange(span), PARAMS)] = False
    second = samples[span : 2 * span]
    second *= 0.1
    loud = 10 * noise(span, seed=6)[between]
    second[between] = np.clip(loud.real, -1, 1) + 1j * np.clip(loud.imag, -1, 1)
    samples[2 * span :] = 0.25 - 0.5j
    (windows,) = framer.frame_recording(samples)
    assert windows.invalid_reasons == (None, None, "dc_only")
    assert (framer.windows_out, framer.windows_invalid) == (3, 1)


def test_each_window_has_its_power_the_level_of_its_strongest_frames():
    """A tracker starts a new track on a power jump: 20 dB more noise reads 20 dB more, a burst
    that fills a fifth of a window reads as loud as one that fills it, a window not judged NaN."""
    framer = ObservationFramer(PARAMS, PARAMS.sample_rate_hz)
    span = framer.span
    quiet, loud, bursty = noise(span, seed=7), 10.0 * noise(span, seed=8), 10.0 * noise(span, seed=9)
    bursty[span // 5 :] *= 0.01
    (windows,) = framer.frame_recording(np.concatenate([quiet, loud, bursty, np.zeros(span, np.complex64)]))
    assert windows.invalid_reasons == (None, None, None, "all_zero")
    power = windows.power_db
    assert power[0] == pytest.approx(10 * np.log10(2.0), abs=1.0), "unit-variance I and Q: 3 dB"
    assert power[1] - power[0] == pytest.approx(20.0, abs=1.0)
    assert abs(power[2] - power[1]) < 2.0 and np.isnan(power[3])


def test_a_stride_or_rate_that_cannot_work_is_refused():
    with pytest.raises(ValueError, match="stride must be a positive"):
        ObservationFramer(PARAMS, 1e6, 0)
    with pytest.raises(ValueError, match="not between"):
        ObservationFramer(PARAMS, 0.0)
