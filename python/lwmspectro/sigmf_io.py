"""Labelled I/Q recordings in SigMF: cf32_le data, labels under the `lwm:` namespace."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sigmf
from sigmf import SigMFFile
from sigmf.sigmffile import fromfile

from . import __version__

NAMESPACE = "lwm"
SUPPORTED_DATATYPES = ("cf32_le", "ci16_le", "ci8", "ci8_le", "cf64_le")


@dataclass
class Recording:
    iq: np.ndarray
    sample_rate_hz: float
    frequency_hz: float
    labels: dict = field(default_factory=dict)
    annotations: list = field(default_factory=list)
    path: Path | None = None


def _base(path) -> Path:
    path = Path(path)
    if path.suffix in (".sigmf-meta", ".sigmf-data"):
        path = path.with_suffix("")
    return path


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


def read_recording(path, start: int = 0, count: int = -1) -> Recording:
    """Read a SigMF recording as complex64, whatever its supported datatype."""
    base = _base(path)
    meta_path = base.with_suffix(".sigmf-meta")
    if not meta_path.exists():
        raise FileNotFoundError(f"no SigMF metadata at {meta_path}")
    meta = fromfile(str(meta_path), skip_checksum=True, autoscale=True)
    datatype = meta.get_global_field("core:datatype")
    if datatype not in SUPPORTED_DATATYPES:
        raise ValueError(
            f"{meta_path}: datatype {datatype!r} is not supported; supported: {', '.join(SUPPORTED_DATATYPES)}"
        )
    rate = meta.get_global_field("core:sample_rate")
    if not rate or rate <= 0:
        raise ValueError(f"{meta_path}: core:sample_rate missing or not positive")
    captures = meta.get_captures()
    frequency = float(captures[0].get("core:frequency", 0.0)) if captures else 0.0
    total = meta.sample_count
    if count < 0:
        count = total - start
    iq = meta.read_samples(start_index=start, count=count) if count > 0 else np.zeros(0)
    labels = {k.split(":", 1)[1]: v for k, v in meta.get_global_info().items() if k.startswith(NAMESPACE + ":")}
    return Recording(
        np.asarray(iq, np.complex64), float(rate), frequency, labels, list(meta.get_annotations()), meta_path
    )
