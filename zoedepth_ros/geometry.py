"""Pinhole camera geometry: intrinsics, their scaling, and back-projection (numpy and torch).

Conventions: pixel (u, v) = (column, row) with the centre of the top-left pixel at (0, 0);
points are in the camera optical frame (x right, y down, z forward); depth is the z
coordinate in metres (REP 118), not the length of the pixel ray. Back-projection follows
depth_image_proc's ``convertDepth``: X = (u - cx) Z / fx, Y = (v - cy) Z / fy, Z = depth; the
numpy and torch versions below do the same float32 operations in the same order.
:func:`rigid_transform` moves points between frames (a fixed extrinsic or a tf2 transform).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from zoedepth_ros.errors import InputError


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of an image of ``width`` x ``height`` pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values) or self.fx <= 0 or self.fy <= 0:
            msg = f'invalid intrinsics fx={self.fx} fy={self.fy} cx={self.cx} cy={self.cy}'
            raise InputError(msg + '; expected finite values and positive focal lengths')
        if self.width <= 0 or self.height <= 0:
            raise InputError(f'invalid image size {self.width}x{self.height}')

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> PinholeCamera:
        """Square-pixel camera with horizontal field of view ``hfov_deg``, centred."""
        if not 0.0 < hfov_deg < 180.0:
            raise InputError(f'horizontal field of view must be in (0, 180) degrees, '
                             f'got {hfov_deg}')
        fx = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(fx, fx, (width - 1) / 2.0, (height - 1) / 2.0, width, height)

    @property
    def matrix(self) -> np.ndarray:
        """3x3 intrinsic matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> PinholeCamera:
        """Intrinsics for the same view resampled to ``width`` x ``height`` (image_proc)."""
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy,
                             width, height)

    def strided(self, stride: int) -> PinholeCamera:
        """Intrinsics of the image sampled at every ``stride``-th pixel (u' = u / stride)."""
        return PinholeCamera(self.fx / stride, self.fy / stride, self.cx / stride,
                             self.cy / stride, -(-self.width // stride),
                             -(-self.height // stride))


def scale_camera_matrices(k: tuple[float, ...], p: tuple[float, ...], sx: float, sy: float
                          ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Row-major K (3x3) and P (3x4) of an image resampled by (sx, sy), as image_proc's resize.

    K: fx, cx scale by sx and fy, cy by sy. P: fx, cx and Tx (p[3]) by sx, fy, cy by sy.
    """
    k_out, p_out = list(k), list(p)
    for index in (0, 2):
        k_out[index] *= sx
    for index in (4, 5):
        k_out[index] *= sy
    for index in (0, 2, 3):
        p_out[index] *= sx
    for index in (5, 6):
        p_out[index] *= sy
    return tuple(k_out), tuple(p_out)


def _check_size(shape: tuple[int, ...], camera: PinholeCamera) -> None:
    if len(shape) != 2 or tuple(shape) != (camera.height, camera.width):
        raise InputError(f'depth of shape {tuple(shape)} does not match the camera size '
                         f'{camera.height}x{camera.width}')


def depth_to_points(depth_m: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """Back-project a depth map to points in the optical frame.

    Args:
        depth_m: (H, W) z-depth in metres; NaN/inf stay invalid in the output.
        camera: intrinsics of an H x W image.

    Returns:
        (H, W, 3) float32 array of x, y, z: X = (u - cx) Z / fx, Y = (v - cy) Z / fy.
    """
    _check_size(depth_m.shape, camera)
    z = depth_m.astype(np.float32, copy=False)
    u = (np.arange(camera.width, dtype=np.float32) - np.float32(camera.cx)) / np.float32(camera.fx)
    v = np.arange(camera.height, dtype=np.float32) - np.float32(camera.cy)
    v /= np.float32(camera.fy)
    points = np.empty(z.shape + (3,), dtype=np.float32)
    np.multiply(z, u[None, :], out=points[..., 0])
    np.multiply(z, v[:, None], out=points[..., 1])
    points[..., 2] = z
    return points


def depth_to_points_tensor(depth: torch.Tensor, camera: PinholeCamera,
                           out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`depth_to_points` in torch, on ``depth``'s device.

    Args:
        depth: (H, W) float32 z-depth in metres.
        camera: intrinsics of an H x W image.
        out: optional (H, W, C >= 3) float32 tensor whose first three channels receive x, y, z.

    Returns:
        (H, W, 3) points, or ``out``.
    """
    _check_size(tuple(depth.shape), camera)
    f32 = np.float32  # the same float32 rounding of the intrinsics as the numpy version
    u = (torch.arange(camera.width, dtype=torch.float32, device=depth.device)
         - float(f32(camera.cx))) / float(f32(camera.fx))
    v = (torch.arange(camera.height, dtype=torch.float32, device=depth.device)
         - float(f32(camera.cy))) / float(f32(camera.fy))
    if out is None:
        out = torch.empty((*depth.shape, 3), dtype=torch.float32, device=depth.device)
    torch.mul(depth, u[None, :], out=out[..., 0])
    torch.mul(depth, v[:, None], out=out[..., 1])
    out[..., 2] = depth
    return out


def rigid_transform(points: np.ndarray, translation: tuple[float, float, float],
                    quaternion: tuple[float, float, float, float]) -> np.ndarray:
    """``R(q) p + t`` for (N, 3) points; q = (x, y, z, w), normalised here.

    Raises:
        InputError: a zero or non-finite quaternion.
    """
    q = np.asarray(quaternion, dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if not (math.isfinite(norm) and norm > 1e-9):
        raise InputError(f'extrinsic rotation {tuple(quaternion)} is not a quaternion')
    x, y, z, w = q / norm
    rotation = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    return points @ rotation.T + np.asarray(translation, dtype=np.float64)
