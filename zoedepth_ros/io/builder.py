"""One builder of sensor_msgs / std_msgs messages, for rclpy and rosbags alike (ROS-free).

Each function knows its message's fields and passes all of them to a factory
``make(msgtype, fields)``: the node's factory makes rclpy messages (``ros/convert.py``), the bag
writer's makes ``rosbags`` dataclasses (:meth:`~zoedepth_ros.io.bag_writer.AtomicBagWriter.make`).
Byte payloads are passed as bytes-like objects (``data`` of Image and PointCloud2) and numeric
arrays as numpy arrays of the field's type, so each factory only converts containers, never
values: the node and ``bag eval --out-bag`` serialise the same outputs to the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from zoedepth_ros.io.messages import CameraInfoFields, ImageFields, PackedCloud

MessageFactory = Callable[[str, dict[str, Any]], Any]
"""``make('sensor_msgs/msg/Image', {field: value})`` -> a message of that type."""


def header(make: MessageFactory, stamp_ns: int, frame_id: str) -> Any:
    """std_msgs/Header with the stamp (nanoseconds) and frame id."""
    seconds, nanoseconds = divmod(int(stamp_ns), 1_000_000_000)
    stamp = make('builtin_interfaces/msg/Time', {'sec': seconds, 'nanosec': nanoseconds})
    return make('std_msgs/msg/Header', {'stamp': stamp, 'frame_id': frame_id})


def image(make: MessageFactory, fields: ImageFields, head: Any) -> Any:
    return make('sensor_msgs/msg/Image', {
        'header': head, 'height': fields.height, 'width': fields.width,
        'encoding': fields.encoding, 'is_bigendian': fields.is_bigendian, 'step': fields.step,
        'data': fields.data})


def camera_info(make: MessageFactory, fields: CameraInfoFields, head: Any) -> Any:
    """CameraInfo; binning and roi zero."""
    roi = make('sensor_msgs/msg/RegionOfInterest', {
        'x_offset': 0, 'y_offset': 0, 'height': 0, 'width': 0, 'do_rectify': False})
    arrays = {name: np.array(getattr(fields, name), dtype=np.float64)
              for name in ('d', 'k', 'r', 'p')}
    return make('sensor_msgs/msg/CameraInfo', {
        'header': head, 'height': fields.height, 'width': fields.width,
        'distortion_model': fields.distortion_model, **arrays, 'binning_x': 0, 'binning_y': 0,
        'roi': roi})


def point_cloud(make: MessageFactory, cloud: PackedCloud, head: Any) -> Any:
    fields = [make('sensor_msgs/msg/PointField', {
        'name': f.name, 'offset': f.offset, 'datatype': f.datatype, 'count': f.count})
        for f in cloud.fields]
    return make('sensor_msgs/msg/PointCloud2', {
        'header': head, 'height': cloud.height, 'width': cloud.width, 'fields': fields,
        'is_bigendian': cloud.is_bigendian, 'point_step': cloud.point_step,
        'row_step': cloud.row_step, 'data': cloud.data, 'is_dense': cloud.is_dense})


def float_array(make: MessageFactory, label: str, values: tuple[float, ...]) -> Any:
    """Float32MultiArray with one dimension whose label names the values."""
    size = len(values)
    dim = make('std_msgs/msg/MultiArrayDimension', {'label': label, 'size': size, 'stride': size})
    layout = make('std_msgs/msg/MultiArrayLayout', {'dim': [dim], 'data_offset': 0})
    return make('std_msgs/msg/Float32MultiArray',
                {'layout': layout, 'data': np.array(values, dtype=np.float32)})
