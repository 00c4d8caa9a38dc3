"""LWM-Spectro in one file: expert encoder, masked modelling, contrastive loss, router, heads.

Read top to bottom; equation numbers refer to the LWM-Spectro paper (Sec. III-IV).

    views (B, T_v, K_v), one or more  G of Eq. 10 with C >= 1 channels, each its own shape
      -> ZScore per view                 global statistics of the training set
      -> patchify + linear embedding     pt x pk patches of each view, its own W_emb (Eq. 11)
      -> [MASK] replaces masked tokens   pretraining only, over the tokens of every view (Eq. 15)
      -> + positions (+ view embedding)  learnable, per view (Eq. 12)
      -> one sequence, L post-LN Blocks  MSA + GELU FFN over the tokens of all views (Eq. 13-14)
      -> mean over patch tokens          the pooled embedding every head uses

`Trunk` is everything above the pooling; an expert (`SpectrogramEncoder`) and the router
are both a trunk, the router with a linear classifier on the pooled tokens. `route` is
the one top-1 routing rule. A trunk of one view is the model of G alone, parameter names
included, as it was before views.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from lwmspectro import labels
from lwmspectro import views as view_registry
from lwmspectro.config_base import ConfigBase

WIDEBAND = "wideband"
"""The name of G, the view a model of one view reads (its graphs call it `spectrogram`)."""


@dataclass(frozen=True)
class TrunkConfig(ConfigBase):
    """The transformer an expert and the router are built on."""

    patch_size: int = 8
    d_model: int = 64
    n_layers: int = 4
    n_heads: int = 4
    ffn_mult: int = 4
    dropout: float = 0.0
    patch_shapes: dict = field(default_factory=dict)
    """[pt, pk] patches of a view, by view name; a view not listed is cut into patch_size squares."""

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        for name, shape in self.patch_shapes.items():
            if not (isinstance(shape, (list, tuple)) and len(shape) == 2 and all(_positive_int(s) for s in shape)):
                raise ValueError(f"patch_shapes.{name}: {shape!r} is not [pt, pk], two positive integers")
        object.__setattr__(self, "patch_shapes", {name: tuple(shape) for name, shape in self.patch_shapes.items()})

    def patch_shape(self, view: str) -> tuple[int, int]:
        return self.patch_shapes.get(view, (self.patch_size, self.patch_size))

    def to_dict(self) -> dict:
        values = super().to_dict()
        values["patch_shapes"] = {name: list(shape) for name, shape in self.patch_shapes.items()}
        return values


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class EncoderConfig(TrunkConfig):
    """An expert encoder and its pretraining objectives (paper Table I)."""

    use_cls: bool = False
    mask_ratio: float = 0.7
    decoder_hidden: int = 128
    projection_dim: int = 64
    temperature: float = 0.2

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must lie in (0, 1), got {self.mask_ratio}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


@dataclass(frozen=True)
class RouterConfig(TrunkConfig):
    """The gating network of Sec. IV-B: a 2-layer Transformer with d = 64."""

    n_layers: int = 2


HEADS_OUTPUTS = ("joint", "separate")


@dataclass(frozen=True)
class HeadsConfig(ConfigBase):
    """The residual 1-D CNN heads of Sec. III-F and how they meet the encoder.

    `outputs`: "joint" is modulation plus the joint SNR x mobility classes of Table II (`TaskHeads`);
    "separate" is modulation, the SNR in dB, the mobility class and the maximum Doppler
    (`SeparateHeads`)."""

    channels: int = 32
    n_blocks: int = 2
    kernel_size: int = 3
    mode: str = "lwm_ft"
    encoder_lr_scale: float = 0.1
    outputs: str = "joint"
    snr_sigma_floor_db: float = 0.0
    """The least standard deviation the separate SNR head may state, in dB (0: only LOG_VARIANCE_RANGE)."""
    log_doppler_sigma_floor: float = 0.0
    """The same for the Doppler head, in units of log10(1 + fD / Hz). A floor is what a window can
    resolve: without one, a head that has learnt to be sure of most rows states a vanishing sigma,
    and the Gaussian NLL of a few misread rows swamps the summed loss, its clipped gradients and
    the early stopping that reads it."""

    def __post_init__(self):
        if self.mode not in ("lwm", "lwm_ft"):
            raise ValueError(
                f"heads mode {self.mode!r} is not valid; valid: lwm (frozen encoder), "
                "lwm_ft (encoder fine-tuned at a reduced learning rate)"
            )
        if self.kernel_size % 2 == 0:
            raise ValueError(f"heads kernel_size must be odd to keep the length, got {self.kernel_size}")
        labels.check_choice("heads outputs", self.outputs, HEADS_OUTPUTS)
        if self.snr_sigma_floor_db < 0 or self.log_doppler_sigma_floor < 0:
            raise ValueError("heads sigma floors must be >= 0")


class ZScore(nn.Module):
    """(x - mean) / std with fixed statistics kept as buffers: the training set's pixel
    statistics of a view in front of every trunk (so that the exported ONNX graphs take the
    views unchanged), or per-dimension statistics of embeddings (`ZScore.fit`)."""

    def __init__(self, mean=0.0, std=1.0):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).clone())
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clone())

    @classmethod
    def fit(cls, samples) -> ZScore:
        """Statistics of each column of `samples` (n, d); a constant column keeps std 1e-6."""
        samples = torch.as_tensor(samples, dtype=torch.float32)
        return cls(samples.mean(dim=0), samples.std(dim=0, unbiased=False).clamp_min(1e-6))

    def set(self, mean, std) -> None:
        """New statistics, of any shape that broadcasts against the input (a scalar per view,
        or a (T, 1) column of per-row statistics)."""
        self.mean = torch.as_tensor(mean, dtype=torch.float32).clone()
        self.std = torch.as_tensor(std, dtype=torch.float32).clone()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The statistics' shape is the data's (scalar or per row), not the constructor's:
        # take the saved shape before the values are copied in.
        for name in ("mean", "std"):
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty_like(saved, dtype=torch.float32))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x):
        return (x - self.mean) / self.std


def patchify(x: torch.Tensor, patch_size: int | tuple[int, int]) -> torch.Tensor:
    """(B, T, K) -> (B, N, pt*pk): non-overlapping pt x pk patches (P x P for an int), time-major order."""
    b, t, k = x.shape
    pt, pk = (patch_size, patch_size) if isinstance(patch_size, int) else patch_size
    x = x.reshape(b, t // pt, pt, k // pk, pk).permute(0, 1, 3, 2, 4)
    return x.reshape(b, (t // pt) * (k // pk), pt * pk)


def random_mask(batch: int, n_patches: int, ratio: float, device=None, generator=None) -> torch.Tensor:
    """Boolean (B, N), True where masked: exactly round(ratio * N) patches in every row."""
    n_masked = math.floor(ratio * n_patches + 0.5)
    noise = torch.rand(batch, n_patches, device=device, generator=generator)
    chosen = noise.argsort(dim=1)[:, :n_masked]
    return torch.zeros(batch, n_patches, dtype=torch.bool, device=device).scatter_(1, chosen, True)


class SelfAttention(nn.Module):
    """Multi-head self-attention (Eq. 13) with one fused QKV projection.

    Each head works in `head_dim` dimensions, d_model / n_heads by default. A model whose
    d_model is not a multiple of n_heads (the LWM paper's d = 64 with 12 heads) sets it, as
    that paper's D_H = floor(D / H) does: the heads then span n_heads * head_dim dimensions
    (60 there), which the output projection maps back to d_model."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, head_dim: int | None = None):
        super().__init__()
        self.n_heads = n_heads
        self.d_model = d_model
        self.head_dim = d_model // n_heads if head_dim is None else head_dim
        self.inner = n_heads * self.head_dim
        self.qkv = nn.Linear(d_model, 3 * self.inner)
        self.out = nn.Linear(self.inner, d_model)
        self.dropout = dropout

    def forward(self, x):
        b, n, inner = x.shape[0], x.shape[1], self.inner
        q, k, v = self.qkv(x).split(inner, dim=2)
        q, k, v = (t.view(b, n, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, n, inner))


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"gelu": F.gelu, "relu": F.relu}
"""The feed-forward non-linearities: GELU (LWM-Spectro) and ReLU (the LWM paper's Eq. 16)."""


