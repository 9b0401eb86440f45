"""Simulated sparse metric sensors (``zoedepth synth --format bag --sparse``): a 16-beam spinning
lidar and a sparse time-of-flight grid, sampled from the exact rendered depth of each frame.

``lidar16`` (bag topic ``/lidar/points``, ``sensor_msgs/PointCloud2``: one row, fields x, y, z
float32 at offsets 0, 4, 8, point_step 12, little-endian, ``is_dense``; in the camera's optical
frame, same frame id and stamp as the colour image):
    A spinning lidar at the camera's optical centre whose spin axis is the camera's y axis
    (rigidly mounted: it tilts with the camera). Beams at elevations -15, -13, ..., +15 degrees
    above the camera's x-z plane (up = -y), fired every 0.2 degrees of azimuth (0 = straight
    ahead, positive towards +x); only rays that cross the image (0.001 pixel inside its outer
    pixel edges) are kept. Each ray takes the exact depth of the pixel it passes through
    (nearest pixel centre): the point lies on the beam at that pixel's z plus the range noise,
    so the lidar measures the scene exactly as the ground-truth depth image holds it and its
    only error against ``/camera/depth/image`` is the noise model below. (Casting the rays
    into the mesh instead adds a sub-pixel sampling error that dominates at small sizes: in
    the first outdoor frames of seed 0 only 50-65 % of exact hits are within 5 sigma of their
    pixel's depth at 64x48, 94-97 % at 640x480.) Invalid depth (sky, beyond the scene's range)
    gives no return. The measured range is the true range plus Gaussian noise along the beam
    (sigma 0.02 m indoors, 0.05 m outdoors); 10 % of returns drop out at random; a measured
    range beyond the maximum range (10 m indoors, 80 m outdoors) gives no return. Points come
    in firing order: azimuth from left to right, within one azimuth the beams bottom to top.
``tof`` (bag topic ``/sparse/depth``, ``sensor_msgs/Image`` 32FC1 metres, NaN = no sample; same
size, frame id and stamp as the colour image):
    Samples on a regular grid, every 8th pixel in both directions starting at row 4, column 4,
    taken from the exact depth at those pixels: z * (1 + 0.01 n) with n standard normal, 10 %
    random dropouts, no sample where the depth is invalid or the measured radial distance
    exceeds 5 m (the ToF's range).

Every frame's sensor randomness comes from its own generator seeded with (seed, domain, frame
index, sensor), so readings depend on the seed only (not on ``workers`` or on other frames) and
the images are the same with or without a sparse sensor. The parameters are
:data:`LIDAR` / :data:`TOF`; :func:`describe` gives them as a mapping (stored in the bag's
``metadata.yaml`` under ``custom_data``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.synth.render import camera_rays

SPARSE_MODES = ('none', 'lidar16', 'tof')
_EDGE_MARGIN_PX = 1e-3  # rays this close to the image border could leave it in float32


@dataclass(frozen=True)
class LidarModel:
    """A spinning multi-beam lidar at the camera's optical centre.

    Attributes:
        elevations_deg: beam elevations above the camera's x-z plane (up = -y), bottom first.
        azimuth_step_deg: angle between firings around the spin (camera y) axis.
        range_sigma_m: standard deviation of the Gaussian range noise.
        dropout: probability that a return is lost.
        max_range_m: measured ranges beyond this give no return.
    """

    elevations_deg: tuple[float, ...] = tuple(-15.0 + 2.0 * beam for beam in range(16))
    azimuth_step_deg: float = 0.2
    range_sigma_m: float = 0.02
    dropout: float = 0.1
    max_range_m: float = 10.0


@dataclass(frozen=True)
class TofModel:
    """A time-of-flight camera aligned with the colour camera, sampled on a pixel grid.

    Attributes:
        grid_step: samples at every ``grid_step``-th row and column, from ``grid_step // 2``.
        relative_sigma: standard deviation of the multiplicative depth noise.
        dropout: probability that a sample is lost.
        max_range_m: measured radial distances beyond this give no sample.
    """

    grid_step: int = 8
    relative_sigma: float = 0.01
    dropout: float = 0.1
    max_range_m: float = 5.0


#: The lidar of each domain (range noise and maximum range differ).
LIDAR = {'indoor': LidarModel(range_sigma_m=0.02, max_range_m=10.0),
         'outdoor': LidarModel(range_sigma_m=0.05, max_range_m=80.0)}
TOF = TofModel()


def check_mode(mode: str) -> None:
    """InputError unless ``mode`` is one of :data:`SPARSE_MODES`."""
    if mode not in SPARSE_MODES:
        raise InputError(f'unknown sparse sensor {mode!r}; expected one of {SPARSE_MODES}')


def describe(mode: str, domain: str) -> dict[str, Any]:
    """The parameters of ``mode``'s sensor in ``domain`` as plain values (for metadata)."""
    check_mode(mode)
    if mode == 'lidar16':
        return {'sensor': mode, **asdict(LIDAR[domain])}
    if mode == 'tof':
        return {'sensor': mode, **asdict(TOF)}
    return {'sensor': mode}


