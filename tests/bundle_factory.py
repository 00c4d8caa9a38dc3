"""Tiny but real model bundles for tests: small torch modules exported to ONNX with the
tensor names and shapes of lwmspectro.bundle, and a card made by bundle.build_card.

The modules are hand-wired so that tests can steer them: the router scores each expert
protocol by the mean level of one third of the band (wifi the lower third, lte the middle,
nr the upper) and gives `none` a constant score well above what noise gives a band (its
mean fluctuates by about 0.3 at 16 bins), so a flat spectrogram reads as `none`; `forced_class`
adds a large bias that makes one router class win everywhere.
Experts and heads are seeded random linear maps. Every graph is stamped with what it was
"trained" with and the card records the checksums, as an export does; a test that swaps a
graph on purpose calls `restamp` to make the bundle whole again.

    from bundle_factory import make_bundle
    bundle_dir = make_bundle(tmp_path)
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from lwmspectro import labels
from lwmspectro.bundle import CARD_FILE, build_card, write_card
from lwmspectro.spectrogram import DEFAULT_PARAMS, SpectrogramParams

NONE_BIAS = 2.0
BAND_SCALE = 4.0


def export_onnx(module, path, example, input_name: str, output_names, dynamic_batch: bool = True) -> Path:
    """Export `module` (opset 17) with the TorchScript exporter, which needs no onnxscript."""
    import torch

    axes = {name: {0: "batch"} for name in (input_name, *output_names)} if dynamic_batch else None
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            input_names=[input_name],
            output_names=list(output_names),
            dynamic_axes=axes,
            opset_version=17,
        )
    return Path(path)


def band_router(n_bins: int, router_classes, experts, forced_class: str | None = None):
    import torch

    class BandRouter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            weight = torch.zeros(len(router_classes), n_bins)
            bands = np.array_split(np.arange(n_bins), len(experts))
            for protocol, band in zip(experts, bands):
                weight[router_classes.index(protocol), band] = BAND_SCALE / len(band)
            bias = torch.zeros(len(router_classes))
            if "none" in router_classes:
                bias[router_classes.index("none")] = NONE_BIAS
            if forced_class is not None:
                bias[router_classes.index(forced_class)] += 100.0
            self.register_buffer("weight", weight)
            self.register_buffer("bias", bias)

        def forward(self, spectrogram):
            return spectrogram.mean(dim=1) @ self.weight.T + self.bias

    return BandRouter()


def linear_expert(n_bins: int, embedding_dim: int, seed: int):
    import torch

    torch.manual_seed(seed)

    class Expert(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(2 * n_bins, embedding_dim)

        def forward(self, spectrogram):
            profile = torch.cat([spectrogram.mean(dim=1), spectrogram.std(dim=1)], dim=-1)
            return torch.tanh(self.proj(profile))

    return Expert()


def linear_heads(embedding_dim: int, n_modulations: int, n_joint: int, seed: int):
    import torch

    torch.manual_seed(seed)

    class Heads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.modulation = torch.nn.Linear(embedding_dim, n_modulations)
            self.joint = torch.nn.Linear(embedding_dim, n_joint)

        def forward(self, embedding):
            return 3.0 * self.modulation(embedding), 3.0 * self.joint(embedding)

    return Heads()


def make_card(params: SpectrogramParams, experts=labels.PROTOCOLS) -> dict:
    return build_card(
        name="test-tiny",
        params=params,
        experts=experts,
        normalisation={"mean": 0.0, "std": 1.0},
        model={"kind": "hand-wired linear test modules"},
        training={"command": "tests/bundle_factory.py make_bundle", "data": None},
        metrics={},
    )


def make_bundle(
    folder,
    *,
    name: str = "bundle",
    params: SpectrogramParams = DEFAULT_PARAMS,
    experts=labels.PROTOCOLS,
    embedding_dim: int = 16,
    forced_class: str | None = None,
    seed: int = 0,
) -> Path:
    """Write a complete bundle to `folder`/`name` and return its path."""
    import torch

    bundle = Path(folder) / name
    bundle.mkdir(parents=True, exist_ok=True)
    card = make_card(params, experts)
    files = card["files"]
    T, K = params.shape
    spectrogram = torch.zeros(2, T, K)
    router = band_router(K, card["labels"]["router"], list(experts), forced_class)
    export_onnx(router, bundle / files["router"], spectrogram, "spectrogram", ["router_logits"])
    for i, protocol in enumerate(experts):
        expert = linear_expert(K, embedding_dim, seed + 2 * i)
        export_onnx(expert, bundle / files["experts"][protocol], spectrogram, "spectrogram", ["embedding"])
        heads = linear_heads(embedding_dim, len(labels.MODULATIONS), len(labels.SNR_MOBILITY_CLASSES), seed + 2 * i + 1)
        export_onnx(
            heads,
            bundle / files["heads"][protocol],
            torch.zeros(2, embedding_dim),
            "embedding",
            ["modulation_logits", "snr_mobility_logits"],
        )
    return stamp(bundle, card)


def stamp(bundle: Path, card: dict) -> Path:
    """Stamp the graphs of `bundle` with what `card` says they were trained with, then write the
    card with their checksums."""
    from lwmspectro_train.export import stamp_graphs

    stamp_graphs(bundle, card)
    write_card(bundle, card)
    return bundle


def restamp(bundle: Path) -> Path:
    """Make a bundle whose files a test replaced on purpose consistent again (its current card)."""
    return stamp(bundle, json.loads((bundle / CARD_FILE).read_text()))


def band_spectrograms(params: SpectrogramParams, bands, seed: int = 0) -> np.ndarray:
    """Spectrograms (len(bands), T, K) with noise everywhere and a strong level in one third of
    the band (0, 1 or 2) per entry, or None for flat noise; the router above routes them."""
    rng = np.random.default_rng(seed)
    T, K = params.shape
    out = rng.standard_normal((len(bands), T, K)).astype(np.float32) * 0.1
    thirds = np.array_split(np.arange(K), 3)
    for i, band in enumerate(bands):
        if band is not None:
            out[i][:, thirds[band]] += 3.0
    return out