class FeedForward(nn.Module):
    def __init__(self, d_model: int, mult: int, dropout: float, activation: str = "gelu"):
        super().__init__()
        labels.check_choice("activation", activation, tuple(ACTIVATIONS))
        self.up = nn.Linear(d_model, mult * d_model)
        self.down = nn.Linear(mult * d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = ACTIVATIONS[activation]

    def forward(self, x):
        return self.dropout(self.down(self.activation(self.up(x))))


class Block(nn.Module):
    """Post-LN Transformer layer, as Eq. 14 writes it: LN(z + MSA(z)), then LN(z~ + FFN(z~)).

    `activation` and `head_dim` (FeedForward, SelfAttention) keep LWM-Spectro's GELU and
    d_model / n_heads unless a model sets them (the LWM paper's ReLU and 5-dimensional heads).
    `attention_dropout` (on the attention weights) is `dropout` unless set: on a CPU, any
    dropout there sends scaled_dot_product_attention to its unfused kernel, several times slower."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        ffn_mult: int,
        dropout: float,
        activation: str = "gelu",
        head_dim: int | None = None,
        attention_dropout: float | None = None,
    ):
        super().__init__()
        attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.attn = SelfAttention(d_model, n_heads, attention_dropout, head_dim)
        self.ln_attn = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, ffn_mult, dropout, activation)
        self.ln_ffn = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, z):
        z = self.ln_attn(z + self.dropout(self.attn(z)))
        return self.ln_ffn(z + self.ffn(z))


def per_view(names: Sequence[str], make: Callable[[str], Any]):
    """`make(name)` for each view: for one view the module or parameter itself (the names a
    model of G alone has always had: `patch_embed.weight`, `pos_embed`), else a dict by view name."""
    if len(names) == 1:
        return make(names[0])
    made = {name: make(name) for name in names}
    if all(isinstance(value, nn.Parameter) for value in made.values()):
        return nn.ParameterDict(made)
    return nn.ModuleDict(made)


def of_view(container, name: str):
    """The member of a `per_view` container for view `name`."""
    return container[name] if isinstance(container, (nn.ModuleDict, nn.ParameterDict)) else container


ViewInput = torch.Tensor | Sequence[torch.Tensor] | Mapping[str, torch.Tensor]
"""The views of a batch: a tensor for one view, one tensor per view in order, or a dict by view name."""


class Trunk(nn.Module):
    """Views -> final-layer tokens (B, n_prefix + N, d): per view its z-score, pt x pk patches
    (the view zero-padded after the z-score to whole patches when its shape is not a multiple),
    their linear embedding (Eq. 11), positions (Eq. 12) and, with several views, a learnable
    view embedding; [MASK] (Eq. 15) and CLS when asked for (CLS leads the first view's tokens
    and shares its position table); the tokens of all views in one sequence through the L
    blocks (Eq. 13-14). An expert and the router are each one.

    `input_shape` is (T, K) of G alone, or {view name: (T, K)} of the views read, in order.
    A view named in `optional` may be absent from a window (NaN: a view of the past the
    capture does not reach back to): its tokens are then a learnt 'absent' embedding, so
    every other output still stands. A trunk of one view is exactly the model of G it was
    before views: same parameters, names and operations.

    The learnable embeddings start at zero; the owning model calls `init_embeddings` once
    all of its own layers exist, so that a seed gives the weights it always gave."""

    def __init__(
        self,
        cfg: TrunkConfig,
        input_shape,
        what: str,
        mask_token: bool = False,
        use_cls: bool = False,
        optional: Sequence[str] = (),
        past: Sequence[str] | None = None,
    ):
        super().__init__()
        self.cfg = cfg
        shapes = dict(input_shape) if isinstance(input_shape, Mapping) else {WIDEBAND: tuple(input_shape)}
        if not shapes:
            raise ValueError(f"{what}: reads no view")
        unknown = [name for name in optional if name not in shapes]
        if unknown or (optional and len(optional) == len(shapes)):
            raise ValueError(f"{what}: optional views {list(optional)} must be some, not all, of {list(shapes)}")
        self.view_names = tuple(shapes)
        self.optional = tuple(optional)
        self.past = self.optional if past is None else tuple(past)
        """The optional views of the past: a window that lacks one is too short for mobility."""
        if not set(self.past) <= set(self.optional):
            raise ValueError(f"{what}: views of the past {list(self.past)} must be among the optional {list(optional)}")
        self.view_shapes = {name: (int(t), int(k)) for name, (t, k) in shapes.items()}
        self.patch_shapes = {name: cfg.patch_shape(name) for name in self.view_names}
        self.grids = {
            name: (math.ceil(t / self.patch_shapes[name][0]), math.ceil(k / self.patch_shapes[name][1]))
            for name, (t, k) in self.view_shapes.items()
        }
        self.view_patches = {name: rows * columns for name, (rows, columns) in self.grids.items()}
        self.n_patches = sum(self.view_patches.values())
        self.n_prefix = 1 if use_cls else 0
        d = cfg.d_model
        names = self.view_names
        self.normalise = per_view(names, lambda name: ZScore())
        self.patch_embed = per_view(names, lambda name: nn.Linear(math.prod(self.patch_shapes[name]), d))
        self.mask_token = nn.Parameter(torch.zeros(d)) if mask_token else None
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if use_cls else None
        self.pos_embed = per_view(
            names,
            lambda name: nn.Parameter(
                torch.zeros(1, self.view_patches[name] + (self.n_prefix if name == names[0] else 0), d)
            ),
        )
        self.view_embed = nn.Parameter(torch.zeros(len(names), d)) if len(names) > 1 else None
        self.absent_embed = nn.ParameterDict({name: nn.Parameter(torch.zeros(d)) for name in self.optional})
        self.blocks = nn.ModuleList(
            Block(cfg.d_model, cfg.n_heads, cfg.ffn_mult, cfg.dropout) for _ in range(cfg.n_layers)
        )

    def init_embeddings(self) -> None:
        positions = [of_view(self.pos_embed, name) for name in self.view_names]
        for embedding in (positions[0], self.mask_token, self.cls_token, *positions[1:], self.view_embed):
            if embedding is not None:
                nn.init.normal_(embedding, std=0.02)
        for embedding in self.absent_embed.values():
            nn.init.normal_(embedding, std=0.02)

    def set_normalisation(self, stats: Mapping[str, Any]) -> None:
        """The training set's pixel statistics: {"mean", "std"} of G, or {"views": {name: {"mean",
        "std"}}}; each a number for the whole view, or a list of one per row of it."""
        for name in self.view_names:
            values = stats["views"][name] if "views" in stats else stats
            mean, std = (torch.as_tensor(values[key], dtype=torch.float32) for key in ("mean", "std"))
            if mean.dim() == 1:
                rows = self.view_shapes[name][0]
                if len(mean) != rows:
                    raise ValueError(f"{name}: {len(mean)} per-row statistics for a view of {rows} rows")
                mean, std = mean[:, None], std[:, None]
            of_view(self.normalise, name).set(mean, std)

    def as_views(self, views: ViewInput) -> tuple[torch.Tensor, ...]:
        """The views this trunk reads, in its order, from any `ViewInput`."""
        if isinstance(views, torch.Tensor):
            views = (views,)
        elif isinstance(views, Mapping):
            views = tuple(views[name] for name in self.view_names)
        if len(views) != len(self.view_names):
            raise ValueError(f"{len(views)} views given to a trunk that reads {list(self.view_names)}")
        return tuple(views)

    def absent(self, views: ViewInput, drop_prob: float = 0.0) -> dict[str, torch.Tensor]:
        """(B,) booleans per optional view: True where the window lacks it (any NaN), and in
        training also for a random `drop_prob` of the rows, so that the model learns both cases."""
        views = dict(zip(self.view_names, self.as_views(views)))
        out = {}
        for name in self.optional:
            x = views[name]
            missing = torch.isnan(x).flatten(1).any(dim=1)
            if self.training and drop_prob > 0:
                missing = missing | (torch.rand(x.shape[0], device=x.device) < drop_prob)
            out[name] = missing
        return out

    def patches(self, views: ViewInput) -> list[torch.Tensor]:
        """Normalised input patches of each view, (B, N_v, pt*pk): what masked modelling reconstructs."""
        out = []
        for name, x in zip(self.view_names, self.as_views(views)):
            if name in self.optional:
                x = torch.where(torch.isnan(x), torch.zeros((), dtype=x.dtype, device=x.device), x)
            x = of_view(self.normalise, name)(x)
            (t, k), (rows, columns), (pt, pk) = self.view_shapes[name], self.grids[name], self.patch_shapes[name]
            if (rows * pt, columns * pk) != (t, k):
                x = F.pad(x, (0, columns * pk - k, 0, rows * pt - t))
            out.append(patchify(x, (pt, pk)))
        return out

    def tokens(self, views: ViewInput, mask=None, absent: Mapping[str, torch.Tensor] | None = None):
        """Final-layer tokens (B, n_prefix + N, d); `mask` (B, N) swaps in [MASK] (Eq. 15);
        `absent` (from `absent`, computed here when None) swaps in each absent view's embedding."""
        absent = self.absent(views) if absent is None else absent
        parts, start = [], 0
        for i, (name, patches) in enumerate(zip(self.view_names, self.patches(views))):
            x = of_view(self.patch_embed, name)(patches)
            end = start + self.view_patches[name]
            if mask is not None:
                x = torch.where(mask[:, start:end].unsqueeze(-1), self.mask_token.to(x.dtype), x)
            if name in absent:
                x = torch.where(absent[name][:, None, None], self.absent_embed[name].to(x.dtype), x)
            if i == 0 and self.cls_token is not None:
                x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
            x = x + of_view(self.pos_embed, name)
            parts.append(x if self.view_embed is None else x + self.view_embed[i])
            start = end
        z = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        for block in self.blocks:
            z = block(z)
        return z

    def pool(self, tokens):
        """Mean over the patch tokens of every view (Sec. III-F); the CLS token, if any, is left out."""
        return tokens[:, self.n_prefix :].mean(dim=1)

    def split(self, per_token: torch.Tensor) -> list[torch.Tensor]:
        """(B, N, ...) over the patch tokens -> one (B, N_v, ...) part per view."""
        return list(per_token.split([self.view_patches[name] for name in self.view_names], dim=1))


