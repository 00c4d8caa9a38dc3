"""The segment resampler gives resample_to's samples, computed only where they are asked for."""

import math

import numpy as np
import pytest

from lwmspectro.resample import (
    MAX_PIECE_PHASES,
    MAX_RATIO_TERM,
    PointResampler,
    rational_ratio,
    resample_prefix,
    resample_segments,
    resample_to,
)

ANALYSIS = 30.72e6
RATES = [20e6, 1.92e6, 61.44e6, ANALYSIS]


def noise(n, seed):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def expected_segments(x, rate, starts, length):
    """resample_to of the whole stream, cut at each start, zero outside it."""
    whole = resample_to(x, rate, ANALYSIS)
    index = np.asarray(starts)[:, None] + np.arange(length)[None, :]
    inside = (index >= 0) & (index < len(whole))
    return np.where(inside, whole[np.clip(index, 0, len(whole) - 1)], np.complex64(0))


@pytest.mark.parametrize("rate", RATES)
def test_segments_equal_the_whole_stream_resampled(rate):
    x = noise(int(40_000 * rate / ANALYSIS), seed=1)
    n_out = len(resample_to(x, rate, ANALYSIS))
    length = 128
    # interior frames on several phases, the very first and last outputs, runs crossing both
    # ends of the stream and runs wholly outside it
    starts = np.array([5000, 5001, 5007, 17_777, 0, n_out - length, -40, n_out - 60, -length - 5, n_out + 3])
    got = resample_segments(x, rate, ANALYSIS, starts, length)
    assert got.shape == (len(starts), length) and got.dtype == np.complex64
    np.testing.assert_allclose(got, expected_segments(x, rate, starts, length), rtol=0, atol=2e-6)
    assert not got[-2:].any()


@pytest.mark.parametrize("rate", RATES)
def test_long_runs_equal_the_whole_stream_resampled(rate):
    """A run much longer than one piece (a whole synthetic stream) is cut and joined exactly."""
    x = noise(int(30_000 * rate / ANALYSIS), seed=2)
    n_out = len(resample_to(x, rate, ANALYSIS))
    starts = [0, 777, n_out - 20_000]
    got = resample_segments(x, rate, ANALYSIS, starts, 20_011)
    np.testing.assert_allclose(got, expected_segments(x, rate, starts, 20_011), rtol=0, atol=2e-6)


def test_equal_rates_copy_the_samples():
    x = noise(1000, seed=3)
    got = resample_segments(x, ANALYSIS, ANALYSIS, [0, 900, -5], 100)
    assert np.array_equal(got[0], x[:100])
    assert np.array_equal(got[1], x[900:])
    assert np.array_equal(got[2], np.concatenate([np.zeros(5, np.complex64), x[:95]]))


def test_frames_read_from_a_slice_of_the_stream():
    """Streaming: x holds the stream from x_first on; the same outputs as from the whole stream."""
    rate = 20e6
    x = noise(50_000, seed=4)
    resampler = PointResampler.for_rates(rate, ANALYSIS)
    starts = np.array([30_000, 30_050, 41_000])
    first, end = resampler.input_span(starts, 128)
    assert 0 < first < end <= len(x)
    sliced = resampler.frames(x[first:end], first, starts, 128)
    np.testing.assert_array_equal(sliced, resampler.frames(x, 0, starts, 128))
    np.testing.assert_allclose(sliced, expected_segments(x, rate, starts, 128), rtol=0, atol=2e-6)
    with pytest.raises(ValueError, match="are needed but x starts at"):
        resampler.frames(x[first + 1 : end], first + 1, starts, 128)


def test_resampler_reduces_rates_as_resample_to_does():
    resampler = PointResampler.for_rates(20e6, ANALYSIS)
    assert (resampler.up, resampler.down) == rational_ratio(20e6, ANALYSIS) == (192, 125)
    assert PointResampler.for_rates(20e6, ANALYSIS) is resampler
    with pytest.raises(ValueError, match="sample rates must be positive"):
        resample_segments(noise(10, 5), 0.0, ANALYSIS, [0], 4)


def test_only_the_inputs_under_the_segments_are_read():
    """Speed without a clock: G's frames of a long 20 MS/s stream read only the few inputs
    around them (NaN everywhere else cannot reach them)."""
    x = noise(400_000, seed=6)
    resampler = PointResampler.for_rates(20e6, ANALYSIS)
    starts = 3840 + np.arange(128) * 3840
    read = np.zeros(len(x), bool)
    for start in starts:
        first, end = resampler.input_span([start], 128)
        read[first:end] = True
    assert read.mean() < 0.06
    poisoned = np.where(read, x, np.complex64(np.nan))
    got = resample_segments(poisoned, 20e6, ANALYSIS, starts, 128)
    np.testing.assert_allclose(got, expected_segments(x, 20e6, starts, 128), rtol=0, atol=2e-6)


@pytest.mark.parametrize("rate", [100_001.0, 123_456_789.0, 1e5, 1e9])
def test_odd_rates_get_a_bounded_filter_and_a_close_ratio(rate):
    up, down = rational_ratio(rate, 30.72e6)
    assert max(up, down) <= MAX_RATIO_TERM
    assert abs(up / down - 30.72e6 / rate) <= 1e-7 * 30.72e6 / rate


@pytest.mark.parametrize("rate", [1.0, 1e12, float("inf"), float("nan"), 0.0, -5.0])
def test_rates_too_far_apart_or_not_finite_are_refused(rate):
    with pytest.raises(ValueError, match=r"cannot resample|positive and finite"):
        rational_ratio(rate, 30.72e6)


def test_a_resampler_with_a_huge_filter_is_refused_before_it_is_built():
    with pytest.raises(ValueError, match="integers from 1 to"):
        PointResampler(30_720_000, 1)


@pytest.mark.parametrize("rate", [5e6, 25e6, 2.4e6, 61.44e6])
def test_a_prefix_equals_the_whole_stream_resampled_in_pieces_of_few_phases(rate):
    x = noise(int(0.004 * rate), seed=3)
    n_out = int(0.003 * ANALYSIS)
    resampler = PointResampler.for_rates(rate, ANALYSIS)
    phases = resampler.up // math.gcd(resampler.up, resampler.narrow_piece)
    assert resampler.narrow_piece <= 64 and phases <= MAX_PIECE_PHASES
    np.testing.assert_allclose(
        resample_prefix(x, rate, ANALYSIS, n_out), resample_to(x, rate, ANALYSIS)[:n_out], atol=1e-5
    )


@pytest.mark.parametrize("rate", [20e6, 61.44e6])
def test_a_frame_is_the_same_numbers_whichever_other_frames_are_formed_with_it(rate):
    x = noise(int(0.01 * rate), seed=4)
    resampler = PointResampler.for_rates(rate, ANALYSIS)
    many = np.arange(0, 200_000, 960)
    few = many[[3, 50, 101]]
    together = resampler.frames(x, 0, many, 192)
    np.testing.assert_array_equal(resampler.frames(x, 0, few, 192), together[[3, 50, 101]])
