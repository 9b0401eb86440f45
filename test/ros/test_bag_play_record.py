"""play -> depth_node -> record over real DDS on loopback, with a tiny random-weight model.

A bag written with rosbags is played by ``play_bag`` (raw CDR) into the node running as a
subprocess; ``zoedepth bag record`` (another subprocess) records the node's outputs. An
independent test subscriber sees which frames the node served; every one of them must be in
the recorded bag with the input's stamp and frame id.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from node_harness import REPO, NodeProcess, Probe, wait_until
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import String

from zoedepth_ros.errors import BagError
from zoedepth_ros.io.bag_reader import open_bag
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.messages import CameraInfoFields, image_fields, stamp_ns
from zoedepth_ros.ros.bag_play import play_bag
from zoedepth_ros.ros.bag_record import record_bag

FRAMES = 5
BASE_NS = 1_700_000_123_000_000_000
INFO = CameraInfoFields(64, 48, 'plumb_bob', (0.0,) * 5,
                        (50.0, 0.0, 31.5, 0.0, 52.0, 23.5, 0.0, 0.0, 1.0),
                        (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
                        (48.0, 0.0, 30.0, 0.0, 0.0, 50.0, 22.0, 0.0, 0.0, 0.0, 1.0, 0.0))


def write_input_bag(path: Path) -> list[int]:
    """FRAMES colour images + CameraInfo at irregular stamps; bag time lags the stamp by 3 ms."""
    rng = np.random.default_rng(0)
    stamps = [BASE_NS + i * 400_000_000 + int(rng.integers(0, 5_000_000)) for i in range(FRAMES)]
    with AtomicBagWriter(path, 'sqlite3') as bag:
        for stamp in stamps:
            header = bag.header(stamp, 'cam_optical_frame')
            rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            bag.write('/cam/image_raw', bag.image(image_fields(rgb, 'rgb8'), header),
                      stamp + 3_000_000)
            bag.write('/cam/camera_info', bag.camera_info(INFO, header), stamp + 3_000_000)
    return stamps


def recorded(path: Path) -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    with open_bag(path) as reader:
        for connection, _, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            out.setdefault(connection.topic, []).append(
                (stamp_ns(message.header), message.header.frame_id))
    return out


def wait_quiet(messages: list, quiet_s: float) -> None:
    """Return once ``messages`` has not grown for ``quiet_s`` seconds."""
    last = [len(messages), time.monotonic()]

    def quiet() -> bool:
        if len(messages) != last[0]:
            last[:] = [len(messages), time.monotonic()]
        return time.monotonic() - last[1] > quiet_s

    wait_until(quiet, what='the node to go quiet')


@pytest.mark.slow
def test_play_node_record_round_trip(tmp_path: Path, tiny_model_yaml: Path) -> None:
    stamps = write_input_bag(tmp_path / 'input')
    out_bag = tmp_path / 'recorded'
    node = NodeProcess(tmp_path / 'node.log', '/zoedepth',
                       {'model': str(tiny_model_yaml), 'random_weights': True, 'device': 'cpu'},
                       {'image': '/cam/image_raw', 'camera_info': '/cam/camera_info'})
    record_log = open(tmp_path / 'record.log', 'w')  # noqa: SIM115 - closed below
    record = subprocess.Popen(
        [sys.executable, '-m', 'zoedepth_ros.cli.main', 'bag', 'record', str(out_bag),
         '--storage', 'sqlite3', '--discovery-timeout', '60', '--topics',
         '/zoedepth/depth/image', '/zoedepth/depth/camera_info'],
        cwd=REPO, stdout=record_log, stderr=subprocess.STDOUT)
    probe = Probe('bag_probe')
    served = probe.subscribe(Image, '/zoedepth/depth/image')
    clock = probe.subscribe(Clock, '/clock')
    try:
        wait_until(lambda: 'recording' in (tmp_path / 'record.log').read_text(),
                   what=f'the recorder to subscribe; node log:\n{node.log()}')
        wait_until(lambda: probe.node.count_publishers('/zoedepth/depth/image') > 0,
                   what='the probe to discover the node')
        played = play_bag(tmp_path / 'input', rate=1.0,
                          topics=['/cam/image_raw', '/cam/camera_info'], clock=True,
                          wait_for_subscribers_s=30.0)
        assert played == 2 * FRAMES
        wait_until(lambda: len(served) >= 1, what='a served frame')
        wait_quiet(served, 3.0)  # the node has finished its last frame
    finally:
        record.send_signal(signal.SIGINT)
        code = record.wait(timeout=30)
        record_log.close()
        node.stop()
        probe.close()
    assert code == 0, (tmp_path / 'record.log').read_text()
    served_stamps = sorted(stamp_ns(message.header) for _, message in served)
    bag = recorded(out_bag)
    depth = bag['/zoedepth/depth/image']
    info = bag['/zoedepth/depth/camera_info']
    assert served_stamps and set(served_stamps) <= set(stamps), (served_stamps, stamps)
    assert sorted(s for s, _ in depth) == served_stamps, (depth, served_stamps)
    assert sorted(s for s, _ in info) == served_stamps, (info, served_stamps)
    assert {frame for _, frame in depth + info} == {'cam_optical_frame'}
    assert not list(tmp_path.glob('.recorded.partial-*'))
    ticks = [m.clock.sec * 10**9 + m.clock.nanosec for _, m in clock]
    bag_times = [s + 3_000_000 for s in stamps]
    assert ticks and ticks == sorted(ticks), ticks  # bag time, in order
    assert bag_times[0] <= ticks[0] and ticks[-1] <= bag_times[-1], (ticks, bag_times)


def test_record_and_play_refuse_missing_topics(tmp_path: Path) -> None:
    """No publisher appears: one error and no bag; playing an absent topic lists the bag's."""
    with pytest.raises(BagError, match=r"no publisher of \['/nobody/here'\] appeared"):
        record_bag(tmp_path / 'out', ['/nobody/here'], discovery_timeout_s=0.5)
    assert list(tmp_path.iterdir()) == []
    write_input_bag(tmp_path / 'input')
    with pytest.raises(BagError, match='has no topic .*/cam/camera_info, /cam/image_raw'):
        play_bag(tmp_path / 'input', topics=['/cam/missing'])


