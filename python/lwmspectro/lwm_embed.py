"""LWM channel model bundles and the embeddings they give (the LWM paper's Sec. VII), without torch.

A channel model bundle is a folder::

    card.json
    lwm_encoder.onnx   channels (B, 2, M, N) float32, the real and imaginary planes of H
                       -> cls_embedding (B, D), channel_embeddings (B, P, D)
    weights.pt         optional: the same encoder in torch (training.checkpoint)
    los_head.onnx      optional (files.los_head): cls_embedding (B, D) -> los_probabilities (B, 2),
                       the LoS/NLoS MLP of the paper's Sec. VIII-B trained on CLS embeddings of
                       labelled users; the card's ``los_head`` says on which and how well

Its card is the spectrogram bundle's card machinery applied to another model: a schema
version and a ``kind`` (``lwm_channels``) that tells the two apart, the input contract
(``input``: antennas, subcarriers, patch length, the channel scale folded into the graph, the
bandwidth the pretraining channels were made with), the model's sizes, how it was trained,
its metrics and the sha256 of every file (bundle.verify_sha256). The graph carries in its
ONNX metadata, under bundle.METADATA_KEY, the input contract it was exported with
(`graph_metadata`); a card that disagrees with it is refused naming the field.

`ChannelEmbedder` runs the graph with ONNX Runtime on complex channels (users, M, N): the CLS
embedding (D) summarises a channel, the channel embeddings (P x D) keep one vector per patch.
`read_channels` reads a user's .npy without executing anything in it (no pickle) and refuses
an array that is not complex, not (users, M, N) or not finite, saying which.

A stream of channel estimates (the GNU Radio LWM Channel Embedder) is judged one channel at a
time instead: `channel_fault` says why one cannot be embedded (NaN or infinite values, or all
zeros, as an estimator gives before it locks), and `channel_readout` is the one dict that
reports a channel, judged or not, with its LoS/NLoS class when the bundle has a head.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import CARD_FILE, METADATA_KEY, BundleError, BundlePath, read_card, read_onnx_metadata, verify_sha256
from .fileio import atomic_write, file_sha256
from .lwm_channels import channel_planes

CARD_KIND = "lwm_channels"
SCHEMA_VERSION = 1
ENCODER_FILE = "lwm_encoder.onnx"
ENCODER_INPUT = "channels"
ENCODER_OUTPUTS = ("cls_embedding", "channel_embeddings")
LOS_HEAD_FILE = "los_head.onnx"
LOS_HEAD_INPUT = ENCODER_OUTPUTS[0]
LOS_HEAD_OUTPUT = "los_probabilities"
LOS_CLASSES = ("nlos", "los")
"""The LoS head's classes, in the order of its output (index 1: line of sight, as the ray tracer's flag)."""
INPUT_FIELDS = {
    "antennas": int,
    "subcarriers": int,
    "patch_length": int,
    "patches": int,
    "embedding_dim": int,
    "channel_scale": float,
    "bandwidth_hz": float,
}
"""The input contract's fields (the card's ``input``) and their types; every one is stamped
into the graph, as the weights were trained with it."""
REQUIRED_KEYS = ("schema_version", "kind", "name", "input", "model", "files", "training", "metrics", "sha256")
SECTIONS = ("input", "model", "files", "training", "metrics", "sha256")
EMBED_BATCH = 256
"""Most channels handed to one ONNX session run."""


@dataclass(frozen=True)
class LwmBundle:
    """A validated channel model bundle; `card` is card.json as read."""

    path: Path
    name: str
    input: Mapping[str, Any]
    encoder: Path
    card: Mapping[str, Any]
    checkpoint: Path | None
    """The torch weights the card names, when they lie in the bundle (then verified)."""
    los_head: Path | None = None
    """The LoS/NLoS head's graph when the card names one (files.los_head; verified)."""

    @property
    def card_path(self) -> Path:
        return self.path / CARD_FILE

    @property
    def antennas(self) -> int:
        return int(self.input["antennas"])

    @property
    def subcarriers(self) -> int:
        return int(self.input["subcarriers"])

    @property
    def patches(self) -> int:
        return int(self.input["patches"])

    @property
    def embedding_dim(self) -> int:
        return int(self.input["embedding_dim"])

    @property
    def bandwidth_hz(self) -> float:
        return float(self.input["bandwidth_hz"])

    @classmethod
    def load(cls, path: BundlePath) -> LwmBundle:
        """Read `path`/card.json, validate it and verify every file it names."""
        folder = Path(path)
        card, _ = read_card(folder / CARD_FILE, "a channel model bundle folder needs card.json")
        return cls.from_card(card, folder)

    @classmethod
    def from_card(cls, card: Any, path: BundlePath) -> LwmBundle:
        """The bundle `card` describes in folder `path`, its files verified; BundleError saying what is wrong."""
        folder = Path(path)
        where = folder / CARD_FILE
        if not isinstance(card, Mapping):
            raise BundleError(f"{where}: not a JSON object")
        if card.get("kind") != CARD_KIND:
            raise BundleError(
                f"{where}: kind {card.get('kind')!r} is not {CARD_KIND!r}: not a channel model bundle "
                "(a spectrogram model bundle is read by `lwmspectro classify`)"
            )
        missing = [key for key in REQUIRED_KEYS if key not in card]
        if missing:
            raise BundleError(f"{where}: missing keys {missing}")
        if card["schema_version"] != SCHEMA_VERSION:
            raise BundleError(
                f"{where}: schema_version {card['schema_version']!r} is not supported "
                f"(this lwmspectro reads {SCHEMA_VERSION}); re-export the bundle"
            )
        for section in SECTIONS:
            if not isinstance(card[section], Mapping):
                raise BundleError(f"{where}: {section} must be a JSON object")
        _check_input(card["input"], where)
        encoder = folder / _inside(card["files"].get("encoder"), "files.encoder", where)
        verify_sha256(encoder, _digest(card["sha256"], encoder.name, where), where)
        _check_graph_metadata(encoder, card, where)
        checkpoint = None
        name = card["training"].get("checkpoint")
        if name:
            candidate = folder / _inside(name, "training.checkpoint", where)
            if candidate.is_file():
                verify_sha256(candidate, _digest(card["sha256"], name, where), where)
                checkpoint = candidate
        los_head = None
        head_name = card["files"].get("los_head")
        if head_name is not None:
            los_head = folder / _inside(head_name, "files.los_head", where)
            verify_sha256(los_head, _digest(card["sha256"], head_name, where), where)
            head_card = card.get("los_head")
            if not isinstance(head_card, Mapping) or tuple(head_card.get("classes", ())) != LOS_CLASSES:
                raise BundleError(
                    f"{where}: files.los_head needs a los_head section whose classes are {list(LOS_CLASSES)}; "
                    "add the head again with `lwmspectro lwm los-head`"
                )
        return cls(
            path=folder,
            name=str(card["name"]),
            input=card["input"],
            encoder=encoder,
            card=card,
            checkpoint=checkpoint,
            los_head=los_head,
        )


