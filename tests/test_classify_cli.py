"""`lwmspectro classify` on SigMF recordings in cf32, ci16 and ci8."""

import json

import numpy as np
import pytest
import sigmf
from sigmf import SigMFFile

from lwmspectro import labels, readout
from lwmspectro.cli import main
from lwmspectro.runtime import Runtime
from lwmspectro.sigmf_io import write_recording

from bundle_factory import make_bundle

pytest.importorskip("torch")

ANALYSIS_RATE = 30.72e6


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="module")
def window(bundle):
    return Runtime(bundle).window_samples


def noise(n, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return scale * (rng.standard_normal(n) + 1j * rng.standard_normal(n))


def write_integer_recording(path, iq_codes, datatype, sample_rate_hz):
    """Interleaved integer I/Q, as an SDR would record it."""
    dtype = {"ci16_le": "<i2", "ci8": "i1"}[datatype]
    interleaved = np.empty(2 * len(iq_codes), dtype)
    interleaved[0::2], interleaved[1::2] = iq_codes.real, iq_codes.imag
    data_path = path.with_suffix(".sigmf-data")
    interleaved.tofile(data_path)
    meta = SigMFFile(
        data_file=data_path,
        global_info={
            sigmf.DATATYPE_KEY: datatype,
            sigmf.SAMPLE_RATE_KEY: sample_rate_hz,
            sigmf.VERSION_KEY: sigmf.__specification__,
        },
    )
    meta.add_capture(0, metadata={sigmf.FREQUENCY_KEY: 2.4e9})
    meta.tofile(path.with_suffix(".sigmf-meta"))
    return path.with_suffix(".sigmf-meta")


def classify(capsys, *argv):
    code = main(["classify", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_cf32_text_lines(tmp_path, bundle, window, capsys):
    meta = write_recording(tmp_path / "rec", noise(2 * window + 7, 0), ANALYSIS_RATE, 2.4e9)
    code, lines, err = classify(capsys, meta, "--bundle", bundle)
    assert code == 0
    assert len(lines) == 2
    assert lines[0].split()[:3] == ["@", "0", "none"] and lines[1].split()[:3] == ["@", str(window), "none"]
    assert "30.72 MS/s" in err and "resampled" not in err


def test_ci16_at_20_msps_is_resampled_and_json_lines_parse(tmp_path, bundle, capsys):
    span = Runtime(bundle).source_window_samples(20e6)
    codes = np.round(noise(3 * span, 1, 3000.0))
    meta = write_integer_recording(tmp_path / "rec16", codes, "ci16_le", 20e6)
    code, lines, err = classify(capsys, meta, "--bundle", bundle, "--json", "--max-windows", 2)
    assert code == 0 and "resampled to 30.72 MS/s" in err
    readouts = [json.loads(line) for line in lines]
    assert [r["window_start"] for r in readouts] == [0, span]
    assert all(tuple(r) == readout.FIELDS for r in readouts)
    # Band-limited by the 20 MS/s rate, the noise fills the middle of the analysis band: lte for the test router.
    assert [r["protocol"] for r in readouts] == ["lte", "lte"]
    assert readouts[-1]["windows_seen"] == 2


def test_ci8_with_clipping_and_a_stride(tmp_path, bundle, window, capsys):
    clean = np.round(noise(window, 2, 20.0))
    loud = noise(window, 3, 100.0)
    clipped = np.clip(np.round(loud.real), -128, 127) + 1j * np.clip(np.round(loud.imag), -128, 127)
    meta = write_integer_recording(tmp_path / "rec8", np.concatenate([clean, clipped]), "ci8", ANALYSIS_RATE)
    code, lines, _ = classify(capsys, meta, "--bundle", bundle, "--json", "--stride", window // 2)
    assert code == 0
    readouts = [json.loads(line) for line in lines]
    assert [r["window_start"] for r in readouts] == [0, window // 2, window]
    assert [r["invalid_reason"] for r in readouts] == [None, "clipped", "clipped"]
    assert readouts[0]["protocol"] == "none"
    assert (readouts[-1]["windows_seen"], readouts[-1]["windows_classified"], readouts[-1]["windows_dropped"]) == (
        3,
        1,
        2,
    )


def test_default_bundle_from_the_environment(tmp_path, bundle, window, capsys, monkeypatch):
    monkeypatch.setenv("LWMSPECTRO_BUNDLE", str(bundle))
    meta = write_recording(tmp_path / "rec", noise(window, 4), ANALYSIS_RATE, 1e9)
    code, lines, _ = classify(capsys, meta)
    assert code == 0 and len(lines) == 1


def test_clear_errors(tmp_path, bundle, capsys, monkeypatch):
    """Runtime failures exit 1, usage errors 2 (argparse); more cases in test_bad_input."""
    code, _, err = classify(capsys, tmp_path / "absent.sigmf-meta", "--bundle", bundle)
    assert code == 1 and "absent.sigmf-meta: no such file" in err
    meta = write_recording(tmp_path / "rec", noise(1000, 5), ANALYSIS_RATE, 1e9)
    code, _, err = classify(capsys, meta, "--bundle", tmp_path / "no-bundle")
    assert code == 1 and "not a model bundle folder" in err
    with pytest.raises(SystemExit) as stop:
        classify(capsys, meta, "--bundle", bundle, "--stride", 0)
    assert stop.value.code == 2 and "--stride: 0 is not a positive integer" in capsys.readouterr().err
    monkeypatch.setenv("LWMSPECTRO_BUNDLE", str(tmp_path / "empty"))
    code, _, err = classify(capsys, meta)
    assert code == 1 and "no card.json" in err


def test_short_recording_says_too_short(tmp_path, bundle, capsys):
    meta = write_recording(tmp_path / "short", noise(1000, 6), ANALYSIS_RATE, 1e9)
    code, lines, _ = classify(capsys, meta, "--bundle", bundle)
    assert code == 0 and lines == ["@           0  INVALID (too_short)"]


def test_track_reads_each_value_over_the_windows_and_starts_again_when_the_power_jumps(tmp_path, bundle, capsys):
    span = Runtime(bundle).source_window_samples(20e6)
    quiet, loud = noise(3 * span, 7), noise(2 * span, 8, scale=100.0)
    meta = write_recording(tmp_path / "rec", np.concatenate([quiet, loud]), 20e6, 2.4e9)
    code, lines, _ = classify(capsys, meta, "--bundle", bundle, "--json", "--track", "1")
    assert code == 0
    readouts = [json.loads(line) for line in lines]
    assert [r["tracked_windows"] for r in readouts] == [1, 2, 3, 1, 2], "40 dB louder: another emission"
    assert all(r["tracked_protocol"] == r["protocol"] == "lte" for r in readouts)
    assert all(r["tracked_modulation"] in labels.MODULATIONS for r in readouts)
    assert readouts[0]["tracked_modulation_confidence"] == pytest.approx(readouts[0]["modulation_confidence"])
    code, lines, _ = classify(capsys, meta, "--bundle", bundle, "--track", "1", "--track-reset-db", "inf")
    assert code == 0 and "[5 windows: lte " in lines[-1]


def test_uncertain_below_lists_the_values_under_the_threshold(tmp_path, bundle, capsys):
    span = Runtime(bundle).source_window_samples(20e6)
    meta = write_recording(tmp_path / "rec", noise(span, 9), 20e6, 2.4e9)
    code, lines, _ = classify(capsys, meta, "--bundle", bundle, "--json")
    (plain,) = [json.loads(line) for line in lines]
    assert code == 0 and plain["uncertain"] == [] and plain["tracked_windows"] is None
    argv = ("--track", "0.5", "--uncertain-below", "1", "--uncertain-below", "protocol=0")
    code, lines, _ = classify(capsys, meta, "--bundle", bundle, "--json", *argv)
    (marked,) = [json.loads(line) for line in lines]
    tasks = ["modulation", "snr_db", "mobility"]
    assert code == 0 and marked["uncertain"] == tasks + [f"tracked_{task}" for task in tasks]
    values = [name for task in readout.TASKS for name in (task, readout.CONFIDENCE_OF[task])]
    assert [marked[name] for name in values] == [plain[name] for name in values], "the values are kept"
