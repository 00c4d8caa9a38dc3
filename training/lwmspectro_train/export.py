"""Write a model bundle (lwmspectro.bundle layout) from a run directory.

router.onnx, expert_<p>.onnx and heads_<p>.onnx with bundle.TENSOR_NAMES and a dynamic
batch axis, weights.pt (the same model in torch, named by the card's
training.checkpoint), then card.json. Every graph carries in its ONNX metadata the G
parameters, label lists and normalisation it was trained with (`stamp_graphs`), and the card
records the sha256 of every file. Before the bundle is put in place, ONNX Runtime and torch
run the same held-out spectrograms: every argmax must agree (or the export fails),
and the largest absolute differences are printed and recorded in the card.

`stamp_bundle` upgrades a bundle written before graphs carried that metadata, in place and
without touching its weights.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from google.protobuf.message import DecodeError

from lwmspectro.bundle import (
    CARD_FILE,
    METADATA_KEY,
    SCHEMA_VERSION,
    TENSOR_NAMES,
    Bundle,
    BundleError,
    BundlePath,
    build_card,
    graph_metadata,
    load_bundle,
    write_card,
)
from lwmspectro.fileio import atomic_write

from .config import RunConfig
from .data import SpectrogramSet
from .heldout import heldout_metrics
from .model import (
    EncoderConfig,
    HeadsConfig,
    MixtureOfExperts,
    Router,
    RouterConfig,
    SpectrogramEncoder,
    TaskHeads,
    count_parameters,
)
from .stages import Run

OPSET = 17
WEIGHTS = "weights.pt"


class ExportError(ValueError):
    """The exported graphs disagree with torch, or the run cannot be exported."""


def _export(module: torch.nn.Module, example: torch.Tensor, path: Path, kind: str) -> None:
    """One ONNX file with the card's tensor names and a dynamic batch axis.

    The TorchScript exporter (dynamo=False) writes opset 17 directly and needs no
    onnxscript; the dynamo exporter targets newer opsets and would need that package."""
    inputs, outputs = TENSOR_NAMES[kind]
    axes = {name: {0: "batch"} for name in (*inputs, *outputs)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module.eval(),
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=axes,
        )
    onnx.checker.check_model(onnx.load(str(path)))


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def parity_check(moe, folder: Path, spectrograms: np.ndarray) -> dict:
    """ONNX Runtime vs torch on real spectrograms, for the router and every expert + heads.

    Every expert and its heads run on every sample (not only those routed to it), so the
    check covers each graph on the whole set. Raises ExportError on any argmax mismatch."""
    x = torch.from_numpy(spectrograms)
    report, mismatches = {"samples": len(spectrograms)}, []
    with torch.no_grad():
        router_torch = moe.router(x).numpy()
    router_onnx = _session(folder / "router.onnx").run(None, {"spectrogram": spectrograms})[0]
    report["router"] = {
        "max_abs_diff": float(np.abs(router_torch - router_onnx).max()),
        "argmax_agree": bool((router_torch.argmax(1) == router_onnx.argmax(1)).all()),
    }
    if not report["router"]["argmax_agree"]:
        mismatches.append("router")
    for name in moe.expert_names:
        with torch.no_grad():
            embedding_torch = moe.experts[name](x)
            heads_torch = [t.numpy() for t in moe.heads[name](embedding_torch)]
        embedding_onnx = _session(folder / f"expert_{name}.onnx").run(None, {"spectrogram": spectrograms})[0]
        heads_onnx = _session(folder / f"heads_{name}.onnx").run(None, {"embedding": embedding_onnx})
        entry = {"embedding_max_abs_diff": float(np.abs(embedding_torch.numpy() - embedding_onnx).max())}
        for task, t, o in zip(("modulation", "snr_mobility"), heads_torch, heads_onnx):
            entry[f"{task}_max_abs_diff"] = float(np.abs(t - o).max())
            entry[f"{task}_argmax_agree"] = bool((t.argmax(1) == o.argmax(1)).all())
            if not entry[f"{task}_argmax_agree"]:
                mismatches.append(f"{name} {task}")
        report[name] = entry
    report["all_argmax_agree"] = not mismatches
    if mismatches:
        raise ExportError(
            f"ONNX Runtime and torch disagree on the argmax of: {', '.join(mismatches)}; "
            f"parity report: {json.dumps(report)}"
        )
    return report


def _dataset_summary(dataset: SpectrogramSet) -> dict:
    return {
        "path": str(dataset.folder),
        "count": len(dataset.indices),
        "generator_config": dataset.manifest.get("config"),
    }


def _commands(run_dir: Path) -> list[dict]:
    path = run_dir / "commands.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def load_run(run_dir, ctx, progress: bool = True) -> Run:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} missing: {run_dir} is not a training run directory "
            "(make one with `lwmspectro-train all --config small`)"
        )
    return Run(RunConfig.from_dict(json.loads(path.read_text())), ctx, progress=progress)


def export_bundle(
    run: Run, out_dir, eval_data=None, parity_samples: int = 64, overwrite: bool = False, command: dict | None = None
) -> dict:
    """Evaluate the run's model on the held-out set, export it, check parity, write the bundle.

    `command` is the exporting command when it is not already in the run's commands.jsonl.

    The bundle is assembled in a temporary folder beside `out_dir` and renamed into place,
    so a failed export leaves no half bundle. Returns the card."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass --overwrite to replace it")
    cfg = run.cfg
    eval_data = eval_data or cfg.data.test
    if not eval_data:
        raise ValueError("no held-out dataset: set data.test in the config or pass --data DIR")
    train_set, _ = run.datasets()
    test_set = SpectrogramSet(eval_data)
    if test_set.params != train_set.params:
        raise ExportError(
            f"{eval_data} was made with other spectrogram parameters than the training set "
            f"{cfg.data.train}; evaluate on data made with the same G"
        )
    moe = run.mixture_of_experts()
    metrics = heldout_metrics(moe, eval_data, cfg.loader.eval_batch_size, cfg.loader.workers, progress=run.progress)
    rows = np.linspace(0, len(test_set) - 1, min(parity_samples, len(test_set))).round().astype(int)
    spectrograms = np.stack([test_set[int(i)]["spectrogram"].numpy() for i in rows]).astype(np.float32)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        example = torch.from_numpy(spectrograms[:2])
        _export(moe.router, example, staging / "router.onnx", "router")
        for name in cfg.experts:
            _export(moe.experts[name], example, staging / f"expert_{name}.onnx", "expert")
            with torch.no_grad():
                embedding = moe.experts[name](example)
            _export(moe.heads[name], embedding, staging / f"heads_{name}.onnx", "heads")
        save_weights(run, moe, staging / WEIGHTS)
        parity = parity_check(moe, staging, spectrograms)
        print_parity(parity)
        card = _card(run, train_set, test_set, metrics, parity, command, moe)
        stamp_graphs(staging, card)
        card = write_card(staging, card)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.chmod(0o755)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return card


