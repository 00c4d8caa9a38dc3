"""Sharded spectrogram datasets: float16 shards, per-sample labels, a manifest.

Layout of a dataset folder::

    manifest.json            G parameters, the views, generator config, label fields, shard list
    shard-000012.npy         float16 (n, T, K) of G (the "wideband" view), memory-mapped on read
    shard-000012.<view>.npy  float16 (n, T', K') of each other view the dataset stores
    shard-000012.jsonl       one label dict per sample, in order
    shard-000012.json        sidecar: count, sha256 of every file above (written last)

A shard exists only once its sidecar does, and each file is written to a temporary
name and renamed, so a killed writer leaves no corrupt shard; a resumed run skips
shards whose sidecar checks out and rewrites the rest. A dataset of G alone has no
`views` in its manifest nor `sha256_views` in its sidecars, as before views existed.

A dataset's config may gain views: the shards made before keep what they hold, the manifest
lists the new views under `added_views`, and a view a shard lacks reads as all NaN, an absent
view, which a model takes through its learnt 'absent' embedding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import views as view_registry
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


G_VIEW = "wideband"
"""The view every dataset stores: G, in the shard's plain .npy file."""
_VIEW_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def shard_name(index: int) -> str:
    return f"shard-{index:06d}"


def check_view_name(name: str) -> str:
    """`name`, or a ValueError when it cannot name a view's file."""
    if not _VIEW_NAME.match(name):
        raise ValueError(f"view name {name!r}: use letters, digits, '_' and '-' (it names a file)")
    return name


def view_path(folder: Path, index: int, view: str) -> Path:
    """The .npy file of one view of shard `index`: G keeps the name it had before views existed."""
    check_view_name(view)
    suffix = "" if view == G_VIEW else f".{view}"
    return Path(folder) / f"{shard_name(index)}{suffix}.npy"


def _save_float16(path: Path, array: np.ndarray) -> None:
    data = np.ascontiguousarray(array, dtype=np.float16)
    atomic_write(path, lambda f: np.save(f, data))


def write_shard(
    folder: Path,
    index: int,
    spectrograms: np.ndarray,
    labels: list[dict],
    views: Mapping[str, np.ndarray] | None = None,
) -> dict:
    """Write one shard atomically: G (`spectrograms`), the other `views` by name, the labels;
    returns its sidecar."""
    folder = Path(folder)
    others = dict(views or {})
    for name, array in {G_VIEW: spectrograms, **others}.items():
        if len(array) != len(labels):
            raise ValueError(f"{len(array)} examples of view {name!r} but {len(labels)} label rows")
    if G_VIEW in others:
        raise ValueError(f"G is passed as `spectrograms`, not among the other views ({', '.join(others)})")
    base = folder / shard_name(index)
    _save_float16(view_path(folder, index, G_VIEW), spectrograms)
    for name, array in others.items():
        _save_float16(view_path(folder, index, name), array)
    lines = "".join(json.dumps(row, sort_keys=True) + "\n" for row in labels).encode()
    atomic_write(base.with_suffix(".jsonl"), lambda f: f.write(lines))
    sidecar: dict[str, Any] = {
        "index": index,
        "count": len(labels),
        "sha256_npy": file_sha256(base.with_suffix(".npy")),
        "sha256_jsonl": file_sha256(base.with_suffix(".jsonl")),
    }
    if others:
        sidecar["sha256_views"] = {name: file_sha256(view_path(folder, index, name)) for name in others}
    atomic_write(base.with_suffix(".json"), lambda f: f.write(json.dumps(sidecar).encode()))
    return sidecar


def add_shard_views(folder: Path, index: int, views: Mapping[str, np.ndarray]) -> dict:
    """Write `views` beside a complete shard that lacks them, then its sidecar listing them too
    (atomically, last: a shard interrupted before reads as lacking them still); returns the
    sidecar. The shard's G, labels and other views are left as they are."""
    base = Path(folder) / shard_name(index)
    sidecar = read_sidecar(base.with_suffix(".json"))
    for name, array in views.items():
        if name == G_VIEW or name in sidecar.get("sha256_views", {}):
            raise ValueError(f"shard {index} already holds view {name!r}")
        if len(array) != sidecar["count"]:
            raise ValueError(f"{len(array)} examples of view {name!r} but shard {index} holds {sidecar['count']}")
        _save_float16(view_path(folder, index, name), array)
    sums = sidecar.get("sha256_views", {}) | {name: file_sha256(view_path(folder, index, name)) for name in views}
    sidecar = {**sidecar, "sha256_views": sums}
    atomic_write(base.with_suffix(".json"), lambda f: f.write(json.dumps(sidecar).encode()))
    return sidecar


