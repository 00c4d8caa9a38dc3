"""The dynamics-view study: its variants read the snippet powers as the view does, and its
common-mode rows cancel what moves the whole band at once."""

import numpy as np
import pytest

from lwmspectro.dynamics import dynamics_from_powers
from lwmspectro_train.dynamics_probe import LAYOUTS, VARIANTS, Variant, example_powers, features

TODAY = LAYOUTS["33 us every 1 ms"]


def static_powers(seed=0):
    """A static channel: each subband keeps its gain, the data moves each snippet by ~0.3 dB."""
    rng = np.random.default_rng(seed)
    gains = 10 ** (rng.uniform(-10, 0, TODAY.n_subbands) / 10)
    return gains * (1 + 0.07 * rng.standard_normal((TODAY.n_snippets, TODAY.n_subbands)))


def test_todays_variant_is_the_registered_view():
    power = static_powers()
    assert np.array_equal(features(VARIANTS["today's view"], power), dynamics_from_powers(TODAY, power).ravel())


def test_a_gain_step_moves_the_view_but_not_its_common_mode_rows():
    power = static_powers()
    power[TODAY.n_snippets // 2 :] *= 10 ** (8 / 10)
    rows = features(Variant("33 us every 1 ms", common_mode=True), power).reshape(-1, TODAY.n_subbands)
    n_lags = len(TODAY.lags)
    view, common_mode = rows[: 2 * n_lags + 1], rows[2 * n_lags + 1 :]
    longest_median = 2 * n_lags
    assert view[longest_median].mean() == pytest.approx(8, abs=0.5)
    assert common_mode[-1].mean() < 0.5


def test_wider_subbands_pool_the_power_of_their_narrow_ones():
    power = static_powers()
    rows = features(Variant("33 us every 1 ms", subbands=8), power).reshape(-1, 8)
    assert rows.shape == (2 * len(TODAY.lags) + 1, 8)
    pooled = power.reshape(len(power), 8, 4).sum(-1)
    assert rows[0].max() == 0 and rows[0].min() == pytest.approx(
        10 * np.log10(pooled.mean(0).min() / pooled.mean(0).max()), abs=0.2
    )


def test_every_snippet_of_each_layout_is_read_from_the_re_synthesised_example():
    """The examples are made with G and the layouts as their views, so each layout's snippets
    hold the signal and its noise, none the zeros of samples left unformed."""
    chunk = example_powers("python/lwmspectro/configs/heldout-constellation.json", 0, 1)
    assert chunk["protocol"].tolist() == ["wifi"] and chunk["mobility"][0] >= 0
    for name, params in LAYOUTS.items():
        assert chunk[name].shape == (1, params.n_snippets, params.n_subbands)
        assert (chunk[name][0].sum(axis=1) > 0).all(), name