def stamp_graphs(folder: Path, card: Mapping[str, Any]) -> None:
    """Write `bundle.graph_metadata(card)` into the metadata_props of every ONNX graph `card`
    names in `folder`, replacing an earlier stamp; the graphs themselves are left as they are."""
    files = Bundle.from_card({**card, "sha256": {}}, folder, verify=False).files
    metadata = graph_metadata(card)
    for path in (files.router, *files.experts.values(), *files.heads.values()):
        try:
            model = onnx.load(str(path))
        except (OSError, DecodeError) as err:
            raise BundleError(f"{path}: cannot be read as an ONNX model ({err})") from err
        kept = [(entry.key, entry.value) for entry in model.metadata_props if entry.key != METADATA_KEY]
        onnx.helper.set_model_props(model, {**dict(kept), METADATA_KEY: metadata})
        atomic_write(path, model.SerializeToString())


def stamp_bundle(folder: BundlePath) -> dict:
    """Upgrade the bundle in `folder` in place to the current card schema: its graphs get the
    metadata of what they were trained with, as its card states it, and the card the sha256 of
    every file; no weight changes. A bundle of the current schema is verified and left as it
    is, so a changed file or card is refused rather than stamped anew. Returns the card."""
    folder = Path(folder)
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise BundleError(f"{card_path}: missing; --stamp takes a bundle folder")
    try:
        card = json.loads(card_path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{card_path}: not valid JSON ({err})") from err
    version = card.get("schema_version") if isinstance(card, dict) else None
    if version == SCHEMA_VERSION:
        return dict(load_bundle(folder).card)
    if version != 1:
        raise BundleError(f"{card_path}: schema_version {version!r} cannot be stamped; re-export the bundle")
    card = {**card, "schema_version": SCHEMA_VERSION, "sha256": {}}
    stamp_graphs(folder, card)
    return write_card(folder, card)


def save_weights(run: Run, moe, path: Path) -> None:
    """The torch twin of the ONNX graphs, for work that needs gradients (few-shot heads,
    fine-tuning): the config, the deployed experts, router and heads, and the experts as
    stage 1b left them (before any task fine-tuning). Loads with weights_only=True."""
    torch.save(
        {
            "config": run.cfg.to_dict(),
            "experts": {name: encoder.state_dict() for name, encoder in moe.experts.items()},
            "foundation_experts": {name: run.trained_encoder(name).state_dict() for name in moe.expert_names},
            "router": moe.router.state_dict(),
            "heads": {name: head.state_dict() for name, head in moe.heads.items()},
        },
        path,
    )


def print_parity(parity: dict) -> None:
    lines = [
        f"parity on {parity['samples']} held-out spectrograms (ONNX Runtime vs torch):",
        f"  router        max |diff| {parity['router']['max_abs_diff']:.2e}  argmax agree "
        f"{parity['router']['argmax_agree']}",
    ]
    for name, entry in parity.items():
        if isinstance(entry, dict) and "embedding_max_abs_diff" in entry:
            lines.append(
                f"  {name:<13s} embedding {entry['embedding_max_abs_diff']:.2e}  modulation "
                f"{entry['modulation_max_abs_diff']:.2e}  snr x mobility {entry['snr_mobility_max_abs_diff']:.2e}"
                f"  argmax agree {entry['modulation_argmax_agree'] and entry['snr_mobility_argmax_agree']}"
            )
    print("\n".join(lines))


def _card(run: Run, train_set, test_set, metrics: dict, parity: dict, command, moe) -> dict:
    """The card is named after the run's config (e.g. `small`), wherever the bundle is written."""
    cfg = run.cfg
    params = train_set.params
    stats = run.normalisation()
    stages = {}
    for stage, experts in (
        ("pretrain", cfg.experts),
        ("finetune", cfg.experts),
        ("router", (None,)),
        ("heads", cfg.experts),
    ):
        for expert in experts:
            path = run.stage_dir(stage, expert) / "metrics.json"
            history = json.loads(path.read_text()) if path.exists() else []
            best = min(history, key=lambda row: row["val_loss"]) if history else None
            stages[f"{stage}/{expert}" if expert else stage] = {"epochs": len(history), "best": best}
    return build_card(
        name=cfg.name,
        params=params,
        views=[params],  # the graphs read G alone, under the input name bundle.WIDEBAND_INPUT
        experts=cfg.experts,
        normalisation={**stats, "applied": "inside every ONNX graph: feed the output of G unchanged"},
        model={
            "config": cfg.name,
            "input_shape": list(params.shape),
            "embedding_dim": cfg.model.d_model,
            "expert": cfg.model.to_dict(),
            "router": cfg.router.to_dict(),
            "heads": cfg.heads.to_dict(),
            "parameters": {
                "router": count_parameters(moe.router),
                **{f"expert_{p}": count_parameters(moe.experts[p]) for p in cfg.experts},
                **{f"heads_{p}": count_parameters(moe.heads[p]) for p in cfg.experts},
            },
            "tensor_names": {k: {"inputs": list(v[0]), "outputs": list(v[1])} for k, v in TENSOR_NAMES.items()},
            "onnx_opset": OPSET,
            "torch_version": torch.__version__,
        },
        training={
            "commands": _commands(run.dir) + ([command] if command else []),
            "config": cfg.to_dict(),
            "data": {"train": _dataset_summary(train_set), "test": _dataset_summary(test_set)},
            "stages": stages,
            "checkpoint": WEIGHTS,
        },
        metrics={"held_out": metrics, "parity": parity},
    )


def torch_weights_path(bundle: Bundle) -> Path:
    """The torch twin the card's training.checkpoint names: beside the bundle, else from the
    working directory."""
    reference = bundle.training.get("checkpoint")
    if not reference:
        raise BundleError(
            f"{bundle.card_path}: training.checkpoint is not set; the model in torch needs "
            "the torch weights the bundle was exported from"
        )
    for candidate in (bundle.path / reference, Path(reference)):
        if candidate.is_file():
            bundle.verify_checkpoint(candidate)
            return candidate
    raise FileNotFoundError(
        f"{bundle.card_path}: training.checkpoint {reference!r} not found beside the bundle nor "
        f"from {Path.cwd()}; the model in torch needs the torch weights the bundle was exported from"
    )


def load_torch_from_bundle(bundle: Bundle | BundlePath, foundation_experts: bool = False) -> MixtureOfExperts:
    """The model of a bundle in eager PyTorch, in eval mode, rebuilt from the torch twin its
    card names (`save_weights`: the weights of its ONNX graphs, normalisation included).

    `foundation_experts` takes the experts as the foundation stages left them (pretrained and
    contrastively fine-tuned, before any task head was trained with them), so that few-shot
    results measure the foundation model rather than the shipped task fine-tuning."""
    bundle = load_bundle(bundle)
    path = torch_weights_path(bundle)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    which = "foundation_experts" if foundation_experts else "experts"
    missing = [key for key in ("config", which, "router", "heads") if key not in checkpoint]
    if missing:
        raise BundleError(f"{path}: no {missing} entries; found {sorted(checkpoint)}")
    config = checkpoint["config"]
    shape = bundle.params.shape
    encoder_cfg = EncoderConfig.from_dict(config["model"], "model")
    heads_cfg = HeadsConfig.from_dict(config["heads"], "heads")
    router = Router(RouterConfig.from_dict(config["router"], "router"), shape)
    router.load_state_dict(checkpoint["router"])
    experts, heads = {}, {}
    for name in bundle.labels.experts:
        if name not in checkpoint[which] or name not in checkpoint["heads"]:
            raise BundleError(
                f"{path}: no {which} or heads weights for expert {name!r}; it has {sorted(checkpoint[which])}"
            )
        experts[name] = SpectrogramEncoder(encoder_cfg, shape)
        experts[name].load_state_dict(checkpoint[which][name])
        heads[name] = TaskHeads(encoder_cfg.d_model, heads_cfg)
        heads[name].load_state_dict(checkpoint["heads"][name])
    return MixtureOfExperts(router, experts, heads).eval()
