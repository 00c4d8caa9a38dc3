"""Baselines and the LWM head learn a trivially separable toy problem with the shared recipe."""

import numpy as np
import pytest
import torch

from lwmspectro_train.baseline_comparison.baselines import BASELINES, build_baseline, load_pretrained
from lwmspectro_train.baseline_comparison.fit import TrainSettings, fit, predict_logits
from lwmspectro_train.baseline_comparison.lwm import (
    LWMComponents,
    PrototypeClassifier,
    embed,
    finetune_model,
    frozen_model,
)
from lwmspectro_train.metrics import macro_f1
from lwmspectro_train.model import EncoderConfig, HeadsConfig, SpectrogramEncoder, ZScore

SETTINGS = TrainSettings(epochs=12, patience=12, lr=3e-3, batch_size=16, min_steps_per_epoch=4)


def band_spectrograms(n_per_class: int, n_classes: int = 3, size: int = 16, seed: int = 0):
    """Noise with a bright band of rows whose position gives the class."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = rng.normal(0, 0.3, (len(y), size, size)).astype(np.float32)
    rows = size // n_classes
    for i, c in enumerate(y):
        x[i, c * rows : (c + 1) * rows, :] += 2.0
    return x, y


def test_baseline_learns_a_separable_problem():
    torch.manual_seed(0)
    x, y = band_spectrograms(12)
    xv, yv = band_spectrograms(4, seed=1)
    xt, yt = band_spectrograms(10, seed=2)
    model = build_baseline("wu_cnn", 3, width=0.25)
    result = fit(model, x, y, xv, yv, 3, SETTINGS, seed=0)
    pred = predict_logits(model, xt).argmax(1)
    assert macro_f1(yt, pred, range(3)) >= 0.9
    assert 1 <= result.best_epoch <= result.epochs_run


def _toy_components(expert="wifi"):
    encoder = SpectrogramEncoder(EncoderConfig(patch_size=4, d_model=16, n_layers=1, n_heads=2), (16, 16))
    return LWMComponents({expert: encoder}, None, HeadsConfig(channels=8, n_blocks=1), "toy")


def test_lwm_head_learns_separable_embeddings_with_a_large_offset():
    """Like a post-LN encoder's pooled embedding: a large common offset, small class spread."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    offset = rng.normal(0, 3, 16).astype(np.float32)
    centres = offset + rng.normal(0, 0.05, (4, 16)).astype(np.float32)

    def sample(n, seed):
        y = np.repeat(np.arange(4), n)
        return (centres[y] + np.random.default_rng(seed).normal(0, 0.01, (len(y), 16))).astype(np.float32), y

    (x, y), (xv, yv), (xt, yt) = sample(3, 1), sample(2, 2), sample(10, 3)
    model = frozen_model(_toy_components(), x, y, 4)
    fit(model, x, y, xv, yv, 4, SETTINGS, seed=0)
    assert macro_f1(yt, predict_logits(model, xt).argmax(1), range(4)) >= 0.9


def test_imprinted_classifier_is_the_nearest_class_mean_rule_before_any_training():
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (3, 8)).astype(np.float32)
    y = np.repeat(np.arange(3), 2)
    train = torch.as_tensor(centres[y] + rng.normal(0, 0.05, (6, 8)).astype(np.float32))
    classifier = PrototypeClassifier(train, y, 3)
    test = torch.as_tensor(centres + rng.normal(0, 0.05, (3, 8)).astype(np.float32))
    assert classifier(test).argmax(1).tolist() == [0, 1, 2]
    assert torch.allclose(classifier.weight.norm(dim=1), torch.ones(3))


def test_a_class_without_training_samples_gets_no_nan_weight():
    classifier = PrototypeClassifier(torch.ones(2, 4), np.array([0, 0]), 2)
    assert torch.isfinite(classifier(torch.ones(1, 4))).all()


def test_embedding_zscore_uses_the_training_statistics_only():
    train = np.array([[1.0, 10.0], [3.0, 10.0]], np.float32)
    out = ZScore.fit(train)(torch.tensor([[2.0, 10.0], [5.0, 11.0]]))
    assert torch.allclose(out[0], torch.zeros(2))
    assert out[1, 0] == pytest.approx(3.0) and out[1, 1] > 1e5  # constant dimension: floor, no NaN


def test_finetuning_trains_the_encoder_at_a_reduced_rate():
    torch.manual_seed(0)
    components = _toy_components("lte")
    encoder = components.experts["lte"]
    x, y = band_spectrograms(6)
    model, groups = finetune_model(components, "lte", embed(encoder, x), y, 3, lr=1e-3, encoder_lr_scale=0.1)
    assert [g["lr"] for g in groups] == [pytest.approx(1e-4), pytest.approx(1e-3)]
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    fit(model, x, y, x, y, 3, TrainSettings(epochs=1, min_steps_per_epoch=2), seed=0, param_groups=groups)
    changed = any(not torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())
    untouched = all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    assert changed and untouched  # the pretrained original is never modified


@pytest.mark.parametrize("name", list(BASELINES))
def test_every_baseline_maps_spectrograms_to_logits(name):
    model = build_baseline(name, 7, width=0.25).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 32, 32)).shape == (2, 7)


def test_published_sizes_match_torchvision_parameter_counts():
    # torchvision's 1000-class counts, less the 3-channel stem and the classifier difference
    counts = {
        name: sum(p.numel() for p in build_baseline(name, 1000).parameters())
        for name in ("resnet18", "efficientnet_b0", "mobilenet_v3")
    }
    assert counts["resnet18"] == 11_689_512 - 2 * 64 * 7 * 7
    assert counts["efficientnet_b0"] == 5_288_548 - 2 * 32 * 3 * 3
    assert counts["mobilenet_v3"] == 2_542_856 - 2 * 16 * 3 * 3


def test_pretrained_state_dict_with_an_rgb_stem_loads(tmp_path):
    source = build_baseline("resnet18", 10, width=0.25)
    state = source.state_dict()
    rgb = state["conv1.weight"].repeat(1, 3, 1, 1) / 3
    torch.save({**state, "conv1.weight": rgb}, tmp_path / "weights.pth")
    target = build_baseline("resnet18", 4, width=0.25)
    report = load_pretrained(target, tmp_path / "weights.pth")
    assert report["adapted"] == ["conv1.weight"]
    assert set(report["kept"]) == {"fc.weight", "fc.bias"}
    assert torch.allclose(target.conv1.weight, state["conv1.weight"], atol=1e-6)
    assert torch.equal(target.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])


def test_wrong_architecture_weights_are_refused(tmp_path):
    torch.save(build_baseline("wu_cnn", 3).state_dict(), tmp_path / "wu.pth")
    with pytest.raises(ValueError, match="match by name and shape"):
        load_pretrained(build_baseline("resnet18", 3), tmp_path / "wu.pth")


def test_unknown_baseline_lists_the_choices():
    with pytest.raises(ValueError, match="resnet18"):
        build_baseline("vgg16", 3)


def test_macro_f1_scores_exactly_the_classes_it_is_given():
    truth, predicted = np.array([0, 0, 1, 1]), np.array([0, 0, 1, -1])
    assert macro_f1(truth, predicted, np.unique(truth)) == pytest.approx((1.0 + 2 / 3) / 2)
    assert macro_f1(truth, predicted, range(3)) == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)
