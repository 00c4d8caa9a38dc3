"""The eager-PyTorch rows of `lwmspectro bench infer`: the bundle's model rebuilt in torch, and the
`paper`-size architecture with random weights (only its cost matters).

Registered in the `lwmspectro.bench_infer_models` entry points; the core times these models
beside the bundle in ONNX Runtime.
"""

from __future__ import annotations

from lwmspectro.benchmarks.infer import ComparisonModel
from lwmspectro.spectrogram import SpectrogramParams


def torch_bundle_model(bundle_dir):
    """The bundle's model in eager PyTorch; (model, None) or (None, why)."""
    from ..export import load_torch_from_bundle

    try:
        return load_torch_from_bundle(bundle_dir), None
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as err:
        return None, f"lwmspectro_train could not rebuild the model of {bundle_dir}: {err}"


def paper_model(params: SpectrogramParams):
    """The `paper` config's router, experts and heads with random weights; the router's bias
    sends every input to the first expert, as a real signal would go to one expert."""
    import torch

    from ..config import load_config
    from ..model import MixtureOfExperts, Router, SpectrogramEncoder, TaskHeads

    try:
        cfg = load_config("paper")
    except (ValueError, FileNotFoundError) as err:
        return None, f"no `paper` config in lwmspectro_train ({err})"
    shape = params.shape
    router = Router(cfg.router, input_shape=shape)
    experts = {p: SpectrogramEncoder(cfg.model, input_shape=shape) for p in cfg.experts}
    heads = {p: TaskHeads(cfg.model.d_model, cfg.heads) for p in cfg.experts}
    model = MixtureOfExperts(router, experts, heads)
    with torch.no_grad():
        router.classifier.bias[model.expert_classes[0]] += 100.0
    return model, None


def torch_call(model, threads: int):
    import torch

    torch.set_num_threads(threads)
    model.eval()

    def call(batch):
        with torch.inference_mode():
            model(torch.from_numpy(batch))

    return call


def eager_models(bundle_dir, params: SpectrogramParams, threads: int) -> list[ComparisonModel]:
    """The bundle's model and the paper-size model in eager PyTorch, ready to be timed."""
    models = []
    for name, (model, why), speedup_reference in (
        ("eager PyTorch, bundle", torch_bundle_model(bundle_dir), True),
        ("eager PyTorch, paper size", paper_model(params), False),
    ):
        if model is None:
            models.append(ComparisonModel(name, None, why=why))
        else:
            parameters = sum(p.numel() for p in model.parameters())
            models.append(
                ComparisonModel(name, torch_call(model, threads), parameters, speedup_reference=speedup_reference)
            )
    return models
