"""Labelled examples and dataset generation: determinism, SNR, resume, bad input."""

import dataclasses
import json
import multiprocessing
import subprocess
import sys

import numpy as np
import pytest
import threadpoolctl

from lwmspectro import views
from lwmspectro.dataset import open_dataset
from lwmspectro.dataset_generation import generate_dataset, one_thread_per_worker, pending_shards
from lwmspectro.labels import mobility_of_doppler
from lwmspectro.spectrogram import DEFAULT_PARAMS
from lwmspectro.synth import ExampleSpec, GeneratorConfig, SyntheticStream, make_spectrogram, make_stream

SMALL = dict(n_samples=6, shard_size=2, channel="TDL-B", seed=3)


def lte(snr=10.0, **kw):
    base = ExampleSpec("lte", snr, "pedestrian", 5.0, 2.14e9, 11, 10e6, "16QAM", "1/2", channel="TDL-A")
    return dataclasses.replace(base, **kw)


def test_same_seed_same_bytes_and_other_seed_differs():
    a, row_a = make_spectrogram(lte())
    b, row_b = make_spectrogram(lte())
    c, _ = make_spectrogram(lte(seed=12))
    assert a.tobytes() == b.tobytes() and row_a == row_b
    assert not np.array_equal(a, c)


def test_labels_record_what_was_drawn():
    _, row = make_spectrogram(lte(mobility="vehicular", speed_kmh=72.0))
    assert row["protocol"] == "lte" and row["modulation"] == "16QAM" and row["snr_db"] == 10.0
    assert row["doppler_hz"] == pytest.approx(72 / 3.6 * 2.14e9 / 299792458.0, rel=1e-6)
    assert row["coding"] in ("turbo", "bcc", "ldpc", "none")
    assert row["phy"]["crs_ports"] in (1, 2, 4)


@pytest.mark.parametrize("snr_db", [0.0, 15.0])
def test_measured_snr_in_occupied_band_matches_label(snr_db):
    """Same seed, same signal: the difference from a 90 dB copy is the noise alone."""
    spec = lte(snr=snr_db, mobility="static", speed_kmh=0.0)
    noisy, row = make_stream(spec, n_samples=200_000)
    clean, _ = make_stream(dataclasses.replace(spec, snr_db=60.0), n_samples=200_000)
    noise = noisy - clean
    occupied = row["occupied_bw_hz"]
    noise_in_band = np.mean(np.abs(noise) ** 2) * occupied / DEFAULT_PARAMS.sample_rate_hz
    measured = 10 * np.log10(np.mean(np.abs(clean) ** 2) / noise_in_band)
    assert measured == pytest.approx(snr_db, abs=0.5)


def test_noise_only_example_has_no_task_labels():
    spec = ExampleSpec("none", None, None, None, 1e9, 5)
    S, row = make_spectrogram(spec)
    assert S.shape == DEFAULT_PARAMS.shape
    assert row["modulation"] is None and row["snr_db"] is None and row["mobility"] is None


def test_bad_input_lists_valid_choices():
    with pytest.raises(ValueError, match="valid choices: wifi, lte, nr, none, other"):
        ExampleSpec("bluetooth", 10.0, "static", 0.0, 1e9, 0)
    with pytest.raises(ValueError, match="valid choices: QPSK, 16QAM, 64QAM, 256QAM"):
        lte(modulation="BPSK")
    with pytest.raises(ValueError, match="out of range"):
        lte(snr=99.0)
    with pytest.raises(ValueError, match="max_band_hz applies to 'other' signals"):
        lte(max_band_hz=2e6)
    with pytest.raises(ValueError, match="valid choices: static, pedestrian, vehicular"):
        SyntheticStream(mobility="flying")


def test_dataset_is_byte_identical_for_the_same_seed(tmp_path):
    config = GeneratorConfig(**SMALL)
    generate_dataset(config, tmp_path / "a", progress=False)
    generate_dataset(config, tmp_path / "b", progress=False)
    for name in ("shard-000000.npy", "shard-000002.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    ds = open_dataset(tmp_path / "a", verify=True)
    assert len(ds) == 6 and ds.manifest["config"] == config.to_dict()
    assert [row["index"] for row in ds.labels] == list(range(6))


def test_worker_processes_make_the_same_bytes_with_one_blas_thread_each(tmp_path):
    config = GeneratorConfig(**SMALL)
    generate_dataset(config, tmp_path / "serial", progress=False)
    generate_dataset(config, tmp_path / "pool", workers=2, progress=False)
    for name in ("shard-000000.npy", "shard-000002.jsonl"):
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "pool" / name).read_bytes()
    with threadpoolctl.threadpool_limits():
        one_thread_per_worker()
        pools = threadpoolctl.threadpool_info()
        assert pools and all(pool["num_threads"] == 1 for pool in pools)


