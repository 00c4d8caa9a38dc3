"""LWM pretraining runs, the channel model bundle and `lwmspectro embed`, end to end on self-made channels."""

import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_lwm_channels import write_scenario

from lwmspectro import cli
from lwmspectro.bundle import BundleError
from lwmspectro.lwm_channels import channel_planes, paths_channels, random_paths
from lwmspectro.lwm_embed import ChannelEmbedder, LwmBundle
from lwmspectro_train.distributed import Context
from lwmspectro_train.lwm.data import PhaseDrawSet
from lwmspectro_train.lwm.export import load_encoder, load_objective
from lwmspectro_train.lwm.train import LwmRunConfig, initial_objective, load_config, pretrain, step_decay
from lwmspectro_train.trainer import BEST, CHECKPOINT, load_checkpoint


def tiny_config(run_dir: Path, *overrides: str):
    return load_config("lwm-tiny", [f"run_dir={run_dir}", *overrides])


def channels(users: int, seed: int) -> np.ndarray:
    paths, _ = random_paths(np.random.default_rng(seed), users)
    return paths_channels(paths, antennas=8, subcarriers=8, bandwidth_hz=5e6)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """lwm-tiny pretrained and exported through the command line."""
    root = tmp_path_factory.mktemp("lwm")
    run_dir, out = root / "run", root / "bundle"
    assert cli.main(["lwm", "pretrain", "--config", "lwm-tiny", "--set", f"run_dir={run_dir}", "--no-progress"]) == 0
    assert cli.main(["lwm", "export", "--run", str(run_dir), "--out", str(out), "--parity-channels", "8"]) == 0
    return out


def test_named_configs_load_and_a_misspelt_key_is_named():
    assert load_config("lwm").pretrain.lr == 1e-4
    assert load_config("lwm").model.channel_scale == 1e6
    assert load_config("lwm-draws").data.phase_draws == 8
    with pytest.raises(ValueError, match="lr_decays"):
        load_config("lwm-tiny", ["pretrain.lr_decays=0.5"])
    with pytest.raises(ValueError, match="no channels"):
        load_config("lwm-tiny", ["data.synthetic_users=0"])
    with pytest.raises(ValueError, match="missing: data"):
        LwmRunConfig.from_dict({"name": "x", "run_dir": "runs/x"})


@pytest.mark.parametrize("phase_draws", [1, 3])
def test_a_paused_and_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path, phase_draws):
    whole = tiny_config(tmp_path / "whole", f"data.phase_draws={phase_draws}")
    assert pretrain(whole, Context(), progress=False)["complete"]
    paused = tiny_config(tmp_path / "paused", f"data.phase_draws={phase_draws}", "pretrain.max_steps=5")
    assert not pretrain(paused, Context(), progress=False)["complete"]
    resumed = tiny_config(tmp_path / "paused", f"data.phase_draws={phase_draws}")
    assert pretrain(resumed, Context(), resume=True, progress=False)["complete"]
    a = load_checkpoint(tmp_path / "whole" / "pretrain" / CHECKPOINT)["model"]
    b = load_checkpoint(tmp_path / "paused" / "pretrain" / CHECKPOINT)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_phase_draws_show_each_user_with_its_traced_phases_then_with_other_phases_of_the_same_paths():
    shape = {"antennas": 8, "subcarriers": 8, "bandwidth_hz": 5e6}
    paths, _ = random_paths(np.random.default_rng(5), 6, max_paths=3)
    single, _ = random_paths(np.random.default_rng(6), 1, max_paths=1, los_probability=1.0)
    paths = paths.concatenate([paths, single])
    traced = paths_channels(paths, **shape)
    draws = PhaseDrawSet(traced, paths, draws=3, seed=0, **shape)
    assert len(draws) == 21
    planes = np.stack([draws[i]["planes"].numpy() for i in range(len(draws))])
    np.testing.assert_array_equal(planes[:7], channel_planes(traced))
    assert not np.allclose(planes[7:14], planes[:7]) and not np.allclose(planes[14:], planes[7:14])
    np.testing.assert_array_equal(draws[9]["planes"].numpy(), planes[9])
    one_path = np.hypot(planes[6::7, 0], planes[6::7, 1])
    np.testing.assert_allclose(one_path, np.broadcast_to(one_path[0], one_path.shape), rtol=1e-5)


def test_the_rate_falls_by_a_tenth_every_decay_period(tmp_path):
    cfg = tiny_config(tmp_path / "run")
    pretrain(cfg, Context(), progress=False)
    history = json.loads((tmp_path / "run" / "pretrain" / "metrics.json").read_text())
    assert [row["lr"] for row in history] == pytest.approx([1e-3 * 0.9**epoch for epoch in (1, 2, 3)])
    assert [step_decay(step, 10, 0.9) for step in (0, 9, 10, 25)] == pytest.approx([1, 1, 0.9, 0.81])


