"""Routing is defined once (`model.route`): the eager torch model rebuilt from the shipped
bundle and the ONNX runtime send every spectrogram to the same protocol and expert."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lwmspectro import labels
from lwmspectro.runtime import Runtime
from lwmspectro.synth import GeneratorConfig, draw_spec, make_spectrogram
from lwmspectro_train.baseline_comparison.lwm import route_to_experts
from lwmspectro_train.export import load_torch_from_bundle
from lwmspectro_train.model import route

BUNDLE = Path(__file__).resolve().parents[1] / "models" / "small-wideband"


@pytest.fixture(scope="module")
def spectrograms():
    """Fresh held-out examples of every router class, at low and high SNR."""
    config = GeneratorConfig.from_file(Path(labels.__file__).parent / "configs" / "heldout.json")
    config = GeneratorConfig(
        **{
            **config.to_dict(),
            "seed": 4242,
            "snr_db": [-5, 0, 20],
            "classes": dict.fromkeys(labels.ROUTER_CLASSES, 0.2),
        }
    )
    return np.stack([make_spectrogram(draw_spec(config, index), config.params)[0] for index in range(30)])


def test_torch_and_onnx_runtime_route_every_row_alike(spectrograms):
    model = load_torch_from_bundle(BUNDLE)
    with torch.no_grad():
        out = model(torch.from_numpy(spectrograms))
    outputs = Runtime(BUNDLE).predict(spectrograms)
    torch_protocols = [labels.ROUTER_CLASSES[int(i)] for i in out["top1"]]
    torch_experts = [model.expert_names[int(i)] if i >= 0 else None for i in out["expert"]]
    assert torch_protocols == [o.protocol for o in outputs]
    assert torch_experts == [o.expert for o in outputs]
    assert len(set(torch_protocols)) >= 3, "the examples should reach several router classes"
    routed = out["expert"] >= 0
    modulations = [labels.MODULATIONS[int(i)] for i in out["modulation_logits"][routed].argmax(-1)]
    assert modulations == [o.modulation for o, r in zip(outputs, routed) if r]


def test_evaluation_routing_is_the_same_rule_over_the_experts_only(spectrograms):
    model = load_torch_from_bundle(BUNDLE)
    experts = list(model.expert_names)
    with torch.no_grad():
        logits = model.router(torch.from_numpy(spectrograms))
    chosen = route_to_experts(model.router, experts, spectrograms)
    assert (chosen >= 0).all()
    expected = logits[:, [labels.ROUTER_CLASSES.index(e) for e in experts]].argmax(-1).numpy()
    assert chosen.tolist() == expected.tolist()
    deployed = route(logits, labels.ROUTER_CLASSES, experts).expert.numpy()
    assert (chosen[deployed >= 0] == deployed[deployed >= 0]).all()
