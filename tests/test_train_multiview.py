"""LWM-Spectro on several views (Eq. 10 with C > 1): the trunk's layout, masking over every
view, absent views of the past, the separate heads; the shipped model of G alone unchanged bit
for bit; and every stage, the export and the runtime on a tiny multi-view dataset made here."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from lwmspectro import labels
from lwmspectro.bundle import load_bundle
from lwmspectro.dataset import open_dataset
from lwmspectro.dataset_generation import generate_dataset
from lwmspectro.dynamics import DynamicsParams
from lwmspectro.runtime import Runtime
from lwmspectro.synth import GeneratorConfig
from lwmspectro.views import CpProfileParams, view_to_dict
from lwmspectro_train import cli
from lwmspectro_train.config import STAGES, load_config
from lwmspectro_train.distributed import Context
from lwmspectro_train.export import load_torch_from_bundle
from lwmspectro_train.model import (
    SNR_CENTRE_DB,
    EncoderConfig,
    HeadsConfig,
    HeadsTraining,
    MaskedModelling,
    SeparateHeads,
    SpectrogramEncoder,
    build_heads,
    log_doppler,
)
from lwmspectro_train.stages import Run
from lwmspectro_train.trainer import BEST, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "small-wideband"
REFERENCE = Path(__file__).parent / "fixtures" / "train" / "small_reference_outputs.npz"
VIEWS_SMALL = ROOT / "training" / "lwmspectro_train" / "configs" / "views-small.json"
SHAPES = {"wideband": (32, 32), "cp_profile": (4, 64), "dynamics": (25, 32)}
TINY = EncoderConfig(
    patch_size=8,
    d_model=16,
    n_layers=1,
    n_heads=2,
    decoder_hidden=16,
    projection_dim=8,
    patch_shapes={"cp_profile": [1, 8], "dynamics": [5, 8]},
)
SHORT_DYNAMICS = DynamicsParams(hop_s=0.25e-3, n_snippets=72)
"""The dynamics view over 18 ms instead of 128 ms, same shape: a test dataset made in seconds."""
GENERATED_VIEWS = [
    "wideband",
    "ofdm_aligned_wifi",
    "ofdm_aligned_15khz",
    "ofdm_aligned_30khz",
    "cp_profile",
    view_to_dict(SHORT_DYNAMICS),
]


def views_batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(n, *shape, generator=g) for name, shape in SHAPES.items()}


def test_the_shipped_model_of_g_alone_loads_and_gives_its_recorded_outputs():
    """Recorded with models/small-wideband (then models/small) before views existed (float32, one
    thread). The same numbers bit for bit on the processor they were recorded on; another one's
    kernels (AVX-512 against AVX2) round a float32 product differently, so they are held to a few
    float32 roundings of their size."""
    reference = np.load(REFERENCE)
    model = load_torch_from_bundle(SHIPPED)
    weights = torch.load(SHIPPED / "weights.pt", weights_only=True)
    assert list(model.router.state_dict()) == list(weights["router"])
    assert all(list(model.experts[p].state_dict()) == list(weights["experts"][p]) for p in model.expert_names)
    x = torch.from_numpy(np.random.default_rng(20240611).standard_normal((4, 128, 128)).astype(np.float32))

    def recorded(name: str) -> torch.Tensor:
        return torch.from_numpy(reference[name])

    close = {"rtol": 1e-5, "atol": 1e-5}
    with torch.no_grad():
        out = model(x, mixture=True)
        torch.testing.assert_close(out["router_logits"], recorded("router_logits"), **close)
        torch.testing.assert_close(out["mixture_embedding"], recorded("mixture_embedding"), **close)
        for name in model.expert_names:
            embedding = model.experts[name](x)
            modulation, joint = model.heads[name](embedding)
            torch.testing.assert_close(embedding, recorded(f"embedding_{name}"), **close)
            torch.testing.assert_close(modulation, recorded(f"modulation_{name}"), **close)
            torch.testing.assert_close(joint, recorded(f"snr_mobility_{name}"), **close)


def test_a_trunk_of_several_views_has_per_view_embeddings_positions_and_an_absent_token():
    encoder = SpectrogramEncoder(TINY, SHAPES, optional=("dynamics",))
    keys = set(encoder.state_dict())
    for name in SHAPES:
        assert {f"normalise.{name}.mean", f"patch_embed.{name}.weight", f"pos_embed.{name}"} <= keys
    assert {"view_embed", "absent_embed.dynamics", "mask_token"} <= keys
    assert encoder.patch_embed["cp_profile"].in_features == 8 and encoder.patch_embed["dynamics"].in_features == 40
    assert encoder.view_patches == {"wideband": 16, "cp_profile": 32, "dynamics": 20} and encoder.n_patches == 68
    x = views_batch(3)
    assert encoder.tokens(x).shape == (3, 68, 16) and encoder(*x.values()).shape == (3, 16)
    single = SpectrogramEncoder(TINY, (32, 32))
    assert "patch_embed.weight" in single.state_dict() and single.view_embed is None
    with pytest.raises(ValueError, match="optional views"):
        SpectrogramEncoder(TINY, {"dynamics": (25, 32)}, optional=("dynamics",))


def test_an_absent_view_gives_the_same_embedding_whatever_it_held():
    encoder = SpectrogramEncoder(TINY, SHAPES, optional=("dynamics",)).eval()
    x = views_batch(2)
    nan, other = dict(x), dict(x)
    nan["dynamics"] = torch.full_like(x["dynamics"], float("nan"))
    other["dynamics"] = x["dynamics"] + 5.0
    with torch.no_grad():
        absent = encoder.embed(nan)
        forced = encoder.embed(other, {"dynamics": torch.ones(2, dtype=torch.bool)})
        present = encoder.embed(x)
    assert torch.isfinite(absent).all() and torch.equal(absent, forced) and not torch.allclose(absent, present)


def test_masked_modelling_masks_every_view_and_scores_only_views_the_window_has():
    torch.manual_seed(0)
    model = MaskedModelling(SpectrogramEncoder(TINY, SHAPES, optional=("dynamics",)), absent_prob=0.5)
    x = views_batch(4)
    x["dynamics"][0] = float("nan")
    predictions, _ = model.reconstruct(x, torch.zeros(4, 68, dtype=torch.bool))
    assert [p.shape[-1] for p in predictions] == [64, 8, 40]
    out = model(x, generator=torch.Generator().manual_seed(1))
    out["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert torch.isfinite(out["loss"]) and all(torch.isfinite(g).all() for g in grads)
    assert model.encoder.absent_embed["dynamics"].grad.abs().sum() > 0

    model.eval()
    original = model.reconstruct

    def spoil_the_absent_row(views, mask, absent):
        predictions, tokens = original(views, mask, absent)
        predictions[2] = predictions[2].clone()
        predictions[2][0] += 1e3
        return predictions, tokens

    with torch.no_grad():
        loss = model(x, generator=torch.Generator().manual_seed(2))["recon"]
        model.reconstruct = spoil_the_absent_row
        assert model(x, generator=torch.Generator().manual_seed(2))["recon"] == loss


def test_separate_heads_regress_snr_and_doppler_and_skip_what_a_row_lacks():
    heads = SeparateHeads(16, HeadsConfig(channels=4, n_blocks=1, outputs="separate"))
    modulation, snr, mobility, doppler = heads(torch.zeros(5, 16))
    assert modulation.shape == (5, 5) and snr.shape == (5, 2) and mobility.shape == (5, 3) and doppler.shape == (5, 2)
    with torch.no_grad():
        heads.snr.classifier.bias.copy_(torch.tensor([2.0, 0.0]))
    assert heads(torch.zeros(1, 16))[1][0, 0] != SNR_CENTRE_DB, "the SNR is a number, not bounded to a grid"
    targets = {
        "modulation": torch.tensor([0, 1, -1, 2, 3]),
        "snr_db": torch.tensor([30.0, 5.0, float("nan"), 0.0, 12.5]),
        "mobility": torch.tensor([0, 2, -1, 1, 1]),
        "log_doppler": log_doppler(torch.tensor([0.2, 300.0, float("nan"), 10.0, 10.0])),
    }
    outputs = heads(torch.randn(5, 16))
    losses = heads.losses(outputs, targets, unseen=torch.tensor([False, False, False, True, True]))
    assert all(torch.isfinite(value) for value in losses.values())
    changed = dict(targets, mobility=torch.tensor([0, 2, -1, 0, 0]))
    again = heads.losses(outputs, changed, unseen=torch.tensor([False, False, False, True, True]))
    assert again["mobility_loss"] == losses["mobility_loss"], "mobility is not scored where its view is absent"


def test_sigma_floors_bound_the_loss_of_a_confidently_misread_row():
    def sure_heads(**floors):
        heads = SeparateHeads(16, HeadsConfig(channels=4, n_blocks=1, outputs="separate", **floors))
        with torch.no_grad():
            for head in (heads.snr, heads.doppler):
                head.classifier.weight.zero_()
                head.classifier.bias.copy_(torch.tensor([0.0, -50.0]))
        return heads

    targets = {
        "modulation": torch.tensor([0, 0]),
        "snr_db": torch.tensor([SNR_CENTRE_DB, SNR_CENTRE_DB + 3.0]),
        "mobility": torch.tensor([1, 1]),
        "log_doppler": log_doppler(torch.tensor([3.0, 24.0])),
    }
    embedding = torch.zeros(2, 16)
    bare, floored = sure_heads(), sure_heads(snr_sigma_floor_db=0.5, log_doppler_sigma_floor=0.1)
    _, snr, _, doppler = floored(embedding)
    for sigma, floor in ((snr[:, 1].exp().sqrt(), 0.5), (doppler[:, 1].exp().sqrt(), 0.1)):
        assert (sigma >= floor).all() and (sigma < 1.05 * floor).all()
    assert bare(embedding)[1][:, 1].exp().sqrt().max() < 0.2, "without a floor only the raw clamp holds it"
    loose, bounded = bare.losses(bare(embedding), targets), floored.losses(floored(embedding), targets)
    assert loose["snr_loss"] > 100 and loose["doppler_loss"] > 100
    assert bounded["snr_loss"] < 10 and bounded["doppler_loss"] < 10
    with pytest.raises(ValueError, match="sigma floors"):
        HeadsConfig(outputs="separate", snr_sigma_floor_db=-1.0)


def test_the_heads_stage_weighs_each_tasks_loss_as_configured():
    heads = SeparateHeads(16, HeadsConfig(channels=4, n_blocks=1, outputs="separate"))
    rows = {
        "modulation": torch.tensor([0, 3]),
        "snr_db": torch.tensor([2.0, 20.0]),
        "mobility": torch.tensor([0, 2]),
        "log_doppler": log_doppler(torch.tensor([0.2, 100.0])),
    }
    embedding = torch.randn(2, 16)
    plain = HeadsTraining(heads)(embedding, **rows)
    weighed = HeadsTraining(heads, loss_weights={"snr": 0.5, "doppler": 0.0})(embedding, **rows)
    expected = plain["modulation_loss"] + 0.5 * plain["snr_loss"] + plain["mobility_loss"]
    assert torch.allclose(weighed["loss"], expected)
    assert torch.allclose(plain["loss"], expected + plain["doppler_loss"] + 0.5 * plain["snr_loss"])
    with pytest.raises(ValueError, match="modulation, snr, mobility, doppler"):
        HeadsTraining(heads, loss_weights={"snr_db": 0.5})
    with pytest.raises(ValueError, match="loss_weights must be >= 0"):
        load_config("views-sent-power-experts", ['stages.heads.loss_weights={"snr": -1}'])


def test_the_views_config_names_each_parts_views():
    cfg = load_config("views-small")
    assert cfg.views_of("router") == ("wideband", "cp_profile", "ofdm_aligned_15khz")
    assert cfg.normalisation == "per_row"
    assert cfg.views_of("lte") == ("ofdm_aligned_15khz", "cp_profile", "dynamics")
    assert "dynamics" in cfg.views_of("nr") and cfg.heads.outputs == "separate" and not cfg.reads_g_alone
    small = load_config("small")
    assert small.reads_g_alone and small.views_of("wifi") == ("wideband",) and small.heads.outputs == "joint"
    with pytest.raises(ValueError, match="valid choices: router, wifi, lte, nr"):
        load_config("views-small", ['views={"bluetooth": ["wideband"]}'])
    constellation = load_config("views-constellation")
    assert constellation.views_of("router") == cfg.views_of("router")
    assert constellation.views_of("lte") == ("ofdm_constellation_15khz", "cp_profile", "dynamics")
    assert constellation.views_of("nr")[:2] == ("ofdm_constellation_15khz", "ofdm_constellation_30khz")
    circularity, synced = load_config("views-circ-experts"), load_config("views-sync-experts")
    wifi_views = ("ofdm_constellation_wifi", "ofdm_circularity_wifi", "cp_profile", "dynamics")
    assert circularity.views_of("wifi") == wifi_views
    assert circularity.optional_views == ("ofdm_circularity_wifi",) and not synced.optional_views
    assert all(circularity.views_of(part) == synced.views_of(part) for part in ("router", "lte", "nr"))
    sent_power = load_config("views-sent-power-experts")
    assert sent_power.views_of("router") == synced.views_of("router")
    for part in ("wifi", "lte", "nr"):
        assert sent_power.views_of(part) == (*synced.views_of(part)[:-1], f"dynamics_{part}")
    pilots = load_config("views-pilot-experts")
    wifi_constellations = ("ofdm_constellation_wifi", "ofdm_constellation_wifi_pilots")
    assert pilots.views_of("wifi") == (*wifi_constellations, *sent_power.views_of("wifi")[1:])
    assert all(pilots.views_of(part) == sent_power.views_of(part) for part in ("router", "lte", "nr"))
    narrowband = load_config("views-narrowband-router")
    assert narrowband.views_of("router") == (*pilots.views_of("router"), "narrowband")
    assert all(narrowband.views_of(part) == pilots.views_of(part) for part in ("wifi", "lte", "nr"))
    assert narrowband.experts_from == "models/small" and narrowband.router_from is None
    wifi_power = load_config("views-wifi-power-router")
    assert wifi_power.views_of("router") == (*pilots.views_of("router"), "dynamics_wifi")
    assert all(wifi_power.views_of(part) == pilots.views_of(part) for part in ("wifi", "lte", "nr"))
    assert wifi_power.experts_from == "models/small" and wifi_power.router_from is None
    snr = load_config("views-snr-experts")
    snr_views = ("spectral_levels", "spectral_levels_spread", "cp_snr")
    assert all(snr.views_of(part) == (*pilots.views_of(part), *snr_views) for part in ("wifi", "lte", "nr"))
    assert snr.views_of("router") == pilots.views_of("router") and snr.router_from == "models/small"
    with pytest.raises(ValueError, match="optional_views: 'dynamics' is not a list of view names"):
        load_config("views-small", ['optional_views="dynamics"'])


def make_dataset(folder, n, seed):
    config = GeneratorConfig(n_samples=n, shard_size=n, seed=seed, views=GENERATED_VIEWS, channel="TDL-A")
    generate_dataset(config, folder, progress=False)
    return folder


def tiny_views_config(root, train, test, heads_mode="lwm_ft") -> Path:
    """configs/views-small.json with tiny sizes, one epoch of batches of 8 per stage."""
    values = json.loads(VIEWS_SMALL.read_text())
    values |= {"name": "tiny-views", "run_dir": str(root / "run"), "seed": 1}
    values["data"] = {"train": str(train), "val_fraction": 0.25, "test": str(test)}
    values["model"] |= {"d_model": 16, "n_layers": 1, "n_heads": 2, "decoder_hidden": 16, "projection_dim": 8}
    values["router"] |= {"d_model": 16, "n_layers": 1, "n_heads": 2}
    values["heads"] |= {"channels": 4, "n_blocks": 1, "mode": heads_mode}
    values["heads"] |= {"snr_sigma_floor_db": 0.5, "log_doppler_sigma_floor": 0.1}
    values["loader"] = {"workers": 0, "threads": 1, "eval_batch_size": 16}
    for stage in STAGES:
        values["stages"][stage] |= {"epochs": 1, "batch_size": 8, "warmup_epochs": 0.5, "lr": 3e-3}
    path = root / f"tiny-views-{heads_mode}.json"
    path.write_text(json.dumps(values))
    return path


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """Every stage of a tiny views-small on 40 generated examples, then held-out metrics and the export."""
    root = tmp_path_factory.mktemp("views")
    train = make_dataset(root / "train", 40, seed=5)
    test = make_dataset(root / "test", 8, seed=6)
    config = tiny_views_config(root, train, test)
    also = ["--also", f"again={test}"]
    assert cli.main(["all", "--config", str(config), "--no-progress", "--out", str(root / "bundle"), *also]) == 0
    return root, config


def test_the_card_lists_the_views_and_the_graphs_take_one_input_per_view(recipe):
    root, _ = recipe
    bundle = load_bundle(root / "bundle")
    assert bundle.view_names == [
        "wideband",
        "cp_profile",
        "ofdm_aligned_15khz",
        "ofdm_aligned_wifi",
        "dynamics",
        "ofdm_aligned_30khz",
    ]
    normalisation = bundle.card["normalisation"]
    assert normalisation["kind"] == "per_row_per_view"
    assert len(normalisation["views"]["dynamics"]["std"]) == SHAPES["dynamics"][0]
    assert bundle.absent_views == ("dynamics",)
    assert bundle.card["model"]["views"]["nr"] == ["ofdm_aligned_15khz", "ofdm_aligned_30khz", "cp_profile", "dynamics"]
    held_out = bundle.metrics["held_out"]
    assert bundle.metrics["held_out_again"]["overall"] == held_out["overall"], "--also keeps another set's metrics"
    assert {"snr_abs_error_median_db", "mobility_accuracy_snr_ge_10"} <= set(held_out["targets"])
    parity = bundle.metrics["parity"]
    assert parity["all_argmax_agree"] and "absent_embedding_max_abs_diff" in parity["nr"]
    runtime = Runtime(bundle)
    assert [runtime.view_names[i] for i in runtime._router.views] == ["wideband", "cp_profile", "ofdm_aligned_15khz"]
    assert runtime._heads["lte"].kind == "heads_separate"


def test_onnx_runtime_reads_fresh_examples_as_the_torch_model_does(recipe, tmp_path):
    root, _ = recipe
    fresh = open_dataset(make_dataset(tmp_path / "fresh", 6, seed=7))
    bundle = load_bundle(root / "bundle")
    views = {name: fresh.view(name) for name in bundle.view_names}
    views["dynamics"][-2:] = np.nan
    model = load_torch_from_bundle(bundle)
    with torch.no_grad():
        out = model({name: torch.from_numpy(v) for name, v in views.items()})
    outputs = Runtime(bundle).predict([views[name] for name in bundle.view_names])
    assert [labels.ROUTER_CLASSES[int(i)] for i in out["top1"]] == [o.protocol for o in outputs]
    for i, output in enumerate(outputs):
        if out["expert"][i] < 0:
            assert output.expert is None
            continue
        assert output.modulation == labels.MODULATIONS[int(out["modulation_logits"][i].argmax())]
        assert output.snr_db == pytest.approx(float(out["snr_db"][i, 0]), abs=0.051)
        too_short = bool(out["needs_longer_capture"][i])
        assert too_short == (i >= 4)
        if not too_short:
            assert output.mobility == labels.MOBILITY_CLASSES[int(out["mobility_logits"][i].argmax())]
        assert (output.mobility is None and output.mobility_confidence is None) == too_short
        assert output.mobility_status == ("needs_longer_capture" if too_short else None)
        assert (output.doppler_hz is None) == too_short


def views_run(config: Path, run_dir: Path, *overrides: str) -> Run:
    cfg = load_config(str(config), [f"run_dir={run_dir}", *overrides])
    return Run(cfg, Context(), progress=False)


def test_each_stage_loads_only_the_views_its_part_reads(recipe):
    _, config = recipe
    run = views_run(config, recipe[0] / "run")
    stage = run.cfg.stage("pretrain")
    for protocol, part in ((None, "router"), ("lte", "lte"), ("wifi", "wifi")):
        train, val = run.stage_sets(stage, protocol)
        item = train[0]
        wanted = run.cfg.views_of(part)
        assert set(item.get("views", {})) | ({"wideband"} if "spectrogram" in item else set()) == set(wanted)
        assert {name: x.shape for name, x in item.get("views", {}).items()} == {
            name: x.shape for name, x in run.open_set(run.cfg.data.train)[0]["views"].items() if name in wanted
        }
        assert len(val) and val.views == train.views
    with pytest.raises(ValueError, match="does not load"):
        train.reading(["ofdm_constellation_wifi"])


def test_held_out_data_made_with_other_view_parameters_is_refused(recipe, tmp_path, capsys):
    root, config = recipe
    other = [view_to_dict(CpProfileParams(span_s=0.004)) if view == "cp_profile" else view for view in GENERATED_VIEWS]
    folder = tmp_path / "other-cp"
    config_other = GeneratorConfig(n_samples=4, shard_size=4, seed=9, views=other, channel="TDL-A")
    generate_dataset(config_other, folder, progress=False)
    assert cli.main(["heldout", "--config", str(config), "--data", str(folder), "--no-progress"]) == 1
    assert "other parameters of cp_profile" in capsys.readouterr().err
    assert cli.main(["heldout", "--config", str(config), "--data", str(root / "test"), "--no-progress"]) == 0


def test_a_multi_view_stage_resumes_bitwise(recipe, tmp_path):
    _, config = recipe
    two = ("stages.pretrain.epochs=2", "stages.pretrain.batch_size=2")
    stop = (*two, "stages.pretrain.max_steps=3")
    stopped = views_run(config, tmp_path / "a", *stop).pretrain("nr")
    assert not stopped["complete"] and len(stopped["step_losses"]) == 3
    resumed = views_run(config, tmp_path / "a", *two).pretrain("nr", resume=True)
    straight = views_run(config, tmp_path / "b", *two).pretrain("nr")
    assert resumed["complete"] and resumed["step_losses"] == straight["step_losses"][3:]


def test_frozen_heads_train_on_embeddings_with_and_without_the_view_of_the_past(recipe, tmp_path):
    root, config = recipe
    values = json.loads(config.read_text())
    values |= {"run_dir": str(tmp_path / "run")}
    values["heads"]["mode"] = "lwm"
    shutil.copytree(root / "run" / "finetune", tmp_path / "run" / "finetune")
    shutil.copy(root / "run" / "normalisation.json", tmp_path / "run" / "normalisation.json")
    result = views_run(_write(tmp_path / "lwm.json", values), tmp_path / "run").heads("wifi")
    assert result["complete"] and np.isfinite(result["best"]["val_loss"])
    assert {"val_snr_abs_error_db", "val_mobility_accuracy"} <= set(result["best"])


def make_router_sets(root: Path, seed: int) -> tuple[list[str], str]:
    """(the router's views with the pattern view the recipe's data lacks, the folder of a few
    examples of every view): 24 examples of the router's views in root/routed, 8 of every view in
    root/everything."""
    router_views = ["wideband", "cp_profile", "ofdm_aligned_15khz", "ofdm_pattern_15khz"]
    routed = GeneratorConfig(n_samples=24, shard_size=24, seed=seed, views=router_views, channel="TDL-A")
    generate_dataset(routed, root / "routed", progress=False)
    everything = GeneratorConfig(
        n_samples=8, shard_size=8, seed=seed + 1, views=[*GENERATED_VIEWS, "ofdm_pattern_15khz"], channel="TDL-A"
    )
    generate_dataset(everything, root / "everything", progress=False)
    return router_views, str(root / "everything")


def test_the_router_trains_on_a_dataset_of_its_own_views(recipe, tmp_path):
    """data.router: a corpus of the router's views alone (here with a view the experts' training
    set lacks) trains the router; the experts' stages and statistics stay those of data.train."""
    root, config = recipe
    router_views, test = make_router_sets(tmp_path, seed=8)
    values = json.loads(config.read_text())
    values |= {"run_dir": str(tmp_path / "run")}
    values["views"]["router"] = router_views
    values["data"] |= {"router": str(tmp_path / "routed"), "test": test}
    for stage in ("pretrain", "finetune", "heads"):
        shutil.copytree(root / "run" / stage, tmp_path / "run" / stage)
    assert (
        cli.main(
            [
                "all",
                "--config",
                str(_write(tmp_path / "routed.json", values)),
                "--no-progress",
                "--out",
                str(tmp_path / "bundle"),
                "--resume",
            ]
        )
        == 0
    )
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.card["training"]["data"]["router"]["count"] == 18  # 24, less the quarter that validates
    runtime = Runtime(bundle)
    assert [runtime.view_names[i] for i in runtime._router.views] == router_views
    trained = json.loads((root / "run" / "normalisation.json").read_text())["views"]
    own = json.loads((tmp_path / "run" / "normalisation.json").read_text())["views"]
    assert {name: own[name] for name in ("dynamics", "ofdm_aligned_wifi")} == {
        name: trained[name] for name in ("dynamics", "ofdm_aligned_wifi")
    }
    assert "ofdm_pattern_15khz" in own
    with pytest.raises(ValueError, match="stores no view 'ofdm_pattern_15khz'"):
        values["data"]["router"] = values["data"]["train"]
        views_run(_write(tmp_path / "bad.json", values), tmp_path / "bad").router_sets()


