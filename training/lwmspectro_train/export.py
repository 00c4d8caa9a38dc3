"""Write a model bundle (lwmspectro.bundle layout) from a run directory.

router.onnx, expert_<p>.onnx and heads_<p>.onnx with bundle.TENSOR_NAMES and a dynamic
batch axis, weights.pt (the same model in torch, named by the card's
training.checkpoint), then card.json. A model of G alone keeps today's graphs (one input,
`spectrogram`); a multi-view model's card lists its views (and those a window may lack,
`input.absent_views`), and its router and expert graphs take one input per view they read,
named after the view as the card names it. Every graph carries in its ONNX metadata the G
parameters, label lists and normalisation it was trained with (`stamp_graphs`), and the
card records the sha256 of every file. The model's heads are calibrated on the validation split
(lwmspectro_train.calibrate): the card's ``calibration`` holds a temperature per head, which the
graphs are stamped with too, ``metrics.calibration`` the expected calibration error of each head
before and after, and the run folder gets the reliability diagram (RELIABILITY_FIGURE).
Before the bundle is put in place, ONNX Runtime and torch run the same held-out examples (and,
for experts that read a view of the past, the same examples without it): every argmax must
agree and every regressed value be within REGRESSION_TOLERANCE (or the export fails), and the
largest absolute differences are printed and recorded in the card.

`stamp_bundle` upgrades a bundle written before graphs carried that metadata, in place and
without touching its weights.
"""

from __future__ import annotations

import dataclasses
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

from lwmspectro import views as view_registry
from lwmspectro.bundle import (
    CARD_FILE,
    METADATA_KEY,
    SCHEMA_VERSION,
    TENSOR_NAMES,
    WIDEBAND_INPUT,
    Bundle,
    BundleError,
    BundlePath,
    build_card,
    graph_metadata,
    load_bundle,
    write_card,
)
from lwmspectro.fileio import atomic_write

from .calibrate import calibrate_model, selective_accuracy_on
from .config import RunConfig
from .data import SpectrogramSet, batch_views
from .heldout import metrics_of, model_outputs
from .model import WIDEBAND, MixtureOfExperts, count_parameters
from .stages import EXPERT_STAGES, Run, build_model

OPSET = 17
WEIGHTS = "weights.pt"
RELIABILITY_FIGURE = "reliability.png"
"""The reliability diagram of the exported model's heads, in the run folder."""
REGRESSION_TOLERANCE = 1e-3
"""Largest difference between ONNX Runtime and torch allowed in a regressed mean (dB, log10 Hz)."""


class ExportError(ValueError):
    """The exported graphs disagree with torch, or the run cannot be exported."""


def _export(module: torch.nn.Module, example, path: Path, inputs, outputs) -> None:
    """One ONNX file of `module` run on the tensors `example`, with the given tensor names and a
    dynamic batch axis.

    The TorchScript exporter (dynamo=False) writes opset 17 directly and needs no
    onnxscript; the dynamo exporter targets newer opsets and would need that package."""
    axes = {name: {0: "batch"} for name in (*inputs, *outputs)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module.eval(),
            tuple(example),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=axes,
        )
    onnx.checker.check_model(onnx.load(str(path)))


def graph_inputs(cfg: RunConfig, view_params) -> dict[str, str]:
    """The graph input name of each view the model reads (by its name in the config): the
    card's name for it (`view_registry.view_names` of the card's views), or `spectrogram` for
    the one input of a model of G alone."""
    if cfg.reads_g_alone:
        return {WIDEBAND: WIDEBAND_INPUT}
    card_names = view_registry.view_names([view_params[name] for name in cfg.model_views])
    return dict(zip(cfg.model_views, card_names))


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _task(output: str) -> str:
    """How the parity report names a heads output: its task (`modulation_logits` -> `modulation`)."""
    return output.removesuffix("_logits")


