"""Sites for the LWM channel model: the scenario builder's options, tested without Sionna RT, and
a site it traced at two carriers (tests/fixtures/lwm_sites)."""

import stat
from pathlib import Path

import numpy as np
import pytest

from lwmspectro import cli, scenarios
from lwmspectro.commands import scenarios as scenarios_command
from lwmspectro.lwm_channels import CHANNEL_MATRICES, scenario_channels

builder = scenarios_command.load_builder()
SITES = Path(__file__).resolve().parent / "fixtures" / "lwm_sites"
SUB6, MMWAVE = "street_canyon_3p5ghz", "street_canyon_28ghz"


def test_a_site_traced_at_each_carrier_is_one_scenario_named_by_it():
    assert builder.site_name("munich", 3.5e9) == "munich_3p5ghz"
    assert builder.site_name("munich", 28e9) == "munich_28ghz"
    assert builder.site_name("street_canyon_cars", 2.65e9) == "street_canyon_cars_2p65ghz"
    assert builder.site_name("munich", None) == "munich"


def test_two_carriers_that_would_share_a_name_are_refused():
    with pytest.raises(SystemExit):
        builder.parse_arguments(["--out", "x", "--carrier-ghz", "3.5", "3.50"])


def test_channel_paths_keep_phases_and_departure_angles_beside_the_tdl_matrices():
    matrices = ("delay", "power", "inter", "aoa_az", "aoa_el", "aod_az", "aod_el", "phase", "rx_pos", "tx_pos")
    files = [f"{m}_t000_tx000_r001.npz" for m in (*matrices, "inter_pos")] + ["params.json", "vertices.npz"]
    tdl = {f for f in files if builder.kept_file(f, builder.TDL_MATRICES)}
    channel = {f for f in files if builder.kept_file(f, builder.CHANNEL_MATRICES)}
    assert tdl == {"params.json"} | {f"{m}_t000_tx000_r001.npz" for m in builder.TDL_MATRICES}
    assert channel - tdl == {f"{m}_t000_tx000_r001.npz" for m in ("phase", "aod_az", "aod_el")}
    assert set(CHANNEL_MATRICES) <= set(builder.CHANNEL_MATRICES)


def test_a_denser_grid_lays_more_users_over_the_same_ground():
    recipe = builder.RECIPES["munich"]
    dense = builder.densify(recipe, 5)
    assert dense.grid_points_per_side == 136 and dense.grid_spacing_m == pytest.approx(1.8)
    extent = (recipe.grid_points_per_side - 1) * recipe.grid_spacing_m
    assert (dense.grid_points_per_side - 1) * dense.grid_spacing_m == pytest.approx(extent)
    assert builder.densify(recipe, 1) == recipe
    with pytest.raises(ValueError, match="at least 1"):
        builder.densify(recipe, 0)


def test_max_users_spreads_them_over_the_grid():
    assert builder.spread_users(10, None).tolist() == list(range(10))
    assert builder.spread_users(10, 4).tolist() == [0, 3, 6, 9]
    assert builder.spread_users(3, 8).tolist() == [0, 1, 2]


def test_stored_phases_are_those_of_the_baseband_path_coefficients():
    carrier = 28e9
    rng = np.random.default_rng(0)
    phase = rng.uniform(-180.0, 180.0, (4, 3))
    delay = rng.uniform(50e-9, 2e-6, (4, 3))
    phase[3, 2] = delay[3, 2] = np.nan
    stored = builder.baseband_phase_deg(phase, delay, carrier)
    expected = np.exp(1j * (np.deg2rad(phase) - 2 * np.pi * carrier * delay))
    valid = np.isfinite(delay)
    np.testing.assert_allclose(np.exp(1j * np.deg2rad(stored[valid])), expected[valid], atol=1e-5)
    assert np.isnan(stored[3, 2]) and ((stored[valid] >= -180.0) & (stored[valid] < 180.0)).all()


def test_build_passes_the_lwm_options_on_and_writes_outside_the_package(tmp_path):
    argv_file = tmp_path / "argv"
    fake_python = tmp_path / "python"
    fake_python.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {argv_file}\n')
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IEXEC)
    command = ["scenarios", "build", "--scene", "munich", "--channel-paths", "--carrier-ghz", "3.5", "28"]
    assert cli.main([*command, "--grid-density", "5", "--rt-python", str(fake_python)]) == 0
    assert argv_file.read_text().splitlines() == [
        str(scenarios_command.BUILDER),
        "--out",
        str(scenarios_command.LWM_SITES_DEFAULT),
        "--scene",
        "munich",
        "--channel-paths",
        "--carrier-ghz",
        "3.5",
        "28.0",
        "--grid-density",
        "5",
    ]


def test_a_site_pair_gives_the_same_users_channels_at_both_carriers():
    sub6, mmwave = scenario_channels(SUB6, SITES), scenario_channels(MMWAVE, SITES)
    assert sub6.carrier_hz == 3.5e9 and mmwave.carrier_hz == 28e9
    assert sub6.channels.shape == mmwave.channels.shape == (16, 32, 32)
    assert sub6.user_indices.tolist() == mmwave.user_indices.tolist() == list(range(16))
    assert sub6.los.tolist() == mmwave.los.tolist() and 0 < sub6.los.sum() < 16
    assert np.isfinite(sub6.channels).all() and np.isfinite(mmwave.channels).all()
    # Free-space loss grows with the carrier: the mmWave channels are weaker.
    assert np.mean(np.abs(mmwave.channels) ** 2) < np.mean(np.abs(sub6.channels) ** 2) / 10


def test_the_spectrogram_loader_reads_the_lwm_sites_too():
    sub6, mmwave = scenarios.load_scenario(SUB6, SITES), scenarios.load_scenario(MMWAVE, SITES)
    assert sub6.n_users == mmwave.n_users == 16
    np.testing.assert_array_equal(sub6.rx_positions_m, mmwave.rx_positions_m)
    np.testing.assert_array_equal(sub6.tx_position_m, mmwave.tx_position_m)
    assert scenarios.user_paths(sub6, 0).delays_s.size > 0


@pytest.mark.parametrize("name", [SUB6, MMWAVE])
def test_a_line_of_sight_channel_points_its_strongest_beam_at_the_user(name):
    """The traced departure angles and the channel formula agree on where the user is."""
    made = scenario_channels(name, SITES)
    site = scenarios.load_scenario(name, SITES)
    towards = site.rx_positions_m[made.user_indices] - site.tx_position_m
    geometric = towards[:, 1] / np.linalg.norm(towards, axis=1)  # sin(zenith) sin(azimuth) of the direct path
    u = -1.0 + 2.0 * np.arange(256) / 256
    beams = np.exp(1j * np.pi * u[:, None] * np.arange(32))
    gain = (np.abs(np.einsum("bm,umn->ubn", beams.conj(), made.channels)) ** 2).sum(axis=2)
    strongest = u[gain.argmax(axis=1)]
    assert np.abs(strongest - geometric)[made.los].max() < 2.0 / 32  # within one beam width of 32 antennas
