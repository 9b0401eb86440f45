"""A thousand malformed messages of every input type, interleaved with good frames.

Seeded variants of what broken drivers and corrupted links produce: Images whose fields lie
(step, size, encoding, data length, pixel counts far beyond the limit, stamps going
backwards), CompressedImages with random, truncated or lying data, CameraInfos with NaN, zero,
negative or missing focal lengths. The node must stay up, answer every good frame, count every
malformed message in /diagnostics, warn at a throttled rate, print no traceback and keep its
memory flat. Subscriptions are made reliable with a deep queue (QoS override parameters) so
that every message reaches the node instead of being replaced in DDS.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from node_harness import (
    NodeProcess,
    Probe,
    make_compressed,
    make_image,
    make_info,
    serve,
    stamp_header,
    wait_until,
)
from node_harness import test_image as image_of
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

PER_TYPE = 1000
BLOCKS = 20
"""Good frames, one after every PER_TYPE / BLOCKS malformed messages of each type."""


def bad_image(rng: np.random.Generator, header: Any) -> Image:
    rgb = image_of(8, 6, seed=int(rng.integers(1 << 30)))
    msg = make_image(rgb, header)
    kind = int(rng.integers(7))
    if kind == 0:
        msg.encoding = str(rng.choice(['bayer_rggb8', '8UC3', '', 'rgb9', 'jpeg']))
    elif kind == 1:
        msg.step = int(rng.integers(0, msg.width * 3))  # shorter than a row
    elif kind == 2:
        msg.data = bytes(msg.data)[:int(rng.integers(0, len(msg.data)))]  # truncated
    elif kind == 3:
        msg.height, msg.width = int(rng.integers(0, 2)) * 6, 0  # zero size
    elif kind == 4:  # claims far more pixels than allowed, holds a few bytes
        msg.width = msg.height = int(rng.integers(5000, 60000))
        msg.step = msg.width * 3
    elif kind == 5:
        msg.encoding, msg.width, msg.step = 'yuv422', 7, 14  # odd width for 4:2:2
    else:
        msg.data = bytes(msg.data) + bytes(int(rng.integers(1, 64)))  # trailing bytes
    return msg


def bad_compressed(rng: np.random.Generator, header: Any) -> CompressedImage:
    good = make_compressed(image_of(16, 12, seed=int(rng.integers(1 << 30))), header)
    png = bytes(good.data)
    kind = int(rng.integers(6))
    if kind == 0:
        data = rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
    elif kind == 1:
        data = png[:int(rng.integers(0, len(png) - 1))]  # truncated
    elif kind == 2:  # an IHDR that claims 60000 x 60000 pixels
        data = png[:16] + (60000).to_bytes(4, 'big') * 2 + png[24:]
    elif kind == 3:
        jpeg = cv2.imencode('.jpg', image_of(16, 12))[1].tobytes()
        data = jpeg[:int(rng.integers(2, len(jpeg) // 2))]
    elif kind == 4:
        data = cv2.imencode('.bmp', image_of(16, 12))[1].tobytes()
    else:
        return CompressedImage(header=header, format='16UC1; compressedDepth png', data=png)
    return CompressedImage(header=header, format='png', data=data)


def bad_info(rng: np.random.Generator, header: Any) -> CameraInfo:
    msg = make_info(header)
    k, p = list(msg.k), list(msg.p)
    kind = int(rng.integers(4))
    if kind == 0:
        p[0] = k[0] = float('nan')
    elif kind == 1:
        p, k = [0.0] * 12, [0.0] * 9  # an uncalibrated camera
    elif kind == 2:
        p[5] = -abs(p[5])
    else:
        p[2] = float(rng.choice([float('inf'), float('-inf')]))
    msg.k, msg.p = k, p
    return msg


def _count(probe: Probe, node: str, key: str) -> int:
    array = probe.latest('/diagnostics', lambda m: any(s.name == f'{node}: depth'
                                                      for s in m.status))
    if array is None:
        return -1
    status = next(s for s in array.status if s.name == f'{node}: depth')
    return int({kv.key: kv.value for kv in status.values}[key])


def _deep_reliable(*topics: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for topic in topics:
        params[f'qos_overrides.{topic}.subscription.reliability'] = 'reliable'
        params[f'qos_overrides.{topic}.subscription.depth'] = 2000
    return params


@pytest.mark.slow
@pytest.mark.parametrize('transport', ['raw', 'compressed'])
def test_node_survives_a_thousand_malformed_messages_of_each_type(
        tmp_path: Path, tiny_model_yaml: Path, transport: str) -> None:
    namespace = f'/fuzz_{transport}'
    image_topic = f'{namespace}/image' + ('/compressed' if transport == 'compressed' else '')
    info_topic = f'{namespace}/camera_info'
    node = NodeProcess(tmp_path / 'node.log', namespace, {
        'model': str(tiny_model_yaml), 'random_weights': True, 'device': 'cpu',
        'input_transport': transport, 'diagnostics.period_s': 0.2,
        **_deep_reliable(image_topic, info_topic)})
    probe = Probe(f'fuzz_probe_{transport}')
    rng = np.random.default_rng(7)
    kind = CompressedImage if transport == 'compressed' else Image
    image_pub = probe.publisher(kind, image_topic)
    info_pub = probe.publisher(CameraInfo, info_topic)
    probe.subscribe(DiagnosticArray, '/diagnostics')
    depth_topic = f'{namespace}/depth/image'
    probe.subscribe(Image, depth_topic)
    node_name = f'{namespace}/depth_node'
    make_bad: Callable[..., Any] = bad_compressed if transport == 'compressed' else bad_image
    sent_bad, stamp, rss = 0, 100, []
    try:
        wait_until(lambda: image_pub.get_subscription_count() and
                   info_pub.get_subscription_count(), what='the node to subscribe')
        for block in range(BLOCKS + 1):
            if block:  # malformed messages, both types interleaved in a seeded order
                for is_image in rng.permutation([True] * 50 + [False] * 50):
                    stamp += 1
                    header = stamp_header(stamp)
                    if is_image:
                        image_pub.publish(make_bad(rng, header))
                    else:
                        info_pub.publish(bad_info(rng, header))
                    sent_bad += 1
                if transport == 'raw':  # one image whose stamp goes backwards
                    image_pub.publish(make_image(image_of(8, 6), stamp_header(stamp - 60)))
                    sent_bad += 1
            stamp += 1
            good = stamp_header(stamp)
            image = image_of(64, 48, seed=block)
            msg = make_compressed(image, good) if transport == 'compressed' else make_image(
                image, good)
            depth = serve(probe, msg, make_info(good), image_pub, info_pub, depth_topic)
            assert depth.encoding == '32FC1' and (depth.width, depth.height) == (64, 48)
            rss.append(node.rss_kib())
        wait_until(lambda: _count(probe, node_name, 'malformed_total') >= sent_bad,
                   what=f'{sent_bad} malformed messages counted')
        assert _count(probe, node_name, 'malformed_total') == sent_bad
        wait_until(lambda: _count(probe, node_name, 'published_total') >= BLOCKS + 1,
                   what='every good frame counted as published')
        assert node.process.poll() is None
    finally:
        probe.close()
        code = node.stop()
    log = node.log()
    assert code == 0 and 'Traceback' not in log, log[-3000:]
    warnings = log.count('dropped input:')
    assert 1 <= warnings < sent_bad / 20, warnings  # throttled, not one per message
    assert max(rss[1:]) - rss[1] < 40 * 1024, rss  # KiB: flat after the first frames
