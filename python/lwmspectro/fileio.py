"""File I/O the package shares: atomic writes (a reader, a crash or a kill never sees a half-written
file) and streaming checksums."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

Content = bytes | str | Callable[[BinaryIO], object]
"""What `atomic_write` writes: bytes, text (UTF-8), or a function that writes to the open file."""


def atomic_write(path: str | os.PathLike[str], content: Content) -> Path:
    """Write `content` to a temporary file beside `path`, fsync it, then rename it over `path`.

    A file being replaced keeps its permission bits; a new one gets the process's default.
    The temporary file is removed when writing fails."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: its folder {path.parent} does not exist; create it or write elsewhere")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if isinstance(content, str):
                f.write(content.encode())
            elif isinstance(content, bytes):
                f.write(content)
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def unwritable_reason(path: str | os.PathLike[str]) -> str | None:
    """Why `atomic_write` could not write a file at `path`, or None: checked before a long
    computation whose result it is to hold, so that a mistyped path costs nothing."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a folder; name a file in it"
    if not path.parent.is_dir():
        return f"its folder {path.parent} does not exist; create it or write elsewhere"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"its folder {path.parent} is not writable; write elsewhere"
    return None


def file_sha256(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """The sha256 hex digest of the file at `path`, read in chunks so that a large file costs no memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
