"""Scenario loading: the hand-made fixture, the committed ray-traced sites, and the error paths."""

import builtins
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lwmspectro import cli, scenarios
from lwmspectro.scenarios import loader

from test_bad_input import pickled_scenario

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "scenarios"
SPEED_OF_LIGHT = 299_792_458.0


@pytest.fixture
def no_stdin(monkeypatch):
    """Fail the test if anything asks a question on stdin."""

    def refuse(*_):
        raise AssertionError("stdin was read")

    monkeypatch.setattr(builtins, "input", refuse)


def test_fixture_paths_match_the_hand_made_values():
    sc = scenarios.load_scenario("tiny_site", FIXTURES)
    assert (sc.name, sc.n_users, sc.carrier_hz) == ("tiny_site", 3, 3.5e9)
    np.testing.assert_array_equal(scenarios.active_users(sc), [0, 2])
    direct = scenarios.user_paths(sc, 0)
    np.testing.assert_allclose(direct.delays_s, [100e-9, 250e-9], rtol=1e-6)
    np.testing.assert_allclose(direct.powers_lin, [1e-8, 1e-9], rtol=1e-6)
    assert direct.los is True
    # Stored strongest first; handed out by delay, each power staying with its own delay.
    reflected = scenarios.user_paths(sc, 2)
    np.testing.assert_allclose(reflected.delays_s, [300e-9, 400e-9], rtol=1e-6)
    np.testing.assert_allclose(reflected.powers_lin, [1e-10, 10**-9.5], rtol=1e-6)
    assert reflected.los is False
    np.testing.assert_allclose(sc.tx_position_m, [0.0, 0.0, 10.0])


def test_users_without_paths_or_out_of_range_are_refused():
    sc = scenarios.load_scenario("tiny_site", FIXTURES)
    with pytest.raises(ValueError, match="active_users"):
        scenarios.user_paths(sc, 1)
    with pytest.raises(ValueError, match=r"0\.\.2"):
        scenarios.user_paths(sc, 3)


def test_loading_is_cached_per_process():
    first = scenarios.load_scenario("tiny_site", FIXTURES)
    assert scenarios.load_scenario("tiny_site", str(FIXTURES)) is first


def test_split_names_are_committed_and_disjoint():
    committed = scenarios.list_scenarios()
    assert scenarios.HELDOUT_SCENARIO not in scenarios.TRAIN_SCENARIOS
    assert set(scenarios.TRAIN_SCENARIOS) | {scenarios.HELDOUT_SCENARIO} <= set(committed)


