"""From dataset items to training batches: sample normalisation, seeded views, collation, mixing.

A dataset item is a mapping (or an object with attributes) holding ``image`` (HxWx3 uint8 RGB
or a (3, H, W) float tensor in [0, 1]), ``depth`` ((H, W) metres; 0, NaN or inf invalid) and
optionally ``mask``, ``domain`` ('indoor'/'outdoor'), ``min_depth`` and ``max_depth``. A batch is
a dict of tensors:

========== ================= =====================================================
key        shape / dtype     meaning
========== ================= =====================================================
image      (B, 3, H, W) f32  RGB in [0, 1]
depth      (B, 1, H, W) f32  metres (0 where invalid)
mask       (B, 1, H, W) bool min_depth < depth < max_depth and the item's own mask
domain     (B,) int64        0 = indoor/nyu, 1 = outdoor/kitti, -1 = unknown
max_depth  (B,) f32          the item's evaluation cap in metres
========== ================= =====================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from zoedepth_ros.data.transforms import resize
from zoedepth_ros.errors import InputError
from zoedepth_ros.model.router import domain_index

Transform = Callable[[dict[str, torch.Tensor], torch.Generator], dict[str, torch.Tensor]]
"""(sample tensors, generator) -> augmented sample; e.g. ``data.transforms.TrainAugmentation``."""


def _field(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def _image_tensor(image: Any) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        tensor = image.float()
        if tensor.ndim == 3 and tensor.shape[0] != 3 and tensor.shape[-1] == 3:
            tensor = tensor.permute(2, 0, 1)
        return tensor / 255.0 if image.dtype == torch.uint8 else tensor
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise InputError(f'sample image must be HxWx3 RGB, got shape {array.shape}')
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / scale


def to_sample(item: Any, default_domain: str | None = None,
              default_range: tuple[float, float] = (1e-3, 80.0)) -> dict[str, torch.Tensor]:
    """One dataset item -> the per-sample tensors of a batch (see module docstring)."""
    image = _image_tensor(_field(item, 'image'))
    depth = torch.as_tensor(np.asarray(_field(item, 'depth'), dtype=np.float32)).float()
    depth = depth.reshape(1, *depth.shape[-2:])
    if tuple(depth.shape[-2:]) != tuple(image.shape[-2:]):
        raise InputError(f'image {tuple(image.shape[-2:])} and depth {tuple(depth.shape[-2:])}'
                         ' differ in size; the dataset must return aligned pairs')
    min_depth = float(_field(item, 'min_depth', None) or default_range[0])
    max_depth = float(_field(item, 'max_depth', None) or default_range[1])
    finite = torch.isfinite(depth)
    depth = torch.where(finite, depth, torch.zeros_like(depth))
    disparity = bool(_field(item, 'disparity', False))
    mask = finite & (depth > 0) if disparity else finite & (depth > min_depth) & (
        depth < max_depth)
    extra = _field(item, 'mask')
    if extra is not None:
        mask &= torch.as_tensor(np.asarray(extra)).bool().reshape(mask.shape)
    domain = _field(item, 'domain', default_domain)
    return {'image': image, 'depth': depth, 'mask': mask,
            'domain': torch.tensor(domain_index(str(domain)), dtype=torch.long),
            'max_depth': torch.tensor(max_depth, dtype=torch.float32),
            'disparity': torch.tensor(disparity)}


class SeededView(Dataset):
    """A dataset whose item ``i`` in epoch ``e`` is augmented with a generator seeded by
    (seed, e, i): the one place where samples are seeded and augmented.

    Augmentation therefore depends neither on the worker count, nor the process count, nor on
    where a resumed run restarts.

    Args:
        dataset: indexable dataset of items (see module docstring).
        transform: augmentation of the sample tensors with a per-item generator, or None.
        seed: base seed.
        domain: domain for items that do not name one.
        depth_range: (min, max) metres for items that do not name one.
        size: (height, width) every sample is resized to before augmentation (image
            bilinear, depth and mask nearest), or None to keep the dataset's size.
    """

    def __init__(self, dataset: Any, transform: Transform | None, seed: int,
                 domain: str | None = None,
                 depth_range: tuple[float, float] = (1e-3, 80.0),
                 size: tuple[int, int] | None = None) -> None:
        self.dataset = dataset
        self.size = size
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self.domain = domain
        self.depth_range = depth_range

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = to_sample(self.dataset[index], self.domain, self.depth_range)
        if self.size is not None and tuple(sample['image'].shape[-2:]) != tuple(self.size):
            sample = resize(sample, *self.size)
        if self.transform is None:
            return sample
        state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)
        return self.transform(sample, torch.Generator().manual_seed(int(state[0])))


class EpochConcat(ConcatDataset):
    """ConcatDataset of :class:`SeededView` parts that forwards ``set_epoch`` to each part."""

    def set_epoch(self, epoch: int) -> None:
        for part in self.datasets:
            cast(SeededView, part).set_epoch(epoch)


def collate(samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack per-sample tensors; every sample of a batch must have the same size."""
    sizes = {tuple(s['image'].shape[-2:]) for s in samples}
    if len(sizes) != 1:
        raise InputError(f'a batch mixes image sizes {sorted(sizes)}; resize the datasets to '
                         'one size (e.g. with the dataset transform) before batching')
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


