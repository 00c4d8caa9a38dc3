"""Write a channel model bundle (lwmspectro.lwm_embed layout) from an LWM run directory.

lwm_encoder.onnx is the pretrained encoder's best weights, from channel planes to the CLS and
channel embeddings (channel scale and patching inside the graph), stamped with the input
contract it was trained with; weights.pt is the same encoder in torch (`load_encoder`), then
card.json with the checksums. Before the bundle is put in place, ONNX Runtime (through the
core's ChannelEmbedder, as users run it) and torch embed the same validation channels: every
embedding must agree within PARITY_TOLERANCE, or the export fails; the largest differences are
recorded in the card.

`add_los_head` then puts an optional LoS/NLoS head beside the encoder (los_head.onnx): the
paper's MLP (downstream.LosHead) trained on the CLS embeddings of labelled users, as
ChannelEmbedder gives them, ending in a softmax, so that the GNU Radio block and other users
read probabilities. The card's ``los_head`` says which users trained it and how well it does on
the fifth of them it did not see.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from lwmspectro.bundle import METADATA_KEY
from lwmspectro.fileio import atomic_write
from lwmspectro.lwm_channels import channel_planes
from lwmspectro.lwm_embed import (
    ENCODER_FILE,
    ENCODER_INPUT,
    ENCODER_OUTPUTS,
    LOS_CLASSES,
    LOS_HEAD_FILE,
    LOS_HEAD_INPUT,
    LOS_HEAD_OUTPUT,
    ChannelEmbedder,
    LwmBundle,
    build_card,
    graph_metadata,
    write_card,
)

from ..export import ExportError, _export
from ..metrics import macro_f1
from ..model import count_parameters
from ..trainer import BEST, load_checkpoint, save_atomic
from .data import load_channels, split
from .downstream import HeadTraining, LosHead, fit, predict, split_users
from .model import LwmConfig, LwmEncoder, MaskedChannelModelling
from .train import PRETRAIN, LwmRunConfig

WEIGHTS = "weights.pt"
PARITY_TOLERANCE = 1e-4
"""Largest difference between ONNX Runtime's and torch's embeddings an export accepts."""


def load_run(run_dir: str | Path) -> tuple[LwmRunConfig, MaskedChannelModelling]:
    """A run's config and its objective holding the best pretraining weights."""
    folder = Path(run_dir)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} does not exist; {folder} is not an LWM run directory")
    cfg = LwmRunConfig.from_dict(json.loads(config_path.read_text()), str(config_path))
    objective = MaskedChannelModelling(LwmEncoder(cfg.model))
    best = load_checkpoint(folder / PRETRAIN / BEST, "run `lwmspectro lwm pretrain` on this run directory first")
    objective.load_state_dict(best["model"])
    return cfg, objective.eval()


def load_encoder(path: str | Path) -> LwmEncoder:
    """The encoder saved in a bundle's weights.pt (or any file `export_bundle` wrote)."""
    saved = load_checkpoint(Path(path), "re-export the bundle")
    encoder = LwmEncoder(LwmConfig.from_dict(saved["config"], f"{path}: config"))
    encoder.load_state_dict(saved["model"])
    return encoder.eval()


def load_objective(path: str | Path) -> MaskedChannelModelling:
    """The pretraining objective saved in a bundle's weights.pt: the encoder with its linear
    decoder and the training channels' mean patch, what masked-patch reconstruction is scored with."""
    saved = load_checkpoint(Path(path), "re-export the bundle")
    if "decoder" not in saved or "mean_patch" not in saved:
        raise ValueError(f"{path} holds the encoder only (exported by an older version); re-export the bundle")
    objective = MaskedChannelModelling(load_encoder(path))
    objective.decoder.load_state_dict(saved["decoder"])
    objective.mean_patch.copy_(saved["mean_patch"])
    return objective.eval()


def input_contract(cfg: LwmRunConfig, encoder: LwmEncoder) -> dict[str, Any]:
    """The card's ``input``: what a channel must be for the encoder to read it as it was trained."""
    model = cfg.model
    return {
        "antennas": model.antennas,
        "subcarriers": model.subcarriers,
        "patch_length": model.patch_length,
        "patches": model.n_patches,
        "embedding_dim": model.d_model,
        "channel_scale": float(encoder.scale),
        "bandwidth_hz": cfg.data.bandwidth_hz,
        "array": "half-wavelength ULA of the base-station antennas along y, single-antenna user",
        "layout": "complex (users, antennas, subcarriers); the graph takes its real and imaginary planes",
    }


def _stamp(path: Path, card: dict) -> None:
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {METADATA_KEY: graph_metadata(card)})
    atomic_write(path, model.SerializeToString())


def parity(folder: Path, encoder: LwmEncoder, channels: np.ndarray) -> dict[str, float]:
    """Largest absolute difference of each embedding between ONNX Runtime and torch; ExportError above tolerance."""
    onnx_out = ChannelEmbedder(folder).embed(channels)
    with torch.no_grad():
        cls, channel = encoder(torch.from_numpy(channel_planes(channels)))
    report = {
        "channels": len(channels),
        "cls_max_abs_diff": float(np.abs(onnx_out.cls - cls.numpy()).max()),
        "channel_max_abs_diff": float(np.abs(onnx_out.channel - channel.numpy()).max()),
        "tolerance": PARITY_TOLERANCE,
    }
    if max(report["cls_max_abs_diff"], report["channel_max_abs_diff"]) > PARITY_TOLERANCE:
        raise ExportError(f"{folder / ENCODER_FILE}: ONNX Runtime and torch embeddings differ: {report}")
    return report


