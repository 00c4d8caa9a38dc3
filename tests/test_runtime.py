"""The ONNX runtime: bundle validation, the router -> expert -> heads path, readouts, I/Q input."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import scipy.signal

from lwmspectro import bundle as bundle_module
from lwmspectro import labels, quality, readout
from lwmspectro.bundle import SCHEMA_VERSION, Bundle, load_bundle, write_card
from lwmspectro.runtime import BundleError, Runtime, default_bundle_dir, softmax
from lwmspectro.spectrogram import DEFAULT_PARAMS

from bundle_factory import band_spectrograms, export_onnx, linear_expert, make_bundle, make_card, restamp

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="module")
def runtime(bundle):
    return Runtime(bundle, intra_op_threads=1)


@pytest.fixture
def copy_of(bundle, tmp_path):
    return shutil.copytree(bundle, tmp_path / "copy")


class RouterSpy:
    """Wraps the router session and records the batch sizes it is fed."""

    def __init__(self, model):
        self.model, self.views, self.batches = model, model.views, []

    def __call__(self, *feeds):
        self.batches.append(len(feeds[0]))
        return self.model(*feeds)


@pytest.fixture
def spy(runtime, monkeypatch):
    spy = RouterSpy(runtime._router)
    monkeypatch.setattr(runtime, "_router", spy)
    return spy


def noise(n, rng, scale=1.0):
    return (scale * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)


# --- bundle validation --------------------------------------------------------------------


def test_loads_a_valid_bundle(runtime):
    assert runtime.experts == list(labels.PROTOCOLS)
    assert runtime.router_classes == list(labels.ROUTER_CLASSES)
    assert runtime.window_samples == runtime.params.window_samples
    assert runtime.embedding_dim == 16
    assert runtime.snr_bins_db == [float(s) for s in labels.SNR_GRID_DB]


def test_a_bundle_is_loaded_once_into_typed_fields(bundle):
    loaded = load_bundle(bundle)
    assert loaded.path == bundle and loaded.name == "test-tiny" and loaded.schema_version == SCHEMA_VERSION
    assert loaded.params == DEFAULT_PARAMS
    assert loaded.labels.experts == labels.PROTOCOLS and loaded.labels.router == labels.ROUTER_CLASSES
    assert loaded.labels.snr_bins_db == tuple(float(s) for s in labels.SNR_GRID_DB)
    assert loaded.labels.snr_mobility[1] == (-5.0, "pedestrian")
    assert loaded.files.router == bundle / "router.onnx"
    assert loaded.files.heads["nr"] == bundle / "heads_nr.onnx"
    assert loaded.card == json.loads((bundle / "card.json").read_text())
    assert loaded.card_sha256 == hashlib.sha256((bundle / "card.json").read_bytes()).hexdigest()
    assert load_bundle(loaded) is loaded


def test_a_runtime_on_a_loaded_bundle_does_not_read_the_card_again(bundle, monkeypatch):
    loaded = Bundle.load(bundle)
    monkeypatch.setattr(Bundle, "load", None)
    assert Runtime(loaded, intra_op_threads=1).bundle is loaded


def test_write_card_refuses_a_card_it_could_not_load(copy_of):
    (copy_of / "card.json").unlink()
    card = make_card(DEFAULT_PARAMS)
    card["labels"]["snr_mobility"].append([30, "flying"])
    with pytest.raises(BundleError, match=r"card\.json: labels\.snr_mobility uses mobility classes \['flying'\]"):
        write_card(copy_of, card)
    assert not (copy_of / "card.json").exists()
    card["labels"]["snr_mobility"].pop()
    written = write_card(copy_of, card)
    assert json.loads((copy_of / "card.json").read_text()) == written == {**card, "sha256": written["sha256"]}
    assert written["sha256"]["router.onnx"] == hashlib.sha256((copy_of / "router.onnx").read_bytes()).hexdigest()


def test_write_card_refuses_a_card_naming_a_graph_that_is_not_there(tmp_path):
    with pytest.raises(BundleError, match=r"router\.onnx: No such file.*the card names it"):
        write_card(tmp_path, make_card(DEFAULT_PARAMS))


@pytest.mark.parametrize(
    "edit, error",
    [
        (lambda card: card.pop("metrics"), r"missing keys \['metrics'\]"),
        (lambda card: card["spectrogram"].update(n_bins=100), r"bad spectrogram parameters"),
        (lambda card: card["input"].update(sample_rate_hz=1.0), r"input sample_rate_hz 1\.0 differs"),
        (lambda card: card["labels"].update(modulation=[]), r"labels\.modulation missing or empty"),
        (lambda card: card["labels"].update(experts=["wifi", "bluetooth"]), r"experts \['bluetooth'\] are not router"),
        (lambda card: card["files"]["heads"].pop("lte"), r"no expert or heads file for expert 'lte'"),
    ],
)
def test_a_card_that_cannot_be_honoured_names_the_file_and_the_reason(copy_of, edit, error):
    card = json.loads((copy_of / "card.json").read_text())
    edit(card)
    (copy_of / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match=r"card\.json: " + error):
        load_bundle(copy_of)


def test_missing_onnx_file_names_the_file(copy_of):
    (copy_of / "heads_nr.onnx").unlink()
    with pytest.raises(BundleError, match=r"heads_nr\.onnx: missing"):
        Runtime(copy_of)


def test_missing_card_names_the_file(copy_of):
    (copy_of / "card.json").unlink()
    with pytest.raises(BundleError, match=r"card\.json: missing"):
        Runtime(copy_of)


def test_wrong_schema_version_is_refused(copy_of):
    card = json.loads((copy_of / "card.json").read_text())
    card["schema_version"] = 99
    (copy_of / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match=r"card\.json: schema_version 99 is not supported"):
        Runtime(copy_of)


def test_corrupt_onnx_names_the_file(copy_of):
    (copy_of / "expert_lte.onnx").write_bytes(b"\x08\x07 this is not a protobuf" * 10)
    with pytest.raises(BundleError, match=r"expert_lte\.onnx: sha256 .* does not match .* card\.json records"):
        Runtime(copy_of)


def test_router_output_size_mismatch_names_the_file(copy_of):
    wrong = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4))
    example = torch.zeros(2, 128, 128)
    wrong(example)
    export_onnx(wrong, copy_of / "router.onnx", example, "spectrogram", ["router_logits"])
    restamp(copy_of)
    with pytest.raises(
        BundleError, match=r"router\.onnx: tensor 'router_logits' has shape \(batch, 4\), expected \(batch, 5\)"
    ):
        Runtime(copy_of)


@pytest.mark.parametrize(
    "n_bins, embedding_dim, file, input_name, dynamic_batch, error",
    [
        pytest.param(
            64,
            16,
            "expert_wifi.onnx",
            "spectrogram",
            True,
            r"expert_wifi\.onnx: tensor 'spectrogram' has shape .*axis 2: 64 != 128",
            id="spectrogram-shape",
        ),
        pytest.param(
            128,
            8,
            "expert_nr.onnx",
            "spectrogram",
            True,
            r"nr\.onnx: tensor 'embedding'",
            id="embedding-size-between-expert-and-heads",
        ),
        pytest.param(
            128,
            16,
            "expert_wifi.onnx",
            "x",
            True,
            r"expert_wifi\.onnx: input 'x' is not one of the card's views \['wideband'\] \(nor 'spectrogram'",
            id="wrong-tensor-name",
        ),
        pytest.param(
            128,
            16,
            "expert_wifi.onnx",
            "spectrogram",
            False,
            r"expert_wifi\.onnx: .*fixed batch axis of 2",
            id="fixed-batch-axis",
        ),
    ],
)
def test_an_expert_that_does_not_fit_is_refused_naming_the_file(
    copy_of, n_bins, embedding_dim, file, input_name, dynamic_batch, error
):
    export_onnx(
        linear_expert(n_bins, embedding_dim, seed=0),
        copy_of / file,
        torch.zeros(2, 128, n_bins),
        input_name,
        ["embedding"],
        dynamic_batch=dynamic_batch,
    )
    restamp(copy_of)
    with pytest.raises(BundleError, match=error):
        Runtime(copy_of)


def edit_card(folder, edit):
    card = json.loads((folder / "card.json").read_text())
    edit(card)
    (folder / "card.json").write_text(json.dumps(card))


def flip_bytes(path, count=64):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + count] = bytes(b ^ 0xFF for b in data[middle : middle + count])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["router.onnx", "expert_wifi.onnx", "heads_nr.onnx"])
def test_a_graph_changed_after_export_fails_its_checksum(copy_of, name):
    flip_bytes(copy_of / name)
    with pytest.raises(BundleError, match=name.replace(".", r"\.") + r": sha256 \w+\.\.\. does not match"):
        load_bundle(copy_of)


@pytest.mark.parametrize(
    "field, value",
    [
        ("log_floor_db", -150.0),
        ("hop", 1920),
        ("window", "hamming"),
        ("sample_rate_hz", 15.36e6),
        ("normalisation", "none"),
        ("n_fft", 256),
    ],
)
def test_a_card_whose_g_differs_from_the_graphs_is_refused_naming_the_field(copy_of, field, value):
    def edit(card):
        card["spectrogram"][field] = value
        card["input"]["sample_rate_hz"] = card["spectrogram"]["sample_rate_hz"]

    edit_card(copy_of, edit)
    expected = json.dumps(DEFAULT_PARAMS.to_dict()[field])
    with pytest.raises(
        BundleError, match=rf"card\.json: spectrogram\.{field} is .* but router\.onnx was exported with {expected}"
    ):
        load_bundle(copy_of)


@pytest.mark.parametrize(
    "edit, error",
    [
        (
            lambda card: card["labels"]["router"].reverse(),
            r"labels\.router is \[\"other\", .* but router\.onnx was exported",
        ),
        (lambda card: card["labels"]["modulation"].sort(), r"labels\.modulation is .* but router\.onnx was exported"),
        (
            # Reordered joint classes with the SNR list reordered to match: consistent in itself, not with the graphs.
            lambda card: card["labels"].update(
                snr_mobility=card["labels"]["snr_mobility"][::-1], snr_db=card["labels"]["snr_db"][::-1]
            ),
            r"labels\.snr_db is .* was exported",
        ),
        (
            lambda card: card["normalisation"].update(mean=0.5),
            r"normalisation\.mean is 0\.5 but router\.onnx was exported with 0\.0",
        ),
        (
            lambda card: card["normalisation"].pop("std"),
            r"normalisation\.std is null but router\.onnx was exported with 1\.0",
        ),
    ],
)
def test_a_card_whose_labels_or_normalisation_differ_from_the_graphs_is_refused(copy_of, edit, error):
    edit_card(copy_of, edit)
    with pytest.raises(BundleError, match=r"card\.json: " + error):
        load_bundle(copy_of)


@pytest.mark.parametrize("section", ["labels", "spectrogram", "files", "sha256", "normalisation", "training", "input"])
@pytest.mark.parametrize("value, shown", [(None, "null"), ([], "a list"), ("x", "a string")])
def test_a_section_of_the_wrong_type_is_refused_naming_it(copy_of, section, value, shown):
    edit_card(copy_of, lambda card: card.update({section: value}))
    with pytest.raises(BundleError, match=rf"card\.json: {section} must be a JSON object, not {shown}"):
        load_bundle(copy_of)


@pytest.mark.parametrize(
    "edit, error",
    [
        (lambda card: card["labels"].update(router=None), r"labels\.router missing or empty \(it is null\)"),
        (lambda card: card["labels"].update(router=[1, 2]), r"labels\.router must list strings"),
        (lambda card: card["labels"].update(router=["wifi", "wifi"]), r"labels\.router lists a class twice"),
        (lambda card: card["labels"].update(snr_db="high"), r"labels\.snr_db missing or empty \(it is a string\)"),
        (
            lambda card: card["labels"].update(snr_db=card["labels"]["snr_db"][::-1]),
            r"labels\.snr_db \[.*\] differs from the SNR bins of labels\.snr_mobility",
        ),
        (
            lambda card: card["files"].update(router="../router.onnx"),
            r"files\.router must be a file name in the bundle",
        ),
        (lambda card: card["files"].update(experts=None), r"files\.experts must map each expert to its file, not null"),
        (lambda card: card["sha256"].pop("heads_lte.onnx"), r"sha256\.heads_lte\.onnx is missing.*--stamp"),
        (lambda card: card.update(name=None), r"name must be a string, not null"),
        (
            lambda card: card.update(schema_version=1),
            r"schema_version 1 records no file checksums.*lwmspectro export --stamp DIR",
        ),
    ],
)
def test_a_malformed_card_is_a_bundle_error_naming_the_field(copy_of, edit, error):
    edit_card(copy_of, edit)
    with pytest.raises(BundleError, match=r"card\.json: " + error):
        load_bundle(copy_of)


def test_a_card_that_is_not_json_is_refused(copy_of):
    (copy_of / "card.json").write_bytes(b"\xff{")
    with pytest.raises(BundleError, match=r"card\.json: not valid JSON"):
        load_bundle(copy_of)


def test_each_file_is_hashed_once_per_load(copy_of, monkeypatch):
    (copy_of / "weights.pt").write_bytes(b"torch twin")
    edit_card(copy_of, lambda card: card["training"].update(checkpoint="weights.pt"))
    restamp(copy_of)
    hashed = []
    real = bundle_module.file_sha256
    monkeypatch.setattr(bundle_module, "file_sha256", lambda path: hashed.append(path.name) or real(path))
    loaded = load_bundle(copy_of)
    assert sorted(hashed) == sorted(loaded.sha256) and len(hashed) == 8 and loaded.checkpoint == copy_of / "weights.pt"
    flip_bytes(copy_of / "weights.pt", 2)
    with pytest.raises(BundleError, match=r"weights\.pt: sha256"):
        load_bundle(copy_of)


def test_a_checkpoint_found_elsewhere_is_checked_against_the_card(copy_of, tmp_path):
    (copy_of / "weights.pt").write_bytes(b"torch twin")
    edit_card(copy_of, lambda card: card["training"].update(checkpoint="weights.pt"))
    restamp(copy_of)
    (copy_of / "weights.pt").rename(tmp_path / "weights.pt")
    loaded = load_bundle(copy_of)
    assert loaded.checkpoint is None
    loaded.verify_checkpoint(tmp_path / "weights.pt")
    (tmp_path / "other.pt").write_bytes(b"another twin")
    with pytest.raises(BundleError, match=r"other\.pt: sha256 \w+\.\.\. does not match"):
        loaded.verify_checkpoint(tmp_path / "other.pt")


def test_a_bundle_of_the_previous_schema_is_stamped_in_place_without_changing_its_graphs(copy_of, runtime):
    from lwmspectro_train.export import stamp_bundle

    before = runtime.classify(band_spectrograms(runtime.params, [0, 1, 2, None]))
    card = json.loads((copy_of / "card.json").read_text())
    del card["sha256"]
    (copy_of / "card.json").write_text(json.dumps({**card, "schema_version": 1}))
    assert stamp_bundle(copy_of)["schema_version"] == SCHEMA_VERSION
    stamped = Runtime(copy_of, intra_op_threads=1)
    after = stamped.classify(band_spectrograms(runtime.params, [0, 1, 2, None]))
    strip = lambda readouts: [{k: v for k, v in r.items() if k != "latency_ms"} for r in readouts]  # noqa: E731
    assert strip(after) == strip(before)
    assert stamp_bundle(copy_of) == stamped.bundle.card


def test_stamping_refuses_a_bundle_changed_after_export(copy_of):
    from lwmspectro_train.export import stamp_bundle

    edit_card(copy_of, lambda card: card["spectrogram"].update(log_floor_db=-100.0))
    with pytest.raises(BundleError, match=r"spectrogram\.log_floor_db is -100\.0 but router\.onnx"):
        stamp_bundle(copy_of)


def test_default_bundle_dir_prefers_the_environment(bundle, monkeypatch):
    monkeypatch.setenv("LWMSPECTRO_BUNDLE", str(bundle))
    assert default_bundle_dir() == bundle


def test_default_bundle_dir_says_how_to_get_one(tmp_path, monkeypatch):
    import lwmspectro.bundle as bundle_module

    monkeypatch.delenv("LWMSPECTRO_BUNDLE", raising=False)
    monkeypatch.setattr(bundle_module, "_bundle_candidates", lambda: [tmp_path / "nowhere"])
    with pytest.raises(BundleError, match=r"no model bundle found .*nowhere.*lwmspectro-train all"):
        default_bundle_dir()
    monkeypatch.setenv("LWMSPECTRO_BUNDLE", str(tmp_path / "empty"))
    with pytest.raises(BundleError, match=r"LWMSPECTRO_BUNDLE=.*empty: no card\.json"):
        default_bundle_dir()


# --- classify ------------------------------------------------------------------------------


def test_readouts_have_every_field_and_confidences_in_range(runtime):
    spectrograms = band_spectrograms(runtime.params, [0, 1, 2, None, 1])
    results = runtime.classify(spectrograms, window_starts=[10, 20, 30, 40, 50], rx_times=[1.0, 2.0, 3.0, 4.0, 5.0])
    assert [r["protocol"] for r in results] == ["wifi", "lte", "nr", "none", "lte"]
    assert [r["expert"] for r in results] == ["wifi", "lte", "nr", None, "lte"]
    assert [r["window_start"] for r in results] == [10, 20, 30, 40, 50]
    assert [r["rx_time"] for r in results] == [1.0, 2.0, 3.0, 4.0, 5.0]
    for r in results:
        assert tuple(r) == readout.FIELDS
        assert r["valid"] is True and r["latency_ms"] > 0
        confidences = [r[k] for k in r if k.endswith("_confidence") and r[k] is not None]
        assert confidences and all(0.0 <= c <= 1.0 for c in confidences)
        json.loads(readout.to_json(r))
    for r in results[:3]:
        assert r["modulation"] in labels.MODULATIONS
        assert r["snr_db"] in labels.SNR_GRID_DB
        assert r["mobility"] in labels.MOBILITY_CLASSES


def test_snr_and_mobility_are_marginals_of_the_joint_head(runtime, bundle):
    import onnxruntime as ort

    spectrograms = band_spectrograms(runtime.params, [1, 1, 1], seed=3)
    results = runtime.classify(spectrograms)
    embeddings = np.stack([output.embedding for output in runtime.predict(spectrograms)])
    heads = ort.InferenceSession(str(bundle / "heads_lte.onnx"))
    modulation_logits, joint_logits = heads.run(None, {"embedding": embeddings})
    joint = softmax(joint_logits).reshape(len(results), len(labels.SNR_GRID_DB), len(labels.MOBILITY_CLASSES))
    for r, p, m in zip(results, joint, softmax(modulation_logits)):
        snr_marginal, mobility_marginal = p.sum(axis=1), p.sum(axis=0)
        assert r["snr_db"] == labels.SNR_GRID_DB[snr_marginal.argmax()]
        assert r["snr_confidence"] == pytest.approx(snr_marginal.max(), abs=1e-6)
        assert r["mobility"] == labels.MOBILITY_CLASSES[mobility_marginal.argmax()]
        assert r["mobility_confidence"] == pytest.approx(mobility_marginal.max(), abs=1e-6)
        assert r["modulation"] == labels.MODULATIONS[m.argmax()]
        assert r["modulation_confidence"] == pytest.approx(m.max(), abs=1e-6)


def test_embeddings_come_from_the_chosen_expert_and_are_nan_for_none(runtime, bundle):
    import onnxruntime as ort

    spectrograms = band_spectrograms(runtime.params, [2, None, 0], seed=4)
    outputs = runtime.predict(spectrograms)
    assert [output.expert for output in outputs] == ["nr", None, "wifi"]
    assert outputs[1].embedding is None
    for row, protocol in ((0, "nr"), (2, "wifi")):
        session = ort.InferenceSession(str(bundle / f"expert_{protocol}.onnx"))
        (expected,) = session.run(None, {"spectrogram": spectrograms[row : row + 1]})
        assert outputs[row].embedding.shape == (runtime.embedding_dim,)
        np.testing.assert_allclose(outputs[row].embedding, expected[0], atol=1e-5)


def test_router_choosing_none_leaves_task_fields_empty(tmp_path):
    forced = Runtime(make_bundle(tmp_path, forced_class="none", experts=("lte",)))
    for r in forced.classify(band_spectrograms(forced.params, [0, 1, 2])):
        assert r["protocol"] == "none" and r["protocol_confidence"] > 0.99
        assert r["expert"] is None
        assert all(
            r[k] is None
            for k in (
                "modulation",
                "modulation_confidence",
                "snr_db",
                "snr_confidence",
                "mobility",
                "mobility_confidence",
            )
        )
        assert readout.format_line(r)


def test_large_batches_are_run_in_parts_with_the_same_result(runtime, spy, monkeypatch):
    import lwmspectro.runtime as runtime_module

    spectrograms = band_spectrograms(runtime.params, [0, 1, 2, None] * 5, seed=7)
    whole = runtime.classify(spectrograms)
    monkeypatch.setattr(runtime_module, "MODEL_BATCH", 3)
    parts = runtime.classify(spectrograms)
    assert [r["protocol"] for r in parts] == [r["protocol"] for r in whole]
    assert [r["snr_confidence"] for r in parts] == pytest.approx([r["snr_confidence"] for r in whole], abs=1e-6)
    assert spy.batches == [20, 20]


def test_classify_rejects_the_wrong_shape_and_handles_empty_batches(runtime):
    with pytest.raises(ValueError, match=r"shape \(batch, 128, 128\)"):
        runtime.classify(np.zeros((2, 64, 128), np.float32))
    assert runtime.classify(np.zeros((0, 128, 128), np.float32)) == []
    assert runtime.predict(np.zeros((0, 128, 128), np.float32)) == []


def test_non_finite_spectrogram_is_invalid_and_not_fed(runtime, spy):
    spectrograms = band_spectrograms(runtime.params, [0, 1], seed=6)
    spectrograms[0, 5, 5] = np.nan
    results = runtime.classify(spectrograms)
    assert results[0]["valid"] is False and results[0]["invalid_reason"] == "nan_or_inf"
    assert results[1]["protocol"] == "lte"
    assert spy.batches == [1]


# --- raw I/Q -----------------------------------------------------------------------------


def test_invalid_windows_get_invalid_readouts_and_never_reach_the_model(runtime, spy):
    rng = np.random.default_rng(7)
    n = runtime.window_samples
    windows = [noise(n, rng) for _ in range(5)]
    windows[1][1000] = np.nan
    windows[2][:] = 0
    windows[3][:] = 0.3 + 0.2j
    windows[4] = (np.clip(windows[4].real, -0.5, 0.5) + 1j * np.clip(windows[4].imag, -0.5, 0.5)).astype(np.complex64)
    results = runtime.classify_iq(np.concatenate(windows), runtime.params.sample_rate_hz, start_offset=100)
    assert [r["invalid_reason"] for r in results] == [None, "nan_or_inf", "all_zero", "dc_only", "clipped"]
    assert [r["valid"] for r in results] == [True, False, False, False, False]
    assert [r["window_start"] for r in results] == [100 + i * n for i in range(5)]
    assert results[0]["protocol"] == "none"
    assert all(r["protocol"] is None for r in results[1:])
    assert [(r["windows_seen"], r["windows_classified"], r["windows_dropped"]) for r in results][-1] == (5, 1, 4)
    assert spy.batches == [1]


def test_iq_spectrograms_match_g(runtime):
    from lwmspectro.spectrogram import spectrograms as g

    rng = np.random.default_rng(8)
    n = runtime.window_samples
    iq = noise(2 * n + 500, rng)
    narrow = scipy.signal.lfilter(scipy.signal.firwin(129, 0.25), 1.0, noise(n, rng, 10.0))
    iq[:n] += (narrow * np.exp(2j * np.pi * -0.33 * np.arange(n))).astype(np.complex64)
    expected = runtime.classify(g(iq, runtime.params))
    got = runtime.classify_iq(iq, runtime.params.sample_rate_hz)
    assert [r["protocol"] for r in got] == [r["protocol"] for r in expected] == ["wifi", "none"]
    assert [r["protocol_confidence"] for r in got] == pytest.approx(
        [r["protocol_confidence"] for r in expected], abs=1e-6
    )


def test_recording_at_another_rate_is_resampled(runtime):
    """White noise at 20 MS/s fills only the middle 20 MHz of the 30.72 MS/s analysis band once
    resampled; the test router reads a strong middle third as lte. Unresampled, the same
    samples would be flat noise (none)."""
    rng = np.random.default_rng(9)
    span = runtime.source_window_samples(20e6)
    assert span == -(-runtime.window_samples * 125 // 192)
    iq = noise(2 * span + 1000, rng)
    results = runtime.classify_iq(iq, 20e6, stride=span // 2)
    assert [r["window_start"] for r in results] == [0, span // 2, 2 * (span // 2)]
    assert [r["protocol"] for r in results] == ["lte"] * 3
    assert [r["protocol"] for r in runtime.classify_iq(iq, runtime.params.sample_rate_hz)] == ["none"]
    fast = runtime.source_window_samples(61.44e6)
    assert fast == 2 * runtime.window_samples
    decimated = runtime.classify_iq(noise(2 * fast + 5, rng), 61.44e6)
    assert [(r["window_start"], r["protocol"]) for r in decimated] == [(0, "none"), (fast, "none")]


def test_batches_agree_with_one_window_at_a_time(runtime):
    rng = np.random.default_rng(10)
    iq = noise(3 * runtime.source_window_samples(20e6), rng)
    whole = list(runtime.iter_classify_iq(iq, 20e6, batch_windows=3))
    single = list(runtime.iter_classify_iq(iq, 20e6, batch_windows=1))
    assert [r["window_start"] for r in whole] == [r["window_start"] for r in single]
    for a, b in zip(whole, single):
        assert a["protocol_confidence"] == pytest.approx(b["protocol_confidence"], abs=1e-5)
        assert a["snr_confidence"] == pytest.approx(b["snr_confidence"], abs=1e-5)


def test_too_short_input_says_so(runtime):
    results = runtime.classify_iq(np.ones(1000, np.complex64), 30.72e6)
    assert len(results) == 1 and results[0]["invalid_reason"] == "too_short"
    with pytest.raises(ValueError, match="stride must be a positive"):
        runtime.classify_iq(np.ones(10**6, np.complex64), 30.72e6, stride=0)


# --- quality checks ------------------------------------------------------------------------


def test_check_iq_passes_clean_signals():
    rng = np.random.default_rng(11)
    n = 200_000
    assert quality.check_iq(noise(n, rng)) is None
    tone = np.exp(2j * np.pi * 0.0123456 * np.arange(n)).astype(np.complex64)
    assert quality.check_iq(tone + noise(n, rng, 0.01)) is None
    assert quality.check_iq(tone) is None
    quantised = np.round(noise(n, rng, 20.0))  # int8 codes well inside the rails
    assert quality.check_iq((quantised / 128).astype(np.complex64)) is None
    assert quality.check_iq(0.5 + noise(n, rng, 0.1)) is None  # an SDR's DC offset beside real content


def test_check_iq_names_each_fault():
    rng = np.random.default_rng(12)
    n = 200_000
    assert quality.check_iq(np.full(n, np.inf + 0j, np.complex64)) == "nan_or_inf"
    assert quality.check_iq(np.zeros(n, np.complex64)) == "all_zero"
    assert quality.check_iq(np.full(n, 0.1 - 0.4j, np.complex64)) == "dc_only"
    assert quality.check_iq(np.full(n, 0.1 - 0.4j, np.complex64) + noise(n, rng, 1e-4)) == "dc_only"
    loud = noise(n, rng, 20_000.0)
    int16 = np.clip(np.round(loud.real), -32768, 32767) + 1j * np.clip(np.round(loud.imag), -32768, 32767)
    assert quality.check_iq((int16 / 32768).astype(np.complex64)) == "clipped"
    loud8 = noise(n, rng, 90.0)
    int8 = np.clip(np.round(loud8.real), -128, 127) + 1j * np.clip(np.round(loud8.imag), -128, 127)
    assert quality.check_iq((int8 / 128).astype(np.complex64)) == "clipped"
    for scale in (1e-13, 1e8):  # where the views' float32 arithmetic under- or overflows
        assert quality.check_iq(noise(n, rng, scale)) == "out_of_range"
    for scale in (1e-10, 1e5):  # a simulation's own units, still read
        assert quality.check_iq(noise(n, rng, scale)) is None
