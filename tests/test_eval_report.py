"""The trial loop and report generator on a tiny run: CSV, tables, figures, resume."""

import csv
import json
import sys

import matplotlib.image
import numpy as np
import pytest
import torch

from lwmspectro import cli, labels
from lwmspectro.dataset import open_dataset, write_manifest, write_shard
from lwmspectro.spectrogram import SpectrogramParams
from lwmspectro_train.baseline_comparison import trials as trials_mod
from lwmspectro_train.baseline_comparison.fit import TrainSettings
from lwmspectro_train.baseline_comparison.lwm import LWMComponents
from lwmspectro_train.baseline_comparison.report import aggregate
from lwmspectro_train.baseline_comparison.tasks import TASKS, Preset
from lwmspectro_train.baseline_comparison.trials import TrialLog, run_trials
from lwmspectro_train.model import EncoderConfig, HeadsConfig, Router, RouterConfig, SpectrogramEncoder, TaskHeads

HELDOUT = "toy_heldout"
SIZE = 16
TINY = Preset(
    name="tiny",
    n_per_class={"task1_wifi": (2, 4), "task1_lte": (2,), "task1_nr": (2,), "task2": (2,), "task3": (3, 50)},
    seeds=(0, 1),
    baselines=dict.fromkeys(("task1_wifi", "task1_lte", "task1_nr", "task2", "task3"), ("wu_cnn",)),
    baseline_width=0.25,
    test_per_class=3,
    max_val_per_class=2,
    tsne_samples=40,
    settings=TrainSettings(epochs=2, patience=1, batch_size=8, min_steps_per_epoch=1),
)


def _dataset(folder):
    """Held-out rows of every protocol, modulation, two SNRs and two mobility classes, a
    few rows of another scenario and a noise-only row, which the tasks must leave out."""
    rng = np.random.default_rng(0)
    rows = []
    for protocol, repeats in (("wifi", 3), ("lte", 2), ("nr", 2)):
        for modulation in labels.ALLOWED_MODULATIONS[protocol]:
            for snr in (0, 20):
                for mobility in ("static", "vehicular"):
                    rows += [
                        dict(protocol=protocol, modulation=modulation, snr_db=snr, mobility=mobility, scenario=HELDOUT)
                    ] * repeats
    rows += [dict(protocol="wifi", modulation="QPSK", snr_db=20, mobility="static", scenario="toy_train")] * 4
    rows.append(dict(protocol="none", modulation=None, snr_db=0, mobility="static", scenario=HELDOUT))
    x = rng.normal(0, 0.3, (len(rows), SIZE, SIZE)).astype(np.float32)
    for i, row in enumerate(rows):
        if row["modulation"]:
            x[i, 3 * labels.MODULATIONS.index(row["modulation"]), :] += 2.0
            x[i, :, 2 * labels.MOBILITY_CLASSES.index(row["mobility"])] += row["snr_db"] / 10
    params = SpectrogramParams(n_fft=SIZE, hop=SIZE, n_frames=SIZE, n_bins=SIZE)
    folder.mkdir(parents=True)
    write_shard(folder, 0, x, rows)
    write_manifest(folder, params, {"toy": True}, 1)
    return open_dataset(folder)


