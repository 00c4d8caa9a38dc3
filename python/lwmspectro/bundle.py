"""The model bundle: a folder of ONNX graphs and the card that says what they are, loaded once.

A bundle is a folder::

    card.json
    router.onnx              spectrogram (B, T, K) -> router_logits (B, len(labels.router))
    expert_<protocol>.onnx   spectrogram (B, T, K) -> embedding (B, D)
    heads_<protocol>.onnx    embedding (B, D) -> modulation_logits (B, M), snr_mobility_logits (B, S)
                             or (separate heads) modulation_logits (B, M), snr_db (B, 2),
                             mobility_logits (B, 3), log_doppler (B, 2)

card.json holds a schema version, the bundle's name, the parameters of G (``spectrogram``),
the views the model reads (``views``, optional), the input contract, the label lists, the
normalisation statistics (recorded only: they are folded into the graphs), the files, the
model's description, how it was trained, its measured metrics and the sha256 of every file
it names (``sha256``, the ONNX graphs and the torch checkpoint).

``views`` lists the model's input views in order, each as `view_registry.view_to_dict` writes it
(``{"name": kind, "params": {...}}``); a card without it reads the wideband view with the
parameters of ``spectrogram`` alone, as every card before it did. A router or expert graph
takes one input per view it reads, named after the view (`view_registry.view_names`: ``wideband``,
``ofdm_aligned_15khz``, ...); today's graphs name their one wideband input ``spectrogram``
(`WIDEBAND_INPUT`), which keeps meaning the card's wideband view. ``input.absent_views`` names
the views the graphs take as all-NaN when a window lacks them (a view of the past that a short
capture does not reach); the other views of a window must be finite.

Separate heads give the SNR in dB and log10(1 + fD / Hz) of the maximum Doppler each as a
mean and a log variance (columns 0 and 1), beside modulation and mobility logits.

``calibration`` (optional; absent in cards written before it: no calibration) holds, per graph
(``router`` and each expert, whose heads graph it applies to), a temperature for each of its
classification heads by the task it reads (``protocol``; ``modulation``, ``snr_mobility`` or
``mobility``), by which the runtime divides the logits before the softmax, and for a Gaussian SNR
head (``snr_db``) the factor its standard deviation is multiplied by (`CALIBRATED_HEADS`); a head
it does not name keeps its logits. Export fits them on the validation split
(lwmspectro_train.calibrate).

What the weights were trained with cannot be edited in the card alone: each ONNX graph
carries, in its ``metadata_props`` under `METADATA_KEY`, a JSON of the G parameters, label
lists, normalisation and calibration it was exported with (`graph_metadata`), and the loader refuses a
card that disagrees with any graph, naming the field. A file changed after export fails
its checksum. A card of schema 1 (no checksums, no graph metadata) is refused with the
command that upgrades it in place without touching the weights (`STAMP_HINT`).

`load_bundle` reads and validates the card once into a frozen `Bundle` that the runtime,
the GNU Radio blocks and the training package share; a bundle that cannot be honoured is
refused with a `BundleError` naming the file and the reason. `build_card` is the one
place a card is assembled and `write_card` the one place it is written (with the checksums
of the files beside it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import labels
from . import views as view_registry
from .fileio import atomic_write, file_sha256
from .spectrogram import SpectrogramParams

SCHEMA_VERSION = 2
CARD_FILE = "card.json"
METADATA_KEY = "lwmspectro.trained_with"
"""The ONNX metadata_props key holding the JSON of what a graph was exported with."""
STAMP_HINT = "stamp it with `lwmspectro export --stamp DIR` (keeps the weights) or re-export it"

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
    "sha256",
)
SECTIONS = ("spectrogram", "input", "labels", "normalisation", "files", "model", "training", "metrics", "sha256")
"""The card's keys that hold a JSON object."""
LABEL_LISTS = ("router", "experts", "modulation", "snr_db", "mobility", "snr_mobility")
CALIBRATED_HEADS = {
    "router": ("protocol",),
    "heads": ("modulation", "snr_mobility"),
    "heads_separate": ("modulation", "mobility", "snr_db"),
}
"""The heads a card's ``calibration`` may name, per kind of graph (TENSOR_NAMES): a temperature
for each classification head, a scale of the standard deviation for the Gaussian SNR head."""

