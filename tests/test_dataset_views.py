"""Datasets holding several views: one float16 file per view, every file under the sidecar's checksums."""

import json

import numpy as np
import pytest

from lwmspectro import views
from lwmspectro.dataset import open_dataset, shard_is_complete, view_path, write_manifest, write_shard
from lwmspectro.spectrogram import DEFAULT_PARAMS

STORED = {"wideband": DEFAULT_PARAMS, "cp_profile": views.VIEWS["cp_profile"]}


def rows(n, start=0):
    return [{"protocol": "nr", "index": start + i} for i in range(n)]


def write_views_dataset(folder, counts=(3, 2)):
    rng = np.random.default_rng(0)
    g, cp = [], []
    for index, count in enumerate(counts):
        g.append(rng.standard_normal((count, *DEFAULT_PARAMS.shape)).astype(np.float32))
        cp.append(rng.uniform(0, 1, (count, *views.view_shape(STORED["cp_profile"]))).astype(np.float32))
        write_shard(folder, index, g[-1], rows(count, sum(counts[:index])), {"cp_profile": cp[-1]})
    write_manifest(folder, DEFAULT_PARAMS, {"seed": 0}, len(counts), STORED)
    return np.concatenate(g), np.concatenate(cp)


def test_each_view_is_read_back_by_name_and_g_as_before(tmp_path):
    g, cp = write_views_dataset(tmp_path)
    assert (tmp_path / "shard-000001.cp_profile.npy").exists()
    ds = open_dataset(tmp_path, verify=True)
    assert list(ds.views) == ["wideband", "cp_profile"] and ds.views["cp_profile"] == STORED["cp_profile"]
    spectrogram, row = ds[4]
    np.testing.assert_allclose(spectrogram, g[4], atol=2e-3)
    assert row["index"] == 4
    example = ds.views_of(3)
    assert set(example) == {"wideband", "cp_profile"} and example["cp_profile"].dtype == np.float32
    np.testing.assert_allclose(example["cp_profile"], cp[3], atol=1e-3)
    assert set(ds.views_of(3, ["cp_profile"])) == {"cp_profile"}
    np.testing.assert_allclose(ds.view("cp_profile", [0, 4]), cp[[0, 4]], atol=1e-3)
    assert ds.view("cp_profile", []).shape == (0, *views.view_shape(STORED["cp_profile"]))
    assert ds.spectrograms().shape == (5, *DEFAULT_PARAMS.shape)
    with pytest.raises(KeyError, match="holds no view 'dynamics'; it holds wideband, cp_profile"):
        ds.view("dynamics")


def test_the_sidecar_covers_every_view_and_the_resume_check_wants_them_all(tmp_path):
    write_views_dataset(tmp_path)
    sidecar = json.loads((tmp_path / "shard-000000.json").read_text())
    assert set(sidecar["sha256_views"]) == {"cp_profile"}
    assert shard_is_complete(tmp_path, 0, views=["cp_profile"])
    assert not shard_is_complete(tmp_path, 0), "a shard with views a G-only config does not ask for"
    assert not shard_is_complete(tmp_path, 0, views=["cp_profile", "dynamics"]), "a view the config asks for is missing"
    view_path(tmp_path, 1, "cp_profile").write_bytes(b"garbage")
    assert not shard_is_complete(tmp_path, 1, views=["cp_profile"])
    assert shard_is_complete(tmp_path, 1, verify=False, views=["cp_profile"])
    with pytest.raises(ValueError, match="checksum mismatch"):
        open_dataset(tmp_path, verify=True)


def test_a_dataset_of_g_alone_keeps_its_files_and_keys(tmp_path):
    write_shard(tmp_path, 0, np.zeros((2, *DEFAULT_PARAMS.shape)), rows(2))
    manifest = write_manifest(tmp_path, DEFAULT_PARAMS, {}, 1)
    sidecar = json.loads((tmp_path / "shard-000000.json").read_text())
    assert set(sidecar) == {"index", "count", "sha256_npy", "sha256_jsonl"}
    assert "views" not in manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "manifest.json",
        "shard-000000.json",
        "shard-000000.jsonl",
        "shard-000000.npy",
    ]
    ds = open_dataset(tmp_path, verify=True)
    assert list(ds.views) == ["wideband"] and ds.views_of(1)["wideband"].shape == DEFAULT_PARAMS.shape


def test_a_view_whose_count_or_name_is_wrong_is_refused(tmp_path):
    with pytest.raises(ValueError, match="1 examples of view 'cp_profile' but 2 label rows"):
        write_shard(tmp_path, 0, np.zeros((2, 4, 4)), rows(2), {"cp_profile": np.zeros((1, 4, 4))})
    with pytest.raises(ValueError, match="G is passed as `spectrograms`"):
        write_shard(tmp_path, 0, np.zeros((2, 4, 4)), rows(2), {"wideband": np.zeros((2, 4, 4))})
    with pytest.raises(ValueError, match="it names a file"):
        write_shard(tmp_path, 0, np.zeros((2, 4, 4)), rows(2), {"../x": np.zeros((2, 4, 4))})


def test_a_manifest_whose_views_are_not_valid_is_refused_naming_them(tmp_path):
    write_views_dataset(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["views"]["cp_profile"]["params"]["n_bins"] = 0
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"views\.cp_profile\.params"):
        open_dataset(tmp_path)
    del manifest["views"]["wideband"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="'wideband' among them"):
        open_dataset(tmp_path)


def test_the_training_set_reads_g_as_before_and_the_views_it_is_asked_for(tmp_path):
    torch = pytest.importorskip("torch")
    from lwmspectro_train.data import SpectrogramSet

    _, cp = write_views_dataset(tmp_path)
    plain = SpectrogramSet(tmp_path)
    assert set(plain[0]) == {"spectrogram", "protocol", "modulation", "snr_mobility"}
    with_views = SpectrogramSet(tmp_path, views=["cp_profile"]).subset([3, 4])
    item = with_views[0]
    assert set(item["views"]) == {"cp_profile"}
    np.testing.assert_allclose(item["views"]["cp_profile"].numpy(), cp[3], atol=1e-3)
    batch = torch.utils.data.default_collate([with_views[0], with_views[1]])
    assert batch["views"]["cp_profile"].shape == (2, *views.view_shape(STORED["cp_profile"]))
    with pytest.raises(ValueError, match="stores no view 'dynamics'; it stores wideband, cp_profile"):
        SpectrogramSet(tmp_path, views=["dynamics"])
