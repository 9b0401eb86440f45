"""Training augmentation keeps image, depth and mask consistent and is seeded by its generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoedepth_ros.data.transforms import (
    AugmentConfig,
    augment,
    crop,
    hflip,
    photometric,
    rotate,
)
from zoedepth_ros.errors import InputError


def _blocky_sample(height: int = 48, width: int = 64, block: int = 8) -> dict:
    """Depth in constant square blocks; the image's red channel encodes the same value."""
    blocks = torch.rand(height // block, width // block,
                        generator=torch.Generator().manual_seed(1))
    depth = 1.0 + 9.0 * blocks.repeat_interleave(block, 0).repeat_interleave(block, 1)
    image = torch.stack([(depth - 1.0) / 9.0, torch.full_like(depth, 0.5),
                         torch.linspace(0, 1, width).expand(height, width)])
    return {'image': image, 'depth': depth[None], 'mask': torch.ones(1, height, width,
                                                                      dtype=torch.bool),
            'domain': 'indoor', 'dataset': 'nyu', 'stem': 's'}


def test_hflip_mirrors_all_three_and_twice_is_identity() -> None:
    sample = _blocky_sample()
    flipped = hflip(sample)
    torch.testing.assert_close(flipped['depth'][..., 0], sample['depth'][..., -1])
    torch.testing.assert_close(flipped['image'][..., 3], sample['image'][..., -4])
    twice = hflip(flipped)
    for key in ('image', 'depth', 'mask'):
        assert torch.equal(twice[key], sample[key])
    assert flipped['stem'] == 's'


def test_rotation_keeps_image_and_depth_aligned() -> None:
    sample = _blocky_sample(64, 96, block=16)
    assert torch.allclose(rotate(sample, 0.0)['image'], sample['image'], atol=1e-5)
    rotated = rotate(sample, 1.0)
    mask = rotated['mask'][0]
    assert not mask[0, 0] and not mask[-1, -1]  # corners rotate in from outside
    assert (rotated['depth'][0][~mask] == 0).all()
    assert mask.float().mean() > 0.95
    decoded = 1.0 + 9.0 * rotated['image'][0]
    agree = (decoded - rotated['depth'][0]).abs() < 1e-3
    assert agree[mask].float().mean() > 0.85  # all but the block borders (bilinear blends)
    kept = set(np.unique(rotated['depth'][0][mask].numpy()).tolist())
    assert kept <= set(np.unique(sample['depth'].numpy()).tolist())  # nearest: no new values


def test_photometric_formula_and_range() -> None:
    image = torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(2))
    gain = torch.tensor([0.9, 1.0, 1.1], dtype=torch.float64)
    out = photometric(image, 1.1, 1.25, gain)
    expected = (image ** 1.1 * 1.25 * gain.float().view(3, 1, 1)).clamp(0, 1)
    torch.testing.assert_close(out, expected)
    assert out.max() <= 1.0 and out.max() == 1.0  # something saturated and was clipped


def test_augment_is_deterministic_and_leaves_depth_values_alone() -> None:
    sample = _blocky_sample()
    config = AugmentConfig(rotation_deg=0.0)
    first = augment(sample, torch.Generator().manual_seed(3), config)
    again = augment(sample, torch.Generator().manual_seed(3), config)
    for key in ('image', 'depth', 'mask'):
        assert torch.equal(first[key], again[key])
    outcomes = set()
    for seed in range(40):
        out = augment(sample, torch.Generator().manual_seed(seed), config)
        flipped = torch.equal(out['depth'], hflip(sample)['depth'])
        assert flipped or torch.equal(out['depth'], sample['depth'])
        reference = hflip(sample) if flipped else sample
        recoloured = not torch.equal(out['image'], reference['image'])
        assert 0.0 <= out['image'].min() and out['image'].max() <= 1.0
        assert torch.equal(out['mask'], reference['mask'])
        outcomes.add((flipped, recoloured))
    assert outcomes == {(False, False), (False, True), (True, False), (True, True)}


def test_augment_draw_statistics_follow_the_recipe() -> None:
    sample = {'image': torch.full((3, 2, 2), 0.5), 'depth': torch.ones(1, 2, 2),
              'mask': torch.ones(1, 2, 2, dtype=torch.bool)}
    config = AugmentConfig.for_dataset('nyu', rotation_deg=0.0, flip_p=0.0, photometric_p=1.0)
    assert config.brightness == (0.75, 1.25) and AugmentConfig().brightness == (0.9, 1.1)
    ratios = torch.stack([augment(sample, torch.Generator().manual_seed(s), config)['image']
                          [:, 0, 0] for s in range(300)])
    # 0.5 ** gamma * brightness * gain, gamma in [0.9, 1.1]: bounds of the product
    low, high = 0.5 ** 1.1 * 0.75 * 0.9, 0.5 ** 0.9 * 1.25 * 1.1
    assert ratios.min() >= low - 1e-6 and ratios.max() <= high + 1e-6
    assert ratios.min() < 0.4 and ratios.max() > 0.6  # the wide NYU brightness is used
    flips = sum(torch.equal(augment(_blocky_sample(), torch.Generator().manual_seed(s),
                                    AugmentConfig(rotation_deg=0.0, photometric_p=0.0))['depth'],
                            hflip(_blocky_sample())['depth']) for s in range(200))
    assert 70 < flips < 130  # p = 0.5


def test_random_crop_is_aligned_and_checked() -> None:
    sample = _blocky_sample()
    out = augment(sample, torch.Generator().manual_seed(0),
                  AugmentConfig(rotation_deg=0.0, flip_p=0.0, photometric_p=0.0,
                                crop_size=(16, 24)))
    assert out['image'].shape == (3, 16, 24) and out['depth'].shape == (1, 16, 24)
    torch.testing.assert_close(1.0 + 9.0 * out['image'][0], out['depth'][0])
    assert crop(sample, 8, 8, 8, 8)['depth'].unique().numel() == 1  # one block
    with pytest.raises(InputError, match='larger than'):
        augment(sample, torch.Generator(), AugmentConfig(crop_size=(100, 24)))
