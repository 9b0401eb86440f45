"""Output field values -> rclpy messages through the one builder: the bytes reach the wire
unchanged and uncopied."""

from __future__ import annotations

import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, PointCloud2

from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io import messages
from zoedepth_ros.pointcloud import CloudOptions, pack_point_cloud
from zoedepth_ros.ros import convert


def test_image_and_cloud_bytes_are_not_copied_and_serialise_unchanged() -> None:
    depth = np.linspace(0.5, 4.0, 12, dtype=np.float32).reshape(3, 4)
    depth[1, 2] = np.nan
    stamp, frame_id = 1_500_000_007, 'camera_optical_frame'
    fields = messages.encode_depth(depth)
    msg = convert.to_message('depth', fields, stamp, frame_id)
    assert msg.data is fields.data  # the byte view of the array, no copy in Python
    back = deserialize_message(serialize_message(msg), Image)
    assert (back.height, back.width, back.encoding, back.step) == (3, 4, '32FC1', 16)
    assert back.header.frame_id == 'camera_optical_frame'
    assert (back.header.stamp.sec, back.header.stamp.nanosec) == (1, 500_000_007)
    assert bytes(back.data) == depth.tobytes()

    rgb = np.arange(36, dtype=np.uint8).reshape(3, 4, 3)
    cloud = pack_point_cloud(depth, PinholeCamera(2.0, 2.0, 2.0, 1.5, 4, 3),
                             CloudOptions(stride=1), rgb)
    msg = convert.to_message('points', cloud, stamp, frame_id)
    assert msg.data is cloud.data
    back = deserialize_message(serialize_message(msg), PointCloud2)
    assert (back.height, back.width, back.point_step, back.row_step) == (3, 4, 16, 64)
    assert [field.name for field in back.fields] == ['x', 'y', 'z', 'rgb']
    assert bytes(back.data) == bytes(cloud.data)

    preview = convert.to_message('preview', messages.image_fields(rgb, 'rgb8'), stamp,
                                 frame_id)  # bytes data
    assert bytes(deserialize_message(serialize_message(preview), Image).data) == rgb.tobytes()
