"""Channels of the LWM paper (Table I) from DeepMIMO v4 scenarios."""

import json
from pathlib import Path

import numpy as np
import pytest

from lwmspectro.lwm_channels import (
    ChannelPaths,
    channel_planes,
    paths_channels,
    random_paths,
    scenario_channels,
    subcarrier_frequencies,
    ula_steering,
)

SUFFIX = "_t000_tx000_r001.npz"
NAN = np.nan
CARRIER_HZ = 3.5e9


def write_scenario(root: Path, name: str, paths: dict[str, list]) -> Path:
    """A DeepMIMO v4 scenario of plain arrays with the path data a channel needs."""
    folder = root / name
    folder.mkdir(parents=True)
    users = len(paths["delay"])
    width = len(paths["delay"][0])
    txrx = {"num_ant": 1, "dual_pol": False, "ant_rel_positions": [[0.0], [0.0], [0.0]]}
    txrx |= {"array_orientation": [0, 0, 0], "grid_spacing": None}
    params = {
        "version": "4.0.5",
        "rt_params": {"raytracer_name": "test", "raytracer_version": "0", "frequency": CARRIER_HZ},
        "txrx_sets": {
            "txrx_set_0": txrx
            | {
                "name": "tx",
                "id_orig": 0,
                "id": 0,
                "is_tx": True,
                "is_rx": False,
                "num_points": 1,
                "num_active_points": 1,
            },
            "txrx_set_1": txrx
            | {
                "name": "rx",
                "id_orig": 1,
                "id": 1,
                "is_tx": False,
                "is_rx": True,
                "num_points": users,
                "num_active_points": users,
            },
        },
        "materials": {},
        "scene": {"num_scenes": 1, "n_objects": 0, "representation": "hull"},
    }
    (folder / "params.json").write_text(json.dumps(params))
    (folder / "objects.json").write_text("[]")
    np.savez_compressed(folder / "vertices.npz", vertices=np.zeros((0, 3), np.float32))
    blank = [[NAN] * width] * users
    arrays = {"aoa_az": [[0.0 if np.isfinite(d) else NAN for d in row] for row in paths["delay"]]}
    arrays |= {"rx_pos": [[10.0 * u, 20.0, 1.5] for u in range(users)], "tx_pos": [[0.0, 0.0, 10.0]]}
    arrays |= {"aoa_el": blank} | paths
    for key, values in arrays.items():
        np.savez_compressed(folder / f"{key}{SUFFIX}", **{key: np.asarray(values, np.float32)})
    return root


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    """User 0: a direct path and a 20 dB weaker reflection; user 1: no path; user 2: two equal reflections."""
    return write_scenario(
        tmp_path_factory.mktemp("scenarios"),
        "toy",
        {
            "delay": [[100e-9, 250e-9], [NAN, NAN], [400e-9, 300e-9]],
            "power": [[-80.0, -100.0], [NAN, NAN], [-95.0, -95.0]],
            "phase": [[30.0, -60.0], [NAN, NAN], [0.0, 90.0]],
            "aod_az": [[20.0, 100.0], [NAN, NAN], [200.0, -30.0]],
            "aod_el": [[100.0, 85.0], [NAN, NAN], [90.0, 90.0]],
            "inter": [[0.0, 1.0], [NAN, NAN], [11.0, 1.0]],
        },
    )


def test_channels_of_active_users_have_the_papers_shape(toy_root):
    result = scenario_channels("toy", toy_root)
    assert result.channels.shape == (2, 32, 32)
    assert result.channels.dtype == np.complex64
    assert result.user_indices.tolist() == [0, 2]
    assert result.los.dtype == bool and result.los.tolist() == [True, False]
    assert result.carrier_hz == CARRIER_HZ and result.scenario == "toy"


def test_a_scenarios_channels_come_with_the_paths_that_make_them(toy_root):
    result = scenario_channels("toy", toy_root, antennas=8, subcarriers=4)
    np.testing.assert_array_equal(paths_channels(result.paths, antennas=8, subcarriers=4), result.channels)
    narrow, _ = random_paths(np.random.default_rng(0), 3, max_paths=1)
    both = ChannelPaths.concatenate([narrow, result.paths])
    made = paths_channels(both, antennas=8, subcarriers=4)
    np.testing.assert_array_equal(made[3:], result.channels)
    np.testing.assert_array_equal(made[:3], paths_channels(narrow, antennas=8, subcarriers=4))


