"""Run configs: named JSON files (configs/<name>.json) with data paths and hyperparameters.

A config names the data, the views each part of the model reads (its input contract), the
architecture (model, router, heads) and one block of optimisation settings per stage;
`--set a.b=value` overrides any key from the command line. Relative paths are taken from
the directory the command runs in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from lwmspectro import labels
from lwmspectro.config_base import ConfigBase, bounded

from .model import WIDEBAND, EncoderConfig, HeadsConfig, RouterConfig

STAGES = ("pretrain", "finetune", "router", "heads")
CONTRASTIVE_LABELS = ("modulation", "snr_mobility")
ROUTER = "router"
"""The part of the model that is not an expert, as `RunConfig.views` names it."""


@dataclass(frozen=True)
class StageConfig(ConfigBase):
    """Optimisation of one stage; defaults are the paper's Table I."""

    epochs: int = bounded(100, 1, 100_000)
    patience: int = bounded(10, 0)
    batch_size: int = bounded(64, 1, 65_536)
    lr: float = bounded(5e-4, 0.0, 10.0)
    betas: tuple = (0.9, 0.999)
    weight_decay: float = bounded(0.05, 0.0)
    warmup_epochs: float = bounded(5.0, 0.0)
    min_lr: float = bounded(1e-8, 0.0)
    grad_clip: float | None = bounded(1.0, 0.0)
    max_train_samples: int | None = bounded(None, 1)
    max_val_samples: int | None = bounded(None, 1)
    max_steps: int | None = bounded(None, 1)
    checkpoint_every_steps: int = bounded(0, 0)
    lambda_recon: float = 1.0
    lambda_cont: float = 0.3
    contrastive_labels: tuple = ("modulation",)
    loss_weights: dict[str, float] = field(default_factory=dict)
    """The heads stage's weight of each task's loss in the sum it minimises and early stopping
    reads, 1 where not named; a task by the name its heads give its loss (`loss_terms`)."""
    absent_view_prob: float = bounded(0.25, 0.0, 1.0)
    """The share of training rows whose optional views (views of the past, which a short capture
    lacks) are taken as absent, so that the model learns windows with and without them."""
    keep_taken: bool = False
    """Under init_from: the parameters each expert took from the bundle stay as they are in this
    stage, so that only what they lacked (a new view's embedding; the view embedding) and the
    stage's own layers train, and a small corpus teaches the new view without wearing away what
    the bundle's experts learnt from a larger one."""

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if isinstance(self.contrastive_labels, str):
            raise ValueError(f"contrastive_labels must be a list, e.g. [{self.contrastive_labels!r}]")
        invalid = [name for name in self.contrastive_labels if name not in CONTRASTIVE_LABELS]
        if invalid or not self.contrastive_labels:
            raise ValueError(
                f"contrastive_labels {list(self.contrastive_labels)!r} is not valid; "
                f"valid: {', '.join(CONTRASTIVE_LABELS)} (one or more)"
            )
        if any(weight < 0 for weight in self.loss_weights.values()):
            raise ValueError(f"loss_weights must be >= 0, got {self.loss_weights}")
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "contrastive_labels", tuple(self.contrastive_labels))


@dataclass(frozen=True)
class DataConfig(ConfigBase):
    train: str = "data/train"
    val: str | None = None
    val_fraction: float = 0.1
    test: str | None = "data/heldout"
    router: str | None = None
    """A dataset of the router's own (the router stage trains on it, a seeded val_fraction of
    it validates): a corpus of the router's views alone costs a fraction of one of every view.
    `train` then holds the experts' views, and the views both hold must be the same. Null: the
    router trains on `train` as the experts do."""

    def __post_init__(self):
        if self.val is None and not 0.0 < self.val_fraction < 1.0:
            raise ValueError(
                f"data.val_fraction must lie in (0, 1) when data.val is not given, got {self.val_fraction}"
            )


@dataclass(frozen=True)
class LoaderConfig(ConfigBase):
    workers: int = bounded(2, 0, 256)
    threads: int | None = bounded(None, 1, 4096)
    eval_batch_size: int = bounded(128, 1, 65_536)


NORMALISATIONS = ("per_view", "per_row")


