"""Labelled I/Q recordings in SigMF: cf32_le data, labels under the `lwm:` namespace."""

from __future__ import annotations

import json
import logging
import math
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sigmf
from sigmf import SigMFFile
from sigmf.error import SigMFError
from sigmf.sigmffile import dtype_info

from . import __version__

NAMESPACE = "lwm"
SUPPORTED_DATATYPES = ("cf32_le", "ci16_le", "ci8", "ci8_le", "cf64_le")

logger = logging.getLogger(__name__)


@dataclass
class Recording:
    iq: np.ndarray
    sample_rate_hz: float
    frequency_hz: float
    labels: dict = field(default_factory=dict)
    annotations: list = field(default_factory=list)
    path: Path | None = None


class RecordingError(ValueError):
    """A SigMF recording that cannot be read; the message names the file, the field or value, and the fix."""


def _base(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.suffix in (".sigmf-meta", ".sigmf-data"):
        path = path.with_suffix("")
    return path


def check_readable_file(path: Path, what: str) -> None:
    """Raise RecordingError, naming `path` and the fix, unless it is a regular file this user can read.

    Checked before anything opens it: opening a FIFO would block, and a directory or a
    dangling name would otherwise read as an empty recording."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file; give the path of an existing {what}") from None
    except OSError as err:
        raise RecordingError(
            f"{path}: cannot be reached ({err.strerror}); fix the path or its symbolic links"
        ) from None
    if stat.S_ISDIR(mode):
        raise RecordingError(f"{path}: is a directory, not a {what}; give the path of the file itself")
    if not stat.S_ISREG(mode):
        raise RecordingError(
            f"{path}: not a regular file (a FIFO, socket or device); copy the {what} into a file and give its path"
        )
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise RecordingError(
            f"{path}: Permission denied; give this user read permission (chmod u+r) or copy the {what}"
        ) from None
    except OSError as err:
        raise RecordingError(f"{path}: cannot be opened ({err.strerror}); check the file and its permissions") from None


def _number(meta_path: Path, key: str, value: object) -> float:
    """`value` as a float, or a RecordingError naming `key` (JSON booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordingError(f"{meta_path}: {key} {value!r} is not a number; write it as a JSON number")
    return float(value)


def load_metadata(meta_path: Path) -> dict:
    """The metadata document, checked for what reading the samples relies on."""
    check_readable_file(meta_path, "SigMF metadata file (.sigmf-meta)")
    try:
        doc = json.loads(meta_path.read_bytes())
    except (ValueError, UnicodeDecodeError) as err:
        raise RecordingError(f"{meta_path}: not valid JSON ({err}); fix or regenerate the metadata file") from None
    if not isinstance(doc, dict):
        raise RecordingError(
            f"{meta_path}: a SigMF metadata file holds a JSON object, this one holds a {type(doc).__name__}; "
            'write {"global": {...}, "captures": [...], "annotations": [...]}'
        )
    info = doc.get("global")
    if not isinstance(info, dict):
        missing = "lacks" if info is None else "has a non-object"
        raise RecordingError(
            f"{meta_path}: {missing} 'global'; a SigMF metadata file needs a 'global' object "
            "with core:datatype and core:sample_rate"
        )
    datatype = info.get("core:datatype")
    if datatype is None:
        raise RecordingError(
            f"{meta_path}: core:datatype is missing from 'global'; add the samples' type, one of "
            f"{', '.join(SUPPORTED_DATATYPES)}"
        )
    if datatype not in SUPPORTED_DATATYPES:
        raise RecordingError(
            f"{meta_path}: core:datatype {datatype!r} is not supported; supported: "
            f"{', '.join(SUPPORTED_DATATYPES)} (convert the recording to one of them)"
        )
    if "core:sample_rate" not in info:
        raise RecordingError(f"{meta_path}: core:sample_rate is missing from 'global'; add the rate in Hz")
    rate = _number(meta_path, "core:sample_rate", info["core:sample_rate"])
    if not 0 < rate < math.inf:
        raise RecordingError(
            f"{meta_path}: core:sample_rate {rate:g} Hz is not a positive finite rate; "
            "write the rate the samples were recorded at, in Hz"
        )
    trailing = info.get("core:trailing_bytes", 0)
    if isinstance(trailing, bool) or not isinstance(trailing, int) or trailing < 0:
        raise RecordingError(f"{meta_path}: core:trailing_bytes {trailing!r} is not a byte count; fix or remove it")
    channels = info.get("core:num_channels", 1)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise RecordingError(
            f"{meta_path}: core:num_channels {channels!r} is not a positive integer; "
            "write the number of interleaved channels"
        )
    if channels != 1:
        raise RecordingError(
            f"{meta_path}: core:num_channels {channels}: only recordings of one channel are read; "
            "write each channel into a recording of its own"
        )
    captures = doc.get("captures", [])
    if not isinstance(captures, list):
        raise RecordingError(f"{meta_path}: 'captures' must be a list of objects, got a {type(captures).__name__}")
    for index, capture in enumerate(captures):
        if not isinstance(capture, dict):
            raise RecordingError(
                f"{meta_path}: captures[{index}] is {capture!r}, not an object; each capture is an object "
                'such as {"core:sample_start": 0}'
            )
        for key in ("core:sample_start", "core:header_bytes"):
            if key in capture and (isinstance(capture[key], bool) or not isinstance(capture[key], int)):
                raise RecordingError(f"{meta_path}: captures[{index}] {key} {capture[key]!r} is not an integer")
        if "core:frequency" in capture:
            _number(meta_path, f"captures[{index}] core:frequency", capture["core:frequency"])
    annotations = doc.get("annotations", [])
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
        raise RecordingError(f"{meta_path}: 'annotations' must be a list of objects")
    return doc


def write_recording(
    path,
    iq: np.ndarray,
    sample_rate_hz: float,
    frequency_hz: float,
    labels: dict | None = None,
    description: str = "",
    overwrite: bool = False,
) -> Path:
    """Write `path`.sigmf-data (cf32_le) and `path`.sigmf-meta; returns the meta path.

    An existing recording is never replaced unless `overwrite` is set."""
    base = _base(path)
    if not overwrite and base.with_suffix(".sigmf-meta").exists():
        raise FileExistsError(f"{base.with_suffix('.sigmf-meta')} exists; pass overwrite to replace it")
    base.parent.mkdir(parents=True, exist_ok=True)
    data_path = base.with_suffix(".sigmf-data")
    np.asarray(iq, np.complex64).tofile(data_path)
    global_info = {
        "core:datatype": "cf32_le",
        "core:sample_rate": float(sample_rate_hz),
        "core:version": sigmf.__specification__,
        "core:recorder": f"lwmspectro {__version__}",
        "core:license": "https://spdx.org/licenses/CC0-1.0",
        "core:description": description or "LWM-Spectro synthetic labelled recording",
        "core:extensions": [{"name": NAMESPACE, "version": "1.0.0", "optional": True}],
    }
    for key, value in (labels or {}).items():
        global_info[f"{NAMESPACE}:{key}"] = value
    meta = SigMFFile(data_file=data_path, global_info=global_info)
    meta.add_capture(0, metadata={"core:frequency": float(frequency_hz)})
    meta_path = base.with_suffix(".sigmf-meta")
    meta.tofile(meta_path, overwrite=True)
    return meta_path


def _data_path(meta_path: Path, dataset: object, base: Path) -> Path:
    """The data file of a recording: core:dataset, a file name beside the metadata file (never a
    path elsewhere, which a recording from someone else could point at any file), or the
    .sigmf-data of the same base name."""
    if dataset is None:
        return base.with_suffix(".sigmf-data")
    if not isinstance(dataset, str) or not dataset or Path(dataset).name != dataset or dataset in (".", ".."):
        raise RecordingError(
            f"{meta_path}: core:dataset {dataset!r} is not the name of a file beside the metadata file; "
            "give the data file's name alone (and keep it in the same folder), or remove core:dataset"
        )
    return meta_path.parent / dataset


class SigMFReader:
    """A checked SigMF recording, its samples read on demand (so a long one never has to fit in memory).

    Every field reading the samples relies on is checked on opening, and the data file must be a
    readable regular file: whatever is wrong raises RecordingError naming the file, field or value."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if Path(path).is_dir() and Path(path).suffix not in (".sigmf-meta", ".sigmf-data"):
            raise RecordingError(
                f"{path}: a folder, not a SigMF recording; give a recording's .sigmf-meta "
                "(`lwmspectro score` reads every recording in a folder)"
            )
        base = _base(path)
        self.path = base.with_suffix(".sigmf-meta")
        doc = load_metadata(self.path)
        self.data_path = _data_path(self.path, doc["global"].get("core:dataset"), base)
        check_readable_file(self.data_path, "SigMF data file (.sigmf-data)")
        self.sample_rate_hz = float(doc["global"]["core:sample_rate"])
        captures = doc.get("captures", [])
        self.frequency_hz = float(captures[0].get("core:frequency", 0.0)) if captures else 0.0
        self.labels = {k.split(":", 1)[1]: v for k, v in doc["global"].items() if k.startswith(NAMESPACE + ":")}
        self.annotations = list(doc.get("annotations", []))
        self.captures: list[dict] = list(captures)
        partial = self._partial_sample_bytes(doc)
        if partial:
            # The bytes of the sample cut short are left out as trailing bytes, which numpy's
            # memory map (inside sigmf) would otherwise fail to split into samples.
            doc = {
                **doc,
                "global": {
                    **doc["global"],
                    "core:trailing_bytes": doc["global"].get("core:trailing_bytes", 0) + partial,
                },
            }
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self._file = SigMFFile(metadata=doc, data_file=self.data_path, skip_checksum=True, autoscale=True)
            except (SigMFError, ValueError, TypeError, KeyError) as err:
                raise RecordingError(f"{self.path}: not a SigMF recording that can be read ({err})") from None
        for warning in caught:
            if "integer number of samples" not in str(warning.message):
                logger.warning("%s: %s", self.path, warning.message)
        self.sample_count = int(self._file.sample_count)

    def _partial_sample_bytes(self, doc: dict) -> int:
        """The bytes after the last whole sample of the data file, logged when there are any (a
        recording cut short): the whole samples are read."""
        skipped = sum(c.get("core:header_bytes", 0) for c in doc.get("captures", []))
        skipped += (
            doc["global"].get("core:trailing_bytes", 0)
            if isinstance(doc["global"].get("core:trailing_bytes"), int)
            else 0
        )
        datatype = doc["global"]["core:datatype"]
        sample_bytes = dtype_info(datatype)["sample_size"]
        extra = (self.data_path.stat().st_size - skipped) % sample_bytes
        if extra:
            logger.warning(
                "%s: ends %d bytes into a %d-byte %s sample (a recording cut short?); those bytes are ignored",
                self.data_path,
                extra,
                sample_bytes,
                datatype,
            )
        return extra

    def __len__(self) -> int:
        return self.sample_count

    def read(self, start: int = 0, count: int = -1) -> np.ndarray:
        """complex64 samples start .. start + count - 1 (count < 0: to the end)."""
        if count < 0:
            count = self.sample_count - start
        if count <= 0:
            return np.zeros(0, np.complex64)
        return np.asarray(self._file.read_samples(start_index=start, count=count), np.complex64)

    def __getitem__(self, window: slice) -> np.ndarray:
        start, stop, step = window.indices(self.sample_count)
        if step != 1:
            raise ValueError("recording slices must be contiguous")
        return self.read(start, max(0, stop - start))


def read_recording(path: str | os.PathLike[str], start: int = 0, count: int = -1) -> Recording:
    """Read a SigMF recording as complex64, whatever its supported datatype (see SigMFReader)."""
    reader = SigMFReader(path)
    return Recording(
        reader.read(start, count),
        reader.sample_rate_hz,
        reader.frequency_hz,
        reader.labels,
        reader.annotations,
        reader.path,
    )
