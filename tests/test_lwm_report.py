"""`lwmspectro lwm report`: one command regenerates the channel model's evaluation page, its
figures and the targets, resuming finished sections."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from lwmspectro import cli
from lwmspectro.lwm_embed import LwmBundle
from lwmspectro_train.lwm import report as pages
from lwmspectro_train.lwm.downstream import synthetic_users

from lwm_bundle_factory import make_lwm_bundle


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return make_lwm_bundle(tmp_path_factory.mktemp("lwm-report"), los_head=False)


def report_command(bundle_dir, out, *extra):
    return [
        "lwm", "report", "--bundle", str(bundle_dir), "--synthetic", "120", "--quick", "--epochs", "3",
        "--repeats", "2", "--out", str(out / "results"), "--results-md", str(out / "results.md"), *extra,
    ]  # fmt: skip


def test_report_writes_the_page_the_figures_and_every_target(bundle_dir, tmp_path, capsys):
    assert cli.main(report_command(bundle_dir, tmp_path)) == 0
    page = (tmp_path / "results.md").read_text()
    assert "lwmspectro lwm report --bundle" in page.split("## Targets")[0]
    for target in ("6 users: CLS >= raw + 0.25", "fine-tuned CLS >= 0.95", "64 beams", "masked-patch NMSE"):
        assert target in page
    for figure in ("los.png", "beam.png", "tsne.png"):
        assert (tmp_path / "results" / figure).stat().st_size > 1000
        assert f"results/{figure}" in page
    los = json.loads((tmp_path / "results" / "los.json").read_text())
    assert {r["train_samples"] for r in los["rows"]} >= {pages.FEW_SHOT_USERS}
    assert {r["representation"] for r in los["rows"]} == {"raw", "cls", "channel", "cls_noisy_5db", "cls_finetuned"}
    recon = json.loads((tmp_path / "results" / "reconstruction.json").read_text())
    assert recon["channels"] == 120 and recon["nmse"] > 0 and recon["mean_patch_nmse"] > 0 and recon["sparse_nmse"] > 0
    assert all(f"{p}channel_nmse_median_db" in recon for p in ("", "mean_patch_", "sparse_"))
    assert "plane waves in angle and delay" in page and "median per channel" in page
    assert "Without training, each test user's sub-6 GHz channel" in page
    assert "wrote" in capsys.readouterr().out


def test_a_rerun_reuses_finished_sections_and_redoes_changed_ones(bundle_dir, tmp_path):
    command = report_command(bundle_dir, tmp_path, "--sections", "reconstruction", "tsne")
    assert cli.main(command) == 0
    first = {name: (tmp_path / "results" / f"{name}.json").read_text() for name in ("reconstruction", "tsne")}
    assert cli.main(command) == 0
    assert (tmp_path / "results" / "reconstruction.json").read_text() == first["reconstruction"]
    assert cli.main([*command, "--seed", "1"]) == 0
    assert (tmp_path / "results" / "tsne.json").read_text() != first["tsne"]


def test_a_section_made_by_other_code_is_computed_again(bundle_dir, tmp_path, monkeypatch, capsys):
    command = report_command(bundle_dir, tmp_path, "--sections", "reconstruction")
    assert cli.main(command) == 0
    made = json.loads((tmp_path / "results" / "reconstruction.json").read_text())
    assert made["settings"]["code_sha256"] == pages.code_digest()
    monkeypatch.setattr(pages, "code_digest", lambda: "0" * 64)
    capsys.readouterr()
    assert cli.main(command) == 0
    assert "reconstruction computed again (code_sha256 changed" in capsys.readouterr().out
    assert json.loads((tmp_path / "results" / "reconstruction.json").read_text())["settings"]["code_sha256"] == "0" * 64


def test_the_code_digest_follows_the_source_of_the_modules_that_compute_the_rows(monkeypatch, tmp_path):
    digest = pages.code_digest()
    assert digest == pages.code_digest() and len(digest) == 64
    changed = tmp_path / "changed.py"
    changed.write_text("ROWS = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(pages, "CODE_MODULES", (*pages.CODE_MODULES, "changed"))
    with_module = pages.code_digest()
    assert with_module != digest
    changed.write_text("ROWS = 2\n")
    assert pages.code_digest() != with_module


def test_a_few_path_channel_is_recovered_from_its_visible_entries_by_the_plane_wave_fit():
    rng = np.random.default_rng(0)
    antenna, subcarrier = np.arange(32)[:, None], np.arange(32)[None, :]
    channels = np.stack(
        [
            sum(
                rng.normal()
                * np.exp(2j * np.pi * (rng.uniform() + antenna * rng.integers(128) / 128))
                * np.exp(2j * np.pi * subcarrier * rng.integers(128) / 128)
                for _ in range(3)
            )
            for _ in range(4)
        ]
    )
    hidden = np.zeros(channels.shape, bool)
    hidden[:, 5, :16] = hidden[:, 20, 16:] = True
    fitted = pages.sparse_recovery(channels, hidden, plane_waves=3)
    assert np.allclose(fitted[hidden], channels[hidden], atol=1e-6)
    assert np.abs(pages.sparse_recovery(channels, hidden, plane_waves=1) - channels)[hidden].max() > 0.1


def test_targets_are_judged_from_the_rows():
    los = [
        {"representation": "raw", "fraction": 0.005, "train_samples": 6, "f1": 0.40},
        {"representation": "cls", "fraction": 0.005, "train_samples": 6, "f1": 0.70},
        {"representation": "cls_finetuned", "fraction": 0.01, "train_samples": 12, "f1": 0.93},
    ]
    beam = [
        {"beams": 64, "representation": "raw", "fraction": 0.05, "f1": 0.30},
        {"beams": 64, "representation": "channel", "fraction": 0.05, "f1": 0.35},
        {"beams": 64, "representation": "raw", "fraction": 0.5, "f1": 0.60},
        {"beams": 64, "representation": "channel", "fraction": 0.5, "f1": 0.50},
    ]
    status = [t["status"] for t in pages.targets({"los": {"rows": los}, "beam": {"rows": beam}})]
    assert status == ["met", "missed", "met", "not measured"]


def test_a_bundle_without_its_decoder_is_refused_for_reconstruction(bundle_dir, tmp_path):
    import torch

    bundle = LwmBundle.load(bundle_dir)
    saved = torch.load(bundle.checkpoint, weights_only=True)
    encoder_only = tmp_path / "weights.pt"
    torch.save({"model": saved["model"], "config": saved["config"]}, encoder_only)
    with pytest.raises(ValueError, match="re-export the bundle"):
        pages.load_objective(encoder_only)
    users = synthetic_users(bundle, 20, 0)
    assert pages.reconstruction(bundle, users.channels, 1, 0)["channels"] == 20


def test_report_needs_one_source_of_users(bundle_dir, tmp_path, capsys):
    command = ["lwm", "report", "--bundle", str(bundle_dir), "--out", str(tmp_path)]
    assert cli.main(command) == 2
    assert "--synthetic USERS" in capsys.readouterr().err
    assert cli.main([*command, "--synthetic", "30", "--sections", "nonsense"]) == 2
    assert "unknown nonsense" in capsys.readouterr().err