@dataclass(frozen=True)
class LidarPattern:
    """The rays of a lidar that cross an image, in firing order.

    Attributes:
        rays: (N, 3) directions in the camera's optical frame, scaled to z = 1.
        rows, cols: (N,) the pixel each ray passes through (nearest pixel centre).
    """

    rays: np.ndarray
    rows: np.ndarray
    cols: np.ndarray


def lidar_pattern(camera: PinholeCamera, model: LidarModel) -> LidarPattern:
    """The rays of ``model`` that cross ``camera``'s image: azimuth from left to right, within
    one azimuth the beams bottom to top.

    A ray at elevation e and azimuth a is (tan a, -tan e / cos a, 1) and crosses the image
    plane at u = cx + fx tan a, v = cy - fy tan e / cos a; it is kept when
    -0.5 < u < W - 0.5 and -0.5 < v < H - 0.5 (0.001 pixel inside the outer pixel edges).
    """
    steps = math.ceil(90.0 / model.azimuth_step_deg) - 1  # |azimuth| < 90 deg: in front
    azimuth = np.radians(np.arange(-steps, steps + 1) * model.azimuth_step_deg)[:, None]
    elevation = np.radians(np.asarray(model.elevations_deg, dtype=np.float64))[None, :]
    x = np.broadcast_to(np.tan(azimuth), (azimuth.size, elevation.size)).reshape(-1)
    y = (-np.tan(elevation) / np.cos(azimuth)).reshape(-1)  # elevation atan(-y / |(x, 1)|)
    u, v = camera.cx + camera.fx * x, camera.cy + camera.fy * y
    edge = 0.5 - _EDGE_MARGIN_PX
    inside = ((u > -edge) & (u < camera.width - 1 + edge) & (v > -edge)
              & (v < camera.height - 1 + edge))
    rays = np.stack([x[inside], y[inside], np.ones(int(inside.sum()))], axis=1)
    return LidarPattern(rays, np.floor(v[inside] + 0.5).astype(np.int64),
                        np.floor(u[inside] + 0.5).astype(np.int64))


def lidar_points(depth_m: np.ndarray, camera: PinholeCamera, model: LidarModel,
                 rng: np.random.Generator) -> np.ndarray:
    """One scan of ``model`` in the exact depth image ``depth_m`` (see the module docstring).

    Args:
        depth_m: (H, W) exact z-depth in metres, NaN invalid.
        camera: intrinsics of the image.
        model: beams, noise, dropout and range.
        rng: this frame's sensor randomness (N normals, then N uniforms, one per ray).

    Returns:
        (M, 3) float32 points in the optical frame, in firing order.
    """
    pattern = lidar_pattern(camera, model)
    rays = pattern.rays
    noise = rng.standard_normal(len(rays))
    kept = rng.random(len(rays)) >= model.dropout
    length = np.linalg.norm(rays, axis=1)  # the range of depth z along a ray is z * |ray|
    depth = depth_m[pattern.rows, pattern.cols].astype(np.float64)
    measured = depth * length + model.range_sigma_m * noise
    with np.errstate(invalid='ignore'):
        valid = kept & (measured > 0.0) & (measured <= model.max_range_m)  # NaN: False
    scale = measured[valid] / length[valid]
    return (rays[valid] * scale[:, None]).astype(np.float32)


def tof_image(depth_m: np.ndarray, camera: PinholeCamera, model: TofModel,
              rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 sparse ToF depth in metres, NaN off the grid and where no sample.

    Args:
        depth_m: (H, W) exact z-depth, NaN invalid.
        camera: intrinsics of the image (for the radial distance of each pixel).
        model: grid, noise, dropout and range.
        rng: this frame's sensor randomness (normals, then uniforms, one per grid point).
    """
    height, width = depth_m.shape
    rows = np.arange(model.grid_step // 2, height, model.grid_step)
    cols = np.arange(model.grid_step // 2, width, model.grid_step)
    grid = np.ix_(rows, cols)
    exact = depth_m[grid].astype(np.float64)
    noise = rng.standard_normal(exact.shape)
    kept = rng.random(exact.shape) >= model.dropout
    measured = exact * (1.0 + model.relative_sigma * noise)
    length = np.linalg.norm(camera_rays(camera), axis=1).reshape(height, width)[grid]
    with np.errstate(invalid='ignore'):
        valid = kept & (measured > 0.0) & (measured * length <= model.max_range_m)
    image = np.full((height, width), np.nan, dtype=np.float32)
    image[grid] = np.where(valid, measured, np.nan)
    return image


def measure(mode: str, domain: str, depth_m: np.ndarray, camera: PinholeCamera,
            rng: np.random.Generator) -> np.ndarray | None:
    """One frame's reading of ``mode``'s sensor: lidar (M, 3) float32 points, a ToF (H, W)
    float32 image, or None for 'none'.

    Args:
        mode: one of :data:`SPARSE_MODES`.
        domain: 'indoor' or 'outdoor' (selects the lidar model).
        depth_m: the frame's exact depth image.
        camera: its intrinsics.
        rng: this frame's sensor randomness.
    """
    check_mode(mode)
    if mode == 'lidar16':
        return lidar_points(depth_m, camera, LIDAR[domain], rng)
    if mode == 'tof':
        return tof_image(depth_m, camera, TOF, rng)
    return None