def test_loop_duration_and_latched_topics(tmp_path: Path) -> None:
    """play --loop until stopped, record --duration, and TRANSIENT_LOCAL kept both ways."""
    write_input_bag(tmp_path / 'plain')
    latched_qos = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE,
                      QosDurability.TRANSIENT_LOCAL, QosTime(0, 0), QosTime(0, 0),
                      QosLiveliness.AUTOMATIC, QosTime(0, 0), False)
    with open_bag(tmp_path / 'plain') as reader, \
            AtomicBagWriter(tmp_path / 'input', 'sqlite3') as bag:
        bag.connection('/map_name', 'std_msgs/msg/String', qos=[latched_qos])
        bag.write('/map_name', bag.typestore.types['std_msgs/msg/String'](data='lab'), BASE_NS)
        for connection, bag_time, raw in reader.messages():
            bag.write_raw(connection.topic, connection.msgtype, bag_time, raw, connection)
    stop = threading.Event()
    played: list[int] = []
    player = threading.Thread(target=lambda: played.append(play_bag(
        tmp_path / 'input', rate=4.0, loop=True, stop=stop)))
    player.start()
    try:
        start = time.monotonic()
        counts = record_bag(tmp_path / 'out', ['/cam/image_raw', '/map_name'],
                            storage='mcap', duration_s=2.0, discovery_timeout_s=30.0)
        assert 2.0 <= time.monotonic() - start < 40.0
        # A late TRANSIENT_LOCAL subscriber matches only a TRANSIENT_LOCAL publisher.
        probe = Probe('latched_probe')
        names = probe.subscribe(String, '/map_name', QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL))
        try:
            wait_until(lambda: names, what='the latched message for a late subscriber')
        finally:
            probe.close()
    finally:
        stop.set()
        player.join(timeout=30)
    assert not player.is_alive() and played[0] > 3 * (2 * FRAMES + 1)  # several loops
    # 2 s at 4x of a 1.6 s bag: several loops' images in the recording.
    assert counts['/cam/image_raw'] > FRAMES and counts['/map_name'] >= 1, counts
    with open_bag(tmp_path / 'out') as reader:
        profiles = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
    assert [q.durability for q in profiles['/map_name']] == [QosDurability.TRANSIENT_LOCAL]
    assert [(q.reliability, q.durability) for q in profiles['/cam/image_raw']] == [
        (QosReliability.RELIABLE, QosDurability.VOLATILE)]


def test_play_loop_ends_cleanly_on_sigint(tmp_path: Path) -> None:
    """``bag play --loop`` repeats the bag until Ctrl-C, then exits 0 with its count."""
    write_input_bag(tmp_path / 'input')
    probe = Probe('loop_probe')
    images = probe.subscribe(Image, '/cam/image_raw')
    player = subprocess.Popen(
        [sys.executable, '-m', 'zoedepth_ros.cli.main', 'bag', 'play', str(tmp_path / 'input'),
         '--loop', '--rate', '4', '--topics', '/cam/image_raw'],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: len(images) > FRAMES, what='a second pass over the bag')
        player.send_signal(signal.SIGINT)
        output, _ = player.communicate(timeout=20)
    finally:
        player.kill()
        probe.close()
    assert player.returncode == 0, output
    assert 'played' in output and 'Traceback' not in output
