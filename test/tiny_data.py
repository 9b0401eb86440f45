"""A tiny in-memory RGB-D dataset for trainer tests (depth is a function of the image)."""

from __future__ import annotations

import numpy as np


class TinyRGBD:
    """``count`` random scenes of size HxW: a vertical ramp plus a box, colour tied to depth.

    Indoor scenes span ~1-6 m, outdoor ones ~5-60 m, so a router can tell them apart.
    """

    def __init__(self, count: int, domain: str = 'indoor', size: tuple[int, int] = (32, 48),
                 seed: int = 0) -> None:
        self.domain = domain
        self.min_depth = 1e-3
        self.max_depth = 10.0 if domain == 'indoor' else 80.0
        self.root = f'tiny_{domain}'
        rng = np.random.default_rng(seed)
        height, width = size
        far = 6.0 if domain == 'indoor' else 60.0
        self.items = []
        for _ in range(count):
            rows = np.linspace(far, far / 6, height, dtype=np.float32)[:, None]
            depth = np.repeat(rows, width, axis=1)
            top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
            depth[top:top + height // 3, left:left + width // 3] = far / 4
            shade = (255 * (1 - depth / far)).astype(np.uint8)
            tint = (0, 60, 200) if domain == 'indoor' else (200, 120, 0)
            image = np.stack([np.clip(shade.astype(int) + t, 0, 255) for t in tint], axis=-1)
            depth[rng.random(depth.shape) < 0.05] = 0.0  # some invalid pixels
            self.items.append({'image': image.astype(np.uint8), 'depth': depth})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.items[index]


TINY_MODEL = [
    'img_size=[32, 64]', 'n_bins=16', 'bin_embedding_dim=32', 'attractor_mlp_dim=32',
    'backbone.depth=4', 'backbone.hooks=[0, 1, 2, 3]', 'backbone.embed_dim=64',
    'backbone.num_heads=2', 'backbone.reassemble_features=[16, 32, 48, 64]',
    'backbone.features=32', 'backbone.head_features=16',
    'bin_conf=[{"name": "nyu", "n_bins": 16, "max_depth": 10.0}, '
    '{"name": "kitti", "n_bins": 16, "max_depth": 80.0}]']
"""Overrides that shrink ``zoedepth_tiny_nk`` further (~2 M parameters, most in the router)."""
TINY_MODEL_N = TINY_MODEL[:-1]
"""The same for the single-head ``zoedepth_tiny_n``."""
