"""Per-window against tracked readouts on whole recordings of one emission each."""

import pytest

from lwmspectro.synth import GeneratorConfig
from lwmspectro_train import tracked

from bundle_factory import make_bundle


@pytest.fixture(scope="module")
def lte_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("tracked"), forced_class="lte")


@pytest.fixture(scope="module")
def other_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("tracked"), forced_class="lte", seed=3)


TWO_LTE_EMISSIONS = GeneratorConfig(seed=5, classes={"lte": 1.0}, snr_db=[20], channel="TDL-A")


def test_every_window_of_each_recording_is_scored_alone_and_tracked(lte_bundle):
    result = tracked.evaluate(lte_bundle, TWO_LTE_EMISSIONS, recordings=2, seconds=0.1, track_s=0.1, progress=False)
    overall = result["overall"]
    assert overall["protocol"]["accuracy"] == 1.0 and overall["tracked_protocol"]["accuracy"] == 1.0
    windows = overall["protocol"]["windows"]
    assert windows >= 2 * 5 and overall["tracked_modulation"]["windows"] == windows
    assert set(result["per_protocol"]) == {"lte"}


def test_a_plan_realises_the_asked_seconds():
    config = GeneratorConfig(channel="TDL-A", capture={"probability": 1.0})
    plan = tracked.emission_plan(config, 0.25)
    assert plan.samples >= int(0.25 * config.params.sample_rate_hz)


def test_bundles_scored_together_read_the_same_emissions_as_each_alone(lte_bundle, other_bundle):
    alone = [
        tracked.evaluate(bundle, TWO_LTE_EMISSIONS, recordings=2, seconds=0.1, track_s=0.1, progress=False)
        for bundle in (lte_bundle, other_bundle)
    ]
    together = tracked.evaluate_bundles(
        [lte_bundle, other_bundle], TWO_LTE_EMISSIONS, recordings=2, seconds=0.1, track_s=0.1, progress=False, workers=2
    )
    assert together == alone
    assert [result["bundle"] for result in together] == [str(lte_bundle), str(other_bundle)]
    table = tracked.comparison_table(together)
    assert table.count("\n") == 1 + len(tracked.TASKS) and str(other_bundle) in table.splitlines()[0]
