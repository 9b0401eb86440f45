"""Golden outputs of seeded tiny models: pins the numerics in a clone without shared/.

The values were produced by this implementation after it matched the original's reference
vectors (test_refvectors.py). Regenerate deliberately with ZOEDEPTH_UPDATE_GOLDEN=1 and
review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from zoedepth_ros.model import build_model

GOLDEN = Path(__file__).parents[1] / 'golden'
UPDATE = os.environ.get('ZOEDEPTH_UPDATE_GOLDEN') == '1'


def run(preset: str) -> dict[str, np.ndarray]:
    torch.manual_seed(1234)
    model = build_model(preset)
    generator = torch.Generator().manual_seed(99)
    images = torch.rand(2, 3, 96, 144, generator=generator)
    with torch.inference_mode():
        out = model(images, size=(96, 128))
    result = {'metric_depth': out.metric_depth[:, 0, ::4, ::4],
              'relative_depth': out.relative_depth[:, ::4, ::4],
              'depth_std': out.depth_std[:, 0, ::8, ::8],
              'probs': out.probs[:, :, 48, 64],
              'domain_index': out.domain_index}
    if out.domain_logits is not None:
        result['domain_logits'] = out.domain_logits
    return {k: v.numpy() for k, v in result.items()}


@pytest.mark.parametrize('preset', ['zoedepth_tiny_n', 'zoedepth_tiny_k', 'zoedepth_tiny_nk'])
def test_matches_golden(preset: str) -> None:
    path = GOLDEN / f'{preset}.npz'
    produced = run(preset)
    if UPDATE:
        np.savez_compressed(path, **produced)
    assert path.is_file(), f'{path} missing; create it with ZOEDEPTH_UPDATE_GOLDEN=1'
    assert path.stat().st_size <= 50_000
    expected = np.load(path)
    assert sorted(expected.files) == sorted(produced)
    for key in produced:
        np.testing.assert_allclose(
            produced[key], expected[key], rtol=1e-4, atol=1e-5,
            err_msg=f'{preset}/{key} changed; if intended, rerun with ZOEDEPTH_UPDATE_GOLDEN=1')
