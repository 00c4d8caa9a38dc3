"""What the training tests share: a tiny run configuration."""

from lwmspectro_train.config import STAGES


def tiny_config(run_dir, train, test=None, **stage) -> dict:
    """A run config small enough to train every stage on a toy dataset in seconds; `stage`
    overrides the settings of every stage."""
    return {
        "name": "tiny",
        "run_dir": str(run_dir),
        "seed": 3,
        "data": {"train": str(train), "val_fraction": 0.2, "test": str(test) if test else None},
        "model": {
            "patch_size": 8,
            "d_model": 16,
            "n_layers": 1,
            "n_heads": 2,
            "decoder_hidden": 16,
            "projection_dim": 8,
        },
        "router": {"patch_size": 8, "d_model": 16, "n_layers": 2, "n_heads": 2},
        "heads": {"channels": 4, "n_blocks": 1, "mode": "lwm"},
        "loader": {"workers": 0, "threads": 1, "eval_batch_size": 32},
        "stages": {
            s: {
                "epochs": 2,
                "batch_size": 8,
                "warmup_epochs": 0.5,
                "lr": 3e-3,
                "contrastive_labels": ["modulation", "snr_mobility"],
                **stage,
            }
            for s in STAGES
        },
    }
