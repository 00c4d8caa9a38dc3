"""A card's views: absent means today's wideband G (every bundle shipped reads as before),
listed views are checked and stamped into the graphs, and a multi-view model gets each view
its graphs' inputs name. The tiny multi-view graphs are written with onnx.helper."""

import json
from pathlib import Path

import numpy as np
import pytest

from lwmspectro import labels
from lwmspectro.bundle import METADATA_KEY, Bundle, BundleError, build_card, graph_metadata, load_bundle, write_card
from lwmspectro.dynamics import DynamicsParams
from lwmspectro.framer import ObservationFramer
from lwmspectro.runtime import Runtime, softmax
from lwmspectro.spectrogram import DEFAULT_PARAMS, SpectrogramParams, spectrograms
from lwmspectro.synth import SyntheticStream
from lwmspectro.views import VIEWS, view_to_dict

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "small-wideband"
WIDEBAND = SpectrogramParams(sample_rate_hz=1e6, n_fft=32, hop=64, n_frames=32, n_bins=16)
PAST = DynamicsParams(
    sample_rate_hz=1e6, n_fft=32, frames_per_snippet=2, hop_s=5e-4, n_snippets=16, n_subbands=8, lags=(1, 2, 4)
)
CARD_VIEWS = [WIDEBAND, VIEWS["cp_profile"], PAST]
NAMES = ["wideband", "cp_profile", "dynamics"]
EMBEDDING = 6
EXPERT_INPUTS = {"wifi": ["spectrogram"], "lte": ["dynamics", "wideband"], "nr": ["cp_profile"]}
"""The views each expert reads; the wifi expert names the wideband view as today's graphs do."""


def weights(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def profile_graph(path, inputs, shapes, output, width, seed):
    """`output` = the sum over `inputs` of (the input's mean over its rows) @ a seeded matrix."""
    nodes, initializers, terms = [], [], []
    for i, (name, (_rows, columns)) in enumerate(zip(inputs, shapes)):
        initializers.append(numpy_helper.from_array(weights(seed + i, columns, width), f"w{i}"))
        nodes.append(helper.make_node("ReduceMean", [name], [f"mean{i}"], axes=[1], keepdims=0))
        nodes.append(helper.make_node("MatMul", [f"mean{i}", f"w{i}"], [f"term{i}"]))
        terms.append(f"term{i}")
    nodes.append(helper.make_node("Sum", terms, [output]))
    graph = helper.make_graph(
        nodes,
        "profile",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", *s]) for n, s in zip(inputs, shapes)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", width])],
        initializers,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)


def heads_graph(path, seed):
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["embedding", "wm"], ["modulation_logits"]),
            helper.make_node("MatMul", ["embedding", "wj"], ["snr_mobility_logits"]),
        ],
        "heads",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMBEDDING])],
        [
            helper.make_tensor_value_info("modulation_logits", TensorProto.FLOAT, ["batch", len(labels.MODULATIONS)]),
            helper.make_tensor_value_info(
                "snr_mobility_logits", TensorProto.FLOAT, ["batch", len(labels.SNR_MOBILITY_CLASSES)]
            ),
        ],
        [
            numpy_helper.from_array(weights(seed, EMBEDDING, len(labels.MODULATIONS)), "wm"),
            numpy_helper.from_array(weights(seed + 1, EMBEDDING, len(labels.SNR_MOBILITY_CLASSES)), "wj"),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)


def stamp(folder: Path, card: dict) -> dict:
    """Stamp every graph with what `card` says it was trained with, then write the card."""
    for path in folder.glob("*.onnx"):
        model = onnx.load(str(path))
        helper.set_model_props(model, {METADATA_KEY: graph_metadata(card)})
        onnx.save(model, str(path))
    return write_card(folder, card)


