"""A tiny channel model bundle, made as a user makes one, through the command line: lwm-tiny
(8 antennas x 8 subcarriers, two layers, D = 16) pretrained for one epoch on self-made users,
exported, and given a LoS/NLoS head trained on other self-made users.

    from lwm_bundle_factory import make_lwm_bundle
    bundle_dir = make_lwm_bundle(tmp_path)
"""

from __future__ import annotations

from pathlib import Path

from lwmspectro import cli

ANTENNAS = SUBCARRIERS = 8
EMBEDDING_DIM = 16


def make_lwm_bundle(root: str | Path, los_head: bool = True) -> Path:
    """The bundle folder written under `root` (with a LoS head unless `los_head` is False)."""
    root = Path(root)
    run_dir, bundle = root / "run", root / "bundle"
    pretrain = ["lwm", "pretrain", "--config", "lwm-tiny", "--set", f"run_dir={run_dir}", "--set", "pretrain.epochs=1"]
    commands = [
        [*pretrain, "--no-progress"],
        ["lwm", "export", "--run", str(run_dir), "--out", str(bundle), "--parity-channels", "8"],
    ]
    if los_head:
        commands.append(["lwm", "los-head", "--bundle", str(bundle), "--synthetic", "200", "--epochs", "20"])
    for command in commands:
        if cli.main(command) != 0:
            raise RuntimeError(f"`lwmspectro {' '.join(command)}` failed")
    return bundle
