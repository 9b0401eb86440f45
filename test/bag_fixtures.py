"""Small rosbag2 files written with rosbags for the bag tests: colour, depth and CameraInfo
topics with jitter and drops, and the checks an output bag of ``bag eval`` must pass; bags as
rosbag2 writes them in the wild: topics whose types cannot be parsed, metadata versions 4..9,
split bags and zstd compression."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import CompressionFormat, CompressionMode, Reader, StoragePlugin, Writer
from rosbags.rosbag2.metadata import dump_qos_v8, parse_qos
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from zoedepth_ros.io.bag_reader import open_bag
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.bags import FrameTopics
from zoedepth_ros.io.messages import (
    XYZ_FIELDS,
    CameraInfoFields,
    PackedCloud,
    depth_image_from_msg,
    encode_depth,
    image_fields,
    stamp_ns,
)
from zoedepth_ros.pipeline.outputs import OUTPUT_BY_KEY

BASE_NS = 1_700_000_000_000_000_000
PERIOD_NS = 100_000_000
TOPICS = FrameTopics('/cam/image_raw', '/cam/depth', '/cam/camera_info', tolerance_s=0.02)
INFO = CameraInfoFields(64, 48, 'plumb_bob', (0.0,) * 5,
                        (40.0, 0.0, 31.5, 0.0, 40.0, 23.5, 0.0, 0.0, 1.0),
                        (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
                        (40.0, 0.0, 31.5, 0.0, 0.0, 40.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0))
# depth stamp offsets (ms) per colour frame; None = dropped, 50 = beyond the 20 ms tolerance
OFFSETS_MS: list[float | None] = [0.0, 3.0, -4.0, None, 50.0, 1.0]
PAIRED = [0, 1, 2, 5]


def gt_depth(index: int, shape: tuple[int, int] = (24, 32)) -> np.ndarray:
    """A slanted plane 1..6 m whose offset identifies the frame; one invalid corner."""
    rows = np.linspace(1.0, 5.0, shape[0], dtype=np.float32)[:, None]
    depth = np.repeat(rows, shape[1], axis=1) + np.float32(0.1 * index)
    depth[:2, :2] = np.nan
    return depth


def write_bag(path: Path, storage: str = 'sqlite3', depth_encoding: str = '32FC1',
              image_encoding: str = 'rgb8', offsets: list[float | None] = OFFSETS_MS,
              extra: Callable[[AtomicBagWriter, int, int], None] | None = None,
              info_topic: str | None = TOPICS.camera_info) -> None:
    """The RGB-D test bag; ``extra(bag, index, stamp_ns)`` may add messages per frame; the
    CameraInfo goes on ``info_topic`` (None: no CameraInfo)."""
    rng = np.random.default_rng(1)
    with AtomicBagWriter(path, storage) as bag:
        for index, offset in enumerate(offsets):
            stamp = BASE_NS + index * PERIOD_NS
            if extra is not None:
                extra(bag, index, stamp)
            header = bag.header(stamp, 'cam_optical_frame')
            rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            bag.write(TOPICS.image, bag.image(image_fields(rgb, image_encoding), header),
                      stamp + 2_000_000)
            if info_topic is not None:
                bag.write(info_topic, bag.camera_info(INFO, header), stamp + 2_000_000)
            if offset is not None:
                depth_stamp = stamp + int(offset * 1e6)
                fields = encode_depth(gt_depth(index), depth_encoding)
                bag.write(TOPICS.depth,
                          bag.image(fields, bag.header(depth_stamp, 'cam_optical_frame')),
                          depth_stamp + 1_000_000)


def check_output_bag(path: Path) -> None:
    """Original topics copied; predictions at every colour stamp with the right layout."""
    seen: dict[str, list] = {}
    with open_bag(path) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for connection, bag_time, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            seen.setdefault(connection.topic, []).append((bag_time, message))
    assert types['/pred/depth/image'] == types['/pred/depth/std'] == 'sensor_msgs/msg/Image'
    assert types['/pred/depth/camera_info'] == 'sensor_msgs/msg/CameraInfo'
    assert types['/pred/points'] == 'sensor_msgs/msg/PointCloud2'
    assert types['/pred/domain'] == 'std_msgs/msg/String'
    assert {t for t in types if t.startswith('/pred/')} == {
        f'/pred/{OUTPUT_BY_KEY[key].topic}'
        for key in ('depth', 'info', 'std', 'points', 'domain')}
    assert len(seen[TOPICS.image]) == 6 and len(seen[TOPICS.depth]) == 5
    colour_times = [(t, stamp_ns(m.header)) for t, m in seen[TOPICS.image]]
    for topic in ('/pred/depth/image', '/pred/depth/camera_info', '/pred/depth/std',
                  '/pred/points'):
        assert [(t, stamp_ns(m.header)) for t, m in seen[topic]] == colour_times, topic
        assert {m.header.frame_id for _, m in seen[topic]} == {'cam_optical_frame'}
    assert [t for t, _ in seen['/pred/domain']] == [t for t, _ in colour_times]
    assert {m.data for _, m in seen['/pred/domain']} <= {'indoor', 'outdoor'}
    depth = seen['/pred/depth/image'][0][1]
    assert (depth.encoding, depth.height, depth.width, depth.step) == ('32FC1', 48, 64, 256)
    assert np.isfinite(depth_image_from_msg(depth)).all()
    assert seen['/pred/depth/std'][0][1].encoding == '32FC1'
    info = seen['/pred/depth/camera_info'][0][1]
    assert (info.width, info.height) == (64, 48) and list(info.p) == list(INFO.p)
    cloud = seen['/pred/points'][0][1]
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z', 'rgb']
    assert (cloud.height, cloud.width, cloud.point_step) == (24, 32, 16)


def truncate(bag: Path) -> None:
    storage = next(p for p in bag.iterdir() if p.suffix in ('.db3', '.mcap'))
    data = storage.read_bytes()
    storage.write_bytes(data[:len(data) // 2])


def custom_type_bag(bag: Path) -> None:
    """A bag whose image topic carries a type no typestore knows (defined in the bag)."""
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg('int32 value', 'acme_msgs/msg/Frame'))
    with Writer(bag, version=9) as writer:
        connection = writer.add_connection('/cam/image_raw', 'acme_msgs/msg/Frame',
                                           typestore=store)
        writer.write(connection, BASE_NS, b'\x00\x01\x00\x00\x07\x00\x00\x00')


def write_mono_depth_bag(path: Path) -> None:
    with AtomicBagWriter(path, 'sqlite3') as bag:
        header = bag.header(BASE_NS, 'cam_optical_frame')
        rgb = np.zeros((48, 64, 3), dtype=np.uint8)
        bag.write(TOPICS.image, bag.image(image_fields(rgb, 'rgb8'), header), BASE_NS)
        bag.write(TOPICS.camera_info, bag.camera_info(INFO, header), BASE_NS)
        mono = image_fields(np.zeros((24, 32, 1), dtype=np.uint8), 'mono8')
        bag.write(TOPICS.depth, bag.image(mono, header), BASE_NS)


# ------------------------------------------------------------------ bags as rosbag2 writes them

UNPARSEABLE = {  # topic -> (type, stored definition that rosbags cannot turn into that type)
    '/x/_service_event': ('some_pkg/srv/Foo_Event', 'int64 a\nint64 b\n---\nint64 sum\n'),
    '/acme/broken': ('acme_msgs/msg/Broken', 'this is not ((( a msg'),
}
CUSTOM = ('/acme/frame', 'acme_msgs/msg/Frame', 'int32 value')  # defined in the bag, parseable
FAKE_RIHS01 = 'RIHS01_' + '0' * 64
RawMessage = tuple[str, str, int, bytes]
"""(topic, type, bag time ns, raw CDR) of one message."""


def raw_messages(bag: Path) -> list[RawMessage]:
    """Every message of a bag, read with rosbags' own reader (independent of the code tested)."""
    with Reader(bag) as reader:
        return [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in reader.messages()]


