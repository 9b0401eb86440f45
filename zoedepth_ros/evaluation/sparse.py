"""Sparse metric samples of a recorded bag for ``bag eval`` (metric anchoring offline).

A sparse topic is either a depth Image aligned with the camera (32FC1 metres or 16UC1
millimetres, NaN/0 = no sample, any resolution: a ToF, a sparsified depth map) or a
PointCloud2 (lidar, VIO landmarks) in the camera's optical frame, or in another frame with a
fixed extrinsic. Its messages are read once (they are small) into a :class:`SparseTrack`; each
colour frame then takes the message nearest in stamp within a tolerance, as the node does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoedepth_ros.alignment import SparseSamples
from zoedepth_ros.errors import BagError, ZoeDepthError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.anchoring import cloud_xyz, rigid_transform
from zoedepth_ros.io.bag_reader import open_bag
from zoedepth_ros.io.bags import CLOUD_TYPE, IMAGE_TYPE, nearest_within, topic_connections
from zoedepth_ros.io.messages import depth_image_from_msg, stamp_ns


@dataclass
class SparseTrack:
    """The sparse messages of one topic: stamps, and per message samples (Image) or points
    already in the camera's optical frame (PointCloud2)."""

    topic: str
    stamps: np.ndarray
    items: list[SparseSamples | np.ndarray] = field(default_factory=list)
    unreadable: int = 0

    def samples_at(self, stamp: int, tolerance_s: float, camera: PinholeCamera
                   ) -> SparseSamples | None:
        """Samples of the message nearest ``stamp`` (ns) within the tolerance, or None."""
        index = int(nearest_within(self.stamps, np.array([stamp]), round(tolerance_s * 1e9))[0])
        if index < 0:
            return None
        item = self.items[index]
        return item if isinstance(item, SparseSamples) else SparseSamples.from_points(item,
                                                                                      camera)


def read_sparse(path: Path | str, topic: str, extrinsic: tuple[float, ...] = ()) -> SparseTrack:
    """Every message of ``topic`` (Image or PointCloud2), decoded once.

    Args:
        path: the bag.
        topic: the sparse topic.
        extrinsic: x, y, z, qx, qy, qz, qw of the cloud's frame in the camera optical frame
            (p_cam = R p + t); empty: the points are in the optical frame.

    Raises:
        BagError: a missing topic, another type, an extrinsic of the wrong length, or no
            readable message.
    """
    if extrinsic and len(extrinsic) != 7:
        raise BagError(f'the sparse extrinsic needs 7 values (x y z qx qy qz qw), got '
                       f'{len(extrinsic)}')
    stamps: list[int] = []
    track = SparseTrack(topic, np.zeros(0, dtype=np.int64))
    with open_bag(path) as reader:
        connections = topic_connections(reader, topic, (IMAGE_TYPE, CLOUD_TYPE))
        for connection, _, raw in reader.messages(connections=connections):
            message = reader.deserialize(raw, connection.msgtype)
            try:
                if connection.msgtype == IMAGE_TYPE:
                    item: SparseSamples | np.ndarray = SparseSamples.from_depth_image(
                        depth_image_from_msg(message))
                else:
                    item = cloud_xyz(message)
                    if extrinsic:
                        item = rigid_transform(item, extrinsic[:3], extrinsic[3:])
            except ZoeDepthError:
                track.unreadable += 1
                continue
            stamps.append(stamp_ns(message.header))
            track.items.append(item)
    if not track.items:
        raise BagError(f'{path}: no readable message on {topic} ({track.unreadable} '
                       'unreadable)')
    track.stamps = np.array(stamps, dtype=np.int64)
    return track