def test_a_warm_up_raises_the_rate_linearly_before_the_step_decay(tmp_path):
    assert [step_decay(step, 10, 0.9, warmup_steps=4) for step in (0, 1, 3, 9, 10)] == pytest.approx(
        [0.25, 0.5, 1, 1, 0.9]
    )
    cfg = tiny_config(tmp_path / "run", "pretrain.warmup_epochs=2", "pretrain.epochs=3")
    pretrain(cfg, Context(), progress=False)
    history = json.loads((tmp_path / "run" / "pretrain" / "metrics.json").read_text())
    steps_per_epoch = history[0]["step"]
    rates = [row["lr"] for row in history]
    assert rates[0] == pytest.approx(1e-3 * (steps_per_epoch + 1) / (2 * steps_per_epoch) * 0.9)
    assert rates[1:] == pytest.approx([1e-3 * 0.9**2, 1e-3 * 0.9**3])


def test_a_fitted_channel_scale_gives_unit_rms_patches_and_reaches_the_card(bundle):
    card = json.loads((bundle / "card.json").read_text())
    encoder = load_encoder(bundle / "weights.pt")
    run = card["training"]["config"]
    assert run["model"]["channel_scale"] is None
    assert card["input"]["channel_scale"] == pytest.approx(float(encoder.scale))
    patches = encoder.patches(torch.from_numpy(channel_planes(channels(200, seed=7))))
    assert float(patches.pow(2).mean().sqrt()) == pytest.approx(1.0, rel=0.5)


def test_onnx_embeddings_match_torch(bundle):
    h = channels(20, seed=3)
    onnx_out = ChannelEmbedder(bundle).embed(h)
    with torch.no_grad():
        cls, channel = load_encoder(bundle / "weights.pt")(torch.from_numpy(channel_planes(h)))
    assert onnx_out.cls.shape == (20, 16) and onnx_out.channel.shape == (20, 32, 16)
    np.testing.assert_allclose(onnx_out.cls, cls.numpy(), atol=1e-4)
    np.testing.assert_allclose(onnx_out.channel, channel.numpy(), atol=1e-4)
    card = json.loads((bundle / "card.json").read_text())
    assert card["metrics"]["onnx_parity"]["cls_max_abs_diff"] <= 1e-4
    assert set(card["metrics"]["pretraining"]) >= {"val_loss", "val_mean_patch_mse", "val_nmse", "val_mean_patch_nmse"}
    assert (
        load_checkpoint(bundle.parent / "run" / "pretrain" / BEST)["epoch"] == card["metrics"]["pretraining"]["epoch"]
    )


def test_a_card_edited_after_export_is_refused_naming_the_field(bundle, tmp_path):
    card = json.loads((bundle / "card.json").read_text())
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("lwm_encoder.onnx", "weights.pt"):
        (copy / name).write_bytes((bundle / name).read_bytes())
    (copy / "card.json").write_text(json.dumps({**card, "input": {**card["input"], "channel_scale": 1.0}}))
    with pytest.raises(BundleError, match=r"input\.channel_scale"):
        LwmBundle.load(copy)
    (copy / "card.json").write_text(json.dumps(card))
    (copy / "weights.pt").write_bytes(b"changed")
    with pytest.raises(BundleError, match="sha256"):
        LwmBundle.load(copy)


def test_cli_embeds_a_npy_into_cls_and_channel_embeddings(bundle, tmp_path, capsys):
    h = channels(5, seed=4)
    np.save(tmp_path / "h.npy", h)
    out = tmp_path / "e.npz"
    assert cli.main(["embed", str(tmp_path / "h.npy"), "--bundle", str(bundle), "--out", str(out)]) == 0
    assert "embedded 5 channels" in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as saved:
        expected = ChannelEmbedder(bundle).embed(h)
        np.testing.assert_array_equal(saved["cls"], expected.cls)
        np.testing.assert_array_equal(saved["channel"], expected.channel)
    assert cli.main(["embed", str(tmp_path / "h.npy"), "--bundle", str(bundle), "--out", str(out), "--cls-only"]) == 0
    with np.load(out, allow_pickle=False) as saved:
        assert set(saved.files) == {"cls"}


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda path: np.save(path, np.array([{"code": 1}], dtype=object), allow_pickle=True), "Python objects"),
        (lambda path: path.write_bytes(pickle.dumps([1, 2])), "Python objects"),
        (lambda path: np.save(path, np.zeros((3, 8, 7), np.complex64)), r"shape \(3, 8, 7\) is not \(users, 8, 8\)"),
        (lambda path: np.save(path, np.zeros((3, 8, 8), np.float32)), "not complex"),
        (lambda path: np.save(path, np.full((3, 8, 8), np.nan, np.complex64)), "NaN"),
    ],
)
def test_cli_refuses_channels_it_cannot_read_with_a_clear_message(bundle, tmp_path, capsys, write, message):
    path = tmp_path / "h.npy"
    write(path)
    assert cli.main(["embed", str(path), "--bundle", str(bundle), "--out", str(tmp_path / "e.npz")]) == 1
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "e.npz").exists()


