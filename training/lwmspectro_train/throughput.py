"""Training throughput of a config's model at candidate sizes: samples per second of one
pretraining step (masked modelling for an expert, the routing loss for the router: forward,
backward and AdamW) for each part, per core.

    python -m lwmspectro_train.throughput --config views-small --sizes 64x2 64x4 96x4 128x4 --threads 1 2

A size is d_model x n_layers of the experts (the router keeps its config). The inputs are
random arrays of each view's shape (the registered views of `lwmspectro.views`): only the cost
matters. Samples per CPU-second (time.process_time over the timed steps) is the per-core figure
that holds on a machine shared with other jobs; wall-clock samples/s is printed beside it. The
`pretrain` row is the whole stage's rate when each expert trains on an equal share.
"""

from __future__ import annotations

import argparse
import time

import torch

from lwmspectro import views as view_registry

from .config import ROUTER, RunConfig, load_config
from .model import MaskedModelling, RouterTraining, count_parameters
from .stages import build_part


def step_rate(cfg: RunConfig, part: str, batch: int, steps: int) -> dict:
    """Samples per wall-second and per CPU-second of `steps` training steps of `part`, after one untimed step."""
    torch.manual_seed(0)
    trunk = build_part(cfg, part, view_registry.VIEWS)
    stage = cfg.stage("router" if part == ROUTER else "pretrain")
    if part == ROUTER:
        objective = RouterTraining(trunk, stage.absent_view_prob)
        targets = {"protocol": torch.randint(0, 5, (batch,))}
    else:
        objective = MaskedModelling(trunk, absent_prob=stage.absent_view_prob)
        targets = {}
    optimiser = objective.configure_optimizers(stage.lr, stage.betas, stage.weight_decay)
    inputs = tuple(torch.randn(batch, *trunk.view_shapes[name]) for name in trunk.view_names)
    objective.train()
    cpu = wall = 0.0
    for step in range(steps + 1):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        loss = objective(inputs, **targets)["loss"]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if step:
            cpu += time.process_time() - cpu_start
            wall += time.perf_counter() - wall_start
    return {
        "tokens": trunk.n_patches,
        "parameters": count_parameters(objective),
        "per_s": batch * steps / wall,
        "per_cpu_s": batch * steps / cpu,
    }


def sized(cfg: RunConfig, size: str) -> RunConfig:
    d_model, n_layers = (int(v) for v in size.split("x"))
    values = cfg.to_dict()
    values["model"] |= {"d_model": d_model, "n_layers": n_layers}
    return RunConfig.from_dict(values)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="views-small")
    parser.add_argument("--sizes", nargs="+", default=["64x2", "64x4", "96x4", "128x4"], help="d_model x n_layers")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    base = load_config(args.config)
    print(f"config {args.config}: batch {args.batch}, {args.steps} timed steps after one untimed")
    print(f"{'size':>6} {'threads':>7} {'part':>9} {'tokens':>6} {'params':>8} {'samples/s':>9} {'per CPU-s':>9}")
    for size in args.sizes:
        cfg = sized(base, size)
        for threads in args.threads:
            torch.set_num_threads(threads)
            expert_cpu_s = expert_wall_s = 0.0
            for part in (ROUTER, *cfg.experts):
                rate = step_rate(cfg, part, args.batch, args.steps)
                if part != ROUTER:
                    expert_cpu_s += 1 / rate["per_cpu_s"] / len(cfg.experts)
                    expert_wall_s += 1 / rate["per_s"] / len(cfg.experts)
                print(
                    f"{size:>6} {threads:>7} {part:>9} {rate['tokens']:>6} {rate['parameters']:>8} "
                    f"{rate['per_s']:>9.1f} {rate['per_cpu_s']:>9.1f}",
                    flush=True,
                )
            stage = f"{size:>6} {threads:>7} {'pretrain':>9} {'':>6} {'':>8}"
            print(f"{stage} {1 / expert_wall_s:>9.1f} {1 / expert_cpu_s:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