class SpectrogramEncoder(Trunk):
    """One expert: its views -> pooled embedding (B, d)."""

    def __init__(
        self,
        cfg: EncoderConfig,
        input_shape=(128, 128),
        optional: Sequence[str] = (),
        past: Sequence[str] | None = None,
    ):
        super().__init__(
            cfg, input_shape, "encoder", mask_token=True, use_cls=cfg.use_cls, optional=optional, past=past
        )
        self.init_embeddings()

    def forward(self, *views):
        """The embedding of the views given one tensor each, in `view_names` order (one ONNX input each)."""
        return self.pool(self.tokens(views))

    def embed(self, views: ViewInput, absent: Mapping[str, torch.Tensor] | None = None):
        return self.pool(self.tokens(views, absent=absent))


def decay_groups(module: nn.Module, lr: float) -> list[dict]:
    """AdamW groups of `module`'s trainable parameters at rate `lr`: weight decay on those of
    two or more dimensions (weight matrices, kernels, position and view embeddings), none on
    vectors (biases, norm scales and shifts, the [MASK] and 'absent' tokens)."""
    decay, no_decay = [], []
    for param in module.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    return [{"params": decay, "lr": lr}, {"params": no_decay, "lr": lr, "weight_decay": 0.0}]


class TrainingObjective(nn.Module):
    """What a training stage optimises: forward(**inputs) returns a dict of scalar tensors
    with `loss`, and the objective decides its optimiser's parameter groups."""

    def param_groups(self, lr: float) -> list[dict]:
        return decay_groups(self, lr)

    def configure_optimizers(self, lr: float, betas: tuple[float, float], weight_decay: float) -> torch.optim.AdamW:
        """AdamW over `param_groups`; `weight_decay` applies where a group does not set its own."""
        return torch.optim.AdamW(self.param_groups(lr), lr=lr, betas=betas, weight_decay=weight_decay)


