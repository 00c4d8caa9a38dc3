"""`lwmspectro run` and `lwmspectro demo`: the receiver without GRC, its outputs and its errors."""

import json

import numpy as np
import pytest

from lwmspectro import cli, readout
from lwmspectro.sigmf_io import write_recording
from lwmspectro.spectrogram import SpectrogramParams

from bundle_factory import make_bundle

PARAMS = SpectrogramParams(sample_rate_hz=1e6, n_fft=32, hop=64, n_frames=32, n_bins=16)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return str(make_bundle(tmp_path_factory.mktemp("bundle"), params=PARAMS))


@pytest.fixture
def recording(tmp_path):
    rng = np.random.default_rng(0)
    n = 3 * PARAMS.window_samples
    iq = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    iq[PARAMS.window_samples : 2 * PARAMS.window_samples] = 0
    return write_recording(tmp_path / "rec", iq, PARAMS.sample_rate_hz, 2.4e9)


def test_run_on_a_recording_prints_one_json_readout_per_window(bundle, recording, capsys):
    assert cli.main(["run", "--source", f"sigmf:{recording}", "--bundle", bundle, "--json", "--max-rate", "0"]) == 0
    out, err = capsys.readouterr()
    readouts = [json.loads(line) for line in out.splitlines()]
    assert [r["window_start"] for r in readouts] == [0, PARAMS.window_samples, 2 * PARAMS.window_samples]
    assert all(list(r) == list(readout.FIELDS) for r in readouts)
    assert [r["valid"] for r in readouts] == [True, False, True]
    assert readouts[1]["invalid_reason"] == "all_zero"
    assert "3 windows" in err and "2 classified, 1 invalid" in err


def test_run_tracks_the_windows_and_marks_the_uncertain_values(bundle, recording, capsys):
    argv = ["run", "--source", f"sigmf:{recording}", "--bundle", bundle, "--json", "--max-rate", "0"]
    assert cli.main([*argv, "--track", "1", "--uncertain-below", "protocol=1"]) == 0
    readouts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["tracked_windows"] for r in readouts] == [1, None, 2], (
        "the invalid window neither reads nor ends the track"
    )
    assert readouts[0]["uncertain"] == ["protocol", "tracked_protocol"] and readouts[1]["uncertain"] == []
    with pytest.raises(SystemExit) as stop:
        cli.main([*argv, "--track", "0"])
    assert stop.value.code == 2 and "--track: '0' is not a positive number of seconds" in capsys.readouterr().err


