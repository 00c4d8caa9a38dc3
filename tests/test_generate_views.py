"""Generating views through the capture chain: configs, the per-example draw, what a shard stores."""

import json
from importlib import resources

import numpy as np
import pytest

from lwmspectro import capture, cli, scenarios, views
from lwmspectro.dataset import open_dataset
from lwmspectro.dataset_generation import ExamplePlan, example_source, generate_dataset, make_example, pending_shards
from lwmspectro.fileio import file_sha256
from lwmspectro.framer import ObservationFramer
from lwmspectro.synth import GeneratorConfig, draw_example, draw_spec, make_spectrogram, scenario_names

SOME_VIEWS = ["wideband", "cp_profile", "ofdm_aligned_wifi"]


def views_config(**changes):
    values = dict(
        n_samples=4,
        shard_size=2,
        seed=7,
        channel="TDL-C",
        classes={"lte": 1.0},
        views=SOME_VIEWS,
        capture={"probability": 1.0, "source_rates_hz": [20e6]},
    )
    return GeneratorConfig(**{**values, **changes})


def test_a_config_without_views_or_capture_makes_g_from_its_frames_as_before():
    config = GeneratorConfig(n_samples=2, channel="TDL-B", seed=3)
    assert not {"views", "capture"} & set(config.to_dict())
    assert ExamplePlan.of(config).frames_only
    arrays, row = make_example(config, 1)
    expected, expected_row = make_spectrogram(draw_spec(config, 1), config.params)
    assert list(arrays) == ["wideband"] and arrays["wideband"].tobytes() == expected.tobytes()
    assert row == expected_row and "capture" not in row


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(views=["cp_profile"]), 'views: list "wideband"'),
        (dict(views=["wideband", "spectrum"]), "unknown views.1 'spectrum'; valid choices: wideband"),
        (dict(views=["wideband", "cp_profile", "cp_profile"]), "views.2: a second view named 'cp_profile'"),
        (dict(views=["wideband", {"name": "cp_profile", "params": {"n_bins": 0}}]), r"views\.1\.params"),
        (dict(views=[{"name": "wideband", "params": {"n_bins": 64}}]), "set its parameters in `spectrogram`"),
        (dict(channel="TDL-F"), "unknown channel 'TDL-F'; valid choices: site, TDL-A"),
        (dict(channel={"site": 1.0, "TDL-Z": 1.0}), "unknown channel 'TDL-Z'"),
        (dict(channel={"TDL-A": -1}), r"channel\.TDL-A: -1 is not a channel weight"),
        (dict(channel={}), "needs a positive weight for at least one channel"),
        (dict(channel=["TDL-A"]), "neither a channel name nor an object of channel weights"),
        (dict(capture={"probability": 2}), r"capture.probability: 2 is out of range"),
        (dict(capture={"source_rates_hz": [20]}), "20 is not a sample rate the receiver takes"),
        (dict(capture={"source_rates_hz": []}), "list at least one sample rate"),
        (dict(capture={"rates": [20e6]}), r"unknown capture keys \['rates'\]"),
    ],
)
def test_a_config_refuses_what_it_cannot_make_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        GeneratorConfig.from_dict({"n_samples": 4, **changes}, "config.json")


def test_a_weighted_channel_is_drawn_per_example_in_proportion():
    config = GeneratorConfig(channel={"TDL-A": 3.0, "TDL-C": 1.0}, classes={"nr": 1.0}, seed=2)
    drawn = [draw_example(config, index).channel for index in range(400)]
    assert set(drawn) == {"TDL-A", "TDL-C"}
    assert drawn.count("TDL-A") / len(drawn) == pytest.approx(0.75, abs=0.07)
    one = GeneratorConfig(channel="TDL-D", seed=2)
    assert draw_example(one, 5) == draw_spec(one, 5)


def test_each_view_is_computed_from_the_capture_its_labels_describe():
    config = views_config()
    plan = ExamplePlan.of(config)
    arrays, row = make_example(config, 1, plan, whole_stream=True)
    settings = capture.CaptureSettings(**row["capture"])
    assert settings.source_rate_hz == 20e6 and row["channel"] == "TDL-C"
    captured, source_rate, start, _ = example_source(config, 1, plan, whole_stream=True)
    assert source_rate == 20e6 and start == 0
    assert list(arrays) == SOME_VIEWS
    framed = ObservationFramer(list(config.view_params().values()), 20e6, parallel=False).transform(captured, 0, [0])
    assert framed.invalid_reasons == (None,)
    for (name, array), live in zip(arrays.items(), framed.views):
        assert array.tobytes() == live[0].tobytes(), name