@pytest.mark.parametrize(
    ("factor", "message"),
    [
        (0.0, "user 1: all zeros"),
        (1e9, r"user 1: its largest entry .* is beyond 1e-06 to 1e\+06 times 1 / channel_scale"),
        (1e-9, r"user 1: its largest entry .* is beyond"),
    ],
)
def test_cli_refuses_channels_the_model_cannot_read_naming_the_first(bundle, tmp_path, capsys, factor, message):
    h = channels(3, seed=4)
    h[1] *= factor
    np.save(tmp_path / "h.npy", h)
    assert cli.main(["embed", str(tmp_path / "h.npy"), "--bundle", str(bundle), "--out", str(tmp_path / "e.npz")]) == 1
    assert re.search(f"h\\.npy: 1 of 3 channels cannot be embedded \\(the first, {message}", capsys.readouterr().err)
    assert not (tmp_path / "e.npz").exists()


def test_cli_embeds_a_scenarios_users_with_their_labels(bundle, tmp_path, capsys):
    root = write_scenario(
        tmp_path / "scenarios",
        "two_users",
        {
            "delay": [[100e-9, 250e-9], [400e-9, 300e-9]],
            "power": [[-80.0, -100.0], [-95.0, -95.0]],
            "phase": [[30.0, -60.0], [0.0, 90.0]],
            "aod_az": [[20.0, 100.0], [200.0, -30.0]],
            "aod_el": [[100.0, 85.0], [90.0, 90.0]],
            "inter": [[0.0, 1.0], [11.0, 1.0]],
        },
    )
    out = tmp_path / "e.npz"
    command = ["embed", "--scenario", "two_users", "--folder", str(root), "--bundle", str(bundle), "--out", str(out)]
    assert cli.main(command) == 0
    with np.load(out, allow_pickle=False) as saved:
        assert saved["cls"].shape == (2, 16) and saved["channel"].shape == (2, 32, 16)
        assert saved["user_index"].tolist() == [0, 1] and saved["los"].tolist() == [True, False]
    assert "embedded 2 channels of scenario two_users" in capsys.readouterr().out


def test_a_run_started_from_a_bundle_takes_its_weights_and_channel_scale(bundle, tmp_path):
    cfg = tiny_config(tmp_path / "more", f"init_from={bundle}", "pretrain.epochs=1")
    started = initial_objective(cfg)
    shipped = load_objective(bundle / "weights.pt")
    assert all(torch.equal(value, shipped.state_dict()[key]) for key, value in started.state_dict().items())
    assert pretrain(cfg, Context(), progress=False)["complete"]
    trained = load_checkpoint(tmp_path / "more" / "pretrain" / CHECKPOINT)["model"]
    assert float(trained["encoder.scale"]) == float(shipped.encoder.scale)


def test_a_run_goes_on_from_the_loss_its_bundle_reached_not_from_scratch(bundle, tmp_path):
    def first_validation_loss(run_dir: Path, *overrides: str) -> float:
        pretrain(tiny_config(run_dir, "pretrain.epochs=1", *overrides), Context(), progress=False)
        return json.loads((run_dir / "pretrain" / "metrics.json").read_text())[0]["val_loss"]

    reached = json.loads((bundle / "card.json").read_text())["metrics"]["pretraining"]["val_loss"]
    fresh = first_validation_loss(tmp_path / "fresh")
    continued = first_validation_loss(tmp_path / "continued", f"init_from={bundle}")
    assert continued < fresh
    assert continued == pytest.approx(reached, rel=0.05)


@pytest.mark.parametrize(
    "override, message",
    [("model.n_layers=3", r"n_layers 2 \(this run: 3\)"), ("model.channel_scale=2.5", "scaled by")],
)
def test_a_bundle_built_otherwise_is_refused_naming_what_differs(bundle, tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        initial_objective(tiny_config(tmp_path / "run", f"init_from={bundle}", override))


def test_a_bundle_without_torch_weights_cannot_start_a_run(bundle, tmp_path):
    onnx_only = tmp_path / "onnx-only"
    shutil.copytree(bundle, onnx_only)
    card = json.loads((onnx_only / "card.json").read_text())
    (onnx_only / card["training"]["checkpoint"]).unlink()
    with pytest.raises(ValueError, match="no torch weights"):
        initial_objective(tiny_config(tmp_path / "run", f"init_from={onnx_only}"))
