"""Stamp-paired RGB-D frames of rosbag2 bags (ROS-free).

Bags are opened by :func:`zoedepth_ros.io.bag_reader.open_bag`: metadata and raw messages,
with a message type parsed only when a message of it is deserialised, so topics of types that
cannot be parsed never stop a tool that does not read them.

Pairing goes by ``header.stamp``, never by bag receive time: receive times carry transport and
recording delays, stamps carry the capture time. Each colour frame takes the depth frame whose
stamp is nearest, if it lies within the tolerance (:func:`nearest_within`); colour frames
without one are kept (``depth_m`` None) so they can be predicted and counted as unpaired. The
CameraInfo is the nearest one in stamp at any distance (drivers often stamp it differently).
:func:`index_rgbd` does this once from the stamps alone; :func:`read_rgbd` then streams the
frames in bag order (offline evaluation) and
:class:`~zoedepth_ros.data.bag_dataset.RosbagRGBD` reads them by position (training).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoedepth_ros.errors import BagError, ZoeDepthError
from zoedepth_ros.io.bag_reader import BagReader, open_bag
from zoedepth_ros.io.messages import (
    DEPTH_ENCODINGS,
    SUPPORTED_ENCODINGS,
    CameraInfoFields,
    camera_info_fields,
    compressed_to_rgb,
    depth_image_from_msg,
    image_to_rgb,
    stamp_ns,
)

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
CLOUD_TYPE = 'sensor_msgs/msg/PointCloud2'
RawCallback = Callable[[Any, int, bytes], None]
"""Called with (connection, bag time ns, raw CDR bytes) for every message read."""
Key = tuple[int, int]
"""(bag time, header stamp) of one message, both in nanoseconds."""


def topic_connections(reader: BagReader, topic: str, msgtypes: tuple[str, ...]) -> list[Any]:
    """The connections of ``topic``; a clear error when it is missing or of another type."""
    connections = [c for c in reader.connections if c.topic == topic]
    if not connections:
        listing = ', '.join(sorted(f'{c.topic} ({c.msgtype})' for c in reader.connections))
        raise BagError(f'{reader.path} has no topic {topic!r}; it has: {listing or "none"}')
    wrong = sorted({c.msgtype for c in connections} - set(msgtypes))
    if wrong:
        raise BagError(f'topic {topic} carries {wrong[0]}; expected {" or ".join(msgtypes)}')
    return connections


@dataclass(frozen=True)
class CameraSource:
    """Where a bag's frames get their intrinsics from.

    Attributes:
        topic: the CameraInfo topic, or None when the bag has none to use.
        reason: how it was chosen (given, beside the image topic, the only one), or why there
            is none.
    """

    topic: str | None
    reason: str


def camera_info_source(reader: BagReader, topics: FrameTopics) -> CameraSource:
    """The CameraInfo topic for ``topics.image``: the one given, else the ``camera_info`` beside
    the image topic (``/cam/image_raw`` or ``/cam/image_raw/compressed`` -> ``/cam/camera_info``),
    else the bag's only CameraInfo topic; none when the bag has none or several others."""
    if topics.camera_info is not None:
        return CameraSource(topics.camera_info, 'given')
    infos = sorted({c.topic for c in reader.connections if c.msgtype == INFO_TYPE})
    image = topics.image.removesuffix('/compressed')
    beside = f'{image.rsplit("/", 1)[0]}/camera_info'
    if beside in infos:
        return CameraSource(beside, f'beside {topics.image}')
    if len(infos) == 1:
        return CameraSource(infos[0], "the bag's only CameraInfo topic")
    if not infos:
        return CameraSource(None, 'the bag has no CameraInfo topic')
    return CameraSource(None, f'the bag has several CameraInfo topics ({", ".join(infos)}) and '
                              f'none beside {topics.image}; name one with --camera-info-topic')


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
class RgbdIndex:
    """Stamps and keys of every message of the frame topics, and the pairing.

    Attributes:
        connections: 'image', 'depth', 'info' -> the reader's connections of that topic.
        image_keys: (bag time, stamp) of every colour message, in bag order.
        depth_keys: the same for the depth messages.
        pairs: per colour message, its index into ``depth_keys`` or -1.
        info_of_stamp: colour stamp -> nearest CameraInfo (empty without a CameraInfo topic).
    """

    connections: dict[str, list[Any]]
    image_keys: list[Key]
    depth_keys: list[Key]
    pairs: np.ndarray
    info_of_stamp: dict[int, CameraInfoFields]


