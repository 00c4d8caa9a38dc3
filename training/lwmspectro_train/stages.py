"""The training recipe: stage 1 pretrain, 1b contrastive fine-tune, 2 router, 3 heads.

A run directory holds every stage's checkpoints and logs::

    config.json  commands.jsonl  normalisation.json
    pretrain/<expert>/   finetune/<expert>/   router/   heads/<expert>/
        checkpoint.pt  best.pt  metrics.csv  metrics.json
    eval/metrics.json

Each stage starts from the best checkpoint of the stage before it. Each part (the router, each
expert) reads the views the config names for it (`RunConfig.views_of`); `build_model` is the
one builder of the model a config describes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lwmspectro import labels
from lwmspectro import views as view_registry
from lwmspectro.bundle import Bundle, load_bundle
from lwmspectro.fileio import atomic_write

from .config import ROUTER, RunConfig, StageConfig
from .data import CLASS_TARGETS, TARGETS, SpectrogramSet, batch_views, limit, normalisation_stats, split_indices
from .distributed import Context
from .model import (
    WIDEBAND,
    HeadsTraining,
    MaskedModelling,
    MixtureOfExperts,
    Router,
    RouterTraining,
    SpectrogramEncoder,
    TrainingObjective,
    build_heads,
    view_inputs,
)
from .trainer import BEST, Trainer, load_checkpoint

ARCHITECTURE_KEYS = (
    "model",
    "router",
    "heads",
    "experts",
    "views",
    "normalisation",
    "experts_from",
    "router_from",
    "init_from",
)
EXPERT_STAGES = ("pretrain", "finetune", "heads")
"""The stages that train the experts and their heads: none of them runs under experts_from."""


def _prefixed(state: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def build_part(cfg: RunConfig, part: str, view_params: Mapping[str, Any]) -> Router | SpectrogramEncoder:
    """The router (`part` "router") or an expert of `cfg`, fresh, reading its views; `view_params`
    gives the parameters of each view by name (a dataset's or a bundle's)."""
    shapes, optional, past = view_inputs(view_params, cfg.views_of(part), cfg.optional_views)
    if part == ROUTER:
        return Router(cfg.router, shapes, optional=optional, past=past)
    return SpectrogramEncoder(cfg.model, shapes, optional=optional, past=past)


def build_model(cfg: RunConfig, view_params: Mapping[str, Any]) -> MixtureOfExperts:
    """The deployed model `cfg` describes (router, experts, heads), with fresh weights."""
    experts = {name: build_part(cfg, name, view_params) for name in cfg.experts}
    heads = {name: build_heads(cfg.model.d_model, cfg.heads) for name in cfg.experts}
    return MixtureOfExperts(build_part(cfg, ROUTER, view_params), experts, heads)


def part_views(batch: dict, trunk) -> tuple:
    """The views of a loader batch that `trunk` reads, in its order."""
    views = batch_views(batch)
    return tuple(views[name] for name in trunk.view_names)


class EmbeddingSet(Dataset):
    """Cached expert embeddings with their targets, for heads over a frozen encoder; with
    `absent_embeddings` (made without the expert's optional views) each row carries both."""

    def __init__(self, embeddings: torch.Tensor, targets: Mapping[str, np.ndarray], absent_embeddings=None):
        self.embeddings = embeddings
        self.absent_embeddings = absent_embeddings
        self.targets = {name: torch.from_numpy(values) for name, values in targets.items()}

    def __len__(self) -> int:
        return len(self.embeddings)

    def __getitem__(self, i: int) -> dict:
        item = {"embedding": self.embeddings[i], **{name: values[i] for name, values in self.targets.items()}}
        if self.absent_embeddings is not None:
            item["absent_embedding"] = self.absent_embeddings[i]
        return item


def _source_weights(path: str, option: str, keys: Sequence[str]) -> tuple[Bundle, dict, RunConfig]:
    """The bundle at `path`, its torch twin (export.save_weights) and the config it was trained
    with; refused (naming `option`) when the twin lacks any of `keys`."""
    from .export import torch_weights_path

    bundle = load_bundle(path)
    weights_path = torch_weights_path(bundle)
    weights = torch.load(weights_path, map_location="cpu", weights_only=True)
    missing = [key for key in keys if key not in weights]
    if missing:
        raise ValueError(
            f"{option}: {weights_path} holds no {missing}; it needs a bundle of views with its torch weights"
        )
    return bundle, weights, RunConfig.from_dict({**weights["config"], "name": bundle.name}, f"{weights_path}: config")


def _refuse_other_view_params(
    option: str, bundle: Bundle, source_views: Mapping[str, Any], view_params: Mapping[str, Any], names
) -> None:
    """Refuse views `names` of a run that the bundle's parts read with other parameters."""
    differing = [
        name
        for name in dict.fromkeys(names)
        if name in view_params and source_views.get(name) != view_registry.view_to_dict(view_params[name])
    ]
    if differing:
        raise ValueError(
            f"{option}: {bundle.path} reads {', '.join(differing)} with other parameters than this run's data; "
            "generate the data with the bundle's views"
        )


@dataclass(frozen=True)
class ExpertsSource:
    """The experts and heads of a bundle that a run takes as they are (RunConfig.experts_from)."""

    bundle: Bundle
    weights: dict
    """The bundle's torch twin (export.save_weights): experts, foundation experts, heads, views."""

    @classmethod
    def load(cls, cfg: RunConfig) -> ExpertsSource:
        """The bundle cfg.experts_from names, refused unless its experts are those `cfg` describes."""
        assert cfg.experts_from is not None
        keys = ("config", "experts", "foundation_experts", "heads", "views")
        bundle, weights, source = _source_weights(cfg.experts_from, "experts_from", keys)
        differing = [key for key in ("model", "heads", "normalisation") if getattr(source, key) != getattr(cfg, key)]
        differing += [
            f"views.{e}" for e in cfg.experts if e not in source.experts or source.views_of(e) != cfg.views_of(e)
        ]
        if differing:
            raise ValueError(
                f"experts_from: the experts of {bundle.path} were built with another {', '.join(differing)}; "
                "take their model, heads, normalisation and views from the config they were trained with"
            )
        return cls(bundle, weights)

    def check_views(self, view_params: Mapping[str, Any], cfg: RunConfig) -> None:
        """Refuse views of this run that the experts read with other parameters than they were trained on."""
        names = [name for expert in cfg.experts for name in cfg.views_of(expert)]
        _refuse_other_view_params("experts_from", self.bundle, self.weights["views"], view_params, names)


@dataclass(frozen=True)
class InitSource:
    """The bundle whose experts and heads a run's start from (RunConfig.init_from)."""

    bundle: Bundle
    weights: dict
    """The bundle's torch twin (export.save_weights): experts, heads, views."""
    config: RunConfig
    """The config the bundle was trained with."""

    @classmethod
    def load(cls, cfg: RunConfig) -> InitSource:
        assert cfg.init_from is not None
        return cls(*_source_weights(cfg.init_from, "init_from", ("experts", "heads", "views")))

    def same_views(self, names: Sequence[str], view_params: Mapping[str, Any]) -> list[str]:
        """Those of `names` the bundle's model read with the parameters `view_params` gives them."""
        return [
            name for name in names if self.weights["views"].get(name) == view_registry.view_to_dict(view_params[name])
        ]

    def expert_state(
        self, expert: SpectrogramEncoder, name: str, view_params: Mapping[str, Any]
    ) -> tuple[dict[str, torch.Tensor], list[str]]:
        """The parameters of the bundle's expert `name` (the encoder its heads read) that `expert`
        (fresh) starts from, and the names of those it keeps fresh. A parameter is taken where its
        name and shape are the same and, when it belongs to one view, the bundle's expert read that
        view with the same parameters (the view embedding row by row, by view name); pixel
        statistics are not parameters to take (the run's normalisation holds the bundle's for
        those views)."""
        if name not in self.weights["experts"] or name not in self.config.experts:
            raise ValueError(f"init_from: {self.bundle.path} has no {name} expert to start from")
        source = self.weights["experts"][name]
        source_views = list(self.config.views_of(name))
        shared = [view for view in self.same_views(expert.view_names, view_params) if view in source_views]
        own = expert.state_dict()
        state = {}
        for key, value in own.items():
            kind, _, rest = key.partition(".")
            if kind in ("normalise", "view_embed") or key not in source or source[key].shape != value.shape:
                continue
            if kind in ("patch_embed", "pos_embed", "absent_embed") and rest.split(".")[0] not in shared:
                continue
            state[key] = source[key]
        if "view_embed" in own and "view_embed" in source and shared:
            rows = own["view_embed"].clone()
            for view in shared:
                rows[expert.view_names.index(view)] = source["view_embed"][source_views.index(view)]
            state["view_embed"] = rows
        fresh = [key for key in own if key not in state and not key.startswith("normalise.")]
        if "view_embed" in state and len(shared) < len(expert.view_names):
            fresh.append("view_embed rows of " + ", ".join(v for v in expert.view_names if v not in shared))
        return state, fresh

    def heads_state(self, cfg: RunConfig, name: str) -> dict[str, torch.Tensor]:
        """The bundle's heads of expert `name`, which the run's heads stage starts from: refused
        unless they are built as `cfg`'s."""
        source = self.config
        if source.heads != cfg.heads or source.model.d_model != cfg.model.d_model or name not in self.weights["heads"]:
            raise ValueError(
                f"init_from: the {name} heads of {self.bundle.path} are built otherwise than this run's "
                "(heads settings, d_model); take them from the config they were trained with"
            )
        return self.weights["heads"][name]


@dataclass(frozen=True)
class RouterSource:
    """The router of a bundle that a run takes as it is (RunConfig.router_from)."""

    bundle: Bundle
    weights: dict
    """The bundle's torch twin (export.save_weights): its router and the parameters of its views."""

    @classmethod
    def load(cls, cfg: RunConfig) -> RouterSource:
        """The bundle cfg.router_from names, refused unless its router is the one `cfg` describes."""
        assert cfg.router_from is not None
        bundle, weights, source = _source_weights(cfg.router_from, "router_from", ("config", "router", "views"))
        differing = [key for key in ("router", "normalisation") if getattr(source, key) != getattr(cfg, key)]
        if source.views_of(ROUTER) != cfg.views_of(ROUTER):
            differing.append(f"views.{ROUTER}")
        if differing:
            raise ValueError(
                f"router_from: the router of {bundle.path} was built with another {', '.join(differing)}; "
                "take its router settings, normalisation and views from the config it was trained with"
            )
        return cls(bundle, weights)

    @property
    def view_params(self) -> dict[str, Any]:
        """The parameters of each view the bundle's model reads (the router's among them), as it
        was trained on them."""
        return {
            name: view_registry.view_from_dict(values, f"router_from: {self.bundle.path}: views.{name}")
            for name, values in self.weights["views"].items()
        }

    def check_views(self, view_params: Mapping[str, Any], cfg: RunConfig) -> None:
        """Refuse views of this run's data that the router reads with other parameters than it was trained on."""
        _refuse_other_view_params("router_from", self.bundle, self.weights["views"], view_params, cfg.views_of(ROUTER))


class Run:
    """One run directory under one config: data, shared statistics and the stages."""

    def __init__(self, cfg: RunConfig, ctx: Context, progress: bool = True):
        self.cfg, self.ctx, self.progress = cfg, ctx, progress
        self.dir = Path(cfg.run_dir)
        self._sets = None
        self._router_sets = None
        self._stats = None
        self._experts_source: ExpertsSource | None = None
        self._router_source: RouterSource | None = None
        self._init_source: InitSource | None = None

    # --- shared pieces -----------------------------------------------------------------

    @property
    def experts_source(self) -> ExpertsSource | None:
        """The bundle the experts and heads are taken from (experts_from), None when trained here."""
        if self.cfg.experts_from and self._experts_source is None:
            source = ExpertsSource.load(self.cfg)
            source.check_views(self.view_params, self.cfg)
            self._experts_source = source
        return self._experts_source

    @property
    def router_source(self) -> RouterSource | None:
        """The bundle the router is taken from (router_from), None when trained here."""
        if self.cfg.router_from and self._router_source is None:
            source = RouterSource.load(self.cfg)
            source.check_views(self.datasets()[0].view_params, self.cfg)
            self._router_source = source
        return self._router_source

    @property
    def init_source(self) -> InitSource | None:
        """The bundle the experts and heads start from (init_from), None when they start fresh."""
        if self.cfg.init_from and self._init_source is None:
            self._init_source = InitSource.load(self.cfg)
        return self._init_source

    def stage_dir(self, stage: str, expert: str | None = None) -> Path:
        return self.dir / stage / expert if expert else self.dir / stage

    @property
    def stored_views(self) -> tuple[str, ...]:
        """The views the model reads besides G, which a dataset item carries under "views"."""
        return self._stored(self.cfg.parts)

    def _stored(self, parts: Sequence[str]) -> tuple[str, ...]:
        """The views `parts` read besides G, in order of first use."""
        return tuple(name for name in dict.fromkeys(n for p in parts for n in self.cfg.views_of(p)) if name != WIDEBAND)

    @property
    def train_views(self) -> tuple[str, ...]:
        """The views data.train must hold besides G: every part's, or the experts' alone when
        the router has a dataset of its own (data.router) or is taken from a bundle (router_from)."""
        return self._stored(self.cfg.experts if self.cfg.data.router or self.cfg.router_from else self.cfg.parts)

    @property
    def targets(self) -> tuple[str, ...]:
        return TARGETS if self.cfg.heads.outputs == "separate" else CLASS_TARGETS

    def open_set(self, folder, views: Sequence[str] | None = None) -> SpectrogramSet:
        """A dataset folder with the targets this run reads and `views` (default: every view the
        model reads)."""
        dataset = SpectrogramSet(folder, views=self.stored_views if views is None else views, targets=self.targets)
        undeclared = [name for name in dataset.partial_views if name not in self.cfg.optional_views]
        if undeclared:
            raise ValueError(
                f"{folder}: some shards lack the views {undeclared} (added to its config after they were made); "
                "list them under optional_views so that the model learns to do without them"
            )
        return dataset

    def check_same_views(self, other: SpectrogramSet, names: Sequence[str] | None = None) -> None:
        """Refuse `other` unless its G and the views `names` (default: every view the model
        reads) are those the model was trained on."""
        names = self.cfg.model_views if names is None else names
        refuse_other_views(
            other, self.datasets()[0].params, self.view_params, names, f"the training data ({self.cfg.data.train})"
        )

    def _split(self, dataset: SpectrogramSet) -> tuple[SpectrogramSet, SpectrogramSet]:
        """(train, val): `dataset` less a seeded data.val_fraction of it, and that fraction."""
        train_rows, val_rows = split_indices(len(dataset), self.cfg.data.val_fraction, self.cfg.seed)
        return dataset.subset(train_rows), dataset.subset(val_rows)

    def datasets(self) -> tuple[SpectrogramSet, SpectrogramSet]:
        """(train, val): data.val when given, else a seeded data.val_fraction of data.train."""
        if self._sets is None:
            train = self.open_set(self.cfg.data.train, self.train_views)
            self._check_same_training_set(train, self.cfg.data.train, "training_set.json")
            if self.cfg.data.val:
                val = self.open_set(self.cfg.data.val, self.train_views)
                refuse_other_views(val, train.params, train.view_params, self.train_views, str(train.folder))
                self._sets = (train, val)
            else:
                self._sets = self._split(train)
        return self._sets

    def router_sets(self) -> tuple[SpectrogramSet, SpectrogramSet]:
        """(train, val) of the router stage: a seeded data.val_fraction of data.router when the
        router has a dataset of its own, else datasets(). The views it shares with data.train
        must be the same."""
        if not self.cfg.data.router:
            return self.datasets()
        if self._router_sets is None:
            routed = self._stored((ROUTER,))
            train = self.open_set(self.cfg.data.router, routed)
            self._check_same_training_set(train, self.cfg.data.router, "router_set.json")
            main = self.datasets()[0]
            shared = [name for name in routed if name in main.view_params]
            refuse_other_views(train, main.params, main.view_params, shared, str(main.folder))
            self._router_sets = self._split(train)
        return self._router_sets

    def _check_same_training_set(self, train: SpectrogramSet, folder, record: str) -> None:
        """A run keeps the training sets it started on: a dataset grown since (`lwmspectro generate
        --n-samples`) would change the validation split and the pixel statistics under its
        checkpoints. The first use records the set's size in `record` (training_set.json, or
        router_set.json for data.router)."""
        path = self.dir / record
        current = {"folder": str(folder), "count": len(train)}
        if path.exists():
            try:
                recorded = json.loads(path.read_text())
                problem = None if isinstance(recorded, dict) else "not a JSON object"
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                recorded, problem = {}, f"not valid JSON ({err})"
            if problem is not None:
                raise ValueError(
                    f"{path}: {problem}; restore it, or delete it to adopt {current['count']} examples of "
                    f"{current['folder']}"
                )
            if recorded.get("count") != current["count"]:
                raise ValueError(
                    f"{self.dir} was started on {recorded.get('count')} examples of {recorded.get('folder')}, "
                    f"which now holds {current['count']}; use a new run_dir for the grown dataset"
                )
        elif self.ctx.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps(current) + "\n")

    @property
    def view_params(self) -> dict[str, Any]:
        """The parameters of each view the model reads, by name, as the training set holds them."""
        stored = dict(self.datasets()[0].view_params)
        if self.cfg.data.router:
            stored = {**self.router_sets()[0].view_params, **stored}
        elif self.router_source is not None:
            routed = self.router_source.view_params
            stored = {**{name: routed[name] for name in self.cfg.views_of(ROUTER)}, **stored}
        missing = [name for name in self.cfg.model_views if name not in stored]
        if missing:
            raise ValueError(f"no training dataset of this run holds the views {missing}")
        return {name: stored[name] for name in self.cfg.model_views}

    def normalisation(self) -> dict:
        """Pixel statistics of the training set (of each view the model reads), computed once per
        run and baked into every model."""
        if self._stats is None:
            path = self.dir / "normalisation.json"
            stats = None
            if self.ctx.is_main:
                if path.exists():
                    try:
                        stats = json.loads(path.read_text())
                    except (ValueError, UnicodeDecodeError) as err:
                        raise ValueError(
                            f"{path}: not readable JSON ({err}); delete it and it is computed again from the "
                            "training set"
                        ) from None
                else:
                    stats = self._fresh_stats()
                    self.dir.mkdir(parents=True, exist_ok=True)
                    atomic_write(path, json.dumps(stats, indent=1) + "\n")
            self._stats = self.ctx.broadcast_object(stats)
        return self._stats

    def _fresh_stats(self) -> dict:
        """normalisation() of a run that has none yet: each view's statistics from experts_from's
        bundle when it has them (the experts' are inside their weights, and the router shares
        them), else from data.train when it holds the view (so that the experts' stay those of
        their training data), else from the router's dataset or router_from's bundle; init_from's
        bundle gives those of the views it read with the same parameters."""
        per_row = self.cfg.normalisation == "per_row"
        if self.experts_source is not None:
            card = self.experts_source.bundle.normalisation
            stats = {key: value for key, value in card.items() if key != "applied"}
        elif self.cfg.reads_g_alone:
            return normalisation_stats(self.datasets()[0], seed=self.cfg.seed, per_row=per_row)
        else:
            held = (WIDEBAND, *self.train_views)
            own = [name for name in self.cfg.model_views if name in held]
            stats = normalisation_stats(self.datasets()[0], seed=self.cfg.seed, views=own, per_row=per_row)
        if self.init_source is not None:
            # The layers taken from the bundle read its pixel statistics: keep them for its views.
            card = self.init_source.bundle.normalisation["views"]
            same = self.init_source.same_views(self.cfg.model_views, self.view_params)
            stats["views"] |= {name: card[name] for name in same}
        rest = [name for name in self.cfg.model_views if name not in stats["views"]]
        if rest and self.router_source is not None:
            card = self.router_source.bundle.normalisation["views"]
            stats["views"] = {**stats["views"], **{name: card[name] for name in rest}}
        elif rest:
            routed = normalisation_stats(self.router_sets()[0], seed=self.cfg.seed, views=rest, per_row=per_row)
            stats["views"] = {**stats["views"], **routed["views"]}
        return stats

    def new_part(self, part: str) -> Router | SpectrogramEncoder:
        """The router or an expert, fresh, with the training set's statistics."""
        trunk = build_part(self.cfg, part, self.view_params)
        trunk.set_normalisation(self.normalisation())
        return trunk

    def started_part(self, expert: str) -> SpectrogramEncoder:
        """An expert as pretraining starts it: fresh, or from init_from's expert."""
        trunk = self.new_part(expert)
        if self.init_source is not None:
            state, fresh = self.init_source.expert_state(trunk, expert, self.view_params)
            trunk.load_state_dict(state, strict=False)
            if self.ctx.is_main:
                print(
                    f"pretrain/{expert}: {len(state)} parameters from {self.cfg.init_from} (init_from), "
                    f"fresh: {', '.join(fresh) or 'none'}"
                )
        return trunk

    def _keep_taken(self, encoder: SpectrogramEncoder, expert: str, stage: StageConfig) -> None:
        """Freeze the parameters `expert` took from init_from when `stage` keeps them (keep_taken)."""
        if self.init_source is None or not stage.keep_taken:
            return
        taken = set(self.init_source.expert_state(encoder, expert, self.view_params)[0]) - {"view_embed"}
        for name, param in encoder.named_parameters():
            if name in taken:
                param.requires_grad_(False)

    def _rows(self, dataset: SpectrogramSet, protocol: str | None, max_count: int | None, salt: int) -> SpectrogramSet:
        rows = np.arange(len(dataset))
        if protocol is not None:
            rows = rows[dataset.target("protocol") == labels.ROUTER_CLASSES.index(protocol)]
            if len(rows) == 0:
                raise ValueError(
                    f"{dataset.folder} holds no {protocol} spectrograms; the {protocol} expert "
                    f"needs some (or leave {protocol} out of `experts`)"
                )
        return dataset.subset(limit(rows, max_count, self.cfg.seed + salt))

    def stage_sets(self, stage: StageConfig, protocol: str | None = None) -> tuple[SpectrogramSet, SpectrogramSet]:
        """The rows a stage trains and validates on, `protocol`'s alone for an expert's (None: the
        router's), each loading only the views that part reads."""
        train, val = self.datasets() if protocol is not None else self.router_sets()
        salt = 0 if protocol is None else 1 + labels.PROTOCOLS.index(protocol)
        views = self.cfg.views_of(ROUTER if protocol is None else protocol)
        return (
            self._rows(train, protocol, stage.max_train_samples, salt).reading(views),
            self._rows(val, protocol, stage.max_val_samples, salt).reading(views),
        )

    def _trainer(
        self,
        name: str,
        folder: Path,
        module: TrainingObjective,
        train_set,
        val_set,
        inputs,
        stage: StageConfig,
        balance=None,
        workers: int | None = None,
    ) -> Trainer:
        return Trainer(
            name,
            folder,
            module,
            train_set,
            val_set,
            inputs,
            stage,
            self.ctx,
            seed=self.cfg.seed,
            workers=self.cfg.loader.workers if workers is None else workers,
            eval_batch_size=self.cfg.loader.eval_batch_size,
            balance=balance,
            compile=self.cfg.compile,
            bf16=self.cfg.bf16,
            progress=self.progress,
        )

    def _seed(self, salt: int) -> None:
        """Same initial weights on every rank and on every rerun of a stage."""
        torch.manual_seed(self.cfg.seed * 100 + salt)

    # --- stages --------------------------------------------------------------------------

    def pretrain(self, expert: str, resume: bool = False) -> dict:
        """Stage 1: masked spectrogram modelling on this protocol's spectrograms only (Eq. 21)."""
        stage = self.cfg.stage("pretrain")
        train_set, val_set = self.stage_sets(stage, expert)
        self._seed(1 + labels.PROTOCOLS.index(expert))
        module = MaskedModelling(
            self.started_part(expert), lambda_recon=1.0, lambda_cont=0.0, absent_prob=stage.absent_view_prob
        )
        self._keep_taken(module.encoder, expert, stage)
        return self._trainer(
            f"pretrain/{expert}",
            self.stage_dir("pretrain", expert),
            module,
            train_set,
            val_set,
            lambda b, g: {"views": part_views(b, module.encoder), "generator": g},
            stage,
        ).fit(resume)

    def finetune(self, expert: str, resume: bool = False) -> dict:
        """Stage 1b: lambda_recon * recon + lambda_cont * supervised contrastive (Eq. 22).

        `contrastive_labels` lists the label sets the embedding is to be ordered by, each
        with its own Eq. 19 term: modulation (the paper's Fig. 5 task) and the joint
        SNR x mobility class (Table II's task) are the two the heads read."""
        stage = self.cfg.stage("finetune")
        train_set, val_set = self.stage_sets(stage, expert)
        self._seed(11 + labels.PROTOCOLS.index(expert))
        module = MaskedModelling(
            self.new_part(expert),
            stage.lambda_recon,
            stage.lambda_cont,
            n_label_sets=len(stage.contrastive_labels),
            absent_prob=stage.absent_view_prob,
        )
        pretrained = load_checkpoint(self.stage_dir("pretrain", expert) / BEST)["model"]
        module.encoder.load_state_dict(_prefixed(pretrained, "encoder."))
        module.decoder.load_state_dict(_prefixed(pretrained, "decoder."))
        self._keep_taken(module.encoder, expert, stage)
        names = stage.contrastive_labels
        return self._trainer(
            f"finetune/{expert}",
            self.stage_dir("finetune", expert),
            module,
            train_set,
            val_set,
            lambda b, g: {
                "views": part_views(b, module.encoder),
                "contrastive_targets": torch.stack([b[n] for n in names], dim=1),
                "generator": g,
            },
            stage,
        ).fit(resume)

    def router(self, resume: bool = False) -> dict:
        """Stage 2: the router on a class-balanced mix of every protocol plus `none`/`other`.

        It reads its own views, not the experts' outputs, so the experts stay frozen by
        construction: nothing of theirs is loaded or updated here."""
        stage = self.cfg.stage("router")
        train_set, val_set = self.stage_sets(stage)
        self._seed(21)
        module = RouterTraining(self.new_part(ROUTER), absent_prob=stage.absent_view_prob)
        return self._trainer(
            "router",
            self.stage_dir("router"),
            module,
            train_set,
            val_set,
            lambda b, g: {"views": part_views(b, module.router), "protocol": b["protocol"]},
            stage,
            balance=train_set.target("protocol"),
        ).fit(resume)

    def trained_encoder(self, expert: str) -> SpectrogramEncoder:
        """The expert after stage 1b (what the heads stage starts from), or as experts_from's
        foundation stages left it."""
        encoder = self.new_part(expert)
        if self.experts_source is not None:
            encoder.load_state_dict(self.experts_source.weights["foundation_experts"][expert])
            return encoder
        encoder.load_state_dict(
            _prefixed(load_checkpoint(self.stage_dir("finetune", expert) / BEST)["model"], "encoder.")
        )
        return encoder

    @torch.no_grad()
    def embed(
        self, encoder: SpectrogramEncoder, dataset: SpectrogramSet, without_optional: bool = False
    ) -> torch.Tensor:
        """Embeddings of every row of `dataset` (`without_optional`: as if the window lacked the
        encoder's optional views); under DDP each rank embeds every world_size-th row and the
        parts are gathered, so every rank ends with the whole (n, d) tensor."""
        encoder = encoder.to(self.ctx.device).eval()
        rows = np.arange(self.ctx.rank, len(dataset), self.ctx.world_size)
        loader = DataLoader(
            dataset.subset(rows), batch_size=self.cfg.loader.eval_batch_size, num_workers=self.cfg.loader.workers
        )

        def embedding(batch):
            views = tuple(x.to(self.ctx.device) for x in part_views(batch, encoder))
            absent = None
            if without_optional:
                absent = {
                    name: torch.ones(len(views[0]), dtype=torch.bool, device=self.ctx.device)
                    for name in encoder.optional
                }
            return encoder.embed(views, absent).float().cpu()

        part = torch.cat([embedding(b) for b in loader]) if len(rows) else torch.zeros(0, encoder.cfg.d_model)
        parts = self.ctx.all_gather_object(part)
        out = torch.empty(len(dataset), encoder.cfg.d_model)
        for rank, chunk in enumerate(parts):
            out[rank :: self.ctx.world_size] = chunk
        return out

    def heads(self, expert: str, resume: bool = False) -> dict:
        """Stage 3: the heads (modulation and SNR x mobility, or modulation, SNR, mobility and
        Doppler) on this expert's embedding, encoder frozen ("lwm": embeddings computed once,
        heads trained on the cache) or fine-tuned at encoder_lr_scale times the heads' rate
        ("lwm_ft")."""
        stage = self.cfg.stage("heads")
        train_set, val_set = self.stage_sets(stage, expert)
        encoder = self.trained_encoder(expert)
        self._seed(31 + labels.PROTOCOLS.index(expert))
        heads = build_heads(self.cfg.model.d_model, self.cfg.heads)
        if self.init_source is not None:
            heads.load_state_dict(self.init_source.heads_state(self.cfg, expert))
        frozen = self.cfg.heads.mode == "lwm"

        def inputs(b, g):
            out = {"inputs": b["embedding"] if frozen else part_views(b, encoder)}
            if "absent_embedding" in b:
                out["absent_inputs"] = b["absent_embedding"]
            return out | {name: b[name] for name in heads.targets}

        if frozen:

            def cached(s: SpectrogramSet, with_absent: bool) -> EmbeddingSet:
                absent = self.embed(encoder, s, without_optional=True) if with_absent else None
                return EmbeddingSet(self.embed(encoder, s), {t: s.target(t) for t in heads.targets}, absent)

            with_absent = bool(encoder.optional) and stage.absent_view_prob > 0
            train_set, val_set = cached(train_set, with_absent), cached(val_set, False)
            module = HeadsTraining(heads, absent_prob=stage.absent_view_prob, loss_weights=stage.loss_weights)
            workers = 0
        else:
            self._keep_taken(encoder, expert, stage)
            module = HeadsTraining(
                heads, encoder, self.cfg.heads.encoder_lr_scale, stage.absent_view_prob, stage.loss_weights
            )
            workers = None
        return self._trainer(
            f"heads/{expert}",
            self.stage_dir("heads", expert),
            module,
            train_set,
            val_set,
            inputs,
            stage,
            workers=workers,
        ).fit(resume)

    # --- the deployed model ---------------------------------------------------------------

    def mixture_of_experts(self) -> MixtureOfExperts:
        """Router + experts + heads from the run's best checkpoints (the experts and heads as
        experts_from has them, the router as router_from has it, when set)."""
        router = self.new_part(ROUTER)
        if self.router_source is not None:
            router.load_state_dict(self.router_source.weights["router"])
        else:
            router.load_state_dict(_prefixed(load_checkpoint(self.stage_dir("router") / BEST)["model"], "router."))
        experts, heads = {}, {}
        source = self.experts_source
        for expert in self.cfg.experts:
            if source is not None:
                experts[expert] = self.new_part(expert)
                experts[expert].load_state_dict(source.weights["experts"][expert])
                heads[expert] = build_heads(self.cfg.model.d_model, self.cfg.heads)
                heads[expert].load_state_dict(source.weights["heads"][expert])
                continue
            state = load_checkpoint(self.stage_dir("heads", expert) / BEST)["model"]
            encoder = self.trained_encoder(expert)
            if self.cfg.heads.mode == "lwm_ft":
                encoder.load_state_dict(_prefixed(state, "encoder."))
            head = build_heads(self.cfg.model.d_model, self.cfg.heads)
            head.load_state_dict(_prefixed(state, "heads."))
            experts[expert], heads[expert] = encoder, head
        return MixtureOfExperts(router, experts, heads).eval()


