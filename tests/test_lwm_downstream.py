"""The LWM paper's downstream tasks on self-made channels: LoS/NLoS and beam prediction code paths."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lwmspectro import cli
from lwmspectro.lwm_channels import channel_planes, paths_channels, random_paths, ula_steering
from lwmspectro.lwm_embed import LwmBundle
from lwmspectro_train.lwm.downstream import (
    FINE_TUNED_LAYERS,
    BeamHead,
    FineTunedCls,
    HeadTraining,
    LosHead,
    beam_model,
    beam_probe,
    best_beams,
    dft_codebook,
    distinct_fractions,
    draw_training_users,
    fit,
    fraction_sweep,
    frozen_tokens,
    los_inputs,
    los_model,
    raw_patches,
    sub6_beam_reference,
    training_count,
)
from lwmspectro_train.lwm.export import load_encoder
from lwmspectro_train.model import count_parameters

QUICK = HeadTraining(epochs=30, batch_size=16, lr=1e-3)


def small_beam_head(name, shape, classes):
    """The residual CNN at a width a test trains in seconds."""
    return BeamHead(shape[-1], classes, width=16, hidden=32)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("lwm")
    run_dir, out = root / "run", root / "bundle"
    assert cli.main(["lwm", "pretrain", "--config", "lwm-tiny", "--set", f"run_dir={run_dir}", "--no-progress"]) == 0
    assert cli.main(["lwm", "export", "--run", str(run_dir), "--out", str(out), "--parity-channels", "8"]) == 0
    return LwmBundle.load(out)


def test_dft_beams_are_orthonormal_and_find_a_single_path():
    codebook = dft_codebook(16, 16)
    np.testing.assert_allclose(codebook.conj() @ codebook.T, np.eye(16), atol=1e-9)
    azimuth = np.rad2deg(np.arcsin(0.25))
    channel = ula_steering(16, np.array([azimuth]), np.array([90.0]))[..., None] * np.ones((1, 1, 4))
    assert best_beams(channel, 16).tolist() == [10]  # u = -1 + 2 * 10 / 16 = 0.25
    assert best_beams(channel, 64).tolist() == [40]


def test_the_untrained_beam_reference_reads_each_users_direction_off_its_sub6_channel():
    azimuth = np.rad2deg(np.arcsin(np.linspace(-0.9, 0.9, 40)))
    steering = ula_steering(32, azimuth, np.full(40, 90.0))[..., None] * np.ones((1, 1, 4))
    rows = sub6_beam_reference(steering, 2j * steering, (16, 64))
    scores = [(r["beams"], r["test_users"], r["accuracy"], r["f1"]) for r in rows]
    assert scores == [(16, 4, 1.0, 1.0), (64, 4, 1.0, 1.0)]
    reversed_users = sub6_beam_reference(steering, steering[::-1], (16,))[0]
    assert reversed_users["accuracy"] < 0.5


def test_heads_have_the_papers_shape():
    los = LosHead(2048)
    assert [m.out_features for m in los.layers if isinstance(m, torch.nn.Linear)] == [512, 256, 128, 2]
    assert los(torch.randn(4, 128, 16)).shape == (4, 2)
    beam = beam_model("channel", (128, 64), 64)
    assert isinstance(beam, BeamHead) and 300_000 < count_parameters(beam) < 600_000
    assert beam(torch.randn(4, 128, 64)).shape == (4, 64)


def test_fine_tuning_trains_the_last_layers_with_the_head_and_leaves_the_bundle_encoder_alone(bundle):
    encoder = load_encoder(bundle.checkpoint)
    before = {name: p.clone() for name, p in encoder.state_dict().items()}
    tuned = FineTunedCls(encoder, LosHead(16), layers=1)
    assert FINE_TUNED_LAYERS == 3
    assert len(tuned.blocks) == 1  # lwm-tiny has two blocks: the last one trains
    paths, los = random_paths(np.random.default_rng(3), 40)
    channels = paths_channels(paths, antennas=8, subcarriers=8, bandwidth_hz=5e6)
    tokens = torch.from_numpy(frozen_tokens(encoder, channels, layers=1))
    with torch.no_grad():
        cls, _ = encoder(torch.from_numpy(channel_planes(channels)))
        tuned.eval()
        torch.testing.assert_close(encoder.blocks[-1](tokens)[:, 0], cls)  # the frozen part is the encoder's
    fit(tuned, tokens, torch.from_numpy(los.astype(np.int64)), QUICK, 0)
    trained = zip(tuned.blocks[0].parameters(), encoder.blocks[-1].parameters())
    assert any(not torch.equal(mine, pretrained) for mine, pretrained in trained)
    assert all(torch.equal(p, before[name]) for name, p in encoder.state_dict().items())


def test_los_sweep_scores_every_representation_at_every_fraction(bundle):
    paths, los = random_paths(np.random.default_rng(0), 160)
    channels = paths_channels(paths, antennas=8, subcarriers=8, bandwidth_hz=5e6)
    inputs = los_inputs(channels, bundle, encoder=load_encoder(bundle.checkpoint))
    assert inputs["raw"].shape == (160, 32, 4) and inputs["channel"].shape == (160, 32, 16)
    assert inputs["cls"].shape == inputs["cls_noisy_5db"].shape == (160, 16)
    rows = fraction_sweep(inputs, los, [0.05, 0.8], los_model(load_encoder(bundle.checkpoint)), QUICK)
    assert [(r["representation"], r["train_samples"]) for r in rows][:5] == [
        (name, 8) for name in ("raw", "cls", "channel", "cls_noisy_5db", "cls_finetuned")
    ]
    assert all(0.0 <= r["f1"] <= 1.0 for r in rows)
    raw_at_80 = next(r["f1"] for r in rows if r["representation"] == "raw" and r["fraction"] == 0.8)
    assert raw_at_80 > 0.6


def test_beam_prediction_maps_sub6_channels_to_the_mmwave_beam(bundle):
    rng = np.random.default_rng(1)
    paths, _ = random_paths(rng, 160, los_probability=1.0, max_paths=2)
    sub6 = paths_channels(paths, antennas=8, subcarriers=8, bandwidth_hz=5e6)
    mmwave = paths_channels(paths.with_phases(rng.uniform(-180, 180, paths.phase_deg.shape)), antennas=16)
    beams = best_beams(mmwave, 16)
    inputs = {"raw": raw_patches(sub6, bundle), "channel": los_inputs(sub6, bundle)["channel"]}
    rows = fraction_sweep(inputs, beams, [0.8], small_beam_head, QUICK, classes=16)
    assert {r["representation"] for r in rows} == {"raw", "channel"}
    assert all(0.0 <= r["f1"] <= 1.0 for r in rows)


def test_the_beam_probe_learns_the_beam_from_the_direction_profile_and_scores_every_input(bundle):
    """Line-of-sight users of one path: the mmWave best beam is the sub-6 GHz channel's direction."""
    rng = np.random.default_rng(4)
    paths, _ = random_paths(rng, 300, los_probability=1.0, max_paths=1)
    sub6 = paths_channels(paths, antennas=8, subcarriers=8, bandwidth_hz=5e6)
    mmwave = paths_channels(paths.with_phases(rng.uniform(-180, 180, paths.phase_deg.shape)), antennas=8)
    rows = beam_probe(bundle, sub6, mmwave, (8,), (0.7,), QUICK)
    scores = {r["representation"]: r["f1"] for r in rows}
    assert set(scores) == {"raw_unit_rms", "cls", "channel", "sub6_direction"}
    assert all(r["task"] == "beam_probe" and r["beams"] == 8 and r["train_samples"] == 210 for r in rows)
    assert scores["sub6_direction"] > 0.8 and scores["sub6_direction"] > scores["raw_unit_rms"]