def _components(seed=0):
    torch.manual_seed(seed)
    cfg = EncoderConfig(patch_size=4, d_model=16, n_layers=1, n_heads=2)
    experts = {p: SpectrogramEncoder(cfg, (SIZE, SIZE)).eval().requires_grad_(False) for p in labels.PROTOCOLS}
    router = Router(RouterConfig(patch_size=4, d_model=16, n_layers=1, n_heads=2), (SIZE, SIZE))
    return LWMComponents(experts, router.eval().requires_grad_(False), HeadsConfig(channels=4, n_blocks=1), "toy")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`lwmspectro eval` end to end on the tiny dataset, with the tiny preset standing in for --quick."""
    from lwmspectro_train.baseline_comparison import compare as compare_mod

    root = tmp_path_factory.mktemp("eval")
    dataset = _dataset(root / "data")
    components = _components()
    bundle = _bundle(root / "bundle", components, dataset.params)
    out, md = root / "out", root / "docs" / "results.md"
    argv = [
        "eval",
        "--bundle",
        str(bundle),
        "--data",
        str(dataset.folder),
        "--quick",
        "--out",
        str(out),
        "--results-md",
        str(md),
        "--scenario",
        HELDOUT,
        "--no-progress",
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(compare_mod.PRESETS, "quick", TINY)
        assert cli.main(argv) == 0
    return dataset, components, out, md, argv


def _rows(out):
    with open(out / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_trial_has_a_row_and_short_classes_are_reported(tiny_run):
    _, _, out, _, _ = tiny_run
    rows = _rows(out)
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 2 * 2 * 3 + 2 * (1 * 2 * 3) + 1 * 2 * 3 + 1 * 2 * 2  # task1 WiFi, LTE, NR, task2, task3 at N=3
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert {(r["task"], r["n_per_class"]) for r in skipped} == {("task3", "50")}
    assert "needs 55 samples" in skipped[0]["reason"]
    assert {task: {int(r["n_classes"]) for r in ok if r["task"] == task} for task in {r["task"] for r in ok}} == {
        "task1_wifi": {5},
        "task1_lte": {4},
        "task1_nr": {4},
        "task2": {4},  # 2 SNRs x 2 mobility classes present
        "task3": {5},
    }
    for r in ok:
        assert 0.0 <= float(r["macro_f1"]) <= 1.0
        assert int(r["n_train"]) == int(r["n_per_class"]) * int(r["n_classes"])
    predictions = TrialLog(out).predictions()
    assert predictions[("task1_lte", "LWM", 2, 0)]["class_names"] == list(labels.ALLOWED_MODULATIONS["lte"])
    assert set(predictions[("task1_nr", "LWM_FT", 2, 1)]["protocol"]) == {"nr"}
    moe = predictions[("task3", "MoE", 3, 0)]
    assert len(moe["expert"]) == len(moe["y_true"]) == 5 * 3
    assert set(moe["protocol"]) <= set(labels.PROTOCOLS)


def test_report_tables_hold_the_csv_numbers(tiny_run):
    _, _, out, results, _ = tiny_run
    text = results.read_text()
    assert text.startswith("# Evaluation against baselines")
    agg = aggregate(_rows(out))
    sections = {part.split("\n", 1)[0]: part for part in text.replace("**", "").split("\n## ")}
    for task, title in (
        ("task1_wifi", "WiFi, 5 classes"),
        ("task1_lte", "LTE, 4 classes"),
        ("task1_nr", "5G NR, 4 classes"),
    ):
        (ft_mean, ft_std), (mean, std) = agg[(task, "LWM_FT", 2)]["f1"], agg[(task, "LWM", 2)]["f1"]
        table = sections[f"Task 1: modulation classification ({title})"]
        assert f"| 2 | {ft_mean:.2f} ± {ft_std:.2f} | {mean:.2f} ± {std:.2f} |" in table
        assert f"| {task}, N=2: LWM - best baseline >= 20 F1 points |" in sections["Targets"]
    mean, std = agg[("task3", "MoE", 3)]["accuracy"]
    assert f"| MoE-Router (3 experts) | 3 | {mean:.2f} ± {std:.2f}" in text
    assert "| N/cls | LWM_FT | LWM | STFT-CNN |" in text
    assert "task3, N=50: each class needs 55 samples" in text
    assert "not measured" in text  # no N=100 / N=3200 pair in this run
    tables = (out / "tables.md").read_text()
    assert "## Task 2" in tables and "| 2 |" in tables
    quality = json.loads((out / "embedding_quality.json").read_text())
    assert quality["protocol"] == "nr" and quality["n_samples"] == 32
    assert f"{quality['silhouette']['raw spectrogram (PCA-50)']['snr']:.3f}" in text


def test_figures_are_written_and_linked(tiny_run):
    _, _, out, results, _ = tiny_run
    text = results.read_text()
    for name in (
        "task1_wifi_f1_vs_n",
        "task1_wifi_confusion",
        "task1_wifi_accuracy_per_snr",
        "task1_lte_f1_vs_n",
        "task1_nr_confusion",
        "task2_f1_vs_n",
        "task3_confusion",
        "tsne",
    ):
        path = out / f"{name}.png"
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 200 and image[..., :3].std() > 0.05
        assert f"(../out/{name}.png)" in text


def test_resume_runs_only_unfinished_trials(tiny_run, monkeypatch, tmp_path):
    dataset, components, out, _, _ = tiny_run
    resumed = tmp_path / "out"
    resumed.mkdir()
    rows = (out / "trials.csv").read_text().splitlines()
    last_ok = max(i for i, line in enumerate(rows) if ",ok," in line)
    kept = rows[:last_ok] + rows[last_ok + 1 :]
    (resumed / "trials.csv").write_text("\n".join(kept) + "\n" + rows[last_ok][:25])  # a row cut by a kill
    calls = []
    real_fit = trials_mod.fit
    monkeypatch.setattr(trials_mod, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    sha = json.loads((out / "run.json").read_text())["identity"]["bundle_card_sha256"]
    run_trials(dataset, components, resumed, TINY, scenario=HELDOUT, show_progress=False, bundle=sha)
    assert len(calls) == 1
    assert len(TrialLog(resumed).finished(sha)) == len(TrialLog(out).finished(sha))
    run_trials(dataset, components, resumed, TINY, scenario=HELDOUT, show_progress=False, bundle=sha)
    assert len(calls) == 1


def test_a_bundle_of_g_alone_feeds_each_expert_g_as_before(tiny_run):
    dataset, components, _, _, _ = tiny_run
    for task in ("task1_wifi", "task1_lte", "task2"):
        spec = TASKS[task]
        pool = trials_mod._TaskData(dataset, spec, TINY, HELDOUT)
        with torch.no_grad():
            expected = components.experts[spec.expert](torch.from_numpy(dataset.spectrograms(pool.indices))).numpy()
        assert np.array_equal(pool.embeddings(spec, components, "cpu"), expected)


def test_the_commands_task_choices_are_the_tasks():
    from lwmspectro_train.commands.eval import TASK_CHOICES

    assert tuple(TASKS) == TASK_CHOICES


def test_eval_command_without_torch_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "lwmspectro_train.baseline_comparison.compare", None)
    assert cli.main(["eval", "--bundle", "b", "--data", "d"]) == 2
    assert "pip install -e training" in capsys.readouterr().err


def _bundle(folder, components, params):
    """Tiny graphs and a card naming the torch checkpoint, which is what eval reads."""
    from lwmspectro.bundle import build_card

    from bundle_factory import make_bundle, stamp

    make_bundle(folder.parent, name=folder.name, params=params)
    heads = {p: TaskHeads(16, components.heads).state_dict() for p in components.experts}
    torch.save(
        {
            "config": {
                "model": next(iter(components.experts.values())).cfg.to_dict(),
                "router": components.router.cfg.to_dict(),
                "heads": components.heads.to_dict(),
            },
            "foundation_experts": {p: e.state_dict() for p, e in components.experts.items()},
            "experts": {p: e.state_dict() for p, e in _components(seed=1).experts.items()},
            "router": components.router.state_dict(),
            "heads": heads,
        },
        folder / "lwm.pt",
    )
    card = build_card(
        name="toy", params=params, normalisation={}, model={}, training={"checkpoint": "lwm.pt"}, metrics={}
    )
    return stamp(folder, card)


def test_header_names_the_command_and_bundle(tiny_run):
    dataset, _, out, md, argv = tiny_run
    text = md.read_text()
    assert f"lwmspectro eval --bundle {argv[2]} --data {dataset.folder} --quick --out {out}" in text
    assert "card `toy`" in text and "card.json sha256" in text
    assert "every part reads the wideband spectrogram G" in text
    assert f"held-out scenario `{HELDOUT}`" in text


def test_another_bundle_reruns_only_the_lwm_trials(tiny_run, tmp_path, monkeypatch, capsys):
    import shutil

    dataset, _, out, _, _argv = tiny_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    other = _bundle(tmp_path / "bundle2", _components(seed=2), dataset.params)
    (other / "card.json").write_text((other / "card.json").read_text().replace('"toy"', '"toy2"'))
    calls = []
    real_fit = trials_mod.fit
    monkeypatch.setattr(trials_mod, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    from lwmspectro_train.baseline_comparison import compare as compare_mod

    monkeypatch.setitem(compare_mod.PRESETS, "quick", TINY)
    rest = [
        "--data",
        str(dataset.folder),
        "--quick",
        "--out",
        str(copy),
        "--results-md",
        str(tmp_path / "r.md"),
        "--tasks",
        "task1_wifi",
        "--no-progress",
    ]
    assert cli.main(["eval", "--bundle", str(other), "--scenario", HELDOUT] + rest) == 0
    assert len(calls) == 8  # LWM and LWM_FT at two N and two seeds; STFT-CNN kept
    new_sha = json.loads((copy / "run.json").read_text())["identity"]["bundle_card_sha256"]
    task1 = [r for r in TrialLog(copy).rows(new_sha) if r["task"] == "task1_wifi"]
    assert {r["bundle"] for r in task1 if r["model"] != "wu_cnn"} == {new_sha}
    assert "card `toy2`" in (tmp_path / "r.md").read_text()
    assert len(_rows(copy)) == len(_rows(out))  # the superseded rows are compacted away
    assert len((copy / "predictions.jsonl").read_text().splitlines()) == len(TrialLog(copy).finished())
    assert cli.main(["eval", "--bundle", str(other), "--scenario", "toy_train"] + rest) == 1
    assert "holds trials of another run" in capsys.readouterr().err
    (copy / "trials.csv").unlink()  # as the error advises: the other run starts over there
    assert cli.main(["eval", "--bundle", str(other), "--scenario", "toy_train"] + rest) == 0
    assert json.loads((copy / "run.json").read_text())["identity"]["scenario"] == "toy_train"


def test_bundle_loads_the_foundation_experts(tiny_run, tmp_path):
    from lwmspectro_train.baseline_comparison.lwm import load_components

    dataset, components, _, _, _ = tiny_run
    loaded, info = load_components(_bundle(tmp_path / "bundle", components, dataset.params))
    for name, expert in components.experts.items():
        for key, value in expert.state_dict().items():
            assert torch.equal(loaded.experts[name].state_dict()[key], value)
    assert "foundation experts" in info["summary"] and len(info["card_sha256"]) == 64


def test_bundle_without_torch_weights_is_refused(tiny_run, tmp_path):
    from lwmspectro_train.baseline_comparison.lwm import load_components

    dataset, components, _, _, _ = tiny_run
    bundle = _bundle(tmp_path / "bundle", components, dataset.params)
    (bundle / "lwm.pt").unlink()
    with pytest.raises(FileNotFoundError, match="needs the torch weights the bundle was exported from"):
        load_components(bundle)


def test_baselines_run_without_a_bundle_and_lwm_joins_later(tiny_run, tmp_path, monkeypatch):
    from dataclasses import replace

    from lwmspectro_train.baseline_comparison import compare as compare_mod

    dataset, _components, _, _, argv = tiny_run
    monkeypatch.setitem(
        compare_mod.PRESETS, "quick", replace(TINY, n_per_class={**TINY.n_per_class, "task1_wifi": (2,)})
    )
    out = tmp_path / "out"
    common = [
        "--data",
        str(dataset.folder),
        "--quick",
        "--out",
        str(out),
        "--results-md",
        str(tmp_path / "r.md"),
        "--scenario",
        HELDOUT,
        "--tasks",
        "task1_wifi",
        "--no-progress",
    ]
    assert cli.main(["eval", "--models", "wu_cnn"] + common) == 0
    assert {r["model"] for r in _rows(out)} == {"wu_cnn"}
    assert cli.main(["eval", "--models", "LWM"] + common) == 1  # LWM needs a bundle
    calls = []
    real_fit = trials_mod.fit
    monkeypatch.setattr(trials_mod, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    assert cli.main(["eval", "--bundle", argv[2]] + common) == 0
    assert len(calls) == 4  # LWM and LWM_FT at two seeds; the baseline trials are kept
    assert {r["model"] for r in _rows(out)} == {"wu_cnn", "LWM", "LWM_FT"}


def test_coverage_says_which_trials_of_the_preset_a_partial_run_lacks():
    from lwmspectro_train.baseline_comparison.report import coverage
    from lwmspectro_train.baseline_comparison.tasks import PRESETS

    quick = PRESETS["quick"]
    rows = [
        dict(task="task2", model=m, n_per_class=str(n), seed=str(s), status="ok")
        for m in quick.models("task2")
        for n, seeds in ((5, quick.seeds), (10, (0,)))
        for s in seeds
    ]
    rows += [
        dict(task="task3", model=m, n_per_class=str(n), seed=str(s), status="ok")
        for m in quick.models("task3")
        for n in quick.n_per_class["task3"]
        for s in quick.seeds
    ]
    rows.append(dict(task="task1_wifi", model="LWM", n_per_class="2", seed="0", status="skipped"))
    wifi, lte, nr, task2, task3 = coverage(rows, "quick")
    assert wifi == "- task1_wifi: 0 of 36 trials (not run)"
    assert lte == "- task1_lte: 0 of 36 trials (not run)" and nr == "- task1_nr: 0 of 36 trials (not run)"
    assert task2.startswith("- task2: 16 of 24 trials (LWM_FT: N=10 1 of 3 seeds; LWM: N=10 1 of 3 seeds;")
    assert task3 == "- task3: all 18 trials"
    assert coverage(rows, "no-such-preset") == []
