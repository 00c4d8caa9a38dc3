"""Training loop: exact resume, checkpoints, early stopping, logs, epoch order, DDP."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_train_toydata import write_toy_dataset

from lwmspectro import labels
from lwmspectro_train.config import RunConfig
from lwmspectro_train.data import EpochSampler
from lwmspectro_train.distributed import Context
from lwmspectro_train.stages import Run
from lwmspectro_train.trainer import load_checkpoint

from train_fixtures import tiny_config


@pytest.fixture(scope="module")
def toy_train(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("toy") / "train", n=200)


def make_run(run_dir, train, **stage) -> Run:
    return Run(RunConfig.from_dict(tiny_config(run_dir, train, **stage)), Context(), progress=False)


def test_resume_after_a_stop_gives_the_bitwise_same_next_step(tmp_path, toy_train):
    # About 32 wifi rows for training, batch 8: 4 steps per epoch, so step 3 stops mid-epoch.
    stopped = make_run(tmp_path / "a", toy_train, max_steps=3).pretrain("wifi")
    assert not stopped["complete"] and len(stopped["step_losses"]) == 3
    resumed = make_run(tmp_path / "a", toy_train, max_steps=6).pretrain("wifi", resume=True)
    straight = make_run(tmp_path / "b", toy_train, max_steps=6).pretrain("wifi")
    assert len(resumed["step_losses"]) == 3
    assert resumed["step_losses"] == straight["step_losses"][3:]
    ckpt_a = load_checkpoint(tmp_path / "a" / "pretrain" / "wifi" / "checkpoint.pt")
    ckpt_b = load_checkpoint(tmp_path / "b" / "pretrain" / "wifi" / "checkpoint.pt")
    assert ckpt_a["global_step"] == ckpt_b["global_step"] == 6 and ckpt_a["epoch"] == 1
    for key, value in ckpt_b["model"].items():
        assert torch.equal(ckpt_a["model"][key], value), key


def test_a_finished_stage_refuses_to_restart_and_skips_on_resume(tmp_path, toy_train):
    run = make_run(tmp_path, toy_train, epochs=1)
    run.router()
    with pytest.raises(FileExistsError, match="pass --resume"):
        run.router()
    again = run.router(resume=True)
    assert again["complete"] and again["step_losses"] == []
    assert not list((tmp_path / "router").glob("*.tmp"))


def test_checkpoint_is_complete_and_loads_weights_only(tmp_path, toy_train):
    make_run(tmp_path, toy_train, epochs=2).pretrain("lte")
    folder = tmp_path / "pretrain" / "lte"
    ckpt = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "epoch", "step_in_epoch", "global_step"} <= set(ckpt)
    assert ckpt["epoch"] == 2 and ckpt["step_in_epoch"] == 0 and ckpt["complete"]
    assert len(ckpt["rng"]) == 1 and ckpt["rng"][0]["torch"].dtype == torch.uint8
    best = torch.load(folder / "best.pt", weights_only=True)
    assert best["epoch"] in (1, 2) and "encoder.patch_embed.weight" in best["model"]


def test_logs_have_one_row_per_epoch_with_every_metric(tmp_path, toy_train):
    make_run(tmp_path, toy_train, epochs=3, patience=5).router()
    folder = tmp_path / "router"
    rows = json.loads((folder / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "step"} <= set(rows[0])
    csv_lines = (folder / "metrics.csv").read_text().splitlines()
    assert len(csv_lines) == 4 and csv_lines[0].startswith("epoch,step,lr")


def test_early_stopping_ends_a_stage_that_stops_improving(tmp_path, toy_train):
    result = make_run(tmp_path, toy_train, epochs=10, patience=2, lr=1e-12, min_lr=1e-13).router()
    rows = json.loads((tmp_path / "router" / "metrics.json").read_text())
    assert result["complete"] and len(rows) == 3 and result["best"]["epoch"] == 1


def test_epoch_sampler_balances_shards_and_skips():
    balance = np.array([0] * 80 + [1] * 15 + [2] * 5)
    sampler = EpochSampler(100, seed=1, balance=balance)
    sampler.set_epoch(4)
    order = list(sampler)
    counts = np.bincount(balance[order], minlength=3)
    assert counts.tolist() == [34, 34, 34]
    sampler.set_epoch(4, skip=10)
    assert list(sampler) == order[10:]
    shards = []
    for rank in range(2):
        shard = EpochSampler(100, seed=1, rank=rank, world_size=2)
        shard.set_epoch(2)
        shards.append(list(shard))
    assert len(shards[0]) == len(shards[1]) == 50 and not set(shards[0]) & set(shards[1])
    full = EpochSampler(100, seed=1)
    full.set_epoch(2)
    assert sorted(shards[0] + shards[1]) == list(range(100)) and list(full) != list(range(100))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_ddp_trains_one_model(tmp_path, toy_train):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_config(tmp_path / "run", toy_train, max_steps=2)))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "lwmspectro_train.cli",
        "pretrain",
        "--config",
        str(config),
        "--experts",
        "wifi",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    except subprocess.TimeoutExpired:
        pytest.skip("two torchrun processes did not finish within 180 s on this machine")
    cannot_spawn = (
        "Address already in use",
        "Connection refused",
        "RendezvousConnectionError",
        "Operation not permitted",
    )
    if result.returncode != 0 and any(s in result.stderr for s in cannot_spawn):
        pytest.skip(f"cannot start two gloo processes here: {result.stderr[-400:]}")
    assert result.returncode == 0, result.stderr[-2000:]
    ckpt = load_checkpoint(tmp_path / "run" / "pretrain" / "wifi" / "checkpoint.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2 and ckpt["global_step"] == 2
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])
    assert "paused" in result.stdout and labels.PROTOCOLS[0] in result.stdout


@pytest.mark.parametrize(
    "content, error",
    [
        (b"", r"not a readable checkpoint"),
        (b"\x80\x02garbage" * 50, r"not a readable checkpoint"),
        (b"junk\n", r"not a readable checkpoint"),
        ("truncated", r"not a readable checkpoint"),
        ("no-entries", r"a checkpoint without \['model'"),
    ],
)
def test_a_broken_checkpoint_on_resume_names_the_file_and_the_way_out(tmp_path, toy_train, content, error):
    make_run(tmp_path, toy_train, max_steps=1).pretrain("wifi")
    path = tmp_path / "pretrain" / "wifi" / "checkpoint.pt"
    if content == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif content == "no-entries":
        torch.save({"format": 1}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"{path}: {error}.*delete it to restart the stage"):
        make_run(tmp_path, toy_train, max_steps=2).pretrain("wifi", resume=True)


def test_a_checkpoint_of_another_model_names_the_file(tmp_path, toy_train):
    make_run(tmp_path, toy_train, max_steps=1).pretrain("wifi")
    config = tiny_config(tmp_path, toy_train, max_steps=2)
    config["model"]["d_model"] = 32
    run = Run(RunConfig.from_dict(config), Context(), progress=False)
    with pytest.raises(
        ValueError, match=r"checkpoint\.pt: does not fit this stage's model.*config it was written with"
    ):
        run.pretrain("wifi", resume=True)


def test_a_run_refuses_its_training_set_grown_since_it_started(tmp_path):
    train = write_toy_dataset(tmp_path / "train", n=100)
    make_run(tmp_path / "run", train, max_steps=1).pretrain("wifi")
    write_toy_dataset(train, n=150)
    with pytest.raises(ValueError, match=r"started on 100 examples .* now holds 150; use a new run_dir"):
        make_run(tmp_path / "run", train, max_steps=2).pretrain("wifi", resume=True)


def test_a_broken_training_set_record_names_the_file_and_the_way_out(tmp_path):
    train = write_toy_dataset(tmp_path / "train", n=100)
    make_run(tmp_path / "run", train, max_steps=1).pretrain("wifi")
    (tmp_path / "run" / "training_set.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"training_set\.json: not valid JSON .* delete it to adopt 100 examples"):
        make_run(tmp_path / "run", train, max_steps=2).pretrain("wifi", resume=True)
    for not_an_object in ("[100]", '"hello"'):
        (tmp_path / "run" / "training_set.json").write_text(not_an_object)
        with pytest.raises(ValueError, match=r"training_set\.json: not a JSON object; .* delete it to adopt 100"):
            make_run(tmp_path / "run", train, max_steps=2).pretrain("wifi", resume=True)


def test_a_set_override_of_the_wrong_type_names_the_key():
    from lwmspectro_train.config import load_config

    with pytest.raises(ValueError, match=r"stages\.pretrain\.epochs: 'abc' is not an integer"):
        load_config("small", ["stages.pretrain.epochs=abc"])
    assert load_config("small", ["stages.pretrain.epochs=3.0"]).stage("pretrain").epochs == 3


def test_a_run_dir_takes_a_new_training_set_until_a_stage_has_written_into_it(tmp_path, toy_train):
    from lwmspectro_train.cli import prepare_run_dir

    def config(train):
        return RunConfig.from_dict(tiny_config(tmp_path / "run", train))

    prepare_run_dir(config("/mistyped/path"), {"command": "first"}, Context())  # failed before any stage
    prepare_run_dir(config(toy_train), {"command": "retried"}, Context())
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"]["train"] == str(toy_train)
    assert len((tmp_path / "run" / "commands.jsonl").read_text().splitlines()) == 2
    (tmp_path / "run" / "normalisation.json").write_text("{}")
    with pytest.raises(ValueError, match=r"was started with another data\.train; use a new run_dir"):
        prepare_run_dir(config("/another/set"), {"command": "third"}, Context())
