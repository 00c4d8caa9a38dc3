"""Calibration of the heads on the validation split: temperature scaling lowers the expected
calibration error of over-confident logits, and an exported bundle carries the temperatures in its
card (with the ECE before and after) and the runtime applies them."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from test_train_toydata import write_toy_dataset

from lwmspectro import labels
from lwmspectro.bundle import load_bundle
from lwmspectro.dataset import open_dataset
from lwmspectro.runtime import Runtime, softmax
from lwmspectro_train import cli, selective
from lwmspectro_train.calibrate import (
    HALF_BIN_DB,
    HeadRows,
    calibrate,
    expected_calibration_error,
    fit_sigma_scale,
    fit_temperature,
    head_rows,
    reliability_diagram,
    selective_accuracy,
)
from lwmspectro_train.export import RELIABILITY_FIGURE

from train_fixtures import tiny_config


def over_confident(n=4000, classes=5, sharpening=3.0, seed=0):
    """Labels drawn from softmax(z), so that z is calibrated, and the logits sharpening * z."""
    rng = np.random.default_rng(seed)
    z = 1.5 * rng.standard_normal((n, classes))
    p = softmax(z)
    truth = np.array([rng.choice(classes, p=row) for row in p])
    return sharpening * z, truth


def test_the_fitted_temperature_undoes_over_confidence_and_lowers_the_ece():
    logits, truth = over_confident()
    head = HeadRows("lte", "modulation", logits, truth)
    temperature = fit_temperature(logits, truth)
    assert temperature == pytest.approx(3.0, rel=0.1)
    before, after = expected_calibration_error(*head.judged()), expected_calibration_error(*head.judged(temperature))
    assert before > 0.15 and after < 0.03
    calibration, report = calibrate([head])
    assert calibration == {"lte": {"modulation": pytest.approx(temperature)}}
    entry = report["heads"]["lte"]["modulation"]
    assert entry["rows"] == 4000 and entry["ece_before"] == pytest.approx(before) and entry["ece_after"] < 0.03


def test_the_ece_is_the_weighted_gap_between_confidence_and_accuracy():
    confidence = np.array([0.95, 0.95, 0.95, 0.95, 0.55, 0.55])
    right = np.array([True, True, False, False, True, True])
    assert expected_calibration_error(confidence, right) == pytest.approx((4 * 0.45 + 2 * 0.45) / 6)
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == 0.0


def test_an_snr_head_whose_sigma_is_too_small_gets_it_scaled_up():
    rng = np.random.default_rng(1)
    mean = rng.uniform(-5, 25, 3000)
    truth = mean + 4.0 * rng.standard_normal(3000)
    outputs = np.stack([mean, np.full(3000, np.log(2.0**2))], axis=1)
    assert fit_sigma_scale(mean, outputs[:, 1], truth) == pytest.approx(2.0, rel=0.05)
    head = HeadRows("nr", "snr_db", outputs, truth)
    confidence, right = head.judged(head.fit())
    assert confidence.mean() == pytest.approx(right.mean(), abs=0.03), f"within {HALF_BIN_DB} dB as often as it says"
    assert expected_calibration_error(*head.judged(head.fit())) < expected_calibration_error(*head.judged()) / 3


def test_a_few_wild_snr_errors_do_not_leave_every_other_confidence_too_low():
    """Most windows err as the head says, one in eight by 15 dB or more: the Gaussian likelihood
    would widen every sigma several-fold for those; the fitted scale keeps the readout's
    confidence (within half a bin) as often right as it says."""
    rng = np.random.default_rng(2)
    n = 4000
    mean = rng.uniform(-5, 35, n)
    wild = rng.random(n) < 0.125
    truth = mean + np.where(wild, rng.choice([-1, 1], n) * rng.uniform(15, 30, n), 1.0 * rng.standard_normal(n))
    outputs = np.stack([mean, np.full(n, np.log(1.0))], axis=1)
    head = HeadRows("lte", "snr_db", outputs, truth)
    likelihood_scale = float(np.sqrt(np.mean((truth - mean) ** 2)))
    assert likelihood_scale > 5
    assert head.fit() < likelihood_scale / 3
    assert expected_calibration_error(*head.judged(head.fit())) < 0.03
    assert expected_calibration_error(*head.judged(likelihood_scale)) > 0.3


def test_each_head_is_calibrated_on_the_labelled_rows_its_expert_reads():
    wifi, lte = (labels.ROUTER_CLASSES.index(p) for p in ("wifi", "lte"))
    outputs = {
        "router_logits": np.zeros((5, 5)),
        "expert": np.array([0, 0, 1, -1, 0]),
        "modulation_logits": np.zeros((5, 5)),
        "snr_db": np.zeros((5, 2)),
        "mobility_logits": np.zeros((5, 3)),
        "log_doppler": np.zeros((5, 2)),
        "needs_longer_capture": np.array([False, True, False, False, False]),
    }
    truth = {
        "protocol": np.array([wifi, wifi, lte, lte, lte]),
        "modulation": np.array([1, 2, 3, 4, 0]),
        "mobility": np.array([0, 1, 2, 0, 1]),
        "snr_db": np.array([5.0, 10.0, np.nan, 0.0, 20.0]),
        "snr_mobility": np.full(5, -1),
    }
    rows = {(h.graph, h.head): h.truth.tolist() for h in head_rows(outputs, truth, ("wifi", "lte"))}
    assert rows[("router", "protocol")] == truth["protocol"].tolist()
    assert rows[("wifi", "modulation")] == [1, 2, 0], "an LTE window the router sent to WiFi counts for WiFi"
    assert rows[("wifi", "mobility")] == [0, 1], "not where the capture is too short for mobility"
    assert rows[("wifi", "snr_db")] == [5.0, 10.0, 20.0] and rows[("lte", "snr_db")] == []
    assert ("wifi", "snr_mobility") not in rows


def test_a_confidence_threshold_states_the_confident_rows_and_reports_their_accuracy():
    class_0 = np.array([0.95, 0.75, 0.6, 0.55])
    logits = np.log(np.stack([class_0, 1 - class_0], axis=1))
    head = HeadRows("lte", "modulation", logits, truth=np.array([0, 1, 0, 1]))
    report = selective_accuracy([head], {}, thresholds=(0.5, 0.7, 0.9, 0.99))
    entry = report["heads"]["lte"]["modulation"]
    assert report["thresholds"] == [0.5, 0.7, 0.9, 0.99]
    assert entry["rows"] == 4
    assert entry["coverage"] == [1.0, 0.5, 0.25, 0.0]
    assert entry["accuracy"][:3] == pytest.approx([0.5, 0.5, 1.0]) and entry["accuracy"][3] is None
    flattened = selective_accuracy([head], {"lte": {"modulation": 20.0}}, thresholds=(0.5, 0.7))
    assert flattened["heads"]["lte"]["modulation"]["coverage"][1] == 0.0, "the calibration's temperature applies"


def test_a_head_with_too_few_rows_keeps_its_logits_and_the_diagram_shows_the_others(tmp_path):
    logits, truth = over_confident(n=200)
    heads = [HeadRows("router", "protocol", logits, truth), HeadRows("nr", "mobility", logits[:4, :3], truth[:4] % 3)]
    calibration, report = calibrate(heads)
    assert set(calibration) == {"router"} and report["too_few_rows"] == {"nr.mobility": 4}
    path = reliability_diagram(heads, calibration, tmp_path / "figures" / "reliability.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`lwmspectro-train all` on toy data with a validation split large enough to calibrate every head."""
    root = tmp_path_factory.mktemp("calibrated")
    train = write_toy_dataset(root / "train", n=250, seed=0)
    test = write_toy_dataset(root / "test", n=40, seed=9)
    values = tiny_config(root / "run", train, test, epochs=1)
    values["data"]["val_fraction"] = 0.4
    config = root / "tiny.json"
    config.write_text(json.dumps(values))
    assert cli.main(["all", "--config", str(config), "--no-progress", "--out", str(root / "bundle")]) == 0
    return root