def read_shard_labels(folder: Path, index: int) -> list[dict]:
    """The label rows of shard `index` of `folder`, in example order."""
    return [json.loads(line) for line in (Path(folder) / f"{shard_name(index)}.jsonl").read_text().splitlines()]


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


def _required_but_lacking(held: Iterable[str], views: Sequence[str], added: Sequence[str]) -> list[str]:
    """The `views` a shard holding `held` lacks, those `added` to the config after it was made
    excepted: what no shard may lack."""
    held = set(held)
    return sorted(name for name in views if name not in held and name not in added)


def shard_is_complete(
    folder: Path,
    index: int,
    verify: bool = True,
    views: Sequence[str] = (),
    count: int | None = None,
    added: Sequence[str] = (),
) -> bool:
    """True when the shard's sidecar exists, lists the other `views` (besides G) and no others,
    those `added` to the dataset's config after it was made excepted (a shard made before a
    view was added lacks it), holds `count` rows when given (a dataset grown past a last shard
    cut short remakes it) and (if `verify`) every checksum matches its file."""
    base = Path(folder) / shard_name(index)
    try:
        sidecar = json.loads(base.with_suffix(".json").read_text())
        view_sums = sidecar.get("sha256_views", {})
        if (
            _required_but_lacking(view_sums, views, added)
            or not set(view_sums) <= set(views)
            or (count is not None and sidecar["count"] != count)
        ):
            return False
        if not verify:
            return True
        files = {base.with_suffix(".npy"): sidecar["sha256_npy"], base.with_suffix(".jsonl"): sidecar["sha256_jsonl"]}
        files.update({view_path(folder, index, name): digest for name, digest in view_sums.items()})
        return all(digest == file_sha256(path) for path, digest in files.items())
    except (
        FileNotFoundError,
        json.JSONDecodeError,
        UnicodeDecodeError,
        AttributeError,
        KeyError,
        TypeError,
        ValueError,
    ):
        return False


