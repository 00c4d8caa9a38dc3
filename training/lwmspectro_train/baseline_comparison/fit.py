"""One optimisation recipe for every model of a trial: AdamW, weight decay 5e-4, the same
epochs, batch size and early stopping, so differences come from the models alone."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..metrics import macro_f1


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings shared by all models (the paper: AdamW, wd 5e-4, 8 epochs, early stopping).

    An epoch is one pass over the training split, or `min_steps_per_epoch` batches when the
    split is smaller than that, so that few-shot trials still take a handful of updates.
    `finetune_lr_scale` multiplies the learning rate of a pretrained encoder (LWM_FT)."""

    epochs: int = 8
    patience: int = 3
    lr: float = 1e-3
    weight_decay: float = 5e-4
    batch_size: int = 32
    min_steps_per_epoch: int = 8
    finetune_lr_scale: float = 0.1
    device: str = "cpu"


@dataclass
class FitResult:
    epochs_run: int
    best_epoch: int
    best_val_f1: float
    seconds: float


class Views:
    """Several named views of the same rows, indexed by row like one array: the input of a
    model that reads more than one view (an expert of several views being fine-tuned), so
    that one training loop serves it and the models of one array alike."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self.arrays = dict(arrays)
        counts = {name: len(array) for name, array in self.arrays.items()}
        if len(set(counts.values())) != 1:
            raise ValueError(f"views of unequal row counts: {counts}")

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, rows) -> Views:
        return Views({name: array[rows] for name, array in self.arrays.items()})


Inputs = np.ndarray | Views
"""What a model of a trial reads: one array (a spectrogram, cached embeddings) or several views."""


def as_tensors(x: Inputs, device: str) -> torch.Tensor | dict[str, torch.Tensor]:
    """float32 tensors on `device`: one for an array, one per view by name for `Views`."""
    if isinstance(x, Views):
        return {name: as_tensors(array, device) for name, array in x.arrays.items()}
    return torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device)


def _batches(x: Inputs, indices: np.ndarray, device: str) -> torch.Tensor | dict[str, torch.Tensor]:
    return as_tensors(x[indices], device)


@torch.no_grad()
def predict_logits(model: nn.Module, x: Inputs, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """Logits for every row of `x`, in eval mode, batch by batch."""
    model.eval()
    out = [
        model(_batches(x, np.arange(i, min(i + batch_size, len(x))), device)).float().cpu()
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def fit(
    model: nn.Module,
    x_train: Inputs,
    y_train: np.ndarray,
    x_val: Inputs,
    y_val: np.ndarray,
    n_classes: int,
    settings: TrainSettings,
    seed: int,
    param_groups=None,
    progress=None,
) -> FitResult:
    """Train `model` with AdamW and cross-entropy, keep the weights of the best validation epoch.

    The best epoch has the highest validation macro-F1, ties going to the lower validation
    loss; training stops after `patience` epochs without improvement. `param_groups`
    (optional) gives per-group learning rates; by default all parameters that require a
    gradient share `settings.lr`."""
    start = time.perf_counter()
    device = settings.device
    model.to(device)
    groups = param_groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
    optimiser = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    y_train_t = torch.as_tensor(np.asarray(y_train), dtype=torch.long, device=device)
    batch = min(settings.batch_size, len(x_train))
    steps = max(math.ceil(len(x_train) / batch), settings.min_steps_per_epoch)
    best_score, best_state, best_epoch, since_best, epoch = (-1.0, -math.inf), None, 0, 0, 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = np.concatenate([rng.permutation(len(x_train)) for _ in range(math.ceil(steps * batch / len(x_train)))])
        for step in range(steps):
            idx = order[step * batch : (step + 1) * batch]
            loss = loss_fn(model(_batches(x_train, idx, device)), y_train_t[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        logits = predict_logits(model, x_val, settings.batch_size * 2, device)
        val_loss = float(loss_fn(torch.from_numpy(logits), torch.as_tensor(np.asarray(y_val), dtype=torch.long)))
        score = (macro_f1(y_val, logits.argmax(1), range(n_classes)), -val_loss)
        if score > best_score:
            best_score, best_epoch, since_best = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        if progress is not None:
            progress.set_postfix(epoch=epoch, val_f1=f"{score[0]:.3f}", refresh=False)
        if since_best >= settings.patience:
            break
    model.load_state_dict(best_state)
    return FitResult(epoch, best_epoch, best_score[0], time.perf_counter() - start)
