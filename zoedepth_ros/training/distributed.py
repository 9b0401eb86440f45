"""Multi-process training through ``torchrun``: process group, DDP wrapper, sharded sampling.

A run launched with ``torchrun --nproc_per_node N`` sees ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` in its environment; a plain ``python`` run is a world of one and never touches
``torch.distributed``. CUDA runs use NCCL with one GPU per local rank; CPU runs use gloo.
Only rank 0 writes logs, TensorBoard events and checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler

from zoedepth_ros.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the torchrun process group when launched by torchrun (else a world of one).

    Args:
        device_type: ``'cuda'`` (NCCL, one GPU per local rank) or ``'cpu'`` (gloo).
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ['RANK']), world_size, int(os.environ.get('LOCAL_RANK', '0')))
    if not dist.is_initialized():
        if device_type == 'cuda':
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend='nccl' if device_type == 'cuda' else 'gloo')
    return info


def shutdown_distributed() -> None:
    """Leave the process group (no-op for a world of one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, info: DistInfo, device: torch.device,
               find_unused_parameters: bool = False) -> nn.Module:
    """DistributedDataParallel around ``model`` when the world has several processes."""
    if not info.enabled:
        return model
    ids = [device.index] if device.type == 'cuda' else None
    return DistributedDataParallel(model, device_ids=ids,
                                   find_unused_parameters=find_unused_parameters)


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DDP wrapper."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def all_reduce_sum(values: Sequence[float], info: DistInfo) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64 on the CPU for gloo/NCCL)."""
    if not info.enabled:
        return [float(v) for v in values]
    device = torch.device('cuda', info.local_rank) if dist.get_backend() == 'nccl' else None
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def per_rank_batch(global_batch: int, info: DistInfo) -> int:
    """Batch size of one process; the global batch must divide evenly."""
    if global_batch % info.world_size:
        raise ConfigError(f'batch_size {global_batch} does not divide over {info.world_size} '
                          'processes; use a multiple of the process count')
    return global_batch // info.world_size


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start an epoch part-way (for exact ``--resume``).

    Global batch k of an epoch holds the same samples whatever the number of processes:
    the shuffled order (seeded by seed + epoch, as DistributedSampler) is cut into consecutive
    global batches and each process takes an interleaved share of every batch.
    """

    def __init__(self, length: int, info: DistInfo, shuffle: bool, seed: int,
                 drop_last: bool = True) -> None:
        # torch types `dataset` as a Dataset; the sampler only takes its len()
        super().__init__(cast('Dataset[int]', range(length)), num_replicas=info.world_size,
                         rank=info.rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.start_index = 0

    def set_start(self, local_batches_done: int, local_batch: int) -> None:
        """Skip the first ``local_batches_done`` batches of this process in the next epoch."""
        self.start_index = local_batches_done * local_batch

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        start, self.start_index = self.start_index, 0
        return iter(indices[start:])
