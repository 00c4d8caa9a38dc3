"""The LWM channel model as the LWM paper defines it: patches, masked channel modelling, CLS, sizes."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lwmspectro.lwm_channels import ChannelPaths, channel_planes, paths_channels
from lwmspectro_train.lwm.model import (
    LwmConfig,
    LwmEncoder,
    MaskedChannelModelling,
    channel_patches,
    mcm_mask,
)
from lwmspectro_train.lwm.train import fitted_scale, load_config
from lwmspectro_train.model import Block, count_parameters

TINY = LwmConfig(antennas=8, subcarriers=8, patch_length=4, d_model=16, n_layers=2, n_heads=3, head_dim=5, dropout=0.0)


def smooth_channels(users: int, seed: int = 0, antennas: int = 8, subcarriers: int = 8) -> np.ndarray:
    """Two paths per user with short delays and departures near broadside: channels that vary
    slowly over antennas and subcarriers, so a masked patch follows from its neighbours."""
    rng = np.random.default_rng(seed)
    shape = (users, 2)
    paths = ChannelPaths(
        power_db=rng.uniform(-100.0, -90.0, shape),
        phase_deg=rng.uniform(-180.0, 180.0, shape),
        delay_s=rng.uniform(0.0, 50e-9, shape),
        aod_az_deg=rng.uniform(-15.0, 15.0, shape),
        aod_el_deg=np.full(shape, 90.0),
    )
    return paths_channels(paths, antennas=antennas, subcarriers=subcarriers, bandwidth_hz=5e6)


def test_patches_are_the_real_then_imaginary_rows_of_h_cut_into_runs_of_l():
    h = (np.arange(32 * 32) + 1j * (1000 + np.arange(32 * 32))).reshape(1, 32, 32)
    patches = channel_patches(torch.from_numpy(channel_planes(h)), 16)
    assert patches.shape == (1, 128, 16)
    # Eq. 2-3: vec(H^T) is H row by row (antenna by antenna); patch 2m + k is half k of antenna m.
    assert torch.equal(patches[0, 2 * 5 + 1], torch.tensor(h[0, 5, 16:].real, dtype=torch.float32))
    assert torch.equal(patches[0, 64 + 2 * 5 + 1], torch.tensor(h[0, 5, 16:].imag, dtype=torch.float32))


def test_mask_selects_15_percent_of_real_patches_and_exactly_their_imaginary_pairs():
    patches = torch.randn(200, 128, 16)
    cfg = LwmConfig()
    masked, selected, action = mcm_mask(patches, cfg.n_masked, 1.0, 1.0, torch.Generator().manual_seed(0))
    assert cfg.n_masked == 9  # 9 of the 64 real patches, as Sec. VI-B
    assert (selected[:, :64].sum(dim=1) == 9).all()
    assert torch.equal(selected[:, :64], selected[:, 64:])
    assert torch.equal(action[:, :64], action[:, 64:])
    assert torch.equal(masked[~selected], patches[~selected])
    assert ((action >= 0) == selected).all()


def test_selected_pairs_are_masked_80_randomised_10_and_left_10_percent():
    patches = torch.randn(4000, 128, 16) + 5.0
    masked, selected, action = mcm_mask(patches, 9, 1.0, 1.0, torch.Generator().manual_seed(1))
    real = action[:, :64][selected[:, :64]]
    shares = [float((real == a).float().mean()) for a in (0, 1, 2)]
    assert shares == pytest.approx([0.8, 0.1, 0.1], abs=0.01)
    assert (masked[action == 0] == 1.0).all()
    assert torch.equal(masked[action == 2], patches[action == 2])
    randomised = masked[action == 1]
    assert abs(float(randomised.mean())) < 0.05 and float(randomised.std()) == pytest.approx(1.0, abs=0.05)


def test_table_i_model_has_about_600k_parameters_and_5_dimensional_heads():
    cfg = load_config("lwm").model
    encoder = LwmEncoder(cfg)
    assert (cfg.n_patches, cfg.patch_length, cfg.d_model, cfg.n_layers, cfg.n_heads) == (128, 16, 64, 12, 12)
    assert 550_000 < count_parameters(encoder) < 650_000
    attention = encoder.blocks[0].attn
    assert (attention.head_dim, attention.inner) == (5, 60)
    assert encoder.blocks[0].ffn.up.out_features == 256


def test_encoder_gives_a_cls_embedding_and_one_embedding_per_patch():
    encoder = LwmEncoder(TINY).eval()
    planes = torch.from_numpy(channel_planes(smooth_channels(3))) * 1e5
    cls, channel = encoder(planes)
    assert cls.shape == (3, 16) and channel.shape == (3, 32, 16)
    tokens = encoder.tokens(encoder.patches(planes))
    assert torch.equal(tokens[:, 0], cls) and torch.equal(tokens[:, 1:], channel)


def test_the_position_of_a_patch_changes_its_embedding():
    encoder = LwmEncoder(TINY).eval()
    same = torch.ones(1, 32, 4)
    _, channel = encoder(torch.zeros(1, 2, 8, 8))
    tokens = encoder.tokens(same)
    assert not torch.allclose(tokens[0, 1], tokens[0, 2])
    assert not torch.allclose(channel[0, 0], channel[0, 1])


def test_lwm_blocks_are_the_shared_block_with_relu_and_the_papers_dropout():
    encoder = LwmEncoder(load_config("lwm").model)
    block = encoder.blocks[0]
    assert type(block) is Block
    assert block.ffn.activation is torch.nn.functional.relu
    assert block.dropout.p == 0.1 and block.attn.dropout == 0.1


def test_attention_dropout_can_be_set_apart_from_the_residual_dropout():
    config = load_config("lwm", ["model.attention_dropout=0.0"]).model
    block = LwmEncoder(config).blocks[0]
    assert block.attn.dropout == 0.0
    assert block.dropout.p == block.ffn.dropout.p == 0.1


def test_learned_positions_give_each_position_its_own_vector():
    config = LwmConfig(**{**TINY.to_dict(), "position_encoding": "learned"})
    encoder = LwmEncoder(config)
    assert encoder.pos_table.shape == (config.n_patches + 1, config.d_model)
    patches = torch.zeros(1, config.n_patches, config.patch_length)
    tokens = encoder.embed(patches)[0]
    assert not torch.allclose(tokens[1], tokens[2])
    with pytest.raises(ValueError, match="linear or learned"):
        LwmConfig(**{**TINY.to_dict(), "position_encoding": "sinusoidal"})


def test_a_config_that_cannot_be_cut_into_patches_is_refused():
    with pytest.raises(ValueError, match="patch_length"):
        LwmConfig(antennas=8, subcarriers=8, patch_length=5)
    with pytest.raises(ValueError, match="mask_ratio"):
        LwmConfig(antennas=2, subcarriers=2, patch_length=4, mask_ratio=0.15)


def test_pretraining_on_a_few_dozen_channels_beats_the_mean_patch():
    torch.manual_seed(0)
    train, held_out = smooth_channels(48, seed=0), smooth_channels(64, seed=1)
    cfg = LwmConfig(**{**TINY.to_dict(), "channel_scale": fitted_scale(train)})
    objective = MaskedChannelModelling(LwmEncoder(cfg))
    x, v = torch.from_numpy(channel_planes(train)), torch.from_numpy(channel_planes(held_out))
    objective.mean_patch.copy_(objective.encoder.patches(x).mean(dim=0))
    optimiser = objective.configure_optimizers(3e-3, (0.9, 0.999), 1e-5)
    assert isinstance(optimiser, torch.optim.Adam)
    for _ in range(300):
        loss = objective(x[torch.randint(0, len(x), (16,))])["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    objective.eval()
    with torch.no_grad():
        scores = [objective(v, torch.Generator().manual_seed(seed)) for seed in range(4)]
    mse = np.mean([float(s["loss"]) for s in scores])
    baseline = np.mean([float(s["mean_patch_mse"]) for s in scores])
    assert mse < 0.75 * baseline