def test_the_router_of_a_bundle_retrains_on_a_corpus_of_its_views_beside_the_bundles_experts(recipe, tmp_path):
    """experts_from: only the router trains; the experts, their heads and the pixel statistics
    of every view the bundle has stay the bundle's, and the card says where they come from."""
    root, config = recipe
    router_views, checks = make_router_sets(tmp_path, seed=10)
    values = json.loads(config.read_text())
    values |= {"run_dir": str(tmp_path / "run"), "experts_from": str(root / "bundle")}
    values["views"]["router"] = router_views
    values["data"] = {"train": checks, "val": checks, "router": str(tmp_path / "routed"), "test": checks}
    argv = ["all", "--config", str(_write(tmp_path / "experts-from.json", values)), "--no-progress"]
    assert cli.main([*argv, "--out", str(tmp_path / "bundle")]) == 0

    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.is_dir()) == ["router"]
    source, retrained = load_bundle(root / "bundle"), load_bundle(tmp_path / "bundle")
    before = torch.load(root / "bundle" / "weights.pt", weights_only=True)
    after = torch.load(tmp_path / "bundle" / "weights.pt", weights_only=True)
    for part in ("experts", "foundation_experts", "heads"):
        for expert, state in before[part].items():
            assert all(torch.equal(state[key], after[part][expert][key]) for key in state), (part, expert)
    assert set(after["router"]) != set(before["router"]), "the router reads the pattern view too"
    stats = retrained.card["normalisation"]["views"]
    assert {name: stats[name] for name in source.card["normalisation"]["views"]} == source.card["normalisation"][
        "views"
    ]
    assert "ofdm_pattern_15khz" in stats
    training = retrained.card["training"]
    assert training["experts_from"]["card_sha256"] == source.card_sha256
    assert training["data"]["train"] == source.card["training"]["data"]["train"]
    assert training["stages"]["heads/lte"] == source.card["training"]["stages"]["heads/lte"]
    assert training["commands"][: len(source.training["commands"])] == source.training["commands"]
    assert Runtime(retrained).predict(_views_of(retrained, checks))

    values["model"]["d_model"] = 32
    with pytest.raises(ValueError, match=r"experts of .* were built with another model"):
        views_run(_write(tmp_path / "other.json", values), tmp_path / "other").mixture_of_experts()