TENSOR_NAMES = {
    "router": (("spectrogram",), ("router_logits",)),
    "expert": (("spectrogram",), ("embedding",)),
    "heads": (("embedding",), ("modulation_logits", "snr_mobility_logits")),
    "heads_separate": (("embedding",), ("modulation_logits", "snr_db", "mobility_logits", "log_doppler")),
}
"""(input names, output names) of each kind of graph in a bundle, as today's single-view graphs
name them (a multi-view router or expert takes one input per view it reads, by view name)."""
WIDEBAND_INPUT = "spectrogram"
"""The input name of the wideband view in graphs that read it alone (every bundle shipped so far)."""

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
    """G's parameters (the card's ``spectrogram``): the input contract's analysis rate and window."""
    views: tuple[Any, ...]
    """The model's input views in order (the card's ``views``; its wideband G when it has none)."""
    input: Mapping[str, Any]
    labels: BundleLabels
    files: BundleFiles
    normalisation: Mapping[str, Any]
    model: Mapping[str, Any]
    training: Mapping[str, Any]
    metrics: Mapping[str, Any]
    card: Mapping[str, Any]
    card_sha256: str
    sha256: Mapping[str, str]
    """The checksum of every file the card names, by its name in the card."""
    checkpoint: Path | None = None
    """The torch checkpoint the card names, when it lies in the bundle (then verified)."""
    calibration: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    """The card's ``calibration``: per graph (``router`` or an expert), the temperature (or, for
    ``snr_db``, the standard deviation's scale) of each head it names; empty: none."""

    def calibration_of(self, graph: str) -> Mapping[str, float]:
        """The calibration of `graph` (``router`` or an expert), {} when it has none."""
        return self.calibration.get(graph, {})

    @property
    def card_path(self) -> Path:
        return self.path / CARD_FILE

    @property
    def view_names(self) -> list[str]:
        """The name of each of `views`, as the graphs' inputs call them."""
        return view_registry.view_names(self.views)

    @property
    def absent_views(self) -> tuple[str, ...]:
        """The views (by name) the graphs take as all-NaN when a window lacks them (input.absent_views)."""
        return tuple(self.input.get("absent_views", ()))

    @classmethod
    def load(cls, path: BundlePath) -> Bundle:
        """Read and validate `path`/card.json, then verify every file it names."""
        folder = Path(path)
        card_path = folder / CARD_FILE
        if not folder.is_dir():
            raise BundleError(f"{folder}: not a model bundle folder")
        card, raw = read_card(card_path, "a bundle folder needs card.json beside its ONNX files")
        return cls.from_card(card, folder, card_sha256=hashlib.sha256(raw).hexdigest())

    @classmethod
    def from_card(cls, card: Mapping[str, Any], path: BundlePath, card_sha256: str = "", verify: bool = True) -> Bundle:
        """The bundle `card` describes in folder `path`; BundleError saying what is wrong.

        `verify` checks every named file against its checksum and every graph's metadata
        against the card; only a tool that is about to (re)write those files turns it off."""
        folder = Path(path)
        where = folder / CARD_FILE
        if not isinstance(card, Mapping):
            raise BundleError(f"{where}: not a JSON object but {_json_type(card)}")
        from .lwm_embed import CARD_KIND as CHANNEL_MODEL_KIND

        if card.get("kind") == CHANNEL_MODEL_KIND:
            raise BundleError(
                f"{where}: a channel model bundle (kind {CHANNEL_MODEL_KIND!r}), which embeds channel matrices "
                "(`lwmspectro embed`), not I/Q; give a spectrogram model bundle such as models/small"
            )
        if card.get("schema_version") == 1:
            raise BundleError(
                f"{where}: schema_version 1 records no file checksums and its graphs do not say what they "
                f"were trained with; {STAMP_HINT}"
            )
        missing = [k for k in REQUIRED_KEYS if k not in card]
        if missing:
            raise BundleError(f"{where}: missing keys {missing}")
        if card["schema_version"] != SCHEMA_VERSION:
            raise BundleError(
                f"{where}: schema_version {card['schema_version']!r} is not supported "
                f"(this lwmspectro reads {SCHEMA_VERSION}); re-export the bundle"
            )
        if not isinstance(card["name"], str):
            raise BundleError(f"{where}: name must be a string, not {_json_type(card['name'])}")
        for section in SECTIONS:
            if not isinstance(card[section], Mapping):
                raise BundleError(f"{where}: {section} must be a JSON object, not {_json_type(card[section])}")
        try:
            params = SpectrogramParams.from_dict(card["spectrogram"])
        except (TypeError, ValueError) as err:
            raise BundleError(f"{where}: bad spectrogram parameters: {err}") from err
        model_views = _read_views(card, params, where)
        absent = card["input"].get("absent_views", [])
        names = view_registry.view_names(model_views)
        if not isinstance(absent, list) or not all(isinstance(n, str) and n in names for n in absent):
            raise BundleError(f"{where}: input.absent_views must list some of the card's views {names}, not {absent!r}")
        if card["input"].get("sample_rate_hz") != params.sample_rate_hz:
            raise BundleError(
                f"{where}: input sample_rate_hz {card['input'].get('sample_rate_hz')} "
                f"differs from the spectrogram's {params.sample_rate_hz}"
            )
        bundle_labels = _read_labels(card["labels"], where)
        calibration = _read_calibration(card.get("calibration", {}), bundle_labels.experts, where)
        files = _read_files(card["files"], bundle_labels.experts, folder, where)
        checkpoint_name = _checkpoint_name(card["training"], where)
        checkpoint = None
        sha256: dict[str, str] = {}
        if verify:
            sha256 = _read_sha256(card["sha256"], _graph_names(card["files"], bundle_labels.experts), where)
            if checkpoint_name in card["sha256"] or (folder / checkpoint_name).is_file():
                sha256.update(_read_sha256(card["sha256"], [checkpoint_name], where))
            checkpoint = _verify_files(
                card, files, folder / checkpoint_name if checkpoint_name else None, sha256, where
            )
        return cls(
            path=folder,
            name=card["name"],
            schema_version=int(card["schema_version"]),
            params=params,
            views=model_views,
            input=card["input"],
            labels=bundle_labels,
            files=files,
            normalisation=card["normalisation"],
            model=card["model"],
            training=card["training"],
            metrics=card["metrics"],
            card=card,
            card_sha256=card_sha256,
            sha256=sha256,
            checkpoint=checkpoint,
            calibration=calibration,
        )

    def verify_checkpoint(self, path: Path) -> None:
        """Refuse `path` as the card's torch checkpoint unless its sha256 is the recorded one."""
        if self.checkpoint is not None and Path(path) == self.checkpoint:
            return
        name = self.training.get("checkpoint")
        expected = self.sha256.get(name) if isinstance(name, str) else None
        if expected is None:
            raise BundleError(f"{self.card_path}: records no sha256 for training.checkpoint; {STAMP_HINT}")
        verify_sha256(Path(path), expected, self.card_path)


