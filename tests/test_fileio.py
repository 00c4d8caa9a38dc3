"""The one atomic file write: all or nothing, permissions kept."""

import os

import pytest

from lwmspectro.fileio import atomic_write


def test_text_bytes_and_writers_replace_the_file_whole(tmp_path):
    path = tmp_path / "out.json"
    atomic_write(path, "first\n")
    assert path.read_text() == "first\n"
    atomic_write(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    atomic_write(path, lambda f: f.write(b"written by a function"))
    assert path.read_bytes() == b"written by a function"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "meta"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic_write(path, "new")
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "card.json"
    path.write_text("old")

    def failing(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, failing)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]
