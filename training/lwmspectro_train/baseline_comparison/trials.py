"""Few-shot and data-rich trials: every (task, model, N, seed) trained and tested on the
same stratified split, one CSV row each, resumable (finished trials are skipped)."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lwmspectro.fileio import atomic_write

from ..metrics import macro_f1
from .baselines import build_baseline, load_pretrained
from .fit import Views, fit, predict_logits
from .lwm import LWMComponents, embed, finetune_model, frozen_model, read_views, routed_embeddings
from .splits import TooFewSamples, stratified_split
from .tasks import LWM, LWM_FT, MOE, TASKS, Preset, present_classes, task_pool

CSV_FIELDS = (
    "task",
    "model",
    "n_per_class",
    "seed",
    "status",
    "accuracy",
    "macro_f1",
    "val_f1",
    "epochs_run",
    "best_epoch",
    "seconds",
    "cpu_seconds",
    "n_train",
    "n_val",
    "n_test",
    "n_classes",
    "width",
    "bundle",
    "reason",
)
BUNDLE_SCOPED = (LWM, LWM_FT, MOE)
"""Models whose trials depend on the bundle: their rows carry its card hash."""


def trial_key(task: str, model: str, n_per_class, seed) -> tuple:
    return (str(task), str(model), int(n_per_class), int(seed))


def _drop_partial_line(path: Path) -> None:
    """Cut a last line that a kill left without its newline, so the next row starts clean."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


