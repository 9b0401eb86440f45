"""Consumers' reader as the oracle: sensor_msgs_py.point_cloud2 reads the node's clouds.

Most consumers of a PointCloud2 in Python (and the C++ iterators they mirror) read it with
``sensor_msgs_py.point_cloud2.read_points``. The clouds here are built as the node builds them
(pack on the depth's device, the node's message builder, serialised and deserialised as on the
wire) from a depth map with NaN, out-of-range and valid pixels, in every layout the node
offers. The reader must see the points the project's own unpacking sees: the structured view
of the packed bytes, and ``cloud_xyz`` (the sparse-input reader, which drops NaN points).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from oracles import cloud_to_array
from rclpy.serialization import deserialize_message, serialize_message
from ros2_cli import require_tools
from sensor_msgs.msg import PointCloud2

from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.pipeline.predict import gate_depth
from zoedepth_ros.pointcloud import CloudOptions, cloud_xyz, pack_point_cloud
from zoedepth_ros.ros.convert import to_message

require_tools(('sensor_msgs_py',))

from sensor_msgs_py import point_cloud2  # noqa: E402 - after the skip that names its source


def _frame(height: int = 12, width: int = 16) -> tuple[np.ndarray, np.ndarray, PinholeCamera]:
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.5, 12.0, (height, width)).astype(np.float32)
    depth[2, 3] = np.nan      # the model's invalid
    depth[5, :4] = 20.0       # beyond max_range: gated to NaN
    depth[7, 9] = 0.05        # below min_range
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    camera = PinholeCamera(fx=14.0, fy=13.0, cx=7.5, cy=5.5, width=width, height=height)
    return depth, rgb, camera


@pytest.mark.parametrize('color', [False, True], ids=['xyz', 'xyzrgb'])
@pytest.mark.parametrize('organized', [True, False], ids=['organised', 'dense'])
@pytest.mark.parametrize('stride', [1, 2, 3])
def test_read_points_sees_the_projects_points(color: bool, organized: bool, stride: int) -> None:
    depth, rgb, camera = _frame()
    gated = gate_depth(torch.from_numpy(depth), min_range=0.1, max_range=10.0).numpy()
    packed = pack_point_cloud(gated, camera, CloudOptions(True, stride, organized, color), rgb)
    wire = serialize_message(to_message('points', packed, 0, 'camera_optical_frame'))
    msg = deserialize_message(wire, PointCloud2)
    ours = cloud_to_array(packed)
    names = ('x', 'y', 'z', 'rgb') if color else ('x', 'y', 'z')
    assert [f.name for f in msg.fields] == list(names)

    read = point_cloud2.read_points(msg, field_names=names, skip_nans=False)
    assert read.shape == (msg.height * msg.width,)
    for name in names:
        theirs = np.asarray(read[name], dtype=np.float32)
        mine = ours[name].reshape(-1)
        np.testing.assert_array_equal(theirs.view(np.uint32), mine.view(np.uint32), name)
    kept = gated[::stride, ::stride]
    valid = np.isfinite(kept)
    assert len(read) == (kept.size if organized else int(valid.sum()))
    assert np.isnan(read['z']).sum() == (kept.size - valid.sum() if organized else 0)
    if color:  # packed 0x00RRGGBB, as PCL and RViz unpack it
        bits = np.asarray(read['rgb'], dtype=np.float32).view(np.uint32)
        colours = rgb[::stride, ::stride].reshape(-1, 3)
        if not organized:
            colours = colours[valid.reshape(-1)]
        expected = (colours[:, 0].astype(np.uint32) << 16) | (colours[:, 1].astype(np.uint32)
                                                              << 8) | colours[:, 2]
        np.testing.assert_array_equal(bits, expected)

    finite = point_cloud2.read_points_numpy(msg, field_names=('x', 'y', 'z'), skip_nans=True)
    np.testing.assert_array_equal(finite.astype(np.float64), cloud_xyz(msg))
    assert len(finite) == int(valid.sum())
    u, v = np.meshgrid(np.arange(0, 16, stride), np.arange(0, 12, stride))
    z = kept[valid]
    expected_x = (u[valid] - camera.cx) * z / camera.fx
    np.testing.assert_allclose(finite[:, 0], expected_x, rtol=1e-6, atol=1e-6)
    assert math.isclose(float(finite[:, 2].max()), float(np.nanmax(kept)), rel_tol=1e-7)