def test_an_example_that_draws_no_capture_is_viewed_at_the_analysis_rate_as_the_framer_views_it():
    config = views_config(capture={"probability": 0.0}, views=["wideband", "dynamics"])
    plan = ExamplePlan.of(config)
    assert not plan.frames_only and plan.lead == 0
    arrays, row = make_example(config, 0, plan, whole_stream=True)
    assert row["capture"] is None
    iq, rate, _, _ = example_source(config, 0, plan, whole_stream=True)
    chosen = list(config.view_params().values())
    start = -min(views.view_offsets(chosen, rate))
    framer = ObservationFramer(chosen, rate, parallel=False)
    assert start > 0 and plan.samples == framer.end_needed(start), "the observation ends the dynamics' 128 ms"
    assert views.aligned_offsets(chosen, rate, start) == views.view_offsets(chosen, rate), "which starts the stream"
    framed = framer.transform(iq, 0, [start])
    assert framed.invalid_reasons == (None,)
    for (name, array), live in zip(arrays.items(), framed.views):
        assert array.tobytes() == live[0].tobytes(), name


def test_other_signals_are_drawn_to_fit_the_passband_of_the_capture_they_go_through():
    config = GeneratorConfig(
        n_samples=48,
        seed=5,
        channel="TDL-A",
        classes={"other": 1.0},
        views=["wideband"],
        capture={"probability": 1.0, "source_rates_hz": [2e6, 2.4e6, 3.2e6]},
    )
    plan = ExamplePlan.of(config)
    shares = []
    for index in range(config.n_samples):
        _, _, _, row = example_source(config, index, plan)
        settings = capture.CaptureSettings(**row["capture"])
        centre = row["phy"]["offset_hz"] + settings.offset_hz
        assert abs(centre) + row["occupied_bw_hz"] / 2 <= settings.passband_edge_hz * (1 + 1e-12), index
        shares.append(row["occupied_bw_hz"] / settings.passband_hz)
    assert min(shares) < 0.05 and max(shares) > 0.85


def test_a_views_dataset_stores_every_view_and_regenerates_a_lost_one(tmp_path):
    config = views_config(capture={"probability": 0.5, "source_rates_hz": [20e6, 30.72e6]}, n_samples=3)
    manifest = generate_dataset(config, tmp_path, progress=False)
    assert manifest["complete"] and manifest["config"] == config.to_dict()
    assert manifest["views"] == {name: views.view_to_dict(p) for name, p in config.view_params().items()}
    ds = open_dataset(tmp_path, verify=True)
    assert len(ds) == 3 and list(ds.views) == SOME_VIEWS
    assert {name: array.shape for name, array in ds.views_of(2).items()} == {
        name: views.view_shape(p) for name, p in config.view_params().items()
    }
    assert all(row["capture"] is None or row["capture"]["source_rate_hz"] in (20e6, 30.72e6) for row in ds.labels)
    lost = tmp_path / "shard-000001.cp_profile.npy"
    before = lost.read_bytes()
    lost.unlink()
    assert pending_shards(config, tmp_path) == [1]
    generate_dataset(config, tmp_path, progress=False)
    assert lost.read_bytes() == before


