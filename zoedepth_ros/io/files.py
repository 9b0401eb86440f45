"""Image and point-cloud files: reading RGB and depth images, writing depth arrays, images and
PLY clouds. Every writer goes through :mod:`zoedepth_ros.io.atomic` (temporary name, rename),
so an interrupted run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from zoedepth_ros.errors import InputError
from zoedepth_ros.io.atomic import atomic_write

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm')


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (8/16-bit, grey or colour, alpha dropped)."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f'cannot decode {path} as an image')
    if image.dtype == np.uint16:
        image = np.right_shift(image, 8).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


def read_depth_png(path: str | os.PathLike[str], scale: float) -> np.ndarray:
    """(H, W) float32 metres from a uint16 PNG storing metres / ``scale``; 0 = invalid."""
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if stored is None or stored.dtype != np.uint16 or stored.ndim != 2:
        what = 'unreadable' if stored is None else f'{stored.dtype} with shape {stored.shape}'
        raise InputError(f'depth image {path} is {what}; expected a single-channel uint16 PNG')
    return stored.astype(np.float32) * np.float32(scale)


def write_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """PNG of an 8/16-bit grey or BGR image."""
    ok, encoded = cv2.imencode('.png', image)
    if not ok:
        raise InputError(f'cannot encode a {image.dtype} {image.shape} array as PNG')
    return atomic_write(path, lambda handle: handle.write(encoded.tobytes()))


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    return atomic_write(path, lambda handle: np.save(handle, array))


def write_ply(path: str | os.PathLike[str], points: np.ndarray,
              colors: np.ndarray | None = None) -> Path:
    """Binary little-endian PLY of (N, 3) float32 points with optional (N, 3) uint8 RGB."""
    points = np.ascontiguousarray(points, dtype='<f4').reshape(-1, 3)
    fields = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
    if colors is not None:
        fields += [('red', 'u1'), ('green', 'u1'), ('blue', 'u1')]
    vertices = np.empty(len(points), dtype=fields)
    vertices['x'], vertices['y'], vertices['z'] = points.T
    if colors is not None:
        colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        vertices['red'], vertices['green'], vertices['blue'] = colors.T
    properties = ''.join(
        f'property {"float" if kind == "<f4" else "uchar"} {name}\n' for name, kind in fields)
    header = (f'ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\n'
              f'{properties}end_header\n').encode()
    return atomic_write(path, lambda handle: (handle.write(header),
                                              handle.write(vertices.tobytes())))
