"""`lwmspectro probe`: the quick probe runs end to end and caches its examples, and the probe
itself can be trusted (a feature that carries the label scores 100 %, noise scores chance)."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("lwmspectro_train")

from lwmspectro import cli, views
from lwmspectro_train import probe

BINS = len(probe.HISTOGRAM_EDGES) - 1


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe")
    command = ["lwmspectro", "probe", "--out", str(folder / "out"), "--report", str(folder / "g.md"), "--quick"]
    rows = probe.run_probe(folder / "out", folder / "g.md", probe.SIZES["quick"], 0, command, progress=False)
    return folder, rows, (folder / "g.md").read_text()


def table_headers(text):
    return [line for line in text.splitlines() if line.startswith("| capture | n fit")]


def test_the_quick_probe_writes_one_table_per_label_with_a_column_per_view(quick_run):
    _folder, rows, text = quick_run
    assert "lwmspectro probe --out" in text.splitlines()[2] and "(seed 0)" in text.splitlines()[2]
    headers = table_headers(text)
    assert len(headers) == len(probe.TASKS)
    columns = [cell.strip() for cell in headers[0].strip("|").split("|")][3:]
    assert len(columns) == len(views.VIEWS) + len(probe.COMBINATIONS)
    assert columns[0].endswith("(today's G)")
    assert set(columns[1 : len(views.VIEWS)]) == {
        name for name, params in views.VIEWS.items() if params != probe.DEFAULT_PARAMS
    }
    assert columns[len(views.VIEWS) :] == list(probe.COMBINATIONS)
    for task in probe.TASKS:
        assert f"## {task.title}" in text
    tables = text.split("\n## ")
    for title in probe.CAPTURE_TITLES.values():
        assert sum(table.count(f"| {title} |") for table in tables[2 : 2 + len(probe.TASKS)]) == len(probe.TASKS)
    assert tables[-1].startswith("Protocol by SNR")
    targets = tables[1]
    assert targets.startswith("The chosen views against the targets")
    for task in probe.TASKS:
        _target, chosen = probe.TARGETS[task.target]
        assert chosen in columns and f"| {task.title} |" in targets
    assert len(rows) == len(probe.TASKS) * len(probe.CAPTURES)
    protocol = next(row for row in rows if row.task.target == "protocol" and row.capture == "analysis")
    assert protocol.n_train > 0 and protocol.n_heldout > 0
    assert all(value is None or 0 <= value <= 1 for value in protocol.accuracy.values())


def test_a_rerun_only_refits_from_the_cache(quick_run, monkeypatch, capsys):
    folder, _rows, text = quick_run

    def no_generation(*args, **kwargs):
        raise AssertionError("a cached example was generated again")

    monkeypatch.setattr(probe.synth, "make_stream", no_generation)
    argv = ["probe", "--out", str(folder / "out"), "--report", str(folder / "again.md"), "--quick", "--no-progress"]
    assert cli.main(argv) == 0
    again = (folder / "again.md").read_text()
    assert again.splitlines()[3:] == text.splitlines()[3:]
    assert "wrote" in capsys.readouterr().out


def labelled_set(n, n_classes, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(n_classes, size=n), rng


def test_a_feature_that_carries_the_label_scores_100_percent():
    y_train, rng = labelled_set(300, 5, 0)
    y_test, _ = labelled_set(200, 5, 1)

    def features(y):
        x = rng.standard_normal((len(y), 64))
        x[:, :5] += 8.0 * np.eye(5)[y]
        return x

    assert probe.fit_probe(features(y_train), y_train, features(y_test), y_test) == 1.0


def test_a_feature_without_information_scores_chance():
    y_train, rng = labelled_set(400, 4, 2)
    y_test, _ = labelled_set(400, 4, 3)
    accuracy = probe.fit_probe(rng.standard_normal((400, 256)), y_train, rng.standard_normal((400, 256)), y_test)
    assert accuracy == pytest.approx(0.25, abs=0.08)


def test_pooled_views_keep_a_label_in_block_levels_and_in_block_spread():
    """Through the pooling a view goes through: a label in one region's level, and a label only in
    how much the elements vary (as a constellation's spread), are both read perfectly."""
    rng = np.random.default_rng(4)
    y = rng.integers(3, size=480)
    levels = np.zeros((len(y), 128, 128))
    levels[:, :16, :16] += y[:, None, None]
    spread = rng.standard_normal((len(y), 128, 128)) * (1.0 + 0.3 * y)[:, None, None]
    for views_of in (levels + 0.3 * rng.standard_normal(levels.shape), spread):
        x = np.stack([probe.pooled_features(view) for view in views_of])
        assert x.shape == (len(y), 2 * probe.POOLED_SIZE**2 + len(probe.QUANTILES) + BINS)
        assert probe.fit_probe(x[:320], y[:320], x[320:], y[320:]) == 1.0


def test_pooling_keeps_small_axes_and_leading_channels():
    distribution = len(probe.QUANTILES) + BINS
    assert probe.pooled_features(np.ones((4, 64))).shape == (2 * 4 * 32 + distribution,)
    assert probe.pooled_features(np.ones((2, 100, 10))).shape == (2 * 2 * 32 * 10 + 2 * distribution,)
    pooled = probe.pooled_features(np.arange(8.0).reshape(1, 8), size=4)
    np.testing.assert_allclose(pooled[:8], [0.5, 2.5, 4.5, 6.5] + [0.5] * 4)
    np.testing.assert_allclose(pooled[8:-BINS], np.quantile(np.arange(8.0), probe.QUANTILES), rtol=1e-6)
    # Values 0..7: 0 in a bin of -2..1, 1 to 7 in the upper tail (edges are closed on the left).
    counts = np.expm1(pooled[-BINS:])
    assert counts[-1] == pytest.approx(7) and counts.sum() == pytest.approx(8) and counts[0] == 0


def test_the_histogram_reads_a_constellation_whatever_the_share_of_empty_elements():
    rng = np.random.default_rng(5)
    y = rng.integers(2, size=300)
    rings = np.where(y[:, None] == 0, 0.0, rng.choice([-0.7, 0.0, 0.26], size=(300, 4096)))
    occupied = rng.uniform(0.1, 1.0, size=(300, 1)) > rng.random((300, 4096))
    views_of = np.where(occupied, rings + 0.02 * rng.standard_normal((300, 4096)), -3.0).reshape(300, 64, 64)
    x = np.stack([probe.pooled_features(view)[-BINS:] for view in views_of])
    assert probe.fit_probe(x[:200], y[:200], x[200:], y[200:]) == 1.0


def test_combined_columns_join_their_views_features():
    named = [probe.View(name, None, None, "") for name in ("wideband (today's G)", "cp_profile", "dynamics")]
    features = {
        "wideband (today's G)": np.zeros((3, 2, 4)),
        "cp_profile": np.ones((3, 2, 5)),
        "dynamics": np.ones((3, 2, 1)),
    }
    assert probe.column_names(named)[:3] == [view.name for view in named]
    assert "router: wideband + cp_profile" in probe.column_names(named)
    assert "aligned 15 + 30 kHz" not in probe.column_names(named)
    assert probe.joined_features(named, features, "router: wideband + cp_profile").shape == (3, 2, 9)
    assert probe.joined_features(named, features, "every view").shape == (3, 2, 10)


@pytest.fixture(scope="module")
def stored_sets(tmp_path_factory):
    """Two small labelled datasets of two views, made here: one to fit the probes, one to score them."""
    from lwmspectro.dataset_generation import generate_dataset
    from lwmspectro.synth import GeneratorConfig

    root = tmp_path_factory.mktemp("stored")
    for name, seed in (("fit", 11), ("score", 12)):
        config = GeneratorConfig(
            n_samples=24, shard_size=24, seed=seed, views=["wideband", "cp_profile"], channel="TDL-A", snr_db=[20]
        )
        generate_dataset(config, root / name, progress=False)
    return root / "fit", root / "score"


def test_stored_datasets_are_probed_column_by_column_without_generating(stored_sets, capsys):
    fit, score = stored_sets
    argv = ["probe", "--fit", str(fit), "--score", str(score), "--no-progress"]
    assert cli.main([*argv, "--column", "cp_profile", "--column", "wideband, cp_profile"]) == 0
    report = capsys.readouterr().out
    assert "## Protocol" in report
    rows = [line for line in report.splitlines() if line.startswith("| ") and "%" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| cp_profile", "| wideband + cp_profile"]
    assert all(row.count("%") >= 2 for row in rows)


def test_a_view_the_stored_datasets_lack_is_named(stored_sets, capsys):
    fit, score = stored_sets
    argv = ["probe", "--fit", str(fit), "--score", str(score), "--column", "dynamics", "--no-progress"]
    assert cli.main(argv) == 1
    assert "stores no view 'dynamics'" in capsys.readouterr().err
    assert cli.main(["probe", "--fit", str(fit)]) == 2


def test_an_other_signal_is_drawn_inside_the_band_limited_captures_passband():
    config = probe.split_config(0, "train", probe.DEFAULT_PARAMS)
    others = [i for i in range(400) if probe.synth.draw_spec(config, i).protocol == "other"][:8]
    assert len(others) == 8
    for index in others:
        captured, row = probe.probe_example(
            config, index, probe.DEFAULT_PARAMS, probe.DEFAULT_PARAMS.window_samples, np.random.default_rng(index)
        )
        _, rate, settings = captured["band_limited"]
        edge = settings["passband_fraction"] * rate / 2
        assert rate == probe.BAND_LIMITED_RATE_HZ and settings["offset_hz"] == 0.0
        assert abs(row["phy"]["offset_hz"]) + row["occupied_bw_hz"] / 2 <= edge


def test_worker_processes_fill_a_cache_of_some_views_as_one_process_does(tmp_path):
    chosen = [view for view in probe.probe_views() if view.name == "cp_profile"]
    n_samples = probe.DEFAULT_PARAMS.window_samples * 2
    caches = {}
    for workers in (1, 2):
        cache = probe.ProbeCache(tmp_path / str(workers), 0, chosen, n_samples, probe.DEFAULT_PARAMS)
        cache.fill({"train": 1, "heldout": 1}, progress=False, workers=workers)
        caches[workers] = [cache.load(split, 1) for split in ("train", "heldout")]
    for (rows_one, features_one), (rows_two, features_two) in zip(caches[1], caches[2]):
        assert rows_one == rows_two
        assert list(features_two) == ["cp_profile"]
        np.testing.assert_array_equal(features_one["cp_profile"], features_two["cp_profile"])


def test_probes_fitted_on_two_processes_score_as_on_one(quick_run):
    folder, rows, _text = quick_run
    views = probe.probe_views()
    size = probe.SIZES["quick"]
    cache = probe.ProbeCache(folder / "out" / "cache", 0, views, probe.stream_samples(views), probe.DEFAULT_PARAMS)
    splits = cache.load("train", size.n_train), cache.load("heldout", size.n_heldout)
    again = probe.score(views, *splits, seed=0, progress=False, workers=2)
    assert [(row.task.target, row.capture, row.accuracy) for row in again] == [
        (row.task.target, row.capture, row.accuracy) for row in rows
    ]


def test_no_held_out_example_repeats_a_fitting_example_but_for_its_site():
    configs = [probe.split_config(0, split, probe.DEFAULT_PARAMS) for split in probe.SPLITS]
    specs = [[probe.synth.draw_spec(config, index) for index in range(40)] for config in configs]
    fitting_seeds = {spec.seed for spec in specs[0]}
    assert not fitting_seeds & {spec.seed for spec in specs[1]}
    assert [config.seed for config in configs] != [
        probe.split_config(1, split, probe.DEFAULT_PARAMS).seed for split in probe.SPLITS
    ]
