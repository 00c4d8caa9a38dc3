"""The model bundle: a folder of ONNX graphs and the card that says what they are, loaded once.

A bundle is a folder::

    card.json
    router.onnx              spectrogram (B, T, K) -> router_logits (B, len(labels.router))
    expert_<protocol>.onnx   spectrogram (B, T, K) -> embedding (B, D)
    heads_<protocol>.onnx    embedding (B, D) -> modulation_logits (B, M), snr_mobility_logits (B, S)

card.json holds a schema version, the bundle's name, the parameters of G (``spectrogram``),
the input contract, the label lists, the normalisation statistics (recorded only: they
are folded into the graphs), the files, the model's description, how it was trained and
its measured metrics.

`load_bundle` reads and validates the card once into a frozen `Bundle` that the runtime,
the GNU Radio blocks and the training package share; a bundle that cannot be honoured is
refused with a `BundleError` naming the file and the reason. `build_card` is the one
place a card is assembled and `write_card` the one place it is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import labels
from .fileio import atomic_write
from .spectrogram import SpectrogramParams

SCHEMA_VERSION = 1
CARD_FILE = "card.json"

REQUIRED_KEYS = (
    "schema_version",
    "name",
    "spectrogram",
    "input",
    "labels",
    "normalisation",
    "files",
    "model",
    "training",
    "metrics",
)

TENSOR_NAMES = {
    "router": (("spectrogram",), ("router_logits",)),
    "expert": (("spectrogram",), ("embedding",)),
    "heads": (("embedding",), ("modulation_logits", "snr_mobility_logits")),
}
"""(input names, output names) of each kind of graph in a bundle."""

BUNDLE_ENV = "LWMSPECTRO_BUNDLE"
DEFAULT_BUNDLE_NAME = "small"

BundlePath = str | os.PathLike[str]


class BundleError(ValueError):
    """A bundle that cannot be used, with the file and the reason in the message."""


@dataclass(frozen=True)
class BundleLabels:
    """The classes a bundle's graphs score, in the order of their outputs."""

    router: tuple[str, ...]
    experts: tuple[str, ...]
    modulations: tuple[str, ...]
    mobility: tuple[str, ...]
    snr_mobility: tuple[tuple[float, str], ...]
    """The joint SNR x mobility classes: (SNR bin in dB, mobility class)."""

    @property
    def snr_bins_db(self) -> tuple[float, ...]:
        """The SNR bins of the joint classes, in their order of first appearance."""
        return tuple(dict.fromkeys(snr for snr, _ in self.snr_mobility))


@dataclass(frozen=True)
class BundleFiles:
    """The bundle's ONNX graphs, resolved against its folder."""

    router: Path
    experts: Mapping[str, Path]
    heads: Mapping[str, Path]