@dataclass(frozen=True)
class RunConfig(ConfigBase):
    name: str
    run_dir: str
    seed: int = 0
    device: str = "auto"
    compile: bool = True
    bf16: bool = True
    experts: tuple = labels.PROTOCOLS
    views: dict | None = None
    """The views each part reads, by part ("router" or an expert) and in order, named as the
    dataset stores them; a part not listed, and every part when null, reads G ("wideband") alone."""
    optional_views: tuple = ()
    """Views besides those of the past that a window may lack, each part taking a learnt
    'absent' embedding where it does: views added to the corpus's config after some of its
    shards were made (the manifest's `added_views`), which those shards lack. Live captures
    always have them."""
    normalisation: str = "per_view"
    """The pixel statistics folded in front of each trunk: one mean and std per view
    ("per_view"), or per row of each view ("per_row", for views whose rows hold different
    quantities)."""
    experts_from: str | None = None
    """A model bundle whose experts and heads (weights, pixel statistics, calibration data aside)
    the run takes as they are instead of training them: the stages then train the router alone,
    data.train and data.val only check the views and calibrate the heads, and the bundle's pixel
    statistics are the run's. Retrains the router of a shipped model on a corpus of its views."""
    router_from: str | None = None
    """A model bundle whose router (weights, pixel statistics of its views, calibration) the run
    takes as it is instead of training it: the router stage then does not run and data.router is
    not needed; the bundle gives the parameters of the views only the router reads, and those it
    shares with data.train must be the same. Retrains the experts of a shipped model on a corpus
    of their views and keeps its router."""
    init_from: str | None = None
    """A model bundle whose experts and heads start this run's, so that a shipped model's experts
    learn a new view on less data than they took from scratch. Each expert's pretraining starts from
    the bundle's expert (the encoder its heads read, so that the two start as a pair): every
    parameter of the same name and shape, a view's own ones only where the bundle's expert read
    that view under the same name with the same parameters, and those views' pixel statistics
    (the layers taken read them). Each heads stage starts from the bundle's heads. What the
    bundle's experts lack (a new view's embedding) starts fresh; the stages train as configured."""
    data: DataConfig = field(default_factory=DataConfig)
    model: EncoderConfig = field(default_factory=EncoderConfig)
    router: RouterConfig = field(default_factory=RouterConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    stages: dict = field(default_factory=lambda: {s: StageConfig() for s in STAGES})

    def __post_init__(self):
        labels.check_choice("normalisation", self.normalisation, NORMALISATIONS)
        if isinstance(self.experts, str):  # "wifi,lte", as `--set experts=wifi,lte` writes it
            object.__setattr__(self, "experts", tuple(e.strip() for e in self.experts.split(",") if e.strip()))
        if not self.experts:
            raise ValueError("experts: none named; list one or more of " + ", ".join(labels.PROTOCOLS))
        for expert in self.experts:
            labels.check_choice("expert", expert, labels.PROTOCOLS)
        object.__setattr__(self, "experts", tuple(self.experts))
        for part, names in (self.views or {}).items():
            labels.check_choice("views part", part, (ROUTER, *labels.PROTOCOLS))
            valid = isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names)
            if not valid or len(set(names)) != len(names):
                raise ValueError(f"views.{part}: {names!r} is not a non-empty list of view names, each once")
        if self.views is not None:
            object.__setattr__(self, "views", {part: list(names) for part, names in self.views.items()})
        names = self.optional_views
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"optional_views: {names!r} is not a list of view names")
        object.__setattr__(self, "optional_views", tuple(names))
        if self.experts_from and self.router_from:
            raise ValueError("experts_from and router_from together leave nothing to train; set one of them")
        if self.experts_from and self.init_from:
            raise ValueError("experts_from takes the experts as they are, init_from trains them; set one of them")

    def views_of(self, part: str) -> tuple[str, ...]:
        """The views `part` ("router" or an expert) reads, in order."""
        return tuple((self.views or {}).get(part, (WIDEBAND,)))

    @property
    def parts(self) -> tuple[str, ...]:
        return (ROUTER, *self.experts)

    @property
    def model_views(self) -> tuple[str, ...]:
        """Every view the model reads, in order of first use (router first): its input."""
        return tuple(dict.fromkeys(name for part in self.parts for name in self.views_of(part)))

    @property
    def reads_g_alone(self) -> bool:
        """Every part reads G alone: the model, graphs and card of before views."""
        return self.model_views == (WIDEBAND,)

    def stage(self, name: str) -> StageConfig:
        labels.check_choice("stage", name, STAGES)
        return self.stages[name]

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["experts"] = list(self.experts)
        return out

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> RunConfig:
        if not isinstance(values, dict):
            raise ValueError(f"{where}: a run config is a JSON object, not {type(values).__name__}")
        cls.check_keys(values, where)
        values = cls.check_values(values)
        if "name" not in values or "run_dir" not in values:
            raise ValueError(f"{where}: needs at least `name` and `run_dir`")
        sections = {
            "data": DataConfig,
            "loader": LoaderConfig,
            "model": EncoderConfig,
            "router": RouterConfig,
            "heads": HeadsConfig,
        }
        for key, section in sections.items():
            if key in values:
                values[key] = section.from_dict(values[key], key)
        stages = values.get("stages", {})
        not_sections = [s for s in stages if not isinstance(stages[s], dict)]
        if not_sections:
            raise ValueError(f"stages.{not_sections[0]}: {stages[not_sections[0]]!r} is not a section (an object)")
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise ValueError(f"config: unknown stages {sorted(unknown)}; valid: {', '.join(STAGES)}")
        values["stages"] = {s: StageConfig.from_dict(stages.get(s, {}), f"stages.{s}") for s in STAGES}
        return cls(**values)


def config_names(package: str = "lwmspectro_train") -> list[str]:
    """The named configs `package` ships in its configs folder."""
    folder = resources.files(package) / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def read_config(name_or_path: str, package: str = "lwmspectro_train") -> dict:
    """The JSON of a config named in `package`'s configs folder, or of a .json path."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        if path.is_dir():
            raise ValueError(f"config file {path} is a folder; give a .json file or a config name")
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        text = path.read_text()
    else:
        packaged = resources.files(package) / "configs" / f"{name_or_path}.json"
        if not packaged.is_file():
            raise ValueError(
                f"unknown config {name_or_path!r}; valid names: {', '.join(config_names(package))}, "
                "or a path to a .json file"
            )
        text = packaged.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"config {name_or_path}: not valid JSON ({err})") from err


def apply_overrides(values: dict, overrides) -> dict:
    """`key.sub=value` items, value parsed as JSON when it parses (numbers, null, lists), else a string."""
    values = json.loads(json.dumps(values))
    for item in overrides or ():
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. stages.pretrain.epochs=5")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {key}: {part} is not a section")
        node[leaf] = value
    return values


def load_config(name_or_path: str, overrides=()) -> RunConfig:
    return RunConfig.from_dict(apply_overrides(read_config(name_or_path), overrides))