def test_an_interrupted_run_leaves_a_manifest_of_the_shards_it_made(tmp_path, monkeypatch):
    """The manifest is rewritten as each shard lands: the shards made before a run stops can be
    read (and trained on) at once, and the run resumes with the rest."""
    import lwmspectro.dataset_generation as generation

    made = generation._make_shard_job

    def stops_at_the_second(job):
        if job[1] == 1:
            raise KeyboardInterrupt
        return made(job)

    monkeypatch.setattr(generation, "_make_shard_job", stops_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(views_config(), tmp_path, progress=False)
    ds = open_dataset(tmp_path, verify=True)
    assert len(ds) == 2 and not ds.manifest["complete"]
    monkeypatch.setattr(generation, "_make_shard_job", made)
    assert generate_dataset(views_config(), tmp_path, progress=False)["count"] == 4


def test_a_dataset_gains_a_view_in_its_new_shards_and_reads_it_as_absent_in_the_old_ones(tmp_path):
    made = generate_dataset(views_config(n_samples=2), tmp_path, progress=False)
    grown = views_config(n_samples=4, views=[*SOME_VIEWS, "ofdm_circularity_wifi"])
    manifest = generate_dataset(grown, tmp_path, progress=False)
    assert manifest["complete"] and manifest["added_views"] == ["ofdm_circularity_wifi"]
    assert manifest["shards"][0] == made["shards"][0], "the shard made before is kept as it was"
    ds = open_dataset(tmp_path, verify=True)
    assert ds.partial_views == ("ofdm_circularity_wifi",)
    circularity = ds.view("ofdm_circularity_wifi")
    assert np.isnan(circularity[:2]).all() and np.isfinite(circularity[2:]).all()
    assert pending_shards(grown, tmp_path, added=["ofdm_circularity_wifi"]) == []
    assert pending_shards(grown, tmp_path) == [0], "without added_views the old shard would be remade"
    drawn = [{key: row[key] for key in ("protocol", "modulation", "snr_db", "mobility")} for row in ds.labels]
    filled = generate_dataset(grown, tmp_path, progress=False, fill_views=True)
    ds = open_dataset(tmp_path, verify=True)
    assert ds.partial_views == () and filled["shards"][1] == manifest["shards"][1], "only the old shard is filled"
    old, now = made["shards"][0], filled["shards"][0]
    assert {key: now[key] for key in ("sha256_npy", "sha256_jsonl")} == {
        key: old[key] for key in ("sha256_npy", "sha256_jsonl")
    }
    assert {name: now["sha256_views"][name] for name in old["sha256_views"]} == old["sha256_views"], "its views kept"
    assert [{key: row[key] for key in drawn[0]} for row in ds.labels] == drawn, "the same examples drawn"
    generate_dataset(grown, tmp_path / "whole", progress=False)
    whole = open_dataset(tmp_path / "whole")
    added, made_whole = ds.view("ofdm_circularity_wifi")[:2], whole.view("ofdm_circularity_wifi")[:2]
    assert np.abs(added - made_whole).max() < 0.05, "the view alone reads what it reads beside every other"


def test_filling_views_refuses_a_shard_whose_examples_the_generator_draws_otherwise(tmp_path):
    generate_dataset(views_config(n_samples=2), tmp_path, progress=False)
    rows = tmp_path / "shard-000000.jsonl"
    lines = rows.read_text().splitlines()
    rows.write_text("\n".join([lines[0].replace('"snr_db": ', '"snr_db": 1'), *lines[1:]]) + "\n")
    sidecar = tmp_path / "shard-000000.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "sha256_jsonl": file_sha256(rows)}))
    grown = views_config(n_samples=2, views=[*SOME_VIEWS, "ofdm_circularity_wifi"])
    with pytest.raises(ValueError, match="draws other labels than the shard holds"):
        generate_dataset(grown, tmp_path, progress=False, fill_views=True)


@pytest.mark.parametrize(
    "views_now, message",
    [
        (["wideband", "cp_profile"], "views this config no longer lists"),
        (
            ["wideband", {"name": "cp_profile", "params": {"n_bins": 16}}, "ofdm_aligned_wifi"],
            "other parameters than this version's defaults",
        ),
    ],
)
def test_a_dataset_refuses_a_config_that_drops_or_changes_a_view_it_holds(tmp_path, views_now, message):
    generate_dataset(views_config(n_samples=2), tmp_path, progress=False)
    with pytest.raises(ValueError, match=message):
        generate_dataset(views_config(n_samples=4, views=views_now), tmp_path, progress=False)


def packaged_config(name):
    return GeneratorConfig.from_file(resources.files("lwmspectro") / "configs" / f"{name}.json")


CIRCULARITY = "ofdm_circularity_wifi"
PILOT_TRACKED = "ofdm_constellation_wifi_pilots"
SNR_VIEWS = ("spectral_levels", "spectral_levels_spread", "cp_snr")
TRAINING_CONFIG_VIEWS = {
    "train": ["wideband", "ofdm_aligned_wifi", "ofdm_aligned_15khz", "ofdm_aligned_30khz", "cp_profile", "dynamics"],
    "train-constellation": [
        "wideband",
        "ofdm_aligned_wifi",
        "ofdm_aligned_15khz",
        "ofdm_aligned_30khz",
        "ofdm_constellation_wifi",
        "ofdm_constellation_15khz",
        "ofdm_constellation_30khz",
        "cp_profile",
        "dynamics",
        "dynamics_wifi",
        "dynamics_lte",
        "dynamics_nr",
        CIRCULARITY,
        PILOT_TRACKED,
        *SNR_VIEWS,
    ],
    "train-router": [
        "wideband",
        "cp_profile",
        "ofdm_aligned_15khz",
        "ofdm_pattern_15khz",
        "lte_sync_15khz",
        "narrowband",
        "dynamics_wifi",
    ],
}
"""The views each training corpus stores: the aligned views (views-small), every view the experts
(today's dynamics view and each protocol's sent-power view among them) and the first router of
the constellation model read (the WiFi circularity, then the pilot-tracked 802.11 constellation,
then the SNR views: added in that order), and the router's views with the 15 kHz
pattern, LTE's synchronisation signal, the narrowband view and WiFi's sent-power view."""


@pytest.mark.parametrize("name", list(TRAINING_CONFIG_VIEWS))
def test_the_training_configs_draw_every_site_and_capture_and_their_views(name):
    config = packaged_config(name)
    assert scenario_names(config.scenarios) == list(scenarios.TRAIN_SCENARIOS) and len(scenarios.TRAIN_SCENARIOS) == 5
    assert isinstance(config.channel, dict) and max(config.channel, key=config.channel.get) == "site"
    assert {"TDL-A", "TDL-B", "TDL-C", "TDL-D", "TDL-E"} <= set(config.channel)
    assert list(config.view_params()) == TRAINING_CONFIG_VIEWS[name]
    chain = config.capture_config()
    assert chain is not None and 0 < chain.probability <= 1 and chain.off_centre and chain.receiver_impairments
    assert {20e6, 30.72e6} <= set(chain.source_rates_hz)
    assert all(2e6 <= rate <= 61.44e6 for rate in chain.source_rates_hz)


@pytest.mark.parametrize("name", ["train", "train-small", "heldout", "heldout-large"])
def test_every_packaged_config_loads_and_keeps_its_keys(name):
    path = resources.files("lwmspectro") / "configs" / f"{name}.json"
    config = packaged_config(name)
    assert set(config.to_dict()) >= set(json.loads(path.read_text()))


@pytest.mark.parametrize(
    "train, heldout", [("train", "heldout-views"), ("train-constellation", "heldout-constellation")]
)
def test_each_heldout_config_is_its_training_recipe_on_the_heldout_site(train, heldout):
    """With every view its training corpora store (the constellation model's router also reads
    the pattern view of train-router)."""
    trained, scored = packaged_config(train), packaged_config(heldout)
    assert set(trained.views) <= set(scored.views) and scored.capture == trained.capture
    if heldout == "heldout-constellation":
        assert set(packaged_config("train-router").views) <= set(scored.views)
    assert scenario_names(scored.scenarios) == [scenarios.HELDOUT_SCENARIO] and scored.seed != trained.seed


def test_the_off_grid_heldout_set_draws_snrs_that_no_training_corpus_holds():
    """So that an SNR head which has learnt its corpus's grid cannot score by snapping to it."""
    offgrid, heldout = packaged_config("heldout-offgrid"), packaged_config("heldout-constellation")
    trained = {snr for name in ("train-constellation", "train-router") for snr in packaged_config(name).snr_db}
    assert not set(offgrid.snr_db) & (trained | set(heldout.snr_db))
    assert min(offgrid.snr_db) < 0 and max(offgrid.snr_db) > max(heldout.snr_db)
    same = ("classes", "mobility", "channel", "scenarios", "views", "capture", "impairment_probability")
    assert all(offgrid.to_dict()[key] == heldout.to_dict()[key] for key in same)
    assert offgrid.seed not in (heldout.seed, packaged_config("train-constellation").seed)


def test_generate_views_override_draws_the_same_examples_and_stores_the_views_asked_for(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({**views_config(n_samples=2).to_dict(), "views": ["wideband"]}))
    for out, chosen in (("g", None), ("two", "wideband, cp_profile"), ("all", "all")):
        argv = ["generate", "--config", str(config), "--out", str(tmp_path / out), "--no-progress"]
        assert cli.main(argv + (["--views", chosen] if chosen else [])) == 0
    alone, two, every = (open_dataset(tmp_path / out) for out in ("g", "two", "all"))
    assert list(alone.views) == ["wideband"] and list(two.views) == ["wideband", "cp_profile"]
    assert list(every.views) == list(views.VIEWS)
    assert two.manifest["config"]["views"] == ["wideband", "cp_profile"]
    drawn = ("protocol", "modulation", "snr_db", "mobility", "scenario", "user", "channel", "seed")
    for row in range(2):
        assert {key: alone.labels[row][key] for key in drawn} == {key: every.labels[row][key] for key in drawn}
        assert alone.labels[row]["capture"]["source_rate_hz"] == every.labels[row]["capture"]["source_rate_hz"]
