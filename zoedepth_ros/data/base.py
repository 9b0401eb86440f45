"""The sample contract of every training/evaluation dataset, and its base class.

Sample (what ``dataset[i]`` returns)::

    'image'   float32 tensor (3, H, W), RGB in [0, 1]
    'depth'   float32 tensor (1, H, W), metres; 0 where the ground truth is missing
    'mask'    bool tensor (1, H, W), True where min_depth < depth < max_depth (use this, not
              depth > 0: depth may hold finite values beyond the dataset's range)
    'domain'  'indoor' | 'outdoor'
    'disparity' True when 'depth' holds relative inverse depth (disparity up to scale and
              shift: relative-depth datasets), not metres
    'dataset' dataset name, e.g. 'nyu', 'kitti', 'diode_indoor', 'synth_indoor'
    'stem'    identifier of the frame within the dataset (str)

Each dataset carries a :class:`DatasetInfo` (``dataset.info``): name, domain, valid depth
range and evaluation crop ('eigen', 'garg' or None, see ``metrics.crop_mask``). Datasets
never augment: seeding and augmentation happen in one place, the training views of
:mod:`zoedepth_ros.training.batches`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera

Sample = dict[str, Any]


HOLDOUT_BLOCK = 10
"""Consecutive frames that go to the same split when a recording is split for validation
(neighbouring frames look alike, so a frame-by-frame split would leak)."""


def held_out(position: int, holdout: float) -> bool:
    """Whether frame ``position`` of a recording is in the held-out share ``holdout`` (0..1),
    taken in blocks of :data:`HOLDOUT_BLOCK` consecutive frames: every n-th block, n =
    round(1 / holdout), at least 2."""
    if holdout <= 0:
        return False
    period = max(2, round(1.0 / holdout))
    return (position // HOLDOUT_BLOCK) % period == period - 1


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset.

    Attributes:
        name: short name used in samples and reports.
        domain: 'indoor' or 'outdoor'.
        min_depth_m: lower bound (exclusive) of valid ground truth.
        max_depth_m: upper bound (exclusive) of valid ground truth.
        eval_crop: 'eigen', 'garg' or None.
        depth_kind: 'metric' (metres) or 'disparity' (relative inverse depth, for the
            relative training stage only; the depth range does not apply).
    """

    name: str
    domain: str
    min_depth_m: float
    max_depth_m: float
    eval_crop: str | None
    depth_kind: str = 'metric'


def make_sample(rgb: np.ndarray, depth_m: np.ndarray, info: DatasetInfo, stem: str) -> Sample:
    """Build the sample dictionary (see the module docstring) from numpy arrays.

    Args:
        rgb: (H, W, 3) uint8 RGB.
        depth_m: (H, W) depth in metres; NaN, inf and values <= 0 are invalid.
        info: the dataset's facts (range, domain, name).
        stem: frame identifier.
    """
    if rgb.shape[:2] != depth_m.shape:
        raise InputError(f'{info.name} {stem}: image is {rgb.shape[:2]} but depth is '
                         f'{depth_m.shape}; expected equal sizes')
    depth = np.nan_to_num(depth_m.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    depth[depth < 0] = 0.0
    disparity = info.depth_kind == 'disparity'
    mask = depth > 0 if disparity else (depth > info.min_depth_m) & (depth < info.max_depth_m)
    image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float() / 255.0
    return {'image': image, 'depth': torch.from_numpy(depth)[None],
            'mask': torch.from_numpy(mask)[None], 'domain': info.domain,
            'disparity': disparity, 'dataset': info.name, 'stem': stem}


class DepthDataset(Dataset, abc.ABC):
    """Base class: subclasses set ``info`` and implement ``__len__`` and :meth:`load`."""

    info: DatasetInfo

    @property
    def domain(self) -> str:
        """'indoor' or 'outdoor' (same as ``info.domain``)."""
        return self.info.domain

    @property
    def min_depth(self) -> float:
        """Lower bound of valid depth in metres (``info.min_depth_m``)."""
        return self.info.min_depth_m

    @property
    def max_depth(self) -> float:
        """Upper bound of valid depth in metres (``info.max_depth_m``)."""
        return self.info.max_depth_m

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of frames."""

    @abc.abstractmethod
    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        """(H, W, 3) uint8 RGB, (H, W) float32 depth in metres (0/NaN invalid), stem."""

    def camera(self, index: int) -> PinholeCamera | None:
        """Intrinsics of frame ``index`` at the size ``load`` returns, where known."""
        return None

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(f'{self.info.name}: index {index} out of range 0..{len(self) - 1}')
        rgb, depth, stem = self.load(index)
        return make_sample(rgb, depth, self.info, stem)
