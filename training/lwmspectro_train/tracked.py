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

`--bundle` repeated scores several bundles on the same emissions, each realised once, and ends
with a table of them side by side; `--workers` spreads the emissions over processes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lwmspectro import labels
from lwmspectro.bundle import load_bundle
from lwmspectro.dataset_generation import ExamplePlan, example_source, one_thread_per_worker
from lwmspectro.readout import JUDGED_TASKS, TASKS, TRACKED_PREFIX, judge
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
    return evaluate_bundles([bundle], config, recordings, seconds, track_s, progress)[0]


def evaluate_bundles(
    bundles: Sequence,
    config: GeneratorConfig,
    recordings: int,
    seconds: float,
    track_s: float,
    progress: bool,
    workers: int = 1,
) -> list[dict]:
    """`evaluate` of each bundle on the same emissions, each emission realised once for all of
    them (forming a whole stream costs more than reading it); `workers` processes share the
    emissions."""
    jobs = [(config.to_dict(), index, seconds, track_s) for index in range(recordings)]
    pooled: list[dict[str, list]] = [{task: [] for task in JUDGED_TASKS} for _ in bundles]
    per_protocol: list[dict[str, dict[str, list]]] = [{} for _ in bundles]
    bar = tqdm(total=recordings, desc="recordings", disable=not progress)

    def add(scored: tuple[dict, list[dict[str, list]]]) -> None:
        row, hits_per_bundle = scored
        high = row["snr_db"] is not None and row["snr_db"] >= MIN_SNR_DB
        for into, protocols, hits in zip(pooled, per_protocol, hits_per_bundle):
            own = protocols.setdefault(row["protocol"], {task: [] for task in JUDGED_TASKS})
            for task, values in hits.items():
                if task.endswith("protocol") or high:
                    into[task] += values
                    own[task] += values
        bar.update()

    if workers > 1 and len(jobs) > 1:
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_start_worker, initargs=([str(b) for b in bundles],)) as pool:
            for scored in pool.imap(_score_in_worker, jobs):
                add(scored)
    else:
        runtimes = [Runtime(load_bundle(bundle)) for bundle in bundles]
        for job in jobs:
            add(_score_emission(runtimes, *job))
    bar.close()

    def shares(hits: dict[str, list]) -> dict:
        return {task: {"accuracy": float(np.mean(v)), "windows": len(v)} for task, v in hits.items() if v}

    order = labels.ROUTER_CLASSES.index
    return [
        {
            "bundle": str(bundle),
            "config": config.to_dict(),
            "recordings": recordings,
            "seconds": seconds,
            "track_s": track_s,
            "min_snr_db_for_tasks": MIN_SNR_DB,
            "overall": shares(hits),
            "per_protocol": {p: shares(h) for p, h in sorted(protocols.items(), key=lambda kv: order(kv[0]))},
        }
        for bundle, hits, protocols in zip(bundles, pooled, per_protocol)
    ]


_worker_runtimes: list[Runtime] = []
"""The bundles' runtimes in a worker process of evaluate_bundles, loaded once at its start."""


def _start_worker(bundles: list[str]) -> None:
    one_thread_per_worker()
    _worker_runtimes[:] = [Runtime(load_bundle(bundle)) for bundle in bundles]


def _score_in_worker(job: tuple) -> tuple[dict, list[dict[str, list]]]:
    return _score_emission(_worker_runtimes, *job)


def _score_emission(
    runtimes: Sequence[Runtime], config_dict: dict, index: int, seconds: float, track_s: float
) -> tuple[dict, list[dict[str, list]]]:
    """(the emission's label row, score_recording of each runtime): the emission realised once."""
    config = GeneratorConfig.from_dict(config_dict)
    iq, rate, _, row = example_source(config, index, emission_plan(config, seconds), whole_stream=True)
    return row, [score_recording(runtime, iq, rate, row, track_s) for runtime in runtimes]


def comparison_table(results: Sequence[dict]) -> str:
    """Markdown: each task's accuracy per window / tracked, a column per bundle."""
    lines = [
        "| value | " + " | ".join(r["bundle"] for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for task in TASKS:
        cells = []
        for result in results:
            window, tracked = (result["overall"].get(name) for name in (task, TRACKED_PREFIX + task))
            cells.append(" / ".join("-" if v is None else f"{100 * v['accuracy']:.1f} %" for v in (window, tracked)))
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bundle",
        required=True,
        action="append",
        help="model bundle folder; repeat it to score several on the same emissions",
    )
    parser.add_argument("--config", required=True, help="generator config (.json) the emissions are drawn from")
    parser.add_argument("--recordings", type=int, default=60, help="emissions, one recording each")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each recording")
    parser.add_argument("--track", type=float, default=1.0, help="tracking span in seconds")
    parser.add_argument("--out", help="write the figures as JSON here too")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the emissions")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.recordings < 1 or not args.seconds > 0 or not args.track > 0 or args.workers < 1:
        parser.error("--recordings, --seconds, --track and --workers must be positive")
    results = evaluate_bundles(
        args.bundle,
        GeneratorConfig.from_file(args.config),
        args.recordings,
        args.seconds,
        args.track,
        not args.no_progress,
        args.workers,
    )
    for result in results:
        print(result["bundle"])
        print(json.dumps(result["overall"] | {"per_protocol": result["per_protocol"]}, indent=1))
    print(comparison_table(results))
    if args.out:
        Path(args.out).write_text(json.dumps(results[0] if len(results) == 1 else results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