def frame_connections(reader: Any, topics: FrameTopics) -> dict[str, list[Any]]:
    """'image', 'depth', 'info' -> connections, checking that each named topic exists."""
    connections = {'image': topic_connections(reader, topics.image,
                                              (IMAGE_TYPE, COMPRESSED_TYPE))}
    if topics.depth is not None:
        connections['depth'] = topic_connections(reader, topics.depth, (IMAGE_TYPE,))
    if topics.camera_info is not None:
        connections['info'] = topic_connections(reader, topics.camera_info, (INFO_TYPE,))
    return connections


def _check_encoding(topic: str, message: Any, allowed: tuple[str, ...]) -> None:
    encoding = str(message.encoding)
    if encoding not in allowed:
        raise BagError(f'topic {topic} has images in encoding {encoding!r}, which we do not '
                       f'read; expected one of {list(allowed)}')


def index_rgbd(reader: Any, topics: FrameTopics) -> RgbdIndex:
    """Read the stamps of the frame topics once and pair them (see the module docstring).

    Checks types and encodings on the way, so bad input fails before any pixel work.

    Raises:
        BagError: missing topic, wrong type or encoding, no colour message, or no pair at all
            when a depth topic is given.
    """
    connections = frame_connections(reader, topics)
    keys: dict[str, list[Key]] = {'image': [], 'depth': []}
    infos: list[tuple[int, CameraInfoFields]] = []
    role_of = {c.id: role for role, conns in connections.items() for c in conns}
    every = [c for conns in connections.values() for c in conns]
    for connection, bag_time, raw in reader.messages(connections=every):
        role = role_of[connection.id]
        message = reader.deserialize(raw, connection.msgtype)
        if role == 'info':
            infos.append((stamp_ns(message.header), _camera_info(connection.topic, message)))
            continue
        if connection.msgtype == IMAGE_TYPE:
            allowed = SUPPORTED_ENCODINGS if role == 'image' else DEPTH_ENCODINGS
            _check_encoding(connection.topic, message, allowed)
        keys[role].append((bag_time, stamp_ns(message.header)))
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
    return RgbdIndex(connections, keys['image'], keys['depth'], pairs, info_of_stamp)


def _camera_info(topic: str, message: Any) -> CameraInfoFields:
    try:
        return camera_info_fields(message)
    except ZoeDepthError as err:
        raise BagError(f'topic {topic} at stamp {stamp_ns(message.header)} ns: {err}') from None