def multi_view_bundle(folder: Path, expert_inputs=EXPERT_INPUTS) -> Path:
    card = build_card(
        name="multi-view",
        params=WIDEBAND,
        views=CARD_VIEWS,
        normalisation={},
        model={"kind": "onnx.helper test graphs"},
        training={},
        metrics={},
    )
    folder.mkdir(parents=True, exist_ok=True)
    shapes = dict(zip(NAMES, (v.shape for v in CARD_VIEWS)), spectrogram=WIDEBAND.shape, cp=(4, 64))
    router_inputs = ["wideband", "cp_profile"]
    router_shapes = [shapes[n] for n in router_inputs]
    profile_graph(folder / "router.onnx", router_inputs, router_shapes, "router_logits", len(labels.ROUTER_CLASSES), 0)
    for i, protocol in enumerate(labels.PROTOCOLS):
        inputs = expert_inputs[protocol]
        expert = folder / f"expert_{protocol}.onnx"
        profile_graph(expert, inputs, [shapes[n] for n in inputs], "embedding", EMBEDDING, seed=10 * (i + 1))
        heads_graph(folder / f"heads_{protocol}.onnx", seed=100 + i)
    stamp(folder, card)
    return folder


def expected_profile(views, seed, width):
    """What profile_graph computes, in numpy."""
    return sum(view.mean(axis=1) @ weights(seed + i, view.shape[2], width) for i, view in enumerate(views))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return multi_view_bundle(tmp_path_factory.mktemp("bundles") / "multi")


def batch(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, *v.shape)).astype(np.float32) for v in CARD_VIEWS]


# --- the card ------------------------------------------------------------------------------------


def test_a_card_without_views_reads_its_wideband_g_as_before():
    shipped = load_bundle(SHIPPED)
    assert "views" not in shipped.card
    assert shipped.views == (DEFAULT_PARAMS,) and shipped.view_names == ["wideband"]
    assert "views" not in json.loads(graph_metadata(shipped.card))
    explicit = {**shipped.card, "views": [view_to_dict(DEFAULT_PARAMS)]}
    assert graph_metadata(explicit) == graph_metadata(shipped.card)
    assert Bundle.from_card(explicit, SHIPPED).views == shipped.views


def test_the_shipped_models_readouts_are_those_of_g_of_each_window():
    """models/small-wideband on a fixed synthetic recording at its analysis rate: each window read as
    G of that window alone, as before views, to the last digit."""
    stream = SyntheticStream(cycle=True, seed=11)
    recording = np.concatenate([stream.next_observation()[0] for _ in range(4)])
    runtime = Runtime(SHIPPED, intra_op_threads=1)
    got = runtime.classify_iq(recording, DEFAULT_PARAMS.sample_rate_hz)
    windows = spectrograms(recording, DEFAULT_PARAMS)
    span = DEFAULT_PARAMS.window_samples
    expected = runtime.classify(windows, window_starts=[k * span for k in range(len(windows))])
    fields = ("window_start", "protocol", "modulation", "snr_db", "mobility")
    assert [[r[f] for f in fields] for r in got] == [[r[f] for f in fields] for r in expected]
    for key in ("protocol_confidence", "modulation_confidence", "snr_confidence", "mobility_confidence"):
        assert [r[key] for r in got] == [r[key] for r in expected]


def test_listed_views_are_parsed_in_order(bundle):
    loaded = load_bundle(bundle)
    assert loaded.views == tuple(CARD_VIEWS) and loaded.view_names == NAMES
    assert json.loads(graph_metadata(loaded.card))["views"] == [view_to_dict(v) for v in CARD_VIEWS]


@pytest.mark.parametrize(
    "views,error",
    [
        ([], r"views must be a non-empty list"),
        ({"name": "wideband"}, r"views must be a non-empty list of views, not an object"),
        ([view_to_dict(WIDEBAND), {"name": "wideband", "params": {"n_ftt": 32}}], r"views\.1\.params.*n_ftt"),
        ([view_to_dict(WIDEBAND), {"name": "spectrum", "params": {}}], r"views\.1\.name: unknown view 'spectrum'"),
        ([view_to_dict(WIDEBAND), view_to_dict(WIDEBAND)], r"views\.1 repeats views\.0"),
    ],
)
def test_a_bad_list_of_views_is_refused_naming_the_field(bundle, views, error):
    card = {**load_bundle(bundle).card, "views": views}
    with pytest.raises(BundleError, match=error):
        Bundle.from_card(card, bundle, verify=False)


