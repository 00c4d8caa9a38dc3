"""Stratified train / val / test splits drawn per trial.

Every model of a trial sees the same split, so the comparison is side by side; the split
depends only on the task, the labelled count N and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class TooFewSamples(ValueError):
    """A class holds fewer samples than the split asks for."""


@dataclass(frozen=True)
class Split:
    """Indices into the task's sample pool."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def __post_init__(self):
        for name, part in (("train", self.train), ("val", self.val), ("test", self.test)):
            if len(np.unique(part)) != len(part):
                raise ValueError(f"split {name} repeats a sample")
        if (
            np.intersect1d(self.train, self.val).size
            or np.intersect1d(self.train, self.test).size
            or np.intersect1d(self.val, self.test).size
        ):
            raise ValueError("a sample appears in two splits")


def class_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(labels, np.int64), minlength=n_classes)


def stratified_split(labels, n_train: int, n_val: int, n_test: int, seed, class_names=None) -> Split:
    """Exactly `n_train`, `n_val` and `n_test` samples of every class, disjoint, drawn at random.

    `labels` holds one class index per pool sample; every class from 0 to max(label)
    (or to len(class_names) - 1) must be able to supply n_train + n_val + n_test samples,
    otherwise TooFewSamples names the classes short of samples and how many they have.
    `seed` is anything numpy's default_rng accepts (an int or a list of ints).
    """
    labels = np.asarray(labels, np.int64)
    if min(n_train, n_val, n_test) < 0 or n_train < 1:
        raise ValueError(f"need n_train >= 1 and n_val, n_test >= 0; got {n_train}, {n_val}, {n_test}")
    n_classes = len(class_names) if class_names is not None else int(labels.max(initial=-1)) + 1
    if n_classes == 0:
        raise TooFewSamples("the sample pool is empty")
    need = n_train + n_val + n_test
    counts = class_counts(labels, n_classes)
    short = [c for c in range(n_classes) if counts[c] < need]
    if short:
        names = class_names or [str(c) for c in range(n_classes)]
        listing = ", ".join(f"{names[c]} has {counts[c]}" for c in short)
        raise TooFewSamples(
            f"each class needs {need} samples ({n_train} train + {n_val} val + {n_test} test): {listing}"
        )
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for c in range(n_classes):
        members = rng.permutation(np.flatnonzero(labels == c))[:need]
        parts[0].append(members[:n_train])
        parts[1].append(members[n_train : n_train + n_val])
        parts[2].append(members[n_train + n_val :])
    train, val, test = (rng.permutation(np.concatenate(p)) for p in parts)
    return Split(train, val, test)
