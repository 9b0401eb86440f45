"""depth_node's per-frame work outside the model, with a null model; optional DDS latency.

Usage (from the repository root, with the venv's python):
    python benchmarks/bench_node.py [--sizes 640x480 1280x720] [--iterations 40]
        [--e2e-frames 0] [--json PATH]

Part 1 runs the real DepthNode in this process on each frame with the node's own code:
input conversion (``_decode``), the estimator's upload and float conversion, the model call's
resize/normalise and upsampling, range/std gate, cloud packing, copy to the host, message
filling, CDR serialisation and ``publish`` to a subscriber in another node over loopback DDS.
The network is replaced by a null model that returns fixed outputs at the network size, so
the time is ours only. Cases: rgb8 with the node's defaults (32FC1 depth, std, organised
xyzrgb cloud at stride 2), a jpeg CompressedImage input, and a full-resolution dense xyz
cloud. Part 2 (``--e2e-frames N``) starts the node as a subprocess with a tiny random-weight
model and reports ``receive time - header.stamp`` over DDS, one frame in flight at a time.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from typing import Any

import cv2
import numpy as np
import rclpy
from common import (
    DEFAULT_OUTPUT_DIR,
    REPO,
    latency_stats,
    machine_facts,
    max_rss_mb,
    versions,
    write_report,
)
from doubles import null_estimator
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header, String

from zoedepth_ros.frame import OUTPUT_TOPICS
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io import messages
from zoedepth_ros.model.loading import is_config_source
from zoedepth_ros.ros import convert
from zoedepth_ros.ros import depth_node as depth_node_module
from zoedepth_ros.ros.depth_node import MESSAGE_TYPES, DepthNode

TARGET_MS = 5.0
"""Issue target: node overhead at 640x480 with the defaults."""

CASES: dict[str, dict[str, Any]] = {
    'rgb8_defaults': {},
    'jpeg_defaults': {'input_transport': 'compressed'},
    'rgb8_dense_xyz_stride1': {'cloud.stride': 1, 'cloud.organized': False,
                               'cloud.color': False},
}


def frame_messages(width: int, height: int) -> tuple[Image, CompressedImage, CameraInfo]:
    rgb = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    header = Header(frame_id='camera_optical_frame')
    raw = Image(header=header, height=height, width=width, encoding='rgb8', step=width * 3,
                data=rgb.tobytes())
    jpeg = CompressedImage(header=header, format='jpeg', data=cv2.imencode(
        '.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    camera = messages.camera_info_from_camera(PinholeCamera.from_fov(width, height, 60.0))
    return raw, jpeg, convert.camera_info_message(camera, header)


def make_node(index: int, overrides: dict[str, Any]) -> DepthNode:
    """A DepthNode on the CPU with the null model in place of its network."""
    parameters = {'model': 'zoedepth_tiny_nk', 'random_weights': True, 'device': 'cpu',
                  **overrides}
    node = DepthNode(namespace=f'/bench{index}', parameter_overrides=[
        Parameter(name, value=value) for name, value in parameters.items()])
    node.estimator = null_estimator()
    return node


def wait_for_subscribers(node: DepthNode, sink: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(node._wanted(key) for key in ('depth', 'info', 'points', 'std', 'domain')):
            return
        rclpy.spin_once(sink, timeout_sec=0.05)
    raise SystemExit('the sink subscribers were not discovered within 30 s')


def per_frame(node: DepthNode, msg: Any, info: CameraInfo, iterations: int, warmup: int
              ) -> dict[str, Any]:
    """Wall time of decode -> publish for one frame, and its phases, in milliseconds."""
    phases: dict[str, list[float]] = {'decode': [], 'preprocess': [], 'model_call': [],
                                      'postprocess': [], 'encode_publish': [], 'total': []}
    predict = depth_node_module.predict_frame
    recorded: dict[str, float] = {}

    def predict_frame(*args: Any, **kwargs: Any) -> Any:
        result = predict(*args, **kwargs)
        recorded.update(result.timings_ms)
        return result

    depth_node_module.predict_frame = predict_frame  # the node's per-frame call, timed
    try:
        for index in range(warmup + iterations):
            node._last_stamp = None  # the same message again is not a stamp going backwards
            start = time.perf_counter()
            frame = node._decode(msg)
            decoded = time.perf_counter()
            frame.info = messages.camera_info_fields(info)
            node._process(frame)
            done = time.perf_counter()
            if index < warmup:
                continue
            estimator_ms = sum(recorded.values())
            phases['decode'].append(decoded - start)
            phases['preprocess'].append(1e-3 * recorded['preprocess'])
            phases['model_call'].append(1e-3 * recorded['model'])
            phases['postprocess'].append(1e-3 * recorded['postprocess'])
            phases['encode_publish'].append(done - decoded - 1e-3 * estimator_ms)
            phases['total'].append(done - start)
    finally:
        depth_node_module.predict_frame = predict
    return {name: latency_stats(values) for name, values in phases.items()}


def overhead(sizes: list[tuple[int, int]], iterations: int, warmup: int) -> list[dict[str, Any]]:
    sink = rclpy.create_node('bench_sink')
    rows = []
    try:
        for index, (name, overrides) in enumerate(CASES.items()):
            node = make_node(index, overrides)
            reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
            for key in ('depth', 'info', 'points', 'std'):
                sink.create_subscription(MESSAGE_TYPES[key], f'/bench{index}/{OUTPUT_TOPICS[key]}',
                                         lambda _: None, reliable)
            sink.create_subscription(String, f'/bench{index}/domain', lambda _: None, reliable)
            try:
                wait_for_subscribers(node, sink)
                for width, height in sizes:
                    raw, jpeg, info = frame_messages(width, height)
                    msg = jpeg if overrides.get('input_transport') == 'compressed' else raw
                    stats = per_frame(node, msg, info, iterations, warmup)
                    rows.append({'case': name, 'size': f'{width}x{height}',
                                 'parameters': overrides, 'phases_ms': stats})
            finally:
                node.destroy_node()
    finally:
        sink.destroy_node()
    return rows


def end_to_end(width: int, height: int, frames: int, model: str) -> dict[str, Any]:
    """Latency of the real node (tiny model) over DDS, one frame in flight at a time."""
    command = [sys.executable, '-m', 'zoedepth_ros.ros.depth_node', '--ros-args',
               '--params-file', str(REPO / 'config' / 'depth.yaml'), '-p', 'device:=cpu',
               '-p', f'model:={model}', '-p', f'random_weights:={is_config_source(model)}',
               '-r', '__ns:=/e2e',
               # Reliable input: best-effort ~1 MB images get lost on loopback here (~30 %).
               '-p', 'qos_overrides./e2e/image.subscription.reliability:=reliable']
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    node = rclpy.create_node('bench_e2e')
    received: list[tuple[float, Any]] = []
    node.create_subscription(Image, '/e2e/depth/image',
                             lambda m: received.append((time.time(), m)), QoSProfile(depth=5))
    node.create_subscription(PointCloud2, '/e2e/points', lambda _: None, QoSProfile(depth=5))
    image_pub = node.create_publisher(Image, '/e2e/image', QoSProfile(depth=1))
    info_pub = node.create_publisher(CameraInfo, '/e2e/camera_info', QoSProfile(depth=1))
    raw, _, info = frame_messages(width, height)
    latencies = []
    try:
        deadline = time.monotonic() + 120
        while (not image_pub.get_subscription_count() or not node.count_publishers(
                '/e2e/depth/image')) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        for index in range(frames + 1):
            now_ns = time.time_ns()
            raw.header.stamp.sec, raw.header.stamp.nanosec = now_ns // 10**9, now_ns % 10**9
            info.header = raw.header
            info_pub.publish(info)
            image_pub.publish(raw)
            count = len(received)
            wait_end = time.monotonic() + 60
            while len(received) == count and time.monotonic() < wait_end:
                rclpy.spin_once(node, timeout_sec=0.05)
            if len(received) > count and index > 0:  # the first frame warms up
                arrival, msg = received[-1]
                latencies.append(arrival - messages.stamp_ns(msg.header) * 1e-9)
    finally:
        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=30)
        node.destroy_node()
    if not latencies:
        raise SystemExit(f'end-to-end {width}x{height}: no depth image came back')
    return {'size': f'{width}x{height}', 'model': model, 'node_exit_code': exit_code,
            'latency': latency_stats(latencies)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', default=['640x480', '1280x720'])
    parser.add_argument('--iterations', type=int, default=40)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--e2e-frames', type=int, default=0,
                        help='also measure DDS latency of the node process (tiny model)')
    parser.add_argument('--model', default='zoedepth_tiny_nk',
                        help='model of the end-to-end node (preset or ModelConfig YAML)')
    parser.add_argument('--json', default=str(DEFAULT_OUTPUT_DIR / 'node.json'))
    args = parser.parse_args()
    try:
        sizes = [tuple(int(v) for v in text.lower().split('x')) for text in args.sizes]
    except ValueError:
        parser.error(f'--sizes takes WIDTHxHEIGHT values, got {args.sizes}')
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    rclpy.init()
    try:
        rows = overhead(sizes, args.iterations, args.warmup)  # type: ignore[arg-type]
        e2e = [end_to_end(w, h, args.e2e_frames, args.model)
               for w, h in sizes] if args.e2e_frames else []
    finally:
        rclpy.try_shutdown()
    report = {'benchmark': 'node', **machine_facts('cpu'), 'versions': versions('rclpy'),
              'dtype': 'float32', 'target_ms_640x480': TARGET_MS, 'iterations': args.iterations,
              'warmup': args.warmup, 'peak_rss_mb': max_rss_mb(), 'overhead': rows,
              'end_to_end': e2e}
    path = write_report(args.json, report)
    for row in rows:
        phases = row['phases_ms']
        parts = ', '.join(f'{name} {value["median_ms"]:.2f}' for name, value in phases.items()
                          if name != 'total')
        verdict = ''
        if row['size'] == '640x480' and row['case'] == 'rgb8_defaults':
            met = phases['total']['median_ms'] <= TARGET_MS
            verdict = f' [target <= {TARGET_MS:.0f} ms: {"met" if met else "MISSED"}]'
        print(f'node {row["size"]} {row["case"]}: {phases["total"]["median_ms"]:.2f} ms median '
              f'(p90 {phases["total"]["p90_ms"]:.2f}) = {parts}{verdict}')
    for row in e2e:
        print(f'node {row["size"]} end-to-end ({row["model"]}): median '
              f'{row["latency"]["median_ms"]:.0f} ms, p90 {row["latency"]["p90_ms"]:.0f} ms '
              f'over {row["latency"]["iterations"]} frames')
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
