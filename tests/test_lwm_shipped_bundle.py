"""The shipped channel model, models/lwm: it loads with every checksum and the graph's contract
checked, ONNX Runtime gives the embeddings of its torch weights, and its LoS head reads them."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lwmspectro.lwm_channels import channel_planes, scenario_channels
from lwmspectro.lwm_embed import ChannelEmbedder, LwmBundle
from lwmspectro_train.lwm.export import PARITY_TOLERANCE, load_objective

BUNDLE = Path(__file__).resolve().parents[1] / "models" / "lwm"
SITES = Path(__file__).parent / "fixtures" / "lwm_sites"


@pytest.fixture(scope="module")
def channels():
    bundle = LwmBundle.load(BUNDLE)
    shape = {"antennas": bundle.antennas, "subcarriers": bundle.subcarriers, "bandwidth_hz": bundle.bandwidth_hz}
    return scenario_channels("street_canyon_3p5ghz", SITES, **shape).channels


def test_the_shipped_channel_model_embeds_as_its_torch_weights_do(channels):
    embedder = ChannelEmbedder(BUNDLE)
    embeddings = embedder.embed(channels)
    bundle = embedder.bundle
    assert embeddings.cls.shape == (len(channels), bundle.embedding_dim)
    assert embeddings.channel.shape == (len(channels), bundle.patches, bundle.embedding_dim)
    objective = load_objective(bundle.checkpoint)
    with torch.no_grad():
        cls, patches = objective.encoder(torch.from_numpy(channel_planes(channels)))
    assert np.abs(embeddings.cls - cls.numpy()).max() < PARITY_TOLERANCE
    assert np.abs(embeddings.channel - patches.numpy()).max() < PARITY_TOLERANCE


def test_the_shipped_los_head_gives_probabilities(channels):
    embedder = ChannelEmbedder(BUNDLE)
    probabilities = embedder.los_probabilities(embedder.embed(channels).cls)
    assert probabilities.shape == (len(channels), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_the_card_reports_pretraining_below_the_mean_patch():
    bundle = LwmBundle.load(BUNDLE)
    pretraining = json.loads(bundle.card_path.read_text())["metrics"]["pretraining"]
    assert pretraining["val_nmse"] < pretraining["val_mean_patch_nmse"]
