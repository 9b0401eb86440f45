"""Training views: items become batch tensors; one seeded place augments them."""

from __future__ import annotations

import numpy as np
import torch
from tiny_data import TinyRGBD

from zoedepth_ros.data.transforms import TrainAugmentation
from zoedepth_ros.training.batches import SeededView, collate, to_sample


def test_to_sample_masks_range_and_invalid_depth() -> None:
    depth = np.array([[0.0, 5.0], [np.nan, 90.0]], dtype=np.float32)
    item = {'image': np.zeros((2, 2, 3), np.uint8), 'depth': depth, 'domain': 'outdoor',
            'max_depth': 80.0}
    sample = to_sample(item)
    assert sample['mask'].tolist() == [[[False, True], [False, False]]]
    assert sample['depth'][0, 1, 0] == 0.0 and int(sample['domain']) == 1
    assert float(sample['max_depth']) == 80.0 and sample['image'].shape == (3, 2, 2)


def test_augmentation_is_deterministic_per_seed_epoch_and_index() -> None:
    data = TinyRGBD(4, size=(32, 48))
    view = SeededView(data, TrainAugmentation(), seed=7)
    first = [view[0]['image'] for _ in range(2)]
    torch.testing.assert_close(first[0], first[1], rtol=0, atol=0)
    plain = SeededView(data, None, seed=7)[0]['image']
    assert not torch.equal(first[0], plain)
    assert not torch.equal(view[1]['image'], SeededView(data, None, seed=7)[1]['image'])
    view.set_epoch(1)
    assert not torch.equal(view[0]['image'], first[0])
    again = SeededView(data, TrainAugmentation(), seed=7)
    again.set_epoch(1)
    torch.testing.assert_close(again[0]['image'], view[0]['image'], rtol=0, atol=0)
    batch = collate([view[0], view[1]])
    assert batch['image'].shape == (2, 3, 32, 48) and batch['mask'].dtype == torch.bool
