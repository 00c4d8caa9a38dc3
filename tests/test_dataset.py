"""Sharded datasets: memory-mapped reads, checksums, atomic shards."""

import json

import numpy as np
import pytest

from lwmspectro.dataset import open_dataset, shard_is_complete, write_manifest, write_shard
from lwmspectro.spectrogram import DEFAULT_PARAMS


def rows(n, start=0):
    return [{"protocol": "lte", "index": start + i} for i in range(n)]


def test_write_then_read_back(tmp_path):
    data = np.random.default_rng(0).standard_normal((5, 128, 128)).astype(np.float32)
    write_shard(tmp_path, 0, data[:3], rows(3))
    write_shard(tmp_path, 1, data[3:], rows(2, 3))
    manifest = write_manifest(tmp_path, DEFAULT_PARAMS, {"seed": 1}, 2)
    assert manifest["complete"] and manifest["count"] == 5
    ds = open_dataset(tmp_path, verify=True)
    assert len(ds) == 5 and ds.params == DEFAULT_PARAMS
    spec, label = ds[4]
    np.testing.assert_allclose(spec, data[4], atol=2e-3)  # stored as float16
    assert label["index"] == 4
    assert ds.spectrograms([0, 4]).shape == (2, 128, 128)


def test_corrupt_or_unfinished_shard_is_not_complete(tmp_path):
    write_shard(tmp_path, 0, np.zeros((2, 4, 4)), rows(2))
    assert shard_is_complete(tmp_path, 0)
    (tmp_path / "shard-000000.npy").write_bytes(b"garbage")
    assert not shard_is_complete(tmp_path, 0)
    assert not shard_is_complete(tmp_path, 7)


def test_manifest_lists_only_finished_shards(tmp_path):
    write_shard(tmp_path, 1, np.zeros((2, 128, 128)), rows(2))
    manifest = write_manifest(tmp_path, DEFAULT_PARAMS, {}, 3)
    assert not manifest["complete"] and [s["index"] for s in manifest["shards"]] == [1]


def test_missing_manifest_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="lwmspectro generate"):
        open_dataset(tmp_path)


def test_label_count_mismatch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="label rows"):
        write_shard(tmp_path, 0, np.zeros((2, 4, 4)), rows(3))
    write_shard(tmp_path, 0, np.zeros((2, 128, 128)), rows(2))
    write_manifest(tmp_path, DEFAULT_PARAMS, {}, 1)
    (tmp_path / "shard-000000.jsonl").write_text(json.dumps({"protocol": "lte"}) + "\n")
    with pytest.raises(ValueError, match="label rows"):
        open_dataset(tmp_path)


def test_a_corrupt_manifest_names_the_file(tmp_path):
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match=r"manifest\.json: not valid JSON"):
        open_dataset(tmp_path)


def test_a_sidecar_that_is_not_one_is_refused_naming_it(tmp_path):
    write_shard(tmp_path, 0, np.zeros((2, 128, 128)), rows(2))
    (tmp_path / "shard-000000.json").write_text("[1, 2]")
    assert not shard_is_complete(tmp_path, 0)
    with pytest.raises(ValueError, match=r"shard-000000\.json: a corrupt shard sidecar \(no shard count\); delete"):
        write_manifest(tmp_path, DEFAULT_PARAMS, {}, 1)
