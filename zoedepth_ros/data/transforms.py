"""Training augmentation on sample dictionaries (torch), seeded by the caller's generator.

The augmentation follows the original ZoeDepth metric fine-tuning recipe, in its order:
random rotation uniform in +-1 degree (bilinear image, nearest depth and
mask, zero fill outside), optional random crop (off by default, as in the original),
horizontal flip with p = 0.5, and with p = 0.5 a photometric change: gamma U(0.9, 1.1),
brightness U(0.75, 1.25) for NYU or U(0.9, 1.1) otherwise, per-channel gain U(0.9, 1.1),
clip to [0, 1]. Every random number comes from the ``torch.Generator`` passed in, so a sample
is augmented identically for the same generator seed.

Samples are dictionaries with 'image' (3, H, W) in [0, 1], 'depth' (1, H, W) metres with 0
invalid and 'mask' (1, H, W) bool (see :mod:`zoedepth_ros.data.base`); other keys pass
through. :class:`zoedepth_ros.training.batches.SeededView` is the one place that seeds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from zoedepth_ros.errors import InputError

Sample = dict[str, Any]


@dataclass(frozen=True)
class AugmentConfig:
    """Parameters of :func:`augment` (defaults: the original recipe for non-NYU data).

    Attributes:
        rotation_deg: rotation drawn uniformly in [-rotation_deg, rotation_deg]; 0 = off.
        flip_p: probability of a horizontal flip.
        photometric_p: probability of the gamma/brightness/gain change.
        gamma: range of the gamma exponent.
        brightness: range of the brightness factor (NYU uses (0.75, 1.25)).
        gain: range of the per-channel colour gain.
        crop_size: (height, width) of a random crop, or None (off, as in the original).
    """

    rotation_deg: float = 1.0
    flip_p: float = 0.5
    photometric_p: float = 0.5
    gamma: tuple[float, float] = (0.9, 1.1)
    brightness: tuple[float, float] = (0.9, 1.1)
    gain: tuple[float, float] = (0.9, 1.1)
    crop_size: tuple[int, int] | None = None

    @classmethod
    def for_dataset(cls, name: str, **changes: Any) -> AugmentConfig:
        """The recipe for dataset ``name`` ('nyu' gets the wider brightness range)."""
        config = cls(brightness=(0.75, 1.25)) if name == 'nyu' else cls()
        return replace(config, **changes)


def _uniform(generator: torch.Generator, low: float, high: float, size: int = 1) -> torch.Tensor:
    return low + (high - low) * torch.rand(size, generator=generator, dtype=torch.float64)


def rotate(sample: Sample, angle_deg: float) -> Sample:
    """Rotate counter-clockwise (as PIL) about the image centre; bilinear image, nearest depth.

    Pixels coming from outside the image get image 0, depth 0 and mask False.
    """
    image, depth, mask = sample['image'], sample['depth'], sample['mask']
    angle = math.radians(angle_deg)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    height, width = image.shape[-2:]
    aspect = height / width  # grid coordinates are normalised per axis
    # Output pixel -> input location, in grid_sample's normalised coordinates (align_corners
    # False). Built by hand: F.affine_grid costs ~15 ms per call on this torch build.
    columns = (2.0 * torch.arange(width, dtype=torch.float32) + 1.0) / width - 1.0
    rows = (2.0 * torch.arange(height, dtype=torch.float32) + 1.0) / height - 1.0
    y, x = torch.meshgrid(rows, columns, indexing='ij')
    grid = torch.stack([cos_a * x - sin_a * aspect * y, sin_a / aspect * x + cos_a * y],
                       dim=-1)[None]
    kwargs: dict[str, Any] = {'padding_mode': 'zeros', 'align_corners': False}
    rotated = F.grid_sample(image[None], grid, mode='bilinear', **kwargs)[0]
    stacked = torch.cat([depth, mask.to(depth.dtype)])[None]
    nearest = F.grid_sample(stacked, grid, mode='nearest', **kwargs)[0]
    return {**sample, 'image': rotated, 'depth': nearest[:1],
            'mask': (nearest[1:] > 0.5) & (nearest[:1] > 0)}


def hflip(sample: Sample) -> Sample:
    """Mirror image, depth and mask left-right."""
    return {**sample, **{key: sample[key].flip(-1) for key in ('image', 'depth', 'mask')}}


def crop(sample: Sample, top: int, left: int, height: int, width: int) -> Sample:
    """Crop image, depth and mask to the window at (top, left) of height x width."""
    window = (slice(None), slice(top, top + height), slice(left, left + width))
    return {**sample, **{key: sample[key][window] for key in ('image', 'depth', 'mask')}}


def photometric(image: torch.Tensor, gamma: float, brightness: float,
                gain: torch.Tensor) -> torch.Tensor:
    """image ** gamma * brightness * gain (per channel, (3,)), clipped to [0, 1]."""
    out = image.clamp(min=0.0) ** gamma * brightness * gain.to(image.dtype).view(3, 1, 1)
    return out.clamp(0.0, 1.0)


def augment(sample: Sample, generator: torch.Generator,
            config: AugmentConfig = AugmentConfig()) -> Sample:
    """Apply the training augmentation of ``config`` to ``sample``.

    Args:
        sample: a dataset sample (not modified).
        generator: the only source of randomness.
        config: which augmentations, with which ranges.

    Returns:
        A new sample; image, depth and mask stay pixel-aligned.
    """
    if config.rotation_deg > 0:
        angle = float(_uniform(generator, -config.rotation_deg, config.rotation_deg))
        sample = rotate(sample, angle)
    if config.crop_size is not None:
        crop_height, crop_width = config.crop_size
        height, width = sample['image'].shape[-2:]
        if crop_height > height or crop_width > width:
            raise InputError(f'crop {crop_height}x{crop_width} is larger than the '
                             f'{height}x{width} sample {sample.get("stem")}')
        top = int(torch.randint(height - crop_height + 1, (1,), generator=generator))
        left = int(torch.randint(width - crop_width + 1, (1,), generator=generator))
        sample = crop(sample, top, left, crop_height, crop_width)
    if float(_uniform(generator, 0.0, 1.0)) < config.flip_p:
        sample = hflip(sample)
    if float(_uniform(generator, 0.0, 1.0)) < config.photometric_p:
        gamma = float(_uniform(generator, *config.gamma))
        brightness = float(_uniform(generator, *config.brightness))
        gain = _uniform(generator, *config.gain, size=3)
        sample = {**sample, 'image': photometric(sample['image'], gamma, brightness, gain)}
    return sample


class TrainAugmentation:
    """``transform(sample, generator)`` callable for the training views, with one config.

    Args:
        config: the augmentation; default: the recipe for non-NYU data.
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        self.config = config or AugmentConfig()

    def __call__(self, sample: Sample, generator: torch.Generator) -> Sample:
        return augment(sample, generator, self.config)


def resize(sample: Sample, height: int, width: int) -> Sample:
    """Resize to height x width: image bilinear (antialiased), depth and mask nearest (so no
    depth value is invented at an edge)."""
    image = F.interpolate(sample['image'][None], size=(height, width), mode='bilinear',
                          align_corners=False, antialias=True)[0]
    stacked = torch.cat([sample['depth'], sample['mask'].to(sample['depth'].dtype)])[None]
    nearest = F.interpolate(stacked, size=(height, width), mode='nearest-exact')[0]
    return {**sample, 'image': image.clamp(0.0, 1.0), 'depth': nearest[:1],
            'mask': (nearest[1:] > 0.5) & (nearest[:1] > 0)}
