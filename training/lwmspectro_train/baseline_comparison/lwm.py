"""LWM-Spectro as the evaluation uses it: pretrained experts and router (torch), the
residual 1-D CNN head of Sec. III-F with an imprinted cosine classifier beside it on the
pooled embedding, frozen ("LWM") or fine-tuned with the encoder at a reduced learning
rate ("LWM_FT")."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lwmspectro import labels
from lwmspectro.bundle import Bundle, BundlePath, load_bundle

from ..export import load_torch_from_bundle, torch_weights_path
from ..model import HeadsConfig, ResidualCNNHead, Router, SpectrogramEncoder, ZScore, route


@dataclass
class LWMComponents:
    """The pretrained parts a bundle was exported from."""

    experts: dict
    router: Router | None
    heads: HeadsConfig
    description: str

    @property
    def embedding_dim(self) -> int:
        return next(iter(self.experts.values())).cfg.d_model


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
        embedding = inputs if self.encoder is None else self.encoder(inputs)
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
def embed(encoder: nn.Module, spectrograms: np.ndarray, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """Pooled embeddings (n, d) of a frozen encoder, in eval mode."""
    encoder.eval().to(device)
    out = [
        encoder(torch.from_numpy(np.ascontiguousarray(spectrograms[i : i + batch_size], np.float32)).to(device)).cpu()
        for i in range(0, len(spectrograms), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def route_to_experts(
    router: Router, experts, spectrograms: np.ndarray, batch_size: int = 64, device: str = "cpu"
) -> np.ndarray:
    """Top-1 expert index (into `experts`) per spectrogram by `model.route` with the experts
    as the only candidates, as in the paper's three-way router: `none` and `other` are no
    choice for a task whose inputs all carry a protocol."""
    router.eval().to(device)
    chosen = []
    for i in range(0, len(spectrograms), batch_size):
        logits = router(torch.from_numpy(np.ascontiguousarray(spectrograms[i : i + batch_size], np.float32)).to(device))
        chosen.append(route(logits, labels.ROUTER_CLASSES, experts, candidates=experts).expert.cpu())
    return torch.cat(chosen).numpy() if chosen else np.zeros(0, np.int64)


def routed_embeddings(components: LWMComponents, spectrograms: np.ndarray, device: str = "cpu"):
    """(h_MoE (n, d) from each input's top-1 expert, expert index per input)."""
    if components.router is None:
        raise ValueError(f"{components.description}: no router, which the mixed-protocol task needs")
    names = list(components.experts)
    choice = route_to_experts(components.router, names, spectrograms, device=device)
    out = np.zeros((len(spectrograms), components.embedding_dim), np.float32)
    for index, name in enumerate(names):
        rows = np.flatnonzero(choice == index)
        if len(rows):
            out[rows] = embed(components.experts[name], spectrograms[rows], device=device)
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
        experts, model.router.requires_grad_(False), heads, f"{bundle.path} ({path.name}, foundation_experts)"
    )
    info = {
        "card_sha256": bundle.card_sha256,
        "summary": f"card `{bundle.name}`, schema {bundle.schema_version}, experts "
        f"{', '.join(experts)} (foundation experts), embedding d={components.embedding_dim}, "
        f"torch weights `{path}`, "
        f"card.json sha256 {bundle.card_sha256[:12]}",
    }
    return components, info