def read_card(card_path: Path, missing: str) -> tuple[Any, bytes]:
    """(the parsed card, its bytes) of a bundle's card.json; BundleError saying what is wrong
    (`missing`: what to say when there is no such file)."""
    if not card_path.exists():
        raise BundleError(f"{card_path}: missing; {missing}")
    try:
        raw = card_path.read_bytes()
    except OSError as err:
        raise BundleError(f"{card_path}: cannot be read ({err.strerror or err})") from err
    try:
        return json.loads(raw), raw
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{card_path}: not valid JSON ({err}); restore the bundle's card.json") from err


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _read_views(card: Mapping[str, Any], params: SpectrogramParams, where: Path) -> tuple[Any, ...]:
    """The card's ``views``, each checked by view_registry.view_from_dict; absent: the wideband G."""
    if "views" not in card:
        return (params,)
    entries = card["views"]
    if not isinstance(entries, list) or not entries:
        raise BundleError(f"{where}: views must be a non-empty list of views, not {_json_type(entries)}")
    parsed = []
    for i, entry in enumerate(entries):
        try:
            parsed.append(view_registry.view_from_dict(entry, f"views.{i}"))
        except (TypeError, ValueError) as err:
            raise BundleError(f"{where}: {err}") from err
        if parsed[-1] in parsed[:-1]:
            raise BundleError(f"{where}: views.{i} repeats views.{parsed.index(parsed[-1])}; list each view once")
    return tuple(parsed)


