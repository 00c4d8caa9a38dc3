"""Torch view of `lwmspectro.dataset` folders: encoded labels, subsets, epoch order."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from lwmspectro import labels
from lwmspectro.dataset import open_dataset

from .model import WIDEBAND


def encode_labels(rows: list[dict]) -> dict[str, np.ndarray]:
    """Targets per row: protocol (index in ROUTER_CLASSES); for the protocols with an expert,
    modulation, joint SNR x mobility and mobility (-1 where the row has none, as for
    `none`/`other`) and log_doppler, log10(1 + fD / Hz) (NaN where none); snr_db (NaN if none)."""
    protocol = np.empty(len(rows), np.int64)
    modulation = np.full(len(rows), -1, np.int64)
    snr_mobility = np.full(len(rows), -1, np.int64)
    mobility = np.full(len(rows), -1, np.int64)
    snr_db = np.full(len(rows), np.nan)
    log_doppler = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        labels.check_choice("protocol", row.get("protocol"), labels.ROUTER_CLASSES)
        protocol[i] = labels.ROUTER_CLASSES.index(row["protocol"])
        if row.get("snr_db") is not None:
            snr_db[i] = float(row["snr_db"])
        if row["protocol"] not in labels.PROTOCOLS:
            continue
        if row.get("modulation") is not None:
            labels.check_choice("modulation", row["modulation"], labels.MODULATIONS)
            modulation[i] = labels.MODULATIONS.index(row["modulation"])
        if row.get("mobility") is not None:
            labels.check_choice("mobility", row["mobility"], labels.MOBILITY_CLASSES)
            mobility[i] = labels.MOBILITY_CLASSES.index(row["mobility"])
            if row.get("snr_db") is not None:
                snr_mobility[i] = labels.snr_mobility_index(row["snr_db"], row["mobility"])
        if row.get("doppler_hz") is not None:
            log_doppler[i] = np.log10(1.0 + float(row["doppler_hz"]))
    return {
        "protocol": protocol,
        "modulation": modulation,
        "snr_mobility": snr_mobility,
        "snr_db": snr_db,
        "mobility": mobility,
        "log_doppler": log_doppler,
    }


CLASS_TARGETS = ("protocol", "modulation", "snr_mobility")
"""The targets an item carries unless asked for others: those of the joint heads."""
TARGETS = (*CLASS_TARGETS, "snr_db", "mobility", "log_doppler")


def batch_views(batch: dict) -> dict:
    """The views of a loader batch by name: G ("wideband") and those under "views"."""
    wideband = {WIDEBAND: batch["spectrogram"]} if "spectrogram" in batch else {}
    return {**wideband, **batch.get("views", {})}


class SpectrogramSet(Dataset):
    """Rows `indices` of a dataset folder as dicts of tensors: G under "spectrogram" (unless
    `reading` leaves it out), the
    `targets` (names in TARGETS; classes int64, numbers float32), and under "views" each view
    named in `views` (those the dataset stores besides G).

    The memory-mapped shards are opened lazily in each process (DataLoader workers
    included), so the object pickles small and never copies the data."""

    def __init__(self, folder, indices=None, views: Sequence[str] = (), targets: Sequence[str] = CLASS_TARGETS):
        self.folder = Path(folder)
        dataset = open_dataset(self.folder)
        missing = [name for name in views if name not in dataset.views]
        if missing:
            raise ValueError(
                f"{self.folder} stores no view {', '.join(map(repr, missing))}; it stores {', '.join(dataset.views)}"
            )
        unknown = [name for name in targets if name not in TARGETS]
        if unknown:
            raise ValueError(f"unknown targets {unknown}; valid: {', '.join(TARGETS)}")
        self.views = tuple(views)
        self.target_names = tuple(targets)
        self.params = dataset.params
        self.view_params = dict(dataset.views)
        """Parameters of every view the dataset stores, by name (G as "wideband")."""
        self.manifest = dataset.manifest
        self.partial_views = tuple(name for name in dataset.partial_views if name in self.views)
        """The views loaded that some shards lack (all NaN there: absent)."""
        self.targets = encode_labels(dataset.labels)
        self.indices = np.arange(len(dataset)) if indices is None else np.asarray(indices, np.int64)
        self.reads_g = True
        self._dataset = dataset

    def __getstate__(self):
        return {**self.__dict__, "_dataset": None}

    def subset(self, indices) -> SpectrogramSet:
        """The rows `indices` (positions in this set) as a new set over the same folder."""
        other = object.__new__(SpectrogramSet)
        other.__dict__.update(self.__dict__)
        other.indices = self.indices[np.asarray(indices, np.int64)]
        return other

    def reading(self, views: Sequence[str]) -> SpectrogramSet:
        """This set loading only `views` (G, "wideband", among them or not), for a part of the
        model that reads a few of the views: reading and collating the others cost an expert
        of 80 tokens three times its own loading time."""
        unknown = [name for name in views if name != WIDEBAND and name not in self.views]
        if unknown:
            raise ValueError(f"{self.folder}: this set does not load {unknown}; it loads {list(self.views)}")
        other = self.subset(np.arange(len(self)))
        other.views = tuple(name for name in views if name != WIDEBAND)
        other.reads_g = WIDEBAND in views
        return other

    def target(self, name: str) -> np.ndarray:
        return self.targets[name][self.indices]

    def label_rows(self) -> list[dict]:
        """The manifest label rows of this set's rows, in order."""
        if self._dataset is None:
            self._dataset = open_dataset(self.folder)
        return [self._dataset.labels[int(i)] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        if self._dataset is None:
            self._dataset = open_dataset(self.folder)
        row = int(self.indices[i])
        item = {"spectrogram": torch.from_numpy(self._dataset[row][0])} if self.reads_g else {}
        for name in self.target_names:
            value = self.targets[name][row]
            item[name] = torch.tensor(value, dtype=torch.float32 if value.dtype.kind == "f" else torch.int64)
        if self.views:
            stored = self._dataset.views_of(row, self.views)
            item["views"] = {name: torch.from_numpy(array) for name, array in stored.items()}
        return item


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) positions: a seeded random `fraction` of the n rows held out for validation."""
    order = np.random.default_rng([seed, 7]).permutation(n)
    n_val = max(1, int(round(fraction * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def limit(indices: np.ndarray, max_count: int | None, seed: int) -> np.ndarray:
    """At most `max_count` of `indices`, a seeded random choice kept in order."""
    if max_count is None or len(indices) <= max_count:
        return indices
    return np.sort(np.random.default_rng([seed, 11]).choice(indices, max_count, replace=False))


class EpochSampler(Sampler):
    """The order of one epoch: a pure function of (seed, epoch), so a resumed run replays it.

    Optionally class-balanced (each class drawn equally often, minorities with
    replacement), sharded over DDP ranks, and able to start mid-epoch. torch's
    DistributedSampler shards but neither balances nor skips, hence this class."""

    def __init__(
        self,
        n: int,
        seed: int,
        shuffle: bool = True,
        balance: np.ndarray | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.n, self.seed, self.shuffle, self.balance = n, seed, shuffle, balance
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Start epoch `epoch`, leaving out this rank's first `skip` samples (already trained on)."""
        self.epoch, self.skip = epoch, skip

    def epoch_order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.balance is not None:
            classes = np.unique(self.balance)
            per_class = math.ceil(self.n / len(classes))
            order = np.concatenate(
                [
                    rng.choice(
                        np.flatnonzero(self.balance == c),
                        per_class,
                        replace=per_class > np.count_nonzero(self.balance == c),
                    )
                    for c in classes
                ]
            )
            return rng.permutation(order)
        return rng.permutation(self.n) if self.shuffle else np.arange(self.n)

    def shard(self) -> np.ndarray:
        order = self.epoch_order()
        if self.world_size > 1:
            usable = len(order) // self.world_size * self.world_size if self.shuffle else len(order)
            order = order[:usable][self.rank :: self.world_size]
        return order

    def __iter__(self):
        return iter(self.shard()[self.skip :].tolist())

    def __len__(self) -> int:
        return len(self.shard()) - self.skip