def test_repeated_draws_report_the_mean_and_spread_of_each_fraction():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 80)
    inputs = {"informative": labels[:, None] + 0.1 * rng.normal(size=(80, 4)), "noise": rng.normal(size=(80, 4))}
    small_mlp = lambda name, shape, classes: LosHead(4, classes, (8,))  # noqa: E731
    rows = fraction_sweep(inputs, labels, [0.1], small_mlp, QUICK, repeats=3)
    for row in rows:
        assert len(row["f1_runs"]) == 3
        assert row["f1"] == pytest.approx(np.mean(row["f1_runs"]))
        assert row["f1_std"] == pytest.approx(np.std(row["f1_runs"]))
    scores = {r["representation"]: r["f1"] for r in rows}
    assert scores["informative"] > 0.9 > scores["noise"]


def test_a_few_shot_draw_holds_both_classes_and_a_draw_that_did_is_kept_as_drawn():
    """Six users out of a pool where one user in ten is LoS: most plain draws hold NLoS alone."""
    labels = np.zeros(200, np.int64)
    labels[::10] = 1
    pool = np.arange(40, 200)
    for draw in range(20):
        key = (0, 4, 6, draw)
        train = draw_training_users(labels, pool, 6, key)
        plain = np.random.default_rng(list(key)).permutation(pool)[:6]
        assert len(train) == 6 and set(train) <= set(pool) and set(labels[train]) == {0, 1}
        if len(set(labels[plain])) == 2:
            np.testing.assert_array_equal(train, plain)
    one_class = np.zeros(200, np.int64)
    np.testing.assert_array_equal(
        draw_training_users(one_class, pool, 6, (0, 4, 6, 0)), np.random.default_rng([0, 4, 6, 0]).permutation(pool)[:6]
    )


def test_cli_writes_a_report_with_the_command_and_the_bundle_on_top(bundle, tmp_path, capsys):
    out = tmp_path / "los.json"
    command = ["lwm", "downstream", "--bundle", str(bundle.path), "--task", "los", "--synthetic", "60"]
    assert cli.main([*command, "--fractions", "0.1,0.5", "--epochs", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["command"].startswith("lwmspectro lwm downstream --bundle")
    assert report["bundle"]["name"] == "lwm-tiny" and len(report["bundle"]["card_sha256"]) == 64
    assert len(report["rows"]) == 2 * 5 and report["users"] == 60
    assert "cls_finetuned" in capsys.readouterr().out
    assert cli.main([*command[:-2], "--out", str(out)]) == 2
    assert "--scenario NAME or --synthetic USERS" in capsys.readouterr().err


def test_cli_runs_the_beam_probe_with_a_bound_on_the_head_updates(bundle, tmp_path, capsys):
    out = tmp_path / "probe.json"
    command = ["lwm", "downstream", "--bundle", str(bundle.path), "--task", "beam-probe", "--synthetic", "80"]
    assert cli.main([*command, "--beams", "8", "--fractions", "0.5", "--max-updates", "3", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["representation"] for r in rows] == ["raw_unit_rms", "cls", "channel", "sub6_direction"]
    assert "sub6_direction" in capsys.readouterr().out


def test_fractions_that_train_on_the_same_users_are_swept_once():
    assert distinct_fractions([0.01, 6 / 1122, 0.005, 0.001], 1122) == [0.001, 0.005, 0.01]
    assert training_count(6 / 1122, 1122, 898) == 6 and training_count(0.9, 1122, 898) == 898