def _string_list(lab: Mapping[str, Any], key: str, where: Path) -> tuple[str, ...]:
    values = lab.get(key)
    if not isinstance(values, list) or not values:
        raise BundleError(f"{where}: labels.{key} missing or empty (it is {_json_type(values)})")
    if not all(isinstance(v, str) for v in values):
        raise BundleError(f"{where}: labels.{key} must list strings, not {values!r}")
    if len(set(values)) != len(values):
        raise BundleError(f"{where}: labels.{key} lists a class twice: {values!r}")
    return tuple(values)


def _read_labels(lab: Mapping[str, Any], where: Path) -> BundleLabels:
    router = _string_list(lab, "router", where)
    experts = _string_list(lab, "experts", where)
    modulations = _string_list(lab, "modulation", where)
    mobility = _string_list(lab, "mobility", where)
    for key in ("snr_db", "snr_mobility"):
        if not isinstance(lab.get(key), list) or not lab[key]:
            raise BundleError(f"{where}: labels.{key} missing or empty (it is {_json_type(lab.get(key))})")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in lab["snr_db"]):
        raise BundleError(f"{where}: labels.snr_db must list SNRs in dB, not {lab['snr_db']!r}")
    unknown = set(experts) - set(router)
    if unknown:
        raise BundleError(f"{where}: experts {sorted(unknown)} are not router classes")
    try:
        pairs = tuple((float(snr), str(mobility)) for snr, mobility in lab["snr_mobility"])
    except (TypeError, ValueError) as err:
        raise BundleError(f"{where}: labels.snr_mobility must list [snr_db, mobility] pairs ({err})") from err
    unknown_mobility = sorted({mob for _, mob in pairs} - set(mobility))
    if unknown_mobility:
        raise BundleError(
            f"{where}: labels.snr_mobility uses mobility classes {unknown_mobility} "
            f"not in labels.mobility {list(mobility)}"
        )
    joint_bins = list(dict.fromkeys(snr for snr, _ in pairs))
    if [float(snr) for snr in lab["snr_db"]] != joint_bins:
        raise BundleError(
            f"{where}: labels.snr_db {lab['snr_db']} differs from the SNR bins of labels.snr_mobility "
            f"{joint_bins}; the SNR readout takes its bins from the joint classes"
        )
    return BundleLabels(
        router=router,
        experts=experts,
        modulations=modulations,
        mobility=mobility,
        snr_mobility=pairs,
    )