def refuse_other_views(
    other: SpectrogramSet, params, view_params: Mapping[str, Any], names: Sequence[str], reference: str
) -> None:
    """Refuse `other` unless its G is `params` and its views `names` are those of `view_params`
    (`reference` names where those come from)."""
    differing = [name for name in names if other.view_params[name] != view_params[name]]
    if other.params != params or differing:
        raise ValueError(
            f"{other.folder} was made with other parameters of {', '.join(differing) or 'G'} than "
            f"{reference}; both must use the same views"
        )


def check_compatible(saved: dict, new: dict, where: str) -> None:
    """A run directory keeps one architecture and training set; optimisation may change.
    Both configs are compared with every default filled in, so that a key added since `saved`
    was written (at its default) is no difference."""
    try:
        saved = RunConfig.from_dict(saved, where).to_dict()
        new = RunConfig.from_dict(new, where).to_dict()
    except ValueError as err:
        raise ValueError(f"{where}/config.json is not a config this version reads ({err}); use a new run_dir") from err
    differing = [k for k in ARCHITECTURE_KEYS if saved.get(k) != new.get(k)]
    for key in ("train", "router"):
        if saved.get("data", {}).get(key) != new.get("data", {}).get(key):
            differing.append(f"data.{key}")
    if differing:
        raise ValueError(
            f"{where} was started with another {', '.join(differing)}; "
            "use a new run_dir for a different architecture or training set"
        )
