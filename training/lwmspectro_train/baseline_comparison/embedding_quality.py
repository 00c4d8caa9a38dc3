"""Embedding quality (the paper's Fig. 3 and 4): t-SNE of raw spectrograms (G) against LWM
embeddings (of the views the expert reads), coloured by SNR and by modulation, with
silhouette scores that put a number on how well each space separates those labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from lwmspectro import labels

from .figures import tsne_panels
from .lwm import LWMComponents, embed, read_views


def _pick_protocol(rows, scenario: str, experts) -> str:
    """5G NR as in the paper's figures, else the first expert with held-out samples."""
    have = {r.get("protocol") for r in rows if r.get("scenario") == scenario}
    for protocol in ("nr", *experts):
        if protocol in have and protocol in experts:
            return protocol
    raise ValueError(f"no held-out samples of scenario {scenario!r} for any expert {list(experts)}")


def embedding_quality(
    dataset,
    components: LWMComponents,
    out_dir,
    scenario: str,
    n_samples: int,
    seed: int = 0,
    device: str = "cpu",
    bundle: str = "",
) -> dict:
    """Write tsne.png and embedding_quality.json to `out_dir`; return the JSON content."""
    out_dir = Path(out_dir)
    rows = dataset.labels
    protocol = _pick_protocol(rows, scenario, list(components.experts))
    candidates = np.asarray(
        [
            i
            for i, r in enumerate(rows)
            if r.get("scenario") == scenario
            and r.get("protocol") == protocol
            and r.get("modulation") in labels.MODULATIONS
        ]
    )
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.permutation(candidates)[:n_samples])
    x = dataset.spectrograms(chosen)
    snr = np.asarray([rows[i]["snr_db"] for i in chosen], np.float64)
    modulation = np.asarray([labels.MODULATIONS.index(rows[i]["modulation"]) for i in chosen])
    raw = PCA(n_components=min(50, len(x) - 1), random_state=seed).fit_transform(x.reshape(len(x), -1))
    expert = components.experts[protocol]
    lwm = StandardScaler().fit_transform(embed(expert, read_views(dataset, expert.view_names, chosen), device=device))
    spaces = {"raw spectrogram (PCA-50)": raw, f"LWM embedding ({protocol} expert)": lwm}
    perplexity = float(min(30.0, (len(x) - 1) / 3))
    points = {
        name: TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
        for name, features in spaces.items()
    }
    snr_bins = labels.nearest_snr_bin(snr)
    colourings = {"SNR": (snr_bins, None), "modulation": (modulation, list(labels.MODULATIONS))}
    tsne_panels(points, colourings, f"t-SNE of {len(x)} held-out {protocol} samples ({scenario})", out_dir / "tsne.png")

    def silhouette(features, values):
        return float(silhouette_score(features, values)) if len(np.unique(values)) > 1 else float("nan")

    result = {
        "protocol": protocol,
        "scenario": scenario,
        "n_samples": len(x),
        "bundle": bundle,
        "silhouette": {
            name: {"snr": silhouette(features, snr_bins), "modulation": silhouette(features, modulation)}
            for name, features in spaces.items()
        },
    }
    (out_dir / "embedding_quality.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