def test_an_exported_bundle_carries_its_calibration_and_the_ece_before_and_after(exported):
    bundle = load_bundle(exported / "bundle")
    assert set(bundle.calibration) >= {"router"}
    assert all(0.05 <= t <= 20.0 for heads in bundle.calibration.values() for t in heads.values())
    report = bundle.metrics["calibration"]
    assert report["split"] == "validation" and report["bins"] == 15
    for graph, heads in bundle.calibration.items():
        for head, value in heads.items():
            entry = report["heads"][graph][head]
            assert entry["temperature"] == value and entry["rows"] >= 10
            assert 0.0 <= entry["ece_after"] <= entry["ece_before"] + 0.05
    assert (exported / "run" / RELIABILITY_FIGURE).read_bytes()[:4] == b"\x89PNG"
    selective = bundle.metrics["selective"]
    assert selective["thresholds"] == [0.5, 0.6, 0.7, 0.8, 0.9]
    router = selective["heads"]["router"]["protocol"]
    assert router["rows"] == 40 and router["coverage"] == sorted(router["coverage"], reverse=True)


def test_the_selective_command_reports_a_bundles_stated_share_and_accuracy_on_a_dataset(exported, tmp_path, capsys):
    out = tmp_path / "selective.json"
    argv = ["--bundle", str(exported / "bundle"), "--data", str(exported / "test"), "--no-progress"]
    assert selective.main([*argv, "--thresholds", "0.5", "0.8", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["thresholds"] == [0.5, 0.8]
    assert "router" in report["heads"] and set(report["heads"]) <= {"router", *labels.PROTOCOLS}
    assert all(len(entry["coverage"]) == 2 for heads in report["heads"].values() for entry in heads.values())
    assert "stated share / accuracy" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        selective.main([*argv, "--thresholds", "1.5"])


def test_the_selective_command_gives_the_figures_the_export_wrote_into_the_card(exported, tmp_path):
    out = tmp_path / "selective.json"
    argv = ["--bundle", str(exported / "bundle"), "--data", str(exported / "test"), "--no-progress", "--out", str(out)]
    assert selective.main(argv) == 0
    card = load_bundle(exported / "bundle").metrics["selective"]
    report = json.loads(out.read_text())
    assert report["thresholds"] == card["thresholds"] and report["heads"].keys() == card["heads"].keys()
    for graph, heads in card["heads"].items():
        for head, entry in heads.items():
            assert report["heads"][graph][head]["rows"] == entry["rows"]
            assert report["heads"][graph][head]["coverage"] == pytest.approx(entry["coverage"], abs=0.03)


def test_the_runtime_applies_the_exported_temperatures(exported):
    bundle = load_bundle(exported / "bundle")
    x = open_dataset(exported / "test").spectrograms(range(10))
    (router_logits,) = ort.InferenceSession(str(bundle.files.router)).run(None, {"spectrogram": x})
    temperature = bundle.calibration["router"]["protocol"]
    assert temperature != 1.0
    for output, logits in zip(Runtime(bundle).predict(x), router_logits):
        np.testing.assert_allclose(output.probabilities["protocol"], softmax(logits, temperature), rtol=1e-5)
        assert output.protocol_confidence == pytest.approx(softmax(logits, temperature).max(), rel=1e-5)
