"""Sparse metric samples of a recorded bag for ``bag eval`` (metric anchoring offline).

A sparse topic is either a depth Image aligned with the camera (32FC1 metres or 16UC1
millimetres, NaN/0 = no sample, any resolution: a ToF, a sparsified depth map) or a
PointCloud2 (lidar, VIO landmarks) in the camera's optical frame, or in another frame with a
fixed extrinsic. Its messages are read once (they are small) into the node's
:class:`~zoedepth_ros.anchoring.SampleStream`, keeping all of them; each colour frame then takes
the message nearest in stamp within a tolerance, by the node's rule.
"""

from __future__ import annotations

from pathlib import Path

from zoedepth_ros.anchoring import ExtrinsicOptions, SampleStream, SparseSamples
from zoedepth_ros.anchoring.samples import extrinsic_transform
from zoedepth_ros.errors import BagError, ZoeDepthError
from zoedepth_ros.io.bag_reader import open_bag
from zoedepth_ros.io.bags import CLOUD_TYPE, IMAGE_TYPE, topic_connections
from zoedepth_ros.io.messages import depth_image_from_msg, stamp_ns
from zoedepth_ros.pointcloud import cloud_xyz


def read_sparse(path: Path | str, topic: str,
                extrinsic: ExtrinsicOptions = ExtrinsicOptions()) -> SampleStream:
    """Every readable message of ``topic`` (Image or PointCloud2), decoded once.

    Args:
        path: the bag.
        topic: the sparse topic.
        extrinsic: the cloud's frame in the camera optical frame (p_cam = R p + t); when not
            enabled, the points are taken as in the optical frame.

    Raises:
        BagError: a missing topic, another type, or no readable message.
    """
    stream = SampleStream(history=None, transform=extrinsic_transform(extrinsic)
                          if extrinsic.enabled else None)
    unreadable = 0
    with open_bag(path) as reader:
        connections = topic_connections(reader, topic, (IMAGE_TYPE, CLOUD_TYPE))
        for connection, _, raw in reader.messages(connections=connections):
            message = reader.deserialize(raw, connection.msgtype)
            stamp = stamp_ns(message.header)
            try:
                if connection.msgtype == IMAGE_TYPE:
                    stream.add_samples(stamp, SparseSamples.from_depth_image(
                        depth_image_from_msg(message)))
                else:  # taken as in the optical frame unless the extrinsic says otherwise
                    stream.add_points(stamp, cloud_xyz(message), '')
            except ZoeDepthError:
                unreadable += 1
    if not len(stream):
        raise BagError(f'{path}: no readable message on {topic} ({unreadable} unreadable)')
    return stream