def test_the_experts_of_a_bundle_retrain_beside_the_router_of_another(recipe, tmp_path):
    """router_from: the experts train on data.train, which lacks a view only the router reads;
    the router, its view's parameters and statistics and its calibration stay the bundle's, and
    the card says where it comes from."""
    root, config = recipe
    router_views, everything = make_router_sets(tmp_path, seed=12)
    values = json.loads(config.read_text())
    values |= {"run_dir": str(tmp_path / "router-run"), "experts_from": str(root / "bundle")}
    values["views"]["router"] = router_views
    values["data"] = {"train": everything, "val": everything, "router": str(tmp_path / "routed"), "test": everything}
    argv = ["all", "--config", str(_write(tmp_path / "router.json", values)), "--no-progress"]
    assert cli.main([*argv, "--out", str(tmp_path / "routed-bundle")]) == 0
    values |= {"run_dir": str(tmp_path / "run"), "experts_from": None, "router_from": str(tmp_path / "routed-bundle")}
    values["data"] = json.loads(config.read_text())["data"] | {"test": everything}
    argv = ["all", "--config", str(_write(tmp_path / "router-from.json", values)), "--no-progress"]
    assert cli.main([*argv, "--out", str(tmp_path / "bundle")]) == 0

    assert "router" not in {p.name for p in (tmp_path / "run").iterdir()}
    source, retrained = load_bundle(tmp_path / "routed-bundle"), load_bundle(tmp_path / "bundle")
    before = torch.load(tmp_path / "routed-bundle" / "weights.pt", weights_only=True)["router"]
    after = torch.load(tmp_path / "bundle" / "weights.pt", weights_only=True)["router"]
    assert all(torch.equal(before[key], after[key]) for key in before)
    stats = retrained.card["normalisation"]["views"]
    assert stats["ofdm_pattern_15khz"] == source.card["normalisation"]["views"]["ofdm_pattern_15khz"]
    assert retrained.calibration_of("router") == source.calibration_of("router")
    training = retrained.card["training"]
    assert training["router_from"]["card_sha256"] == source.card_sha256
    assert training["stages"]["router"] == source.card["training"]["stages"]["router"]
    assert training["data"]["router"] == source.card["training"]["data"]["router"]
    assert Runtime(retrained).predict(_views_of(retrained, everything))

    values["router"]["n_layers"] += 1
    with pytest.raises(ValueError, match=r"router of .* was built with another router"):
        views_run(_write(tmp_path / "other.json", values), tmp_path / "other").mixture_of_experts()


