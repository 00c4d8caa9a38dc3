"""`lwmspectro eval` end to end: trials, embedding quality, report."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from lwmspectro.dataset import open_dataset

from .embedding_quality import embedding_quality
from .lwm import load_components
from .report import write_report
from .tasks import LWM_MODELS, PRESETS, TASKS
from .trials import run_trials

RUN_IDENTITY = ("bundle_card_sha256", "data", "preset", "scenario", "baseline_width")


def _machine(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return (f"CPU, {torch.get_num_threads()} threads ({os.cpu_count()} cores visible), "
            f"{platform.machine()}, torch {torch.__version__}")


def _check_resumable(out_dir: Path, identity: dict) -> None:
    """Refuse to mix trials of a different bundle, data, preset or scenario into `out_dir`."""
    path = out_dir / "run.json"
    if not path.exists():
        return
    previous = json.loads(path.read_text()).get("identity", {})
    changed = [k for k in RUN_IDENTITY if k in previous and previous[k] != identity.get(k)]
    if changed:
        details = "; ".join(f"{k}: {previous[k]!r} there, {identity.get(k)!r} now" for k in changed)
        raise ValueError(f"{out_dir} holds trials of another run ({details}); "
                         f"pass another --out, or delete {out_dir / 'trials.csv'} to start over")


def evaluate(bundle, data, out_dir, results_md, preset_name: str = "quick", tasks=tuple(TASKS),
             scenario: str | None = None, pretrained: dict | None = None, device: str = "cpu",
             command: str = "", show_progress: bool = True) -> Path:
    """Run (or resume) the evaluation and regenerate the report; returns the results.md path."""
    if preset_name not in PRESETS:
        raise ValueError(f"unknown preset {preset_name!r}; valid choices: {', '.join(PRESETS)}")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; valid choices: {', '.join(TASKS)}")
    preset = PRESETS[preset_name]
    preset = replace(preset, settings=replace(preset.settings, device=device))
    if scenario is None:
        from lwmspectro.scenarios import HELDOUT_SCENARIO
        scenario = HELDOUT_SCENARIO
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = open_dataset(data)
    needs_lwm = any(m in LWM_MODELS for t in tasks for m in preset.models(t))
    components, bundle_info = load_components(bundle)
    identity = {"bundle_card_sha256": bundle_info["card_sha256"], "data": str(Path(data)), "preset": preset.name,
                "scenario": scenario, "baseline_width": preset.baseline_width}
    _check_resumable(out_dir, identity)
    header = {
        "command": command,
        "bundle": f"`{bundle}` ({bundle_info['summary']})",
        "data": (f"`{data}`: {len(dataset)} spectrograms (generator config: "
                 f"{json.dumps(dataset.manifest.get('config', {}), sort_keys=True)}); "
                 f"held-out scenario `{scenario}`"),
        "preset": (f"{preset.name}: N per class {dict(preset.n_per_class)}, seeds {list(preset.seeds)}, "
                   f"baseline width {preset.baseline_width}, test {preset.test_per_class} per class, "
                   f"{preset.settings.epochs} epochs, patience {preset.settings.patience}, "
                   f"batch {preset.settings.batch_size}, lr {preset.settings.lr:g} "
                   f"(LWM_FT encoder x{preset.settings.finetune_lr_scale:g})"),
        "machine": _machine(device),
        "identity": identity,
    }
    (out_dir / "run.json").write_text(json.dumps(header, indent=2) + "\n")
    run_trials(dataset, components if needs_lwm else None, out_dir, preset, tuple(tasks), scenario,
               pretrained, show_progress)
    if not (out_dir / "embedding_quality.json").exists():
        embedding_quality(dataset, components, out_dir, scenario, preset.tsne_samples, device=device)
    header["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header["wall_time"] = f"{time.perf_counter() - started:.0f} s for this invocation (finished trials are not re-run)"
    (out_dir / "run.json").write_text(json.dumps(header, indent=2) + "\n")
    return write_report(out_dir, results_md, header)
