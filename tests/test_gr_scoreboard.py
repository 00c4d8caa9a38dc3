"""The scoreboard judges a readout's SNR on the bins of the bundle the receiver runs."""

from gnuradio import lwmspectro as lwm_blocks

from lwmspectro import labels
from lwmspectro.readout import judge

from bundle_factory import make_bundle


def _readout(snr_db: float) -> dict:
    return {"protocol": "lte", "modulation": "QPSK", "snr_db": snr_db, "mobility": "static", "valid": True}


def test_snr_is_judged_on_the_given_grid():
    truth = {"protocol": "lte", "modulation": "QPSK", "snr_db": 7.0, "mobility": "static"}
    assert judge(_readout(5.0), truth)["snr_db"]
    assert not judge(_readout(0.0), truth, snr_bins_db=(0.0, 8.0, 16.0))["snr_db"]
    assert judge(_readout(8.0), truth, snr_bins_db=(0.0, 8.0, 16.0))["snr_db"]


def test_an_snr_read_as_a_number_is_judged_by_its_bin():
    truth = {"protocol": "lte", "modulation": "QPSK", "snr_db": 10.0, "mobility": "static"}
    assert judge(_readout(11.4), truth)["snr_db"] and judge(_readout(8.1), truth)["snr_db"]
    assert not judge(_readout(13.2), truth)["snr_db"]


def test_scoreboard_takes_the_bundles_snr_bins(tmp_path):
    board = lwm_blocks.scoreboard(False, make_bundle(tmp_path))
    assert board.snr_bins_db == tuple(float(s) for s in labels.SNR_GRID_DB)


def test_a_readout_without_mobility_is_not_judged_on_it():
    truth = {"protocol": "lte", "modulation": "QPSK", "snr_db": 5.0, "mobility": "static"}
    readout = {**_readout(5.0), "mobility": None, "mobility_confidence": None}
    assert "mobility" not in judge(readout, truth) and judge(readout, truth)["snr_db"]


def test_tracked_values_are_judged_beside_the_windows_own(tmp_path):
    truth = {"protocol": "lte", "modulation": "QPSK", "snr_db": 5.0, "mobility": "static"}
    tracked = {
        "tracked_protocol": "lte",
        "tracked_modulation": "16QAM",
        "tracked_snr_db": 5.0,
        "tracked_mobility": None,
    }
    verdict = judge({**_readout(5.0), **tracked}, truth)
    assert verdict == {
        "protocol": True,
        "modulation": True,
        "snr_db": True,
        "mobility": True,
        "tracked_protocol": True,
        "tracked_modulation": False,
        "tracked_snr_db": True,
    }
    board = lwm_blocks.scoreboard(False, make_bundle(tmp_path))
    board.record({**_readout(5.0), **tracked}, truth)
    assert "tracked modulation 0 % (0/1)" in board.summary() and "modulation 100 % (1/1)" in board.summary()
