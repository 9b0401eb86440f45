"""PointCloud2 packing from depth (numpy, vectorised, ROS-free).

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

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera, depth_to_points

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
    data: bytes
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
    depth = np.array(depth_m, dtype=np.float32, copy=True)
    with np.errstate(invalid='ignore', divide='ignore'):
        invalid = ~np.isfinite(depth) | (depth < min_range) | (depth > max_range)
        if max_rel_std > 0.0:
            if std_m is None or std_m.shape != depth.shape:
                raise InputError('max_rel_std needs a std map of the depth shape')
            invalid |= ~(std_m <= max_rel_std * depth)
    depth[invalid] = np.nan
    return depth


def strided_camera(camera: PinholeCamera, stride: int) -> PinholeCamera:
    """Intrinsics of the image sampled at every ``stride``-th pixel (u' = u / stride)."""
    width = -(-camera.width // stride)
    height = -(-camera.height // stride)
    return PinholeCamera(camera.fx / stride, camera.fy / stride, camera.cx / stride,
                         camera.cy / stride, width, height)


def pack_point_cloud(depth_m: np.ndarray, camera: PinholeCamera, options: CloudOptions,
                     rgb: np.ndarray | None = None,
                     std_m: np.ndarray | None = None) -> PackedCloud:
    """Back-project depth and pack it as PointCloud2 fields.

    Args:
        depth_m: (H, W) z-depth in metres, NaN/inf invalid.
        camera: intrinsics (from P) of the H x W depth image.
        options: stride, layout, colour, range and uncertainty gate.
        rgb: (H, W, 3) uint8 RGB registered to the depth; required when ``options.color``.
        std_m: (H, W) standard deviation in metres; required when ``options.max_rel_std`` > 0.
    """
    if options.color and (rgb is None or rgb.shape[:2] != depth_m.shape or rgb.ndim != 3):
        raise InputError('a colour cloud needs an (H, W, 3) RGB image of the depth size')
    step = options.stride
    depth = gate_depth(depth_m[::step, ::step], options.min_range, options.max_range,
                       None if std_m is None else std_m[::step, ::step], options.max_rel_std)
    points = depth_to_points(depth, strided_camera(camera, step))
    height, width = depth.shape
    fields = XYZRGB_FIELDS if options.color else XYZ_FIELDS
    channels = len(fields)
    buffer = np.empty((height, width, channels), dtype='<f4')
    buffer[..., :3] = points
    if options.color:  # rgb float holds 0x00RRGGBB: bytes B, G, R, 0 in memory
        colour = buffer.view(np.uint8).reshape(height, width, 4 * channels)[..., 12:16]
        colour[..., :3] = rgb[::step, ::step, ::-1]
        colour[..., 3] = 0
    if options.organized:  # invalid depth is NaN, so x, y, z are already NaN there
        point_step = 4 * channels
        return PackedCloud(height, width, fields, point_step, point_step * width, False,
                           buffer.tobytes())
    valid = buffer[np.isfinite(depth)]
    point_step = 4 * channels
    return PackedCloud(1, len(valid), fields, point_step, point_step * len(valid), True,
                       valid.tobytes())


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