def extra_messages() -> list[RawMessage]:
    """Three messages on each unparseable topic and on the custom one, inside the frames' span."""
    out = [(topic, msgtype, BASE_NS + k * PERIOD_NS + 5_000_000, bytes([k + 1]) * 12)
           for topic, (msgtype, _) in UNPARSEABLE.items() for k in range(3)]
    out += [(CUSTOM[0], CUSTOM[1], BASE_NS + k * PERIOD_NS + 6_000_000,
             b'\x00\x01\x00\x00' + (40 + k).to_bytes(4, 'little')) for k in range(3)]
    return out


def write_raw_bag(target: Path, messages: list[RawMessage], storage: str = 'mcap',
                  compression: str | None = None) -> None:
    """A version 9 bag of ``messages`` written by rosbags' Writer: standard types with their ROS 2
    Kilted definitions, UNPARSEABLE topics with their broken definitions, CUSTOM from its own;
    the CameraInfo topic offers a latched QoS; ``compression``: 'file', 'message' or 'storage'
    (zstd; 'storage' is mcap chunk compression)."""
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg(CUSTOM[2], CUSTOM[1]))
    zero = QosTime(0, 0)
    latched = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE,
                  QosDurability.TRANSIENT_LOCAL, zero, zero, QosLiveliness.AUTOMATIC, zero, False)
    writer = Writer(target, version=9, storage_plugin=StoragePlugin[storage.upper()])
    if compression is not None:
        writer.set_compression(CompressionMode[compression.upper()], CompressionFormat.ZSTD)
    connections: dict[str, object] = {}
    with writer:
        for topic, msgtype, bag_time, raw in sorted(messages, key=lambda m: m[2]):
            if topic not in connections:
                options: dict = ({'msgdef': UNPARSEABLE[topic][1], 'rihs01': FAKE_RIHS01}
                                 if topic in UNPARSEABLE else {'typestore': store})
                if msgtype == 'sensor_msgs/msg/CameraInfo':
                    options['offered_qos_profiles'] = [latched]
                connections[topic] = writer.add_connection(topic, msgtype, **options)
            writer.write(connections[topic], bag_time, raw)


