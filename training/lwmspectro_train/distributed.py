"""One process or many: the DDP context every stage runs in.

Started by `torchrun` (RANK / WORLD_SIZE / LOCAL_RANK in the environment) the stages run
data-parallel, gloo on CPU and NCCL on GPUs; started plainly they run in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from lwmspectro.framer import available_cores


@dataclass
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_reduce_sum(self, values: dict) -> dict:
        """Sum a dict of floats over the ranks (validation sums and counts)."""
        if not self.distributed:
            return dict(values)
        keys = sorted(values)
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
        dist.all_reduce(tensor)
        return dict(zip(keys, tensor.tolist()))

    def all_gather_object(self, obj) -> list:
        if not self.distributed:
            return [obj]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def broadcast_object(self, obj):
        """Rank 0's `obj` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def setup(device: str = "auto", threads: int | None = None) -> Context:
    """Join the process group when launched by torchrun; pick the device and CPU threads.

    On CPU the cores are split between the ranks of this machine (2 cores, 2 ranks: one
    thread each), since more threads than cores only adds contention."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not valid; valid: auto, cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for but torch sees no CUDA GPU; use device auto or cpu")
    torch_device = torch.device("cuda", local_rank) if device == "cuda" else torch.device("cpu")
    if device == "cuda":
        torch.cuda.set_device(torch_device)
    torch.set_num_threads(threads or max(1, available_cores() // max(1, local_world)))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return Context(rank, world_size, local_rank, torch_device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
