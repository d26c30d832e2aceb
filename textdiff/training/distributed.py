"""Data-parallel training with torch.distributed (DDP), launched by ``torchrun``.

Why DDP and not Accelerate: the loop already owns the optimiser, schedule,
clipping and checkpoints; DDP adds exactly the missing piece (gradient
all-reduce, bucketed and overlapped with backward) on the engine PyTorch ships,
NCCL on GPUs and gloo on CPUs, with no new dependency and no second config file.

Under ``torchrun`` (WORLD_SIZE > 1) every rank builds the same batch from the
step (the batches are step-deterministic) and trains on its contiguous shard of
it, so the global batch and the resume point are the same as with one process.
A family's loss is called through ``LossModule`` so that DDP sees a forward.
Each rank reseeds torch's RNG from (run seed, step, rank) every step: the ranks
draw independent noise, and a resumed run draws what the killed one would have.
Rank 0 alone writes checkpoints and outputs; every rank reads them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from textdiff.errors import InputError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


def current_world() -> World:
    """The process group torchrun described in the environment, initialised on first use; one process otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def rank_device(device: torch.device, world: World) -> torch.device:
    """One GPU per rank (cuda:LOCAL_RANK); the CPU is shared."""
    if device.type == "cuda" and world.parallel:
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def shard(batch, world: World):
    """This rank's contiguous slice of the global batch (a tensor, or a dataclass of tensors batched on dim 0)."""
    if not world.parallel:
        return batch
    if batch.shape[0] % world.size:
        raise InputError(f"train.batch_size ({batch.shape[0]}) must be divisible by the {world.size} processes "
                         "(train_processes or torchrun's --nproc_per_node × --nnodes)")
    if isinstance(batch, torch.Tensor):
        return batch.tensor_split(world.size)[world.rank]
    fields = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    return dataclasses.replace(batch, **{k: v.tensor_split(world.size)[world.rank] for k, v in fields.items()})


class LossModule(torch.nn.Module):
    """``forward(batch) = loss_fn(model, batch)``: what DDP wraps, so that the family's own loss runs under it."""

    def __init__(self, model: torch.nn.Module, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch):
        return self.loss_fn(self.model, batch)


def wrap(model: torch.nn.Module, loss_fn, world: World, device: torch.device):
    """The callable a step calls for its loss: plain on one process, DDP across several."""
    if not world.parallel:
        return lambda batch: loss_fn(model, batch)
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # find_unused_parameters: some families leave parameters out of a step (e.g. a time embedding they ignore)
    return DistributedDataParallel(LossModule(model, loss_fn), device_ids=ids, find_unused_parameters=True)


def step_seed(base: int, step: int, rank: int) -> int:
    """The seed of one rank's step: distinct across ranks, steps and runs (``base``: the run's seed)."""
    return ((base % 2**31) * 1_000_003 + step) * 4099 + rank


def reseed(step: int, world: World, base: int) -> None:
    if world.parallel:
        torch.manual_seed(step_seed(base, step, world.rank))


def agree(flag: bool, world: World) -> bool:
    """True on every rank if rank 0 says so (e.g. the wall-clock budget ran out), so all ranks stop together."""
    if not world.parallel:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.broadcast(value, 0)
    return bool(value.item())


def mean(value: torch.Tensor, world: World) -> float:
    """A scalar averaged over the ranks (the loss the log shows: the global batch's, for equal shards)."""
    if not world.parallel:
        return value.item()
    value = value.float().reshape(1).clone()
    dist.all_reduce(value)
    return value.item() / world.size


def torchrun_command(processes: int, module: str, *args: str) -> list[str]:
    """``python -m torch.distributed.run`` on this machine (a local rendezvous on a free port) for ``-m module``."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", module, *args]