def _views_of(bundle, folder: str) -> list[np.ndarray]:
    dataset = open_dataset(folder)
    return [dataset.view(name) for name in bundle.view_names]


def _write(path: Path, values: dict) -> Path:
    path.write_text(json.dumps(values))
    return path


def test_a_view_the_corpus_gained_later_is_optional_and_the_expert_trains_without_it_where_shards_lack_it(tmp_path):
    """The shards made before the view was added read it as absent: the run refuses them until
    the config lists the view under optional_views, then the expert takes its absent embedding
    there and the view itself everywhere else."""
    train = make_dataset(tmp_path / "train", 16, seed=8)
    grown = GeneratorConfig(
        n_samples=32, shard_size=16, seed=8, views=[*GENERATED_VIEWS, "ofdm_circularity_wifi"], channel="TDL-A"
    )
    generate_dataset(grown, train, progress=False)
    values = json.loads(tiny_views_config(tmp_path, train, train).read_text())
    values["views"]["wifi"] = [*values["views"]["wifi"], "ofdm_circularity_wifi"]
    values["model"]["patch_shapes"]["ofdm_circularity_wifi"] = [8, 8]
    with pytest.raises(ValueError, match=r"lack the views \['ofdm_circularity_wifi'\].*optional_views"):
        views_run(_write(tmp_path / "strict.json", values), tmp_path / "strict").datasets()
    values["optional_views"] = ["ofdm_circularity_wifi"]
    run = views_run(_write(tmp_path / "optional.json", values), tmp_path / "optional")
    items = [run.datasets()[0][i]["views"]["ofdm_circularity_wifi"] for i in range(len(run.datasets()[0]))]
    assert any(torch.isnan(x).all() for x in items) and any(torch.isfinite(x).all() for x in items)
    wifi = run.new_part("wifi")
    assert wifi.optional == ("dynamics", "ofdm_circularity_wifi") and wifi.past == ("dynamics",)
    training = HeadsTraining(build_heads(run.cfg.model.d_model, run.cfg.heads), encoder=wifi)
    targets = dict(
        modulation=torch.tensor([0, 1, 2, 3]),
        snr_db=torch.full((4,), 10.0),
        mobility=torch.tensor([0, 1, 2, 0]),
        log_doppler=torch.full((4,), 1.0),
    )
    for lacking, mobility_scored in (("ofdm_circularity_wifi", True), ("dynamics", False)):
        views = {name: torch.randn(4, *wifi.view_shapes[name]) for name in wifi.view_names}
        views[lacking][:] = float("nan")
        losses = training(views, **targets)
        assert bool(losses["mobility_loss"] > 0) == mobility_scored, f"mobility without {lacking}"
    config = tmp_path / "optional.json"
    assert cli.main(["pretrain", "--config", str(config), "--no-progress", "--experts", "wifi"]) == 0


