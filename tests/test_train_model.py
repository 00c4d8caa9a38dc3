"""The LWM-Spectro model: shapes, masking, losses, router, heads and the named configs."""

import dataclasses
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from lwmspectro import labels
from lwmspectro_train.config import load_config
from lwmspectro_train.model import (
    EncoderConfig,
    HeadsConfig,
    HeadsTraining,
    MaskedModelling,
    MixtureOfExperts,
    Router,
    RouterConfig,
    RouterTraining,
    SpectrogramEncoder,
    TaskHeads,
    Trunk,
    ZScore,
    decay_groups,
    masked_mse,
    patchify,
    random_mask,
    route,
    supervised_contrastive_loss,
)

SHAPE = (32, 32)
TINY = EncoderConfig(patch_size=8, d_model=16, n_layers=2, n_heads=2, decoder_hidden=16, projection_dim=8)
TINY_ROUTER = RouterConfig(patch_size=8, d_model=16, n_layers=2, n_heads=2)
TINY_HEADS = HeadsConfig(channels=4, n_blocks=1)


def toy_batch(n=24, seed=0):
    """Spectrograms whose class (0..2) is a bright band at a class-dependent place."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = 0.3 * torch.randn(n, *SHAPE, generator=g)
    for i, c in enumerate(y.tolist()):
        x[i, :, 4 + 8 * c : 12 + 8 * c] += 2.0
    return x, y


def test_patchify_cuts_non_overlapping_patches_time_major():
    x = torch.arange(16 * 8, dtype=torch.float32).reshape(1, 16, 8)
    patches = patchify(x, 4)
    assert patches.shape == (1, 8, 16)
    assert torch.equal(patches[0, 0], x[0, :4, :4].reshape(-1))
    assert torch.equal(patches[0, 1], x[0, :4, 4:8].reshape(-1))
    assert torch.equal(patches[0, 2], x[0, 4:8, :4].reshape(-1))


@pytest.mark.parametrize("use_cls", [False, True])
def test_encoder_shapes(use_cls):
    cfg = EncoderConfig(**{**TINY.to_dict(), "use_cls": use_cls})
    encoder = SpectrogramEncoder(cfg, SHAPE)
    x = torch.randn(3, *SHAPE)
    assert encoder.n_patches == 16
    assert encoder.tokens(x).shape == (3, 16 + int(use_cls), 16)
    assert encoder(x).shape == (3, 16)
    assert torch.allclose(encoder(x), encoder.tokens(x)[:, int(use_cls) :].mean(dim=1), atol=1e-6)


def test_a_shape_not_divisible_by_the_patch_is_zero_padded_after_the_z_score():
    encoder = SpectrogramEncoder(TINY, (30, 36))
    encoder.normalise.set(1.0, 2.0)
    x = torch.full((2, 30, 36), 5.0)
    (patches,) = encoder.patches(x)
    assert encoder.n_patches == 4 * 5 and patches.shape == (2, 20, 64)
    last = patches[0, -1].reshape(8, 8)
    assert torch.all(last[:6, :4] == 2.0) and torch.all(last[6:] == 0.0) and torch.all(last[:, 4:] == 0.0)
    assert encoder(x).shape == (2, 16)


@pytest.mark.parametrize("n_patches", [16, 64, 256, 1024])
def test_mask_covers_exactly_the_configured_ratio(n_patches):
    mask = random_mask(50, n_patches, 0.7)
    expected = math.floor(0.7 * n_patches + 0.5)
    assert torch.all(mask.sum(dim=1) == expected)
    assert len({tuple(row.nonzero().flatten().tolist()) for row in mask}) > 1


def test_masked_patches_are_replaced_by_the_shared_mask_embedding():
    encoder = SpectrogramEncoder(TINY, SHAPE).eval()
    x = torch.randn(2, *SHAPE)
    mask = random_mask(2, encoder.n_patches, 0.7, generator=torch.Generator().manual_seed(1))
    changed = x.clone()
    masked_patch = mask[0].nonzero()[0].item()
    row, col = divmod(masked_patch, SHAPE[1] // 8)
    changed[0, row * 8 : (row + 1) * 8, col * 8 : (col + 1) * 8] += 5.0
    assert torch.allclose(encoder.tokens(x, mask), encoder.tokens(changed, mask))
    assert not torch.allclose(encoder.tokens(x), encoder.tokens(changed))


def test_reconstruction_loss_counts_masked_patches_only():
    prediction, target = torch.randn(4, 16, 64), torch.randn(4, 16, 64)
    mask = random_mask(4, 16, 0.7)
    loss = masked_mse(prediction, target, mask)
    perturbed = prediction.clone()
    perturbed[~mask] += 100.0
    assert masked_mse(perturbed, target, mask) == loss
    perturbed[mask] += 1.0
    assert masked_mse(perturbed, target, mask) != loss
    assert torch.isclose(loss, ((prediction - target) ** 2).mean(-1)[mask].mean())


def test_masked_modelling_loss_ignores_the_decoder_output_at_visible_patches():
    model = MaskedModelling(SpectrogramEncoder(TINY, SHAPE))
    x = torch.randn(3, *SHAPE)
    loss = model(x, generator=torch.Generator().manual_seed(5))["recon"]
    original = model.reconstruct

    def spoil_visible(views, mask, absent):
        (prediction,), tokens = original(views, mask, absent)
        return [prediction.masked_fill(~mask.unsqueeze(-1), 1e3)], tokens

    model.reconstruct = spoil_visible
    assert model(x, generator=torch.Generator().manual_seed(5))["recon"] == loss


def test_contrastive_loss_rewards_clusters_and_skips_unlabelled():
    targets = torch.tensor([0, 0, 1, 1, -1])
    clustered = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.01, 1.0], [1.0, 1.0]]), dim=-1
    )
    mixed = clustered[[0, 2, 1, 3, 4]]
    assert supervised_contrastive_loss(clustered, targets, 0.2) < supervised_contrastive_loss(mixed, targets, 0.2)
    lone = supervised_contrastive_loss(clustered[:3], torch.tensor([0, 0, 1]), 0.2)
    pair_only = supervised_contrastive_loss(clustered[:3], torch.tensor([0, 0, -1]), 0.2)
    assert torch.isfinite(lone) and torch.isfinite(pair_only)


def _train(module, make_loss, steps=40, lr=3e-3):
    optimiser = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=lr)
    with torch.no_grad():
        before = float(make_loss())
    for _ in range(steps):
        optimiser.zero_grad()
        make_loss().backward()
        optimiser.step()
    with torch.no_grad():
        return before, float(make_loss())


def test_a_few_steps_reduce_each_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    x, y = toy_batch()
    model = MaskedModelling(SpectrogramEncoder(TINY, SHAPE), lambda_recon=1.0, lambda_cont=0.3)
    recon = _train(model, lambda: model(x, generator=torch.Generator().manual_seed(3))["recon"])
    contrastive = _train(model, lambda: model(x, y, generator=torch.Generator().manual_seed(3))["contrastive"])
    router = RouterTraining(Router(TINY_ROUTER, SHAPE))
    routing = _train(router, lambda: router(x, y)["loss"])
    heads = HeadsTraining(TaskHeads(TINY.d_model, TINY_HEADS), SpectrogramEncoder(TINY, SHAPE))
    heads_loss = _train(heads, lambda: heads(x, y, y + 3)["loss"])
    for name, (before, after) in {
        "recon": recon,
        "contrastive": contrastive,
        "router": routing,
        "heads": heads_loss,
    }.items():
        assert after < 0.8 * before, f"{name}: {before:.4f} -> {after:.4f}"


def make_moe():
    torch.manual_seed(1)
    experts = {p: SpectrogramEncoder(TINY, SHAPE) for p in labels.PROTOCOLS}
    heads = {p: TaskHeads(TINY.d_model, TINY_HEADS) for p in labels.PROTOCOLS}
    return MixtureOfExperts(Router(TINY_ROUTER, SHAPE), experts, heads).eval()


def test_router_top1_is_the_argmax_of_its_mixture_weights():
    moe = make_moe()
    with torch.no_grad():
        moe.router.classifier.bias.copy_(torch.tensor([0.0, 0.3, -0.2, 0.1, 0.05]) * 10)
        x = torch.randn(40, *SHAPE)
        out = moe(x, mixture=True)
        weights = moe.router.mixture_weights(x)
    assert torch.allclose(out["weights"], weights) and torch.allclose(weights.sum(-1), torch.ones(40))
    assert torch.equal(out["top1"], weights.argmax(dim=-1))
    for i, cls in enumerate(out["top1"].tolist()):
        name = labels.ROUTER_CLASSES[cls]
        if name in labels.PROTOCOLS:
            assert out["expert"][i] == labels.PROTOCOLS.index(name)
            with torch.no_grad():
                assert torch.allclose(out["embedding"][i], moe.experts[name](x[i : i + 1])[0], atol=1e-5)
        else:
            assert out["expert"][i] == -1 and torch.isnan(out["modulation_logits"][i]).all()
    gate = weights[:, :3] / weights[:, :3].sum(-1, keepdim=True)
    with torch.no_grad():
        stacked = torch.stack([moe.experts[p](x) for p in labels.PROTOCOLS], dim=1)
    assert torch.allclose(out["mixture_embedding"], (gate.unsqueeze(-1) * stacked).sum(1), atol=1e-5)


def test_route_takes_the_top_class_among_the_candidates_and_names_its_expert():
    classes, experts = ("wifi", "lte", "nr", "none", "other"), ("wifi", "nr")
    scores = torch.tensor(
        [
            [0.1, 0.9, 0.0, 0.0, 0.0],  # lte wins but has no expert here
            [0.0, 0.0, 0.5, 0.5, 0.0],  # a tie goes to the first class: nr
            [0.0, 0.0, 0.0, 0.2, 0.8],  # other
            [0.7, 0.1, 0.1, 0.1, 0.0],  # wifi
        ]
    )
    routing = route(scores, classes, experts)
    assert routing.router_class.tolist() == [1, 2, 4, 0]
    assert routing.expert.tolist() == [-1, 1, -1, 0]
    among_experts = route(scores, classes, experts, candidates=experts)
    assert among_experts.router_class.tolist() == [0, 2, 0, 0] and among_experts.expert.tolist() == [0, 1, 0, 0]
    assert route(scores.log_softmax(-1), classes, experts).router_class.tolist() == [1, 2, 4, 0]


def test_router_is_the_encoder_trunk_with_a_linear_classifier():
    torch.manual_seed(0)
    router, encoder = Router(TINY_ROUTER, SHAPE), SpectrogramEncoder(TINY, SHAPE)
    assert isinstance(router, Trunk) and isinstance(encoder, Trunk)
    trunk_keys = {k for k in router.state_dict() if not k.startswith("classifier.")}
    assert trunk_keys <= set(encoder.state_dict()) and set(encoder.state_dict()) - trunk_keys == {"mask_token"}
    x = torch.randn(4, *SHAPE)
    with torch.no_grad():
        assert torch.allclose(router(x), router.classifier(router.tokens(x).mean(dim=1)))
    shipped = torch.load(
        Path(__file__).resolve().parents[1] / "models" / "small-wideband" / "weights.pt", weights_only=True
    )
    small = load_config("small")
    Router(small.router).load_state_dict(shipped["router"])
    SpectrogramEncoder(small.model).load_state_dict(shipped["experts"]["wifi"])


def test_one_zscore_for_pixels_and_embeddings():
    pixels = ZScore(2.0, 4.0)
    assert torch.equal(pixels(torch.tensor([6.0])), torch.tensor([1.0]))
    pixels.set(0.0, 2.0)
    assert torch.equal(pixels(torch.tensor([6.0])), torch.tensor([3.0]))
    embeddings = ZScore.fit(torch.tensor([[1.0, 5.0], [3.0, 5.0]]))
    assert embeddings.mean.tolist() == [2.0, 5.0] and embeddings.std.tolist() == [1.0, pytest.approx(1e-6)]


def test_per_row_statistics_give_each_row_of_a_view_its_own_scale():
    shapes = {"level_and_changes": (2, 8)}
    stats = {"views": {"level_and_changes": {"mean": [-40.0, 1.0], "std": [20.0, 0.5]}}}
    cfg = dataclasses.replace(TINY, patch_shapes={"level_and_changes": [1, 8]})
    trunk = SpectrogramEncoder(cfg, shapes)
    trunk.set_normalisation(stats)
    view = torch.tensor([[[-60.0] * 8, [2.0] * 8]])
    assert trunk.patches(view)[0].reshape(2, 8).tolist() == [[-1.0] * 8, [2.0] * 8]
    fresh = SpectrogramEncoder(cfg, shapes)
    fresh.load_state_dict(trunk.state_dict())
    assert torch.equal(fresh.patches(view)[0], trunk.patches(view)[0])
    with pytest.raises(ValueError, match="3 per-row statistics for a view of 2 rows"):
        trunk.set_normalisation({"views": {"level_and_changes": {"mean": [0.0] * 3, "std": [1.0] * 3}}})


def test_configure_optimizers_decays_matrices_only_and_scales_the_encoder_in_lwm_ft():
    objective = MaskedModelling(SpectrogramEncoder(TINY, SHAPE), lambda_cont=0.0)
    optimiser = objective.configure_optimizers(1e-3, (0.9, 0.95), 0.05)
    decay, no_decay = optimiser.param_groups
    trainable = [p for p in objective.parameters() if p.requires_grad]
    assert len(decay["params"]) + len(no_decay["params"]) == len(trainable) < len(list(objective.parameters()))
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert any(p is objective.encoder.mask_token for p in no_decay["params"])
    assert (decay["weight_decay"], no_decay["weight_decay"], decay["lr"], decay["betas"]) == (
        0.05,
        0.0,
        1e-3,
        (0.9, 0.95),
    )

    heads, encoder = TaskHeads(TINY.d_model, TINY_HEADS), SpectrogramEncoder(TINY, SHAPE)
    groups = HeadsTraining(heads, encoder, encoder_lr_scale=0.1).configure_optimizers(1e-3, (0.9, 0.999), 0.05)
    assert [g["lr"] for g in groups.param_groups] == [1e-3, 1e-3, pytest.approx(1e-4), pytest.approx(1e-4)]
    expected = decay_groups(heads, 1e-3) + decay_groups(encoder, 1e-4)
    assert [len(g["params"]) for g in groups.param_groups] == [len(g["params"]) for g in expected]
    frozen = HeadsTraining(heads).configure_optimizers(1e-3, (0.9, 0.999), 0.05)
    assert sum(len(g["params"]) for g in frozen.param_groups) == len(list(heads.parameters()))
    router = RouterTraining(Router(TINY_ROUTER, SHAPE)).configure_optimizers(1e-3, (0.9, 0.999), 0.05)
    assert sum(len(g["params"]) for g in router.param_groups) == len(list(Router(TINY_ROUTER, SHAPE).parameters()))


def test_heads_give_modulation_and_joint_snr_mobility_logits():
    mod, joint = TaskHeads(16, TINY_HEADS).eval()(torch.randn(5, 16))
    assert mod.shape == (5, len(labels.MODULATIONS)) and joint.shape == (5, len(labels.SNR_MOBILITY_CLASSES)) == (5, 21)


def test_each_contrastive_label_set_has_its_own_projection_and_term():
    torch.manual_seed(0)
    x, y = toy_batch()
    two = MaskedModelling(SpectrogramEncoder(TINY, SHAPE), lambda_recon=0.0, lambda_cont=1.0, n_label_sets=2)

    def generator():
        return torch.Generator().manual_seed(3)

    one_label_terms = []
    with torch.no_grad():
        for column, projection in zip((y, y % 2), two.projections):
            single = MaskedModelling(two.encoder, lambda_recon=0.0, lambda_cont=1.0)
            single.projections[0] = projection
            one_label_terms.append(float(single(x, column, generator=generator())["contrastive"]))
        joint = float(two(x, torch.stack([y, y % 2], dim=1), generator=generator())["contrastive"])
    assert joint == pytest.approx(sum(one_label_terms), rel=1e-5)
    with pytest.raises(ValueError, match="1 contrastive label sets for 2 projections"):
        two(x, y, generator=generator())
    assert load_config("small").stage("finetune").contrastive_labels == ("modulation", "snr_mobility")


def test_paper_config_is_table_one():
    cfg = load_config("paper")
    m, pre = cfg.model, cfg.stage("pretrain")
    assert (m.patch_size, m.n_layers, m.d_model, m.n_heads, m.mask_ratio, m.temperature) == (4, 12, 128, 8, 0.7, 0.2)
    assert (128 // m.patch_size) ** 2 == 1024
    assert (pre.lr, pre.betas, pre.weight_decay, pre.warmup_epochs, pre.min_lr, pre.epochs) == (
        5e-4,
        (0.9, 0.999),
        0.05,
        5.0,
        1e-8,
        100,
    )
    fine = cfg.stage("finetune")
    assert (fine.lambda_recon, fine.lambda_cont) == (1.0, 0.3)
    assert (cfg.router.n_layers, cfg.router.d_model) == (2, 64)


def test_paper_size_model_masks_717_of_1024_patches():
    cfg = load_config("paper").model
    model = MaskedModelling(SpectrogramEncoder(cfg, (128, 128)))
    assert model.encoder.n_patches == 1024 and math.floor(0.7 * 1024 + 0.5) == 717
    with torch.no_grad():
        out = model(torch.randn(1, 128, 128))
        embedding = model.encoder(torch.randn(1, 128, 128))
    assert torch.isfinite(out["loss"]) and embedding.shape == (1, 128)


def test_small_config_is_smaller_with_the_same_structure():
    small, paper = load_config("small"), load_config("paper")
    assert (128 // small.model.patch_size) ** 2 < 1024 and small.model.n_layers < paper.model.n_layers
    assert small.model.mask_ratio == 0.7 and small.router.n_layers == 2


def test_bad_config_input_names_the_valid_choices(tmp_path):
    with pytest.raises(ValueError, match=r"valid names: .*paper.*small"):
        load_config("huge")
    with pytest.raises(ValueError, match=r"^model: unknown keys \['n_layer'\]; valid keys: \[.*'n_layers'"):
        load_config("small", ["model.n_layer=3"])
    with pytest.raises(ValueError, match=r"^stages.router: unknown keys \['epoch'\]; valid keys: \[.*'epochs'"):
        load_config("small", ["stages.router.epoch=3"])
    with pytest.raises(ValueError, match=r"^data: unknown keys \['trian'\]; valid keys: \[.*'train'"):
        load_config("small", ["data.trian=x"])
    with pytest.raises(ValueError, match=r"^config: unknown keys \['sead'\]; valid keys: \[.*'seed'"):
        load_config("small", ["sead=1"])
    with pytest.raises(ValueError, match=r"valid: lwm .*lwm_ft"):
        load_config("small", ["heads.mode=frozen"])
    with pytest.raises(ValueError, match="valid: modulation, snr_mobility"):
        load_config("small", ['stages.finetune.contrastive_labels=["protocol"]'])
    with pytest.raises(ValueError, match="must be a list"):
        load_config("small", ['stages.finetune.contrastive_labels="modulation"'])
    with pytest.raises(ValueError, match="valid choices: wifi, lte, nr"):
        load_config("small", ['experts=["wifi","bluetooth"]'])
    assert load_config("small", ["stages.pretrain.epochs=3"]).stage("pretrain").epochs == 3