def decode_rgb(connection: Any, message: Any) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an Image or CompressedImage read from ``connection``."""
    try:
        if connection.msgtype == COMPRESSED_TYPE:
            return compressed_to_rgb(message)
        return image_to_rgb(message)
    except ZoeDepthError as err:
        stamp = stamp_ns(message.header)
        raise BagError(f'topic {connection.topic} at stamp {stamp} ns: {err}') from None


def decode_depth(connection: Any, message: Any) -> np.ndarray:
    """(H, W) float32 metres (NaN invalid) of a depth Image read from ``connection``."""
    try:
        return depth_image_from_msg(message)
    except ZoeDepthError as err:
        stamp = stamp_ns(message.header)
        raise BagError(f'topic {connection.topic} at stamp {stamp} ns: {err}') from None


def read_message(reader: Any, connections: list[Any], key: Key) -> tuple[Any, Any]:
    """(connection, message) of the message at ``key`` among ``connections`` (random access)."""
    bag_time, stamp = key
    for connection, _, raw in reader.messages(connections=connections, start=bag_time,
                                              stop=bag_time + 1):
        message = reader.deserialize(raw, connection.msgtype)
        if stamp_ns(message.header) == stamp:
            return connection, message
    raise BagError(f'{reader.path}: no message at bag time {bag_time} ns with stamp '
                   f'{stamp} ns on {connections[0].topic}; was the bag changed?')


def read_rgbd(path: Path | str, topics: FrameTopics,
              on_message: RawCallback | None = None) -> Iterator[RgbdFrame]:
    """Colour frames of a bag in bag order, each with its paired depth and CameraInfo.

    Only the frame topics are decoded; the other topics, whatever their types (also ones that
    cannot be parsed, see ``BagReader.unparseable``), reach ``on_message`` as raw bytes.

    Args:
        path: rosbag2 directory (any storage, version, split or compression, see
            :class:`~zoedepth_ros.io.bag_reader.BagReader`).
        topics: image topic (Image or CompressedImage), optional depth topic (Image 32FC1
            metres or 16UC1 millimetres), optional CameraInfo topic, pairing tolerance.
        on_message: called for every message of the bag in bag order (to copy them).

    Raises:
        BagError: see :func:`index_rgbd`; also an unreadable or truncated bag.
    """
    with open_bag(path) as reader:
        index = index_rgbd(reader, topics)
        yield from _stream(reader, index, on_message)


@dataclass
class _Pending:
    """A colour message waiting for its depth map to be read."""

    position: int
    connection: Any
    message: Any
    bag_time: int
    depth_key: Key | None


def _stream(reader: Any, index: RgbdIndex, on_message: RawCallback | None
            ) -> Iterator[RgbdFrame]:
    """Second pass: decode in bag order, keeping only depth maps a waiting frame still needs."""
    wanted: dict[Key, int] = {}
    for pair in index.pairs[index.pairs >= 0]:
        key = index.depth_keys[int(pair)]
        wanted[key] = wanted.get(key, 0) + 1
    pair_of_stamp = {key[1]: int(pair) for key, pair in zip(index.image_keys, index.pairs)}
    image_ids = {c.id for c in index.connections['image']}
    depth_ids = {c.id for c in index.connections.get('depth', [])}
    selected = reader.connections if on_message else [
        c for c in reader.connections if c.id in image_ids | depth_ids]
    depth_cache: dict[Key, np.ndarray] = {}
    pending: deque[_Pending] = deque()
    count = 0
    for connection, bag_time, raw in reader.messages(connections=selected):
        if on_message is not None:
            on_message(connection, bag_time, raw)
        if connection.id in depth_ids:
            message = reader.deserialize(raw, connection.msgtype)
            key = (bag_time, stamp_ns(message.header))
            if key in wanted:
                depth_cache[key] = decode_depth(connection, message)
        elif connection.id in image_ids:
            message = reader.deserialize(raw, connection.msgtype)
            pair = pair_of_stamp[stamp_ns(message.header)]
            pending.append(_Pending(count, connection, message, bag_time,
                                    index.depth_keys[pair] if pair >= 0 else None))
            count += 1
        while pending and (pending[0].depth_key is None
                           or pending[0].depth_key in depth_cache):
            yield _frame(pending.popleft(), index, depth_cache, wanted)
    while pending:  # depth keys that never arrived cannot happen: both passes read the same bag
        yield _frame(pending.popleft(), index, depth_cache, wanted)


def _frame(item: _Pending, index: RgbdIndex, depth_cache: dict[Key, np.ndarray],
           wanted: dict[Key, int]) -> RgbdFrame:
    message, depth_key = item.message, item.depth_key
    stamp = stamp_ns(message.header)
    depth = None
    if depth_key is not None:
        depth = depth_cache.get(depth_key)
        wanted[depth_key] -= 1
        if wanted[depth_key] == 0:
            depth_cache.pop(depth_key, None)
    info = index.info_of_stamp.get(stamp)
    return RgbdFrame(item.position, stamp, item.bag_time, str(message.header.frame_id),
                     decode_rgb(item.connection, message), depth,
                     None if depth_key is None else depth_key[1] - stamp, info)