def _check_input(values: Mapping[str, Any], where: Path) -> None:
    for key, kind in INPUT_FIELDS.items():
        value = values.get(key)
        if not _positive(value, kind):
            raise BundleError(f"{where}: input.{key} must be a positive {kind.__name__}, not {value!r}")
    if values["antennas"] * values["subcarriers"] * 2 != values["patches"] * values["patch_length"]:
        raise BundleError(f"{where}: input.patches x input.patch_length must be 2 x antennas x subcarriers")


def _positive(value: Any, kind: type) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return math.isfinite(value) and value > 0 and (kind is float or int(value) == value)


def _inside(name: Any, field: str, where: Path) -> str:
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise BundleError(f"{where}: {field} must be a file name inside the bundle folder, not {name!r}")
    return name


def _digest(sha256: Mapping[str, Any], name: str, where: Path) -> str:
    digest = sha256.get(name)
    if not isinstance(digest, str) or len(digest) != 64 or set(digest) - set("0123456789abcdef"):
        raise BundleError(f"{where}: sha256.{name} is {digest!r}, not a sha256 hex digest; re-export the bundle")
    return digest


def graph_metadata(card: Mapping[str, Any]) -> str:
    """The JSON the encoder graph carries under METADATA_KEY: the card's kind and input contract."""
    return json.dumps({"kind": CARD_KIND, "input": {key: card["input"][key] for key in INPUT_FIELDS}}, sort_keys=True)


