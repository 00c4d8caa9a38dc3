"""The classification scores every report of this package uses."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sklearn.metrics import f1_score


def macro_f1(truth, predicted, classes: Iterable[int]) -> float:
    """The mean F1 over `classes`. A prediction outside them (e.g. -1: no expert took the
    sample) counts against recall without adding a class; a class with neither true nor
    predicted samples scores 0. Pass every class of the task to score a classifier over its
    whole label set, or np.unique(truth) to score only the classes present."""
    return float(f1_score(truth, predicted, labels=np.asarray(list(classes)), average="macro", zero_division=0))
