"""LWM-Spectro as the evaluation uses it: pretrained experts and router (torch), each fed
the views it reads by name from the evaluation data, the residual 1-D CNN head of Sec.
III-F with an imprinted cosine classifier beside it on the pooled embedding, frozen ("LWM")
or fine-tuned with the encoder at a reduced learning rate ("LWM_FT")."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lwmspectro import labels
from lwmspectro.bundle import Bundle, BundlePath, load_bundle
from lwmspectro.dataset import Dataset

from ..export import load_torch_from_bundle, torch_weights_path
from ..model import WIDEBAND, HeadsConfig, ResidualCNNHead, Router, SpectrogramEncoder, ZScore, route
from .fit import Inputs, Views, as_tensors


@dataclass
class LWMComponents:
    """The pretrained parts a bundle was exported from."""

    experts: dict
    router: Router | None
    heads: HeadsConfig
    description: str
    view_params: dict = field(default_factory=dict)
    """Parameters of each view the bundle was trained on, by name (empty: not checked)."""

    @property
    def embedding_dim(self) -> int:
        return next(iter(self.experts.values())).cfg.d_model

    def parts(self) -> dict:
        """The router (when there is one) and the experts, by name."""
        return {**({"router": self.router} if self.router is not None else {}), **self.experts}

    def reads(self, expert: str | None) -> tuple[str, ...]:
        """The views a task's LWM models read: its expert's, or, when the router picks the
        expert of each input, the router's and every expert's."""
        parts = [self.experts[expert]] if expert is not None else list(self.parts().values())
        return tuple(dict.fromkeys(name for part in parts for name in part.view_names))


def check_views(components: LWMComponents, dataset: Dataset) -> None:
    """Refuse a dataset that lacks a view the bundle reads, or stores one with other parameters
    than the bundle was trained on, naming the view and the parts that read it: before any
    trial runs, rather than after the baselines of the first task."""
    readers: dict[str, list[str]] = {}
    for part, module in components.parts().items():
        for name in module.view_names:
            readers.setdefault(name, []).append(part)
    missing = [name for name in readers if name not in dataset.views]
    if missing:
        listing = "; ".join(f"{name!r} (read by {', '.join(readers[name])})" for name in missing)
        raise ValueError(
            f"{dataset.folder} stores no view {listing} of the bundle {components.description}; it stores "
            f"{', '.join(dataset.views)}. Evaluate on data generated with the bundle's views (its card's "
            "`views`, e.g. python/lwmspectro/configs/heldout-views.json)"
        )
    differing = [
        name
        for name in readers
        if name in components.view_params and dataset.views[name] != components.view_params[name]
    ]
    if differing:
        raise ValueError(
            f"{dataset.folder} stores the view {', '.join(map(repr, differing))} with other parameters than the "
            f"bundle {components.description} was trained on; generate the data with the card's `views`"
        )


def read_views(dataset: Dataset, names: Sequence[str], indices) -> Views:
    """The views `names` of the dataset rows `indices`, by name."""
    return Views({name: dataset.view(name, indices) for name in names})


class PrototypeClassifier(nn.Module):
    """Cosine classifier whose class weights start at the class means of the standardised
    training embeddings ("weight imprinting", Qi et al., CVPR 2018), with a learnable scale.

    From its first step it is the nearest-class-mean rule on the frozen embedding; the
    trial's optimiser then refines it. No library offers an imprinted cosine layer for
    torch, hence these few lines."""

    def __init__(self, embeddings: torch.Tensor, labels, n_classes: int, scale: float = 10.0):
        super().__init__()
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        means = torch.zeros(n_classes, embeddings.shape[1])
        means.index_add_(0, labels, embeddings.float())
        means /= torch.bincount(labels, minlength=n_classes).clamp_min(1).unsqueeze(1)
        self.weight = nn.Parameter(F.normalize(means, dim=1))
        self.scale = nn.Parameter(torch.tensor(float(scale)))

    def forward(self, embedding):
        return self.scale * F.normalize(embedding, dim=1) @ F.normalize(self.weight, dim=1).t()


class FewShotHead(nn.Module):
    """The residual 1-D CNN head of Sec. III-F plus an imprinted cosine classifier, logits added.

    A CNN head trained from scratch needs more updates than a few-shot trial gives it. In
    the quick evaluation of models/small (docs/results.md, 3 seeds), frozen-LWM F1 went
    with the CNN head alone -> with the imprinted classifier beside it: Task 1 at
    N = 2 / 8 / 32 from 24.8 / 35.3 / 58.6 to 37.4 / 45.2 / 52.1 %, Task 2 at N = 5 / 10
    from 18.1 / 21.6 to 34.0 / 36.2 %: the imprinted term carries the few-shot regime."""

    def __init__(self, cnn: ResidualCNNHead, prototypes: PrototypeClassifier):
        super().__init__()
        self.cnn = cnn
        self.prototypes = prototypes

    def forward(self, embedding):
        return self.cnn(embedding) + self.prototypes(embedding)


class LWMClassifier(nn.Module):
    """Encoder (optional: absent when the head reads cached frozen embeddings), the
    standardisation, then the few-shot head.

    The standardisation is the per-dimension z-score of the trial's training embeddings. The
    pooled embedding of a post-LN encoder varies little around a large per-dimension offset;
    a fresh head with batch normalisation learns from it only after many more updates than
    a few-shot trial has (measured: a residual head on raw embeddings stayed at chance where
    it learns on standardised ones). Standardising is the usual linear-probe preprocessing
    and uses no label and no test sample."""

    def __init__(self, encoder: SpectrogramEncoder | None, standardise: ZScore, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.standardise = standardise
        self.head = head

    def forward(self, inputs):
        embedding = inputs if self.encoder is None else self.encoder.embed(inputs)
        return self.head(self.standardise(embedding))


def standardised_head(
    components: LWMComponents, train_embeddings: np.ndarray, train_labels, n_classes: int
) -> tuple[ZScore, FewShotHead]:
    """The training split's standardisation and a fresh head: a residual CNN beside a cosine
    classifier imprinted from the standardised training embeddings."""
    standardise = ZScore.fit(np.asarray(train_embeddings, np.float32))
    with torch.no_grad():
        standardised = standardise(torch.as_tensor(np.asarray(train_embeddings, np.float32)))
    return standardise, FewShotHead(
        ResidualCNNHead(components.embedding_dim, n_classes, components.heads),
        PrototypeClassifier(standardised, train_labels, n_classes),
    )


def frozen_model(
    components: LWMComponents, train_embeddings: np.ndarray, train_labels, n_classes: int
) -> LWMClassifier:
    """LWM: a new head over cached embeddings of the frozen encoder."""
    return LWMClassifier(None, *standardised_head(components, train_embeddings, train_labels, n_classes))


def finetune_model(
    components: LWMComponents,
    expert: str,
    train_embeddings: np.ndarray,
    train_labels,
    n_classes: int,
    lr: float,
    encoder_lr_scale: float,
):
    """LWM_FT: a fresh copy of the pretrained expert, the standardisation of its pretrained
    embeddings of the training split, a new head; AdamW parameter groups train the encoder
    at `encoder_lr_scale` times the head's rate."""
    model = LWMClassifier(
        copy.deepcopy(components.experts[expert]),
        *standardised_head(components, train_embeddings, train_labels, n_classes),
    )
    model.encoder.requires_grad_(True)
    groups = [
        {"params": list(model.encoder.parameters()), "lr": lr * encoder_lr_scale},
        {"params": list(model.head.parameters()), "lr": lr},
    ]
    return model, groups


