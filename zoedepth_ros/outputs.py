"""Files we write for people and tools: depth arrays and images, point clouds; all atomic.

Every writer goes through a temporary file in the target directory and a rename, so an
interrupted run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from zoedepth_ros.errors import InputError

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm')


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary file, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (8/16-bit, grey or colour, alpha dropped)."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f'cannot decode {path} as an image')
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


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