@pytest.mark.parametrize("name", scenarios.list_scenarios())
def test_committed_scenario_loads_with_physical_paths(name, no_stdin):
    sc = scenarios.load_scenario(name)
    users = scenarios.active_users(sc)
    assert len(users) >= 0.3 * sc.n_users > 0
    assert 1e9 < sc.carrier_hz < 7e9
    for user in users[:: max(1, len(users) // 25)]:
        paths = scenarios.user_paths(sc, user)
        assert np.all(np.isfinite(paths.delays_s)) and np.all(paths.delays_s > 0)
        assert np.all(np.diff(paths.delays_s) >= 0) and np.all(paths.powers_lin > 0)
    # A line-of-sight user's first path is the direct ray: its delay is the distance over c.
    los_users = users[sc.los[users]]
    assert len(los_users) > 0
    for user in los_users[:: max(1, len(los_users) // 10)]:
        distance = np.linalg.norm(sc.rx_positions_m[user] - sc.tx_position_m)
        assert scenarios.user_paths(sc, user).delays_s[0] * SPEED_OF_LIGHT == pytest.approx(distance, rel=1e-3)


def test_missing_scenario_names_folder_and_what_exists(no_stdin):
    with pytest.raises(FileNotFoundError) as err:
        scenarios.load_scenario("o1_60", FIXTURES)
    message = str(err.value)
    assert str(FIXTURES) in message and "tiny_site" in message and "lwmspectro scenarios build" in message


def test_missing_scenario_with_stdin_closed_fails_fast():
    code = "from lwmspectro.scenarios import load_scenario\nload_scenario('o1_60', 'nowhere')"
    done = subprocess.run(
        [sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "FileNotFoundError" in done.stderr and "scenarios there: none" in done.stderr
    assert "Would you like to download" not in done.stdout


def test_deepmimo_stdin_question_becomes_an_error():
    with loader._quiet_deepmimo(FIXTURES), pytest.raises(FileNotFoundError, match="stdin"):
        input("Scenario not found. Would you like to download it? [Y/n]")
    assert builtins.input is not loader._refuse_stdin


def test_cli_list_and_show(capsys):
    assert cli.main(["scenarios", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"{scenarios.HELDOUT_SCENARIO}" in listing and "held-out" in listing
    assert cli.main(["scenarios", "show", "tiny_site", "--folder", str(FIXTURES)]) == 0
    shown = capsys.readouterr().out
    assert "3.500 GHz" in shown and "3 (2 with paths, 1 line-of-sight)" in shown


def test_cli_build_refuses_unknown_scene_and_missing_venv(capsys, tmp_path):
    assert cli.main(["scenarios", "build", "--scene", "atlantis"]) == 2
    assert "valid choices" in capsys.readouterr().err
    assert cli.main(["scenarios", "build", "--rt-python", str(tmp_path / "python"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "-m venv" in err and "tools/rt/requirements.txt" in err


def test_a_scenario_holding_an_object_array_is_refused_before_anything_is_unpickled(tmp_path):
    folder = pickled_scenario(tmp_path)["scenarios"]
    with pytest.raises(ValueError, match=r"delay_t000_tx000_r001\.npz: not a plain numeric array file"):
        scenarios.load_scenario("tiny_site", folder)
    assert not (tmp_path / "ran").exists()


def _damaged(tmp_path: Path, damage) -> Path:
    """A copy of the tiny_site fixture, `damage(folder)` done to it."""
    root = tmp_path / "scenarios"
    shutil.copytree(FIXTURES / "tiny_site", root / "tiny_site")
    damage(root / "tiny_site")
    return root


def _power(folder: Path) -> Path:
    return next(folder.glob("power_*.npz"))


def _rewrite_power(folder: Path, change) -> None:
    with np.load(_power(folder)) as saved:
        arrays = {name: saved[name] for name in saved.files}
    np.savez(_power(folder), **change(arrays))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "params.json").write_text("[]"), r"its files cannot be read \(\w+Error"),
        (lambda f: (f / "params.json").write_text("{cut"), r"its files cannot be read"),
        (lambda f: _power(f).unlink(), r"its files cannot be read|power has"),
        (
            lambda f: _power(f).write_bytes(_power(f).read_bytes()[:50]),
            r"power_t000_tx000_r001\.npz: not a plain numeric",
        ),
        (
            lambda f: _rewrite_power(f, lambda a: {"other": next(iter(a.values()))}),
            r"its files cannot be read|power has",
        ),
        (
            lambda f: _rewrite_power(f, lambda a: {k: v[:1] for k, v in a.items()}),
            r"its files cannot be read \(IndexError|power has \(1,\) rows, not one per user \(3\)",
        ),
        (
            lambda f: _rewrite_power(f, lambda a: {k: np.full_like(v, np.nan) for k, v in a.items()}),
            r"power holds NaN or infinite values",
        ),
    ],
)
def test_a_damaged_scenario_folder_is_refused_naming_it(tmp_path, no_stdin, damage, message):
    root = _damaged(tmp_path, damage)
    with pytest.raises(ValueError, match=message) as err:
        loader._load_cached("tiny_site", str(root))
    assert "'tiny_site'" in str(err.value) or "power_t000" in str(err.value)