def masked_mse(prediction, target, mask):
    """Eq. 17 over the masked patches only; the squared error is averaged over the pt*pk
    pixels too, so that the loss scale (and thus lambda_recon vs lambda_cont) does not
    depend on the patch size."""
    per_patch = (prediction.float() - target.float()).pow(2).mean(dim=-1)
    return per_patch[mask].mean()


def masked_mean(values, keep):
    """Mean of `values` where `keep`, 0 where nothing is kept (a batch without such a label)."""
    keep = keep.to(values.dtype)
    return (values * keep).sum() / keep.sum().clamp(min=1.0)


def supervised_contrastive_loss(z, targets, temperature: float):
    """Eq. 19 (supervised contrastive, Khosla et al.) on L2-normalised projections `z`.

    Positives of anchor i are the other samples with its label; anchors without any
    positive in the batch are left out, and the sum over anchors is averaged so that the
    loss does not grow with the batch size. Samples labelled -1 take no part."""
    keep = targets >= 0
    z, targets = z[keep].float(), targets[keep]
    n = len(targets)
    if n < 2:
        return z.sum() * 0.0
    logits = (z @ z.t()) / temperature
    self_pair = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_pair, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (targets[:, None] == targets[None, :]) & ~self_pair
    n_positives = positives.sum(dim=1)
    anchors = n_positives > 0
    if not anchors.any():
        return z.sum() * 0.0
    per_anchor = -log_prob.masked_fill(~positives, 0.0).sum(dim=1) / n_positives.clamp(min=1)
    return per_anchor[anchors].mean()