def test_experts_start_from_a_bundles_where_they_read_the_same_views_and_fresh_where_not(recipe, tmp_path):
    """init_from: the encoder blocks and the embeddings of the views the bundle's expert read come
    from its expert (the view embedding row by view, in whatever order the run reads
    them); a view it did not read starts fresh; the pixel statistics of the views the bundle read are its own."""
    root, config = recipe
    values = json.loads(config.read_text())
    values |= {"run_dir": str(tmp_path / "run"), "init_from": str(root / "bundle")}
    values["views"]["lte"] = ["cp_profile", "ofdm_aligned_15khz", "wideband"]
    run = views_run(_write(tmp_path / "init.json", values), tmp_path / "run")
    source = torch.load(root / "bundle" / "weights.pt", weights_only=True)["experts"]["lte"]

    started = run.started_part("lte").state_dict()

    assert all(torch.equal(started[key], source[key]) for key in source if key.startswith("blocks."))
    assert torch.equal(started["patch_embed.cp_profile.weight"], source["patch_embed.cp_profile.weight"])
    assert "patch_embed.wideband.weight" not in source and "patch_embed.dynamics.weight" not in started
    assert torch.equal(started["view_embed"][0], source["view_embed"][1]), "cp_profile's row, moved"
    assert torch.equal(started["view_embed"][1], source["view_embed"][0]), "ofdm_aligned_15khz's row, moved"
    assert not torch.equal(started["view_embed"][2], source["view_embed"][2])
    bundle = load_bundle(root / "bundle").normalisation["views"]
    assert run.normalisation()["views"]["cp_profile"] == bundle["cp_profile"], "the taken layers' statistics"
    assert "wideband" not in load_bundle(root / "bundle").card["model"]["views"]["lte"]
    assert started["normalise.wideband.mean"].flatten().tolist() == pytest.approx(
        run.normalisation()["views"]["wideband"]["mean"]
    )
    assert run.pretrain("lte")["complete"]
    kept = views_run(_write(tmp_path / "init.json", values), tmp_path / "kept", "stages.pretrain.keep_taken=true")
    assert kept.pretrain("lte")["complete"]
    kept._seed(1 + labels.PROTOCOLS.index("lte"))
    fresh = kept.started_part("lte").state_dict()["patch_embed.wideband.weight"]
    for folder, frozen in ((tmp_path / "run", False), (tmp_path / "kept", True)):
        pretrained = load_checkpoint(folder / "pretrain" / "lte" / BEST)["model"]
        block = pretrained["encoder.blocks.0.attn.qkv.weight"]
        assert torch.equal(block, source["blocks.0.attn.qkv.weight"]) == frozen, "keep_taken: the blocks stay"
        assert not torch.equal(pretrained["encoder.patch_embed.wideband.weight"], fresh), "the new view trains"
    heads = torch.load(root / "bundle" / "weights.pt", weights_only=True)["heads"]["lte"]
    taken = run.init_source.heads_state(run.cfg, "lte")
    assert taken.keys() == build_heads(16, run.cfg.heads).state_dict().keys()
    assert all(torch.equal(taken[key], heads[key]) for key in taken), "the heads stage starts from the bundle's heads"
    other = views_run(_write(tmp_path / "init.json", values), tmp_path / "run", "heads.channels=8")
    with pytest.raises(ValueError, match=r"lte heads of .* are built otherwise than this run's"):
        other.init_source.heads_state(other.cfg, "lte")

    values["experts_from"] = str(root / "bundle")
    with pytest.raises(ValueError, match="experts_from takes the experts as they are, init_from trains them"):
        load_config(str(_write(tmp_path / "both.json", values)))
