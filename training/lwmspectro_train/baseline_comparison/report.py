"""From a run's trials.csv and predictions.jsonl to Markdown tables in the paper's form,
PNG figures and docs/results.md, with the targets of the evaluation checked in numbers."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix

from .baselines import DISPLAY_NAMES as BASELINE_NAMES
from .figures import accuracy_per_snr, confusion_matrices, f1_vs_labels
from .tasks import DISPLAY_NAMES as LWM_NAMES
from .tasks import LWM, LWM_FT, LWM_MODELS, MOE, PRESETS, TASKS
from .trials import TrialLog

FEW_SHOT_MAX_N = 10
FEW_SHOT_MARGIN = 20.0
SATURATION_RATIO = 0.95


def display_name(model: str) -> str:
    return LWM_NAMES.get(model) or BASELINE_NAMES.get(model, model)


def aggregate(rows: list[dict]) -> dict:
    """(task, model, N) -> {"f1": (mean, std), "accuracy": (mean, std), "seeds": k} in percent."""
    groups = defaultdict(list)
    for row in rows:
        if row["status"] == "ok":
            groups[(row["task"], row["model"], int(row["n_per_class"]))].append(row)
    out = {}
    for key, members in groups.items():
        stats = {"seeds": len(members)}
        for metric, column in (("f1", "macro_f1"), ("accuracy", "accuracy")):
            values = 100.0 * np.asarray([float(m[column]) for m in members])
            stats[metric] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
        out[key] = stats
    return out


def _models_in(agg: dict, task: str) -> list[str]:
    present = {model for (t, model, _) in agg if t == task}
    order = list(LWM_MODELS) + list(BASELINE_NAMES)
    return [m for m in order if m in present] + sorted(present - set(order))


def _ns_in(agg: dict, task: str) -> list[int]:
    return sorted({n for (t, _, n) in agg if t == task})


def _cell(stats) -> str:
    mean, std = stats
    return f"{mean:.2f} ± {std:.2f}"


def table_by_n(agg: dict, task: str) -> str:
    """Paper Table II form: one row per N, one column per model, test macro-F1 (%) mean ± std,
    best of each row in bold."""
    models = _models_in(agg, task)
    lines = ["| N/cls | " + " | ".join(display_name(m) for m in models) + " |", "|---:|" + "---:|" * len(models)]
    for n in _ns_in(agg, task):
        means = {m: agg[(task, m, n)]["f1"][0] for m in models if (task, m, n) in agg}
        best = max(means.values())
        cells = []
        for m in models:
            if (task, m, n) not in agg:
                cells.append("—")
                continue
            text = _cell(agg[(task, m, n)]["f1"])
            cells.append(f"**{text}**" if means[m] == best else text)
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_by_model(agg: dict, task: str) -> str:
    """Paper Table III form: model, N/cls, accuracy (%) and F1 (%), mean ± std."""
    lines = ["| Model | N/cls | Accuracy (%) | F1 (%) | seeds |", "|---|---:|---:|---:|---:|"]
    for m in _models_in(agg, task):
        first = True
        for n in _ns_in(agg, task):
            if (task, m, n) in agg:
                s = agg[(task, m, n)]
                lines.append(
                    f"| {display_name(m) if first else ''} | {n} | {_cell(s['accuracy'])} | "
                    f"{_cell(s['f1'])} | {s['seeds']} |"
                )
                first = False
    return "\n".join(lines)


def check_targets(agg: dict) -> list[dict]:
    """The evaluation's targets, each with its numbers and met / missed / not measured. The
    few-shot margin is checked on every task through one expert (Task 1 per protocol, Task 2)."""
    checks = []
    for task in (key for key, spec in TASKS.items() if spec.expert is not None):
        baselines = [m for m in _models_in(agg, task) if m not in LWM_MODELS]
        few = [n for n in _ns_in(agg, task) if n <= FEW_SHOT_MAX_N]
        if not few or not baselines or not any((task, LWM, n) in agg for n in few):
            checks.append(
                {
                    "target": f"{task}: LWM beats every baseline by >= {FEW_SHOT_MARGIN:g} F1 points "
                    f"at N <= {FEW_SHOT_MAX_N}",
                    "status": "not measured",
                    "detail": "no LWM and baseline trials at N <= 10 in this run",
                }
            )
            continue
        for n in few:
            if (task, LWM, n) not in agg:
                continue
            lwm = agg[(task, LWM, n)]["f1"][0]
            present = [m for m in baselines if (task, m, n) in agg]
            best = max(present, key=lambda m: agg[(task, m, n)]["f1"][0])
            margin = lwm - agg[(task, best, n)]["f1"][0]
            checks.append(
                {
                    "target": f"{task}, N={n}: LWM - best baseline >= {FEW_SHOT_MARGIN:g} F1 points",
                    "status": "met" if margin >= FEW_SHOT_MARGIN else "missed",
                    "detail": f"LWM {lwm:.2f}, best baseline {display_name(best)} "
                    f"{agg[(task, best, n)]['f1'][0]:.2f}, margin {margin:+.2f}",
                }
            )
    for n in _ns_in(agg, "task2"):
        if (("task2", LWM_FT, n)) not in agg:
            continue
        means = {m: agg[("task2", m, n)]["f1"][0] for m in _models_in(agg, "task2") if ("task2", m, n) in agg}
        winner = max(means, key=means.get)
        checks.append(
            {
                "target": f"task2, N={n}: LWM_FT is the best model",
                "status": "met" if winner == LWM_FT else "missed",
                "detail": f"LWM_FT {means[LWM_FT]:.2f}; best {display_name(winner)} {means[winner]:.2f}",
            }
        )
    low, high = ("task3", MOE, 100), ("task3", MOE, 3200)
    if low in agg and high in agg:
        ratio = agg[low]["f1"][0] / max(agg[high]["f1"][0], 1e-9)
        checks.append(
            {
                "target": f"task3: MoE F1 at N=100 >= {SATURATION_RATIO:.0%} of F1 at N=3200",
                "status": "met" if ratio >= SATURATION_RATIO else "missed",
                "detail": f"{agg[low]['f1'][0]:.2f} vs {agg[high]['f1'][0]:.2f} ({ratio:.1%})",
            }
        )
    else:
        checks.append(
            {
                "target": f"task3: MoE F1 at N=100 >= {SATURATION_RATIO:.0%} of F1 at N=3200",
                "status": "not measured",
                "detail": "this run has no MoE trials at both N=100 and N=3200 (the full preset does)",
            }
        )
    return checks


def coverage(rows: list[dict], preset_name: str | None) -> list[str]:
    """One line per task of the preset: how many of its planned trials this run finished,
    and which (model, N) points are missing or have fewer seeds, so a partial run says so."""
    preset = PRESETS.get(preset_name or "")
    if preset is None:
        return []
    done = defaultdict(set)
    for row in rows:
        if row["status"] == "ok":
            done[(row["task"], row["model"], int(row["n_per_class"]))].add(int(row["seed"]))
    lines = []
    n_seeds = len(preset.seeds)
    for task in TASKS:
        counts = {
            model: {n: len(done[(task, model, n)] & set(preset.seeds)) for n in preset.n_per_class[task]}
            for model in preset.models(task)
        }
        finished = sum(sum(per_n.values()) for per_n in counts.values())
        total = sum(len(per_n) for per_n in counts.values()) * n_seeds
        if finished == total:
            lines.append(f"- {task}: all {total} trials")
            continue
        gaps = []
        for model, per_n in counts.items():
            if not any(per_n.values()):
                gaps.append(f"{display_name(model)} not run")
            elif min(per_n.values()) < n_seeds:
                gaps.append(
                    f"{display_name(model)}: "
                    + ", ".join(
                        f"N={n} " + ("not run" if k == 0 else f"{k} of {n_seeds} seeds")
                        for n, k in per_n.items()
                        if k < n_seeds
                    )
                )
        detail = "not run" if finished == 0 else "; ".join(gaps)
        lines.append(f"- {task}: {finished} of {total} trials ({detail})")
    return lines


def _largest_common_n(records: dict, task: str, models: list) -> int | None:
    ns = [
        n
        for n in sorted({k[2] for k in records if k[0] == task}, reverse=True)
        if all(any(k[0] == task and k[1] == m and k[2] == n for k in records) for m in models)
    ]
    return ns[0] if ns else None


def _pooled(records: dict, task: str, model: str, n: int) -> list[dict]:
    return [r for k, r in records.items() if k[0] == task and k[1] == model and k[2] == n]


def task_figures(agg: dict, records: dict, task: str, out_dir: Path) -> dict:
    """F1 vs N, confusion matrices and accuracy per SNR of one task; returns name -> path,
    plus the per-SNR accuracy table and router accuracy where they apply."""
    out = {}
    models = _models_in(agg, task)
    title = TASKS[task].title
    curves = {}
    for m in models:
        ns = [n for n in _ns_in(agg, task) if (task, m, n) in agg]
        curves[display_name(m)] = (
            ns,
            [agg[(task, m, n)]["f1"][0] for n in ns],
            [agg[(task, m, n)]["f1"][1] for n in ns],
        )
    out["f1_vs_n"] = f1_vs_labels(curves, title, out_dir / f"{task}_f1_vs_n.png")

    lwm_models = [m for m in models if m in LWM_MODELS]
    n_cm = _largest_common_n(records, task, models)
    if n_cm is not None:
        baselines = [m for m in models if m not in LWM_MODELS]
        shown = lwm_models + ([max(baselines, key=lambda m: agg[(task, m, n_cm)]["f1"][0])] if baselines else [])
        panels = []
        for m in shown:
            pooled = _pooled(records, task, m, n_cm)
            names = pooled[0]["class_names"]
            truth = np.concatenate([r["y_true"] for r in pooled])
            pred = np.concatenate([r["y_pred"] for r in pooled])
            panels.append(
                (
                    f"{display_name(m)}, N={n_cm}, {len(pooled)} seeds",
                    confusion_matrix(truth, pred, labels=np.arange(len(names))),
                    names,
                )
            )
        out["confusion"] = confusion_matrices(panels, out_dir / f"{task}_confusion.png")

        snr_curves, snr_table = {}, {}
        for m in models:
            pooled = _pooled(records, task, m, n_cm)
            snr = np.concatenate([r["snr_db"] for r in pooled])
            correct = np.concatenate([np.asarray(r["y_true"]) == np.asarray(r["y_pred"]) for r in pooled])
            levels = np.unique(snr)
            acc = [100.0 * correct[snr == s].mean() for s in levels]
            snr_curves[display_name(m)] = (levels, acc)
            snr_table[m] = dict(zip(levels.tolist(), acc))
        out["accuracy_per_snr"] = accuracy_per_snr(
            snr_curves, f"{title}, N={n_cm}", out_dir / f"{task}_accuracy_per_snr.png"
        )
        out["snr_table"] = (n_cm, snr_table)
    moe = [r for k, r in records.items() if k[0] == task and k[1] == MOE and "expert" in r]
    if moe:
        routed = np.concatenate([np.asarray(r["expert"]) == np.asarray(r["protocol"]) for r in moe])
        out["router_accuracy"] = (100.0 * routed.mean(), len(routed))
    return out


def _snr_markdown(n: int, table: dict) -> str:
    models = list(table)
    levels = sorted({s for row in table.values() for s in row})
    lines = [
        f"Test accuracy (%) per labelled SNR at N={n}, pooled over seeds:",
        "",
        "| SNR (dB) | " + " | ".join(display_name(m) for m in models) + " |",
        "|---:|" + "---:|" * len(models),
    ]
    for s in levels:
        lines.append(f"| {s:g} | " + " | ".join(f"{table[m][s]:.1f}" if s in table[m] else "—" for m in models) + " |")
    return "\n".join(lines)


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def write_report(out_dir, results_md=None, header: dict | None = None) -> Path:
    """Write tables.md and the figures into `out_dir`, and the full report to `results_md`
    (default: `out_dir`/results.md). `header` (default: `out_dir`/run.json) describes the run:
    command, bundle, data, preset, machine."""
    out_dir = Path(out_dir)
    results_md = Path(results_md) if results_md else out_dir / "results.md"
    results_md.parent.mkdir(parents=True, exist_ok=True)
    if header is None:
        run_json = out_dir / "run.json"
        header = json.loads(run_json.read_text()) if run_json.exists() else {}
    log = TrialLog(out_dir)
    rows = log.rows(header.get("identity", {}).get("bundle_card_sha256") or None)
    agg = aggregate(rows)
    records = log.predictions()
    finished = {(r["task"], r["model"], int(r["n_per_class"]), int(r["seed"])) for r in rows if r["status"] == "ok"}
    records = {k: v for k, v in records.items() if k in finished}  # the last record of a key is the kept row's
    base = results_md.parent

    doc = ["# Evaluation against baselines", ""]
    if header.get("command"):
        doc += ["Regenerated by this command (from the repository root):", "", "```", header["command"], "```", ""]
    for label, key in (
        ("Model bundle", "bundle"),
        ("Data", "data"),
        ("Preset", "preset"),
        ("Machine", "machine"),
        ("Date", "date"),
        ("Wall time", "wall_time"),
    ):
        if header.get(key):
            doc.append(f"- **{label}**: {header[key]}")
    ok_rows = [r for r in rows if r["status"] == "ok"]
    if ok_rows:
        wall = sum(float(r["seconds"]) for r in ok_rows)
        cpu = sum(float(r["cpu_seconds"]) for r in ok_rows)
        doc.append(
            f"- **Compute**: {len(ok_rows)} trials, {wall:.0f} s wall time and {cpu:.0f} s CPU time in "
            f"training and testing (the CPU time over the cores used is the wall time on an otherwise "
            f"idle machine)"
        )
    doc += [
        "",
        "Every number is test-set macro-F1 or accuracy (%) as mean ± std over seeds, on "
        "spectrograms of the held-out scenario only, with a fresh stratified train / val / test "
        "split per (task, N, seed) shared by all models. All models use AdamW (weight decay 5e-4) "
        "with the same epochs, batch size and early stopping on validation macro-F1. The baselines "
        "read the wideband spectrogram G alone, as the paper's baselines do, and are trained from "
        "scratch (no ImageNet weights are available offline); the LWM models feed each expert, and "
        "the router, the views it reads (listed under Model bundle).",
        "",
    ]

    checks = check_targets(agg)
    tables = []
    doc += ["## Targets", "", "| target | status | numbers |", "|---|---|---|"]
    doc += [f"| {c['target']} | {c['status']} | {c['detail']} |" for c in checks]
    missed = [c for c in checks if c["status"] == "missed"]
    doc += [
        "",
        f"{len(missed)} of {len(checks)} target checks missed; "
        f"{sum(c['status'] == 'not measured' for c in checks)} not measured in this run.",
        "",
    ]
    covered = coverage(rows, header.get("identity", {}).get("preset"))
    if covered:
        doc += [
            "Trials of the preset's grid that this run holds (a rerun of the command resumes the rest):",
            "",
            *covered,
            "",
        ]

    for task, spec in TASKS.items():
        if not any(k[0] == task for k in agg):
            continue
        table = table_by_model(agg, task) if task == "task3" else table_by_n(agg, task)
        tables += [f"## {spec.title}", "", table, ""]
        figs = task_figures(agg, records, task, out_dir)
        doc += [f"## {spec.title}", "", table, "", f"![F1 vs N]({_rel(figs['f1_vs_n'], base)})", ""]
        if "router_accuracy" in figs:
            acc, count = figs["router_accuracy"]
            doc += [
                f"Router top-1 protocol accuracy on the test inputs of all MoE trials: {acc:.2f} % ({count} inputs).",
                "",
            ]
        if "snr_table" in figs:
            doc += [
                _snr_markdown(*figs["snr_table"]),
                "",
                f"![accuracy per SNR]({_rel(figs['accuracy_per_snr'], base)})",
                "",
                f"![confusion matrices]({_rel(figs['confusion'], base)})",
                "",
            ]
    skipped = sorted({(r["task"], int(r["n_per_class"]), r["reason"]) for r in rows if r["status"] == "skipped"})
    if skipped:
        doc += ["## Trials not run", ""] + [f"- {t}, N={n}: {reason}" for t, n, reason in skipped] + [""]

    quality_path = out_dir / "embedding_quality.json"
    if quality_path.exists():
        quality = json.loads(quality_path.read_text())
        doc += [
            "## Embedding quality",
            "",
            f"t-SNE of {quality['n_samples']} held-out {quality['protocol']} spectrograms "
            f"({quality['scenario']}), raw against LWM embeddings. Silhouette score of each feature "
            "space (higher separates the labels better; computed in the full space, not the 2-D map):",
            "",
            "| features | by SNR | by modulation |",
            "|---|---:|---:|",
        ]
        doc += [f"| {name} | {s['snr']:.3f} | {s['modulation']:.3f} |" for name, s in quality["silhouette"].items()]
        doc += ["", f"![t-SNE]({_rel(out_dir / 'tsne.png', base)})", ""]
    doc += [
        "## How the evaluation is set up",
        "",
        "- **Tasks.** Task 1 classifies the modulation on each protocol through that protocol's "
        "expert, one table per protocol: the five of WiFi (BPSK..256QAM), the four of LTE and of "
        "5G NR (QPSK..256QAM; `labels.ALLOWED_MODULATIONS`). Task 2 classifies the joint (SNR bin, "
        "mobility) class on LTE through the LTE expert (the classes present in the data, from each "
        "example's SNR and mobility labels; `labels.snr_mobility_index`). Task 3 classifies the "
        "modulation of mixed WiFi / LTE / 5G NR inputs: the router picks one expert per input "
        "(top-1 over the three experts) and one head reads the routed embedding.",
        "- **LWM models.** The experts are taken as the foundation stages left them (masked "
        "pretraining and contrastive fine-tuning on the training scenarios), not the shipped task "
        "heads; each reads its own views of the example, by name, and its embedding is the mean of "
        "its final tokens over all of them. LWM trains a new head on the frozen embedding: the "
        "residual 1-D CNN head of Sec. III-F with a cosine classifier beside it whose class weights "
        "start at the class means of the training split's embeddings (weight imprinting; the two "
        "logits add); LWM_FT also fine-tunes the encoder at a reduced learning rate. Embeddings are "
        "standardised per dimension with the training split's statistics before the head.",
        "- **Baselines.** STFT-CNN (Wu et al.), Deep CNN (Kojima et al.), ResNet-18, EfficientNet-B0 "
        "and MobileNet-V3 (small) read the wideband spectrogram G alone, as in the paper. They are "
        "written in plain torch in `lwmspectro_train.baseline_comparison.baselines` (torchvision "
        "does not import beside the pinned CPU torch wheel), with torchvision's layer layout and "
        "parameter names, one input channel, trained from scratch; "
        "`--pretrained-weights MODEL=PATH` loads a user's state dict (full width only).",
        "- **Optimisation.** One recipe for every model: AdamW, weight decay 5e-4, cross-entropy, the "
        "same epochs, batch size and patience, the weights of the best validation epoch kept; an "
        "epoch takes at least the preset's minimum number of updates so that few-shot trials train at all.",
        "- **Splits.** For each (task, N, seed): exactly N training, a quarter of N (at least 2) "
        "validation and the preset's number of test samples per class, disjoint, drawn from the "
        "held-out scenario only.",
        "",
    ]
    doc += [
        "## Files",
        "",
        f"- every trial: `{_rel(log.csv_path, base)}`",
        f"- test labels and predictions of every trial: `{_rel(log.predictions_path, base)}`",
        f"- the tables alone: `{_rel(out_dir / 'tables.md', base)}`",
        "",
    ]
    (out_dir / "tables.md").write_text("\n".join(tables) + "\n")
    results_md.write_text("\n".join(doc))
    return results_md
