"""Per-window against tracked readouts: recordings of one emission each, read by a bundle with and
without tracking over windows.

Each recording is one example of a generator config (protocol, modulation, SNR, channel and
capture chain drawn as the dataset draws them) realised as a whole stream of `seconds`, the
channel fading throughout; `Runtime.iter_classify_iq` reads it window by window with a
`lwmspectro.tracking.Tracker`, and `readout.judge` scores every window's own values and the
tracked ones against the example's labels. A dataset example is one observation, so the held-out
metrics cannot say what tracking gains; this does.

    python -m lwmspectro_train.tracked --bundle models/small \
        --config python/lwmspectro/configs/heldout-views.json --recordings 60 --seconds 1 --track 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lwmspectro import labels
from lwmspectro.bundle import load_bundle
from lwmspectro.dataset_generation import ExamplePlan, example_source
from lwmspectro.readout import JUDGED_TASKS, judge
from lwmspectro.runtime import Runtime
from lwmspectro.synth import GeneratorConfig
from lwmspectro.tracking import Tracker

MIN_SNR_DB = 10.0
"""Modulation and mobility are scored at and above this SNR, as the held-out targets read them."""


def emission_plan(config: GeneratorConfig, seconds: float) -> ExamplePlan:
    """The config's plan with `seconds` of stream realised after the capture's lead-in (and as
    much again after them, the capture's filters' edge)."""
    plan = ExamplePlan.of(config)
    return ExamplePlan(plan.views, plan.capture, plan.lead, int(seconds * config.params.sample_rate_hz) + 2 * plan.lead)


def score_recording(runtime: Runtime, iq: np.ndarray, rate: float, row: dict, track_s: float) -> dict[str, list]:
    """{task: [hit, ...]} over the recording's judged windows, window and tracked values alike."""
    tracker = Tracker.for_runtime(runtime, track_s)
    hits: dict[str, list] = {task: [] for task in JUDGED_TASKS}
    truth = {key: row.get(key) for key in ("protocol", "modulation", "snr_db", "mobility")}
    for readout in runtime.iter_classify_iq(iq, rate, tracker=tracker):
        if not readout["valid"]:
            continue
        for task, hit in judge(readout, truth, runtime.snr_bins_db).items():
            hits[task].append(bool(hit))
    return hits


def evaluate(bundle, config: GeneratorConfig, recordings: int, seconds: float, track_s: float, progress: bool) -> dict:
    """Accuracy per task, per window and tracked, over `recordings` emissions of `config`
    (protocol over all; modulation, SNR and mobility of WiFi / LTE / NR at SNR >= MIN_SNR_DB)."""
    runtime = Runtime(load_bundle(bundle))
    plan = emission_plan(config, seconds)
    pooled: dict[str, list] = {task: [] for task in JUDGED_TASKS}
    per_protocol: dict[str, dict[str, list]] = {}
    for index in tqdm(range(recordings), desc="recordings", disable=not progress):
        iq, rate, _, row = example_source(config, index, plan, whole_stream=True)
        hits = score_recording(runtime, iq, rate, row, track_s)
        high = row["snr_db"] is not None and row["snr_db"] >= MIN_SNR_DB
        own = per_protocol.setdefault(row["protocol"], {task: [] for task in JUDGED_TASKS})
        for task, values in hits.items():
            if task.endswith("protocol") or high:
                pooled[task] += values
                own[task] += values

    def shares(hits: dict[str, list]) -> dict:
        return {task: {"accuracy": float(np.mean(v)), "windows": len(v)} for task, v in hits.items() if v}

    return {
        "bundle": str(bundle),
        "config": config.to_dict(),
        "recordings": recordings,
        "seconds": seconds,
        "track_s": track_s,
        "min_snr_db_for_tasks": MIN_SNR_DB,
        "overall": shares(pooled),
        "per_protocol": {
            p: shares(h) for p, h in sorted(per_protocol.items(), key=lambda kv: labels.ROUTER_CLASSES.index(kv[0]))
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, help="model bundle folder")
    parser.add_argument("--config", required=True, help="generator config (.json) the emissions are drawn from")
    parser.add_argument("--recordings", type=int, default=60, help="emissions, one recording each")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each recording")
    parser.add_argument("--track", type=float, default=1.0, help="tracking span in seconds")
    parser.add_argument("--out", help="write the figures as JSON here too")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.recordings < 1 or not args.seconds > 0 or not args.track > 0:
        parser.error("--recordings, --seconds and --track must be positive")
    result = evaluate(
        args.bundle,
        GeneratorConfig.from_file(args.config),
        args.recordings,
        args.seconds,
        args.track,
        not args.no_progress,
    )
    text = json.dumps(result["overall"] | {"per_protocol": result["per_protocol"]}, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