def test_views_edited_after_export_are_refused(bundle, tmp_path):
    card = dict(load_bundle(bundle).card)
    card["views"] = card["views"][:2]
    with pytest.raises(BundleError, match=r"views are .* but router\.onnx was exported with"):
        Bundle.from_card(card, bundle)


# --- the runtime --------------------------------------------------------------------------------


def test_each_graph_gets_the_views_its_inputs_name(bundle):
    runtime = Runtime(bundle, intra_op_threads=1)
    assert runtime.view_names == NAMES
    views = batch(12)
    outputs = runtime.predict(views)
    router = softmax(expected_profile(views[:2], 0, len(labels.ROUTER_CLASSES)))
    for i, output in enumerate(outputs):
        chosen = int(router[i].argmax())
        assert output.protocol == labels.ROUTER_CLASSES[chosen]
        assert output.protocol_confidence == pytest.approx(float(router[i, chosen]), rel=1e-4)
        if output.protocol in EXPERT_INPUTS:
            read = [NAMES.index("wideband" if n == "spectrogram" else n) for n in EXPERT_INPUTS[output.protocol]]
            embedding = expected_profile([views[v][i : i + 1] for v in read], 10 * (chosen + 1), EMBEDDING)[0]
            np.testing.assert_allclose(output.embedding, embedding, rtol=1e-4, atol=1e-5)
    assert {o.protocol for o in outputs} & set(EXPERT_INPUTS)


def test_a_window_without_a_view_of_the_past_its_expert_reads_is_too_short_and_never_fed(bundle):
    """Only the lte expert reads the dynamics view: a window without it is read when the router
    sends it elsewhere; a broken router view leaves nothing to read."""
    runtime = Runtime(bundle, intra_op_threads=1)
    views = batch(24, seed=1)
    whole = runtime.predict(views)
    views[2][:] = np.nan  # no dynamics: the capture did not reach back far enough
    views[1][0, 0, 0] = np.inf  # a broken view
    outputs = runtime.predict(views)
    assert outputs[0].reason == "nan_or_inf"
    expected = ["too_short" if o.protocol == "lte" else o.protocol for o in whole[1:]]
    assert [getattr(o, "reason", None) or o.protocol for o in outputs[1:]] == expected
    assert "too_short" in expected and len(set(expected)) > 1


def test_raw_iq_is_framed_into_the_cards_views(bundle):
    runtime = Runtime(bundle, intra_op_threads=1)
    rate = 1e6
    framer = ObservationFramer(CARD_VIEWS, rate)
    iq = (np.random.default_rng(2).standard_normal(8 * framer.span) * (1 + 1j)).astype(np.complex64)
    readouts = runtime.classify_iq(iq, rate)
    (windows,) = framer.frame_recording(iq)
    assert [r["window_start"] for r in readouts] == list(windows.starts)
    absent = np.isnan(windows.views[2]).all(axis=(1, 2))
    assert absent[0] and not absent[-1]
    # The router does not read the dynamics view: zeros in its place route each window alike.
    routed = [o.protocol for o in runtime.predict([*windows.views[:2], np.zeros_like(windows.views[2])])]
    too_short = absent & (np.array(routed) == "lte")
    assert [r["invalid_reason"] for r in readouts] == ["too_short" if t else None for t in too_short]
    assert [r["protocol"] for r in readouts if r["valid"]] == [p for p, t in zip(routed, too_short) if not t]


def test_a_routed_framer_computes_the_views_of_the_router_and_its_chosen_expert_only(bundle):
    """Only the lte expert reads the dynamics view: routed, a window the router sends elsewhere
    has none, one sent to lte the very numbers of the unrouted framer, and each window reads out
    as unrouted without the router running again."""
    runtime = Runtime(bundle, intra_op_threads=1)
    rate = 1e6
    routing = runtime.routing()
    assert routing is not None and routing.lead == [0, 1]
    iq = (np.random.default_rng(4).standard_normal(12 * ObservationFramer(CARD_VIEWS, rate).span) * (1 + 1j)).astype(
        np.complex64
    )
    (whole,) = ObservationFramer(CARD_VIEWS, rate).frame_recording(iq)
    (routed,) = ObservationFramer(CARD_VIEWS, rate, routing=routing).frame_recording(iq)
    expected = runtime.predict([*whole.views[:2], np.zeros_like(whole.views[2])])
    protocols = np.array([o.protocol for o in expected])
    assert {"lte", "wifi"} <= set(protocols)
    for view in (0, 1):
        np.testing.assert_array_equal(routed.views[view], whole.views[view])
    lte = protocols == "lte"
    np.testing.assert_array_equal(routed.views[2][lte], whole.views[2][lte])
    assert np.isnan(routed.views[2][~lte]).all()
    np.testing.assert_allclose(routed.routes, [o.probabilities["protocol"] for o in expected], rtol=1e-5)
    read = runtime.predict(list(routed.views), routed.routes)
    assert [getattr(o, "reason", None) or o.protocol for o in read] == [
        getattr(o, "reason", None) or o.protocol for o in runtime.predict(list(whole.views))
    ]


