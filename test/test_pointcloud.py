"""PointCloud2 packing: byte layout, depth_image_proc formula, layouts and stride."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from oracles import cloud_to_array, gated_cloud_reference

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.pipeline.predict import gate_depth
from zoedepth_ros.pointcloud import CloudOptions, pack_point_cloud


def test_two_by_two_by_hand() -> None:
    depth = np.array([[1.0, 2.0], [np.nan, 4.0]], np.float32)
    camera = PinholeCamera(fx=2.0, fy=4.0, cx=0.5, cy=0.5, width=2, height=2)
    rgb = np.array([[[10, 20, 30], [255, 0, 1]], [[0, 0, 0], [1, 2, 3]]], np.uint8)
    cloud = pack_point_cloud(depth, camera, CloudOptions(stride=1), rgb=rgb)
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (2, 2, 16, 32)
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('rgb', 12, 7, 1)]
    assert cloud.is_dense is False and cloud.is_bigendian is False and len(cloud.data) == 64
    points = cloud_to_array(cloud)
    # X = (u - cx) Z / fx, Y = (v - cy) Z / fy
    np.testing.assert_allclose([points['x'][0, 0], points['y'][0, 0], points['z'][0, 0]],
                               [-0.25, -0.125, 1.0])
    np.testing.assert_allclose([points['x'][0, 1], points['y'][0, 1]], [0.5, -0.25])
    np.testing.assert_allclose([points['x'][1, 1], points['y'][1, 1]], [1.0, 0.5])
    assert all(math.isnan(points[c][1, 0]) for c in 'xyz')
    # rgb holds 0x00RRGGBB as float bits; in memory B, G, R, 0.
    assert cloud.data[12:16] == bytes([30, 20, 10, 0])
    assert points['rgb'].view(np.uint32)[0, 1] == 0x00FF0001


def test_dense_layout_keeps_valid_points_in_one_row() -> None:
    depth = np.array([[1.0, np.nan], [np.inf, 4.0]], np.float32)
    camera = PinholeCamera(2.0, 2.0, 0.5, 0.5, 2, 2)
    cloud = pack_point_cloud(depth, camera, CloudOptions(stride=1, organized=False, color=False))
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (1, 2, 12, 24)
    assert cloud.is_dense is True and [f.name for f in cloud.fields] == ['x', 'y', 'z']
    np.testing.assert_allclose(cloud_to_array(cloud)['z'], [[1.0, 4.0]])
    empty = pack_point_cloud(np.full((2, 2), np.nan), camera,
                             CloudOptions(stride=1, organized=False, color=False))
    assert (empty.width, empty.row_step, empty.data) == (0, 0, b'')


def _compare(fast: object, slow: object) -> None:
    assert (fast.height, fast.width, fast.point_step, fast.row_step, fast.is_dense,
            fast.fields) == (slow.height, slow.width, slow.point_step, slow.row_step,
                             slow.is_dense, slow.fields)
    fast_points, slow_points = cloud_to_array(fast), cloud_to_array(slow)
    for axis in 'xyz':
        np.testing.assert_allclose(fast_points[axis], slow_points[axis], rtol=2e-6, atol=1e-6,
                                   equal_nan=True)
    if fast.point_step == 16:
        np.testing.assert_array_equal(fast_points['rgb'].view(np.uint32),
                                      slow_points['rgb'].view(np.uint32))


@pytest.mark.parametrize('stride', [1, 2, 3])
@pytest.mark.parametrize('organized', [True, False])
@pytest.mark.parametrize('color', [True, False])
def test_vectorised_matches_per_point_reference(stride: int, organized: bool,
                                                color: bool) -> None:
    rng = np.random.default_rng(stride)
    height, width = 13, 17
    depth = rng.uniform(0.05, 12.0, (height, width)).astype(np.float32)
    depth[rng.random((height, width)) < 0.1] = np.nan
    std = (depth * rng.uniform(0.0, 0.3, depth.shape)).astype(np.float32)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    camera = PinholeCamera(11.0, 12.5, 8.3, 6.1, width, height)
    options = CloudOptions(stride=stride, organized=organized, color=color)
    gated = gate_depth(torch.from_numpy(depth), 0.5, 10.0, torch.from_numpy(std), 0.2)
    fast = pack_point_cloud(gated, camera, options, rgb=rgb)
    slow = gated_cloud_reference(depth, camera, options, rgb=rgb, std_m=std, min_range=0.5,
                                 max_range=10.0, max_rel_std=0.2)
    _compare(fast, slow)
    if organized:
        assert (fast.height, fast.width) == (-(-height // stride), -(-width // stride))


def test_bad_options_and_missing_inputs() -> None:
    camera = PinholeCamera(1.0, 1.0, 0.0, 0.0, 2, 2)
    with pytest.raises(InputError, match='stride'):
        CloudOptions(stride=0)
    with pytest.raises(InputError, match='RGB image'):
        pack_point_cloud(np.ones((2, 2)), camera, CloudOptions(stride=1, color=True))
    with pytest.raises(InputError, match='does not match the camera size'):
        pack_point_cloud(np.ones((3, 2)), camera, CloudOptions(stride=1, color=False))
