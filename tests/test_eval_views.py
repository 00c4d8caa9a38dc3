"""`lwmspectro eval` with a bundle of several views (a tiny views-small, trained here as in
tests/test_train_multiview.py): each expert, and the router, reads its own views by name from
the evaluation data, Task 1 runs per protocol through each protocol's expert, Task 2 takes its
label from each example's SNR and mobility, and data lacking a view the bundle reads is refused
before any trial."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_train_multiview import GENERATED_VIEWS, SHORT_DYNAMICS, make_dataset, tiny_views_config

from lwmspectro import cli, labels
from lwmspectro.dataset import open_dataset
from lwmspectro.dataset_generation import generate_dataset
from lwmspectro.scenarios import HELDOUT_SCENARIO
from lwmspectro.synth import GeneratorConfig
from lwmspectro.views import CpProfileParams, view_to_dict
from lwmspectro_train import cli as train_cli
from lwmspectro_train.baseline_comparison import compare as compare_mod
from lwmspectro_train.baseline_comparison import trials as trials_mod
from lwmspectro_train.baseline_comparison.fit import TrainSettings
from lwmspectro_train.baseline_comparison.lwm import load_components
from lwmspectro_train.baseline_comparison.tasks import TASKS, Preset
from lwmspectro_train.baseline_comparison.trials import TrialLog
from lwmspectro_train.export import load_torch_from_bundle

TASK1 = ("task1_wifi", "task1_lte", "task1_nr")
PRESET = Preset(
    name="tiny-views",
    n_per_class=dict.fromkeys(TASKS, (2,)),
    seeds=(0,),
    baselines=dict.fromkeys(TASKS, ("wu_cnn",)),
    baseline_width=0.25,
    test_per_class=2,
    max_val_per_class=1,
    tsne_samples=30,
    settings=TrainSettings(epochs=1, patience=1, batch_size=8, min_steps_per_epoch=1),
)


def heldout_views(folder, n, seed, views=GENERATED_VIEWS):
    """Examples of the three protocols at the held-out site with `views` (by default every view the
    tiny bundle reads), at two SNRs and two mobility classes, so that each class has a few."""
    config = GeneratorConfig(
        n_samples=n,
        shard_size=n,
        seed=seed,
        classes=dict.fromkeys(labels.PROTOCOLS, 1.0),
        snr_db=[0, 20],
        mobility=["static", "vehicular"],
        channel="site",
        scenarios="heldout",
        views=views,
    )
    generate_dataset(config, folder, progress=False)
    return open_dataset(folder)


def card_views(bundle) -> dict:
    """The views each part of the bundle reads, as its card lists them."""
    return json.loads((bundle / "card.json").read_text())["model"]["views"]


def eval_argv(bundle, data, out):
    return [
        "eval",
        "--bundle",
        str(bundle),
        "--data",
        str(data),
        "--quick",
        "--out",
        str(out),
        "--results-md",
        str(out / "results.md"),
        "--no-progress",
    ]


@pytest.fixture(scope="module")
def views_eval(tmp_path_factory):
    """The tiny views-small bundle on 40 generated examples, evaluated on 150 held-out examples
    with the tiny preset standing in for --quick."""
    root = tmp_path_factory.mktemp("eval-views")
    config = tiny_views_config(root, make_dataset(root / "train", 40, seed=5), make_dataset(root / "test", 8, seed=6))
    bundle = root / "bundle"
    assert train_cli.main(["all", "--config", str(config), "--no-progress", "--out", str(bundle)]) == 0
    data = heldout_views(root / "heldout", 150, seed=11)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(compare_mod.PRESETS, "quick", PRESET)
        assert cli.main(eval_argv(bundle, data.folder, root / "out")) == 0
    return bundle, data, root / "out"


def test_every_task_runs_on_the_views_bundle_with_task1_per_protocol(views_eval):
    _, _, out = views_eval
    rows = TrialLog(out).rows()
    assert {r["status"] for r in rows} == {"ok"}
    models = {task: {r["model"] for r in rows if r["task"] == task} for task in TASKS}
    assert models == {
        **{task: {"LWM", "LWM_FT", "wu_cnn"} for task in TASK1},
        "task2": {"LWM", "LWM_FT", "wu_cnn"},
        "task3": {"MoE", "wu_cnn"},
    }
    predictions = TrialLog(out).predictions()
    for task, protocol in zip(TASK1, ("wifi", "lte", "nr")):
        record = predictions[(task, "LWM", 2, 0)]
        assert record["class_names"] == list(labels.ALLOWED_MODULATIONS[protocol])
        assert set(record["protocol"]) == {protocol}
    joint = predictions[("task2", "LWM_FT", 2, 0)]["class_names"]
    assert joint == ["+0 dB static", "+0 dB vehicular", "+20 dB static", "+20 dB vehicular"]


def test_the_report_has_a_table_and_a_target_per_protocol_and_says_what_each_model_reads(views_eval):
    bundle, _, out = views_eval
    text = (out / "results.md").read_text()
    sections = {part.split("\n", 1)[0]: part for part in text.split("\n## ")}
    for task, title in zip(TASK1, ("WiFi, 5 classes", "LTE, 4 classes", "5G NR, 4 classes")):
        assert "| 2 |" in sections[f"Task 1: modulation classification ({title})"]
        assert f"| {task}, N=2: LWM - best baseline >= 20 F1 points |" in sections["Targets"]
        assert (out / f"{task}_f1_vs_n.png").exists()
    for part, names in card_views(bundle).items():
        assert f"{part} {', '.join(names)}" in text
    assert "The baselines read the wideband spectrogram G alone" in text


def test_lwm_features_are_each_experts_embedding_of_the_views_it_reads(views_eval):
    """Against the deployed model's experts fed by the card's list of views, not the evaluation's code."""
    bundle, data, _ = views_eval
    components, _ = load_components(bundle)
    model = load_torch_from_bundle(bundle, foundation_experts=True)
    reads = card_views(bundle)
    for task, expert in (("task1_wifi", "wifi"), ("task1_lte", "lte"), ("task1_nr", "nr"), ("task2", "lte")):
        pool = trials_mod._TaskData(data, TASKS[task], PRESET, HELDOUT_SCENARIO)
        views = {name: torch.from_numpy(data.view(name, pool.indices)) for name in reads[expert]}
        with torch.no_grad():
            expected = model.experts[expert].embed(views).numpy()
        assert np.allclose(pool.embeddings(TASKS[task], components, "cpu"), expected, atol=1e-5)

    pool = trials_mod._TaskData(data, TASKS["task3"], PRESET, HELDOUT_SCENARIO)
    routed = pool.embeddings(TASKS["task3"], components, "cpu")
    views = {name: torch.from_numpy(data.view(name, pool.indices)) for name in model.view_names}
    with torch.no_grad():
        deployed = model(views)
    to_expert = deployed["expert"].numpy() >= 0
    assert to_expert.any()
    assert np.allclose(routed[to_expert], deployed["embedding"][to_expert].numpy(), atol=1e-5)
    assert [pool.routed_expert[i] for i in np.flatnonzero(to_expert)] == [
        model.expert_names[int(e)] for e in deployed["expert"][to_expert]
    ]


def test_data_without_a_view_the_bundle_reads_is_refused_before_any_trial(views_eval, tmp_path, capsys):
    bundle, _, _ = views_eval
    without = [view for view in GENERATED_VIEWS if view != view_to_dict(SHORT_DYNAMICS)]
    data = heldout_views(tmp_path / "no-dynamics", 6, seed=12, views=without)
    assert cli.main(eval_argv(bundle, data.folder, tmp_path / "out")) == 1
    assert "stores no view 'dynamics' (read by wifi, lte, nr)" in capsys.readouterr().err
    assert not (tmp_path / "out" / "trials.csv").exists()


def test_data_with_other_parameters_of_a_view_is_refused(views_eval, tmp_path, capsys):
    bundle, _, _ = views_eval
    other = [view_to_dict(CpProfileParams(span_s=0.004)) if view == "cp_profile" else view for view in GENERATED_VIEWS]
    data = heldout_views(tmp_path / "other-cp", 6, seed=12, views=other)
    assert cli.main(eval_argv(bundle, data.folder, tmp_path / "out")) == 1
    assert "stores the view 'cp_profile' with other parameters" in capsys.readouterr().err
