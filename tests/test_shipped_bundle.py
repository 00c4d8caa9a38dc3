"""CI guard: the shipped bundles, on examples freshly generated from the held-out site by
today's generator, reach the metrics their cards report (within a tolerance for the small
sample). A card's `metrics.held_out` is measured on the generator named in its `measured_with`;
a generator change that moves the figures needs the card re-measured.

`models/small` reads the views of the realistic corpus (capture chain included); the wideband-only
`models/small-wideband` reads G as the generator realises it at its frames."""

from pathlib import Path

import numpy as np
import pytest

from lwmspectro import labels
from lwmspectro.dataset_generation import ExamplePlan, make_example
from lwmspectro.runtime import Runtime
from lwmspectro.synth import GeneratorConfig, draw_spec, make_spectrogram

MODELS = Path(__file__).resolve().parents[1] / "models"
BUNDLE = MODELS / "small"
WIDEBAND_BUNDLE = MODELS / "small-wideband"
CONFIGS = Path(labels.__file__).parent / "configs"
TOLERANCE = 0.12
"""Allowed shortfall against the card: ~45-65 fresh protocol examples give a binomial std of
0.04-0.07, ~15-22 noise-only ones about 0.10 (twice the tolerance there)."""
FRESH = {"seed": 9001, "snr_db": [0, 10, 20], "classes": {"wifi": 0.25, "lte": 0.25, "nr": 0.25, "none": 0.25}}
"""A seed the cards' held-out sets did not use: new examples from the same site and recipe."""


def fresh_config(name: str) -> GeneratorConfig:
    return GeneratorConfig(**{**GeneratorConfig.from_file(CONFIGS / name).to_dict(), **FRESH})


@pytest.fixture(scope="module")
def fresh_views():
    """60 fresh held-out examples with the views models/small reads, in its card's order."""
    runtime = Runtime(BUNDLE)
    config = fresh_config("heldout-constellation.json")
    plan = ExamplePlan.of(config)
    rows, arrays = [], []
    for index in range(60):
        views, row = make_example(config, index, plan)
        arrays.append([views[name] for name in runtime.view_names])
        rows.append(row)
    return runtime, [np.stack(view) for view in zip(*arrays)], rows


@pytest.fixture(scope="module")
def fresh_wideband():
    config = fresh_config("heldout.json")
    rows, spectrograms = [], []
    for index in range(90):
        spectrogram, row = make_spectrogram(draw_spec(config, index), config.params)
        spectrograms.append(spectrogram)
        rows.append(row)
    return Runtime(WIDEBAND_BUNDLE), np.stack(spectrograms), rows


def assert_card_holds(runtime: Runtime, readouts: list[dict], rows: list[dict]) -> None:
    truth = np.array([row["protocol"] for row in rows])
    said = np.array([r["protocol"] for r in readouts])
    card = runtime.bundle.metrics["held_out"]["targets"]
    noise = truth == "none"
    assert 8 <= noise.sum() <= len(rows) // 2
    accuracy = float(np.mean(said[~noise] == truth[~noise]))
    assert accuracy >= card["router_accuracy_snr_ge_0"]["value"] - TOLERANCE
    assert np.mean(said[noise] == "none") >= card["none_recall"]["value"] - 2 * TOLERANCE


@pytest.mark.parametrize("bundle,config", [(BUNDLE, "heldout-constellation.json"), (WIDEBAND_BUNDLE, "heldout.json")])
def test_card_describes_the_generator_and_model_it_ships_with(bundle, config):
    runtime = Runtime(bundle)
    assert runtime.params.to_dict() == GeneratorConfig().params.to_dict()
    assert runtime.router_classes == list(labels.ROUTER_CLASSES)
    held_out = runtime.bundle.metrics["held_out"]
    assert "targets" in held_out
    recipe = GeneratorConfig.from_file(CONFIGS / config).to_dict()
    if bundle == WIDEBAND_BUNDLE:  # measured on the recipe before sets stored views (which leave G unchanged)
        recipe.pop("views", None)
    measured = held_out["generator_config"]
    # A recipe may have gained views since (a dataset's config grows in views): the card's are among them.
    assert set(measured.get("views", [])) <= set(recipe.get("views", []))
    assert {**measured, "views": None} == {**recipe, "views": None}
    # Scored at export (the training run's commit) or re-scored later (the commit it names).
    commands = runtime.bundle.card["training"]["commands"]
    assert held_out.get("measured_with", {}).get("generator_git_commit") or commands[0]["git_commit"]


def test_the_views_model_holds_its_card_on_fresh_heldout_examples(fresh_views):
    runtime, views, rows = fresh_views
    assert_card_holds(runtime, runtime.classify(views), rows)


def test_the_wideband_model_holds_its_card_on_fresh_heldout_examples(fresh_wideband):
    runtime, spectrograms, rows = fresh_wideband
    assert_card_holds(runtime, runtime.classify(spectrograms), rows)
