"""Tracking over windows: a running mean of log-probabilities per task over one emission's recent
windows, started again when the protocol or the power changes."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from lwmspectro import labels, views
from lwmspectro.readout import InvalidWindow, ModelOutput, build_readout, format_line
from lwmspectro.runtime import softmax
from lwmspectro.tracking import TRACK_CHANGE_WINDOWS, Tracker

CLASSES = {
    "protocol": list(labels.ROUTER_CLASSES),
    "modulation": list(labels.MODULATIONS),
    "snr_db": list(labels.SNR_GRID_DB),
    "mobility": list(labels.MOBILITY_CLASSES),
}
WINDOW_S = 0.016
"""One observation of the shipped model: a second holds 63 window starts (62.5 windows)."""
MODULATION_BONUS, MOBILITY_BONUS = 1.35, 0.9
"""Logit margins of the true class over unit Gaussian noise that make the per-window arg-max right
about 60 % of the time among 5 modulations and 3 mobility classes."""


def noisy_probabilities(rng, classes, true, bonus):
    logits = rng.standard_normal(len(classes))
    logits[classes.index(true)] += bonus
    return softmax(logits)


def window(rng, protocol="lte", modulation="16QAM", mobility="pedestrian", snr_db=10.0, sure_protocol=4.0):
    """A window's ModelOutput: the router sure of `protocol`, modulation and mobility read from noisy
    logits (right about 60 % of the time), the SNR bin from the joint head's marginal."""
    router = noisy_probabilities(rng, CLASSES["protocol"], protocol, sure_protocol)
    read = CLASSES["protocol"][int(router.argmax())]
    if read not in labels.PROTOCOLS:
        return ModelOutput(read, float(router.max()), probabilities={"protocol": router})
    probabilities = {
        "protocol": router,
        "modulation": noisy_probabilities(rng, CLASSES["modulation"], modulation, MODULATION_BONUS),
        "mobility": noisy_probabilities(rng, CLASSES["mobility"], mobility, MOBILITY_BONUS),
        "snr_db": noisy_probabilities(rng, CLASSES["snr_db"], snr_db, 1.0),
    }
    chosen = {task: CLASSES[task][int(p.argmax())] for task, p in probabilities.items()}
    return ModelOutput(
        read,
        float(router.max()),
        chosen["modulation"],
        float(probabilities["modulation"].max()),
        chosen["snr_db"],
        float(probabilities["snr_db"].max()),
        chosen["mobility"],
        float(probabilities["mobility"].max()),
        expert=read,
        probabilities=probabilities,
    )


def tracker(span_s=1.0, **kwargs):
    return Tracker(span_s, CLASSES, snr_half_bin_db=2.5, **kwargs)


def test_modulation_and_mobility_right_60_percent_per_window_are_right_far_more_often_tracked_over_1_s():
    rng = np.random.default_rng(1)
    track = tracker(1.0)
    per_window, tracked = {"modulation": [], "mobility": []}, {"modulation": [], "mobility": []}
    truth = {"modulation": "16QAM", "mobility": "pedestrian"}
    for i in range(600):
        output = window(rng)
        values = track.update(output, i * WINDOW_S, power_db=-20.0)
        for task in truth:
            per_window[task].append(getattr(output, task) == truth[task])
            tracked[task].append(getattr(values, task) == truth[task])
    for task in truth:
        assert 0.5 < np.mean(per_window[task]) < 0.7, task
        assert np.mean(tracked[task]) > 0.95, task
        assert np.mean(tracked[task][63:]) > 0.99, f"{task}, once a whole second is tracked"
    assert values.windows == 63 and values.protocol == "lte" and values.protocol_confidence > 0.9


def test_a_protocol_change_starts_a_new_track_and_one_misread_window_does_not():
    rng = np.random.default_rng(2)
    track = tracker(1.0)
    results = [track.update(window(rng, "lte"), i * WINDOW_S) for i in range(40)]
    misread = track.update(window(rng, "nr"), 40 * WINDOW_S)
    assert (misread.protocol, misread.windows) == ("lte", 41), "one window read as NR does not end the LTE track"
    results = [track.update(window(rng, "nr", modulation="64QAM"), (41 + i) * WINDOW_S) for i in range(30)]
    assert [r.windows for r in results[:3]] == [42, TRACK_CHANGE_WINDOWS, TRACK_CHANGE_WINDOWS + 1]
    assert results[2].protocol == "nr", "the new track starts with the windows that read the new protocol"
    assert results[-1].protocol == "nr" and results[-1].modulation == "64QAM"


