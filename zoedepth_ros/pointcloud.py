"""PointCloud2 packing from depth (vectorised torch on the depth's device, numpy API; ROS-free).

Layout (ros-conventions.md section 4): fields ``x, y, z`` FLOAT32 at offsets 0, 4, 8 and, with
colour, ``rgb`` FLOAT32 at 12 holding the packed 0x00RRGGBB bits (point_step 16; 12 without
colour), little-endian. Organised clouds keep the (strided) image grid with NaN for invalid
points (``is_dense`` False), like depth_image_proc; dense clouds hold only valid points in one
row. Back-projection follows depth_image_proc's ``convertDepth`` with the intrinsics of P:
X = (u - cx) Z / fx, Y = (v - cy) Z / fy, Z = depth.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
import torch

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera

FLOAT32 = 7
"""``sensor_msgs/PointField`` datatype of float32."""


@dataclass(frozen=True)
class CloudField:
    """One ``sensor_msgs/PointField``."""

    name: str
    offset: int
    datatype: int = FLOAT32
    count: int = 1


XYZ_FIELDS = (CloudField('x', 0), CloudField('y', 4), CloudField('z', 8))
XYZRGB_FIELDS = XYZ_FIELDS + (CloudField('rgb', 12),)


@dataclass(frozen=True)
class PackedCloud:
    """Field values of a ``sensor_msgs/PointCloud2`` (everything but the header)."""

    height: int
    width: int
    fields: tuple[CloudField, ...]
    point_step: int
    row_step: int
    is_dense: bool
    data: bytes | memoryview
    is_bigendian: bool = False

    @property
    def point_count(self) -> int:
        return self.height * self.width


@dataclass(frozen=True)
class CloudOptions:
    """What goes into the cloud.

    Attributes:
        stride: keep every ``stride``-th pixel in u and v (intrinsics scaled to match).
        organized: image grid with NaN points (True) or only valid points in one row (False).
        color: add the packed ``rgb`` field from the input image.
        min_range, max_range: keep depths (z, metres) within this interval.
        max_rel_std: drop pixels whose std / depth exceeds this; 0 disables the gate.
    """

    stride: int = 1
    organized: bool = True
    color: bool = True
    min_range: float = 0.0
    max_range: float = math.inf
    max_rel_std: float = 0.0

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise InputError(f'cloud stride must be >= 1, got {self.stride}')
        if not 0.0 <= self.min_range < self.max_range:
            raise InputError(f'need 0 <= min_range < max_range, got {self.min_range}, '
                             f'{self.max_range}')


def gate_depth_tensor(depth: torch.Tensor, min_range: float = 0.0,
                      max_range: float = math.inf, std: torch.Tensor | None = None,
                      max_rel_std: float = 0.0) -> torch.Tensor:
    """:func:`gate_depth` on torch tensors, on their device (the estimator's: CPU or GPU).

    Args:
        depth: (H, W) depth in metres.
        std: (H, W) standard deviation in metres, needed when ``max_rel_std`` > 0.

    Returns:
        New (H, W) float32 tensor, NaN where invalid.
    """
    depth = depth.float()
    valid = (depth >= min_range) & (depth <= max_range)  # False for NaN
    if math.isinf(max_range):
        valid &= torch.isfinite(depth)
    if max_rel_std > 0.0:
        if std is None or std.shape != depth.shape:
            raise InputError('max_rel_std needs a std map of the depth shape')
        valid &= std.float() <= max_rel_std * depth  # False for a NaN std
    return torch.where(valid, depth, math.nan)


def gate_depth(depth_m: np.ndarray, min_range: float = 0.0, max_range: float = math.inf,
               std_m: np.ndarray | None = None, max_rel_std: float = 0.0) -> np.ndarray:
    """Copy of ``depth_m`` with NaN outside [min_range, max_range] or above the std gate.

    Args:
        depth_m: (H, W) depth in metres.
        std_m: (H, W) standard deviation in metres, needed when ``max_rel_std`` > 0.
        max_rel_std: largest allowed std / depth; 0 disables the gate.

    Returns:
        (H, W) float32 depth, NaN where invalid.
    """
    std = None if std_m is None else as_tensor(std_m, np.float32)
    return gate_depth_tensor(as_tensor(depth_m, np.float32), min_range, max_range, std,
                             max_rel_std).numpy()


def as_tensor(array: np.ndarray, dtype: type) -> torch.Tensor:
    """CPU tensor sharing ``array``'s memory where possible (copies read-only or strided data)."""
    array = np.ascontiguousarray(array, dtype=dtype)
    if not array.flags.writeable:  # torch.from_numpy warns on read-only buffers
        array = array.copy()
    return torch.from_numpy(array)


def strided_camera(camera: PinholeCamera, stride: int) -> PinholeCamera:
    """Intrinsics of the image sampled at every ``stride``-th pixel (u' = u / stride)."""
    width = -(-camera.width // stride)
    height = -(-camera.height // stride)
    return PinholeCamera(camera.fx / stride, camera.fy / stride, camera.cx / stride,
                         camera.cy / stride, width, height)


def point_cloud_tensor(depth: torch.Tensor, camera: PinholeCamera, options: CloudOptions,
                       rgb: torch.Tensor | None = None,
                       std: torch.Tensor | None = None) -> torch.Tensor:
    """Back-project and pack on ``depth``'s device: the cloud's bytes as a float32 tensor.

    Args:
        depth: (H, W) z-depth in metres, NaN/inf invalid.
        camera: intrinsics (from P) of the H x W depth image.
        options: stride, layout, colour, range and uncertainty gate.
        rgb: (H, W, 3) uint8 RGB registered to the depth; required when ``options.color``.
        std: (H, W) standard deviation in metres; required when ``options.max_rel_std`` > 0.

    Returns:
        (h, w, C) organised or (N, C) dense float32 points, C = 4 with colour (x, y, z, rgb
        bits 0x00RRGGBB) else 3; their bytes are the PointCloud2 ``data``.
    """
    if depth.ndim != 2 or depth.shape != (camera.height, camera.width):
        raise InputError(f'depth of shape {tuple(depth.shape)} does not match the camera size '
                         f'{camera.height}x{camera.width}')
    if options.color and (rgb is None or rgb.ndim != 3 or rgb.shape[:2] != depth.shape
                          or rgb.shape[2] != 3):
        raise InputError('a colour cloud needs an (H, W, 3) RGB image of the depth size')
    step = options.stride
    z = gate_depth_tensor(depth[::step, ::step], options.min_range, options.max_range,
                          None if std is None else std[::step, ::step], options.max_rel_std)
    grid = strided_camera(camera, step)
    height, width = z.shape
    # Same float32 operations as geometry.depth_to_points: X = (u - cx) / fx * Z.
    f32 = np.float32
    u = (torch.arange(width, dtype=torch.float32, device=z.device) - float(f32(grid.cx))) \
        / float(f32(grid.fx))
    v = (torch.arange(height, dtype=torch.float32, device=z.device) - float(f32(grid.cy))) \
        / float(f32(grid.fy))
    buffer = torch.empty((height, width, 4 if options.color else 3), dtype=torch.float32,
                         device=z.device)
    torch.mul(z, u[None, :], out=buffer[..., 0])
    torch.mul(z, v[:, None], out=buffer[..., 1])
    buffer[..., 2] = z
    if options.color:  # rgb float holds 0x00RRGGBB: bytes B, G, R, 0 in memory
        assert rgb is not None  # written as bytes: a float copy could flush these denormals
        colour, source = buffer.view(torch.uint8), rgb[::step, ::step]
        for channel in range(3):
            colour[..., 14 - channel] = source[..., channel]
        colour[..., 15] = 0
    if options.organized:  # invalid depth is NaN, so x, y, z are already NaN there
        return buffer
    return buffer[torch.isfinite(z)]


def packed_cloud(points: torch.Tensor, organized: bool) -> PackedCloud:
    """PackedCloud of :func:`point_cloud_tensor`'s output (copied to host memory)."""
    fields = XYZRGB_FIELDS if points.shape[-1] == 4 else XYZ_FIELDS
    point_step = 4 * len(fields)
    height, width = points.shape[:2] if organized else (1, points.shape[0])
    data = memoryview(points.cpu().numpy().reshape(-1).view(np.uint8))
    return PackedCloud(height, width, fields, point_step, point_step * width, not organized,
                       data)


def pack_point_cloud(depth_m: np.ndarray, camera: PinholeCamera, options: CloudOptions,
                     rgb: np.ndarray | None = None,
                     std_m: np.ndarray | None = None) -> PackedCloud:
    """:func:`point_cloud_tensor` on numpy arrays (same arguments), packed for PointCloud2."""
    points = point_cloud_tensor(
        as_tensor(depth_m, np.float32), camera, options,
        None if rgb is None else as_tensor(rgb, np.uint8),
        None if std_m is None else as_tensor(std_m, np.float32))
    return packed_cloud(points, options.organized)


def cloud_to_array(cloud: PackedCloud) -> np.ndarray:
    """(height, width) structured view of a packed cloud (for tests and consumers)."""
    dtype = np.dtype({'names': [f.name for f in cloud.fields],
                      'formats': ['<f4'] * len(cloud.fields),
                      'offsets': [f.offset for f in cloud.fields],
                      'itemsize': cloud.point_step})
    return np.frombuffer(cloud.data, dtype=dtype).reshape(cloud.height, cloud.width)


def pack_point_cloud_reference(depth_m: np.ndarray, camera: PinholeCamera, options: CloudOptions,
                               rgb: np.ndarray | None = None,
                               std_m: np.ndarray | None = None) -> PackedCloud:
    """Per-point oracle for :func:`pack_point_cloud` (slow; tests and benchmarks only).

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
            valid = math.isfinite(z) and options.min_range <= z <= options.max_range
            if valid and options.max_rel_std > 0.0:
                assert std_m is not None
                valid = float(std_m[v, u]) <= options.max_rel_std * z
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
