"""Reading rosbag2 files with ``rosbags``: opening with clear errors, stamp-paired RGB-D frames.

ROS-free: messages are deserialised by ``rosbags.highlevel.AnyReader`` (sqlite3 and mcap,
rosbag2 versions 1-9; types the bag defines are registered from it) and converted by
:mod:`zoedepth_ros.data.messages`. Pairing and evaluation go by ``header.stamp``, never by bag
receive time (ros-conventions.md section 11).

Pairing (:func:`nearest_within`): each colour frame takes the depth frame whose stamp is
nearest, if it lies within the tolerance; colour frames without one are still yielded
(``depth_m`` None) so they can be predicted and counted as unpaired. The CameraInfo is the
nearest one in stamp (any distance: drivers often stamp it differently).

:func:`read_rgbd` reads the bag twice: a first pass indexes stamps and checks types and
encodings (so bad input fails before any work), a second pass streams the frames in bag order,
keeping only the depth maps some waiting colour frame still needs.
"""

from __future__ import annotations

import sqlite3
import struct
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoedepth_ros.data.messages import (
    DEPTH_ENCODINGS,
    SUPPORTED_ENCODINGS,
    CameraInfoFields,
    camera_info_fields,
    compressed_to_rgb,
    depth_image_from_msg,
    image_to_rgb,
)
from zoedepth_ros.errors import BagError, ZoeDepthError

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
CLOUD_TYPE = 'sensor_msgs/msg/PointCloud2'
RawCallback = Callable[[Any, int, bytes], None]
"""Called with (connection, bag time ns, raw CDR bytes) for every message read."""


def _read_errors() -> tuple[type[BaseException], ...]:
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag2 import ReaderError

    return (AnyReaderError, ReaderError, sqlite3.Error, struct.error, EOFError, OSError,
            ValueError, KeyError, IndexError)