def test_a_receiver_classifying_one_window_in_four_still_ends_a_track_at_the_protocol_change():
    rng = np.random.default_rng(6)
    track = tracker(0.25)
    starts = [0, 1] + list(range(4, 64, 4))  # two windows in a row, then a receiver skipping three in four
    for i in starts:
        track.update(window(rng, "lte"), i * WINDOW_S)
    first_nr = track.update(window(rng, "nr"), 64 * WINDOW_S)
    assert (first_nr.protocol, first_nr.windows) == ("nr", 1), (
        "no other window of the stream was classified in the time three windows take: the one read decides"
    )


def sure_window(rng, protocol, mobility):
    """A window whose router and mobility head are both sure (logit margins of 6)."""
    probabilities = {
        "protocol": noisy_probabilities(rng, CLASSES["protocol"], protocol, 6.0),
        "mobility": noisy_probabilities(rng, CLASSES["mobility"], mobility, 6.0),
    }
    return ModelOutput(
        protocol,
        float(probabilities["protocol"].max()),
        mobility=mobility,
        expert=protocol,
        probabilities=probabilities,
    )


def test_a_new_track_leaves_out_the_mobility_of_windows_whose_dynamics_reach_back_across_its_start():
    """An LTE cell, then an NR one: the NR windows of the first 111-127 ms (the dynamics view's
    reach, moved back by up to 16 ms onto the stream's grid) read the change from one emission
    to the other as fast fading (vehicular); the tracked mobility waits for the windows that see
    the NR cell alone (static)."""
    rng = np.random.default_rng(8)
    settle_s = views.past_reach_s([views.VIEWS["wideband"], views.VIEWS["dynamics"]], 30.72e6)
    assert 0.126 < settle_s < 0.128
    runtime = SimpleNamespace(head_classes=CLASSES, snr_half_bin_db=2.5, past_reach_s=settle_s)
    track = Tracker.for_runtime(runtime, 1.0)
    assert track.mobility_settle_s == settle_s
    for i in range(40):
        track.update(sure_window(rng, "lte", "static"), i * WINDOW_S)
    tracked = []
    for i in range(40, 70):
        straddling = (i - 40) * WINDOW_S < settle_s
        tracked.append(track.update(sure_window(rng, "nr", "vehicular" if straddling else "static"), i * WINDOW_S))
    first_nr = TRACK_CHANGE_WINDOWS - 1
    assert tracked[first_nr].protocol == "nr" and tracked[first_nr].mobility is None, "no settled NR window yet"
    settled = [t for i, t in enumerate(tracked) if i * WINDOW_S >= settle_s]
    assert settled and all(t.mobility == "static" for t in settled)
    assert all(t.mobility in (None, "static") for t in tracked[first_nr:])

    unsettled = tracker(1.0)
    for i in range(40):
        unsettled.update(sure_window(rng, "lte", "static"), i * WINDOW_S)
    for i in range(40, 48):
        result = unsettled.update(sure_window(rng, "nr", "vehicular"), i * WINDOW_S)
    assert result.mobility == "vehicular", "without the settling time the change reads as fading"


def test_a_jump_of_the_window_power_starts_a_new_track_and_fading_does_not():
    rng = np.random.default_rng(3)
    track = tracker(1.0, power_jump_db=10.0)
    powers = -30.0 + 3.0 * np.sin(np.arange(20) / 3.0)
    counts = [track.update(window(rng), i * WINDOW_S, power_db=p).windows for i, p in enumerate(powers)]
    assert counts == list(range(1, 21))
    assert track.update(window(rng), 20 * WINDOW_S, power_db=-15.0).windows == 1
    assert track.update(window(rng), 21 * WINDOW_S, power_db=math.nan).windows == 2, "an unknown power is no change"


def test_the_track_forgets_windows_older_than_its_span_and_a_stream_started_again():
    rng = np.random.default_rng(4)
    track = tracker(0.1)
    counts = [track.update(window(rng), i * WINDOW_S).windows for i in range(20)]
    assert counts[:6] == [1, 2, 3, 4, 5, 6] and set(counts[7:]) == {7}, "0.1 s holds 7 windows 16 ms apart"
    assert track.update(window(rng), 0.0).windows == 1


