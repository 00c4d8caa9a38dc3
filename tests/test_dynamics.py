"""The time-dynamics view: it tells how fast a channel fades, from the samples alone."""

import dataclasses

import numpy as np
import pytest

from lwmspectro import synth, views
from lwmspectro.channels.mobility import speed_for_doppler
from lwmspectro.dynamics import DynamicsParams, dynamics_from_powers

PARAMS = views.VIEWS["dynamics"]


def received(doppler_hz, protocol="lte", seed=5):
    config = synth.GeneratorConfig(classes={protocol: 1.0}, channel="TDL-C", snr_db=[20])
    spec = synth.draw_spec(config, seed)
    speed = speed_for_doppler(doppler_hz, spec.carrier_hz)
    spec = dataclasses.replace(spec, speed_kmh=speed, mobility="static")
    iq, _ = synth.make_stream(spec, n_samples=PARAMS.window_samples + 4096)
    return views.compute_view(PARAMS, iq, 30.72e6)


def signal_change(view, lags):
    """The lower quartile of the log-power change (dB) at the given lags, over the strongest subbands."""
    return float(view[1:][lags, :4].mean())


def test_its_span_covers_the_slowest_pedestrian_fading():
    assert PARAMS.span_s >= 0.125
    assert PARAMS.shape == (2 * len(PARAMS.lags) + 1, PARAMS.n_subbands)
    assert PARAMS.lags[0] * PARAMS.hop_s <= 1e-3 and PARAMS.lags[-1] * PARAMS.hop_s >= 0.06


@pytest.mark.parametrize("protocol", ["lte", "wifi"])
def test_faster_fading_changes_the_power_sooner(protocol):
    """Over five channels and signals: one 128 ms realisation of slow fading may hardly move."""
    short, long = slice(0, 2), slice(len(PARAMS.lags) - 2, len(PARAMS.lags))

    seen = {doppler_hz: [received(doppler_hz, protocol, seed) for seed in range(3, 8)] for doppler_hz in (0, 10, 300)}

    def change(doppler_hz, lags):
        return np.mean([signal_change(view, lags) for view in seen[doppler_hz]])

    # Static: only noise and data move the power, the same at every lag.
    assert change(0, long) < 1.3 * change(0, short)
    # Pedestrian: still at 1-2 ms, decorrelated over tens of ms.
    assert change(10, long) > 2 * change(10, short)
    # Vehicular: decorrelated already between neighbouring snippets.
    assert change(300, short) > 2 * change(0, short)


def test_gaps_drop_out_and_subbands_are_sorted_by_power():
    params = DynamicsParams(n_snippets=8, lags=(1, 2), n_subbands=4, n_fft=16)
    rng = np.random.default_rng(0)
    power = np.exp(rng.standard_normal((8, 4))) * np.array([1.0, 10.0, 0.1, 1.0])
    power[3] = 1e-9  # a gap between bursts
    view = dynamics_from_powers(params, power)
    assert view[0, 0] == 0 and np.all(np.diff(view[0]) <= 0)
    level = 10 * np.log10(power)
    strongest = level[:, 1]
    pairs = [(t, t + 1) for t in range(7) if 3 not in (t, t + 1)]
    changes = [abs(strongest[b] - strongest[a]) for a, b in pairs]
    assert view[1, 0] == pytest.approx(np.quantile(changes, 0.25), rel=1e-5)
    assert view[3, 0] == pytest.approx(np.median(changes), rel=1e-5)


def test_silence_gives_an_empty_view():
    assert not dynamics_from_powers(PARAMS, np.zeros((PARAMS.n_snippets, PARAMS.n_subbands))).any()


def test_a_capture_at_another_rate_reads_the_same_span():
    rate = 20e6
    needed = views.min_source_samples(PARAMS, rate)
    assert needed == pytest.approx(PARAMS.span_s * rate, rel=0.01)
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(needed) + 1j * rng.standard_normal(needed)).astype(np.complex64)
    assert views.compute_view(PARAMS, noise, rate).shape == PARAMS.shape


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lags": []}, "lags"),
        ({"lags": [0, 1]}, "lags must lie"),
        ({"n_subbands": 7}, "must divide n_fft"),
        ({"hop_s": 1e-6}, "longer than the hop"),
    ],
)
def test_bad_parameters_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        DynamicsParams.from_dict(values)