@contextmanager
def open_bag(path: Path | str) -> Iterator[Any]:
    """An open ``AnyReader`` of a rosbag2 directory; read problems become :class:`BagError`.

    Errors raised while the caller reads inside the ``with`` block (a truncated file, a
    corrupt chunk) are converted too, so every way a bag can be unreadable gives one message.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    path = Path(path)
    if not path.exists():
        raise BagError(f'bag {path} not found; expected a rosbag2 directory with '
                       'metadata.yaml and .db3 / .mcap files')
    reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED))
    errors = _read_errors()
    try:
        reader.open()
    except errors as err:
        raise BagError(f'cannot read bag {path}: {err}; expected a complete rosbag2 directory '
                       '(metadata.yaml + .db3/.mcap files); a truncated or damaged bag must be '
                       're-recorded or repaired (ros2 bag reindex)') from None
    try:
        yield reader
    except ZoeDepthError:
        raise
    except errors as err:
        raise BagError(f'cannot read bag {path}: it is damaged or truncated '
                       f'({type(err).__name__}: {err}); re-record it or repair it '
                       '(ros2 bag reindex)') from None
    finally:
        try:
            reader.close()
        except errors:
            pass


def topic_connections(reader: Any, topic: str, msgtypes: tuple[str, ...]) -> list[Any]:
    """The connections of ``topic``; a clear error when it is missing or of another type."""
    connections = [c for c in reader.connections if c.topic == topic]
    if not connections:
        listing = ', '.join(sorted(f'{c.topic} ({c.msgtype})' for c in reader.connections))
        raise BagError(f'{reader.paths[0]} has no topic {topic!r}; it has: {listing or "none"}')
    wrong = sorted({c.msgtype for c in connections} - set(msgtypes))
    if wrong:
        raise BagError(f'topic {topic} carries {wrong[0]}; expected {" or ".join(msgtypes)}')
    return connections


def stamp_ns(message: Any) -> int:
    """Header stamp of a deserialised message in nanoseconds."""
    stamp = message.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def nearest_within(stamps: np.ndarray, queries: np.ndarray, tolerance_ns: int) -> np.ndarray:
    """Index into ``stamps`` of the nearest value to each query, or -1 beyond the tolerance.

    Args:
        stamps: (N,) int64 stamps, any order.
        queries: (M,) int64 stamps.
        tolerance_ns: largest accepted |difference| (ties go to the earlier stamp).

    Returns:
        (M,) int64 indices into ``stamps`` (not into a sorted copy).
    """
    queries = np.asarray(queries, dtype=np.int64)
    if len(stamps) == 0:
        return np.full(len(queries), -1, dtype=np.int64)
    order = np.argsort(stamps, kind='stable')
    ordered = np.asarray(stamps, dtype=np.int64)[order]
    after = np.clip(np.searchsorted(ordered, queries), 0, len(ordered) - 1)
    before = np.clip(after - 1, 0, len(ordered) - 1)
    pick = np.where(np.abs(queries - ordered[before]) <= np.abs(ordered[after] - queries),
                    before, after)
    result = order[pick]
    result[np.abs(ordered[pick] - queries) > tolerance_ns] = -1
    return result


@dataclass
class RgbdFrame:
    """One colour frame of a bag, with its paired ground truth if any.

    Attributes:
        index: position among the colour frames (bag order).
        stamp_ns: header stamp of the colour image.
        bag_time_ns: bag (receive) time of the colour image.
        frame_id: header frame id of the colour image.
        rgb: (H, W, 3) uint8 RGB.
        depth_m: (h, w) float32 ground truth in metres (NaN invalid), or None if unpaired.
        depth_offset_ns: depth stamp minus colour stamp (None if unpaired).
        camera_info: nearest CameraInfo (fields), or None when the bag has none.
    """

    index: int
    stamp_ns: int
    bag_time_ns: int
    frame_id: str
    rgb: np.ndarray
    depth_m: np.ndarray | None
    depth_offset_ns: int | None
    camera_info: CameraInfoFields | None


@dataclass(frozen=True)
class FrameTopics:
    """Which topics make a frame, and the pairing tolerance in seconds."""

    image: str
    depth: str | None = None
    camera_info: str | None = None
    tolerance_s: float = 0.02


@dataclass
class _Index:
    """First-pass result: stamps and keys of every message of the three topics."""

    image_keys: list[tuple[int, int]]
    depth_keys: list[tuple[int, int]]
    pairs: np.ndarray
    """Per colour message: index into depth_keys, or -1."""
    info_of_stamp: dict[int, CameraInfoFields]
    """Colour stamp -> nearest CameraInfo (empty without a CameraInfo topic)."""


def _check_encoding(topic: str, message: Any, allowed: tuple[str, ...]) -> None:
    encoding = str(message.encoding)
    if encoding not in allowed:
        raise BagError(f'topic {topic} has images in encoding {encoding!r}, which we do not '
                       f'read; expected one of {list(allowed)}')


def _index(reader: Any, topics: FrameTopics, connections: dict[str, list[Any]]) -> _Index:
    keys: dict[str, list[tuple[int, int]]] = {'image': [], 'depth': []}
    infos: list[tuple[int, CameraInfoFields]] = []
    topic_of = {c.id: role for role, conns in connections.items() for c in conns}
    every = [c for conns in connections.values() for c in conns]
    for connection, bag_time, raw in reader.messages(connections=every):
        role = topic_of[connection.id]
        message = reader.deserialize(raw, connection.msgtype)
        if role == 'info':
            infos.append((stamp_ns(message), _camera_info(connection.topic, message)))
            continue
        if connection.msgtype == IMAGE_TYPE:
            allowed = SUPPORTED_ENCODINGS if role == 'image' else DEPTH_ENCODINGS
            _check_encoding(connection.topic, message, allowed)
        keys[role].append((bag_time, stamp_ns(message)))
    if not keys['image']:
        raise BagError(f'topic {topics.image} has no messages')
    image_stamps = np.array([key[1] for key in keys['image']], dtype=np.int64)
    depth_stamps = np.array([key[1] for key in keys['depth']], dtype=np.int64)
    pairs = nearest_within(depth_stamps, image_stamps, round(topics.tolerance_s * 1e9))
    if topics.depth is not None and not (pairs >= 0).any():
        span = (f'{depth_stamps.min() * 1e-9:.3f}..{depth_stamps.max() * 1e-9:.3f} s'
                if len(depth_stamps) else 'no messages')
        raise BagError(
            f'no {topics.image} frame has a {topics.depth} frame within {topics.tolerance_s} s '
            f'(image stamps {image_stamps.min() * 1e-9:.3f}..{image_stamps.max() * 1e-9:.3f} s,'
            f' depth stamps {span}); check the topics or raise the tolerance')
    info_stamps = np.array([item[0] for item in infos], dtype=np.int64)
    nearest_info = nearest_within(info_stamps, image_stamps, 1 << 62)
    info_of_stamp = {int(stamp): infos[int(i)][1]
                     for stamp, i in zip(image_stamps, nearest_info) if i >= 0}
    return _Index(keys['image'], keys['depth'], pairs, info_of_stamp)


def _camera_info(topic: str, message: Any) -> CameraInfoFields:
    try:
        return camera_info_fields(message)
    except ZoeDepthError as err:
        raise BagError(f'topic {topic} at stamp {stamp_ns(message)} ns: {err}') from None


def _decode_rgb(connection: Any, message: Any) -> np.ndarray:
    try:
        if connection.msgtype == COMPRESSED_TYPE:
            return compressed_to_rgb(message)
        return image_to_rgb(message)
    except ZoeDepthError as err:
        stamp = stamp_ns(message)
        raise BagError(f'topic {connection.topic} at stamp {stamp} ns: {err}') from None


def _decode_depth(connection: Any, message: Any) -> np.ndarray:
    try:
        return depth_image_from_msg(message)
    except ZoeDepthError as err:
        stamp = stamp_ns(message)
        raise BagError(f'topic {connection.topic} at stamp {stamp} ns: {err}') from None


def read_rgbd(path: Path | str, topics: FrameTopics,
              on_message: RawCallback | None = None) -> Iterator[RgbdFrame]:
    """Colour frames of a bag in bag order, each with its paired depth and CameraInfo.

    Args:
        path: rosbag2 directory (sqlite3 or mcap).
        topics: image topic (Image or CompressedImage), optional depth topic (Image 32FC1
            metres or 16UC1 millimetres), optional CameraInfo topic, pairing tolerance.
        on_message: called for every message of the bag in bag order (to copy them).

    Raises:
        BagError: missing topic (the message lists the bag's topics), wrong type, unsupported
            encoding, no pair at all, or an unreadable/truncated bag.
    """
    with open_bag(path) as reader:
        connections = {'image': topic_connections(reader, topics.image,
                                                  (IMAGE_TYPE, COMPRESSED_TYPE))}
        if topics.depth is not None:
            connections['depth'] = topic_connections(reader, topics.depth, (IMAGE_TYPE,))
        if topics.camera_info is not None:
            connections['info'] = topic_connections(reader, topics.camera_info, (INFO_TYPE,))
        index = _index(reader, topics, connections)
        yield from _stream(reader, connections, index, on_message)


def _stream(reader: Any, connections: dict[str, list[Any]], index: _Index,
            on_message: RawCallback | None) -> Iterator[RgbdFrame]:
    wanted: dict[tuple[int, int], int] = {}
    for pair in index.pairs[index.pairs >= 0]:
        key = index.depth_keys[int(pair)]
        wanted[key] = wanted.get(key, 0) + 1
    pair_of_stamp = {key[1]: int(pair) for key, pair in zip(index.image_keys, index.pairs)}
    image_ids = {c.id for c in connections['image']}
    depth_ids = {c.id for c in connections.get('depth', [])}
    selected = reader.connections if on_message else [
        c for c in reader.connections if c.id in image_ids | depth_ids]
    depth_cache: dict[tuple[int, int], np.ndarray] = {}
    pending: deque[_Pending] = deque()
    count = 0
    for connection, bag_time, raw in reader.messages(connections=selected):
        if on_message is not None:
            on_message(connection, bag_time, raw)
        if connection.id in depth_ids:
            message = reader.deserialize(raw, connection.msgtype)
            key = (bag_time, stamp_ns(message))
            if key in wanted:
                depth_cache[key] = _decode_depth(connection, message)
        elif connection.id in image_ids:
            message = reader.deserialize(raw, connection.msgtype)
            pair = pair_of_stamp[stamp_ns(message)]
            pending.append(_Pending(count, connection, message, bag_time,
                                    index.depth_keys[pair] if pair >= 0 else None))
            count += 1
        while pending and (pending[0].depth_key is None
                           or pending[0].depth_key in depth_cache):
            yield _frame(pending.popleft(), index, depth_cache, wanted)
    while pending:  # depth keys that never arrived cannot happen: both passes read the same bag
        yield _frame(pending.popleft(), index, depth_cache, wanted)


@dataclass
class _Pending:
    """A colour message waiting for its depth map to be read."""

    position: int
    connection: Any
    message: Any
    bag_time: int
    depth_key: tuple[int, int] | None


def _frame(item: _Pending, index: _Index, depth_cache: dict[tuple[int, int], np.ndarray],
           wanted: dict[tuple[int, int], int]) -> RgbdFrame:
    message, depth_key = item.message, item.depth_key
    stamp = stamp_ns(message)
    depth = None
    if depth_key is not None:
        depth = depth_cache.get(depth_key)
        wanted[depth_key] -= 1
        if wanted[depth_key] == 0:
            depth_cache.pop(depth_key, None)
    info = index.info_of_stamp.get(stamp)
    return RgbdFrame(item.position, stamp, item.bag_time, str(message.header.frame_id),
                     _decode_rgb(item.connection, message), depth,
                     None if depth_key is None else depth_key[1] - stamp, info)