def _read_calibration(calibration: object, experts: Iterable[str], where: Path) -> dict[str, dict[str, float]]:
    """The card's ``calibration``, each value a positive finite number for a head its graph may
    have (CALIBRATED_HEADS; which heads an expert's graph has, the runtime checks)."""
    if not isinstance(calibration, Mapping):
        raise BundleError(f"{where}: calibration must be a JSON object, not {_json_type(calibration)}")
    expert_heads = tuple(dict.fromkeys(CALIBRATED_HEADS["heads"] + CALIBRATED_HEADS["heads_separate"]))
    heads_of = {"router": CALIBRATED_HEADS["router"], **dict.fromkeys(experts, expert_heads)}
    parsed: dict[str, dict[str, float]] = {}
    for graph, heads in calibration.items():
        if graph not in heads_of:
            raise BundleError(
                f"{where}: calibration.{graph} is not a graph of this bundle; valid: {', '.join(heads_of)}"
            )
        if not isinstance(heads, Mapping):
            raise BundleError(f"{where}: calibration.{graph} must map heads to temperatures, not {_json_type(heads)}")
        parsed[graph] = {}
        for head, value in heads.items():
            if head not in heads_of[graph]:
                raise BundleError(
                    f"{where}: calibration.{graph}.{head} is not a head of the {graph} graph; "
                    f"valid: {', '.join(heads_of[graph])}"
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise BundleError(
                    f"{where}: calibration.{graph}.{head} is {json.dumps(value)}, not a positive number "
                    "(a temperature, or the SNR's standard deviation scale)"
                )
            parsed[graph][head] = float(value)
    return parsed


def _file_name(value: object, field: str, where: Path) -> str:
    """A graph's file name: a plain name in the bundle folder."""
    if not isinstance(value, str) or not value or Path(value).name != value or value in (".", ".."):
        raise BundleError(f"{where}: {field} must be a file name in the bundle folder, not {value!r}")
    return value


def _read_files(files: Mapping[str, Any], experts: Iterable[str], folder: Path, where: Path) -> BundleFiles:
    for key in ("router", "experts", "heads"):
        if key not in files:
            raise BundleError(f"{where}: files.{key} missing")
    for key in ("experts", "heads"):
        if not isinstance(files[key], Mapping):
            raise BundleError(f"{where}: files.{key} must map each expert to its file, not {_json_type(files[key])}")
    for protocol in experts:
        if protocol not in files["experts"] or protocol not in files["heads"]:
            raise BundleError(f"{where}: no expert or heads file for expert {protocol!r}")
    return BundleFiles(
        router=folder / _file_name(files["router"], "files.router", where),
        experts={p: folder / _file_name(files["experts"][p], f"files.experts.{p}", where) for p in experts},
        heads={p: folder / _file_name(files["heads"][p], f"files.heads.{p}", where) for p in experts},
    )


def _graph_names(files: Mapping[str, Any], experts: Iterable[str]) -> list[str]:
    experts = list(experts)
    return [files["router"], *(files["experts"][p] for p in experts), *(files["heads"][p] for p in experts)]


def _checkpoint_name(training: Mapping[str, Any], where: Path) -> str:
    """training.checkpoint ('' when the card names none)."""
    name = training.get("checkpoint")
    if name in (None, ""):
        return ""
    if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts:
        raise BundleError(f"{where}: training.checkpoint must be a path inside the bundle folder, not {name!r}")
    return name


def _read_sha256(sha256: Mapping[str, Any], names: Iterable[str], where: Path) -> dict[str, str]:
    digests = {}
    for name in names:
        if not name:
            continue
        digest = sha256.get(name)
        if not isinstance(digest, str) or len(digest) != 64 or set(digest) - set("0123456789abcdef"):
            shown = "missing" if digest is None else repr(digest)
            raise BundleError(f"{where}: sha256.{name} is {shown}, not a sha256 hex digest; {STAMP_HINT}")
        digests[name] = digest
    return digests


def verify_sha256(path: Path, expected: str, where: Path) -> None:
    """Refuse the file at `path` unless its sha256 is `expected` (recorded in the card at `where`)."""
    try:
        actual = file_sha256(path)
    except FileNotFoundError:
        raise BundleError(f"{path}: missing; {where.name} names it (restore it or re-export the bundle)") from None
    except OSError as err:
        raise BundleError(f"{path}: cannot be read ({err.strerror or err})") from err
    if actual != expected:
        raise BundleError(
            f"{path}: sha256 {actual[:12]}... does not match the {expected[:12]}... that {where.name} records; "
            "the file changed after export: restore it or re-export the bundle"
        )


def _verify_files(
    card: Mapping[str, Any],
    files: BundleFiles,
    checkpoint: Path | None,
    sha256: Mapping[str, str],
    where: Path,
) -> Path | None:
    """Check every graph's checksum and metadata, and the checkpoint's checksum when it lies in
    the bundle (a deployment may ship the graphs alone); the verified checkpoint or None."""
    expected = json.loads(graph_metadata(card))
    for path in (files.router, *files.experts.values(), *files.heads.values()):
        verify_sha256(path, sha256[path.name], where)
        _check_graph_metadata(path, expected, where)
    if checkpoint is None or not checkpoint.is_file():
        return None
    verify_sha256(checkpoint, sha256[card["training"]["checkpoint"]], where)
    return checkpoint


def graph_metadata(card: Mapping[str, Any]) -> str:
    """The JSON each ONNX graph of the bundle carries under METADATA_KEY: the G parameters,
    label lists and normalisation its weights were trained with, as `card` states them."""
    params = SpectrogramParams.from_dict(card["spectrogram"])
    trained_with: dict[str, Any] = {
        "spectrogram": params.to_dict(),
        "labels": {key: card["labels"].get(key) for key in LABEL_LISTS},
        "normalisation": dict(card["normalisation"]),
    }
    # A card that names views other than its wideband G stamps them; naming that G alone is
    # what every card without views says, so a graph stamped before views keeps matching it.
    model_views = [view_registry.view_to_dict(v) for v in _read_views(card, params, Path(CARD_FILE))]
    if model_views != [view_registry.view_to_dict(params)]:
        trained_with["views"] = model_views
    # Fitted to the weights, so stamped with them; a card without it stamps none, as before it.
    if card.get("calibration"):
        trained_with["calibration"] = dict(card["calibration"])
    return json.dumps(trained_with, sort_keys=True)


def _check_graph_metadata(path: Path, expected: Mapping[str, Any], where: Path) -> None:
    text = read_onnx_metadata(path).get(METADATA_KEY)
    if text is None:
        raise BundleError(f"{path}: no {METADATA_KEY} metadata saying what the graph was trained with; {STAMP_HINT}")
    try:
        stamped = json.loads(text)
        # Calibration is stamped only when there is one: both sides without it agree.
        sections = [(name, stamped.get(name, {}) if name == "calibration" else stamped[name]) for name in expected]
        if "calibration" in stamped and "calibration" not in expected:
            sections.append(("calibration", stamped["calibration"]))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise BundleError(
            f"{path}: its {METADATA_KEY} metadata is not the expected JSON ({err}); re-export it"
        ) from err
    expected = {"calibration": {}, **expected}
    for section, values in sections:
        if section == "views":
            if values != expected[section]:
                raise BundleError(
                    f"{where}: views are {json.dumps(expected[section])} but {path.name} was exported with "
                    f"{json.dumps(values)}; restore the card's views (the weights were trained with them)"
                )
            continue
        if not isinstance(values, Mapping):
            raise BundleError(f"{path}: its {METADATA_KEY} metadata has no {section} object; re-export it")
        for key in sorted(set(values) | set(expected[section])):
            card_value, graph_value = expected[section].get(key), values.get(key)
            if card_value != graph_value:
                raise BundleError(
                    f"{where}: {section}.{key} is {json.dumps(card_value)} but {path.name} was exported with "
                    f"{json.dumps(graph_value)}; restore the card's value (the weights were trained with it)"
                )


def _varint(stream: io.BufferedIOBase | io.BytesIO, path: Path) -> int | None:
    """One protobuf varint, or None at the end of the stream."""
    value = shift = 0
    while True:
        byte = stream.read(1)
        if not byte:
            if shift:
                raise BundleError(f"{path}: not a loadable ONNX model (cut inside a field)")
            return None
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise BundleError(f"{path}: not a loadable ONNX model (a malformed field)")


def _fields(stream: io.BufferedIOBase | io.BytesIO, size: int, path: Path, wanted: int) -> list[bytes]:
    """The length-delimited values of top-level field `wanted` of a protobuf message of `size`
    bytes; every other field is skipped by seeking, so a large graph is not read."""
    found = []
    while (tag := _varint(stream, path)) is not None:
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _varint(stream, path)
            continue
        if wire == 2:
            length = _varint(stream, path) or 0
        elif wire in (1, 5):
            length = 8 if wire == 1 else 4
        else:
            raise BundleError(f"{path}: not a loadable ONNX model (wire type {wire})")
        if stream.tell() + length > size:
            raise BundleError(f"{path}: not a loadable ONNX model (a field runs past the end of the file)")
        if number == wanted and wire == 2:
            found.append(stream.read(length))
        else:
            stream.seek(length, io.SEEK_CUR)
    return found


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """The metadata_props of the ONNX model at `path` (ModelProto field 14 of key/value
    entries), read without loading the graph."""
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            entries = _fields(stream, size, path, 14)
    except OSError as err:
        raise BundleError(f"{path}: cannot be read ({err.strerror or err})") from err
    metadata = {}
    for entry in entries:
        parts: dict[int, bytes] = {}
        for number in (1, 2):
            values = _fields(io.BytesIO(entry), len(entry), path, number)
            parts[number] = values[-1] if values else b""
        try:
            metadata[parts[1].decode()] = parts[2].decode()
        except UnicodeDecodeError as err:
            raise BundleError(f"{path}: metadata that is not UTF-8 ({err})") from err
    return metadata


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
        "train and export one with `lwmspectro-train all --config views-small` "
        "(models/small/RECIPE.md), or pass --bundle DIR / "
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
    views: Iterable[Any] | None = None,
    absent_views: Iterable[str] = (),
    experts: Iterable[str] = labels.PROTOCOLS,
    normalisation: Mapping[str, Any],
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    metrics: Mapping[str, Any],
    calibration: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """A card for a bundle of the standard layout (`default_files`) whose experts are
    `experts`, with the label lists of `labels`; `views` are the model's input views in order
    (None records none: the wideband G of `params` alone), `absent_views` the names of those
    the graphs take as all-NaN when a window lacks them, `calibration` each graph's head
    temperatures (None records none)."""
    experts = list(experts)
    card: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "spectrogram": params.to_dict(),
    }
    if views is not None:
        card["views"] = [view_registry.view_to_dict(v) for v in views]
    contract = input_contract(params)
    if absent_views:
        contract["absent_views"] = list(absent_views)
    return card | {
        "input": contract,
        "labels": default_labels(experts),
        "normalisation": dict(normalisation),
        "files": default_files(experts),
        "model": dict(model),
        "training": dict(training),
        "metrics": dict(metrics),
        **({"calibration": {graph: dict(heads) for graph, heads in calibration.items()}} if calibration else {}),
        "sha256": {},
    }


