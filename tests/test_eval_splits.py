"""Per-trial stratified splits: exact per-class counts, no sample in two splits, clear errors."""

import numpy as np
import pytest

from lwmspectro_train.baseline_comparison.splits import Split, TooFewSamples, stratified_split


def _labels():
    rng = np.random.default_rng(0)
    return rng.permutation(np.repeat(np.arange(4), [30, 25, 40, 22]))


def test_counts_are_exact_and_splits_disjoint():
    labels = _labels()
    split = stratified_split(labels, n_train=5, n_val=3, n_test=10, seed=7)
    for part, n in ((split.train, 5), (split.val, 3), (split.test, 10)):
        assert np.array_equal(np.bincount(labels[part], minlength=4), [n] * 4)
    together = np.concatenate([split.train, split.val, split.test])
    assert len(np.unique(together)) == len(together) == 4 * 18


def test_same_seed_same_split_other_seed_other_split():
    labels = _labels()
    a = stratified_split(labels, 4, 2, 6, seed=[1, 4, 0])
    b = stratified_split(labels, 4, 2, 6, seed=[1, 4, 0])
    c = stratified_split(labels, 4, 2, 6, seed=[2, 4, 0])
    assert np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)
    assert not np.array_equal(np.sort(a.train), np.sort(c.train))


def test_too_few_names_the_short_classes():
    labels = _labels()
    with pytest.raises(TooFewSamples, match=r"needs 24 samples .*QPSK has 22") as err:
        stratified_split(labels, 20, 2, 2, seed=0, class_names=["BPSK", "16QAM", "64QAM", "QPSK"])
    assert "BPSK" not in str(err.value)


def test_a_class_missing_from_the_pool_is_reported():
    labels = np.repeat([0, 2], 10)
    with pytest.raises(TooFewSamples, match="b has 0"):
        stratified_split(labels, 2, 1, 1, seed=0, class_names=["a", "b", "c"])


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="n_train >= 1"):
        stratified_split(_labels(), 0, 1, 1, seed=0)


def test_split_refuses_overlap():
    with pytest.raises(ValueError, match="two splits"):
        Split(np.array([1, 2]), np.array([2]), np.array([3]))