def test_split_across_machines_covers_every_shard_once(tmp_path):
    config = GeneratorConfig(**SMALL)
    generate_dataset(config, tmp_path, shard_filter=(0, 2), progress=False)
    assert pending_shards(config, tmp_path) == [1]
    manifest = generate_dataset(config, tmp_path, shard_filter=(1, 2), progress=False)
    assert manifest["complete"] and manifest["count"] == 6


def _generate_forever(config_dict, folder):
    generate_dataset(GeneratorConfig(**config_dict), folder, progress=False)


def test_resume_after_a_kill_leaves_no_corrupt_or_duplicate_shard(tmp_path):
    config = GeneratorConfig(**{**SMALL, "n_samples": 40, "shard_size": 2})
    proc = multiprocessing.get_context("spawn").Process(
        target=_generate_forever, args=(config.to_dict(), str(tmp_path))
    )
    proc.start()
    deadline = 240  # half-seconds: a loaded machine takes long to start the writer
    while deadline and not (tmp_path / "shard-000001.json").exists():
        proc.join(0.5)
        deadline -= 1
    proc.kill()
    proc.join()
    done_before = set(range(config.n_shards)) - set(pending_shards(config, tmp_path))
    assert done_before, "the writer made no shard before it was killed"
    manifest = generate_dataset(config, tmp_path, progress=False)
    assert manifest["complete"] and manifest["count"] == 40
    ds = open_dataset(tmp_path, verify=True)
    assert sorted(row["index"] for row in ds.labels) == list(range(40))


def test_generating_into_a_folder_of_another_config_is_refused(tmp_path):
    generate_dataset(GeneratorConfig(**SMALL), tmp_path, progress=False)
    with pytest.raises(ValueError, match="another config"):
        generate_dataset(GeneratorConfig(**{**SMALL, "seed": 4}), tmp_path, progress=False)


def test_a_dataset_grows_in_place_keeping_its_shards_and_remaking_a_short_last_one(tmp_path):
    generate_dataset(GeneratorConfig(**{**SMALL, "n_samples": 5}), tmp_path, progress=False)
    kept = {i: (tmp_path / f"shard-{i:06d}.json").stat().st_mtime_ns for i in (0, 1)}
    manifest = generate_dataset(GeneratorConfig(**{**SMALL, "n_samples": 8}), tmp_path, progress=False)
    assert manifest["complete"] and manifest["count"] == 8
    assert {i: (tmp_path / f"shard-{i:06d}.json").stat().st_mtime_ns for i in (0, 1)} == kept
    grown = open_dataset(tmp_path, verify=True)
    fresh = tmp_path / "fresh"
    generate_dataset(GeneratorConfig(**{**SMALL, "n_samples": 8}), fresh, progress=False)
    made_at_once = open_dataset(fresh, verify=True)
    assert [row["index"] for row in grown.labels] == list(range(8))
    assert all(np.array_equal(grown[i][0], made_at_once[i][0]) for i in range(8))


def test_a_dataset_never_shrinks(tmp_path):
    generate_dataset(GeneratorConfig(**SMALL), tmp_path, progress=False)
    with pytest.raises(ValueError, match="only grows; pass --n-samples 6 or more"):
        generate_dataset(GeneratorConfig(**{**SMALL, "n_samples": 4}), tmp_path, progress=False)


def test_growing_a_dataset_whose_views_this_version_defines_otherwise_is_refused(tmp_path, monkeypatch):
    config = GeneratorConfig(**{**SMALL, "n_samples": 2, "views": ["wideband", "cp_profile"]})
    generate_dataset(config, tmp_path, progress=False)
    changed = dataclasses.replace(views.VIEWS["cp_profile"], n_bins=32)
    monkeypatch.setitem(views.VIEWS, "cp_profile", changed)
    with pytest.raises(ValueError, match="views made with other parameters"):
        generate_dataset(dataclasses.replace(config, n_samples=4), tmp_path, progress=False)


def test_synthetic_stream_cycles_protocols_and_honours_fixed_fields():
    stream = SyntheticStream(seed=1, channel="TDL-A")
    protocols = [stream.next_spec().protocol for _ in range(3)]
    assert protocols == ["wifi", "lte", "nr"]
    fixed = SyntheticStream(protocol="nr", modulation="64QAM", snr_db=5.0, mobility="vehicular", channel="TDL-A")
    spec = fixed.next_spec()
    assert (spec.protocol, spec.modulation, spec.snr_db, spec.mobility) == ("nr", "64QAM", 5.0, "vehicular")
    assert mobility_of_doppler(spec.doppler_hz) == "vehicular"
    iq, truth = fixed.next_observation()
    assert len(iq) == DEFAULT_PARAMS.window_samples and truth["protocol"] == "nr"


