"""The baseline comparison end to end (`lwmspectro eval`): trials, embedding quality, report."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from lwmspectro.dataset import open_dataset
from lwmspectro.framer import available_cores

from .embedding_quality import embedding_quality
from .lwm import check_views, load_components
from .report import write_report
from .tasks import LWM_MODELS, PRESETS, TASKS
from .trials import planned_models, run_trials

RUN_IDENTITY = ("data", "preset", "scenario", "baseline_width", "settings")
"""What trials of one output folder must share; the bundle may change (its trials re-run)."""


def _machine(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    threads = torch.get_num_threads()
    return (
        f"CPU, {threads} thread{'s' if threads != 1 else ''} ({available_cores()} of {os.cpu_count()} cores usable), "
        f"{platform.machine()}, torch {torch.__version__}"
    )


def _check_resumable(out_dir: Path, identity: dict) -> dict:
    """Refuse to mix trials of different data, preset or scenario into `out_dir`; returns
    the previous run.json (empty if none, or if its trials were deleted to start over)."""
    path = out_dir / "run.json"
    if not path.exists() or not (out_dir / "trials.csv").exists():
        return {}
    previous_run = json.loads(path.read_text())
    previous = previous_run.get("identity", {})
    changed = [
        k
        for k in RUN_IDENTITY
        if previous.get(k) is not None and identity.get(k) is not None and previous[k] != identity[k]
    ]
    if changed:
        details = "; ".join(f"{k}: {previous[k]!r} there, {identity.get(k)!r} now" for k in changed)
        raise ValueError(
            f"{out_dir} holds trials of another run ({details}); "
            f"pass another --out, or delete {out_dir / 'trials.csv'} to start over"
        )
    return previous_run


def compare_with_baselines(
    bundle,
    data,
    out_dir,
    results_md,
    preset_name: str = "quick",
    tasks=tuple(TASKS),
    scenario: str | None = None,
    pretrained: dict | None = None,
    device: str = "cpu",
    command: str = "",
    show_progress: bool = True,
    models=None,
) -> Path:
    """Run (or resume) the evaluation and regenerate the report; returns the results.md path.

    `models` restricts the run to some model names; without an LWM model among them the
    bundle may be None (baseline trials do not depend on it)."""
    if preset_name not in PRESETS:
        raise ValueError(f"unknown preset {preset_name!r}; valid choices: {', '.join(PRESETS)}")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; valid choices: {', '.join(TASKS)}")
    preset = replace(PRESETS[preset_name], settings=replace(PRESETS[preset_name].settings, device=device))
    valid_models = sorted({m for t in TASKS for m in PRESETS["full"].models(t)})
    if models is not None and set(models) - set(valid_models):
        raise ValueError(
            f"unknown models {sorted(set(models) - set(valid_models))}; valid choices: {', '.join(valid_models)}"
        )
    needs_lwm = any(m in LWM_MODELS for t in tasks for m in planned_models(preset, t, models))
    if needs_lwm and bundle is None:
        raise ValueError(
            "a model bundle is needed for LWM, LWM_FT and MoE: pass --bundle DIR (or restrict --models to baselines)"
        )
    if scenario is None:
        from lwmspectro.scenarios import HELDOUT_SCENARIO

        scenario = HELDOUT_SCENARIO
    time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = open_dataset(data)
    components, bundle_info = load_components(bundle) if bundle is not None else (None, None)
    if components is not None:
        check_views(components, dataset)
    generator = dataset.manifest.get("config", {})
    identity = {
        "bundle_card_sha256": bundle_info and bundle_info["card_sha256"],
        "data": str(Path(data)),
        "preset": preset.name,
        "scenario": scenario,
        "baseline_width": preset.baseline_width,
        "settings": {k: v for k, v in asdict(preset.settings).items() if k != "device"},
    }
    previous = _check_resumable(out_dir, identity)
    header = {
        "command": command,
        "bundle": f"`{bundle}` ({bundle_info['summary']})" if bundle_info else previous.get("bundle", ""),
        "data": (
            f"`{data}`: {len(dataset)} spectrograms (generator seed {generator.get('seed')}, "
            f"n_samples {generator.get('n_samples')}, scenarios {generator.get('scenarios')!r}; the full "
            f"config is in its manifest.json); held-out scenario `{scenario}`"
        ),
        "preset": (
            f"{preset.name}: N per class {dict(preset.n_per_class)}, seeds {list(preset.seeds)}, "
            f"baseline width {preset.baseline_width}, test {preset.test_per_class} per class, "
            f"{preset.settings.epochs} epochs, patience {preset.settings.patience}, "
            f"batch {preset.settings.batch_size}, at least {preset.settings.min_steps_per_epoch} "
            f"updates per epoch, lr {preset.settings.lr:g} "
            f"(LWM_FT encoder x{preset.settings.finetune_lr_scale:g})"
        ),
        "machine": _machine(device),
        "identity": {k: v if v is not None else previous.get("identity", {}).get(k) for k, v in identity.items()},
    }
    (out_dir / "run.json").write_text(json.dumps(header, indent=2) + "\n")
    bundle_id = header["identity"]["bundle_card_sha256"] or ""
    run_trials(
        dataset,
        components if needs_lwm else None,
        out_dir,
        preset,
        tuple(tasks),
        scenario,
        pretrained,
        show_progress,
        models,
        bundle_id,
    )
    quality = out_dir / "embedding_quality.json"
    if components is not None and (not quality.exists() or json.loads(quality.read_text()).get("bundle") != bundle_id):
        embedding_quality(dataset, components, out_dir, scenario, preset.tsne_samples, device=device, bundle=bundle_id)
    header["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (out_dir / "run.json").write_text(json.dumps(header, indent=2) + "\n")
    return write_report(out_dir, results_md, header)