def _compare_heads(entry: dict, where: str, names, torch_outputs, onnx_outputs, mismatches: list) -> None:
    """Logits must give the same arg-max, regressed (mean, log variance) pairs the same mean
    within REGRESSION_TOLERANCE; the largest differences are recorded in `entry`."""
    for output, t, o in zip(names, torch_outputs, onnx_outputs):
        task = _task(output)
        entry[f"{task}_max_abs_diff"] = float(np.abs(t - o).max())
        if output.endswith("_logits"):
            agree = bool((t.argmax(1) == o.argmax(1)).all())
            entry[f"{task}_argmax_agree"] = agree
        else:
            agree = bool(np.abs(t[:, 0] - o[:, 0]).max() <= REGRESSION_TOLERANCE)
            entry[f"{task}_agree"] = agree
        if not agree:
            mismatches.append(f"{where}{task}")


def parity_check(moe: MixtureOfExperts, folder: Path, examples: dict[str, np.ndarray], inputs: dict[str, str]) -> dict:
    """ONNX Runtime vs torch on real examples (`examples`: each view the model reads, by name;
    `inputs`: each view's graph input name), for the router and every expert + heads.

    Every expert and its heads run on every sample (not only those routed to it), so the
    check covers each graph on the whole set; an expert that reads a view a window may lack
    runs a second time without it (all NaN). Raises ExportError on any disagreement."""
    report, mismatches = {"samples": len(next(iter(examples.values())))}, []

    def run(session, trunk, arrays):
        return session.run(None, {inputs[name]: arrays[name] for name in trunk.view_names})[0]

    def in_torch(trunk, arrays):
        return trunk(*(torch.from_numpy(arrays[name]) for name in trunk.view_names))

    with torch.no_grad():
        router_torch = in_torch(moe.router, examples).numpy()
    router_onnx = run(_session(folder / "router.onnx"), moe.router, examples)
    report["router"] = {
        "max_abs_diff": float(np.abs(router_torch - router_onnx).max()),
        "argmax_agree": bool((router_torch.argmax(1) == router_onnx.argmax(1)).all()),
    }
    if not report["router"]["argmax_agree"]:
        mismatches.append("router")
    for name in moe.expert_names:
        expert, heads = moe.experts[name], moe.heads[name]
        expert_session = _session(folder / f"expert_{name}.onnx")
        heads_session = _session(folder / f"heads_{name}.onnx")
        cases = [("", examples)]
        if expert.optional:
            without = {view: np.full_like(a, np.nan) if view in expert.optional else a for view, a in examples.items()}
            cases.append(("absent_", without))
        entry: dict = {}
        for prefix, arrays in cases:
            with torch.no_grad():
                embedding_torch = in_torch(expert, arrays)
                heads_torch = [t.numpy() for t in heads(embedding_torch)]
            embedding_onnx = run(expert_session, expert, arrays)
            heads_onnx = heads_session.run(None, {"embedding": embedding_onnx})
            case = {"embedding_max_abs_diff": float(np.abs(embedding_torch.numpy() - embedding_onnx).max())}
            _compare_heads(case, f"{name} {prefix}", heads.output_widths, heads_torch, heads_onnx, mismatches)
            entry |= {prefix + key: value for key, value in case.items()}
        report[name] = entry
    report["all_argmax_agree"] = not mismatches
    if mismatches:
        raise ExportError(
            f"ONNX Runtime and torch disagree on the argmax of: {', '.join(mismatches)}; "
            f"parity report: {json.dumps(report)}"
        )
    return report


