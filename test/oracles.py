"""Slow per-pixel oracles for vectorised code, and the reference tolerance (tests, benchmarks)."""

from __future__ import annotations

import math
import struct

import numpy as np
import torch

from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.messages import XYZ_FIELDS, XYZRGB_FIELDS, PackedCloud
from zoedepth_ros.pointcloud import CloudOptions


def gated_cloud_reference(depth_m: np.ndarray, camera: PinholeCamera, options: CloudOptions,
                          rgb: np.ndarray | None = None, std_m: np.ndarray | None = None,
                          min_range: float = 0.0, max_range: float = math.inf,
                          max_rel_std: float = 0.0) -> PackedCloud:
    """The range/std gate and cloud packing of the per-frame path, one pixel at a time.

    Mirrors depth_image_proc's ``convertDepth`` loop over the full-resolution pixel grid,
    visiting every ``stride``-th pixel with the original intrinsics.
    """
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
    fields = XYZRGB_FIELDS if options.color else XYZ_FIELDS
    rows = range(0, depth_m.shape[0], options.stride)
    cols = range(0, depth_m.shape[1], options.stride)
    chunks: list[bytes] = []
    for v in rows:
        for u in cols:
            z = float(depth_m[v, u])
            valid = math.isfinite(z) and z > 0 and min_range <= z <= max_range
            if valid and max_rel_std > 0.0:
                assert std_m is not None
                valid = float(std_m[v, u]) <= max_rel_std * z
            if not valid and not options.organized:
                continue
            point = ((u - cx) * z / fx, (v - cy) * z / fy, z) if valid else (math.nan,) * 3
            chunk = struct.pack('<3f', *point)
            if options.color:
                assert rgb is not None
                red, green, blue = (int(c) for c in rgb[v, u])
                chunk += struct.pack('<I', (red << 16) | (green << 8) | blue)
            chunks.append(chunk)
    step = 4 * len(fields)
    if options.organized:
        height, width = len(rows), len(cols)
    else:
        height, width = 1, len(chunks)
    return PackedCloud(height, width, fields, step, step * width, not options.organized,
                       b''.join(chunks))


def cloud_to_array(cloud: PackedCloud) -> np.ndarray:
    """(height, width) structured view of a packed float32 cloud (for tests and consumers)."""
    dtype = np.dtype({'names': [f.name for f in cloud.fields],
                      'formats': ['<f4'] * len(cloud.fields),
                      'offsets': [f.offset for f in cloud.fields],
                      'itemsize': cloud.point_step})
    return np.frombuffer(cloud.data, dtype=dtype).reshape(cloud.height, cloud.width)


def assert_close(name: str, actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max|out - ref| <= 1e-4 * max|ref| + 1e-6; returns the relative error."""
    assert actual.shape == expected.shape, f'{name}: {actual.shape} vs {expected.shape}'
    error = (actual.float() - expected.float()).abs().max().item()
    scale = expected.abs().max().item()
    assert error <= 1e-4 * scale + 1e-6, f'{name}: max abs error {error:.3g} (ref max {scale:.3g})'
    return error / max(scale, 1e-12)