@dataclass(frozen=True)
class Bundle:
    """A validated model bundle. `card` is card.json as read, for tools that pass it on;
    every field the runtime needs is typed here."""

    path: Path
    name: str
    schema_version: int
    params: SpectrogramParams
    input: Mapping[str, Any]
    labels: BundleLabels
    files: BundleFiles
    normalisation: Mapping[str, Any]
    model: Mapping[str, Any]
    training: Mapping[str, Any]
    metrics: Mapping[str, Any]
    card: Mapping[str, Any]
    card_sha256: str

    @property
    def card_path(self) -> Path:
        return self.path / CARD_FILE

    @classmethod
    def load(cls, path: BundlePath) -> Bundle:
        """Read and validate `path`/card.json."""
        folder = Path(path)
        card_path = folder / CARD_FILE
        if not folder.is_dir():
            raise BundleError(f"{folder}: not a model bundle folder")
        if not card_path.exists():
            raise BundleError(f"{card_path}: missing; a bundle folder needs card.json beside its ONNX files")
        raw = card_path.read_bytes()
        try:
            card = json.loads(raw)
        except json.JSONDecodeError as err:
            raise BundleError(f"{card_path}: not valid JSON ({err})") from err
        return cls.from_card(card, folder, card_sha256=hashlib.sha256(raw).hexdigest())

    @classmethod
    def from_card(cls, card: Mapping[str, Any], path: BundlePath, card_sha256: str = "") -> Bundle:
        """The bundle `card` describes in folder `path`; BundleError saying what is wrong."""
        folder = Path(path)
        where = folder / CARD_FILE
        if not isinstance(card, Mapping):
            raise BundleError(f"{where}: not a JSON object")
        missing = [k for k in REQUIRED_KEYS if k not in card]
        if missing:
            raise BundleError(f"{where}: missing keys {missing}")
        if card["schema_version"] != SCHEMA_VERSION:
            raise BundleError(
                f"{where}: schema_version {card['schema_version']!r} is not supported "
                f"(this lwmspectro reads {SCHEMA_VERSION}); re-export the bundle"
            )
        try:
            params = SpectrogramParams.from_dict(card["spectrogram"])
        except (TypeError, ValueError) as err:
            raise BundleError(f"{where}: bad spectrogram parameters: {err}") from err
        if card["input"].get("sample_rate_hz") != params.sample_rate_hz:
            raise BundleError(
                f"{where}: input sample_rate_hz {card['input'].get('sample_rate_hz')} "
                f"differs from the spectrogram's {params.sample_rate_hz}"
            )
        bundle_labels = _read_labels(card["labels"], where)
        return cls(
            path=folder,
            name=str(card["name"]),
            schema_version=int(card["schema_version"]),
            params=params,
            input=card["input"],
            labels=bundle_labels,
            files=_read_files(card["files"], bundle_labels.experts, folder, where),
            normalisation=card["normalisation"],
            model=card["model"],
            training=card["training"],
            metrics=card["metrics"],
            card=card,
            card_sha256=card_sha256,
        )


def _read_labels(lab: Mapping[str, Any], where: Path) -> BundleLabels:
    for key in ("router", "experts", "modulation", "mobility", "snr_mobility"):
        if not lab.get(key):
            raise BundleError(f"{where}: labels.{key} missing or empty")
    unknown = set(lab["experts"]) - set(lab["router"])
    if unknown:
        raise BundleError(f"{where}: experts {sorted(unknown)} are not router classes")
    try:
        pairs = tuple((float(snr), str(mobility)) for snr, mobility in lab["snr_mobility"])
    except (TypeError, ValueError) as err:
        raise BundleError(f"{where}: labels.snr_mobility must list [snr_db, mobility] pairs ({err})") from err
    mobility = tuple(lab["mobility"])
    unknown_mobility = sorted({mob for _, mob in pairs} - set(mobility))
    if unknown_mobility:
        raise BundleError(
            f"{where}: labels.snr_mobility uses mobility classes {unknown_mobility} "
            f"not in labels.mobility {list(mobility)}"
        )
    return BundleLabels(
        router=tuple(lab["router"]),
        experts=tuple(lab["experts"]),
        modulations=tuple(lab["modulation"]),
        mobility=mobility,
        snr_mobility=pairs,
    )


def _read_files(files: Mapping[str, Any], experts: Iterable[str], folder: Path, where: Path) -> BundleFiles:
    for key in ("router", "experts", "heads"):
        if key not in files:
            raise BundleError(f"{where}: files.{key} missing")
    for protocol in experts:
        if protocol not in files["experts"] or protocol not in files["heads"]:
            raise BundleError(f"{where}: no expert or heads file for expert {protocol!r}")
    return BundleFiles(
        router=folder / files["router"],
        experts={p: folder / files["experts"][p] for p in experts},
        heads={p: folder / files["heads"][p] for p in experts},
    )