def card_checksums(bundle_dir: BundlePath, card: Mapping[str, Any]) -> dict[str, str]:
    """The sha256 of every graph `card` names and of its checkpoint when that lies in the
    bundle, by the names the card uses; BundleError naming a graph that is not there."""
    folder = Path(bundle_dir)
    bundle = Bundle.from_card({**card, "sha256": {}}, folder, verify=False)
    names = [path.name for path in (bundle.files.router, *bundle.files.experts.values(), *bundle.files.heads.values())]
    checkpoint = _checkpoint_name(card["training"], folder / CARD_FILE)
    if checkpoint and (folder / checkpoint).is_file():
        names.append(checkpoint)
    digests = {}
    for name in names:
        try:
            digests[name] = file_sha256(folder / name)
        except OSError as err:
            raise BundleError(f"{folder / name}: {err.strerror or err}; the card names it") from err
    return digests


def write_card(bundle_dir: BundlePath, card: Mapping[str, Any]) -> dict[str, Any]:
    """Record in `card` the sha256 of the files it names (already in `bundle_dir`, their graphs
    stamped with `graph_metadata`), validate it against them and write it atomically as
    `bundle_dir`/card.json. Returns the card written."""
    stamped = {**card, "sha256": card_checksums(bundle_dir, card)}
    Bundle.from_card(stamped, bundle_dir)
    atomic_write(Path(bundle_dir) / CARD_FILE, json.dumps(stamped, indent=2) + "\n")
    return stamped