def export_bundle(
    run_dir: str | Path,
    out: str | Path,
    *,
    record: dict,
    parity_channels: int = 64,
    overwrite: bool = False,
) -> dict:
    """Write the bundle of the run in `run_dir` to `out`; the card written. `record` is the
    exporting command (cli.command_record)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    cfg, objective = load_run(run_dir)
    encoder = objective.encoder
    best = load_checkpoint(Path(run_dir) / PRETRAIN / BEST)
    commands_path = Path(run_dir) / "commands.jsonl"
    commands = [json.loads(line) for line in commands_path.read_text().splitlines()] if commands_path.is_file() else []
    channels, _ = load_channels(cfg.data, cfg.model, cfg.seed)
    _, val_index = split(len(channels), cfg.data.val_fraction, cfg.seed)
    card = build_card(
        name=cfg.name,
        input=input_contract(cfg, encoder),
        model={
            "architecture": "LWM (masked channel modelling, CLS patch, post-LN transformer)",
            "parameters": count_parameters(encoder),
            **cfg.model.to_dict(),
        },
        training={"checkpoint": WEIGHTS, "config": cfg.to_dict(), "commands": [*commands, record]},
        metrics={"pretraining": {"epoch": best["epoch"], **best["metrics"]}},
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        example = torch.from_numpy(channel_planes(channels[val_index[:2]]))
        _export(encoder, (example,), folder / ENCODER_FILE, (ENCODER_INPUT,), ENCODER_OUTPUTS)
        _stamp(folder / ENCODER_FILE, card)
        reconstruction = {"decoder": objective.decoder.state_dict(), "mean_patch": objective.mean_patch}
        save_atomic({"model": encoder.state_dict(), "config": cfg.model.to_dict(), **reconstruction}, folder / WEIGHTS)
        card = write_card(folder, card)
        card["metrics"]["onnx_parity"] = parity(folder, encoder, channels[val_index[:parity_channels]])
        card = write_card(folder, card)
        if out.exists():
            shutil.rmtree(out)
        folder.rename(out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return card


def add_los_head(
    bundle_dir: str | Path,
    channels: np.ndarray,
    los: np.ndarray,
    *,
    record: dict,
    source: dict,
    training: HeadTraining | None = None,
    seed: int = 0,
) -> dict:
    """Train the LoS/NLoS head on the CLS embeddings of `channels` (labels `los`, True: line of
    sight) and add it to the bundle in `bundle_dir`, replacing any head there; the card written.
    Four fifths of the users train it, the rest measure it (macro F1, accuracy) and check that
    ONNX Runtime gives torch's probabilities; `source` says where the users came from and
    `record` is the command (cli.command_record)."""
    import onnxruntime as ort

    folder = Path(bundle_dir)
    bundle = LwmBundle.load(folder)
    training = training or HeadTraining()
    labels = np.asarray(los, dtype=np.int64)
    if len(labels) != len(channels) or len(np.unique(labels)) < 2:
        raise ValueError(
            f"the LoS head needs labelled users of both classes: got {len(channels)} channels, "
            f"{int(labels.sum())} of {len(labels)} labels line of sight"
        )
    cls = torch.from_numpy(ChannelEmbedder(bundle).embed(channels).cls)
    train, test = split_users(len(labels), seed)
    torch.manual_seed(seed)
    head = LosHead(bundle.embedding_dim, len(LOS_CLASSES))
    head = fit(head, cls[train], torch.from_numpy(labels[train]), training, seed)
    predicted = predict(head, cls[test])
    graph = torch.nn.Sequential(head, torch.nn.Softmax(dim=-1)).eval()
    with torch.no_grad():
        expected = graph(cls[test]).numpy()
    staged = folder / f".{LOS_HEAD_FILE}.tmp"
    try:
        _export(graph, (cls[:2],), staged, (LOS_HEAD_INPUT,), (LOS_HEAD_OUTPUT,))
        session = ort.InferenceSession(str(staged), providers=["CPUExecutionProvider"])
        (probabilities,) = session.run([LOS_HEAD_OUTPUT], {LOS_HEAD_INPUT: cls[test].numpy()})
        difference = float(np.abs(probabilities - expected).max())
        if difference > PARITY_TOLERANCE:
            raise ExportError(f"{staged}: ONNX Runtime and torch probabilities differ by {difference:.2e}")
        staged.replace(folder / LOS_HEAD_FILE)
    finally:
        staged.unlink(missing_ok=True)
    card = json.loads(bundle.card_path.read_text())
    card["files"]["los_head"] = LOS_HEAD_FILE
    card["los_head"] = {
        "classes": list(LOS_CLASSES),
        "architecture": "MLP on the CLS embedding (Sec. VIII-B: 512-256-128, batch norm, ReLU, dropout), softmax",
        "parameters": count_parameters(head),
        "source": source,
        "training": {"users": len(train), "seed": seed, **dataclasses.asdict(training)},
        "metrics": {
            "test_users": len(test),
            "macro_f1": macro_f1(labels[test], predicted, range(len(LOS_CLASSES))),
            "accuracy": float(np.mean(predicted == labels[test])),
            "onnx_max_abs_diff": difference,
        },
        "command": record,
    }
    return write_card(folder, card)
