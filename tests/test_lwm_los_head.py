"""The channel model bundle's optional LoS/NLoS head (`lwmspectro lwm los-head`) and the channel
readout that reports it."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lwmspectro import cli
from lwmspectro.bundle import BundleError
from lwmspectro.lwm_embed import (
    CHANNEL_READOUT_FIELDS,
    ChannelEmbedder,
    LwmBundle,
    channel_faults,
    channel_readout,
    write_card,
)
from lwmspectro_train.lwm.export import add_los_head

from lwm_bundle_factory import ANTENNAS, SUBCARRIERS, make_lwm_bundle

SITES = Path(__file__).resolve().parent / "fixtures" / "lwm_sites"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_lwm_bundle(tmp_path_factory.mktemp("lwm"))


def copy_of(bundle: Path, folder: Path) -> Path:
    shutil.copytree(bundle, folder)
    return folder


def test_channel_faults_are_named():
    """At channel_scale 1e4 the model reads channels whose largest entry is 1e-10 to 1e2."""
    h = np.ones((7, 2, 3), np.complex64) * 1e-4
    h[1] = 0
    h[2, 1, 2], h[3, 0, 0], h[4, 1, 1] = np.nan, np.inf, complex(0, -np.inf)
    h[5] *= 1e7
    h[6] *= 1e-7
    assert channel_faults(h, 1e4) == [None, "all_zero", "nan_or_inf", "nan_or_inf", "nan_or_inf"] + 2 * ["out_of_range"]
    assert channel_faults(h[5:6], 1.0) == [None]


def test_a_readout_names_the_likelier_class_only_for_an_embedded_channel():
    counters = {"channels_seen": 3, "channels_invalid": 1}
    judged = channel_readout(7, los_probabilities=np.array([0.2, 0.8]), **counters)
    assert tuple(judged) == CHANNEL_READOUT_FIELDS
    assert judged == {
        "user": 7,
        "valid": True,
        "invalid_reason": None,
        "los": "los",
        "los_confidence": pytest.approx(0.8),
        **counters,
    }
    marked = channel_readout(8, invalid_reason="all_zero", los_probabilities=np.array([0.9, 0.1]), **counters)
    assert (marked["valid"], marked["los"], marked["los_confidence"]) == (False, None, None)
    with pytest.raises(ValueError, match="clipped"):
        channel_readout(9, invalid_reason="clipped", **counters)


def test_the_head_gives_probabilities_and_the_card_says_how_it_was_made(bundle):
    loaded = LwmBundle.load(bundle)
    assert loaded.los_head == bundle / "los_head.onnx"
    head = loaded.card["los_head"]
    assert head["classes"] == ["nlos", "los"] and head["source"]["synthetic_users"] == 200
    assert head["metrics"]["test_users"] == 40 and head["metrics"]["onnx_max_abs_diff"] < 1e-4
    assert "lwm los-head" in head["command"]["command"]
    rng = np.random.default_rng(0)
    h = (rng.normal(size=(5, ANTENNAS, SUBCARRIERS)) + 1j * rng.normal(size=(5, ANTENNAS, SUBCARRIERS))) * 1e-5
    embedder = ChannelEmbedder(bundle)
    probabilities = embedder.los_probabilities(embedder.embed(h.astype(np.complex64)).cls)
    assert probabilities.shape == (5, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_a_changed_head_or_a_card_without_its_section_is_refused(bundle, tmp_path):
    changed = copy_of(bundle, tmp_path / "changed")
    (changed / "los_head.onnx").write_bytes(b"changed")
    with pytest.raises(BundleError, match="sha256"):
        LwmBundle.load(changed)
    sectionless = copy_of(bundle, tmp_path / "sectionless")
    card = json.loads((sectionless / "card.json").read_text())
    del card["los_head"]
    (sectionless / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="los_head section"):
        LwmBundle.load(sectionless)


def test_a_bundle_without_a_head_says_how_to_add_one(bundle, tmp_path):
    headless = copy_of(bundle, tmp_path / "headless")
    card = json.loads((headless / "card.json").read_text())
    del card["files"]["los_head"], card["los_head"]
    write_card(headless, card)
    with pytest.raises(BundleError, match="lwmspectro lwm los-head"):
        ChannelEmbedder(headless).los_probabilities(np.zeros((1, 16), np.float32))


def test_the_head_trains_on_a_traced_sites_labels_and_needs_both_classes(bundle, tmp_path, capsys):
    site_bundle = copy_of(bundle, tmp_path / "site")
    command = ["lwm", "los-head", "--bundle", str(site_bundle), "--scenario", "street_canyon_3p5ghz"]
    assert cli.main([*command, "--folder", str(SITES), "--epochs", "5"]) == 0
    assert "added a LoS/NLoS head" in capsys.readouterr().out
    source = LwmBundle.load(site_bundle).card["los_head"]["source"]
    assert source == {"scenarios": ["street_canyon_3p5ghz"], "folder": str(SITES), "users": 16}
    h = np.ones((6, ANTENNAS, SUBCARRIERS), np.complex64)
    with pytest.raises(ValueError, match="both classes"):
        add_los_head(site_bundle, h, np.zeros(6, bool), record={}, source={})
