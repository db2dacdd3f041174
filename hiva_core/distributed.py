"""DDP plumbing for `torchrun --nproc_per_node N hiva_core train ...` (existing engine, nothing home-made).

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; when WORLD_SIZE > 1 we join the process
group (nccl on CUDA, gloo on CPU). Only rank 0 writes files and logs; evaluation shards the test split without
padding and gathers the predictions to rank 0, so metrics count every frame exactly once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> DistInfo:
    """Rank and world size from torchrun's environment (a single process when unset)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1; returns (info, this rank's device)."""
    info = env_world()
    if not info.enabled:
        return info, device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def cleanup(synced: bool = False) -> None:
    """Leave the process group (a no-op without one). `synced`, at a normal end: once every rank has got there, so
    that no rank closes its connections while another still writes or evaluates (gloo can abort a rank at exit on
    that). Not after an error: a rank that failed never arrives, and torchrun ends the others."""
    if dist.is_available() and dist.is_initialized():
        if synced:
            dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def main_first(info: DistInfo) -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it (e.g. rank 0 fills a cache that they then read)."""
    if info.enabled and not info.is_main:
        dist.barrier()
    yield
    if info.enabled and info.is_main:
        dist.barrier()


def sync_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank src's buffers (BatchNorm running statistics) to every rank (no-op without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=src)


class ShardSampler(Sampler[int]):
    """Indices rank, rank + world, rank + 2·world, ... in order: an evaluation shard without padding or repeats."""

    def __init__(self, n: int, rank: int, world_size: int):
        self.indices = list(range(rank, n, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def gather_rows(arrays: dict[str, np.ndarray], indices: np.ndarray, info: DistInfo) -> dict[str, np.ndarray] | None:
    """Gather per-rank rows to rank 0 and put them back in dataset order; other ranks get None.

    `arrays` hold this rank's rows (first axis), `indices` their dataset positions.
    """
    if not info.enabled:
        order = np.argsort(indices, kind="stable")
        return {k: v[order] for k, v in arrays.items()}
    payload = (indices, arrays)
    gathered = [None] * info.world_size if info.is_main else None
    dist.gather_object(payload, gathered, dst=0)
    if not info.is_main:
        return None
    all_idx = np.concatenate([g[0] for g in gathered])
    order = np.argsort(all_idx, kind="stable")
    return {k: np.concatenate([g[1][k] for g in gathered])[order] for k in arrays}
