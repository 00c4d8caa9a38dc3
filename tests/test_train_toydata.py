"""Small separable toy datasets for the training tests, written with lwmspectro.dataset.

Each class leaves its own mark: the protocol a frequency band, the modulation a time
period of bright frames, the SNR the band's level, the mobility a slow fading rate.
None of it looks like a real spectrogram; it only has to be learnable.
"""

from pathlib import Path

import numpy as np

from lwmspectro import labels
from lwmspectro.dataset import open_dataset, write_manifest, write_shard
from lwmspectro.spectrogram import SpectrogramParams

TOY_PARAMS = SpectrogramParams(sample_rate_hz=1e6, n_fft=32, hop=32, n_frames=32, n_bins=32)
BANDS = {"wifi": (4, 12), "lte": (12, 20), "nr": (20, 28)}


def toy_example(protocol: str, modulation, snr_db, mobility, rng) -> np.ndarray:
    t, k = TOY_PARAMS.shape
    x = 0.3 * rng.standard_normal((t, k))
    if protocol == "other":
        x[:, 1:3] += 2.0
    if protocol in BANDS:
        lo, hi = BANDS[protocol]
        level = 1.0 + 0.15 * snr_db
        period = 2 + labels.MODULATIONS.index(modulation)
        frames = np.arange(t)
        fading = 1.0 + 0.5 * np.sin(2 * np.pi * (labels.MOBILITY_CLASSES.index(mobility)) * frames / t)
        x[:, lo:hi] += (level * fading)[:, None]
        x[frames % period == 0, lo:hi] += 1.5
    return x.astype(np.float32)


def toy_rows(n: int, seed: int, classes=labels.ROUTER_CLASSES) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        protocol = classes[i % len(classes)]
        row = dict.fromkeys(("bandwidth_hz", "code_rate", "coding", "speed_kmh", "doppler_hz", "scenario", "user"))
        row.update(protocol=protocol, modulation=None, snr_db=None, mobility=None, carrier_hz=2.4e9, seed=i)
        if protocol != "none":
            row["snr_db"] = float(rng.choice(labels.SNR_GRID_DB))
            row["mobility"] = str(rng.choice(labels.MOBILITY_CLASSES))
        if protocol in labels.PROTOCOLS:
            row["modulation"] = str(rng.choice(labels.ALLOWED_MODULATIONS[protocol]))
        rows.append(row)
    return rows


def write_toy_dataset(folder: Path, n: int = 120, seed: int = 0, shard_size: int = 50, classes=labels.ROUTER_CLASSES):
    """A dataset folder of `n` toy spectrograms cycling through `classes`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    rows = toy_rows(n, seed, classes)
    x = np.stack([toy_example(r["protocol"], r["modulation"], r["snr_db"] or 0, r["mobility"], rng) for r in rows])
    n_shards = (n + shard_size - 1) // shard_size
    for index in range(n_shards):
        part = slice(index * shard_size, (index + 1) * shard_size)
        write_shard(folder, index, x[part], rows[part])
    write_manifest(folder, TOY_PARAMS, {"toy": True, "seed": seed}, n_shards)
    return folder


def test_toy_dataset_reads_back_with_its_labels(tmp_path):
    folder = write_toy_dataset(tmp_path / "toy", n=30)
    dataset = open_dataset(folder)
    assert len(dataset) == 30 and dataset.params == TOY_PARAMS
    x, row = dataset[5]
    assert x.shape == TOY_PARAMS.shape and row["protocol"] == labels.ROUTER_CLASSES[0]
    lo, hi = BANDS["wifi"]
    assert x[:, lo:hi].mean() > x[:, 28:].mean() + 0.5
