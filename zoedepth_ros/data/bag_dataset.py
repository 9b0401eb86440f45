"""RGB-D frames from a rosbag (rosbag2 sqlite3/mcap or ROS 1), read with ``rosbags``.

An RGB topic (sensor_msgs/Image in any encoding ``messages.image_to_rgb`` reads, or
CompressedImage) is paired with a depth topic (Image 16UC1 millimetres or 32FC1 metres) by
header stamp: each RGB frame takes the depth frame with the nearest stamp, if it lies within
``tolerance_s``. An optional CameraInfo topic gives the intrinsics (nearest stamp). No rclpy:
messages are deserialised by ``rosbags.highlevel.AnyReader`` and converted by
:mod:`zoedepth_ros.data.messages`.

The constructor indexes the bag once (stamps and positions, no pixels are kept); samples are
read on demand, with one reader per process so DataLoader workers can share the dataset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from zoedepth_ros.data.datasets import DatasetInfo, DepthDataset, Transform
from zoedepth_ros.data.messages import (
    camera_info_to_camera,
    compressed_to_rgb,
    depth_image_from_msg,
    image_to_rgb,
)
from zoedepth_ros.errors import BagError, InputError
from zoedepth_ros.geometry import PinholeCamera

_COMPRESSED = 'sensor_msgs/msg/CompressedImage'


def _stamp_ns(message: Any) -> int:
    stamp = message.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class RosbagRGBD(DepthDataset):
    """Paired RGB and depth frames of a recorded bag.

    Args:
        path: rosbag2 directory (or a ROS 1 .bag file).
        rgb_topic: colour image topic.
        depth_topic: depth image topic (16UC1 mm or 32FC1 m, aligned to the colour image).
        info_topic: CameraInfo topic of the colour image, or None; if the bag lacks it,
            :meth:`camera` returns None.
        tolerance_s: largest |stamp difference| of a colour/depth pair.
        domain: 'indoor' or 'outdoor' (sets the default valid range 10 m / 80 m).
        max_depth_m: upper bound of valid depth (default by domain).
        name: dataset name in samples.
        transform, seed: see :class:`DepthDataset`.
    """

    def __init__(self, path: Path | str, rgb_topic: str = '/camera/image_raw',
                 depth_topic: str = '/camera/depth/image',
                 info_topic: str | None = '/camera/camera_info', tolerance_s: float = 0.02,
                 domain: str = 'indoor', max_depth_m: float | None = None, name: str = 'bag',
                 transform: Transform | None = None, seed: int = 0) -> None:
        super().__init__(transform, seed)
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f'rosbag {self.path} not found; expected a rosbag2 directory '
                             '(metadata.yaml + .db3/.mcap) or a ROS 1 .bag file')
        if domain not in ('indoor', 'outdoor'):
            raise InputError(f'bag domain {domain!r}; expected indoor or outdoor')
        default_max = 10.0 if domain == 'indoor' else 80.0
        self.info = DatasetInfo(name, domain, 1e-3, max_depth_m or default_max, None)
        self.topics = (rgb_topic, depth_topic)
        self._reader: Any = None
        self._reader_pid = -1
        self._by_topic: dict[str, list[Any]] = {}
        reader = self._open()
        self._check_topics(rgb_topic, depth_topic)
        index = {topic: self._index(reader, topic) for topic in (rgb_topic, depth_topic)}
        cameras = self._cameras(reader, self._by_topic.get(info_topic or '', []))
        self.frames = self._pair(index[rgb_topic], index[depth_topic], tolerance_s, cameras)
        if not self.frames:
            raise BagError(f'{self.path}: no {rgb_topic} frame has a {depth_topic} frame within '
                           f'{tolerance_s} s; check the topics or raise tolerance_s')

    def _open(self) -> Any:
        """The AnyReader of this process (reopened after a fork)."""
        if self._reader is None or self._reader_pid != os.getpid():
            from rosbags.highlevel import AnyReader
            from rosbags.typesys import Stores, get_typestore

            reader = AnyReader([self.path], default_typestore=get_typestore(Stores.ROS2_KILTED))
            try:
                reader.open()
            except Exception as err:  # rosbags raises several reader error types
                raise BagError(f'cannot open rosbag {self.path}: {err}') from err
            self._reader, self._reader_pid = reader, os.getpid()
            self._by_topic = {}
            for connection in reader.connections:
                self._by_topic.setdefault(connection.topic, []).append(connection)
        return self._reader

    def _check_topics(self, *topics: str) -> None:
        for topic in topics:
            if topic not in self._by_topic:
                listing = ', '.join(f'{name} ({conns[0].msgtype})'
                                    for name, conns in sorted(self._by_topic.items()))
                raise BagError(f'{self.path} has no topic {topic}; it has: {listing}')

    def _index(self, reader: Any, topic: str) -> list[tuple[int, int, str, int]]:
        """(header stamp, bag time, topic, connection number) per message, sorted by stamp.

        Connections are kept by number, not object, so the index survives pickling into
        DataLoader workers (each reopens the bag).
        """
        connections = self._by_topic[topic]
        entries = []
        for connection, bag_time, raw in reader.messages(connections=connections):
            message = reader.deserialize(raw, connection.msgtype)
            entries.append((_stamp_ns(message), bag_time, topic,
                            connections.index(connection)))
        return sorted(entries, key=lambda entry: entry[:2])

    def _cameras(self, reader: Any, connections: list[Any]) -> list[tuple[int, PinholeCamera]]:
        cameras: list[tuple[int, PinholeCamera]] = []
        if not connections:  # (an empty filter would make rosbags yield every message)
            return cameras
        for connection, _, raw in reader.messages(connections=connections):
            message = reader.deserialize(raw, connection.msgtype)
            cameras.append((_stamp_ns(message), camera_info_to_camera(message)))
        return sorted(cameras, key=lambda entry: entry[0])

    @staticmethod
    def _pair(rgb: list[tuple[int, int, str, int]], depth: list[tuple[int, int, str, int]],
              tolerance_s: float, cameras: list[tuple[int, PinholeCamera]]) -> list[Any]:
        if not depth:
            return []
        depth_stamps = np.array([entry[0] for entry in depth], dtype=np.int64)
        camera_stamps = np.array([entry[0] for entry in cameras], dtype=np.int64)
        tolerance_ns = int(round(tolerance_s * 1e9))
        frames = []
        for entry in rgb:
            nearest = _nearest(depth_stamps, entry[0])
            if abs(int(depth_stamps[nearest]) - entry[0]) > tolerance_ns:
                continue
            camera = cameras[_nearest(camera_stamps, entry[0])][1] if cameras else None
            frames.append((entry, depth[nearest], camera))
        return frames

    def _read(self, entry: tuple[int, int, str, int]) -> Any:
        stamp, bag_time, topic, number = entry
        reader = self._open()
        connection = self._by_topic[topic][number]
        for _, _, raw in reader.messages(connections=[connection], start=bag_time,
                                         stop=bag_time + 1):
            message = reader.deserialize(raw, connection.msgtype)
            if _stamp_ns(message) == stamp:
                return message
        raise BagError(f'{self.path}: message {topic} at {stamp} ns vanished')

    def __len__(self) -> int:
        return len(self.frames)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        rgb_entry, depth_entry, _ = self.frames[index]
        rgb_message = self._read(rgb_entry)
        if self._by_topic[rgb_entry[2]][rgb_entry[3]].msgtype == _COMPRESSED:
            rgb = compressed_to_rgb(rgb_message)
        else:
            rgb = image_to_rgb(rgb_message)
        depth = depth_image_from_msg(self._read(depth_entry))
        return rgb, depth, str(rgb_entry[0])

    def camera(self, index: int) -> PinholeCamera | None:
        return self.frames[index][2]

    def stamp_ns(self, index: int) -> int:
        """Header stamp of the colour frame ``index``."""
        return self.frames[index][0][0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_reader=None, _reader_pid=-1, _by_topic={})  # readers do not pickle
        return state


def _nearest(sorted_stamps: np.ndarray, stamp: int) -> int:
    """Index of the value in ``sorted_stamps`` nearest to ``stamp``."""
    position = int(np.searchsorted(sorted_stamps, stamp))
    if position == 0:
        return 0
    if position == len(sorted_stamps):
        return len(sorted_stamps) - 1
    before, after = sorted_stamps[position - 1], sorted_stamps[position]
    return position - 1 if stamp - before <= after - stamp else position
