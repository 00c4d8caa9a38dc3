"""LWM pretraining: run configs (lwm/configs/<name>.json) and the resumable pretraining stage.

A run directory holds config.json (one model and corpus per directory), commands.jsonl (every
command run in it) and pretrain/ (the Trainer's checkpoint.pt, best.pt and metrics). The stage
is the project's Trainer (exact resume, atomic checkpoints, early stopping, DDP) with Table I's
optimiser (Adam, `MaskedChannelModelling.configure_optimizers`) and schedule (`StepDecayTrainer`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lwmspectro.config_base import ConfigBase, bounded
from lwmspectro.fileio import atomic_write
from lwmspectro.lwm_channels import channel_planes
from lwmspectro.lwm_embed import LwmBundle

from ..config import LoaderConfig, StageConfig, apply_overrides, read_config
from ..config import config_names as shared_config_names
from ..distributed import Context
from ..trainer import Trainer
from .data import ChannelSet, LwmDataConfig, PhaseDrawSet, channel_shape, load_channels, split
from .model import LwmConfig, LwmEncoder, MaskedChannelModelling

CONFIG_PACKAGE = "lwmspectro_train.lwm"
"""The package whose configs folder holds the named channel-model configs."""

PRETRAIN = "pretrain"
"""The stage's folder in a run directory."""


@dataclass(frozen=True)
class LwmStageConfig(StageConfig):
    """Pretraining's optimisation, Table I's by default: Adam at 1e-4 (betas 0.9, 0.999, weight
    decay 1e-5), batches of 64, no warm-up or clipping, the rate cut by 10 % every 10 epochs."""

    batch_size: int = bounded(64, 1, 65_536)
    lr: float = bounded(1e-4, 0.0, 10.0)
    weight_decay: float = bounded(1e-5, 0.0)
    warmup_epochs: float = bounded(0.0, 0.0)
    grad_clip: float | None = bounded(None, 0.0)
    lr_decay: float = bounded(0.9, 0.0, 1.0)
    """The factor the rate is multiplied by every `lr_decay_epochs` epochs."""
    lr_decay_epochs: int = bounded(10, 1)


