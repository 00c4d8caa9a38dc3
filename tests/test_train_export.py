"""The whole recipe on a toy dataset, the exported bundle, its parity check and the metrics."""

import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from test_train_toydata import write_toy_dataset

from lwmspectro import cli as core_cli
from lwmspectro import labels
from lwmspectro.bundle import TENSOR_NAMES, default_files, load_bundle
from lwmspectro_train import cli
from lwmspectro_train.heldout import metrics_from_predictions

from train_fixtures import tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`lwmspectro-train all` on toy data with the encoder fine-tuned under the heads."""
    root = tmp_path_factory.mktemp("recipe")
    train = write_toy_dataset(root / "train", n=200, seed=0)
    test = write_toy_dataset(root / "test", n=60, seed=9)
    values = tiny_config(root / "run", train, test, epochs=2)
    values["heads"]["mode"] = "lwm_ft"
    config = root / "tiny.json"
    config.write_text(json.dumps(values))
    assert cli.main(["all", "--config", str(config), "--no-progress", "--out", str(root / "bundle")]) == 0
    return root


def test_all_writes_a_bundle_the_card_contract_accepts(trained):
    bundle = trained / "bundle"
    card = load_bundle(bundle).card
    assert card["name"] == "tiny", "a card is named after its run config, not the folder it was written to"
    assert card["files"] == default_files()
    for name in [
        "router.onnx",
        *(f"expert_{p}.onnx" for p in labels.PROTOCOLS),
        *(f"heads_{p}.onnx" for p in labels.PROTOCOLS),
        "weights.pt",
    ]:
        assert (bundle / name).is_file(), name
    assert card["spectrogram"]["n_bins"] == 32 and card["input"]["window_samples"] == 31 * 32 + 32
    assert card["labels"]["snr_mobility"] == [list(p) for p in labels.SNR_MOBILITY_CLASSES]
    assert card["normalisation"]["std"] > 0 and "ONNX" in card["normalisation"]["applied"]
    assert card["training"]["commands"][0]["command"].startswith("lwmspectro-train all --config")
    assert card["training"]["config"]["heads"]["mode"] == "lwm_ft"
    held_out = card["metrics"]["held_out"]
    assert held_out["count"] == 60 and set(held_out["targets"]) == {
        "router_accuracy_snr_ge_0",
        "modulation_macro_f1_snr_ge_15",
        "snr_mobility_macro_f1",
        "none_recall",
        "signal_as_none_snr_ge_0",
        *(f"modulation_macro_f1_snr_ge_15_{protocol}" for protocol in labels.PROTOCOLS),
    }
    assert card["metrics"]["parity"]["all_argmax_agree"]


def test_onnx_graphs_have_the_card_tensor_names_and_a_dynamic_batch(trained):
    bundle = trained / "bundle"
    x = np.random.default_rng(0).standard_normal((5, 32, 32)).astype(np.float32)
    for kind, path in (("router", "router.onnx"), ("expert", "expert_lte.onnx")):
        session = ort.InferenceSession(str(bundle / path), providers=["CPUExecutionProvider"])
        inputs, outputs = TENSOR_NAMES[kind]
        assert [i.name for i in session.get_inputs()] == list(inputs)
        assert [o.name for o in session.get_outputs()] == list(outputs)
        assert session.run(None, {"spectrogram": x})[0].shape[0] == 5
        assert session.run(None, {"spectrogram": x[:1]})[0].shape[0] == 1
    heads = ort.InferenceSession(str(bundle / "heads_nr.onnx"), providers=["CPUExecutionProvider"])
    mod, joint = heads.run(None, {"embedding": np.zeros((3, 16), np.float32)})
    assert mod.shape == (3, 5) and joint.shape == (3, 21)


def test_parity_holds_on_the_held_out_spectrograms_in_onnx_runtime(trained):
    """The bundle's ONNX chain against its torch twin (weights.pt) on held-out data."""
    from lwmspectro.dataset import open_dataset
    from lwmspectro_train.model import EncoderConfig, HeadsConfig, SpectrogramEncoder, TaskHeads

    bundle = trained / "bundle"
    weights = torch.load(bundle / "weights.pt", weights_only=True)
    encoder = SpectrogramEncoder(EncoderConfig.from_dict(weights["config"]["model"]), (32, 32)).eval()
    encoder.load_state_dict(weights["experts"]["wifi"])
    heads = TaskHeads(16, HeadsConfig.from_dict(weights["config"]["heads"])).eval()
    heads.load_state_dict(weights["heads"]["wifi"])
    x = open_dataset(trained / "test").spectrograms(range(20))
    embedding = ort.InferenceSession(str(bundle / "expert_wifi.onnx")).run(None, {"spectrogram": x})[0]
    logits = ort.InferenceSession(str(bundle / "heads_wifi.onnx")).run(None, {"embedding": embedding})
    with torch.no_grad():
        reference = encoder(torch.from_numpy(x))
        ref_logits = heads(reference)
    assert np.abs(embedding - reference.numpy()).max() < 1e-4
    for got, want in zip(logits, ref_logits):
        assert (got.argmax(1) == want.numpy().argmax(1)).all()