class MaskedModelling(TrainingObjective):
    """Stage 1 (Eq. 21) and stage 1b (Eq. 22) objectives around one expert encoder.

    Masking: round(mask_ratio * N) of the tokens of all views together are replaced by [MASK];
    each view's decoder reconstructs that view's masked patches, and the reconstruction loss
    is the mean over views of each view's masked MSE (patches of a view absent from the
    window, or dropped in training with probability `absent_prob`, are not scored).

    Reconstruction target: the raw (normalised) patch pixels s_i, not the patch
    embeddings x_i = W_emb s_i + b that Eq. 16-17 write. The embeddings are produced by
    the very weights being trained, so reconstructing them admits a collapse (W_emb -> 0
    makes every target, and the loss, zero); the pixels are a fixed target that carries
    all the information the embedding could, as in MAE.

    Contrastive term: the projection (Eq. 18) of two views of each sample enter Eq. 19:
    the clean input (the embedding the heads and the bundle use) and the masked one
    that the reconstruction already encodes, so the masked input acts as augmentation.
    With several label sets (`contrastive_targets` of shape (B, L)), each has its own
    projection and its own Eq. 19 term, each weighted lambda_cont: the one embedding is
    asked to order the samples by every label (e.g. modulation and SNR x mobility)
    without a projection having to serve two groupings at once.
    """

    def __init__(
        self,
        encoder: SpectrogramEncoder,
        lambda_recon: float = 1.0,
        lambda_cont: float = 0.0,
        n_label_sets: int = 1,
        absent_prob: float = 0.0,
    ):
        super().__init__()
        cfg = encoder.cfg
        self.encoder = encoder
        self.decoder = per_view(
            encoder.view_names,
            lambda name: nn.Sequential(
                nn.Linear(cfg.d_model, cfg.decoder_hidden),
                nn.GELU(),
                nn.Linear(cfg.decoder_hidden, math.prod(encoder.patch_shapes[name])),
            ),
        )
        self.projections = nn.ModuleList(nn.Linear(cfg.d_model, cfg.projection_dim) for _ in range(n_label_sets))
        self.lambda_recon = lambda_recon
        self.lambda_cont = lambda_cont
        self.absent_prob = absent_prob
        self.projections.requires_grad_(lambda_cont > 0)

    def reconstruct(self, views: ViewInput, mask, absent=None):
        """(decoded patches of each view at every position [(B, N_v, pt*pk)], final tokens)."""
        tokens = self.encoder.tokens(views, mask, absent)
        per_view_tokens = self.encoder.split(tokens[:, self.encoder.n_prefix :])
        decoded = [of_view(self.decoder, name)(t) for name, t in zip(self.encoder.view_names, per_view_tokens)]
        return decoded, tokens

    def forward(self, views: ViewInput, contrastive_targets=None, generator=None) -> dict:
        """`contrastive_targets`: (B,) labels, or (B, L) with one column per label set."""
        encoder = self.encoder
        views = encoder.as_views(views)
        b = views[0].shape[0]
        absent = encoder.absent(views, self.absent_prob)
        mask = random_mask(b, encoder.n_patches, encoder.cfg.mask_ratio, views[0].device, generator)
        predictions, tokens = self.reconstruct(views, mask, absent)
        losses = []
        for name, prediction, target, scored in zip(
            encoder.view_names, predictions, encoder.patches(views), encoder.split(mask)
        ):
            if name in absent:
                scored = scored & ~absent[name][:, None]
                if not scored.any():
                    continue
            losses.append(masked_mse(prediction, target, scored))
        recon = torch.stack(losses).mean()
        out = {"recon": recon, "loss": self.lambda_recon * recon}
        if self.lambda_cont > 0 and contrastive_targets is not None:
            targets = contrastive_targets.reshape(b, -1)
            if targets.shape[1] != len(self.projections):
                raise ValueError(f"{targets.shape[1]} contrastive label sets for {len(self.projections)} projections")
            both = torch.cat([encoder.embed(views, absent), encoder.pool(tokens)])
            contrastive = sum(
                supervised_contrastive_loss(
                    F.normalize(projection(both), dim=-1), torch.cat([column, column]), encoder.cfg.temperature
                )
                for projection, column in zip(self.projections, targets.unbind(dim=1))
            )
            out["contrastive"] = contrastive
            out["loss"] = out["loss"] + self.lambda_cont * contrastive
        return out


class Router(Trunk):
    """Gating network (Sec. IV-B): a trunk (2 layers), the mean of its tokens, a linear layer.

    Its classes are labels.ROUTER_CLASSES: the experts plus `none` and `other`, so the
    same softmax that picks an expert also reports noise or a foreign signal."""

    def __init__(
        self,
        cfg: RouterConfig,
        input_shape=(128, 128),
        n_classes: int = len(labels.ROUTER_CLASSES),
        optional: Sequence[str] = (),
        past: Sequence[str] | None = None,
    ):
        super().__init__(cfg, input_shape, "router", optional=optional, past=past)
        self.classifier = nn.Linear(cfg.d_model, n_classes)
        self.init_embeddings()

    def forward(self, *views):
        """Router logits (B, len(ROUTER_CLASSES)) of the views given one tensor each, in `view_names` order."""
        return self.classify(views)

    def classify(self, views: ViewInput, absent: Mapping[str, torch.Tensor] | None = None):
        return self.classifier(self.pool(self.tokens(views, absent=absent)))

    def mixture_weights(self, *views):
        """g = softmax over ROUTER_CLASSES (Sec. IV-B); top-1 routing is its argmax (`route`)."""
        return self.classify(views).softmax(dim=-1)


class Routing(NamedTuple):
    router_class: torch.Tensor
    """(B,) index into the router classes of each row's top-1 class."""
    expert: torch.Tensor
    """(B,) index into the experts of the expert that class names, -1 when it names none."""


def route(
    router_scores: torch.Tensor,
    router_classes: Sequence[str],
    experts: Sequence[str],
    candidates: Sequence[str] | None = None,
) -> Routing:
    """Top-1 routing (Sec. IV-B), defined once: the deployed model and the baseline comparison
    call it, and the ONNX runtime takes the same argmax of the exported router's output.

    Each row goes to the router class with the largest score (logits or softmax weights:
    same order) among `candidates` (every router class by default), the first one on a tie.
    That class's expert is its index in `experts`, or -1 for a class without an expert
    (`none`, `other`): such a row is reported as that class and gets no task outputs."""
    classes = list(router_classes)
    candidates = classes if candidates is None else list(candidates)
    device = router_scores.device
    columns = torch.tensor([classes.index(name) for name in candidates], device=device)
    router_class = columns[router_scores.index_select(-1, columns).argmax(dim=-1)]
    expert_of_class = torch.tensor([list(experts).index(c) if c in experts else -1 for c in classes], device=device)
    return Routing(router_class, expert_of_class[router_class])


class ResidualBlock1d(nn.Module):
    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, padding=pad)
        self.bn1 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, padding=pad)
        self.bn2 = nn.BatchNorm1d(channels)

    def forward(self, h):
        return F.gelu(h + self.bn2(self.conv2(F.gelu(self.bn1(self.conv1(h))))))


