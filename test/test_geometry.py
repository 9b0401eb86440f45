"""Pinhole geometry: intrinsics scaling and striding, back-projection in numpy and torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import (
    PinholeCamera,
    depth_to_points,
    depth_to_points_tensor,
    rigid_transform,
    scale_camera_matrices,
)


def test_strided_camera_maps_pixels_back_to_the_full_grid() -> None:
    camera = PinholeCamera(100.0, 120.0, 31.5, 23.5, 64, 48)
    small = camera.strided(3)
    assert (small.width, small.height) == (22, 16)
    # Pixel u' of the strided image is pixel 3 u' of the full one: same ray.
    for u_small in (0, 5, 21):
        assert (u_small - small.cx) / small.fx == pytest.approx((3 * u_small - 31.5) / 100.0)


def test_scaling_like_image_proc_resize() -> None:
    camera = PinholeCamera(400.0, 410.0, 300.0, 200.0, 640, 480)
    assert camera.scaled(160, 240) == PinholeCamera(100.0, 205.0, 75.0, 100.0, 160, 240)
    k = (400.0, 0.0, 300.0, 0.0, 410.0, 200.0, 0.0, 0.0, 1.0)
    p = (400.0, 0.0, 300.0, -40.0, 0.0, 410.0, 200.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    k2, p2 = scale_camera_matrices(k, p, 0.25, 0.5)
    assert k2 == (100.0, 0.0, 75.0, 0.0, 205.0, 100.0, 0.0, 0.0, 1.0)
    assert p2 == (100.0, 0.0, 75.0, -10.0, 0.0, 205.0, 100.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def test_back_projection_by_hand_and_torch_twin_bitwise() -> None:
    depth = np.array([[1.0, 2.0], [np.nan, 4.0]], np.float32)
    camera = PinholeCamera(fx=2.0, fy=4.0, cx=0.5, cy=0.5, width=2, height=2)
    points = depth_to_points(depth, camera)
    np.testing.assert_allclose(points[0, 0], [-0.25, -0.125, 1.0])
    np.testing.assert_allclose(points[1, 1], [1.0, 0.5, 4.0])
    assert np.isnan(points[1, 0]).all()
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.1, 50.0, (37, 53)).astype(np.float32)
    camera = PinholeCamera(41.3, 39.9, 26.7, 18.2, 53, 37)
    twin = depth_to_points_tensor(torch.from_numpy(depth), camera).numpy()
    np.testing.assert_array_equal(twin, depth_to_points(depth, camera))
    with pytest.raises(InputError, match='does not match the camera size'):
        depth_to_points(depth[:-1], camera)


def test_rigid_transform_matches_the_rotation_matrix() -> None:
    # 90 degrees about z: x -> y, y -> -x
    half = math.sqrt(0.5)
    moved = rigid_transform(np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]]), (1.0, 0.0, -1.0),
                            (0.0, 0.0, 2 * half, 2 * half))  # normalised inside
    np.testing.assert_allclose(moved, [[1.0, 1.0, -1.0], [-1.0, 0.0, 0.0]], atol=1e-12)
    with pytest.raises(InputError, match='is not a quaternion'):
        rigid_transform(np.zeros((1, 3)), (0, 0, 0), (0, 0, 0, 0))
