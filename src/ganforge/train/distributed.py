"""Multi-process data-parallel training on ``torch.distributed`` (gloo on CPU, NCCL on GPU).

``torchrun --nproc_per_node N -m ganforge train ...`` (or ``ganforge train --nproc N``, which
launches it) runs N copies of the same Trainer. Each step every rank draws the same *global*
batch of ``N * train.batch_size`` samples from the shared data order and keeps its own slice
(its shard), computes the phase's loss on it, and the ranks average their gradients
(``all_reduce``) before the optimiser step. An update is therefore the update of one process on
the concatenated batch, for any algorithm, without the algorithm knowing (batch-coupled layers
excepted: BatchNorm statistics are per rank unless ``train.sync_batchnorm`` converts them to
``SyncBatchNorm``).

Every rank starts from rank 0's weights (broadcast) and draws its own latent noise (the
algorithm's generators are seeded with ``seed + rank * RANK_SEED_STRIDE``); rank 0 alone writes
the run directory. A checkpoint holds rank 0's state, so a run resumes with any world size
(bit-identically only with the world size and thread count it was written with).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ganforge.errors import GanforgeError

RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size`` (1 and 0 without torch.distributed)."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_from_env(device: torch.device) -> World:
    """Join the process group torchrun describes in the environment (``WORLD_SIZE`` > 1), with
    gloo on CPU and NCCL on CUDA; a single process otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_available():
        raise GanforgeError("WORLD_SIZE > 1 but this torch build has no torch.distributed",
                            "install a torch with distributed support, or run one process")
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # a rank that fails (bad input) leaves the others waiting in a collective: not for ever
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
    return World(dist.get_rank(), dist.get_world_size())


def leave(world: World, *, cleanly: bool) -> None:
    """Leave the process group at the end of a run. A rank that exits with a live gloo group
    aborts in its destructor ("terminate called without an active exception"), so every rank
    tears it down; after a clean run the ranks first wait for each other (rank 0 finishes last:
    it writes the final checkpoint)."""
    if not (world.distributed and dist.is_initialized()):
        return
    if cleanly:
        dist.barrier()
    dist.destroy_process_group()


def broadcast_module(module: nn.Module) -> None:
    """Every rank takes rank 0's parameters and buffers."""
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def average_gradients(params: list[torch.nn.Parameter], world: World) -> None:
    """grad <- mean over ranks of grad (one flat all_reduce)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def shard(batch: dict[str, torch.Tensor], world: World) -> dict[str, torch.Tensor]:
    """This rank's contiguous slice of a global batch."""
    n = len(batch["x"]) // world.size
    return {k: v[world.rank * n:(world.rank + 1) * n] for k, v in batch.items()}


def _generators(algorithm: object) -> list[torch.Generator]:
    """The torch.Generators an algorithm holds, directly or one attribute down (its stabilisers)."""
    found: list[torch.Generator] = []
    for value in vars(algorithm).values():
        if isinstance(value, torch.Generator):
            found.append(value)
        elif hasattr(value, "__dict__") and not isinstance(value, (nn.Module, torch.Tensor)):
            found += [v for v in vars(value).values() if isinstance(v, torch.Generator)]
    return found


def reseed_rank(algorithm: object, seed: int, world: World, step: int) -> None:
    """Give a rank > 0 its own noise: every generator of the algorithm and the global torch RNG
    reseeded from (seed, rank, step). The Trainer calls it at the start and right after each
    checkpoint, so a run resumed with the same world size repeats exactly (rank 0's generators
    are the checkpointed ones)."""
    if world.rank == 0:
        return
    base = seed + world.rank * RANK_SEED_STRIDE
    for i, generator in enumerate(_generators(algorithm)):
        generator.manual_seed((base * 7919 + step * 104_729 + i) % 2**62)
    torch.manual_seed((base * 7919 + step * 104_729 + 999_983) % 2**62)
