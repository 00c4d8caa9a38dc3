"""An example formed only where its views read gives the views the whole stream gives."""

import numpy as np
import pytest

from lwmspectro.dataset_generation import ExamplePlan, make_example
from lwmspectro.synth import DEFAULT_PARAMS, ExampleSpec, ReceivedStream

ALL_VIEWS = ["wideband", "ofdm_aligned_wifi", "ofdm_aligned_15khz", "ofdm_aligned_30khz", "cp_profile", "dynamics"]


@pytest.mark.parametrize("protocol", ["lte", "wifi", "nr", "none", "other"])
def test_a_stream_formed_in_regions_equals_the_whole_stream_there(protocol):
    options = {"lte": ("16QAM", 10e6), "wifi": ("QPSK", 20e6), "nr": ("64QAM", 20e6)}
    if protocol == "none":
        spec = ExampleSpec("none", None, None, None, 1e9, 6)
    else:
        modulation, bandwidth = options.get(protocol, (None, None))
        rate = {"lte": "1/2", "wifi": "1/2", "nr": "2/3"}.get(protocol)
        spec = ExampleSpec(
            protocol, 10.0, "vehicular", 100.0, 2e9, 7, bandwidth, modulation, rate, channel="TDL-C", impairments=True
        )
    n = 300_000
    regions = [(1000, 5000), (77_777, 80_000), (290_000, 300_000)]
    part, _ = ReceivedStream(spec, DEFAULT_PARAMS, n).realise(regions)
    whole, _ = ReceivedStream(spec, DEFAULT_PARAMS, n).realise([(0, n)], measured=regions)
    inside = np.concatenate([np.arange(a, b) for a, b in regions])
    assert np.array_equal(part[inside], whole[inside])
    assert np.count_nonzero(part) == len(inside), "nothing is formed outside the regions"


def views_config(protocol, capture, impairments):
    from lwmspectro.synth import GeneratorConfig

    return GeneratorConfig(
        n_samples=4,
        classes={protocol: 1.0},
        channel="TDL-C",
        views=ALL_VIEWS,
        capture=capture,
        impairment_probability=impairments,
        seed=3,
    )


@pytest.mark.parametrize("protocol", ["lte", "wifi", "nr", "none", "other"])
@pytest.mark.parametrize(
    "capture, impairments",
    [
        (None, 1.0),
        ({"source_rates_hz": [30.72e6], "receiver_impairments": False}, 0.0),
        ({"source_rates_hz": [2e6, 25e6]}, 1.0),
    ],
)
def test_views_of_the_regions_equal_the_whole_streams(protocol, capture, impairments):
    """Exact but for float32 rounding: the resampler's and filters' products are batched
    differently (BLAS and FFTs over other row counts), and an ADC can round such a difference to
    a whole step, so the views are bounded, not compared bit for bit."""
    config = views_config(protocol, capture, impairments)
    plan = ExamplePlan.of(config)
    for index in range(2):
        regions, row = make_example(config, index, plan)
        whole, _ = make_example(config, index, plan, whole_stream=True)
        for name in regions:
            difference = np.abs(regions[name] - whole[name])
            assert difference.max() < 0.1 and difference.mean() < 1e-3, (name, row["capture"])