def _source_summary(bundle) -> dict:
    """Which bundle a part of the model started from: its name, path and card checksum."""
    return {"bundle": bundle.name, "path": str(bundle.path), "card_sha256": bundle.card_sha256}


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
    run: Run,
    out_dir,
    eval_data=None,
    parity_samples: int = 64,
    overwrite: bool = False,
    command: dict | None = None,
    also: Mapping[str, str] | None = None,
) -> dict:
    """Evaluate the run's model on the held-out set (and on each of `also`, {name: folder},
    kept as metrics.held_out_<name>), export it, check parity, write the bundle.

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
    train_set, val_set = run.datasets()
    held_out = {"held_out": eval_data, **{f"held_out_{name}": folder for name, folder in (also or {}).items()}}
    opened = {key: run.open_set(folder) for key, folder in held_out.items()}
    for key, dataset in opened.items():
        try:
            run.check_same_views(dataset)
        except (ValueError, KeyError) as err:
            where = "" if key == "held_out" else f"held-out set {key[len('held_out_') :]}: "
            raise ExportError(f"{where}{err}; evaluate on data made with the views of {cfg.data.train}") from err
    test_set = opened["held_out"]
    moe = run.mixture_of_experts()
    outputs = {
        key: model_outputs(moe, dataset, cfg.loader.eval_batch_size, cfg.loader.workers, progress=run.progress)
        for key, dataset in opened.items()
    }
    metrics = {key: metrics_of(dataset, outputs[key]) for key, dataset in opened.items()}
    calibration, calibration_report = calibrate_model(
        moe,
        val_set,
        run.dir / RELIABILITY_FIGURE,
        cfg.loader.eval_batch_size,
        cfg.loader.workers,
        run.progress,
        router_dataset=run.router_sets()[1] if cfg.data.router else None,
        router_from=run.router_source.bundle if run.router_source else None,
    )
    print_calibration(calibration_report)
    metrics["selective"] = selective_accuracy_on(test_set, outputs["held_out"], moe.expert_names, calibration)
    print_selective(metrics["selective"])
    rows = np.linspace(0, len(test_set) - 1, min(parity_samples, len(test_set))).round().astype(int)
    items = [batch_views(test_set[int(i)]) for i in rows]
    examples = {name: np.stack([item[name].numpy() for item in items]).astype(np.float32) for name in cfg.model_views}
    inputs = graph_inputs(cfg, run.view_params)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        example = {name: torch.from_numpy(array[:2]) for name, array in examples.items()}

        def export_trunk(trunk, path: Path, kind: str) -> None:
            names = trunk.view_names
            _export(trunk, [example[n] for n in names], path, [inputs[n] for n in names], TENSOR_NAMES[kind][1])

        export_trunk(moe.router, staging / "router.onnx", "router")
        for name in cfg.experts:
            expert, heads = moe.experts[name], moe.heads[name]
            export_trunk(expert, staging / f"expert_{name}.onnx", "expert")
            with torch.no_grad():
                embedding = expert(*(example[n] for n in expert.view_names))
            _export(heads, [embedding], staging / f"heads_{name}.onnx", *TENSOR_NAMES[heads.tensor_kind])
        save_weights(run, moe, staging / WEIGHTS)
        parity = parity_check(moe, staging, examples, inputs)
        print_parity(parity)
        card = _card(run, train_set, test_set, metrics, parity, command, moe, calibration, calibration_report)
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
    weights = {
        "config": run.cfg.to_dict(),
        "experts": {name: encoder.state_dict() for name, encoder in moe.experts.items()},
        "foundation_experts": {name: run.trained_encoder(name).state_dict() for name in moe.expert_names},
        "router": moe.router.state_dict(),
        "heads": {name: head.state_dict() for name, head in moe.heads.items()},
    }
    if not run.cfg.reads_g_alone:
        weights["views"] = {name: view_registry.view_to_dict(params) for name, params in run.view_params.items()}
    torch.save(weights, path)


def print_parity(parity: dict) -> None:
    lines = [
        f"parity on {parity['samples']} held-out spectrograms (ONNX Runtime vs torch):",
        f"  router        max |diff| {parity['router']['max_abs_diff']:.2e}  argmax agree "
        f"{parity['router']['argmax_agree']}",
    ]
    for name, entry in parity.items():
        if isinstance(entry, dict) and "embedding_max_abs_diff" in entry:
            diffs = "  ".join(
                f"{key.removesuffix('_max_abs_diff').replace('_', ' ')} {value:.2e}"
                for key, value in entry.items()
                if key.endswith("_max_abs_diff")
            )
            agree = all(value for key, value in entry.items() if key.endswith("agree"))
            lines.append(f"  {name:<13s} {diffs}  argmax agree {agree}")
    print("\n".join(lines))


def print_selective(report: dict) -> None:
    """Per head, the share of held-out rows stated and their accuracy at each confidence threshold."""
    thresholds = report["thresholds"]
    lines = [f"selective accuracy on {report['dataset']} (stated share / accuracy at confidence >= threshold):"]
    lines.append("  " + " " * 22 + "".join(f"{t:>15g}" for t in thresholds))
    for graph, heads in report["heads"].items():
        for head, entry in heads.items():
            cells = "".join(
                f"{100 * c:>6.1f} / {'   -' if a is None else f'{100 * a:5.1f}'} %"
                for c, a in zip(entry["coverage"], entry["accuracy"])
            )
            lines.append(f"  {graph:<7s} {head:<14s}{cells}")
    print("\n".join(lines))


def print_calibration(report: dict) -> None:
    """Each head's fitted temperature and its ECE before and after, as the card records them."""
    lines = [f"calibration on the {report['split']} split (ECE over {report['bins']} bins):"]
    for graph, heads in report["heads"].items():
        for head, entry in heads.items():
            value = entry.get("temperature", entry.get("sigma_scale"))
            kind = "T" if "temperature" in entry else "sigma x"
            lines.append(
                f"  {graph:<7s} {head:<13s} {kind} {value:.3f}  ECE {entry['ece_before']:.3f} -> "
                f"{entry['ece_after']:.3f}  ({entry['rows']} rows)"
            )
    if report["too_few_rows"]:
        too_few = ", ".join(f"{head} ({rows})" for head, rows in report["too_few_rows"].items())
        lines.append(f"  not calibrated, too few rows: {too_few}")
    print("\n".join(lines))