def _bundle_candidates() -> list[Path]:
    """The interpreter's prefix, the prefix CMake installed this package under (the package in
    <prefix>/lib/python3.X/site-packages, the bundle in <prefix>/share), the repository."""
    package = Path(__file__).resolve().parent
    return [
        Path(sys.prefix) / "share" / "lwmspectro" / "models" / DEFAULT_BUNDLE_NAME,
        package.parents[3] / "share" / "lwmspectro" / "models" / DEFAULT_BUNDLE_NAME,
        package.parent.parent / "models" / DEFAULT_BUNDLE_NAME,
    ]


def default_bundle_dir() -> Path:
    """The bundle used when none is named: $LWMSPECTRO_BUNDLE, else the installed share
    folder, else the repository's models/small. Raises BundleError saying how to get one."""
    env = os.environ.get(BUNDLE_ENV)
    if env:
        if not (Path(env) / CARD_FILE).exists():
            raise BundleError(f"${BUNDLE_ENV}={env}: no card.json there; point it at a model bundle folder")
        return Path(env)
    candidates = _bundle_candidates()
    for candidate in candidates:
        if (candidate / CARD_FILE).exists():
            return candidate
    raise BundleError(
        "no model bundle found (looked at " + ", ".join(map(str, candidates)) + "); "
        "train and export one with `lwmspectro-train all --config "
        "training/lwmspectro_train/configs/small.json`, or pass --bundle DIR / "
        f"set ${BUNDLE_ENV} to a bundle folder"
    )


def load_bundle(bundle: Bundle | BundlePath | None = None) -> Bundle:
    """`bundle` itself when already loaded, else the bundle in that folder, else (None or '')
    the default one (`default_bundle_dir`)."""
    if isinstance(bundle, Bundle):
        return bundle
    return Bundle.load(bundle or default_bundle_dir())


def default_labels(experts: Iterable[str] = labels.PROTOCOLS) -> dict[str, list[Any]]:
    """The label lists a card records, from the one definition in `labels`."""
    return {
        "router": list(labels.ROUTER_CLASSES),
        "experts": list(experts),
        "modulation": list(labels.MODULATIONS),
        "snr_db": list(labels.SNR_GRID_DB),
        "mobility": list(labels.MOBILITY_CLASSES),
        "snr_mobility": [list(pair) for pair in labels.SNR_MOBILITY_CLASSES],
    }


def default_files(experts: Iterable[str] = labels.PROTOCOLS) -> dict[str, Any]:
    """The file names of a bundle's graphs, relative to its folder."""
    experts = list(experts)
    return {
        "router": "router.onnx",
        "experts": {p: f"expert_{p}.onnx" for p in experts},
        "heads": {p: f"heads_{p}.onnx" for p in experts},
    }


def input_contract(params: SpectrogramParams) -> dict[str, Any]:
    """What a bundle expects of its I/Q before G."""
    return {
        "sample_rate_hz": params.sample_rate_hz,
        "centring": "carrier of interest at DC (0 Hz)",
        "window_samples": params.window_samples,
        "dtype": "complex64",
    }


def build_card(
    *,
    name: str,
    params: SpectrogramParams,
    experts: Iterable[str] = labels.PROTOCOLS,
    normalisation: Mapping[str, Any],
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> dict[str, Any]:
    """A card for a bundle of the standard layout (`default_files`) whose experts are
    `experts`, with the label lists of `labels`."""
    experts = list(experts)
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "spectrogram": params.to_dict(),
        "input": input_contract(params),
        "labels": default_labels(experts),
        "normalisation": dict(normalisation),
        "files": default_files(experts),
        "model": dict(model),
        "training": dict(training),
        "metrics": dict(metrics),
    }


def write_card(bundle_dir: BundlePath, card: Mapping[str, Any]) -> Path:
    """Validate `card` and write it atomically as `bundle_dir`/card.json."""
    Bundle.from_card(card, bundle_dir)
    return atomic_write(Path(bundle_dir) / CARD_FILE, json.dumps(card, indent=2) + "\n")