def normalisation_stats(
    dataset: SpectrogramSet,
    max_samples: int = 2048,
    seed: int = 0,
    views: Sequence[str] | None = None,
    per_row: bool = False,
) -> dict:
    """Mean and standard deviation of the pixels over (a seeded subset of) `dataset`: of G
    (`views` None), or of each of `views` by name (NaN pixels, an absent view, left out).

    `per_row` gives each row of a view its own statistics: the rows of a view hold different
    quantities (the dynamics view's mean level in dB beside its power changes, an aligned
    view's circularity beside its element powers), and one scale for all of them leaves the
    small ones unseen. A row with no spread keeps std 1."""
    rows = limit(np.arange(len(dataset)), max_samples, seed)
    names = [WIDEBAND] if views is None else list(views)
    sums: dict[str, np.ndarray] = {}
    for start in range(0, len(rows), 256):
        items = [dataset[int(i)] for i in rows[start : start + 256]]
        for name in names:
            x = np.stack([batch_views(item)[name].numpy() for item in items]).astype(np.float64)
            finite = np.isfinite(x)
            values = np.where(finite, x, 0.0)
            axes = (0, 2) if per_row else None
            part = np.stack([values.sum(axis=axes), np.square(values).sum(axis=axes), finite.sum(axis=axes)])
            sums[name] = part if name not in sums else sums[name] + part
    stats = {}
    for name, (total, total_sq, count) in sums.items():
        mean = total / np.maximum(count, 1)
        std = np.sqrt(np.maximum(total_sq / np.maximum(count, 1) - mean**2, 0.0))
        std = np.where(std > 1e-6, std, 1.0) if per_row else np.maximum(std, 1e-6)
        stats[name] = {"mean": mean.tolist(), "std": std.tolist()}
    kind = "per_row" if per_row else "global_scalar"
    if views is None:
        return {"kind": kind, **stats[WIDEBAND], "samples": len(rows)}
    return {"kind": f"{kind}_per_view", "views": stats, "samples": len(rows)}