def test_torch_model_rebuilt_from_the_bundle_decides_as_onnx_runtime_does(trained):
    from lwmspectro.dataset import open_dataset
    from lwmspectro.runtime import Runtime
    from lwmspectro_train.export import load_torch_from_bundle

    bundle = trained / "bundle"
    x = open_dataset(trained / "test").spectrograms(range(20))
    model = load_torch_from_bundle(bundle)
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    outputs = Runtime(bundle).predict(x)
    assert [labels.ROUTER_CLASSES[int(i)] for i in out["top1"]] == [o.protocol for o in outputs]
    assert [model.expert_names[i] if i >= 0 else None for i in out["expert"].tolist()] == [o.expert for o in outputs]


def test_core_export_command_writes_a_bundle_and_refuses_to_overwrite(trained, capsys):
    out = trained / "exported"
    args = ["export", "--run", str(trained / "run"), "--out", str(out), "--parity-samples", "8", "--no-progress"]
    assert core_cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "parity on 8 held-out spectrograms" in printed and "argmax agree True" in printed
    card = load_bundle(out).card
    assert card["training"]["commands"][-1]["command"].startswith("lwmspectro export --run")
    assert core_cli.main(args) == 1
    assert "pass --overwrite" in capsys.readouterr().err


def test_export_without_the_training_package_says_how_to_install_it(trained, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "lwmspectro_train.export", None)
    code = core_cli.main(["export", "--run", str(trained / "run"), "--out", str(trained / "never")])
    assert code == 2 and "pip install -e training" in capsys.readouterr().err
    assert not (trained / "never").exists()


def test_export_refuses_held_out_data_made_with_another_g(trained, tmp_path):
    from lwmspectro.dataset import write_manifest, write_shard
    from lwmspectro.spectrogram import SpectrogramParams

    other = tmp_path / "other"
    other.mkdir()
    write_shard(other, 0, np.zeros((2, 32, 32), np.float32), [{"protocol": "none"}] * 2)
    write_manifest(other, SpectrogramParams(sample_rate_hz=2e6, n_fft=32, hop=32, n_frames=32, n_bins=32), {}, 1)
    code = core_cli.main(
        ["export", "--run", str(trained / "run"), "--out", str(tmp_path / "b"), "--data", str(other), "--no-progress"]
    )
    assert code == 1 and not (tmp_path / "b").exists()


