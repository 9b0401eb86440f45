"""The node over DDS and ``bag eval --out-bag`` give the same bytes for the same frames.

A recorded bag (colour, CameraInfo, ground truth) goes through ``evaluate_bag`` with an output
bag, and the same colour and CameraInfo messages go to a depth_node process over DDS, one
frame at a time, with the node's default parameters (which the evaluation embeds). The
serialised depth, std, CameraInfo and cloud messages of every frame must be byte-identical
(compared in canonical CDR: rclpy's serialiser leaves alignment padding uninitialised, so both
sides are decoded and encoded again with zeroed padding; every field byte is compared): one
per-frame path, one message builder, one set of options (the node pairs exactly and has
no fallback field of view, which changes nothing where every frame has its CameraInfo).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from bag_fixtures import TOPICS, write_bag
from node_harness import WAIT_S, NodeProcess, Probe, wait_until
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from zoedepth_ros.evaluation.bags import BagEvalSettings, evaluate_bag
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io.bag_reader import open_bag
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.messages import stamp_ns
from zoedepth_ros.ros.config import NodeConfig

MODEL = 'zoedepth_demo_nk'  # bundled: real weights, no download
COMPARED = {'depth/image': Image, 'depth/std': Image, 'depth/camera_info': CameraInfo,
            'points': PointCloud2}


def replay(bag: Path, out: Path) -> dict[tuple[str, int], bytes]:
    """(output topic, stamp) -> serialised message of ``bag eval --out-bag`` under /p."""
    estimator = DepthEstimator.from_pretrained(MODEL, device='cpu')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the node process (OMP_NUM_THREADS=1): the same kernels
    try:
        settings = BagEvalSettings(TOPICS, namespace='/p', frame=NodeConfig().frame)
        with AtomicBagWriter(out, 'mcap') as writer:
            evaluate_bag(estimator, bag, settings, writer)
    finally:
        torch.set_num_threads(threads)
    written = {}
    with open_bag(out) as reader:
        for connection, _, raw in reader.messages():
            topic = connection.topic.removeprefix('/p/')
            if topic in COMPARED:
                message = reader.deserialize(raw, connection.msgtype)
                written[topic, stamp_ns(message.header)] = bytes(raw)
    return written


def inputs(bag: Path) -> list[tuple[Any, Any]]:
    """The bag's (Image, CameraInfo) pairs as rclpy messages, in stamp order."""
    from rclpy.serialization import deserialize_message

    images, infos = {}, {}
    with open_bag(bag) as reader:
        for connection, _, raw in reader.messages():
            if connection.topic == TOPICS.image:
                message = deserialize_message(bytes(raw), Image)
                images[stamp_ns(message.header)] = message
            elif connection.topic == TOPICS.camera_info:
                message = deserialize_message(bytes(raw), CameraInfo)
                infos[stamp_ns(message.header)] = message
    return [(images[stamp], infos[stamp]) for stamp in sorted(images)]


def test_node_and_bag_replay_publish_identical_bytes(tmp_path: Path) -> None:
    write_bag(tmp_path / 'bag')
    expected = replay(tmp_path / 'bag', tmp_path / 'out')
    # Exact pairing and no fallback field of view: each image waits for its own CameraInfo,
    # whichever arrives first (the topics are not ordered); the bag has one per frame.
    node = NodeProcess(tmp_path / 'node.log', '/p', {'model': MODEL, 'device': 'cpu',
                                                      'sync_mode': 'exact', 'fov_deg': 0.0})
    probe = Probe('parity_probe')
    received: dict[tuple[str, int], bytes] = {}
    try:
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        for topic, kind in COMPARED.items():
            def keep(raw: bytes, topic: str = topic, kind: type = kind) -> None:
                from rclpy.serialization import deserialize_message

                received[topic, stamp_ns(deserialize_message(raw, kind).header)] = raw

            probe.node.create_subscription(kind, f'/p/{topic}', keep, reliable, raw=True)
        image_pub = probe.publisher(Image, '/p/image')
        info_pub = probe.publisher(CameraInfo, '/p/camera_info')
        wait_until(lambda: image_pub.get_subscription_count() and info_pub.get_subscription_count()
                   and all(
            probe.node.count_publishers(f'/p/{topic}') for topic in COMPARED) and all(
            node_sees_subscriber(probe, topic) for topic in COMPARED),
            timeout_s=3 * WAIT_S, what='the node and the probe to match')
        frames = inputs(tmp_path / 'bag')
        for image, info in frames:  # one frame at a time: none is replaced while waiting
            stamp = stamp_ns(image.header)
            # Sent again every half second until answered, as a camera would: the sensor-data
            # subscriptions are best effort, and the very first messages can precede the
            # subscriber's side of discovery. A repeat has the same stamp and bytes.
            wait_until(lambda image=image, info=info, stamp=stamp: all(
                (t, stamp) in received for t in COMPARED) or send(info_pub, image_pub, info,
                                                                 image),
                timeout_s=3 * WAIT_S, what=f'the outputs of frame {stamp}')
    finally:
        probe.close()
        code = node.stop()
    assert code == 0, node.log()
    assert len(frames) == 6 and set(received) == set(expected)
    for (topic, stamp), raw in expected.items():
        ours, theirs = canonical(topic, received[topic, stamp]), canonical(topic, raw)
        assert ours == theirs, (topic, stamp, TYPESTORE.deserialize_cdr(ours, msgtype(topic)),
                                TYPESTORE.deserialize_cdr(theirs, msgtype(topic)))


TYPESTORE = get_typestore(Stores.ROS2_KILTED)


def msgtype(topic: str) -> str:
    kind = COMPARED[topic]
    return f'sensor_msgs/msg/{kind.__name__}'


def canonical(topic: str, raw: bytes) -> bytes:
    """The CDR of ``raw`` with zeroed alignment padding (every field byte as it was)."""
    kind = msgtype(topic)
    return bytes(TYPESTORE.serialize_cdr(TYPESTORE.deserialize_cdr(raw, kind), kind))


_sent: dict[int, float] = {}


def send(info_pub: Any, image_pub: Any, info: Any, image: Any) -> bool:
    """Publish the CameraInfo and the image, at most every 0.5 s per stamp; False."""
    stamp = stamp_ns(image.header)
    if time.monotonic() - _sent.get(stamp, -1.0) >= 0.5:
        _sent[stamp] = time.monotonic()
        info_pub.publish(info)
        image_pub.publish(image)
    return False


def node_sees_subscriber(probe: Probe, topic: str) -> bool:
    return any(info.node_name == 'parity_probe'
               for info in probe.node.get_subscriptions_info_by_topic(f'/p/{topic}'))
