"""The label sets' one SNR-bin rule."""

import numpy as np
import pytest

from lwmspectro import labels


@pytest.mark.parametrize(
    ("snr_db", "expected"), [(-30.0, -5.0), (-2.5, -5.0), (-2.4, 0.0), (2.5, 0.0), (12.6, 15.0), (60.0, 25.0)]
)
def test_nearest_snr_bin_takes_the_lower_of_two_equally_near_bins(snr_db, expected):
    assert labels.nearest_snr_bin(snr_db) == expected
    assert labels.SNR_GRID_DB[labels.snr_bin_index(snr_db)] == expected


def test_nearest_snr_bin_reads_arrays_and_any_grid():
    grid = (0.0, 10.0, 30.0)
    assert labels.nearest_snr_bin(np.array([-3.0, 6.0, 21.0]), grid).tolist() == [0.0, 10.0, 30.0]
    assert labels.snr_bin_index(np.array([[4.0], [26.0]]), grid).tolist() == [[0], [2]]


def test_joint_class_index_uses_the_nearest_snr_bin():
    index = labels.snr_mobility_index(12.6, "pedestrian")
    assert isinstance(index, int)
    assert labels.SNR_MOBILITY_CLASSES[index] == (15, "pedestrian")
