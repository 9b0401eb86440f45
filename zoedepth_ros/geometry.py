"""Pinhole camera geometry: intrinsics, scaling and back-projection (numpy, ROS-free).

Conventions: pixel (u, v) = (column, row) with the centre of the top-left pixel at (0, 0);
points are in the camera optical frame (x right, y down, z forward); depth is the z
coordinate in metres (REP 118), not the length of the pixel ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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

    def resized(self, width: int, height: int) -> PinholeCamera:
        """Intrinsics for the same view resampled to ``width`` x ``height``.

        Scales like image_proc's resize: fx, cx by width ratio; fy, cy by height ratio.
        """
        sx = width / self.width
        sy = height / self.height
        return PinholeCamera(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy,
                             width, height)


def depth_to_points(depth_m: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """Back-project a depth map to points in the optical frame.

    Args:
        depth_m: (H, W) z-depth in metres; NaN/inf stay invalid in the output.
        camera: intrinsics of an H x W image.

    Returns:
        (H, W, 3) float32 array of x, y, z: X = (u - cx) Z / fx, Y = (v - cy) Z / fy.
    """
    if depth_m.ndim != 2 or depth_m.shape != (camera.height, camera.width):
        raise InputError(f'depth of shape {depth_m.shape} does not match the camera size '
                         f'{camera.height}x{camera.width}')
    z = depth_m.astype(np.float32, copy=False)
    u = (np.arange(camera.width, dtype=np.float32) - np.float32(camera.cx)) / np.float32(camera.fx)
    v = np.arange(camera.height, dtype=np.float32) - np.float32(camera.cy)
    v /= np.float32(camera.fy)
    points = np.empty(z.shape + (3,), dtype=np.float32)
    np.multiply(z, u[None, :], out=points[..., 0])
    np.multiply(z, v[:, None], out=points[..., 1])
    points[..., 2] = z
    return points