@torch.no_grad()
def embed(encoder: SpectrogramEncoder, inputs: Inputs, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """Pooled embeddings (n, d) of a frozen encoder, in eval mode, from G alone (an array) or
    from views by name (the encoder takes those it reads)."""
    encoder.eval().to(device)
    out = [
        encoder.embed(as_tensors(inputs[i : i + batch_size], device)).cpu() for i in range(0, len(inputs), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def route_to_experts(router: Router, experts, inputs: Inputs, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """Top-1 expert index (into `experts`) per input by `model.route` with the experts as the
    only candidates, as in the paper's three-way router: `none` and `other` are no choice for
    a task whose inputs all carry a protocol. `inputs`: G alone or views by name."""
    router.eval().to(device)
    chosen = []
    for i in range(0, len(inputs), batch_size):
        logits = router.classify(as_tensors(inputs[i : i + batch_size], device))
        chosen.append(route(logits, labels.ROUTER_CLASSES, experts, candidates=experts).expert.cpu())
    return torch.cat(chosen).numpy() if chosen else np.zeros(0, np.int64)


def routed_embeddings(components: LWMComponents, inputs: Inputs, device: str = "cpu"):
    """(h_MoE (n, d) from each input's top-1 expert, expert index per input); `inputs` holds
    the views the router and every expert read (`LWMComponents.reads(None)`)."""
    if components.router is None:
        raise ValueError(f"{components.description}: no router, which the mixed-protocol task needs")
    names = list(components.experts)
    choice = route_to_experts(components.router, names, inputs, device=device)
    out = np.zeros((len(inputs), components.embedding_dim), np.float32)
    for index, name in enumerate(names):
        rows = np.flatnonzero(choice == index)
        if len(rows):
            out[rows] = embed(components.experts[name], inputs[rows], device=device)
    return out, choice


def load_components(bundle: Bundle | BundlePath) -> tuple[LWMComponents, dict]:
    """The torch router and foundation experts of a bundle (`load_torch_from_bundle`), and a
    description of the bundle."""
    bundle = load_bundle(bundle)
    path = torch_weights_path(bundle)
    model = load_torch_from_bundle(bundle, foundation_experts=True)
    experts = {name: encoder.requires_grad_(False) for name, encoder in model.experts.items()}
    heads = next(iter(model.heads.values())).cfg
    components = LWMComponents(
        experts,
        model.router.requires_grad_(False),
        heads,
        f"{bundle.path} ({path.name}, foundation_experts)",
        dict(zip(bundle.view_names, bundle.views)),
    )
    info = {
        "card_sha256": bundle.card_sha256,
        "summary": f"card `{bundle.name}`, schema {bundle.schema_version}, experts "
        f"{', '.join(experts)} (foundation experts), embedding d={components.embedding_dim}, "
        f"{views_read(components)}, torch weights `{path}`, "
        f"card.json sha256 {bundle.card_sha256[:12]}",
    }
    return components, info


def views_read(components: LWMComponents) -> str:
    """Which views each part reads, for the report (the LWM models are fed exactly these)."""
    parts = components.parts()
    if all(part.view_names == (WIDEBAND,) for part in parts.values()):
        return "every part reads the wideband spectrogram G"
    return "views read: " + "; ".join(f"{name} {', '.join(part.view_names)}" for name, part in parts.items())
