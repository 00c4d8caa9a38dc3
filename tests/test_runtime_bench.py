"""`lwmspectro bench infer` on a tiny bundle and a tiny labelled dataset: the core's ONNX Runtime
rows and the eager-PyTorch rows the training package contributes."""

import re

import pytest

from lwmspectro import cli, labels
from lwmspectro.benchmarks import infer
from lwmspectro.cli import main
from lwmspectro.dataset import write_manifest, write_shard
from lwmspectro.spectrogram import DEFAULT_PARAMS

from bundle_factory import band_router, band_spectrograms, make_bundle

pytest.importorskip("torch")
bench_infer = pytest.importorskip("lwmspectro_train.commands.bench_infer")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    bands = [0, 1, 2] * 12
    rows = [
        {"protocol": labels.PROTOCOLS[b], "modulation": "QPSK", "snr_db": 10.0, "mobility": "static"} for b in bands
    ]
    write_shard(folder, 0, band_spectrograms(DEFAULT_PARAMS, bands, seed=1), rows)
    write_manifest(folder, DEFAULT_PARAMS, {}, 1)
    return folder


def tiny_torch_model(params):
    return band_router(params.n_bins, list(labels.ROUTER_CLASSES), list(labels.PROTOCOLS)), None


def test_bench_prints_every_variant_ratios_and_int8_accuracy(bundle, dataset, monkeypatch, capsys):
    # Stand-ins keep the test fast; the real paper-size model takes seconds per batch.
    monkeypatch.setattr(bench_infer, "paper_model", tiny_torch_model)
    monkeypatch.setattr(bench_infer, "torch_bundle_model", lambda bundle_dir: tiny_torch_model(DEFAULT_PARAMS))
    code = main(
        [
            "bench",
            "infer",
            "--bundle",
            str(bundle),
            "--data",
            str(dataset),
            "--seconds",
            "0.05",
            "--batch",
            "8",
            "--threads",
            "1",
            "--int8",
            "--max-samples",
            "36",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for name in (
        "ONNX Runtime, bundle",
        "eager PyTorch, bundle",
        "eager PyTorch, paper size",
        "ONNX Runtime, bundle int8",
    ):
        row = re.search(rf"^{re.escape(name)}\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
        assert row, f"no table row for {name}:\n{out}"
        p50, p99, rate = map(float, row.groups()[1:])
        assert 0 < p50 <= p99 and rate > 0
    assert re.search(r"ONNX Runtime bundle vs eager PyTorch, bundle: [\d.]+x latency, [\d.]+x throughput", out)
    latency = r"target ONNX Runtime >= 2x eager PyTorch, bundle \(latency at batch 1\): [\d.]+x (met|MISSED)"
    throughput = r"target ONNX Runtime >= 2x eager PyTorch, bundle \(throughput at batch 8\): [\d.]+x (met|MISSED)"
    assert re.search(latency, out) and re.search(throughput, out)
    assert re.search(r"target >= 100 readouts/s: [\d.]+ (met|MISSED) \(1 threads\)", out)
    # The band router routes every row right in fp32 and int8 alike.
    assert "int8 accuracy, protocol: 100.0 % vs fp32 100.0 % (+0.0 points, 36 rows)" in out
    assert re.search(r"int8 accuracy, snr_mobility: [\d.]+ % vs fp32 [\d.]+ %", out)


def test_missing_torch_models_are_reported_not_fatal(bundle, dataset, monkeypatch, capsys):
    monkeypatch.setattr(bench_infer, "paper_model", lambda params: (None, "no paper config here"))
    monkeypatch.setattr(bench_infer, "torch_bundle_model", lambda bundle_dir: (None, "no checkpoint here"))
    code = main(
        ["bench", "infer", "--bundle", str(bundle), "--data", str(dataset), "--seconds", "0.05", "--threads", "1"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "eager PyTorch, bundle: not measured: no checkpoint here" in out
    assert "eager PyTorch, paper size: not measured: no paper config here" in out
    assert "target ONNX Runtime >= 2x" not in out


def test_without_the_training_package_the_onnx_runtime_rows_stand_alone(bundle, dataset, monkeypatch, capsys):
    monkeypatch.setattr(cli, "plugin_entry_points", lambda group: {})
    code = main(["bench", "infer", "--bundle", str(bundle), "--data", str(dataset), "--seconds", "0.05"])
    out = capsys.readouterr().out
    assert code == 0 and re.search(r"^ONNX Runtime, bundle\s", out, re.M)
    assert "eager PyTorch: not measured: no package contributes it; install the training package" in out


def test_a_failing_comparison_package_is_a_note_not_a_failure(bundle, dataset, monkeypatch, capsys):
    def broken(bundle_dir, params, threads):
        raise RuntimeError("no such device")

    entry = type("Entry", (), {"load": lambda self: broken})()
    monkeypatch.setattr(
        cli, "plugin_entry_points", lambda group: {"broken": entry} if group == infer.COMPARISON_GROUP else {}
    )
    code = main(["bench", "infer", "--bundle", str(bundle), "--data", str(dataset), "--seconds", "0.05"])
    assert code == 0
    assert "broken: not measured: RuntimeError: no such device" in capsys.readouterr().out


def test_accuracy_counts_against_the_labels(bundle, dataset):
    from lwmspectro.dataset import open_dataset
    from lwmspectro.runtime import Runtime

    data = open_dataset(dataset)
    rows = [dict(row, protocol="nr") for row in data.labels]
    scores = infer.accuracy(Runtime(bundle), data.spectrograms(), rows, batch=8)
    assert scores["protocol"] == pytest.approx(100.0 / 3)


def test_bad_arguments_are_refused(bundle, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["bench", "infer", "--bundle", str(bundle), "--seconds", "0"])
    assert stop.value.code == 2 and "--seconds: 0 is not a positive number" in capsys.readouterr().err
    assert main(["bench", "infer", "--bundle", str(bundle), "--batch", "0"]) == 2
    assert "--batch, --max-samples and --threads must be positive" in capsys.readouterr().err