@dataclass(frozen=True)
class LwmRunConfig(ConfigBase):
    """A pretraining run: its corpus (`data`, no default: a run names its channels), the model,
    the stage's optimisation and the loader; `compile` and `bf16` act on CUDA only (Trainer)."""

    name: str
    run_dir: str
    data: LwmDataConfig
    seed: int = 0
    device: str = "auto"
    compile: bool = True
    bf16: bool = True
    model: LwmConfig = field(default_factory=LwmConfig)
    pretrain: LwmStageConfig = field(default_factory=LwmStageConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    init_from: str | None = None
    """A channel model bundle with its torch weights (e.g. models/lwm) whose encoder, decoder and
    channel scale start this run, so that a shipped model's pretraining goes on over other
    channels (a user's own sites) instead of starting afresh. Its architecture must be `model`'s
    (ARCHITECTURE); masking and dropout are this run's. A resumed run goes on from its own checkpoint."""

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> LwmRunConfig:
        if not isinstance(values, dict):
            raise ValueError(f"{where}: a run config is a JSON object, not {type(values).__name__}")
        values = cls.check_values(values, where)
        missing = [key for key in ("name", "run_dir", "data") if key not in values]
        if missing:
            raise ValueError(f"{where}: needs at least `name`, `run_dir` and `data` (missing: {', '.join(missing)})")
        sections = {"data": LwmDataConfig, "model": LwmConfig, "pretrain": LwmStageConfig, "loader": LoaderConfig}
        for key, section in sections.items():
            if key in values and not isinstance(values[key], ConfigBase):
                values[key] = section.from_dict(values[key], key)
        return cls(**values)


def config_names() -> list[str]:
    return shared_config_names(CONFIG_PACKAGE)


def load_config(name_or_path: str, overrides=()) -> LwmRunConfig:
    """A named config (lwm/configs/<name>.json) or a .json path, with `--set KEY=VALUE` overrides."""
    values = read_config(name_or_path, CONFIG_PACKAGE)
    return LwmRunConfig.from_dict(apply_overrides(values, overrides), name_or_path)


def prepare_run_dir(cfg: LwmRunConfig, record: dict, ctx: Context) -> None:
    """config.json (refused when the directory was started with another model or corpus) and
    commands.jsonl (the command appended)."""
    if ctx.is_main:
        folder = Path(cfg.run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "config.json"
        if path.exists():
            try:
                saved = LwmRunConfig.from_dict(json.loads(path.read_text()), str(path)).to_dict()
            except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
                raise ValueError(f"{path} is not a config this version reads ({err}); use a new run_dir") from err
            differing = [key for key in ("model", "data", "seed") if saved[key] != cfg.to_dict()[key]]
            if differing:
                raise ValueError(
                    f"{folder} was started with another {', '.join(differing)}; use a new run_dir for a different "
                    "model or corpus"
                )
        atomic_write(path, json.dumps(cfg.to_dict(), indent=2) + "\n")
        with open(folder / "commands.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    ctx.barrier()


def step_decay(step: int, steps_per_decay: int, factor: float, warmup_steps: int = 0) -> float:
    """The rate's factor at `step`: a linear rise over the first `warmup_steps` (none by default,
    as Table I), times `factor` to the number of whole decay periods passed."""
    rise = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return rise * factor ** (step // steps_per_decay)


class StepDecayTrainer(Trainer):
    """The Trainer with Table I's schedule in place of its cosine: the rate times `lr_decay`
    every `lr_decay_epochs` epochs, after a linear warm-up of `warmup_epochs` (0 in Table I).
    The schedule's state is its step count, which the checkpoint keeps, so a resumed run
    continues it."""

    def __init__(self, *args, stage: LwmStageConfig, **kwargs):
        super().__init__(*args, stage=stage, **kwargs)
        steps = stage.lr_decay_epochs * self.steps_per_epoch
        warmup = int(round(stage.warmup_epochs * self.steps_per_epoch))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: step_decay(step, steps, stage.lr_decay, warmup)
        )


def build_objective(cfg: LwmRunConfig) -> MaskedChannelModelling:
    """The encoder and its decoder, initialised from the run's seed."""
    torch.manual_seed(cfg.seed)
    return MaskedChannelModelling(LwmEncoder(cfg.model))


ARCHITECTURE = (
    "antennas",
    "subcarriers",
    "patch_length",
    "d_model",
    "n_layers",
    "n_heads",
    "head_dim",
    "ffn_mult",
    "position_encoding",
)
"""The LwmConfig fields that decide what an encoder computes; the others only shape its training."""


def initial_objective(cfg: LwmRunConfig) -> MaskedChannelModelling:
    """What a fresh run starts from: the seeded encoder and decoder or, under `init_from`, those
    of the bundle it names with their channel scale; refused, naming the fields, when the bundle's
    model is built otherwise."""
    objective = build_objective(cfg)
    if cfg.init_from is None:
        return objective
    from .export import load_objective  # export imports this module

    bundle = LwmBundle.load(cfg.init_from)
    if bundle.checkpoint is None:
        raise ValueError(f"init_from: {cfg.init_from} holds no torch weights (training.checkpoint) to start from")
    source = load_objective(bundle.checkpoint)
    differing = [
        f"{name} {getattr(source.encoder.cfg, name)!r} (this run: {getattr(cfg.model, name)!r})"
        for name in ARCHITECTURE
        if getattr(source.encoder.cfg, name) != getattr(cfg.model, name)
    ]
    if differing:
        raise ValueError(f"init_from: {cfg.init_from} was built with {', '.join(differing)}; set the run's model so")
    scale = float(source.encoder.scale)
    if cfg.model.channel_scale is not None and not np.isclose(cfg.model.channel_scale, scale, rtol=1e-6):
        raise ValueError(
            f"init_from: {cfg.init_from} reads channels scaled by {scale:g}, this run's model.channel_scale is "
            f"{cfg.model.channel_scale:g}; set it to null to keep the bundle's"
        )
    objective.load_state_dict(source.state_dict())
    return objective


def fitted_scale(channels: np.ndarray) -> float:
    """The reciprocal RMS of the real and imaginary values of `channels`: the channel scale a
    model with `channel_scale` null is given (lwm.model docstring)."""
    power = float(np.mean(np.abs(channels.astype(np.complex128)) ** 2)) / 2.0
    if not power > 0:
        raise ValueError("the training channels are all zero: no channel scale can be fitted")
    return 1.0 / float(np.sqrt(power))


@torch.no_grad()
def mean_patch(encoder: LwmEncoder, channels: np.ndarray, batch: int = 4096) -> torch.Tensor:
    """(P, L): each patch position's mean over `channels`, the trivial predictor MCM is compared with."""
    total = torch.zeros(encoder.cfg.n_patches, encoder.cfg.patch_length, dtype=torch.float64)
    for start in range(0, len(channels), batch):
        planes = torch.from_numpy(channel_planes(channels[start : start + batch]))
        total += encoder.patches(planes).double().sum(dim=0)
    return (total / max(1, len(channels))).float()


def pretrain(cfg: LwmRunConfig, ctx: Context, resume: bool = False, progress: bool = True) -> dict:
    """Run (or resume) masked channel modelling; the Trainer's result (best validation row, complete)."""
    channels, paths = load_channels(cfg.data, cfg.model, cfg.seed)
    train_index, val_index = split(len(channels), cfg.data.val_fraction, cfg.seed)
    train_index = train_index[: cfg.pretrain.max_train_samples]
    val_index = val_index[: cfg.pretrain.max_val_samples]
    if len(val_index) == 0:
        raise ValueError(f"no validation channels among {len(channels)}: raise data.val_fraction or add channels")
    objective = initial_objective(cfg)
    if cfg.model.channel_scale is None and cfg.init_from is None:
        objective.encoder.scale.fill_(fitted_scale(channels[train_index]))
    objective.mean_patch.copy_(mean_patch(objective.encoder, channels[train_index]))
    trainer = StepDecayTrainer(
        PRETRAIN,
        Path(cfg.run_dir) / PRETRAIN,
        objective,
        PhaseDrawSet(
            channels[train_index],
            paths.select(train_index),
            cfg.data.phase_draws,
            cfg.seed,
            **channel_shape(cfg.data, cfg.model),
        ),
        ChannelSet(channels[val_index]),
        lambda batch, generator: {"planes": batch["planes"], "generator": generator},
        stage=cfg.pretrain,
        ctx=ctx,
        seed=cfg.seed,
        workers=cfg.loader.workers,
        eval_batch_size=cfg.loader.eval_batch_size,
        compile=cfg.compile,
        bf16=cfg.bf16,
        progress=progress,
    )
    return trainer.fit(resume)
