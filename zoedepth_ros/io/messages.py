"""Message <-> numpy conversion, duck-typed and ROS-free.

Readers take any object with the fields of ``sensor_msgs`` Image / CompressedImage /
CameraInfo (``height``, ``width``, ``encoding``, ``is_bigendian``, ``step``, ``data``;
``format``; ``k``, ``d``, ``r``, ``p``, ``distortion_model``), so the same code serves rclpy
messages in the node and ``rosbags`` dataclasses in the bag tools. Writers return plain
dataclasses holding the field values of an Image or CameraInfo; ``ros/convert.py`` copies them
into messages.

Colour conversion follows cv_bridge's semantics (which this module replaces): 16-bit colour is
scaled to 8 bits by 255/65535 with rounding, mono is replicated to three channels, ``yuv422``
is UYVY and ``yuv422_yuy2`` is YUYV. Depth follows REP 118: 32FC1 metres (NaN invalid) or
16UC1 millimetres (0 invalid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera, scale_camera_matrices
from zoedepth_ros.io.codecs import compressed_image_size
from zoedepth_ros.io.visualize import colorize_depth

# encoding -> (channels, bytes per channel)
_LAYOUT: dict[str, tuple[int, int]] = {
    'rgb8': (3, 1), 'bgr8': (3, 1), 'rgba8': (4, 1), 'bgra8': (4, 1), 'mono8': (1, 1),
    'rgb16': (3, 2), 'bgr16': (3, 2), 'rgba16': (4, 2), 'bgra16': (4, 2), 'mono16': (1, 2),
    'yuv422': (2, 1), 'uyvy': (2, 1), 'yuv422_yuy2': (2, 1), 'yuyv': (2, 1),
}
_YUV_CODES = {
    'yuv422': cv2.COLOR_YUV2RGB_UYVY, 'uyvy': cv2.COLOR_YUV2RGB_UYVY,
    'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2, 'yuyv': cv2.COLOR_YUV2RGB_YUY2,
}
_RGB_CODES = {
    'bgr8': cv2.COLOR_BGR2RGB, 'rgba8': cv2.COLOR_RGBA2RGB, 'bgra8': cv2.COLOR_BGRA2RGB,
    'mono8': cv2.COLOR_GRAY2RGB, 'bgr16': cv2.COLOR_BGR2RGB, 'rgba16': cv2.COLOR_RGBA2RGB,
    'bgra16': cv2.COLOR_BGRA2RGB, 'mono16': cv2.COLOR_GRAY2RGB,
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUT)
"""Image encodings :func:`image_to_rgb` accepts."""
DEPTH_ENCODINGS: tuple[str, ...] = ('32FC1', '16UC1')
"""Depth encodings read by :func:`depth_image_from_msg` and written by :func:`encode_depth`."""
MAX_UINT16_MM = 65535
FLOAT32 = 7
"""``sensor_msgs/PointField`` datatype of float32."""


@dataclass(frozen=True)
class ImageFields:
    """Field values of a ``sensor_msgs/Image`` (everything but the header).

    ``data`` is bytes or a byte view of the array it was encoded from (no copy).
    """

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes | memoryview


@dataclass(frozen=True)
class CameraInfoFields:
    """Field values of a ``sensor_msgs/CameraInfo`` (header, binning and roi left default).

    ``k`` is the row-major 3x3 K, ``r`` the 3x3 rectification, ``p`` the row-major 3x4 P.
    """

    width: int
    height: int
    distortion_model: str
    d: tuple[float, ...]
    k: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]

    @property
    def camera(self) -> PinholeCamera:
        """Intrinsics from P (what depth_image_proc's PinholeCameraModel back-projects with)."""
        return PinholeCamera(self.p[0], self.p[5], self.p[2], self.p[6], self.width, self.height)


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


def stamp_ns(header: Any) -> int:
    """Nanoseconds of a ``std_msgs/Header`` stamp (rclpy or rosbags message)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


# --------------------------------------------------------------------------------------------
# Reading images


def as_uint8(data: Any) -> np.ndarray:
    """Flat uint8 view of a message's ``data`` (bytes, array.array('B'), numpy or list)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def _check_size(height: int, width: int, max_pixels: int | None) -> None:
    if height <= 0 or width <= 0:
        raise InputError(f'image has size {width}x{height}; expected a positive width and '
                         'height')
    if max_pixels and height * width > max_pixels:
        raise InputError(f'image of {width}x{height} = {height * width} pixels exceeds the limit '
                         f'of {max_pixels} pixels; downscale it upstream or raise '
                         'max_input_pixels')


def _pixel_rows(msg: Any, channels: int, itemsize: int, max_pixels: int | None) -> np.ndarray:
    """(H, W, C) array of ``msg``'s pixels honouring ``step`` padding and byte order."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    _check_size(height, width, max_pixels)
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise InputError(f'{msg.encoding} image step {step} is smaller than width x bytes per '
                         f'pixel = {width} x {channels * itemsize} = {row_bytes}')
    data = as_uint8(msg.data)
    if data.size != step * height:
        raise InputError(f'{msg.encoding} image data has {data.size} bytes; expected step x '
                         f'height = {step} x {height} = {step * height} (truncated or malformed '
                         'message)')
    rows = data.reshape(height, step)[:, :row_bytes]
    if itemsize == 1:
        return rows.reshape(height, width, channels)
    dtype = np.dtype('>u2' if msg.is_bigendian else '<u2')
    return rows.view(dtype).reshape(height, width, channels).astype(np.uint16)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """16-bit to 8-bit like cv_bridge: round(x * 255 / 65535), computed exactly in integers."""
    return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)


def image_to_rgb(msg: Any, max_pixels: int | None = None) -> np.ndarray:
    """Convert an Image message to an RGB array.

    Args:
        msg: object with the fields of ``sensor_msgs/Image`` in one of
            :data:`SUPPORTED_ENCODINGS`.
        max_pixels: refuse images with more pixels than this (None or 0: no limit).

    Returns:
        (H, W, 3) uint8 RGB array, C-contiguous, owning its memory.

    Raises:
        InputError: unsupported encoding, bad size, ``step`` or data length.
    """
    encoding = str(msg.encoding)
    if encoding not in _LAYOUT:
        raise InputError(f'unsupported image encoding {encoding!r}; expected one of '
                         f'{list(SUPPORTED_ENCODINGS)}')
    channels, itemsize = _LAYOUT[encoding]
    if encoding in _YUV_CODES and int(msg.width) % 2:
        raise InputError(f'{encoding} image width {msg.width} must be even (2 pixels share '
                         'chroma)')
    pixels = _pixel_rows(msg, channels, itemsize, max_pixels)
    if encoding in _YUV_CODES:
        return cv2.cvtColor(np.ascontiguousarray(pixels), _YUV_CODES[encoding])
    pixels = _to_uint8(pixels) if itemsize == 2 else np.ascontiguousarray(pixels)
    code = _RGB_CODES.get(encoding)
    if code is None:  # rgb8 / rgb16: a copy, so the result never aliases the message buffer
        return pixels if itemsize == 2 else pixels.copy()
    return cv2.cvtColor(pixels, code)


def compressed_to_rgb(msg: Any, max_pixels: int | None = None) -> np.ndarray:
    """Decode a CompressedImage (JPEG or PNG) to an (H, W, 3) uint8 RGB array.

    ``format`` is informational ("jpeg", "png", "rgb8; jpeg compressed bgr8"); the codec is
    detected from the data. compressedDepth payloads are refused. ``max_pixels`` is checked
    against the size in the header, before decoding.
    """
    fmt = str(getattr(msg, 'format', ''))
    if 'compresseddepth' in fmt.lower().replace(' ', ''):
        raise InputError(f'CompressedImage format {fmt!r} is a depth image; expected a colour '
                         'jpeg or png image')
    data = as_uint8(msg.data)
    try:
        width, height, _ = compressed_image_size(data)
    except InputError as err:
        raise InputError(f'cannot decode CompressedImage (format {fmt!r}, {data.size} bytes): '
                         f'{err}') from None
    _check_size(height, width, max_pixels)  # before decoding: the header is enough
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)  # (IMREAD_COLOR_RGB needs OpenCV >= 4.11)
    if bgr is None or bgr.shape[:2] != (height, width):
        raise InputError(f'cannot decode CompressedImage (format {fmt!r}, {data.size} bytes); '
                         'expected a complete jpeg or png image')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def depth_image_from_msg(msg: Any) -> np.ndarray:
    """Read a depth Image (32FC1 metres or 16UC1 millimetres).

    Returns:
        (H, W) float32 metres; invalid pixels (NaN, inf, <= 0 or 16UC1 zero) are NaN.
    """
    encoding = str(msg.encoding)
    if encoding not in DEPTH_ENCODINGS:
        raise InputError(f'unsupported depth encoding {encoding!r}; expected one of '
                         f'{list(DEPTH_ENCODINGS)}')
    if encoding == '16UC1':
        millimetres = _pixel_rows(msg, 1, 2, None)[..., 0]
        depth = millimetres.astype(np.float32) * np.float32(1e-3)
    else:
        raw = _pixel_rows(msg, 4, 1, None)
        dtype = np.dtype('>f4' if msg.is_bigendian else '<f4')
        depth = np.ascontiguousarray(raw).view(dtype)[..., 0].astype(np.float32, copy=False)
    # One select into a new array, faster than a masked assignment into a copy; both
    # comparisons are False for NaN.
    return np.where((depth > 0) & (depth < np.inf), depth, np.float32(np.nan))


# --------------------------------------------------------------------------------------------
# CameraInfo


def _floats(values: Any, count: int, name: str) -> tuple[float, ...]:
    result = tuple(float(v) for v in values)
    if len(result) != count:
        raise InputError(f'CameraInfo {name} has {len(result)} values; expected {count}')
    return result


def camera_info_fields(msg: Any) -> CameraInfoFields:
    """Read and check a CameraInfo; fill P = [K | 0] when the driver left P all zeros.

    Raises:
        InputError: wrong array lengths, or zero/negative/NaN focal lengths in P (and K).
    """
    k = _floats(msg.k, 9, 'k')
    p = _floats(msg.p, 12, 'p')
    if not any(p):
        p = (k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0)
    focal = (p[0], p[5], p[2], p[6])
    if not all(math.isfinite(v) for v in focal) or p[0] <= 0 or p[5] <= 0:
        raise InputError(f'CameraInfo has fx={p[0]} fy={p[5]} cx={p[2]} cy={p[6]} in P (and K '
                         f'fx={k[0]} fy={k[4]}); expected finite values and positive focal '
                         'lengths (is the camera calibrated?)')
    return CameraInfoFields(int(msg.width), int(msg.height), str(msg.distortion_model),
                            tuple(float(v) for v in msg.d), k, _floats(msg.r, 9, 'r'), p)


def check_camera_info_size(fields: CameraInfoFields, width: int, height: int) -> None:
    """Refuse a CameraInfo stated for an image of another shape.

    0 x 0 means "this image". A CameraInfo of another resolution with the same aspect ratio
    (to one pixel) is accepted: drivers often calibrate at full resolution and publish
    downscaled images; :func:`scale_camera_info` then scales it as image_proc's resize does.

    Raises:
        InputError: naming both sizes.
    """
    if not (fields.width or fields.height) or (fields.width, fields.height) == (width, height):
        return
    if fields.width and fields.height and abs(fields.height * width / fields.width
                                              - height) <= 1.0:
        return
    raise InputError(f'CameraInfo is for {fields.width}x{fields.height} images but the image '
                     f'is {width}x{height} (another aspect ratio); publish the CameraInfo of '
                     'this image')


def camera_info_from_camera(camera: PinholeCamera) -> CameraInfoFields:
    """Distortion-free CameraInfo fields for synthesised intrinsics (e.g. from a field of view)."""
    k = (camera.fx, 0.0, camera.cx, 0.0, camera.fy, camera.cy, 0.0, 0.0, 1.0)
    p = (camera.fx, 0.0, camera.cx, 0.0, 0.0, camera.fy, camera.cy, 0.0, 0.0, 0.0, 1.0, 0.0)
    identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    return CameraInfoFields(camera.width, camera.height, 'plumb_bob', (0.0,) * 5, k, identity, p)


def scale_camera_info(fields: CameraInfoFields, width: int, height: int) -> CameraInfoFields:
    """CameraInfo for the same view resampled to ``width`` x ``height`` (image_proc resize).

    k[0], k[2] and p[0], p[2], p[3] scale by sx = width / fields.width; k[4], k[5] and p[5],
    p[6] by sy. ``d``, ``r`` and ``distortion_model`` are copied.
    """
    if not fields.width or not fields.height:
        fields = CameraInfoFields(width, height, fields.distortion_model, fields.d, fields.k,
                                  fields.r, fields.p)
    k, p = scale_camera_matrices(fields.k, fields.p, width / fields.width,
                                 height / fields.height)
    return CameraInfoFields(width, height, fields.distortion_model, fields.d, k, fields.r, p)


# --------------------------------------------------------------------------------------------
# Writing images


def byte_view(array: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array without copying them."""
    return array.reshape(-1).view(np.uint8).data


def encode_float_image(values: np.ndarray) -> ImageFields:
    """32FC1 little-endian image of an (H, W) float array (NaN stays NaN)."""
    array = np.ascontiguousarray(values, dtype='<f4')
    if array.ndim != 2:
        raise InputError(f'expected an (H, W) array, got shape {array.shape}')
    height, width = array.shape
    return ImageFields(height, width, '32FC1', 0, width * 4, byte_view(array))


def depth_to_millimetres(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) uint16 millimetres, rounded; 0 (invalid, REP 118) for NaN, inf, non-positive
    depth and depth beyond 65.535 m, which 16 bits cannot hold (never clamped to a wrong
    valid value)."""
    millimetres = np.rint(np.asarray(depth_m, dtype=np.float32) * np.float32(1000.0))
    millimetres[~((millimetres > 0) & (millimetres <= MAX_UINT16_MM))] = 0.0  # NaN too
    return millimetres.astype('<u2')


def encode_depth(depth_m: np.ndarray, encoding: str = '32FC1') -> ImageFields:
    """Depth image fields: 32FC1 metres (NaN invalid) or 16UC1 millimetres (0 invalid).

    Args:
        depth_m: (H, W) float depth in metres, NaN where invalid.
        encoding: '32FC1' or '16UC1'.
    """
    if encoding == '32FC1':
        return encode_float_image(depth_m)
    if encoding != '16UC1':
        raise InputError(f'unsupported depth output encoding {encoding!r}; expected one of '
                         f'{list(DEPTH_ENCODINGS)}')
    millimetres = depth_to_millimetres(depth_m)
    if millimetres.ndim != 2:
        raise InputError(f'expected an (H, W) depth array, got shape {millimetres.shape}')
    height, width = millimetres.shape
    return ImageFields(height, width, '16UC1', 0, width * 2, byte_view(millimetres))


def encode_preview(depth_m: np.ndarray, min_m: float, max_m: float) -> ImageFields:
    """bgr8 colour map of depth for viewing: near red, far blue (turbo on inverse depth).

    The scale is fixed to [min_m, max_m] so colours do not flicker between frames; invalid
    pixels are black. Never feed this to consumers expecting depth.
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    bgr = colorize_depth(depth, min_m, max_m)
    height, width = depth.shape
    return ImageFields(height, width, 'bgr8', 0, width * 3, bgr.tobytes())


def pack_xyz(points: np.ndarray) -> PackedCloud:
    """One-row PointCloud2 fields of (N, 3) points: x, y, z float32 little-endian, point_step
    12 (a sparse sensor's returns; ``is_dense`` when every point is finite)."""
    array = np.ascontiguousarray(points, dtype='<f4')
    if array.ndim != 2 or array.shape[1] != 3:
        raise InputError(f'expected (N, 3) points, got shape {array.shape}')
    count = len(array)
    return PackedCloud(1, count, XYZ_FIELDS, 12, 12 * count, bool(np.isfinite(array).all()),
                       byte_view(array))


def image_fields(pixels: np.ndarray, encoding: str) -> ImageFields:
    """Image fields of an 8-bit (H, W, C) array, for building test or replay messages."""
    array = np.ascontiguousarray(pixels)
    height, width = array.shape[:2]
    return ImageFields(height, width, encoding, 0, array.strides[0], array.tobytes())