def test_run_can_annotate_the_recording_it_reads(bundle, recording, capsys):
    assert cli.main(["run", "--source", f"sigmf:{recording}", "--bundle", bundle, "--annotate", "--max-rate", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "INVALID (all_zero)" in lines[1]
    labels = [a["core:label"] for a in json.loads(recording.read_text())["annotations"]]
    assert labels[1] == "invalid" and len(labels) == 3


def test_replay_annotates_every_window_without_a_rate_cap_or_drops(bundle, tmp_path, capsys):
    rng = np.random.default_rng(1)
    n = 300 * PARAMS.window_samples
    iq = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    meta = write_recording(tmp_path / "long", iq, PARAMS.sample_rate_hz, 2.4e9, labels={"protocol": "none"})
    assert cli.main(["run", "--source", f"sigmf:{meta}", "--bundle", bundle, "--annotate", "--json"]) == 0
    readouts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    annotations = json.loads(meta.read_text())["annotations"]
    assert len(readouts) == len(annotations) == 300
    assert [a["core:sample_start"] for a in annotations] == [i * PARAMS.window_samples for i in range(300)]
    assert readouts[-1]["windows_dropped"] == 0 and readouts[-1]["windows_classified"] == 300


@pytest.mark.parametrize(
    "source, message",
    [
        (
            "radio:1",
            "--source 'radio:1' is not understood; valid: synthetic, sigmf:PATH, zmq:ADDR, soapy:ARGS, uhd:ARGS",
        ),
        ("sigmf:/no/such.sigmf-meta", "LWM SigMF Source: no SigMF recording at '/no/such.sigmf-meta'"),
        ("zmq:nowhere", "LWM ZMQ Source: cannot connect to 'nowhere'"),
        ("soapy:driver=nosuchradio", "soapy source: no SoapySDR device matches 'driver=nosuchradio'; SoapySDR sees"),
        ("uhd:type=nosuchradio", "uhd source: no USRP matches 'type=nosuchradio'; UHD sees"),
    ],
)
def test_a_source_that_is_not_there_says_which_and_why(bundle, source, message, capsys):
    usage_error = source == "radio:1"
    assert cli.main(["run", "--source", source, "--bundle", bundle]) == (2 if usage_error else 1)
    assert message in capsys.readouterr().err


def test_an_unsupported_recording_and_a_missing_bundle_fail_before_streaming(bundle, recording, tmp_path, capsys):
    meta = json.loads(recording.read_text())
    meta["global"]["core:datatype"] = "cu8"
    recording.write_text(json.dumps(meta))
    assert cli.main(["run", "--source", f"sigmf:{recording}", "--bundle", bundle]) == 1
    assert "core:datatype 'cu8' is not supported; supported: cf32_le" in capsys.readouterr().err
    assert cli.main(["run", "--source", "synthetic", "--bundle", str(tmp_path / "nothing")]) == 1
    assert "LWM Classifier: bundle" in capsys.readouterr().err


def test_a_recording_shorter_than_a_window_says_so(bundle, tmp_path, capsys):
    meta = write_recording(tmp_path / "short", np.ones(4, np.complex64), 30.72e6, 0.0)
    assert cli.main(["run", "--source", f"sigmf:{meta}", "--bundle", bundle, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "short.sigmf-meta holds 4 samples, fewer than the" in captured.err and "nothing to read out" in captured.err


def test_demo_prints_readouts_beside_the_truth_then_accuracy_and_throughput(bundle, capsys):
    assert cli.main(["demo", "--seconds", "1", "--bundle", bundle, "--protocol", "lte", "--snr", "20"]) == 0
    out = capsys.readouterr().out.splitlines()
    readout_lines = [line for line in out if line.startswith("@")]
    assert readout_lines and all("| truth lte " in line for line in readout_lines)
    assert any("windows: " in line for line in readout_lines), "the tracked values beside the window's"
    summary = [line for line in out if line.startswith("--- ")]
    assert summary and "accuracy: protocol " in summary[0] and "tracked protocol " in summary[0]
    assert any(line.startswith("throughput: ") and "x real time" in line for line in out)


@pytest.mark.parametrize("rate", [PARAMS.sample_rate_hz, 0.8e6])
def test_run_reads_out_what_the_runtime_reads_from_the_same_recording(bundle, tmp_path, rate, capsys):
    from lwmspectro.runtime import Runtime

    rng = np.random.default_rng(3)
    n = int(4 * PARAMS.window_samples * rate / PARAMS.sample_rate_hz)
    tone = 4 * np.exp(2j * np.pi * np.linspace(-0.4, 0.4, n) * np.arange(n))  # a chirp across the band
    iq = (tone + rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    meta = write_recording(tmp_path / "chirp", iq, rate, 1e9)
    assert cli.main(["run", "--source", f"sigmf:{meta}", "--bundle", bundle, "--json", "--max-rate", "0"]) == 0
    live = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    offline = Runtime(bundle).classify_iq(iq, rate)
    assert [r["window_start"] for r in live] == [r["window_start"] for r in offline][: len(live)]
    assert len(live) >= 3
    for got, want in zip(live, offline):
        assert got["protocol"] == want["protocol"]
        assert got["protocol_confidence"] == pytest.approx(want["protocol_confidence"], abs=1e-4)
        assert got["modulation_confidence"] == pytest.approx(want["modulation_confidence"], abs=1e-4)
