"""Sharded spectrogram datasets: float16 shards, per-sample labels, a manifest.

Layout of a dataset folder::

    manifest.json            G parameters, generator config, label fields, shard list
    shard-000012.npy         float16 (n, T, K), memory-mapped on read
    shard-000012.jsonl       one label dict per sample, in order
    shard-000012.json        sidecar: count, sha256 of both files (written last)

A shard exists only once its sidecar does, and each file is written to a temporary
name and renamed, so a killed writer leaves no corrupt shard; a resumed run skips
shards whose sidecar checks out and rewrites the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fileio import atomic_write, file_sha256
from .spectrogram import SpectrogramParams

FORMAT_VERSION = 1
LABEL_FIELDS = (
    "protocol",
    "bandwidth_hz",
    "modulation",
    "code_rate",
    "coding",
    "snr_db",
    "mobility",
    "speed_kmh",
    "doppler_hz",
    "carrier_hz",
    "scenario",
    "user",
    "seed",
)


def shard_name(index: int) -> str:
    return f"shard-{index:06d}"


def write_shard(folder: Path, index: int, spectrograms: np.ndarray, labels: list[dict]) -> dict:
    """Write one shard atomically; returns its sidecar."""
    folder = Path(folder)
    if len(spectrograms) != len(labels):
        raise ValueError(f"{len(spectrograms)} spectrograms but {len(labels)} label rows")
    base = folder / shard_name(index)
    data = np.ascontiguousarray(spectrograms, dtype=np.float16)
    atomic_write(base.with_suffix(".npy"), lambda f: np.save(f, data))
    lines = "".join(json.dumps(row, sort_keys=True) + "\n" for row in labels).encode()
    atomic_write(base.with_suffix(".jsonl"), lambda f: f.write(lines))
    sidecar = {
        "index": index,
        "count": len(labels),
        "sha256_npy": file_sha256(base.with_suffix(".npy")),
        "sha256_jsonl": file_sha256(base.with_suffix(".jsonl")),
    }
    atomic_write(base.with_suffix(".json"), lambda f: f.write(json.dumps(sidecar).encode()))
    return sidecar


def read_sidecar(path: Path) -> dict:
    """A shard's sidecar; a ValueError naming it and how to recover when it is not one."""
    try:
        sidecar = json.loads(path.read_text())
        if isinstance(sidecar, dict) and isinstance(sidecar.get("count"), int):
            return sidecar
        problem = "no shard count"
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        problem = f"not valid JSON: {err}"
    shard = path.with_suffix("")
    raise ValueError(
        f"{path}: a corrupt shard sidecar ({problem}); delete {shard.name}.json, .npy and .jsonl "
        "and run the same command again to regenerate that shard"
    )


def shard_is_complete(folder: Path, index: int, verify: bool = True) -> bool:
    """True when the shard's sidecar exists and (if `verify`) both checksums match."""
    base = Path(folder) / shard_name(index)
    try:
        sidecar = json.loads(base.with_suffix(".json").read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    if not verify:
        return True
    try:
        return all(
            sidecar[f"sha256_{suffix}"] == file_sha256(base.with_suffix(f".{suffix}")) for suffix in ("npy", "jsonl")
        )
    except (FileNotFoundError, KeyError, TypeError):
        return False


def write_manifest(folder: Path, params: SpectrogramParams, config: dict, n_shards: int) -> dict:
    """Write manifest.json listing the complete shards (call after writing, or to refresh)."""
    folder = Path(folder)
    shards = []
    for index in range(n_shards):
        sidecar_path = folder / (shard_name(index) + ".json")
        if sidecar_path.exists():
            shards.append({"name": shard_name(index), **read_sidecar(sidecar_path)})
    manifest = {
        "format_version": FORMAT_VERSION,
        "spectrogram": params.to_dict(),
        "config": config,
        "label_fields": list(LABEL_FIELDS),
        "n_shards_planned": n_shards,
        "complete": len(shards) == n_shards,
        "count": sum(s["count"] for s in shards),
        "shards": shards,
    }
    atomic_write(folder / "manifest.json", lambda f: f.write(json.dumps(manifest, indent=2).encode()))
    return manifest


@dataclass
class Dataset:
    """A read-only view of a dataset folder: memory-mapped spectrograms and label rows."""

    folder: Path
    manifest: dict
    params: SpectrogramParams
    _arrays: list
    labels: list[dict]
    _offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        shard = int(np.searchsorted(self._offsets, i, side="right") - 1)
        return np.asarray(self._arrays[shard][i - self._offsets[shard]], np.float32), self.labels[i]

    def spectrograms(self, indices=None) -> np.ndarray:
        """float32 (n, T, K) for `indices` (all when None)."""
        indices = range(len(self)) if indices is None else indices
        return (
            np.stack([self[i][0] for i in indices]) if len(indices) else np.zeros((0, *self.params.shape), np.float32)
        )

    def column(self, field: str) -> list:
        return [row[field] for row in self.labels]


def open_dataset(folder, verify: bool = False) -> Dataset:
    """Open a dataset folder; `verify` re-checks every shard's checksums."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{folder} is not a dataset: no manifest.json (make one with `lwmspectro generate`)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{manifest_path}: not valid JSON ({err}); regenerate it with the same `lwmspectro generate`"
        ) from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{manifest_path}: not a dataset manifest (a JSON object)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{manifest_path}: format_version {manifest.get('format_version')} is not {FORMAT_VERSION}")
    arrays, labels, offsets = [], [], [0]
    for shard in manifest["shards"]:
        if verify and not shard_is_complete(folder, shard["index"]):
            raise ValueError(f"{folder / shard['name']}: checksum mismatch or missing file")
        array = np.load(folder / (shard["name"] + ".npy"), mmap_mode="r")
        rows = [json.loads(line) for line in (folder / (shard["name"] + ".jsonl")).read_text().splitlines()]
        if len(rows) != len(array):
            raise ValueError(f"{folder / shard['name']}: {len(array)} spectrograms but {len(rows)} label rows")
        arrays.append(array)
        labels.extend(rows)
        offsets.append(offsets[-1] + len(rows))
    params = SpectrogramParams.from_dict(manifest["spectrogram"])
    return Dataset(folder, manifest, params, arrays, labels, np.asarray(offsets[:-1]))