class TrialLog:
    """trials.csv (one row per trial) and predictions.jsonl (test labels and predictions of
    each finished trial) in the output folder. A trial counts as finished once its CSV row
    with status "ok" is on disk; rows are appended and flushed one at a time, so a killed
    run loses at most the trial it was in."""

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.out_dir / "trials.csv"
        self.predictions_path = self.out_dir / "predictions.jsonl"

    def rows(self, bundle: str | None = None) -> list[dict]:
        """All complete rows; for a trial logged more than once (a skipped trial retried, an
        LWM trial re-run for another bundle), the last. With `bundle`, LWM rows of other
        bundles are left out."""
        if not self.csv_path.exists():
            return []
        latest = {}
        with open(self.csv_path, newline="") as f:
            for row in csv.DictReader(f):
                if None in row or any(row.get(k) is None for k in CSV_FIELDS if k != "bundle"):
                    continue  # a row cut short by a kill
                row.setdefault("bundle", "")
                if bundle is not None and row["model"] in BUNDLE_SCOPED and row["bundle"] != bundle:
                    continue
                latest[trial_key(row["task"], row["model"], row["n_per_class"], row["seed"])] = row
        return list(latest.values())

    def finished(self, bundle: str | None = None) -> set:
        """Keys of the trials done; LWM trials count only if run with `bundle`."""
        return {
            trial_key(r["task"], r["model"], r["n_per_class"], r["seed"])
            for r in self.rows(bundle)
            if r["status"] == "ok"
        }

    def compact(self) -> None:
        """Rewrite both files with only the last row and record of each trial (superseded
        rows of retried or re-run trials go), each file replaced atomically."""
        if not self.csv_path.exists():
            return
        self._rewrite_csv(self.rows())
        if self.predictions_path.exists():
            lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in self.predictions().values())
            atomic_write(self.predictions_path, lines)

    def _rewrite_csv(self, rows: list[dict]) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows({k: row.get(k, "") for k in CSV_FIELDS} for row in rows)
        atomic_write(self.csv_path, text.getvalue())

    def _migrate_header(self) -> None:
        """Rewrite a CSV written before a column was added, so appended rows line up."""
        with open(self.csv_path, newline="") as f:
            header = next(csv.reader(f), None)
        if header is not None and tuple(header) != CSV_FIELDS:
            self._rewrite_csv(self.rows())

    def predictions(self) -> dict:
        """Trial key -> prediction record (the last one logged)."""
        records = {}
        if self.predictions_path.exists():
            for line in self.predictions_path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                records[trial_key(record["task"], record["model"], record["n_per_class"], record["seed"])] = record
        return records

    def append(self, row: dict, predictions: dict | None = None) -> None:
        if predictions is not None:
            self._append_line(self.predictions_path, json.dumps(predictions, separators=(",", ":")) + "\n")
        new_file = not self.csv_path.exists()
        _drop_partial_line(self.csv_path)
        if not new_file:
            self._migrate_header()
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            if new_file:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})
            f.flush()
            os.fsync(f.fileno())

    @staticmethod
    def _append_line(path: Path, line: str) -> None:
        _drop_partial_line(path)
        with open(path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


class _TaskData:
    """A task's sample pool from the held-out scenario, capped at what the largest trial needs:
    G for the baselines (`x`) and, read when an LWM model first needs them, the views the
    task's LWM models read."""

    def __init__(self, dataset, spec, preset: Preset, scenario: str):
        self.dataset = dataset
        rows = dataset.labels
        pool = task_pool(spec, rows, scenario)
        if len(pool) == 0:
            found = sorted({(r.get("scenario"), r.get("protocol")) for r in rows}, key=str)
            raise ValueError(
                f"{spec.key}: no {'/'.join(spec.protocols)} samples from scenario {scenario!r} "
                f"in {dataset.folder}; (scenario, protocol) pairs there: {found}"
            )
        y, self.class_names = present_classes(spec, rows, pool)
        largest = max(preset.n_per_class[spec.key])
        cap = largest + preset.val_per_class(largest) + preset.test_per_class
        rng = np.random.default_rng(12345)
        keep = np.sort(
            np.concatenate([rng.permutation(np.flatnonzero(y == c))[:cap] for c in range(len(self.class_names))])
        )
        self.indices = pool[keep]
        self.y = y[keep]
        self.snr_db = np.asarray([rows[i]["snr_db"] for i in self.indices], np.float64)
        self.protocol = [rows[i]["protocol"] for i in self.indices]
        self.x = dataset.spectrograms(self.indices)
        self._views = None
        self._embeddings = None
        self.routed_expert = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def views(self, spec, components: LWMComponents) -> Views:
        """The pool's views that the task's LWM models read, by name (`LWMComponents.reads`)."""
        if self._views is None:
            self._views = read_views(self.dataset, components.reads(spec.expert), self.indices)
        return self._views

    def embeddings(self, spec, components: LWMComponents, device: str) -> np.ndarray:
        """Frozen-encoder embeddings of the pool (the fixed expert, or the router's choice)."""
        if self._embeddings is None:
            views = self.views(spec, components)
            if spec.expert is None:
                self._embeddings, choice = routed_embeddings(components, views, device)
                names = list(components.experts)
                self.routed_expert = [names[c] for c in choice]
            else:
                self._embeddings = embed(components.experts[spec.expert], views, device=device)
        return self._embeddings


def _train_and_test(
    model_name, data: _TaskData, spec, split, components, preset: Preset, pretrained: dict, seed: int, progress
) -> tuple[np.ndarray, object, float]:
    """Train one model on split.train (early stopping on split.val); test predictions."""
    settings = preset.settings
    torch.manual_seed(seed)
    if model_name in (LWM, MOE):
        features = data.embeddings(spec, components, settings.device)
        model = frozen_model(components, features[split.train], data.y[split.train], data.n_classes)
        groups, width = None, ""
    elif model_name == LWM_FT:
        train_embeddings = data.embeddings(spec, components, settings.device)[split.train]
        features = data.views(spec, components)
        model, groups = finetune_model(
            components,
            spec.expert,
            train_embeddings,
            data.y[split.train],
            data.n_classes,
            settings.lr,
            settings.finetune_lr_scale,
        )
        width = ""
    else:
        features, groups, width = data.x, None, preset.baseline_width
        model = build_baseline(model_name, data.n_classes, preset.baseline_width)
        if model_name in pretrained:
            load_pretrained(model, pretrained[model_name])
    result = fit(
        model,
        features[split.train],
        data.y[split.train],
        features[split.val],
        data.y[split.val],
        data.n_classes,
        settings,
        seed,
        groups,
        progress,
    )
    logits = predict_logits(model, features[split.test], settings.batch_size * 2, settings.device)
    return logits.argmax(1), result, width


def planned_models(preset: Preset, task: str, models=None) -> list[str]:
    """The preset's models for `task`, restricted to `models` when given."""
    return [m for m in preset.models(task) if models is None or m in models]


def run_trials(
    dataset,
    components: LWMComponents | None,
    out_dir,
    preset: Preset,
    tasks=tuple(TASKS),
    scenario: str = "",
    pretrained: dict | None = None,
    show_progress: bool = True,
    models=None,
    bundle: str = "",
) -> TrialLog:
    """Run every unfinished trial of `tasks` under `preset`; returns the log.

    `models` restricts the run to those model names (default: all of the preset's);
    `components` may be None when none of them is an LWM model; `bundle` identifies them
    (LWM trials of another bundle are run again, baseline trials are kept). `pretrained`
    maps a baseline name to a state-dict path."""
    log = TrialLog(out_dir)
    pretrained = dict(pretrained or {})
    done = log.finished(bundle)
    plan = [
        (task, n, seed, model)
        for task in tasks
        for n in preset.n_per_class[task]
        for seed in preset.seeds
        for model in planned_models(preset, task, models)
    ]
    todo = [p for p in plan if trial_key(p[0], p[3], p[1], p[2]) not in done]
    bar = tqdm(
        total=len(plan),
        initial=len(plan) - len(todo),
        desc="eval trials",
        unit="trial",
        disable=not show_progress,
        dynamic_ncols=True,
    )
    for task in tasks:
        spec = TASKS[task]
        task_todo = [p for p in todo if p[0] == task]
        if not task_todo:
            continue
        data = _TaskData(dataset, spec, preset, scenario)
        for n, seed in dict.fromkeys((p[1], p[2]) for p in task_todo):
            models = [p[3] for p in task_todo if p[1] == n and p[2] == seed]
            n_val, n_test = preset.val_per_class(n), preset.test_per_class
            try:
                split = stratified_split(data.y, n, n_val, n_test, [seed, n, spec.split_seed], data.class_names)
            except TooFewSamples as err:
                for model in models:
                    log.append(
                        {
                            "task": task,
                            "model": model,
                            "n_per_class": n,
                            "seed": seed,
                            "status": "skipped",
                            "n_classes": data.n_classes,
                            "reason": str(err),
                        }
                    )
                    bar.update()
                continue
            for model in models:
                bar.set_description(f"{task} {model} N={n} seed={seed}")
                wall, cpu = time.perf_counter(), time.process_time()
                pred, result, width = _train_and_test(
                    model, data, spec, split, components, preset, pretrained, seed, bar
                )
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                truth = data.y[split.test]
                record = {
                    "task": task,
                    "model": model,
                    "n_per_class": n,
                    "seed": seed,
                    "class_names": data.class_names,
                    "y_true": truth.tolist(),
                    "y_pred": pred.tolist(),
                    "snr_db": data.snr_db[split.test].tolist(),
                    "protocol": [data.protocol[i] for i in split.test],
                }
                if model == MOE:
                    record["expert"] = [data.routed_expert[i] for i in split.test]
                log.append(
                    {
                        "task": task,
                        "model": model,
                        "n_per_class": n,
                        "seed": seed,
                        "status": "ok",
                        "accuracy": f"{float(np.mean(pred == truth)):.6f}",
                        "macro_f1": f"{macro_f1(truth, pred, range(data.n_classes)):.6f}",
                        "val_f1": f"{result.best_val_f1:.6f}",
                        "epochs_run": result.epochs_run,
                        "best_epoch": result.best_epoch,
                        "seconds": f"{wall:.2f}",
                        "cpu_seconds": f"{cpu:.2f}",
                        "n_train": len(split.train),
                        "n_val": len(split.val),
                        "n_test": len(split.test),
                        "n_classes": data.n_classes,
                        "width": width,
                        "bundle": bundle if model in BUNDLE_SCOPED else "",
                        "reason": "",
                    },
                    record,
                )
                bar.update()
    bar.close()
    log.compact()
    return log