class ResidualCNNHead(nn.Module):
    """Eq. 20: the pooled embedding read as a 1-channel sequence of length d, a conv stem,
    residual 1-D conv blocks, GAP over the sequence and a linear layer.

    A learnable per-position bias follows the stem: embedding dimensions have no natural
    order, and without it GAP forgets which dimension a pattern came from (on five Gaussian
    classes in 64-d, 300 AdamW steps: 58 % held-out accuracy without it, 91 % with it, 96 %
    for a linear probe)."""

    def __init__(self, d_model: int, n_classes: int, cfg: HeadsConfig):
        super().__init__()
        self.stem = nn.Conv1d(1, cfg.channels, cfg.kernel_size, padding=cfg.kernel_size // 2)
        self.position = nn.Parameter(torch.zeros(1, cfg.channels, d_model))
        self.blocks = nn.Sequential(*(ResidualBlock1d(cfg.channels, cfg.kernel_size) for _ in range(cfg.n_blocks)))
        self.classifier = nn.Linear(cfg.channels, n_classes)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, embedding):
        h = self.blocks(F.gelu(self.stem(embedding.unsqueeze(1)) + self.position))
        return self.classifier(h.mean(dim=-1))


def task_losses(terms: Sequence[str], losses: Sequence, weights: Mapping[str, float] | None) -> dict:
    """{"loss": the sum of the tasks' losses, each times its weight (1 where `weights` does not
    name it), "<term>_loss": each task's}."""
    weights = weights or {}
    total = sum(weights.get(term, 1.0) * loss for term, loss in zip(terms, losses, strict=True))
    return {"loss": total, **{f"{term}_loss": loss for term, loss in zip(terms, losses, strict=True)}}


class TaskHeads(nn.Module):
    """Per-expert heads: embedding (B, d) -> (modulation logits, SNR x mobility logits)."""

    targets = ("modulation", "snr_mobility")
    loss_terms = ("modulation", "snr_mobility")
    """The tasks whose losses (`<term>_loss`) `losses` sums, weighted as `weights` says."""
    tensor_kind = "heads"
    """Its graph's tensor names in the bundle (`bundle.TENSOR_NAMES`)."""
    output_widths: ClassVar[dict[str, int]] = {
        "modulation_logits": len(labels.MODULATIONS),
        "snr_mobility_logits": len(labels.SNR_MOBILITY_CLASSES),
    }

    def __init__(self, d_model: int, cfg: HeadsConfig):
        super().__init__()
        self.cfg = cfg
        self.modulation = ResidualCNNHead(d_model, len(labels.MODULATIONS), cfg)
        self.snr_mobility = ResidualCNNHead(d_model, len(labels.SNR_MOBILITY_CLASSES), cfg)

    def forward(self, embedding):
        return self.modulation(embedding), self.snr_mobility(embedding)

    def losses(self, outputs, targets: Mapping[str, torch.Tensor], unseen=None, weights=None) -> dict:
        mod_logits, snr_logits = outputs
        modulation, snr_mobility = targets["modulation"], targets["snr_mobility"]
        mod_loss = F.cross_entropy(mod_logits, modulation, ignore_index=-1)
        snr_loss = F.cross_entropy(snr_logits, snr_mobility, ignore_index=-1)
        return {
            **task_losses(self.loss_terms, (mod_loss, snr_loss), weights),
            "modulation_accuracy": (mod_logits.argmax(-1) == modulation).float().mean(),
            "snr_mobility_accuracy": (snr_logits.argmax(-1) == snr_mobility).float().mean(),
        }


SNR_CENTRE_DB, SNR_SCALE_DB = 10.0, 10.0
"""The SNR head's raw mean m stands for 10 + 10 m dB: about N(0, 1) over -5..25 dB, unbounded (it can say 30 dB)."""
LOG_DOPPLER_CENTRE, LOG_DOPPLER_SCALE = 1.0, 1.0
"""The Doppler head regresses log10(1 + fD / Hz) (0 static, 1.6 at 40 Hz, 2.8 at 600 Hz) as 1 + m."""
LOG_VARIANCE_RANGE = (-9.0, 9.0)
"""Raw log-variance limits: sigma from 1 % to 90 times the scale, so that the NLL cannot run away."""


def log_doppler(doppler_hz):
    """The Doppler head's target: log10(1 + fD / Hz)."""
    return torch.log10(1.0 + torch.as_tensor(doppler_hz))


def gaussian(raw, centre: float, scale: float, sigma_floor: float = 0.0):
    """(B, 2) raw outputs -> (B, 2) mean and log variance in the target's units; a floor adds its
    variance to the stated one, so that sigma never falls below it and its gradient never stops."""
    log_var = raw[:, 1].clamp(*LOG_VARIANCE_RANGE) + 2.0 * math.log(scale)
    if sigma_floor > 0:
        log_var = torch.log(torch.exp(log_var.float()) + sigma_floor**2)
    return torch.stack([centre + scale * raw[:, 0], log_var], dim=1)


def gaussian_nll(prediction, target, keep):
    """Gaussian negative log-likelihood (up to a constant) of `target` under (mean, log var),
    averaged over the rows `keep` (NaN targets elsewhere are not looked at)."""
    prediction, target = prediction.float(), target.float()
    target = torch.where(keep, target, prediction[:, 0].detach())
    mean, log_var = prediction[:, 0], prediction[:, 1]
    return masked_mean(0.5 * (log_var + (target - mean).pow(2) * torch.exp(-log_var)), keep)


