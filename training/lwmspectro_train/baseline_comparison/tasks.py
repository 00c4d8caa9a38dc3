"""The three downstream tasks of the paper (Sec. V) and the presets that size the runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lwmspectro import labels

from .baselines import BASELINES
from .fit import TrainSettings

LWM = "LWM"
LWM_FT = "LWM_FT"
MOE = "MoE"
LWM_MODELS = (LWM_FT, LWM, MOE)
DISPLAY_NAMES = {LWM: "LWM", LWM_FT: "LWM_FT", MOE: "MoE-Router (3 experts)"}


@dataclass(frozen=True)
class TaskSpec:
    """One downstream task: which held-out samples, which label, which LWM models.

    `split_seed` enters the seed of every split of the task, so that a task's splits do not
    depend on which other tasks exist."""

    key: str
    title: str
    protocols: tuple
    target: str
    expert: str | None
    lwm_models: tuple
    split_seed: int

    def class_names(self) -> list[str]:
        """Modulation: those the task's protocols carry (`labels.ALLOWED_MODULATIONS`), in the
        canonical order; SNR x mobility: every joint class."""
        if self.target == "modulation":
            return [m for m in labels.MODULATIONS if any(m in labels.ALLOWED_MODULATIONS[p] for p in self.protocols)]
        return [f"{snr:+d} dB {mob}" for snr, mob in labels.SNR_MOBILITY_CLASSES]

    def label(self, row: dict) -> int:
        if self.target == "modulation":
            return self.class_names().index(row["modulation"])
        return labels.snr_mobility_index(row["snr_db"], row["mobility"])


PROTOCOL_NAMES = {"wifi": "WiFi", "lte": "LTE", "nr": "5G NR"}


def _modulation_task(protocol: str, split_seed: int) -> TaskSpec:
    """Task 1 on one protocol through that protocol's expert: the modulations it carries."""
    n_classes = len(labels.ALLOWED_MODULATIONS[protocol])
    return TaskSpec(
        f"task1_{protocol}",
        f"Task 1: modulation classification ({PROTOCOL_NAMES[protocol]}, {n_classes} classes)",
        (protocol,),
        "modulation",
        protocol,
        (LWM, LWM_FT),
        split_seed,
    )


TASKS = {
    # Task 1 per protocol, each through its own expert: WiFi carries all five modulations
    # (BPSK from 802.11a/g), LTE and NR QPSK..256QAM. WiFi keeps the split seed of the Task 1
    # of WiFi alone that came before, Tasks 2 and 3 theirs.
    "task1_wifi": _modulation_task("wifi", 0),
    "task1_lte": _modulation_task("lte", 3),
    "task1_nr": _modulation_task("nr", 4),
    "task2": TaskSpec(
        "task2", "Task 2: joint SNR x mobility classification (LTE)", ("lte",), "snr_mobility", "lte", (LWM_FT, LWM), 1
    ),
    # Mixed protocols: the router picks one expert per input (top-1 over the experts) and
    # one head classifies the modulation from the routed embedding.
    "task3": TaskSpec(
        "task3",
        "Task 3: modulation on mixed WiFi / LTE / 5G NR through the router",
        ("wifi", "lte", "nr"),
        "modulation",
        None,
        (MOE,),
        2,
    ),
}


@dataclass(frozen=True)
class Preset:
    """How big a run is: labelled counts per class, seeds, models, test size, optimisation."""

    name: str
    n_per_class: dict
    seeds: tuple
    baselines: dict
    baseline_width: float
    test_per_class: int
    max_val_per_class: int
    tsne_samples: int
    settings: TrainSettings = field(default_factory=TrainSettings)

    def val_per_class(self, n: int) -> int:
        """Validation samples per class for early stopping: a quarter of N, at least 2."""
        return int(min(max(2, round(n / 4)), self.max_val_per_class))

    def models(self, task: str) -> tuple:
        return TASKS[task].lwm_models + tuple(self.baselines[task])


ALL_BASELINES = tuple(BASELINES)
TASK1 = tuple(key for key in TASKS if key.startswith("task1_"))

PRESETS = {
    # The paper's grid (Fig. 5, Tables II and III), five seeds, published baseline sizes;
    # Fig. 5's Task 1 grid on each protocol.
    "full": Preset(
        name="full",
        n_per_class={
            **dict.fromkeys(TASK1, (2, 4, 8, 16, 32, 64, 128, 256)),
            "task2": (5, 10, 20, 50, 100, 200, 400),
            "task3": (100, 200, 400, 800, 1600, 3200),
        },
        seeds=(0, 1, 2, 3, 4),
        baselines={**dict.fromkeys(TASK1, ALL_BASELINES), "task2": ALL_BASELINES, "task3": ("deep_cnn", "resnet18")},
        baseline_width=1.0,
        test_per_class=100,
        max_val_per_class=64,
        tsne_samples=1500,
    ),
    # Sized to finish on two CPU cores in about 30 minutes and to fit a 3000-sample held-out
    # set (its rarest joint SNR x mobility class has about 30 LTE samples): fewer points of
    # each grid, three seeds, two baselines per task at half width (STFT-CNN and R-18 from
    # Fig. 5 on Task 1, Table III's Deep CNN and R-18 on Tasks 2 and 3), 15 test samples per
    # class and patience 2. Task 1 runs on three protocols, so its largest N is 16 (an N = 32
    # trial takes about twice the updates of an N = 16 one).
    "quick": Preset(
        name="quick",
        n_per_class={**dict.fromkeys(TASK1, (2, 8, 16)), "task2": (5, 10), "task3": (10, 100)},
        seeds=(0, 1, 2),
        baselines={
            **dict.fromkeys(TASK1, ("wu_cnn", "resnet18")),
            "task2": ("deep_cnn", "resnet18"),
            "task3": ("deep_cnn", "resnet18"),
        },
        baseline_width=0.5,
        test_per_class=15,
        max_val_per_class=8,
        tsne_samples=400,
        settings=TrainSettings(epochs=8, patience=2, batch_size=8),
    ),
}


def task_pool(spec: TaskSpec, rows: list, scenario: str) -> np.ndarray:
    """Indices of the dataset rows that belong to the task: the held-out scenario, the
    task's protocols, a labelled modulation (negatives `none` / `other` are left out)."""
    return np.asarray(
        [
            i
            for i, row in enumerate(rows)
            if row.get("scenario") == scenario
            and row.get("protocol") in spec.protocols
            and row.get("modulation") in labels.MODULATIONS
        ],
        np.int64,
    )


def present_classes(spec: TaskSpec, rows: list, pool: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Class index per pool sample, renumbered over the classes the pool holds (in the
    canonical order), and those classes' names."""
    full = np.asarray([spec.label(rows[i]) for i in pool], np.int64)
    present = np.unique(full)
    names = spec.class_names()
    remap = np.full(len(names), -1, np.int64)
    remap[present] = np.arange(len(present))
    return remap[full], [names[c] for c in present]
