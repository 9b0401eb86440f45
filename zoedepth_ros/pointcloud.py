"""PointCloud2 data from depth: back-projection and byte packing on the depth's device.

Layout: fields ``x, y, z`` FLOAT32 at offsets 0, 4, 8 and, with colour, ``rgb`` FLOAT32 at 12
holding the packed 0x00RRGGBB bits (point_step 16; 12 without colour), little-endian.
Organised clouds keep the (strided) image grid with NaN for invalid points (``is_dense``
False), like depth_image_proc; dense clouds hold only valid points in one row. The field
description and the host-side container are :class:`~zoedepth_ros.io.messages.PackedCloud`.
:func:`cloud_xyz` reads the x, y, z fields of any ``sensor_msgs/PointCloud2`` (rclpy messages
and rosbags' dataclasses alike), float32 or float64, either byte order.
Invalid depth (NaN, after the range and uncertainty gate of
:mod:`zoedepth_ros.pipeline.predict`) gives NaN points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from zoedepth_ros.config import param
from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera, depth_to_points_tensor
from zoedepth_ros.io.messages import XYZ_FIELDS, XYZRGB_FIELDS, PackedCloud, as_uint8


@dataclass(frozen=True)
class CloudOptions:
    """The ``points`` output: whether and what goes into the cloud (the node's ``cloud.*``
    parameters)."""

    enabled: bool = param(True, 'Publish the PointCloud2 (only while someone subscribes).')
    stride: int = param(2, 'Use every stride-th pixel in u and v (intrinsics scaled); 1 = all.',
                        low=1, high=64)
    organized: bool = param(True, 'Organised H x W cloud with NaN invalid points '
                            '(depth_image_proc layout); false = dense 1 x N valid points.')
    color: bool = param(True, 'Add the packed rgb field from the input image.')

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise InputError(f'cloud stride must be >= 1, got {self.stride}')


def as_tensor(array: np.ndarray | torch.Tensor, dtype: type) -> torch.Tensor:
    """Tensor of ``array``: sharing a numpy array's memory where possible (copies read-only
    or strided data); tensors are returned as they are."""
    if isinstance(array, torch.Tensor):
        return array
    array = np.ascontiguousarray(array, dtype=dtype)
    if not array.flags.writeable:  # torch.from_numpy warns on read-only buffers
        array = array.copy()
    return torch.from_numpy(array)


def point_cloud_tensor(depth: torch.Tensor, camera: PinholeCamera, options: CloudOptions,
                       rgb: torch.Tensor | None = None) -> torch.Tensor:
    """Back-project and pack on ``depth``'s device: the cloud's bytes as a float32 tensor.

    Args:
        depth: (H, W) z-depth in metres, NaN invalid.
        camera: intrinsics (from P) of the H x W depth image.
        options: stride, layout and colour.
        rgb: (H, W, 3) uint8 RGB registered to the depth; required when ``options.color``.

    Returns:
        (h, w, C) organised or (N, C) dense float32 points, C = 4 with colour (x, y, z, rgb
        bits 0x00RRGGBB) else 3; their bytes are the PointCloud2 ``data``.
    """
    if tuple(depth.shape) != (camera.height, camera.width):
        raise InputError(f'depth of shape {tuple(depth.shape)} does not match the camera size '
                         f'{camera.height}x{camera.width}')
    if options.color and (rgb is None or rgb.ndim != 3 or rgb.shape[:2] != depth.shape
                          or rgb.shape[2] != 3):
        raise InputError('a colour cloud needs an (H, W, 3) RGB image of the depth size')
    step = options.stride
    z = depth[::step, ::step].float()
    buffer = torch.empty((*z.shape, 4 if options.color else 3), dtype=torch.float32,
                         device=z.device)
    depth_to_points_tensor(z, camera.strided(step), out=buffer)
    if options.color:  # rgb float holds 0x00RRGGBB: bytes B, G, R, 0 in memory
        assert rgb is not None  # written as bytes: a float copy could flush these denormals
        colour, source = buffer.view(torch.uint8), rgb[::step, ::step]
        for channel in range(3):
            colour[..., 14 - channel] = source[..., channel]
        colour[..., 15] = 0
    if options.organized:  # invalid depth is NaN, so x, y, z are already NaN there
        return buffer
    # The points of finite depth in row-major order: |z| < inf is isfinite(z), and nonzero +
    # index_select is the boolean index, each 2-3x faster on the CPU.
    keep = (z.abs() < math.inf).reshape(-1).nonzero().squeeze(1)
    return buffer.reshape(-1, buffer.shape[-1]).index_select(0, keep)


def pack_point_cloud(depth: np.ndarray | torch.Tensor, camera: PinholeCamera,
                     options: CloudOptions,
                     rgb: np.ndarray | torch.Tensor | None = None) -> PackedCloud:
    """:func:`point_cloud_tensor` (on the tensors' device, or the CPU for numpy arrays), copied
    to host memory once as a PackedCloud."""
    points = point_cloud_tensor(as_tensor(depth, np.float32), camera, options,
                                None if rgb is None else as_tensor(rgb, np.uint8))
    fields = XYZRGB_FIELDS if points.shape[-1] == 4 else XYZ_FIELDS
    point_step = 4 * len(fields)
    height, width = points.shape[:2] if options.organized else (1, points.shape[0])
    data = points.cpu().numpy().reshape(-1).view(np.uint8).data
    return PackedCloud(height, width, fields, point_step, point_step * width,
                       not options.organized, data)


# --------------------------------------------------------------------------------------------
# Reading: the x, y, z of any PointCloud2 (sparse lidar or VIO samples)

_FLOAT_TYPES = {7: 'f4', 8: 'f8'}  # sensor_msgs/PointField FLOAT32, FLOAT64
MAX_CLOUD_POINTS = 4_000_000


def cloud_xyz(msg: Any) -> np.ndarray:
    """(N, 3) float64 points of a PointCloud2's x, y, z fields, NaN/inf points dropped.

    Raises:
        InputError: a field is missing or not float32/float64, or the data is too short.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.point_step)
    count = height * width
    if count > MAX_CLOUD_POINTS:
        raise InputError(f'point cloud of {count} points is larger than {MAX_CLOUD_POINTS}')
    fields = {str(f.name): f for f in msg.fields}
    order = '>' if msg.is_bigendian else '<'
    data = as_uint8(msg.data)
    row_step = int(msg.row_step) or width * step
    needed = (height - 1) * row_step + width * step if count else 0
    if data.size < needed:
        raise InputError(f'point cloud data has {data.size} bytes, {height}x{width} points '
                         f'of {step} bytes need {needed}')
    columns = []
    for name in ('x', 'y', 'z'):
        field = fields.get(name)
        if field is None or int(field.datatype) not in _FLOAT_TYPES:
            raise InputError(f'point cloud needs float32/float64 x, y, z fields; has '
                             f'{sorted(fields)}')
        dtype = np.dtype(order + _FLOAT_TYPES[int(field.datatype)])
        if int(field.offset) + dtype.itemsize > step:
            raise InputError(f'field {name} at offset {field.offset} exceeds point_step {step}')
        rows = np.lib.stride_tricks.as_strided(
            data[int(field.offset):], shape=(height, width, dtype.itemsize),
            strides=(row_step, step, 1)) if count else np.empty((0, 0, dtype.itemsize),
                                                                np.uint8)
        columns.append(np.ascontiguousarray(rows).view(dtype).reshape(-1).astype(np.float64))
    points = np.stack(columns, axis=1)
    return points[np.isfinite(points).all(axis=1)]