class SeparateHeads(nn.Module):
    """Per-expert heads, one residual CNN each (Eq. 20): modulation logits, the SNR in dB
    (mean and log variance, Gaussian NLL), the mobility class logits, and the maximum Doppler
    as log10(1 + fD / Hz) (mean and log variance). Mobility and Doppler are not scored on rows
    whose expert lacks a view they need (`unseen`: the window is too short for it)."""

    targets = ("modulation", "snr_db", "mobility", "log_doppler")
    loss_terms = ("modulation", "snr", "mobility", "doppler")
    tensor_kind = "heads_separate"
    output_widths: ClassVar[dict[str, int]] = {
        "modulation_logits": len(labels.MODULATIONS),
        "snr_db": 2,
        "mobility_logits": len(labels.MOBILITY_CLASSES),
        "log_doppler": 2,
    }

    def __init__(self, d_model: int, cfg: HeadsConfig):
        super().__init__()
        self.cfg = cfg
        self.modulation = ResidualCNNHead(d_model, len(labels.MODULATIONS), cfg)
        self.snr = ResidualCNNHead(d_model, 2, cfg)
        self.mobility = ResidualCNNHead(d_model, len(labels.MOBILITY_CLASSES), cfg)
        self.doppler = ResidualCNNHead(d_model, 2, cfg)

    def forward(self, embedding):
        return (
            self.modulation(embedding),
            gaussian(self.snr(embedding), SNR_CENTRE_DB, SNR_SCALE_DB, self.cfg.snr_sigma_floor_db),
            self.mobility(embedding),
            gaussian(self.doppler(embedding), LOG_DOPPLER_CENTRE, LOG_DOPPLER_SCALE, self.cfg.log_doppler_sigma_floor),
        )

    def losses(self, outputs, targets: Mapping[str, torch.Tensor], unseen=None, weights=None) -> dict:
        mod_logits, snr, mob_logits, doppler = outputs
        seen = torch.ones_like(targets["modulation"], dtype=torch.bool) if unseen is None else ~unseen
        has_mod, has_mob = targets["modulation"] >= 0, (targets["mobility"] >= 0) & seen
        has_snr, has_doppler = ~torch.isnan(targets["snr_db"]), ~torch.isnan(targets["log_doppler"]) & seen
        mod_loss = masked_mean(
            F.cross_entropy(mod_logits, targets["modulation"].clamp(min=0), reduction="none"), has_mod
        )
        mob_loss = masked_mean(F.cross_entropy(mob_logits, targets["mobility"].clamp(min=0), reduction="none"), has_mob)
        snr_loss = gaussian_nll(snr, targets["snr_db"], has_snr)
        doppler_loss = gaussian_nll(doppler, targets["log_doppler"], has_doppler)
        snr_error = (snr[:, 0] - targets["snr_db"].nan_to_num()).abs()
        doppler_error = (doppler[:, 0] - targets["log_doppler"].nan_to_num()).abs()
        return {
            **task_losses(self.loss_terms, (mod_loss, snr_loss, mob_loss, doppler_loss), weights),
            "modulation_accuracy": masked_mean((mod_logits.argmax(-1) == targets["modulation"]).float(), has_mod),
            "mobility_accuracy": masked_mean((mob_logits.argmax(-1) == targets["mobility"]).float(), has_mob),
            "snr_abs_error_db": masked_mean(snr_error.detach(), has_snr),
            "log_doppler_abs_error": masked_mean(doppler_error.detach(), has_doppler),
        }


def build_heads(d_model: int, cfg: HeadsConfig) -> TaskHeads | SeparateHeads:
    return (SeparateHeads if cfg.outputs == "separate" else TaskHeads)(d_model, cfg)


def any_absent(
    absent: Mapping[str, torch.Tensor], batch: int, device=None, among: Sequence[str] | None = None
) -> torch.Tensor:
    """(B,) True where any of the views in `absent` (those `among` alone, when given) is absent."""
    out = torch.zeros(batch, dtype=torch.bool, device=device)
    for name, missing in absent.items():
        if among is None or name in among:
            out = out | missing
    return out


class HeadsTraining(TrainingObjective):
    """Stage 3: the heads on one expert's embedding; the encoder is frozen ("lwm", and then
    absent: the stage feeds cached embeddings) or fine-tuned with the heads ("lwm_ft") at
    `encoder_lr_scale` times their learning rate. In training, a random `absent_prob` of the
    rows go without the expert's optional views (with a frozen encoder: their cached
    embedding made without them, `absent_inputs`), their mobility and Doppler unscored.
    `loss_weights` weighs each task's loss in the sum (1 where not named): the heads share the
    encoder and its gradient, and the regression heads' NLLs can drown the modulation's."""

    def __init__(
        self,
        heads: TaskHeads | SeparateHeads,
        encoder: SpectrogramEncoder | None = None,
        encoder_lr_scale: float = 1.0,
        absent_prob: float = 0.0,
        loss_weights: Mapping[str, float] | None = None,
    ):
        super().__init__()
        unknown = sorted(set(loss_weights or {}) - set(heads.loss_terms))
        if unknown:
            raise ValueError(f"loss_weights names {unknown}; these heads' losses: {', '.join(heads.loss_terms)}")
        self.heads = heads
        self.encoder = encoder
        self.encoder_lr_scale = encoder_lr_scale
        self.absent_prob = absent_prob
        self.loss_weights = dict(loss_weights or {})

    def param_groups(self, lr: float) -> list[dict]:
        groups = decay_groups(self.heads, lr)
        if self.encoder is not None:
            groups += decay_groups(self.encoder, lr * self.encoder_lr_scale)
        return groups

    def forward(
        self, inputs, modulation, snr_mobility=None, snr_db=None, mobility=None, log_doppler=None, absent_inputs=None
    ):
        """`inputs`: the encoder's views, or cached embeddings (and `absent_inputs`, those made
        without the optional views). Targets are -1 (classes) or NaN (numbers) where a row has none."""
        if self.encoder is not None:
            absent = self.encoder.absent(inputs, self.absent_prob)
            embedding = self.encoder.embed(inputs, absent)
            unseen = any_absent(absent, len(embedding), embedding.device, self.encoder.past)
        elif absent_inputs is not None and self.training and self.absent_prob > 0:
            unseen = torch.rand(len(inputs), device=inputs.device) < self.absent_prob
            embedding = torch.where(unseen[:, None], absent_inputs, inputs)
        else:
            embedding, unseen = inputs, None
        targets = {"modulation": modulation, "snr_mobility": snr_mobility, "snr_db": snr_db}
        targets |= {"mobility": mobility, "log_doppler": log_doppler}
        return self.heads.losses(self.heads(embedding), targets, unseen, self.loss_weights)


