"""`lwmspectro score` on labelled SigMF recordings: every window judged against the recording's truth."""

import json
import re

import numpy as np
import pytest

from lwmspectro import readout
from lwmspectro.cli import main
from lwmspectro.runtime import Runtime
from lwmspectro.sigmf_io import write_recording

from bundle_factory import make_bundle

pytest.importorskip("torch")

RATE = 30.72e6
WIFI_TRUTH = {"protocol": "wifi", "modulation": "QPSK", "snr_db": 5.0, "mobility": "static"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="module")
def recordings(tmp_path_factory, bundle):
    """A folder with noise labelled `none` and a capture labelled WiFi, three windows each."""
    folder = tmp_path_factory.mktemp("recordings")
    window = Runtime(bundle).window_samples
    rng = np.random.default_rng(0)
    for name, labels in (("noise", {"protocol": "none"}), ("wifi", WIFI_TRUTH)):
        iq = rng.standard_normal(3 * window) + 1j * rng.standard_normal(3 * window)
        write_recording(folder / name, iq, RATE, 2.4e9, labels=labels)
    return folder


def score(capsys, *argv):
    code = main(["score", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def expected_tally(bundle, path, truth):
    """The tally the runtime's own readouts of the recording give against `truth`."""
    from lwmspectro.sigmf_io import SigMFReader

    reader = SigMFReader(path)
    tally = readout.Tally()
    for each in Runtime(bundle).iter_classify_iq(reader, reader.sample_rate_hz):
        tally.record(each, truth)
    return tally


def test_every_window_of_every_recording_in_a_folder_is_judged_against_its_truth(bundle, recordings, capsys):
    code, out, _ = score(capsys, recordings, "--bundle", bundle, "--json")
    assert code == 0
    scores = json.loads(out)
    by_name = {row["path"].split("/")[-1]: row for row in scores["recordings"]}
    assert sorted(by_name) == ["noise.sigmf-meta", "wifi.sigmf-meta"]
    for name, truth in (("noise", {"protocol": "none"}), ("wifi", WIFI_TRUTH)):
        row = by_name[f"{name}.sigmf-meta"]
        expected = expected_tally(bundle, recordings / f"{name}.sigmf-meta", truth)
        assert sum(row["read_as"].values()) == 3
        assert row["judged"] == expected.judged and row["accuracy"] == expected.accuracy()
    assert by_name["noise.sigmf-meta"]["judged"]["modulation"] == 0
    all_protocol = scores["by_protocol"]["all"]["judged"]["protocol"]
    assert (
        all_protocol
        == by_name["noise.sigmf-meta"]["judged"]["protocol"] + by_name["wifi.sigmf-meta"]["judged"]["protocol"]
    )


def test_below_min_snr_only_the_protocol_is_judged(bundle, recordings, capsys):
    code, out, _ = score(capsys, recordings / "wifi", "--bundle", bundle, "--json", "--min-snr", "10")
    assert code == 0
    judged = json.loads(out)["recordings"][0]["judged"]
    assert judged["protocol"] > 0 and judged["modulation"] == judged["snr_db"] == judged["mobility"] == 0


def test_text_output_has_a_line_per_recording_and_a_table_per_true_protocol(bundle, recordings, capsys):
    code, out, _ = score(capsys, recordings, "--bundle", bundle, "--track", "0.05")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("noise.sigmf-meta: truth none at 30.72 MS/s; 3 windows read as")
    assert lines[1].startswith("wifi.sigmf-meta: truth wifi QPSK 5 dB static at 30.72 MS/s")
    assert "tracked protocol" in lines[-5]
    assert [line.split("|")[1].strip() for line in lines[-3:]] == ["none", "wifi", "all"]


def test_a_recording_without_a_protocol_label_is_refused_by_name(tmp_path, bundle, capsys):
    meta = write_recording(tmp_path / "unlabelled", np.zeros(1000, np.complex64), RATE, 2.4e9)
    code, out, err = score(capsys, meta, "--bundle", bundle)
    assert code == 1 and out == ""
    assert "unlabelled.sigmf-meta: lwm:protocol is None" in err and "label the recording" in err


def test_a_folder_without_recordings_is_refused(tmp_path, bundle, capsys):
    code, _, err = score(capsys, tmp_path, "--bundle", bundle)
    assert code == 1 and "a folder without SigMF recordings" in err


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({**WIFI_TRUTH, "snr_db": "high"}, r"lwm:snr_db is 'high', not a number of dB"),
        ({**WIFI_TRUTH, "snr_db": [1, 2]}, r"lwm:snr_db is \[1, 2\], not a number of dB"),
        ({**WIFI_TRUTH, "snr_db": True}, r"lwm:snr_db is True, not a number of dB"),
        ({**WIFI_TRUTH, "modulation": "1024QAM"}, r"lwm:modulation is '1024QAM', not a modulation of a wifi recording"),
        (
            {**WIFI_TRUTH, "protocol": "lte", "modulation": "BPSK"},
            r"lwm:modulation is 'BPSK', not a modulation of a lte recording",
        ),
        ({**WIFI_TRUTH, "mobility": "flying"}, r"lwm:mobility is 'flying', not a mobility"),
    ],
)
def test_a_label_that_cannot_be_scored_is_refused_naming_the_recording(tmp_path, bundle, capsys, labels, message):
    meta = write_recording(tmp_path / "odd", np.zeros(1000, np.complex64), RATE, 2.4e9, labels=labels)
    code, out, err = score(capsys, meta, "--bundle", bundle)
    assert code == 1 and out == ""
    assert re.search(rf"odd\.sigmf-meta: {message}", err)


def test_recordings_whose_windows_are_all_invalid_count_them_in_a_whole_table(tmp_path, bundle, capsys):
    write_recording(
        tmp_path / "silent",
        np.zeros(3 * Runtime(bundle).window_samples, np.complex64),
        RATE,
        2.4e9,
        labels={"protocol": "none"},
    )
    code, out, _ = score(capsys, tmp_path, "--bundle", bundle)
    assert code == 0
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert table[0] == "| true protocol | windows | invalid |" and table[1] == "|---|---|---|"
    assert table[2:] == ["| none | 3 | 3 |", "| all | 3 | 3 |"]