def write_manifest(
    folder: Path,
    params: SpectrogramParams,
    config: dict,
    n_shards: int,
    views: Mapping[str, Any] | None = None,
    added_views: Sequence[str] = (),
) -> dict:
    """Write manifest.json listing the complete shards (call after writing, or to refresh);
    `views` (name -> view parameters, G among them) is recorded when given, and `added_views`,
    those of them added to the config after some shards were made (which lack them), when any."""
    folder = Path(folder)
    shards = []
    for index in range(n_shards):
        sidecar_path = folder / (shard_name(index) + ".json")
        if sidecar_path.exists():
            shards.append({"name": shard_name(index), **read_sidecar(sidecar_path)})
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "spectrogram": params.to_dict(),
    }
    if views is not None:
        manifest["views"] = {name: view_registry.view_to_dict(view) for name, view in views.items()}
    if added_views:
        manifest["added_views"] = list(added_views)
    manifest |= {
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
    """A read-only view of a dataset folder: memory-mapped views and label rows."""

    folder: Path
    manifest: dict
    params: SpectrogramParams
    views: dict[str, Any]
    """Parameters of every stored view by name, G ("wideband") among them."""
    _arrays: dict[str, list]
    """View name -> its memory-mapped array in each shard (None where the shard lacks the view:
    it was made before the view was added to the dataset's config)."""
    labels: list[dict]
    _offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def _locate(self, i: int) -> tuple[int, int]:
        """(shard, position within it) of example `i`."""
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        shard = int(np.searchsorted(self._offsets, i, side="right") - 1)
        return shard, i - int(self._offsets[shard])

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict]:
        """(G float32, label row) of example `i`."""
        shard, row = self._locate(i)
        return np.asarray(self._arrays[G_VIEW][shard][row], np.float32), self.labels[i]

    def views_of(self, i: int, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The views `names` (default: every stored one) of example `i` by name, float32."""
        shard, row = self._locate(i)
        for name in names or ():
            self._check_stored(name)
        return {name: self._row(name, shard, row) for name in names or self.views}

    def _row(self, name: str, shard: int, row: int) -> np.ndarray:
        """One example's view, float32; all NaN (an absent view) where its shard lacks the view."""
        array = self._arrays[name][shard]
        if array is None:
            return np.full(view_registry.view_shape(self.views[name]), np.nan, np.float32)
        return np.asarray(array[row], np.float32)

    @property
    def partial_views(self) -> tuple[str, ...]:
        """The views some shards lack (added to the config after they were made)."""
        return tuple(name for name, arrays in self._arrays.items() if any(a is None for a in arrays))

    def _check_stored(self, name: str) -> None:
        if name not in self.views:
            raise KeyError(f"{self.folder} holds no view {name!r}; it holds {', '.join(self.views)}")

    def view(self, name: str, indices=None) -> np.ndarray:
        """float32 (n, T, K) of view `name` for `indices` (all when None)."""
        self._check_stored(name)
        indices = range(len(self)) if indices is None else indices
        if not len(indices):
            return np.zeros((0, *view_registry.view_shape(self.views[name])), np.float32)
        return np.stack([self._row(name, *self._locate(i)) for i in indices])

    def spectrograms(self, indices=None) -> np.ndarray:
        """float32 (n, T, K) of G for `indices` (all when None)."""
        return self.view(G_VIEW, indices)

    def column(self, field: str) -> list:
        return [row[field] for row in self.labels]


def _manifest_views(manifest: dict, params: SpectrogramParams, where: Path) -> dict[str, Any]:
    """The views a manifest lists (G alone when it lists none); a ValueError naming the entry that is not one."""
    if "views" not in manifest:
        return {G_VIEW: params}
    listed = manifest["views"]
    if not isinstance(listed, dict) or G_VIEW not in listed:
        raise ValueError(f"{where}: views must be an object of views by name, {G_VIEW!r} among them")
    stored = {
        check_view_name(name): view_registry.view_from_dict(entry, f"{where}: views.{name}")
        for name, entry in listed.items()
    }
    if stored[G_VIEW] != params:
        raise ValueError(f"{where}: views.{G_VIEW} differs from spectrogram; both are G")
    return stored


def _added_views(manifest: dict, others: Sequence[str], where: Path) -> list[str]:
    """The manifest's `added_views`, checked to be among its other views."""
    added = manifest.get("added_views", [])
    if not isinstance(added, list) or not set(added) <= set(others):
        raise ValueError(f"{where}: added_views must list some of the views {list(others)}, not {added!r}")
    return added


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
    params = SpectrogramParams.from_dict(manifest["spectrogram"])
    views = _manifest_views(manifest, params, manifest_path)
    others = [name for name in views if name != G_VIEW]
    added = _added_views(manifest, others, manifest_path)
    arrays: dict[str, list] = {name: [] for name in views}
    labels, offsets = [], [0]
    for shard in manifest["shards"]:
        index = shard["index"]
        if verify and not shard_is_complete(folder, index, views=others, added=added):
            raise ValueError(f"{folder / shard['name']}: checksum mismatch or missing file")
        rows = read_shard_labels(folder, index)
        held = shard.get("sha256_views", {}) if others else {}
        lacking = [name for name in others if name not in held]
        required = _required_but_lacking(held, others, added)
        if required:
            raise ValueError(
                f"{folder / shard['name']}: lacks the views {required} that every shard "
                "holds; run the same `lwmspectro generate` again to remake it"
            )
        for name in views:
            if name in lacking:
                arrays[name].append(None)
                continue
            array = np.load(view_path(folder, index, name), mmap_mode="r")
            if len(rows) != len(array):
                raise ValueError(
                    f"{folder / shard['name']}: {len(array)} examples of {name!r} but {len(rows)} label rows"
                )
            arrays[name].append(array)
        labels.extend(rows)
        offsets.append(offsets[-1] + len(rows))
    return Dataset(folder, manifest, params, views, arrays, labels, np.asarray(offsets[:-1]))