def compat_bag(target: Path, storage: str = 'mcap', compression: str | None = None) -> None:
    """write_bag's frames plus the unparseable and custom topics, written by rosbags' Writer."""
    source = target.parent / f'{target.name}_source'
    write_bag(source, 'sqlite3')
    write_raw_bag(target, raw_messages(source) + extra_messages(), storage, compression)


def _metadata(bag: Path) -> dict:
    return yaml.safe_load((bag / 'metadata.yaml').read_text())


def _save_metadata(bag: Path, data: dict) -> None:
    (bag / 'metadata.yaml').write_text(yaml.safe_dump(data, sort_keys=False))


def downgrade_metadata(bag: Path, version: int) -> None:
    """Rewrite a version 9 metadata.yaml in the schema rosbag2 ``version`` (4..8) wrote: QoS as a
    YAML string with numeric policies (<9), no ros_distro (<8), no type hashes (<7), no
    custom_data (<6), no per-file entries (<5)."""
    data = _metadata(bag)
    meta = data['rosbag2_bagfile_information']
    meta['version'] = version
    for entry in meta['topics_with_message_count']:
        topic = entry['topic_metadata']
        topic['offered_qos_profiles'] = dump_qos_v8(parse_qos(topic['offered_qos_profiles']))
        if version < 7:
            del topic['type_description_hash']
    for key, below in (('ros_distro', 8), ('custom_data', 6), ('files', 5)):
        if version < below:
            del meta[key]
    _save_metadata(bag, data)


def split_bag(target: Path, messages: list[RawMessage], storage: str) -> None:
    """One bag directory with two storage files (earlier and later half of the messages) and
    the merged metadata that lists both, as rosbag2 writes a split bag."""
    ordered = sorted(messages, key=lambda m: m[2])
    parts = [target.parent / f'{target.name}_{k}' for k in range(2)]
    write_raw_bag(parts[0], ordered[:len(ordered) // 2], storage)
    write_raw_bag(parts[1], ordered[len(ordered) // 2:], storage)
    metas = [_metadata(part)['rosbag2_bagfile_information'] for part in parts]
    merged = dict(metas[0])
    starts = [m['starting_time']['nanoseconds_since_epoch'] for m in metas]
    ends = [s + m['duration']['nanoseconds'] for s, m in zip(starts, metas)]
    merged.update(relative_file_paths=[f for m in metas for f in m['relative_file_paths']],
                  files=[f for m in metas for f in m['files']],
                  message_count=sum(m['message_count'] for m in metas),
                  starting_time={'nanoseconds_since_epoch': min(starts)},
                  duration={'nanoseconds': max(ends) - min(starts)})
    topics: dict[str, dict] = {}
    for entry in (e for m in metas for e in m['topics_with_message_count']):
        name = entry['topic_metadata']['name']
        if name in topics:
            topics[name]['message_count'] += entry['message_count']
        else:
            topics[name] = dict(entry)
    merged['topics_with_message_count'] = list(topics.values())
    target.mkdir()
    for part, meta in zip(parts, metas):
        for name in meta['relative_file_paths']:
            (part / name).rename(target / name)
    _save_metadata(target, {'rosbag2_bagfile_information': merged})


def sparse_image(bag: AtomicBagWriter, index: int, stamp: int) -> None:
    """A ToF-like sparse depth image: 3.0 m on every 4th pixel, none for frame 4."""
    if index == 4:
        return
    sparse = np.full((24, 32), np.nan, dtype=np.float32)
    sparse[::4, ::4] = 3.0
    bag.write('/cam/sparse', bag.image(encode_depth(sparse, '32FC1'),
                                       bag.header(stamp + 3_000_000, 'cam_optical_frame')),
              stamp + 3_000_000)


def sparse_cloud(bag: AtomicBagWriter, index: int, stamp: int) -> None:
    """Lidar-like points 3.0 m ahead of the camera, given in a frame rotated about the optical
    axis by 90 degrees and shifted 0.5 m along it (undone by the extrinsic)."""
    rows, cols = np.mgrid[-0.4:0.4:5j, -0.6:0.6:7j]
    optical = np.stack([cols.ravel(), rows.ravel(), np.full(rows.size, 3.0)], axis=1)
    lidar = np.stack([optical[:, 1], -optical[:, 0], optical[:, 2] - 0.5], axis=1)
    data = np.ascontiguousarray(lidar, dtype='<f4')
    cloud = PackedCloud(1, len(data), XYZ_FIELDS, 12, 12 * len(data), True, data.tobytes())
    bag.write('/cam/lidar', bag.point_cloud(cloud, bag.header(stamp, 'lidar')), stamp)


# optical = R lidar + t with R a +90 degree turn about z: quaternion (0, 0, sin 45, cos 45)
LIDAR_EXTRINSIC = (0.0, 0.0, 0.5, 0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5))