class RouterTraining(TrainingObjective):
    """Stage 2: cross-entropy of the router against the protocol label (experts untouched)."""

    def __init__(self, router: Router, absent_prob: float = 0.0):
        super().__init__()
        self.router = router
        self.absent_prob = absent_prob

    def forward(self, views: ViewInput, protocol) -> dict:
        logits = self.router.classify(views, self.router.absent(views, self.absent_prob))
        return {"loss": F.cross_entropy(logits, protocol), "accuracy": (logits.argmax(-1) == protocol).float().mean()}


class MixtureOfExperts(nn.Module):
    """The deployed model: router -> top-1 expert (`route`) -> that expert's heads.

    Takes the views by name (a tensor alone when every part reads G alone); each part reads
    its own. Rows routed to `none` or `other` get no expert; their task outputs are NaN and
    their `expert` index is -1. `needs_longer_capture` marks the rows whose expert lacks a
    view of the past (the capture does not reach back): their mobility and Doppler outputs
    are not to be trusted. `mixture=True` also returns the weighted mixture of all expert
    embeddings (Sec. IV-B c), with the router weights renormalised over the experts."""

    def __init__(self, router: Router, experts: dict, heads: dict):
        super().__init__()
        self.router = router
        self.expert_names = tuple(experts)
        unknown = set(self.expert_names) - set(labels.ROUTER_CLASSES)
        if unknown:
            raise ValueError(f"experts {sorted(unknown)} are not router classes {labels.ROUTER_CLASSES}")
        kinds = {type(head) for head in heads.values()}
        if len(kinds) > 1:
            raise ValueError(f"every expert needs the same kind of heads, got {sorted(k.__name__ for k in kinds)}")
        self.experts = nn.ModuleDict(experts)
        self.heads = nn.ModuleDict(heads)
        self.expert_classes = [labels.ROUTER_CLASSES.index(p) for p in self.expert_names]
        self.output_widths = dict(next(iter(heads.values())).output_widths)

    @property
    def view_names(self) -> tuple[str, ...]:
        """Every view some part reads, the router's first."""
        parts = (self.router, *self.experts.values())
        return tuple(dict.fromkeys(name for part in parts for name in part.view_names))

    def forward(self, views: ViewInput, mixture: bool = False, protocol: torch.Tensor | None = None) -> dict:
        """The deployed path: router -> top-1 expert -> its heads. With `protocol` (a
        ROUTER_CLASSES index per row) the rows go to that class's expert instead and the router
        is not run (its views may be missing): "router_logits" and "weights" are then the
        one-hot routing. Calibrating the heads on a dataset without the router's views does so."""
        if isinstance(views, torch.Tensor):
            views = {WIDEBAND: views}
        if protocol is None:
            logits = self.router.classify(views)
            weights = logits.softmax(dim=-1)
        else:
            weights = nn.functional.one_hot(protocol.long(), len(labels.ROUTER_CLASSES)).float()
            logits = weights
        routing = route(weights, labels.ROUTER_CLASSES, self.expert_names)
        b, device = logits.shape[0], logits.device
        d = self.experts[self.expert_names[0]].cfg.d_model
        nan = float("nan")
        out = {
            "router_logits": logits,
            "weights": weights,
            "top1": routing.router_class,
            "expert": routing.expert,
            "embedding": torch.full((b, d), nan, device=device),
            **{name: torch.full((b, width), nan, device=device) for name, width in self.output_widths.items()},
            "needs_longer_capture": torch.zeros(b, dtype=torch.bool, device=device),
        }
        for index, name in enumerate(self.expert_names):
            rows = (routing.expert == index).nonzero(as_tuple=True)[0]
            if len(rows) == 0:
                continue
            expert = self.experts[name]
            chosen = {view: views[view][rows] for view in expert.view_names}
            absent = expert.absent(chosen)
            embedding = expert.embed(chosen, absent)
            out["embedding"][rows] = embedding
            for output, values in zip(self.output_widths, self.heads[name](embedding)):
                out[output][rows] = values
            out["needs_longer_capture"][rows] = any_absent(absent, len(rows), device, expert.past)
        if mixture:
            gate = weights[:, self.expert_classes]
            gate = gate / gate.sum(dim=-1, keepdim=True)
            stacked = torch.stack([self.experts[name].embed(views) for name in self.expert_names], dim=1)
            out["mixture_embedding"] = (gate.unsqueeze(-1) * stacked).sum(dim=1)
        return out


def view_inputs(
    view_params: Mapping[str, Any], names: Sequence[str], also_optional: Sequence[str] = ()
) -> tuple[dict[str, tuple[int, int]], tuple, tuple]:
    """({view name: (T, K)} of the views `names` a part reads, the names of those that may be
    absent from a window: the views of the past, which a short capture does not reach, and
    those of `also_optional`; the names of the views of the past)."""
    missing = [name for name in names if name not in view_params]
    if missing:
        raise ValueError(f"views {missing} are not among the views {sorted(view_params)}")
    shapes = {name: view_registry.view_shape(view_params[name]) for name in names}
    past = tuple(name for name in names if view_registry.reads_past(view_params[name]))
    optional = tuple(name for name in names if name in past or name in also_optional)
    return shapes, optional, past


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
