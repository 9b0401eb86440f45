"""RGB-D frames of a recorded rosbag2 as a dataset (no rclpy; ROS 1 bags are not read).

The colour topic (sensor_msgs/Image in any encoding ``io.messages.image_to_rgb`` reads, or
CompressedImage) is paired with the depth topic (Image 16UC1 millimetres or 32FC1 metres) by
header stamp, exactly as ``zoedepth bag eval`` pairs them (``io.bags.index_rgbd``):
the nearest depth stamp within ``tolerance_s``. Only colour frames with a depth partner are
samples. An optional CameraInfo topic gives the intrinsics (nearest stamp). Only these topics
are decoded: topics of types that cannot be parsed (service events, malformed definitions) are
skipped and named in ``skipped_topics``.

The constructor indexes the bag once (stamps, no pixels are kept); samples are read on demand,
with one reader per process so DataLoader workers can share the dataset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from zoedepth_ros.data.base import DatasetInfo, DepthDataset, held_out
from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.bag_reader import BagReader, open_bag
from zoedepth_ros.io.bags import (
    FrameTopics,
    Key,
    decode_depth,
    decode_rgb,
    frame_connections,
    index_rgbd,
    read_message,
)


def match_depth_size(rgb: np.ndarray, depth: np.ndarray, where: str) -> np.ndarray:
    """The colour image at the depth image's size, so that depth values stay exact.

    Registered depth (e.g. a RealSense ``aligned_depth_to_color`` topic, or a depth camera
    at a fraction of the colour resolution) shares the colour image's field of view: the
    colour image is resized (area when shrinking, bilinear when growing), as ``bag eval``
    resizes its prediction to the depth size.

    Raises:
        InputError: the aspect ratios differ by more than 1 % (depth not registered to colour).
    """
    (height, width), (depth_h, depth_w) = rgb.shape[:2], depth.shape
    if (height, width) == (depth_h, depth_w):
        return rgb
    if abs(width / height - depth_w / depth_h) > 0.01 * width / height:
        raise InputError(f'{where}: colour {width}x{height} and depth {depth_w}x{depth_h} '
                         'differ in aspect ratio; record depth registered to the colour '
                         'camera (e.g. aligned_depth_to_color)')
    shrink = depth_w < width
    return cv2.resize(rgb, (depth_w, depth_h),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class RosbagRGBD(DepthDataset):
    """Paired RGB and depth frames of a recorded bag.

    Args:
        path: rosbag2 directory (any version, storage, split or compression that
            :class:`~zoedepth_ros.io.bag_reader.BagReader` reads).
        rgb_topic: colour image topic.
        depth_topic: depth image topic (16UC1 mm or 32FC1 m, aligned to the colour image).
        info_topic: CameraInfo topic of the colour image, or None; if the bag lacks it,
            :meth:`camera` returns None.
        tolerance_s: largest |stamp difference| of a colour/depth pair.
        domain: 'indoor' or 'outdoor' (sets the default valid range 10 m / 80 m).
        max_depth_m: upper bound of valid depth (default by domain).
        name: dataset name in samples and reports (default: the bag directory's name).
        holdout: share of the frames held out for validation, in blocks of consecutive
            frames (``data.base.held_out``); 0 keeps every frame.
        split: with ``holdout``: 'train' (the frames not held out) or 'test' (the held-out
            ones).

    Attributes:
        skipped_topics: topic -> message type of the bag's topics whose types cannot be parsed
            (never decoded here).
    """

    def __init__(self, path: Path | str, rgb_topic: str = '/camera/image_raw',
                 depth_topic: str = '/camera/depth/image',
                 info_topic: str | None = '/camera/camera_info', tolerance_s: float = 0.02,
                 domain: str = 'indoor', max_depth_m: float | None = None,
                 name: str = '', holdout: float = 0.0, split: str = 'train') -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f'rosbag {self.path} not found; expected a rosbag2 directory '
                             '(metadata.yaml + .db3/.mcap)')
        if domain not in ('indoor', 'outdoor'):
            raise InputError(f'bag domain {domain!r}; expected indoor or outdoor')
        default_max = 10.0 if domain == 'indoor' else 80.0
        self.info = DatasetInfo(name or self.path.name, domain, 1e-3,
                                max_depth_m or default_max, None)
        with open_bag(self.path) as reader:
            has_info = any(c.topic == info_topic for c in reader.connections)
            self.topics = FrameTopics(rgb_topic, depth_topic, info_topic if has_info else None,
                                      tolerance_s)
            index = index_rgbd(reader, self.topics)
            self.skipped_topics = reader.unparseable()
        if not 0.0 <= holdout < 1.0 or split not in ('train', 'test'):
            raise InputError(f'bag holdout {holdout} / split {split!r}: expected 0 <= holdout '
                             '< 1 and split train or test')
        self.frames: list[tuple[Key, Key, PinholeCamera | None]] = []
        for key, pair in zip(index.image_keys, index.pairs):
            if pair >= 0:
                info = index.info_of_stamp.get(key[1])
                self.frames.append((key, index.depth_keys[int(pair)],
                                    None if info is None else info.camera))
        if holdout > 0:
            self.frames = [frame for position, frame in enumerate(self.frames)
                           if held_out(position, holdout) == (split == 'test')]
        if not self.frames:
            raise InputError(f'{self.path}: no {split} frames (holdout {holdout}); the bag has '
                             f'too few paired frames for this split')
        self._reader: BagReader | None = None
        self._reader_pid = -1

    def _open(self) -> tuple[BagReader, dict[str, list[Any]]]:
        """The reader of this process (reopened after a fork) and the frame connections."""
        if self._reader is None or self._reader_pid != os.getpid():
            self._reader, self._reader_pid = open_bag(self.path), os.getpid()
            self._connections = frame_connections(self._reader, self.topics)
        return self._reader, self._connections

    def __len__(self) -> int:
        return len(self.frames)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        rgb_key, depth_key, _ = self.frames[index]
        reader, connections = self._open()
        rgb = decode_rgb(*read_message(reader, connections['image'], rgb_key))
        depth = decode_depth(*read_message(reader, connections['depth'], depth_key))
        return match_depth_size(rgb, depth, f'{self.path} {rgb_key[1]}'), depth, str(rgb_key[1])

    def camera(self, index: int) -> PinholeCamera | None:
        return self.frames[index][2]

    def stamp_ns(self, index: int) -> int:
        """Header stamp of the colour frame ``index``."""
        return self.frames[index][0][1]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_reader=None, _reader_pid=-1)  # readers do not pickle
        state.pop('_connections', None)
        return state