class BatchStream:
    """An endless, step-indexed stream of batches drawn from one or more loaders.

    Which loader serves global step k is a pure function of k: always 0 for one loader,
    k mod n for ``round_robin`` (the NK mixing: single-domain batches alternating), or a draw
    seeded by (seed, k) with probability ~ weight for ``weighted``. Each loader walks through
    passes over its data; pass p shuffles with sampler epoch p and augments with view epoch p.
    So the stream can restart at any step and reproduce exactly what an uninterrupted run saw.

    Args:
        loaders: DataLoaders whose sampler is a :class:`~.distributed.ResumableSampler` and whose
            dataset is a :class:`SeededView`.
        mode: ``'round_robin'``, ``'paired'`` (every step takes one batch from each loader and
            yields them as a list) or ``'weighted'`` (ignored for a single loader).
        weights: per-loader weights for ``'weighted'`` (empty = equal).
        seed: seed of the weighted draw.
    """

    def __init__(self, loaders: Sequence[Any], mode: str = 'round_robin',
                 weights: Sequence[float] = (), seed: int = 0) -> None:
        if not loaders or min(len(loader) for loader in loaders) == 0:
            raise InputError('every training dataset must yield at least one full batch; '
                             'use more samples or a smaller batch_size')
        self.loaders = list(loaders)
        self.mode = mode
        probs = np.asarray(weights or [1.0] * len(loaders), dtype=np.float64)
        self.probs = probs / probs.sum()
        self.seed = seed

    def source_at(self, step: int) -> int:
        """Index of the loader that serves global step ``step``."""
        if len(self.loaders) == 1:
            return 0
        if self.mode == 'round_robin':
            return step % len(self.loaders)
        rng = np.random.default_rng([self.seed, step])
        return int(rng.choice(len(self.loaders), p=self.probs))

    def steps_per_epoch(self) -> int:
        """One epoch: every loader once (round-robin: n x the longest, as the original)."""
        lengths = [len(loader) for loader in self.loaders]
        if self.mode == 'round_robin':
            return len(lengths) * max(lengths)
        if self.mode == 'paired':
            return max(lengths)
        return sum(lengths)

    def iterate(self, start_step: int = 0) -> Iterator[tuple[int, Any]]:
        """Yield (source, batch) for steps start_step, start_step + 1, ... forever.

        In ``'paired'`` mode the source is -1 and the batch a list with one batch per loader.
        """
        paired = self.mode == 'paired' and len(self.loaders) > 1
        served = [start_step if paired else 0 for _ in self.loaders]
        if not paired:
            for step in range(start_step):
                served[self.source_at(step)] += 1
        iterators: list[Iterator[Any] | None] = [None] * len(self.loaders)
        step = start_step
        while True:
            sources = range(len(self.loaders)) if paired else [self.source_at(step)]
            batches = [self._next(source, served, iterators) for source in sources]
            step += 1
            yield (-1, batches) if paired else (sources[0], batches[0])

    def _next(self, source: int, served: list[int], iterators: list[Any]) -> Any:
        while True:
            if iterators[source] is None:
                iterators[source] = self._start(source, served[source])
            try:
                batch = next(iterators[source])
            except StopIteration:
                iterators[source] = None
                continue
            served[source] += 1
            return batch

    def _start(self, source: int, served: int) -> Iterator[Any]:
        loader = self.loaders[source]
        length = len(loader)
        epoch, offset = divmod(served, length)
        loader.sampler.set_epoch(epoch)
        loader.sampler.set_start(offset, loader.batch_size)
        if hasattr(loader.dataset, 'set_epoch'):
            loader.dataset.set_epoch(epoch)
        return iter(loader)