def test_an_emission_is_consecutive_stretches_of_one_stream_then_a_new_one_starts():
    window = DEFAULT_PARAMS.window_samples
    settings = dict(snr_db=10.0, mobility="vehicular", seed=2, emission_s=3 * DEFAULT_PARAMS.window_seconds)
    stream = SyntheticStream(**settings)
    assert stream.emission_observations == 3
    observations = [stream.next_observation() for _ in range(4)]
    reference = SyntheticStream(**settings)
    first = reference.next_spec()
    whole, truth = reference.emission(first).realise([(0, 3 * window)], measured=reference.measured)
    level = observations[0][1]["level_db"]
    np.testing.assert_array_equal(
        np.concatenate([iq for iq, _ in observations[:3]]), whole * np.float32(10 ** (level / 20))
    )
    assert [t["seed"] for _, t in observations[:3]] == [first.seed] * 3
    assert observations[0][1] == {**truth, "level_db": level}
    assert [t["level_db"] for _, t in observations[:3]] == [level] * 3 != [observations[3][1]["level_db"]] * 3
    assert observations[3][1]["seed"] == reference.next_spec().seed != first.seed
    assert (observations[0][1]["protocol"], observations[3][1]["protocol"]) == ("wifi", "lte")


def test_an_emission_of_one_observation_or_less_is_a_new_example_per_observation():
    stream = SyntheticStream(protocol="none", seed=1, emission_s=DEFAULT_PARAMS.window_seconds)
    assert stream.emission_observations == 1
    assert stream.next_observation()[1]["seed"] != stream.next_observation()[1]["seed"]
    for bad in (0, -1.0, 11.0, True, "1"):
        with pytest.raises(ValueError, match="emission length"):
            SyntheticStream(emission_s=bad)


def test_cli_generate_and_iq_write_their_outputs(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps(SMALL))
    cli = [sys.executable, "-m", "lwmspectro.cli"]
    subprocess.run(
        cli + ["generate", "--config", str(config), "--out", str(tmp_path / "ds"), "--no-progress"],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    assert open_dataset(tmp_path / "ds").manifest["complete"]
    out = subprocess.run(
        cli
        + [
            "iq",
            "--protocol",
            "wifi",
            "--modulation",
            "256QAM",
            "--snr",
            "5",
            "--channel",
            "TDL-D",
            "--out",
            str(tmp_path / "rec"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    meta = json.loads((tmp_path / "rec.sigmf-meta").read_text())
    assert meta["global"]["lwm:modulation"] == "256QAM" and "rec.sigmf-meta" in out.stdout
    bad = subprocess.run(
        cli + ["iq", "--protocol", "lte", "--modulation", "BPSK", "--channel", "TDL-A", "--out", str(tmp_path / "bad")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "valid choices" in bad.stderr


@pytest.mark.parametrize(
    "values, error",
    [
        ({"n_samples": 1e15}, r"c\.json: n_samples: 1e\+15 is out of range; valid: 1 to 10000000"),
        ({"n_samples": "1000"}, r"c\.json: n_samples: '1000' is not an integer"),
        ({"scenario_folder": 3}, r"c\.json: scenario_folder: 3 is not a string or null"),
        ({"scenarios": 3}, r"c\.json: scenarios: 3 is not a list or a string"),
        ({"classes": {"lte": -1}}, r"c\.json: classes\.lte: -1 is not a class weight"),
        ({"mobility": []}, r"c\.json: mobility and snr_db must each list at least one value"),
    ],
)
def test_a_config_value_of_the_wrong_type_or_out_of_bounds_is_named_before_anything_runs(values, error):
    with pytest.raises(ValueError, match=error):
        GeneratorConfig.from_dict(values, "c.json")


def test_an_integral_number_is_taken_as_an_integer():
    config = GeneratorConfig.from_dict({"n_samples": 1e3, "shard_size": 250.0}, "c.json")
    assert config.n_samples == 1000 and isinstance(config.n_samples, int) and config.n_shards == 4


def test_a_corrupt_sidecar_names_the_shard_and_the_shard_is_remade_once_deleted(tmp_path):
    generate_dataset(GeneratorConfig(**SMALL), tmp_path, progress=False)
    reference = open_dataset(tmp_path).spectrograms()
    (tmp_path / "shard-000000.json").write_text('{"count": ')
    with pytest.raises(ValueError, match=r"shard-000000\.json: a corrupt shard sidecar .*delete shard-000000"):
        generate_dataset(GeneratorConfig(**SMALL), tmp_path, progress=False)
    for suffix in (".json", ".npy", ".jsonl"):
        (tmp_path / f"shard-000000{suffix}").unlink()
    assert generate_dataset(GeneratorConfig(**SMALL), tmp_path, progress=False)["complete"]
    np.testing.assert_array_equal(open_dataset(tmp_path, verify=True).spectrograms(), reference)
