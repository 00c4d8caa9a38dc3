"""A card's calibration: read and checked by the loader, stamped into the graphs like what the weights
were trained with, and applied by the runtime (logits over the temperature before the softmax)."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from lwmspectro import labels
from lwmspectro.bundle import CARD_FILE, Bundle, BundleError, load_bundle
from lwmspectro.runtime import Runtime, softmax

from bundle_factory import band_spectrograms, make_bundle, restamp

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "small-wideband"
CALIBRATION = {"router": {"protocol": 2.0}, "lte": {"modulation": 0.5, "snr_mobility": 3.0}}


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="module")
def calibrated(plain, tmp_path_factory):
    folder = shutil.copytree(plain, tmp_path_factory.mktemp("calibrated") / "bundle")
    card = json.loads((folder / CARD_FILE).read_text())
    (folder / CARD_FILE).write_text(json.dumps({**card, "calibration": CALIBRATION}))
    return restamp(folder)


def card_of(folder):
    return json.loads((Path(folder) / CARD_FILE).read_text())


def test_a_card_without_calibration_loads_as_before(plain):
    assert load_bundle(plain).calibration == {}
    assert load_bundle(SHIPPED).calibration == {}
    assert "calibration" not in card_of(SHIPPED)


def test_a_calibrated_card_loads_with_its_temperatures(calibrated):
    bundle = load_bundle(calibrated)
    assert bundle.calibration == CALIBRATION
    assert bundle.calibration_of("lte") == {"modulation": 0.5, "snr_mobility": 3.0}
    assert bundle.calibration_of("wifi") == {}


def test_the_runtime_divides_the_logits_by_the_temperature(plain, calibrated):
    spectrograms = band_spectrograms(load_bundle(plain).params, [1, 1, 0], seed=2)
    uncalibrated, runtime = Runtime(plain), Runtime(calibrated)
    before, after = uncalibrated.predict(spectrograms), runtime.predict(spectrograms)
    (router_logits,) = ort.InferenceSession(str(calibrated / "router.onnx")).run(None, {"spectrogram": spectrograms})
    heads = ort.InferenceSession(str(calibrated / "heads_lte.onnx"))
    for row in (0, 1):
        assert after[row].protocol == before[row].protocol == "lte"
        router = softmax(router_logits[row], 2.0)
        np.testing.assert_allclose(after[row].probabilities["protocol"], router, rtol=1e-5)
        assert after[row].protocol_confidence == pytest.approx(router.max(), rel=1e-5)
        modulation_logits, joint_logits = heads.run(None, {"embedding": after[row].embedding[None]})
        modulation = softmax(modulation_logits[0], 0.5)
        assert after[row].modulation_confidence == pytest.approx(modulation.max(), rel=1e-5)
        joint = softmax(joint_logits[0], 3.0).reshape(len(labels.SNR_GRID_DB), len(labels.MOBILITY_CLASSES))
        np.testing.assert_allclose(after[row].probabilities["snr_db"], joint.sum(axis=1), rtol=1e-5)
        np.testing.assert_allclose(after[row].probabilities["mobility"], joint.sum(axis=0), rtol=1e-5)
        assert after[row].modulation == before[row].modulation, "a temperature never changes the arg-max"
    assert after[2].expert == "wifi" and after[2].modulation_confidence == pytest.approx(
        before[2].modulation_confidence, rel=1e-6
    ), "an expert the calibration does not name keeps its logits"


def test_each_head_has_its_probabilities_in_the_order_of_head_classes(plain):
    runtime = Runtime(plain)
    (output,) = runtime.predict(band_spectrograms(runtime.params, [2]))
    assert set(output.probabilities) == {"protocol", "modulation", "snr_db", "mobility"}
    for task, probabilities in output.probabilities.items():
        assert len(probabilities) == len(runtime.head_classes[task])
        assert probabilities.sum() == pytest.approx(1.0)
    assert runtime.head_classes["modulation"][int(output.probabilities["modulation"].argmax())] == output.modulation


def test_a_card_whose_calibration_was_changed_after_export_is_refused(calibrated, tmp_path):
    folder = shutil.copytree(calibrated, tmp_path / "edited")
    edited = {**card_of(folder), "calibration": {"router": {"protocol": 1.0}}}
    (folder / CARD_FILE).write_text(json.dumps(edited))
    with pytest.raises(BundleError, match=r"calibration\.lte is null but router\.onnx was exported with"):
        load_bundle(folder)
    removed = {key: value for key, value in card_of(calibrated).items() if key != "calibration"}
    (folder / CARD_FILE).write_text(json.dumps(removed))
    with pytest.raises(BundleError, match=r"calibration\.lte is null but router\.onnx was exported with"):
        load_bundle(folder)


@pytest.mark.parametrize(
    ("calibration", "message"),
    [
        ([], r"calibration must be a JSON object, not a list"),
        ({"bluetooth": {}}, r"calibration\.bluetooth is not a graph of this bundle; valid: router, wifi, lte, nr"),
        ({"router": 1.5}, r"calibration\.router must map heads to temperatures, not a number"),
        ({"router": {"modulation": 1.5}}, r"calibration\.router\.modulation is not a head of the router graph"),
        ({"wifi": {"modulation": -1.0}}, r"calibration\.wifi\.modulation is -1\.0, not a positive number"),
        ({"wifi": {"modulation": 0}}, r"calibration\.wifi\.modulation is 0, not a positive number"),
        ({"wifi": {"mobility": math.nan}}, r"calibration\.wifi\.mobility is NaN, not a positive number"),
        ({"lte": {"snr_db": "2"}}, r"calibration\.lte\.snr_db is \"2\", not a positive number"),
        ({"nr": {"modulation": True}}, r"calibration\.nr\.modulation is true, not a positive number"),
    ],
)
def test_a_bad_calibration_is_refused_naming_the_field(plain, calibration, message):
    with pytest.raises(BundleError, match=message):
        Bundle.from_card({**card_of(plain), "calibration": calibration}, plain, verify=False)


def test_a_calibration_for_a_head_the_graph_does_not_give_is_refused_by_the_runtime(plain, tmp_path):
    folder = shutil.copytree(plain, tmp_path / "mobility")
    (folder / CARD_FILE).write_text(json.dumps({**card_of(plain), "calibration": {"nr": {"mobility": 1.2}}}))
    restamp(folder)
    with pytest.raises(BundleError, match=r"calibration\.nr names \['mobility'\], which heads_nr\.onnx does not give"):
        Runtime(folder)


def separate_heads(embedding_dim: int):
    """Heads of the separate kind: modulation and mobility logits, the SNR as 12 dB with sigma 2 dB."""

    class Heads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(5)
            self.modulation = torch.nn.Linear(embedding_dim, len(labels.MODULATIONS))
            self.mobility = torch.nn.Linear(embedding_dim, len(labels.MOBILITY_CLASSES))

        def forward(self, embedding):
            ones = embedding[:, :1] * 0.0 + 1.0  # batch-sized, so that the batch axis stays dynamic
            snr = torch.cat([12.0 * ones, math.log(4.0) * ones], dim=1)
            return 3.0 * self.modulation(embedding), snr, 3.0 * self.mobility(embedding), torch.cat([ones, -ones], 1)

    return Heads()


def test_a_gaussian_snr_head_has_its_sigma_scaled(plain, tmp_path):
    from bundle_factory import export_onnx

    folder = shutil.copytree(plain, tmp_path / "separate")
    export_onnx(
        separate_heads(16),
        folder / "heads_lte.onnx",
        torch.zeros(2, 16),
        "embedding",
        ["modulation_logits", "snr_db", "mobility_logits", "log_doppler"],
    )
    calibration = {"lte": {"snr_db": 2.0, "mobility": 0.5}}
    (folder / CARD_FILE).write_text(json.dumps({**card_of(plain), "calibration": calibration}))
    runtime = Runtime(restamp(folder))
    (output,) = runtime.predict(band_spectrograms(runtime.params, [1]))
    assert output.expert == "lte" and output.snr_db == 12.0 and output.snr_sigma_db == pytest.approx(4.0)
    assert output.snr_confidence == pytest.approx(math.erf(2.5 / (4.0 * math.sqrt(2.0))))
    assert "snr_db" not in output.probabilities, "a Gaussian SNR has no class probabilities"
    heads = ort.InferenceSession(str(folder / "heads_lte.onnx"))
    _, _, mobility_logits, _ = heads.run(None, {"embedding": output.embedding[None]})
    np.testing.assert_allclose(output.probabilities["mobility"], softmax(mobility_logits[0], 0.5), rtol=1e-5)
