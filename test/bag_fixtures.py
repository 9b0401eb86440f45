"""Small rosbag2 files written with rosbags for the bag tests: colour, depth and CameraInfo
topics with jitter and drops, and the checks an output bag of ``bag eval`` must pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoedepth_ros.frame import OUTPUT_TOPICS
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.bags import FrameTopics, open_bag
from zoedepth_ros.io.messages import (
    CameraInfoFields,
    depth_image_from_msg,
    encode_depth,
    image_fields,
    stamp_ns,
)

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
              image_encoding: str = 'rgb8', offsets: list[float | None] = OFFSETS_MS) -> None:
    rng = np.random.default_rng(1)
    with AtomicBagWriter(path, storage) as bag:
        for index, offset in enumerate(offsets):
            stamp = BASE_NS + index * PERIOD_NS
            header = bag.header(stamp, 'cam_optical_frame')
            rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            bag.write(TOPICS.image, bag.image(image_fields(rgb, image_encoding), header),
                      stamp + 2_000_000)
            bag.write(TOPICS.camera_info, bag.camera_info(INFO, header), stamp + 2_000_000)
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
        f'/pred/{OUTPUT_TOPICS[key]}' for key in ('depth', 'info', 'std', 'points', 'domain')}
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
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

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