def test_a_los_channel_concentrates_in_few_dft_beams(toy_root):
    result = scenario_channels("toy", toy_root)
    beams = np.fft.fft(result.channels, axis=1, norm="ortho")
    beam_power = (np.abs(beams) ** 2).sum(axis=2)
    strongest_share = np.sort(beam_power, axis=1)[:, -4:].sum(axis=1) / beam_power.sum(axis=1)
    los_user = 0
    direct_path_beam = 32 * np.sin(np.deg2rad(100.0)) * np.sin(np.deg2rad(20.0)) / 2
    assert result.los[los_user]
    assert strongest_share[los_user] > 0.85
    assert abs(np.argmax(beam_power[los_user]) - direct_path_beam) <= 1


def test_single_path_response_is_steering_times_delay_phase(tmp_path):
    delay_s, power_dbw, phase_deg, azimuth_deg, zenith_deg = 180e-9, -70.0, 40.0, 35.0, 102.0
    root = write_scenario(
        tmp_path,
        "one_path",
        {
            "delay": [[delay_s]],
            "power": [[power_dbw]],
            "phase": [[phase_deg]],
            "aod_az": [[azimuth_deg]],
            "aod_el": [[zenith_deg]],
            "inter": [[0.0]],
        },
    )
    result = scenario_channels("one_path", root, bandwidth_hz=10e6, antennas=8, subcarriers=16)
    antenna = np.arange(8)
    spatial = np.pi * np.sin(np.deg2rad(zenith_deg)) * np.sin(np.deg2rad(azimuth_deg))
    frequencies = np.arange(16) * 10e6 / 16
    gain = 10 ** (power_dbw / 20) * np.exp(1j * np.deg2rad(phase_deg))
    expected = gain * np.outer(np.exp(1j * spatial * antenna), np.exp(-2j * np.pi * frequencies * delay_s))
    assert np.allclose(result.channels[0], expected, rtol=1e-5, atol=1e-3 * abs(gain))
    assert np.allclose(ula_steering(8, azimuth_deg, zenith_deg), np.exp(1j * spatial * antenna))
    assert np.allclose(subcarrier_frequencies(16, 10e6), frequencies)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"carrier_hz": 0.0}, "carrier_hz"),
        ({"carrier_hz": -1e9}, "carrier_hz"),
        ({"carrier_hz": 28e9}, "carrier_hz"),
        ({"bandwidth_hz": 0.0}, "bandwidth_hz"),
        ({"antennas": 0}, "antennas"),
        ({"subcarriers": 0}, "subcarriers"),
    ],
)
def test_bad_input_names_the_field(toy_root, arguments, field):
    with pytest.raises(ValueError, match=field):
        scenario_channels("toy", toy_root, **arguments)


def test_unknown_site_is_named(toy_root):
    with pytest.raises(ValueError, match="no_such_site"):
        scenario_channels("no_such_site", toy_root)


def test_shipped_site_without_departure_angles_names_what_is_missing():
    with pytest.raises(ValueError, match="phase, aod_az, aod_el"):
        scenario_channels("munich")


def test_random_paths_give_los_users_a_direct_path_first_and_strongest():
    paths, los = random_paths(np.random.default_rng(0), 400, max_paths=5)
    assert los.dtype == bool and 0.4 < los.mean() < 0.6
    present = np.isfinite(paths.delay_s)
    assert present[:, 0].all()
    power = np.where(present, paths.power_db, -np.inf)
    delay = np.where(present, paths.delay_s, np.inf)
    assert (np.argmax(power[los], axis=1) == 0).all() and (np.argmin(delay[los], axis=1) == 0).all()
    channels = paths_channels(paths, antennas=32, subcarriers=32)
    assert channels.shape == (400, 32, 32) and channels.dtype == np.complex64
    beams = (np.abs(np.fft.fft(channels, axis=1)) ** 2).sum(axis=2)
    share = beams.max(axis=1) / beams.sum(axis=1)
    power_db = 10 * np.log10(beams.sum(axis=1))
    assert np.median(share[los]) > np.median(share[~los]) + 0.1
    assert np.median(power_db[los]) > np.median(power_db[~los]) + 5.0


def test_other_phases_change_the_channel_but_not_its_beam_power_of_one_path():
    paths, _ = random_paths(np.random.default_rng(1), 3, max_paths=1, los_probability=1.0)
    moved = paths.with_phases(paths.phase_deg + 90.0)
    a, b = paths_channels(paths), paths_channels(moved)
    np.testing.assert_allclose(b, a * np.exp(1j * np.pi / 2), rtol=1e-4, atol=1e-9)


def test_channel_planes_are_the_real_and_imaginary_parts():
    h = np.array([[[1 + 2j, 3 - 4j]]], np.complex64)
    planes = channel_planes(h)
    assert planes.shape == (1, 2, 1, 2) and planes.dtype == np.float32
    assert planes[0, 0].tolist() == [[1.0, 3.0]] and planes[0, 1].tolist() == [[2.0, -4.0]]