def _card(
    run: Run,
    train_set,
    test_set,
    metrics: dict,
    parity: dict,
    command,
    moe,
    calibration: dict[str, dict[str, float]],
    calibration_report: dict,
) -> dict:
    """The card is named after the run's config (e.g. `small`), wherever the bundle is written."""
    cfg = run.cfg
    params = train_set.params
    stats = run.normalisation()
    inputs = graph_inputs(cfg, run.view_params)
    source, router_source = run.experts_source, run.router_source
    stages = {}
    for stage, experts in (
        ("pretrain", cfg.experts),
        ("finetune", cfg.experts),
        ("router", (None,)),
        ("heads", cfg.experts),
    ):
        for expert in experts:
            if source is not None and stage in EXPERT_STAGES:
                stages[f"{stage}/{expert}"] = source.bundle.training.get("stages", {}).get(f"{stage}/{expert}")
                continue
            if router_source is not None and stage == "router":
                stages[stage] = router_source.bundle.training.get("stages", {}).get(stage)
                continue
            path = run.stage_dir(stage, expert) / "metrics.json"
            history = json.loads(path.read_text()) if path.exists() else []
            best = min(history, key=lambda row: row["val_loss"]) if history else None
            stages[f"{stage}/{expert}" if expert else stage] = {"epochs": len(history), "best": best}
    if cfg.reads_g_alone:
        shapes, parts = list(params.shape), {}
        applied = "inside every ONNX graph: feed the output of G unchanged"
    else:
        shapes = {inputs[name]: list(view_registry.view_shape(p)) for name, p in run.view_params.items()}
        parts = {"views": {part: [inputs[name] for name in cfg.views_of(part)] for part in cfg.parts}}
        applied = "inside every ONNX graph, per view: feed the views unchanged"
    heads_kind = moe.heads[cfg.experts[0]].tensor_kind
    optional = dict.fromkeys(name for trunk in (moe.router, *moe.experts.values()) for name in trunk.optional)
    return build_card(
        name=cfg.name,
        params=params,
        # A model of G alone reads it under the input name bundle.WIDEBAND_INPUT.
        views=[params] if cfg.reads_g_alone else list(run.view_params.values()),
        absent_views=[inputs[name] for name in optional],
        experts=cfg.experts,
        normalisation={**stats, "applied": applied},
        model={
            "config": cfg.name,
            "input_shape": shapes,
            **parts,
            "embedding_dim": cfg.model.d_model,
            "expert": cfg.model.to_dict(),
            "router": cfg.router.to_dict(),
            "heads": cfg.heads.to_dict(),
            "parameters": {
                "router": count_parameters(moe.router),
                **{f"expert_{p}": count_parameters(moe.experts[p]) for p in cfg.experts},
                **{f"heads_{p}": count_parameters(moe.heads[p]) for p in cfg.experts},
            },
            "tensor_names": _tensor_names(cfg, inputs, heads_kind),
            "onnx_opset": OPSET,
            "torch_version": torch.__version__,
        },
        training={
            # The commands of the bundle a part comes from first.
            "commands": [
                *(source.bundle.training.get("commands", []) if source else []),
                *(router_source.bundle.training.get("commands", []) if router_source else []),
            ]
            + _commands(run.dir)
            + ([command] if command else []),
            "config": cfg.to_dict(),
            **(
                {
                    "experts_from": _source_summary(source.bundle)
                    | {"calibration_set": _dataset_summary(run.datasets()[1])}
                }
                if source
                else {}
            ),
            **({"init_from": _source_summary(run.init_source.bundle)} if run.init_source else {}),
            **({"router_from": _source_summary(router_source.bundle)} if router_source else {}),
            "data": {
                "train": source.bundle.training["data"]["train"] if source else _dataset_summary(train_set),
                **({"router": _dataset_summary(run.router_sets()[0])} if cfg.data.router else {}),
                **(
                    {"router": router_source.bundle.training["data"]["router"]}
                    if router_source and "router" in router_source.bundle.training.get("data", {})
                    else {}
                ),
                "test": _dataset_summary(test_set),
            },
            "stages": stages,
            "checkpoint": WEIGHTS,
        },
        metrics={**metrics, "parity": parity, "calibration": calibration_report},
        calibration=calibration,
    )