def test_metrics_from_predictions_per_snr_and_targets():
    wifi, lte, none = (labels.ROUTER_CLASSES.index(p) for p in ("wifi", "lte", "none"))
    targets = {
        "protocol": np.array([wifi, wifi, lte, lte, none, none]),
        "modulation": np.array([0, 1, 1, 1, -1, -1]),
        "snr_mobility": np.array([12, 13, 15, 16, -1, -1]),
        "snr_db": np.array([20.0, 20.0, -5.0, -5.0, np.nan, np.nan]),
    }
    predictions = {
        "protocol": np.array([wifi, wifi, lte, none, none, wifi]),
        "modulation": np.array([0, 0, 1, -1, -1, 0]),
        "snr_mobility": np.array([12, 13, 15, -1, -1, 3]),
    }
    m = metrics_from_predictions(targets, predictions)
    assert m["per_snr_db"]["20"]["router_accuracy"] == 1.0
    assert m["per_snr_db"]["20"]["modulation_macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert m["per_snr_db"]["20"]["snr_mobility_macro_f1"] == 1.0
    assert m["per_snr_db"]["-5"]["router_accuracy"] == 0.5
    assert m["per_snr_db"]["-5"]["modulation_macro_f1"] == pytest.approx(2 / 3)
    assert m["overall"]["none_recall"] == 0.5 and m["targets"]["none_recall"]["met"] is False
    assert m["targets"]["router_accuracy_snr_ge_0"]["value"] == 1.0
    assert m["router_confusion"]["matrix"][none] == [1, 0, 0, 1, 0]
    assert set(m["per_snr_db"]) == {"20", "-5"}


def test_the_target_figures_are_given_per_protocol_and_per_capture_slice():
    wifi, lte, nr, none = (labels.ROUTER_CLASSES.index(p) for p in ("wifi", "lte", "nr", "none"))
    targets = {
        "protocol": np.array([wifi, lte, nr, none, none, lte]),
        "modulation": np.array([0, 1, 2, -1, -1, 1]),
        "snr_mobility": np.array([-1] * 6),
        "snr_db": np.array([20.0, 20.0, 20.0, np.nan, np.nan, 20.0]),
    }
    predictions = {
        "protocol": np.array([wifi, lte, lte, none, wifi, none]),
        "modulation": np.array([0, 1, -1, -1, -1, -1]),
        "snr_mobility": np.array([-1] * 6),
    }
    rows = [
        {"protocol": "wifi", "channel": "site", "capture": None},
        {
            "protocol": "lte",
            "channel": "TDL-A",
            "occupied_bw_hz": 9e6,
            "capture": {"source_rate_hz": 20e6, "offset_hz": 2e6, "passband_fraction": 0.9},
        },
        {
            "protocol": "nr",
            "channel": "site",
            "occupied_bw_hz": 19e6,
            "capture": {"source_rate_hz": 20e6, "offset_hz": 0.0, "passband_fraction": 0.9},
        },
        {"protocol": "none", "channel": None, "capture": {"source_rate_hz": 2e6}},
        {"protocol": "none", "channel": None, "capture": {"source_rate_hz": 20e6}},
        {"protocol": "lte", "channel": "site", "capture": None},
    ]
    m = metrics_from_predictions(targets, predictions, rows)
    assert m["targets"]["modulation_macro_f1_snr_ge_15_wifi"]["value"] == 1.0
    assert m["targets"]["modulation_macro_f1_snr_ge_15_nr"]["value"] == 0.0
    assert m["targets"]["signal_as_none_snr_ge_0"]["value"] == pytest.approx(1 / 4)
    assert m["targets"]["signal_as_none_snr_ge_0"]["met"] is False
    slices = m["slices"]
    assert slices["centred_30.72_msps"]["n"] == 2 and slices["centred_30.72_msps"]["router_accuracy_snr_ge_0"] == 0.5
    assert slices["captured_20_msps"]["n"] == 3 and slices["off_centre_over_1_mhz"]["n"] == 1
    # A 20 MS/s capture passing 90 % keeps all of a 9 MHz band and part of a 19 MHz one.
    assert slices["capture_keeps_whole_band"]["n"] == 1 and slices["capture_keeps_part_of_band"]["n"] == 1
    assert slices["capture_keeps_part_of_band"]["router_accuracy_snr_ge_0"] == 0.0
    assert slices["channel_TDL-A"]["router_accuracy_snr_ge_0"] == 1.0
    assert slices["noise_2_msps"]["none_recall"] == 1.0 and slices["noise_20_msps"]["none_recall"] == 0.0
