"""The model bundle card (card.json): what a bundle holds and the contract it was trained under.

A bundle is a folder::

    card.json
    router.onnx              spectrogram (B, T, K) -> router_logits (B, len(ROUTER_CLASSES))
    expert_<protocol>.onnx   spectrogram (B, T, K) -> embedding (B, D)
    heads_<protocol>.onnx    embedding (B, D) -> modulation_logits (B, M), snr_mobility_logits (B, S)

The card is validated on load; a bundle the runtime cannot honour is refused with a
message that names the file and the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import labels
from .spectrogram import SpectrogramParams

SCHEMA_VERSION = 1

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


class BundleError(ValueError):
    """A bundle that cannot be used, with the file and the reason in the message."""


def default_labels() -> dict:
    """The label lists a card records, from the one definition in `labels`."""
    return {
        "router": list(labels.ROUTER_CLASSES),
        "experts": list(labels.PROTOCOLS),
        "modulation": list(labels.MODULATIONS),
        "snr_db": list(labels.SNR_GRID_DB),
        "mobility": list(labels.MOBILITY_CLASSES),
        "snr_mobility": [list(pair) for pair in labels.SNR_MOBILITY_CLASSES],
    }


def default_files(experts=labels.PROTOCOLS) -> dict:
    return {
        "router": "router.onnx",
        "experts": {p: f"expert_{p}.onnx" for p in experts},
        "heads": {p: f"heads_{p}.onnx" for p in experts},
    }


def input_contract(params: SpectrogramParams) -> dict:
    return {
        "sample_rate_hz": params.sample_rate_hz,
        "centring": "carrier of interest at DC (0 Hz)",
        "window_samples": params.window_samples,
        "dtype": "complex64",
    }


def validate(card: dict, where: str = "card.json") -> dict:
    """Check a card's structure; raise BundleError saying what is wrong."""
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
    lab = card["labels"]
    for key in ("router", "experts", "modulation", "mobility", "snr_mobility"):
        if not lab.get(key):
            raise BundleError(f"{where}: labels.{key} missing or empty")
    unknown = set(lab["experts"]) - set(lab["router"])
    if unknown:
        raise BundleError(f"{where}: experts {sorted(unknown)} are not router classes")
    files = card["files"]
    for key in ("router", "experts", "heads"):
        if key not in files:
            raise BundleError(f"{where}: files.{key} missing")
    for protocol in lab["experts"]:
        if protocol not in files["experts"] or protocol not in files["heads"]:
            raise BundleError(f"{where}: no expert or heads file for expert {protocol!r}")
    return card


def load_card(bundle_dir) -> dict:
    """Read and validate `bundle_dir`/card.json."""
    path = Path(bundle_dir) / "card.json"
    if not Path(bundle_dir).is_dir():
        raise BundleError(f"{bundle_dir}: not a model bundle folder")
    if not path.exists():
        raise BundleError(f"{path}: missing; a bundle folder needs card.json beside its ONNX files")
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise BundleError(f"{path}: not valid JSON ({err})") from err
    return validate(card, str(path))


def write_card(bundle_dir, card: dict) -> Path:
    path = Path(bundle_dir) / "card.json"
    validate(card, str(path))
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path
