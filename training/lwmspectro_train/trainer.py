"""The one training loop every stage uses: epochs, validation, early stopping, atomic
checkpoints, exact resume, CSV/JSON logs, DDP, and bf16 / torch.compile on CUDA only."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from lwmspectro.fileio import atomic_write

from .config import StageConfig
from .data import EpochSampler
from .distributed import Context
from .model import TrainingObjective

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
CHECKPOINT_FORMAT = 1


def save_atomic(obj, path: Path) -> None:
    """torch.save through one atomic write: a kill never leaves a half-written checkpoint."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: Path, fix: str = "delete it and run the stage that writes it again") -> dict:
    """Checkpoints hold only tensors and plain Python values, so they load with weights_only.
    A file that is not one (truncated, garbage, a pickle of anything else) is a ValueError
    naming it with `fix`."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} does not exist; run the stage that writes it first")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's restricted unpickler fails on junk with whatever error the bytes lead it into
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a readable checkpoint ({reason}); {fix}") from err
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: not a checkpoint (it holds a {type(checkpoint).__name__}); {fix}")
    return checkpoint


def lr_factor(step: int, warmup_steps: int, total_steps: int, base_lr: float, min_lr: float) -> float:
    """Linear warm-up to the base rate, then cosine decay to `min_lr` (Table I)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    floor = min_lr / base_lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)


def _rng_state(ctx: Context) -> dict:
    """The training process draws randomness (masks, dropout) only from torch's generators;
    epoch orders are a pure function of (seed, epoch). Saving these resumes exactly."""
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(ctx.device) if ctx.cuda else None}


def _set_rng_state(state: dict, ctx: Context) -> None:
    torch.set_rng_state(state["torch"])
    if ctx.cuda and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], ctx.device)