def test_a_routed_framer_computes_the_views_beside_the_cards_whatever_the_route(bundle):
    runtime = Runtime(bundle, intra_op_threads=1)
    beside = SpectrogramParams(sample_rate_hz=1e6, n_fft=16, hop=64, n_frames=32, n_bins=16)
    chosen = [beside, *CARD_VIEWS]
    rate = 1e6
    iq = (np.random.default_rng(6).standard_normal(10 * ObservationFramer(chosen, rate).span) * (1 + 1j)).astype(
        np.complex64
    )
    (whole,) = ObservationFramer(chosen, rate).frame_recording(iq)
    (routed,) = ObservationFramer(chosen, rate, routing=runtime.routing(chosen)).frame_recording(iq)
    np.testing.assert_array_equal(routed.views[0], whole.views[0])
    assert np.isfinite(routed.views[0]).all()


def test_a_window_whose_router_fails_in_the_framer_gets_every_view_and_no_route(bundle, caplog):
    runtime = Runtime(bundle, intra_op_threads=1)
    routing = runtime.routing()
    rate = 1e6
    iq = (np.random.default_rng(8).standard_normal(6 * ObservationFramer(CARD_VIEWS, rate).span) * (1 + 1j)).astype(
        np.complex64
    )
    (whole,) = ObservationFramer(CARD_VIEWS, rate).frame_recording(iq)

    def broken(outputs):
        raise RuntimeError("no session")

    routing.choose = broken
    framer = ObservationFramer(CARD_VIEWS, rate, routing=routing)
    (framed,) = framer.frame_recording(iq)
    for view, expected in zip(framed.views, whole.views):
        np.testing.assert_array_equal(view, expected)
    assert np.isnan(framed.routes).all()
    assert framer.routing_failures == len(framed)
    assert caplog.text.count("computing every view") == 1


def test_routes_of_the_wrong_shape_are_refused(bundle):
    runtime = Runtime(bundle, intra_op_threads=1)
    with pytest.raises(ValueError, match=r"routes must have shape \(3, 5\)"):
        runtime.predict(batch(3), np.ones((3, 4)))


def test_a_bundle_whose_experts_read_only_router_views_is_not_routed():
    assert Runtime(SHIPPED, intra_op_threads=1).routing() is None


@pytest.mark.parametrize(
    "experts,error",
    [
        ({**EXPERT_INPUTS, "nr": ["cp"]}, r"expert_nr\.onnx: input 'cp' is not one of the card's views"),
        (
            {**EXPERT_INPUTS, "lte": ["spectrogram", "wideband"]},
            r"expert_lte\.onnx: inputs \['spectrogram', 'wideband'\] read one view twice",
        ),
    ],
)
def test_an_input_that_names_no_view_or_one_twice_is_refused(tmp_path, experts, error):
    with pytest.raises(BundleError, match=error):
        Runtime(multi_view_bundle(tmp_path / "bad", experts), intra_op_threads=1)


def test_views_given_in_the_wrong_shape_or_number_are_refused(bundle):
    runtime = Runtime(bundle, intra_op_threads=1)
    views = batch(2)
    with pytest.raises(ValueError, match=r"reads 3 views \['wideband', 'cp_profile', 'dynamics'\]"):
        runtime.predict(views[0])
    with pytest.raises(ValueError, match=r"view 'cp_profile' must have shape \(batch, 4, 64\)"):
        runtime.predict([views[0], views[0], views[2]])
