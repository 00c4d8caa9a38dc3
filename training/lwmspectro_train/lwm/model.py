"""LWM, the channel foundation model of the LWM paper (Sec. IV-VI), on the shared transformer.

Read top to bottom; equation numbers refer to the LWM paper.

    channel planes (B, 2, M, N)        real and imaginary part of H (Eq. 1), from lwm_channels
      -> x channel_scale               one fixed factor for every channel (below)
      -> P patches of L values         vec(H^T) of each part cut into P/2 patches (Eq. 2-3)
      -> masked channel modelling      pretraining only: 15 % of the real patches and their
                                       imaginary pairs, 80/10/10 mask / random / unchanged (Sec. IV-B)
      -> CLS patch + P patches         p_CLS = c 1_L, learnable (Sec. IV-C)
      -> W_emb p + b  +  W_pos (i 1_L) + b_pos     Eq. 6-9, position i = 0 for CLS, 1..P
      -> E post-LN Blocks              model.Block with ReLU FFN (Eq. 16) and D_H = floor(D / H)
      -> (CLS embedding (B, D), channel embeddings (B, P, D))      Sec. VII

The transformer layers are model.py's `Block`, configured: ReLU instead of GELU, the paper's
dropout, and `head_dim` for 12 heads in d = 64 (64 / 12 is not an integer; the paper sets
D_H = floor(D / H) = 5, Table I, so the heads span 60 dimensions, which the attention's output
projection maps back to 64).

Normalisation: the LWM reference data multiplies every DeepMIMO channel by one fixed factor,
1e6, which brings the path gains of its city sites (about 1e-7 to 1e-4) near unit scale, and
`channel_scale` is that factor (1e6 by default). One factor for every channel, not a
per-channel normalisation: the channel's strength (path loss) stays in what the model sees,
and a channel's embedding does not depend on the others embedded with it. A corpus whose gains
sit elsewhere (another carrier, transmit power or cell size) may set `channel_scale` to null:
pretraining then fits the factor once, as the reciprocal RMS of the real and imaginary values
of its training channels. Either way the factor is the encoder's `scale` buffer, kept in its
checkpoints, folded into the exported graph and recorded in the bundle's card.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from lwmspectro.config_base import ConfigBase, bounded

from ..model import Block, TrainingObjective, masked_mse, random_mask

MASK_ACTIONS = (0.8, 0.1, 0.1)
"""Shares of the selected patches replaced by the MASK patch, by a random patch, or left as
they are (Sec. IV-B)."""


@dataclass(frozen=True)
class LwmConfig(ConfigBase):
    """The model and its pretraining objective; defaults are the paper's Table I."""

    antennas: int = bounded(32, 1, 4096)
    subcarriers: int = bounded(32, 1, 4096)
    patch_length: int = bounded(16, 1)
    """L: values per patch; 2 M N / L patches, half real, half imaginary."""
    d_model: int = bounded(64, 1)
    n_layers: int = bounded(12, 1)
    n_heads: int = bounded(12, 1)
    head_dim: int = bounded(5, 1)
    """D_H of Table I, floor(d_model / n_heads) in the paper."""
    ffn_mult: int = bounded(4, 1)
    """D_FF = ffn_mult * d_model: 256 in Table I."""
    dropout: float = bounded(0.1, 0.0, 1.0)
    attention_dropout: float | None = bounded(None, 0.0, 1.0)
    """Dropout of the attention weights; null: `dropout`. Zero keeps the fused attention kernel
    on a CPU (model.Block), about six times faster to train there; the residual and FFN
    dropout stay."""
    mask_ratio: float = bounded(0.15, 0.0, 1.0)
    """The share of the real patches selected, rounded down (9 of 64 in Sec. VI-B)."""
    mask_value: float = 1.0
    """m, the value of every entry of the MASK patch (Sec. VI-B)."""
    random_std: float = bounded(1.0, 0.0)
    """sigma of the N(0, sigma^2) entries of a random replacement patch (Sec. IV-B)."""
    channel_scale: float | None = bounded(1e6, 0.0)
    """The one factor every channel is multiplied by before patching; null: fitted by
    pretraining (module docstring)."""
    position_encoding: str = "linear"
    """"linear": Eq. 7-8 as written, W_pos (i 1_L) + b_pos, one direction scaled by the index;
    "learned": one learnt vector per position (W_pos applied to a one-hot index)."""

    def __post_init__(self):
        if (self.antennas * self.subcarriers) % self.patch_length:
            raise ValueError(
                f"patch_length {self.patch_length} must divide antennas x subcarriers "
                f"({self.antennas} x {self.subcarriers}), so that no patch mixes real and imaginary values"
            )
        if self.n_masked < 1:
            raise ValueError(f"mask_ratio {self.mask_ratio} selects no patch of the {self.n_patches // 2} real ones")
        if self.position_encoding not in ("linear", "learned"):
            raise ValueError(f"position_encoding must be linear or learned, got {self.position_encoding!r}")
        if self.channel_scale is not None and self.channel_scale <= 0:
            raise ValueError(f"channel_scale must be positive, got {self.channel_scale}")

    @property
    def n_patches(self) -> int:
        """P, real and imaginary patches together."""
        return 2 * self.antennas * self.subcarriers // self.patch_length

    @property
    def n_masked(self) -> int:
        """Real patches selected per channel (each with its imaginary pair)."""
        return math.floor(self.mask_ratio * (self.n_patches // 2) + 1e-9)


def channel_patches(planes: torch.Tensor, patch_length: int) -> torch.Tensor:
    """(B, 2, M, N) planes -> (B, P, L) patches (Eq. 2-3): each part flattened antenna by
    antenna (vec(H^T): row m of H, then row m + 1) and cut into runs of L values, the real
    part's P/2 patches first. With L = 16 and N = 32, patch 2m + k holds half k of antenna m's
    subcarriers."""
    b = planes.shape[0]
    return planes.reshape(b, -1, patch_length)


def mcm_mask(
    patches: torch.Tensor,
    n_masked: int,
    mask_value: float,
    random_std: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Masked channel modelling's input (Sec. IV-B): (masked patches, selected (B, P) bool,
    action (B, P) int8).

    `n_masked` of the P/2 real patches of every channel are selected, and with each its
    imaginary pair p_{i+P/2}, so that neither part of a selected patch is left to give the
    other away. Each selected pair is, with the same draw for both parts, replaced by the
    MASK patch m 1_L (action 0, 80 %), replaced by N(0, random_std^2) values (action 1,
    10 %) or left unchanged (action 2, 10 %); unselected patches have action -1. The loss
    scores every selected patch, whatever its action."""
    b, p, length = patches.shape
    half = p // 2
    device = patches.device
    chosen = random_mask(b, half, n_masked / half, device, generator)
    draw = torch.rand(b, half, device=device, generator=generator)
    bounds = torch.tensor(MASK_ACTIONS, device=device).cumsum(0)[:-1]
    action = torch.where(chosen, torch.bucketize(draw, bounds, right=True), -1).to(torch.int8)
    selected = torch.cat([chosen, chosen], dim=1)
    action = torch.cat([action, action], dim=1)
    noise = random_std * torch.randn(b, p, length, device=device, generator=generator, dtype=patches.dtype)
    masked = torch.where((action == 0).unsqueeze(-1), torch.full_like(patches, mask_value), patches)
    masked = torch.where((action == 1).unsqueeze(-1), noise, masked)
    return masked, selected, action


class LwmEncoder(nn.Module):
    """Channel planes -> (CLS embedding (B, D), channel embeddings (B, P, D)).

    `forward` takes the planes of lwm_channels.channel_planes and is what the exported graph
    runs; `tokens` takes patches (masked ones in pretraining) and returns all P + 1 tokens."""

    def __init__(self, cfg: LwmConfig):
        super().__init__()
        self.cfg = cfg
        length, d = cfg.patch_length, cfg.d_model
        # W_emb and b of Eq. 6, shared by the CLS patch and every channel patch.
        self.patch_embed = nn.Linear(length, d)
        # p_CLS = c 1_L with c random, then learnt as a vector (Sec. IV-C).
        self.cls_patch = nn.Parameter(torch.randn(()) * torch.ones(length))
        # W_pos and b_pos of Eq. 8, applied to p_i^pos = i 1_L (Eq. 7): zeros for CLS, then 1 .. P;
        # learned: a table of one vector per position.
        if cfg.position_encoding == "learned":
            self.pos_table = nn.Parameter(0.02 * torch.randn(cfg.n_patches + 1, d))
        else:
            self.pos_embed = nn.Linear(length, d)
        # The channel scale (module docstring), a buffer so that checkpoints and the graph keep a fitted one.
        self.register_buffer("scale", torch.tensor(1.0 if cfg.channel_scale is None else cfg.channel_scale))
        positions = torch.arange(cfg.n_patches + 1, dtype=torch.float32)
        self.register_buffer("positions", positions[:, None].expand(-1, length).contiguous(), persistent=False)
        self.blocks = nn.ModuleList(
            Block(
                d,
                cfg.n_heads,
                cfg.ffn_mult,
                cfg.dropout,
                activation="relu",
                head_dim=cfg.head_dim,
                attention_dropout=cfg.attention_dropout,
            )
            for _ in range(cfg.n_layers)
        )
        # W_pos p_i^pos grows with i: started at the default scale, the last position's encoding
        # would be about P times a patch's embedding and drown it. Drawn with std
        # 1 / (P sqrt(L)), the encoding of position P starts near unit scale.
        if cfg.position_encoding == "linear":
            nn.init.normal_(self.pos_embed.weight, std=1.0 / (cfg.n_patches * math.sqrt(length)))

    def patches(self, planes: torch.Tensor) -> torch.Tensor:
        """(B, 2, M, N) channel planes -> their scaled patches (B, P, L), what pretraining reconstructs."""
        return channel_patches(planes * self.scale, self.cfg.patch_length)

    def embed(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, P, L) patches -> the first layer's input (B, P + 1, D): CLS prepended, Eq. 6-9."""
        cls = self.cls_patch.to(patches.dtype).expand(patches.shape[0], 1, -1)
        position = self.pos_table if self.cfg.position_encoding == "learned" else self.pos_embed(self.positions)
        return self.patch_embed(torch.cat([cls, patches], dim=1)) + position

    def tokens(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, P, L) patches -> the final layer's tokens (B, P + 1, D), CLS first (Eq. 5-9, Sec. V)."""
        z = self.embed(patches)
        for block in self.blocks:
            z = block(z)
        return z

    def forward(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.tokens(self.patches(planes))
        return z[:, 0], z[:, 1:]


class MaskedChannelModelling(TrainingObjective):
    """Pretraining (Eq. 4, 19): the encoder on masked patches, a linear decoder W_dec on the
    output tokens of the selected patches, MSE against the original patches.

    The MSE is averaged over the L values of each patch too (Eq. 4 divided by L), so that it
    and `mean_patch_mse`, the trivial baseline that predicts each position's mean patch over
    the training channels (`mean_patch`, set by the caller), read on one scale. `nmse` is the
    squared error over the squared values of the selected patches. Optimised with Adam and
    L2 weight decay, as Table I."""

    def __init__(self, encoder: LwmEncoder):
        super().__init__()
        cfg = encoder.cfg
        self.encoder = encoder
        self.decoder = nn.Linear(cfg.d_model, cfg.patch_length)
        self.register_buffer("mean_patch", torch.zeros(cfg.n_patches, cfg.patch_length))

    def configure_optimizers(self, lr: float, betas: tuple[float, float], weight_decay: float) -> torch.optim.Adam:
        return torch.optim.Adam(self.parameters(), lr=lr, betas=betas, eps=1e-8, weight_decay=weight_decay)

    def forward(self, planes: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        cfg = self.encoder.cfg
        patches = self.encoder.patches(planes)
        masked, selected, _ = mcm_mask(patches, cfg.n_masked, cfg.mask_value, cfg.random_std, generator)
        predicted = self.decoder(self.encoder.tokens(masked)[:, 1:])
        mse = masked_mse(predicted, patches, selected)
        mean_patch = self.mean_patch.expand_as(patches)
        energy = patches[selected].float().pow(2).sum().clamp_min(1e-12)
        return {
            "loss": mse,
            "mean_patch_mse": masked_mse(mean_patch, patches, selected).detach(),
            "nmse": ((predicted - patches)[selected].float().pow(2).sum() / energy).detach(),
            "mean_patch_nmse": ((mean_patch - patches)[selected].float().pow(2).sum() / energy).detach(),
        }