def write_logs(folder: Path, history: list[dict]) -> None:
    """metrics.csv and metrics.json: one row per epoch, every metric the stage measured."""
    atomic_write(folder / "metrics.json", json.dumps(history, indent=1) + "\n")
    keys = list(dict.fromkeys(k for row in history for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    atomic_write(folder / "metrics.csv", text.getvalue())


class Trainer:
    """Trains a `TrainingObjective`: its forward(**batch inputs) returns a dict of scalar
    tensors with `loss`, its configure_optimizers gives the AdamW the stage's settings drive.

    `inputs(batch, generator)` maps a loader batch (dict of tensors, already on the device)
    to the module's keyword arguments; `generator` is None in training and a fixed-seed
    generator in validation, for modules that draw random masks. Validation averages every returned value over the
    validation set; early stopping watches `monitor` (lower is better)."""

    def __init__(
        self,
        name: str,
        folder,
        module: TrainingObjective,
        train_set,
        val_set,
        inputs: Callable,
        stage: StageConfig,
        ctx: Context,
        seed: int,
        workers: int = 0,
        eval_batch_size: int = 128,
        balance=None,
        monitor: str = "loss",
        compile: bool = True,
        bf16: bool = True,
        progress: bool = True,
    ):
        self.name, self.folder, self.stage, self.ctx = name, Path(folder), stage, ctx
        self.module = module.to(ctx.device)
        self.inputs, self.seed, self.monitor, self.progress = inputs, seed, monitor, progress
        self.train_sampler = EpochSampler(
            len(train_set), seed, shuffle=True, balance=balance, rank=ctx.rank, world_size=ctx.world_size
        )
        self.val_sampler = EpochSampler(len(val_set), seed, shuffle=False, rank=ctx.rank, world_size=ctx.world_size)
        # A loader draws its workers' base seed from its generator each epoch; with its own
        # generator it leaves the global one (the masks) untouched, so a resumed run replays it.
        loader_args = dict(
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=ctx.cuda,
            worker_init_fn=_worker_init if workers > 0 else None,
            generator=torch.Generator().manual_seed(seed),
        )
        self.batch_size = stage.batch_size
        self.drop_last = len(self.train_sampler) > stage.batch_size
        self.train_loader = DataLoader(
            train_set, batch_size=stage.batch_size, sampler=self.train_sampler, drop_last=self.drop_last, **loader_args
        )
        self.val_loader = DataLoader(val_set, batch_size=eval_batch_size, sampler=self.val_sampler, **loader_args)
        self.steps_per_epoch = max(
            1,
            len(self.train_sampler) // stage.batch_size
            if self.drop_last
            else math.ceil(len(self.train_sampler) / stage.batch_size),
        )
        self.optimizer = module.configure_optimizers(stage.lr, stage.betas, stage.weight_decay)
        total = stage.epochs * self.steps_per_epoch
        warmup = max(1, int(round(stage.warmup_epochs * self.steps_per_epoch)))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, warmup, total, stage.lr, stage.min_lr)
        )
        wrapped = module
        if ctx.distributed:
            wrapped = DistributedDataParallel(module, device_ids=[ctx.device.index] if ctx.cuda else None)
        if ctx.cuda and compile:
            wrapped = torch.compile(wrapped)
        self.wrapped = wrapped
        self.autocast = (
            (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if ctx.cuda and bf16 else contextlib.nullcontext
        )
        self.state = {
            "epoch": 0,
            "step_in_epoch": 0,
            "global_step": 0,
            "history": [],
            "train_sums": {},
            "best": None,
            "best_epoch": None,
            "bad_epochs": 0,
            "stopped_early": False,
        }
        self.step_losses: list[float] = []

    # --- checkpoints -------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / CHECKPOINT

    def complete(self) -> bool:
        return self.state["stopped_early"] or self.state["epoch"] >= self.stage.epochs

    def save(self) -> None:
        rng = self.ctx.all_gather_object(_rng_state(self.ctx))
        if self.ctx.is_main:
            save_atomic(
                {
                    "format": CHECKPOINT_FORMAT,
                    "stage": self.name,
                    "model": self.module.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "rng": rng,
                    "world_size": self.ctx.world_size,
                    "stage_config": _plain(self.stage.__dict__),
                    "complete": self.complete(),
                    **self.state,
                },
                self.checkpoint_path,
            )
        self.ctx.barrier()

    def restore(self) -> None:
        fix = "delete it to restart the stage (then run without --resume)"
        ckpt = load_checkpoint(self.checkpoint_path, fix)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{self.checkpoint_path}: checkpoint format {ckpt.get('format')} is not {CHECKPOINT_FORMAT}; {fix}"
            )
        needed = ("model", "optimizer", "scheduler", "rng", "world_size", "stage_config", *self.state)
        missing = [key for key in needed if key not in ckpt]
        if missing:
            raise ValueError(f"{self.checkpoint_path}: a checkpoint without {missing}; {fix}")
        try:
            self.module.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
        except (RuntimeError, ValueError, KeyError, TypeError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(
                f"{self.checkpoint_path}: does not fit this stage's model and optimiser ({reason}); resume with "
                f"the config it was written with, or {fix}"
            ) from err
        for key in self.state:
            self.state[key] = ckpt[key]
        if ckpt["world_size"] == self.ctx.world_size:
            _set_rng_state(ckpt["rng"][self.ctx.rank], self.ctx)
        else:
            self._say(
                f"{self.name}: checkpoint was written by {ckpt['world_size']} processes, resuming with "
                f"{self.ctx.world_size}: the data order is kept, the random masks are not"
            )
            _set_rng_state(ckpt["rng"][0], self.ctx)
        if ckpt["stage_config"] != _plain(self.stage.__dict__):
            self._say(f"{self.name}: resuming with settings that differ from the checkpoint's")

    def save_best(self, metrics: dict) -> None:
        if self.ctx.is_main:
            save_atomic(
                {"model": self.module.state_dict(), "epoch": self.state["epoch"], "metrics": metrics},
                self.folder / BEST,
            )

    # --- the loop ------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        if self.ctx.is_main:
            tqdm.write(text)

    def _to_device(self, batch: dict) -> dict:
        """The batch on the device; the views of a multi-view batch are a dict inside it."""
        return {
            k: self._to_device(v) if isinstance(v, dict) else v.to(self.ctx.device, non_blocking=True)
            for k, v in batch.items()
        }

    def fit(self, resume: bool = False) -> dict:
        """Train to the end (or early stop, or stage.max_steps).

        Returns the best validation row, whether the stage is complete, and the training
        loss of every step this call ran."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.checkpoint_path.exists():
            if not resume:
                raise FileExistsError(
                    f"{self.checkpoint_path} exists; pass --resume to continue that run, or use another run_dir"
                )
            self.restore()
        else:
            torch.manual_seed(self.seed * 1000 + 1 + self.ctx.rank)
        if self.complete():
            self._say(f"{self.name}: already complete (epoch {self.state['epoch']}), skipped")
            return self._result(True)
        while not self.complete():
            if not self._train_epoch():
                return self._result(False)
            self._end_epoch()
        self.save()
        return self._result(True)

    def _result(self, complete: bool) -> dict:
        epoch = self.state["best_epoch"]
        best = next((row for row in self.state["history"] if row["epoch"] == epoch), None)
        return {"best": best, "complete": complete, "step_losses": list(self.step_losses)}

    def _train_epoch(self) -> bool:
        """One epoch from where the state says; False when stopped by max_steps."""
        stage, state = self.stage, self.state
        epoch = state["epoch"]
        self.train_sampler.set_epoch(epoch, skip=state["step_in_epoch"] * self.batch_size)
        self.module.train()
        samples = (
            len(self.train_sampler)
            if not self.drop_last
            else (self.steps_per_epoch - state["step_in_epoch"]) * self.batch_size
        )
        bar = tqdm(
            total=samples,
            unit="spec",
            desc=f"{self.name} epoch {epoch + 1}/{stage.epochs}",
            disable=not (self.ctx.is_main and self.progress),
            dynamic_ncols=True,
        )
        started = time.time()
        for batch in self.train_loader:
            batch = self._to_device(batch)
            with self.autocast():
                out = self.wrapped(**self.inputs(batch, None))
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{self.name}: loss is {loss.item()} at step {state['global_step']}; "
                    "lower the learning rate or check the data"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if stage.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.module.parameters(), stage.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            n = len(next(iter(batch.values())))
            sums = state["train_sums"]
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) * n
            sums["_count"] = sums.get("_count", 0.0) + n
            state["global_step"] += 1
            state["step_in_epoch"] += 1
            self.step_losses.append(float(loss.detach()))
            bar.update(n)
            bar.set_postfix(loss=f"{self.step_losses[-1]:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            if stage.checkpoint_every_steps and state["global_step"] % stage.checkpoint_every_steps == 0:
                self.save()
            if stage.max_steps and state["global_step"] >= stage.max_steps:
                bar.close()
                self.save()
                self._say(f"{self.name}: stopped at max_steps={stage.max_steps}; --resume continues")
                return False
        bar.close()
        state["train_seconds"] = time.time() - started
        return True

    @torch.no_grad()
    def validate(self) -> dict:
        """Mean of every module output over the validation set; masks drawn from a fixed seed
        so that epochs compare on the same masks."""
        self.module.eval()
        generator = torch.Generator(device=self.ctx.device).manual_seed(self.seed + 12345 + self.ctx.rank)
        sums: dict = {}
        for batch in self.val_loader:
            batch = self._to_device(batch)
            with self.autocast():
                out = self.module(**self.inputs(batch, generator))
            n = len(next(iter(batch.values())))
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + float(value) * n
            sums["_count"] = sums.get("_count", 0.0) + n
        sums = self.ctx.all_reduce_sum(sums)
        count = max(sums.pop("_count", 0.0), 1.0)
        return {key: value / count for key, value in sums.items()}

    def _end_epoch(self) -> None:
        state = self.state
        train = self.ctx.all_reduce_sum(state["train_sums"])
        count = max(train.pop("_count", 0.0), 1.0)
        val = self.validate()
        state["epoch"] += 1
        seconds = state.pop("train_seconds", None)
        row = {
            "epoch": state["epoch"],
            "step": state["global_step"],
            "lr": self.scheduler.get_last_lr()[0],
            **{f"train_{k}": v / count for k, v in train.items()},
            **{f"val_{k}": v for k, v in val.items()},
        }
        if seconds:
            row["train_seconds"] = seconds
            row["train_spectrograms_per_s"] = count / seconds
        state["history"].append(row)
        value = val[self.monitor]
        if state["best"] is None or value < state["best"]:
            state["best"], state["best_epoch"], state["bad_epochs"] = value, state["epoch"], 0
            self.save_best(row)
        else:
            state["bad_epochs"] += 1
            state["stopped_early"] = state["bad_epochs"] >= self.stage.patience
        state["step_in_epoch"] = 0
        state["train_sums"] = {}
        self._say(
            f"{self.name} epoch {state['epoch']}: "
            + "  ".join(
                f"{k} {v:.4g}" for k, v in row.items() if k.startswith(("train_", "val_")) and "seconds" not in k
            )
        )
        if self.ctx.is_main:
            write_logs(self.folder, state["history"])
        self.save()


def _plain(values: dict) -> dict:
    """A stage config as plain Python values (tuples as lists) for the checkpoint."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
