"""The training recipe: stage 1 pretrain, 1b contrastive fine-tune, 2 router, 3 heads.

A run directory holds every stage's checkpoints and logs::

    config.json  commands.jsonl  normalisation.json
    pretrain/<expert>/   finetune/<expert>/   router/   heads/<expert>/
        checkpoint.pt  best.pt  metrics.csv  metrics.json
    eval/metrics.json

Each stage starts from the best checkpoint of the stage before it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lwmspectro import labels
from lwmspectro.fileio import atomic_write

from .config import RunConfig, StageConfig
from .data import SpectrogramSet, limit, normalisation_stats, split_indices
from .distributed import Context
from .model import (
    HeadsTraining,
    MaskedModelling,
    MixtureOfExperts,
    Router,
    RouterTraining,
    SpectrogramEncoder,
    TaskHeads,
    TrainingObjective,
)
from .trainer import BEST, Trainer, load_checkpoint

ARCHITECTURE_KEYS = ("model", "router", "heads", "experts")


def _prefixed(state: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


class EmbeddingSet(Dataset):
    """Cached expert embeddings with their targets, for heads over a frozen encoder."""

    def __init__(self, embeddings: torch.Tensor, modulation: np.ndarray, snr_mobility: np.ndarray):
        self.embeddings = embeddings
        self.modulation = torch.from_numpy(modulation)
        self.snr_mobility = torch.from_numpy(snr_mobility)

    def __len__(self) -> int:
        return len(self.embeddings)

    def __getitem__(self, i: int) -> dict:
        return {"embedding": self.embeddings[i], "modulation": self.modulation[i], "snr_mobility": self.snr_mobility[i]}


class Run:
    """One run directory under one config: data, shared statistics and the stages."""

    def __init__(self, cfg: RunConfig, ctx: Context, progress: bool = True):
        self.cfg, self.ctx, self.progress = cfg, ctx, progress
        self.dir = Path(cfg.run_dir)
        self._sets = None
        self._stats = None

    # --- shared pieces -----------------------------------------------------------------

    def stage_dir(self, stage: str, expert: str | None = None) -> Path:
        return self.dir / stage / expert if expert else self.dir / stage

    def datasets(self) -> tuple[SpectrogramSet, SpectrogramSet]:
        """(train, val): data.val when given, else a seeded data.val_fraction of data.train."""
        if self._sets is None:
            train = SpectrogramSet(self.cfg.data.train)
            if self.cfg.data.val:
                val = SpectrogramSet(self.cfg.data.val)
                if val.params != train.params:
                    raise ValueError(
                        f"{self.cfg.data.val} was made with other spectrogram parameters than "
                        f"{self.cfg.data.train}; both must use the same G"
                    )
            else:
                train_rows, val_rows = split_indices(len(train), self.cfg.data.val_fraction, self.cfg.seed)
                train, val = train.subset(train_rows), train.subset(val_rows)
            self._sets = (train, val)
        return self._sets

    @property
    def input_shape(self) -> tuple[int, int]:
        return self.datasets()[0].params.shape

    def normalisation(self) -> dict:
        """Pixel statistics of the training set, computed once per run and baked into every model."""
        if self._stats is None:
            path = self.dir / "normalisation.json"
            stats = None
            if self.ctx.is_main:
                if path.exists():
                    stats = json.loads(path.read_text())
                else:
                    stats = normalisation_stats(self.datasets()[0], seed=self.cfg.seed)
                    self.dir.mkdir(parents=True, exist_ok=True)
                    atomic_write(path, json.dumps(stats, indent=1) + "\n")
            self._stats = self.ctx.broadcast_object(stats)
        return self._stats

    def new_encoder(self) -> SpectrogramEncoder:
        encoder = SpectrogramEncoder(self.cfg.model, self.input_shape)
        stats = self.normalisation()
        encoder.normalise.set(stats["mean"], stats["std"])
        return encoder

    def new_router(self) -> Router:
        router = Router(self.cfg.router, self.input_shape)
        stats = self.normalisation()
        router.normalise.set(stats["mean"], stats["std"])
        return router

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
        train, val = self.datasets()
        salt = 0 if protocol is None else 1 + labels.PROTOCOLS.index(protocol)
        return (
            self._rows(train, protocol, stage.max_train_samples, salt),
            self._rows(val, protocol, stage.max_val_samples, salt),
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
        module = MaskedModelling(self.new_encoder(), lambda_recon=1.0, lambda_cont=0.0)
        return self._trainer(
            f"pretrain/{expert}",
            self.stage_dir("pretrain", expert),
            module,
            train_set,
            val_set,
            lambda b, g: {"spectrogram": b["spectrogram"], "generator": g},
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
            self.new_encoder(), stage.lambda_recon, stage.lambda_cont, n_label_sets=len(stage.contrastive_labels)
        )
        pretrained = load_checkpoint(self.stage_dir("pretrain", expert) / BEST)["model"]
        module.encoder.load_state_dict(_prefixed(pretrained, "encoder."))
        module.decoder.load_state_dict(_prefixed(pretrained, "decoder."))
        names = stage.contrastive_labels
        return self._trainer(
            f"finetune/{expert}",
            self.stage_dir("finetune", expert),
            module,
            train_set,
            val_set,
            lambda b, g: {
                "spectrogram": b["spectrogram"],
                "contrastive_targets": torch.stack([b[n] for n in names], dim=1),
                "generator": g,
            },
            stage,
        ).fit(resume)

    def router(self, resume: bool = False) -> dict:
        """Stage 2: the router on a class-balanced mix of every protocol plus `none`/`other`.

        It reads the spectrogram, not the experts' outputs, so the experts stay frozen by
        construction: nothing of theirs is loaded or updated here."""
        stage = self.cfg.stage("router")
        train_set, val_set = self.stage_sets(stage)
        self._seed(21)
        module = RouterTraining(self.new_router())
        return self._trainer(
            "router",
            self.stage_dir("router"),
            module,
            train_set,
            val_set,
            lambda b, g: {"spectrogram": b["spectrogram"], "protocol": b["protocol"]},
            stage,
            balance=train_set.target("protocol"),
        ).fit(resume)

    def trained_encoder(self, expert: str) -> SpectrogramEncoder:
        """The expert after stage 1b (what the heads stage starts from)."""
        encoder = self.new_encoder()
        encoder.load_state_dict(
            _prefixed(load_checkpoint(self.stage_dir("finetune", expert) / BEST)["model"], "encoder.")
        )
        return encoder

    @torch.no_grad()
    def embed(self, encoder: SpectrogramEncoder, dataset: SpectrogramSet) -> torch.Tensor:
        """Embeddings of every row of `dataset`; under DDP each rank embeds every world_size-th
        row and the parts are gathered, so every rank ends with the whole (n, d) tensor."""
        encoder = encoder.to(self.ctx.device).eval()
        rows = np.arange(self.ctx.rank, len(dataset), self.ctx.world_size)
        loader = DataLoader(
            dataset.subset(rows), batch_size=self.cfg.loader.eval_batch_size, num_workers=self.cfg.loader.workers
        )
        part = (
            torch.cat([encoder(b["spectrogram"].to(self.ctx.device)).float().cpu() for b in loader])
            if len(rows)
            else torch.zeros(0, encoder.cfg.d_model)
        )
        parts = self.ctx.all_gather_object(part)
        out = torch.empty(len(dataset), encoder.cfg.d_model)
        for rank, chunk in enumerate(parts):
            out[rank :: self.ctx.world_size] = chunk
        return out

    def heads(self, expert: str, resume: bool = False) -> dict:
        """Stage 3: modulation and SNR x mobility heads on this expert's embedding, encoder
        frozen ("lwm": embeddings computed once, heads trained on the cache) or fine-tuned
        at encoder_lr_scale times the heads' rate ("lwm_ft")."""
        stage = self.cfg.stage("heads")
        train_set, val_set = self.stage_sets(stage, expert)
        encoder = self.trained_encoder(expert)
        self._seed(31 + labels.PROTOCOLS.index(expert))
        heads = TaskHeads(self.cfg.model.d_model, self.cfg.heads)
        key = "embedding" if self.cfg.heads.mode == "lwm" else "spectrogram"

        def inputs(b, g):
            return {"inputs": b[key], "modulation": b["modulation"], "snr_mobility": b["snr_mobility"]}

        if self.cfg.heads.mode == "lwm":
            train_set, val_set = (
                EmbeddingSet(self.embed(encoder, s), s.target("modulation"), s.target("snr_mobility"))
                for s in (train_set, val_set)
            )
            module, workers = HeadsTraining(heads), 0
        else:
            module, workers = HeadsTraining(heads, encoder, self.cfg.heads.encoder_lr_scale), None
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
        """Router + experts + heads from the run's best checkpoints."""
        router = self.new_router()
        router.load_state_dict(_prefixed(load_checkpoint(self.stage_dir("router") / BEST)["model"], "router."))
        experts, heads = {}, {}
        for expert in self.cfg.experts:
            state = load_checkpoint(self.stage_dir("heads", expert) / BEST)["model"]
            encoder = self.trained_encoder(expert)
            if self.cfg.heads.mode == "lwm_ft":
                encoder.load_state_dict(_prefixed(state, "encoder."))
            head = TaskHeads(self.cfg.model.d_model, self.cfg.heads)
            head.load_state_dict(_prefixed(state, "heads."))
            experts[expert], heads[expert] = encoder, head
        return MixtureOfExperts(router, experts, heads).eval()


def check_compatible(saved: dict, new: dict, where: str) -> None:
    """A run directory keeps one architecture and training set; optimisation may change."""
    differing = [k for k in ARCHITECTURE_KEYS if saved.get(k) != new.get(k)]
    if saved.get("data", {}).get("train") != new.get("data", {}).get("train"):
        differing.append("data.train")
    if differing:
        raise ValueError(
            f"{where} was started with another {', '.join(differing)}; "
            "use a new run_dir for a different architecture or training set"
        )