def test_a_window_that_cannot_be_judged_adds_nothing_and_ends_nothing():
    rng = np.random.default_rng(5)
    track = tracker(1.0)
    for i in range(5):
        track.update(window(rng), i * WINDOW_S)
    assert track.update(InvalidWindow("clipped"), 5 * WINDOW_S) is None
    assert track.update(window(rng), 6 * WINDOW_S).windows == 6


def test_noise_tracks_as_none_without_task_values():
    rng = np.random.default_rng(6)
    track = tracker(1.0)
    for i in range(5):
        values = track.update(window(rng, "none"), i * WINDOW_S)
    assert values.protocol == "none" and values.modulation is None and values.snr_db is None
    readout = build_readout(window(rng, "none"), window_start=0, tracked=values)
    assert readout["tracked_protocol"] == "none" and readout["tracked_modulation"] is None
    assert "[5 windows: none " in format_line(readout)


def test_a_gaussian_snr_is_tracked_as_the_precision_weighted_mean():
    rng = np.random.default_rng(7)
    track = tracker(1.0)
    estimates = []
    for i in range(60):
        router = noisy_probabilities(rng, CLASSES["protocol"], "wifi", 4.0)
        estimates.append(12.0 + 3.0 * rng.standard_normal())
        output = ModelOutput(
            "wifi",
            float(router.max()),
            snr_db=estimates[-1],
            snr_confidence=0.6,
            expert="wifi",
            probabilities={"protocol": router},
            snr_sigma_db=3.0,
        )
        values = track.update(output, i * WINDOW_S)
    assert values.snr_db == pytest.approx(np.mean(estimates), abs=0.05)
    assert abs(values.snr_db - 12.0) < 1.5
    assert values.snr_confidence == pytest.approx(math.erf(2.5 / (3.0 * math.sqrt(2.0))))


def test_a_doppler_estimate_is_tracked_over_the_settled_windows_weighed_by_their_precision():
    """A pedestrian at 40 Hz read through a noisy log-Doppler head, after a change whose straddling
    windows read 300 Hz: the tracked fD leaves those out and weighs the sure windows more."""
    rng = np.random.default_rng(9)
    runtime = SimpleNamespace(head_classes=CLASSES, snr_half_bin_db=2.5, past_reach_s=0.064)
    track = Tracker.for_runtime(runtime, 1.0)
    sigmas = np.where(np.arange(60) % 2, 0.1, 0.4)
    estimates = []
    for i in range(60):
        router = noisy_probabilities(rng, CLASSES["protocol"], "lte", 6.0)
        straddling = i * WINDOW_S < 0.064
        mean = math.log10(301.0) if straddling else math.log10(41.0) + sigmas[i] * rng.standard_normal()
        if not straddling:
            estimates.append((mean, sigmas[i]))
        output = ModelOutput(
            "lte",
            float(router.max()),
            mobility="pedestrian",
            mobility_confidence=0.9,
            doppler_hz=10.0**mean - 1.0,
            expert="lte",
            probabilities={"protocol": router, "mobility": np.array([0.05, 0.9, 0.05])},
            log_doppler=(mean, float(sigmas[i])),
        )
        values = track.update(output, i * WINDOW_S)
    weights = np.array([1.0 / s**2 for _, s in estimates])
    expected = 10.0 ** (np.sum(weights * [m for m, _ in estimates]) / weights.sum()) - 1.0
    assert values.doppler_hz == pytest.approx(expected, abs=0.06)
    assert 30.0 < values.doppler_hz < 55.0
    readout = build_readout(output, window_start=0, tracked=values)
    assert readout["tracked_doppler_hz"] == values.doppler_hz
    assert f"(fD {values.doppler_hz:.0f} Hz)]" in format_line(readout)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"span_s": -1.0}, r"track span -1.0 s: give a positive number of seconds"),
        ({"span_s": math.nan}, r"track span nan s"),
        ({"span_s": 0.0}, r"track span 0.0 s"),
        ({"power_jump_db": math.nan}, r"track power jump nan dB: give a positive number of dB"),
        ({"power_jump_db": -3.0}, r"track power jump -3.0 dB"),
        ({"change_windows": 0}, r"track change windows 0: give a whole number of windows, 1 or more"),
        ({"mobility_settle_s": -0.1}, r"track mobility settle -0.1 s: give 0 or a positive number of seconds"),
    ],
)
def test_bad_tracking_settings_are_refused_with_what_to_give(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tracker(**kwargs)


def test_a_tracker_needs_the_router_probabilities():
    with pytest.raises(ValueError, match="router's probabilities"):
        tracker().update(ModelOutput("lte", 0.9), 0.0)