def _tensor_names(cfg: RunConfig, inputs: dict[str, str], heads_kind: str) -> dict:
    """The input and output names of each kind of graph; each expert's inputs when they differ."""
    names = {
        kind: {"inputs": list(TENSOR_NAMES[kind][0]), "outputs": list(TENSOR_NAMES[kind][1])}
        for kind in ("router", "expert")
    }
    names["heads"] = {"inputs": list(TENSOR_NAMES[heads_kind][0]), "outputs": list(TENSOR_NAMES[heads_kind][1])}
    if not cfg.reads_g_alone:
        names["router"]["inputs"] = [inputs[name] for name in cfg.views_of("router")]
        names["expert"]["inputs"] = {p: [inputs[name] for name in cfg.views_of(p)] for p in cfg.experts}
    return names


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
    # The architecture sections are what the model needs; the run's name and folder are not.
    values = {"name": bundle.name, "run_dir": str(bundle.path), **checkpoint["config"]}
    cfg = dataclasses.replace(RunConfig.from_dict(values, f"{path}: config"), experts=bundle.labels.experts)
    view_params = {
        name: view_registry.view_from_dict(values, f"{path}: views.{name}")
        for name, values in checkpoint.get("views", {}).items()
    } or {WIDEBAND: bundle.params}
    model = build_model(cfg, view_params)
    model.router.load_state_dict(checkpoint["router"])
    for name in cfg.experts:
        if name not in checkpoint[which] or name not in checkpoint["heads"]:
            raise BundleError(
                f"{path}: no {which} or heads weights for expert {name!r}; it has {sorted(checkpoint[which])}"
            )
        model.experts[name].load_state_dict(checkpoint[which][name])
        model.heads[name].load_state_dict(checkpoint["heads"][name])
    return model.eval()
