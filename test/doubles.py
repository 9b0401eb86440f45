"""Stand-ins with the real interfaces (tests and benchmarks only)."""

from __future__ import annotations

import torch

from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.model.bins import HeadOutput
from zoedepth_ros.model.config import get_config
from zoedepth_ros.model.zoedepth import DepthOutput, ZoeDepth


class NullModel(torch.nn.Module):
    """ZoeDepth's call interface at no cost: its input resize and normalisation, then fixed
    outputs cached per network size.

    Args:
        preset: configuration whose input size and heads the model reports.
        depth_m: constant depth in metres; None gives a ramp 0.3-100 m over the image.
        domain_index: router choice of every image (0 indoor, 1 outdoor).
        interrupt_at: raise KeyboardInterrupt on this call (0-based; -1 never), as Ctrl-C.

    The 'nyu' head returns the depth and the 'kitti' head the depth mirrored left-right (the
    same values, another structure); ``all_heads`` returns both.
    """

    def __init__(self, preset: str = 'ZoeD_NK', depth_m: float | None = None,
                 domain_index: int = 0, interrupt_at: int = -1) -> None:
        super().__init__()
        self.cfg = get_config(preset)
        self.depth_m = depth_m
        self.domain_index = domain_index
        self.interrupt_at = interrupt_at
        self.calls = 0
        self._cache: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(head.name for head in self.cfg.heads)

    def forward(self, image: torch.Tensor, domain: str | None = None, routing: str = 'sample',
                keep_aspect: bool | None = None, with_std: bool = True,
                all_heads: bool = False) -> DepthOutput:
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        self.calls += 1
        x = ZoeDepth.prepare(self, image, keep_aspect)  # type: ignore[arg-type] # reads cfg only
        key = tuple(x.shape)
        if key not in self._cache:
            batch, _, height, width = x.shape
            if self.depth_m is None:
                values = torch.linspace(0.3, 100.0, height * width, device=x.device)
            else:
                values = torch.full((height * width,), self.depth_m, device=x.device)
            depth = values.reshape(1, 1, height, width).expand(batch, 1, height, width)
            self._cache[key] = depth.contiguous(), 0.05 * depth.contiguous()
        depth, std = self._cache[key]
        sign = 1.0 if self.domain_index == 0 else -1.0
        logits = torch.tensor([[2.0 * sign, -2.0 * sign]], device=x.device).expand(x.shape[0], 2)
        index = torch.full((x.shape[0],), self.domain_index, dtype=torch.long, device=x.device)
        mirrored = torch.flip(depth, dims=[3])
        heads = {'nyu': HeadOutput(depth, depth, torch.ones_like(depth)),
                 'kitti': HeadOutput(mirrored, mirrored, torch.ones_like(depth))}
        depth = heads[('nyu', 'kitti')[self.domain_index]].depth
        std = torch.flip(std, dims=[3]) if self.domain_index else std
        # relative depth, bins and decoder tensors are not read by DepthEstimator.
        return DepthOutput(depth, std if with_std else None, depth[:, 0], depth, depth, logits,
                           index, None, heads if all_heads else None)  # type: ignore[arg-type]


def null_estimator(**options: object) -> DepthEstimator:
    """A CPU DepthEstimator around a :class:`NullModel` (options go to the model)."""
    return DepthEstimator(NullModel(**options), device='cpu', name='null model')