def _check_graph_metadata(path: Path, card: Mapping[str, Any], where: Path) -> None:
    text = read_onnx_metadata(path).get(METADATA_KEY)
    if text is None:
        raise BundleError(f"{path}: no {METADATA_KEY} metadata saying what the graph was trained with; re-export it")
    try:
        stamped = json.loads(text)["input"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise BundleError(f"{path}: its {METADATA_KEY} metadata is not the expected JSON ({err}); re-export") from err
    if not isinstance(stamped, Mapping):
        raise BundleError(f"{path}: its {METADATA_KEY} metadata has no input object; re-export it")
    for key in INPUT_FIELDS:
        if stamped.get(key) != card["input"][key]:
            graph_value = stamped.get(key)
            raise BundleError(
                f"{where}: input.{key} is {json.dumps(card['input'][key])} but {path.name} was exported with "
                f"{json.dumps(graph_value)}; restore the card's value (the weights were trained with it)"
            )


def build_card(
    *,
    name: str,
    input: Mapping[str, Any],
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> dict[str, Any]:
    """A channel model card (checksums still empty: `write_card` fills them)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": CARD_KIND,
        "name": name,
        "input": dict(input),
        "model": dict(model),
        "files": {"encoder": ENCODER_FILE},
        "training": dict(training),
        "metrics": dict(metrics),
        "sha256": {},
    }


def write_card(folder: BundlePath, card: Mapping[str, Any]) -> dict[str, Any]:
    """Record the sha256 of the encoder (stamped with `graph_metadata`), of the LoS head when
    the card names one and of the checkpoint when it lies in `folder`, validate the card
    against them and write it atomically."""
    folder = Path(folder)
    names = [card["files"]["encoder"], *([card["files"]["los_head"]] if card["files"].get("los_head") else [])]
    checkpoint = card["training"].get("checkpoint")
    if checkpoint and (folder / checkpoint).is_file():
        names.append(checkpoint)
    stamped = {**card, "sha256": {name: file_sha256(folder / name) for name in names}}
    LwmBundle.from_card(stamped, folder)
    atomic_write(folder / CARD_FILE, json.dumps(stamped, indent=2) + "\n")
    return stamped


def check_channels(channels: Any, antennas: int, subcarriers: int, where: str = "channels") -> np.ndarray:
    """`channels` as complex64 (users, antennas, subcarriers), or a ValueError saying what is wrong."""
    if not isinstance(channels, np.ndarray):
        raise ValueError(f"{where}: not an array but {type(channels).__name__}")
    if channels.dtype == object:
        raise ValueError(f"{where}: an array of Python objects; save the channels as a plain complex array")
    if not np.iscomplexobj(channels):
        raise ValueError(
            f"{where}: dtype {channels.dtype} is not complex; channels are complex matrices "
            "(complex64 or complex128), real and imaginary parts together"
        )
    expected = f"(users, {antennas}, {subcarriers})"
    if channels.ndim != 3 or channels.shape[1:] != (antennas, subcarriers):
        raise ValueError(
            f"{where}: shape {channels.shape} is not {expected}: one {antennas} antennas x {subcarriers} "
            "subcarriers matrix per user, as the model was pretrained on"
        )
    if channels.shape[0] == 0:
        raise ValueError(f"{where}: holds no channel (shape {channels.shape})")
    finite = np.isfinite(channels).reshape(len(channels), -1).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{where}: {len(bad)} of {len(channels)} channels hold NaN or infinite values (the first: user {bad[0]})"
        )
    return channels.astype(np.complex64, copy=False)


def read_channels(path: str | Path, antennas: int, subcarriers: int) -> np.ndarray:
    """The complex (users, antennas, subcarriers) channels in the .npy at `path`, read with
    pickle refused, so that nothing in the file can run code; ValueError saying what is wrong."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            start = stream.read(6)
            stream.seek(0)
            # numpy reads whatever is not a .npy or .npz header as a pickle, and says so for text too.
            if start and start[:1] != b"\x80" and not start.startswith((b"\x93NUMPY", b"PK")):
                raise ValueError("it has no .npy header; save the channels with numpy.save")
            array = np.load(stream, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err) or "Object arrays" in str(err):
            raise ValueError(
                f"{path}: holds Python objects (a pickled array), which are not read; "
                "save the channels as a plain complex array with numpy.save"
            ) from err
        raise ValueError(f"{path}: not a .npy array ({err})") from err
    except (OSError, EOFError) as err:
        if isinstance(err, OSError) and err.strerror:
            raise
        raise ValueError(f"{path}: not a .npy array ({err or type(err).__name__})") from err
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path}: an .npz archive, not one .npy array; save the channels with numpy.save")
    return check_channels(array, antennas, subcarriers, str(path))


CHANNEL_FAULTS = ("nan_or_inf", "all_zero", "out_of_range")
"""Why a channel estimate cannot be embedded (the first two are the names readouts of
spectrogram windows use too)."""
SCALED_RANGE = (1e-6, 1e6)
"""The largest entry of a channel, times the bundle's channel_scale (about 1 for the channels it
was pretrained on), must lie within this range: a million times larger or smaller and the
embedding is that of a scale the model never saw (the positions' encoding drowned, or drowning
the channel), and beyond about 1e12 its float32 arithmetic overflows to NaN."""
CHANNEL_READOUT_FIELDS = (
    "user",
    "valid",
    "invalid_reason",
    "los",
    "los_confidence",
    "channels_seen",
    "channels_invalid",
)
"""The fields of every channel readout, in order."""


def channel_faults(channels: np.ndarray, channel_scale: float) -> list[str | None]:
    """Why each complex channel of `channels` (users, ...) cannot be embedded by a model that
    reads channels times `channel_scale` (one of CHANNEL_FAULTS), or None where it can: NaN or
    infinite values would turn every embedding NaN, an all-zero estimate (no signal, or an
    estimator not yet locked) carries no channel to describe, and one far from the scale the
    model was pretrained on (SCALED_RANGE) gives an embedding that means nothing."""
    flat = np.asarray(channels).reshape(len(channels), -1)
    finite = np.isfinite(flat).all(axis=1)
    peak = np.abs(np.where(finite[:, None], flat, 0)).max(axis=1, initial=0.0) * float(channel_scale)
    low, high = SCALED_RANGE
    return [
        "nan_or_inf" if not ok else "all_zero" if top == 0 else None if low <= top <= high else "out_of_range"
        for ok, top in zip(finite, peak)
    ]


def channel_readout(
    user: int,
    *,
    channels_seen: int,
    channels_invalid: int,
    invalid_reason: str | None = None,
    los_probabilities: np.ndarray | None = None,
) -> dict[str, Any]:
    """The readout of one channel: its `user` (index in its stream or file), whether it was
    embedded, why not, and, when the bundle has a LoS head and the channel was embedded, the
    more likely of LOS_CLASSES with its probability; the counters so far ride along."""
    if invalid_reason is not None and invalid_reason not in CHANNEL_FAULTS:
        raise ValueError(f"invalid_reason {invalid_reason!r} is not one of {CHANNEL_FAULTS}")
    los = confidence = None
    if invalid_reason is None and los_probabilities is not None:
        index = int(np.argmax(los_probabilities))
        los, confidence = LOS_CLASSES[index], float(los_probabilities[index])
    return {
        "user": int(user),
        "valid": invalid_reason is None,
        "invalid_reason": invalid_reason,
        "los": los,
        "los_confidence": confidence,
        "channels_seen": int(channels_seen),
        "channels_invalid": int(channels_invalid),
    }


@dataclass(frozen=True, eq=False)
class ChannelEmbeddings:
    """The LWM embeddings of some channels."""

    cls: np.ndarray
    """float32 (users, D): the CLS embedding, one summary of each channel."""
    channel: np.ndarray
    """float32 (users, P, D): the channel embeddings, one per patch."""


class ChannelEmbedder:
    """A channel model bundle loaded into ONNX Runtime: complex channels in, embeddings out."""

    def __init__(self, bundle: LwmBundle | BundlePath, threads: int | None = None):
        import onnxruntime as ort

        from .runtime import session_options

        self.bundle = bundle if isinstance(bundle, LwmBundle) else LwmBundle.load(bundle)
        b = self.bundle
        options = session_options(threads)
        self.session = ort.InferenceSession(str(b.encoder), options, providers=["CPUExecutionProvider"])
        _check_shapes(
            self.session,
            b.encoder,
            {
                ENCODER_INPUT: [2, b.antennas, b.subcarriers],
                ENCODER_OUTPUTS[0]: [b.embedding_dim],
                ENCODER_OUTPUTS[1]: [b.patches, b.embedding_dim],
            },
        )
        self.los_session = None
        if b.los_head is not None:
            self.los_session = ort.InferenceSession(str(b.los_head), options, providers=["CPUExecutionProvider"])
            _check_shapes(
                self.los_session,
                b.los_head,
                {LOS_HEAD_INPUT: [b.embedding_dim], LOS_HEAD_OUTPUT: [len(LOS_CLASSES)]},
            )

    @property
    def channel_scale(self) -> float:
        """What the model multiplies a channel by before reading it (card input.channel_scale)."""
        return float(self.bundle.input["channel_scale"])

    def embed(self, channels: np.ndarray, where: str = "channels") -> ChannelEmbeddings:
        """Embeddings of `channels`, complex (users, M, N) as the card's input says; a ValueError
        naming the first of those that cannot be embedded (channel_faults) and why."""
        bundle = self.bundle
        channels = check_channels(channels, bundle.antennas, bundle.subcarriers, where)
        faults = channel_faults(channels, self.channel_scale)
        bad = [user for user, fault in enumerate(faults) if fault is not None]
        if bad:
            first = bad[0]
            peak = float(np.abs(channels[first]).max())
            reasons = {
                "all_zero": "all zeros, no channel to describe",
                "out_of_range": f"its largest entry {peak:.3g} is beyond {SCALED_RANGE[0]:g} to {SCALED_RANGE[1]:g} "
                f"times 1 / channel_scale ({1 / self.channel_scale:.3g}), the scale of the channels the model "
                "was pretrained on; scale the channels to physical path gains",
            }
            raise ValueError(
                f"{where}: {len(bad)} of {len(channels)} channels cannot be embedded (the first, user {first}: "
                f"{reasons.get(faults[first] or '', faults[first])})"
            )
        cls_parts, channel_parts = [], []
        for start in range(0, len(channels), EMBED_BATCH):
            planes = channel_planes(channels[start : start + EMBED_BATCH])
            cls, channel = self.session.run(list(ENCODER_OUTPUTS), {ENCODER_INPUT: planes})
            cls_parts.append(cls)
            channel_parts.append(channel)
        return ChannelEmbeddings(
            cls=np.concatenate(cls_parts).astype(np.float32, copy=False),
            channel=np.concatenate(channel_parts).astype(np.float32, copy=False),
        )

    def los_probabilities(self, cls: np.ndarray) -> np.ndarray:
        """float32 (users, 2): the LoS head's probabilities of LOS_CLASSES for CLS embeddings
        (users, D); BundleError when the bundle has no head."""
        if self.los_session is None:
            raise BundleError(
                f"{self.bundle.card_path}: the bundle has no LoS head; add one with `lwmspectro lwm los-head`"
            )
        cls = np.asarray(cls, dtype=np.float32)
        parts = [
            self.los_session.run([LOS_HEAD_OUTPUT], {LOS_HEAD_INPUT: cls[start : start + EMBED_BATCH]})[0]
            for start in range(0, len(cls), EMBED_BATCH)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)


def _check_shapes(session: Any, path: Path, expected: Mapping[str, list[int]]) -> None:
    """Refuse a graph whose tensors are not the ones the card describes (the batch axis aside)."""
    tensors = {t.name: list(t.shape)[1:] for t in (*session.get_inputs(), *session.get_outputs())}
    for name, shape in expected.items():
        if tensors.get(name) != shape:
            raise BundleError(
                f"{path}: tensor {name} is {tensors.get(name, 'missing')} after the batch axis, "
                f"not the card's {shape}; re-export the bundle"
            )
