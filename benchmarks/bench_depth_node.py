"""depth_node per-frame overhead outside the model, and end-to-end latency over DDS.

Usage (from the repository root, with the venv's python):
    python benchmarks/bench_depth_node.py [--sizes 640x480 1280x720] [--repeats 20]
        [--e2e-frames 10] [--json out.json]

Part 1 times, in this process, each step the node runs around the model on one frame: input
conversion (rgb8, bgr8, jpeg), range/std gate, depth/std/preview encoding, cloud packing,
message building, CDR serialisation and ``publish`` (to a subscriber in this process). Part 2
starts the real node (``--model``, default ``zoedepth_tiny_nk``, random weights) in a
subprocess and reports ``receive time - header.stamp`` for frames sent one at a time.
Medians and p90 in milliseconds; CPU only, shared machines are noisy: compare runs, not
absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rclpy
import torch
from rclpy.qos import QoSProfile
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from zoedepth_ros.data import messages
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.pointcloud import CloudOptions, gate_depth, pack_point_cloud
from zoedepth_ros.ros import convert

REPO = Path(__file__).resolve().parents[1]


def timed(function: Callable[[], Any], repeats: int) -> dict[str, float]:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(1e3 * (time.perf_counter() - start))
    return {'median_ms': float(np.median(times)), 'p90_ms': float(np.percentile(times, 90))}


def overhead(width: int, height: int, repeats: int, node: Any) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 10.0, (height, width)).astype(np.float32)
    std = (0.05 * depth).astype(np.float32)
    camera = PinholeCamera.from_fov(width, height, 60.0)
    header = Header(frame_id='camera_optical_frame')
    raw = Image(header=header, height=height, width=width, encoding='rgb8', step=width * 3,
                data=rgb.tobytes())
    bgr = Image(header=header, height=height, width=width, encoding='bgr8', step=width * 3,
                data=rgb.tobytes())
    jpeg = type('Compressed', (), {'format': 'jpeg', 'data': cv2.imencode(
        '.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()})()
    gated = gate_depth(depth, 0.1, 80.0, std, 0.0)
    depth_fields = messages.encode_depth(gated)
    organized = CloudOptions(stride=2, organized=True, color=True)
    cloud = pack_point_cloud(gated, camera, organized, rgb=rgb)
    depth_msg = convert.image_message(depth_fields, header)
    cloud_msg = convert.point_cloud_message(cloud, header)
    info = messages.camera_info_from_camera(camera)
    publishers = {kind: node.create_publisher(kind, f'bench/{kind.__name__}', QoSProfile(depth=1))
                  for kind in (Image, PointCloud2, CameraInfo)}
    for kind in publishers:
        node.create_subscription(kind, f'bench/{kind.__name__}', lambda _: None,
                                 QoSProfile(depth=1))
    steps = {
        'decode_rgb8': lambda: messages.image_to_rgb(raw),
        'decode_bgr8': lambda: messages.image_to_rgb(bgr),
        'decode_jpeg': lambda: messages.compressed_to_rgb(jpeg),
        'gate_depth': lambda: gate_depth(depth, 0.1, 80.0, std, 0.2),
        'encode_32fc1': lambda: messages.encode_depth(gated),
        'encode_16uc1': lambda: messages.encode_depth(gated, '16UC1'),
        'encode_std': lambda: messages.encode_float_image(std),
        'encode_preview': lambda: messages.encode_preview(gated, 0.1, 80.0),
        'cloud_stride2_organized_rgb': lambda: pack_point_cloud(gated, camera, organized,
                                                                rgb=rgb),
        'cloud_stride1_organized_rgb': lambda: pack_point_cloud(
            gated, camera, CloudOptions(stride=1), rgb=rgb),
        'cloud_stride2_dense_xyz': lambda: pack_point_cloud(
            gated, camera, CloudOptions(stride=2, organized=False, color=False)),
        'build_depth_msg': lambda: convert.image_message(depth_fields, header),
        'build_cloud_msg': lambda: convert.point_cloud_message(cloud, header),
        'build_info_msg': lambda: convert.camera_info_message(info, header),
        'serialize_depth': lambda: serialize_message(depth_msg),
        'serialize_cloud_stride2': lambda: serialize_message(cloud_msg),
        'publish_depth': lambda: publishers[Image].publish(depth_msg),
        'publish_cloud_stride2': lambda: publishers[PointCloud2].publish(cloud_msg),
    }
    return {name: timed(step, repeats) for name, step in steps.items()}


def end_to_end(width: int, height: int, frames: int, model: str) -> dict[str, Any]:
    """Latency of the real node (tiny model) over DDS, one frame in flight at a time."""
    command = [sys.executable, '-m', 'zoedepth_ros.ros.depth_node', '--ros-args',
               '--params-file', str(REPO / 'config' / 'depth.yaml'), '-p', 'device:=cpu',
               '-p', f'model:={model}', '-r', '__ns:=/bench',
               # Reliable input: best-effort ~1 MB images get lost on loopback here (~30 %).
               '-p', 'qos_overrides./bench/image.subscription.reliability:=reliable']
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    node = rclpy.create_node('bench_e2e')
    received: list[tuple[float, Any]] = []
    node.create_subscription(Image, '/bench/depth/image',
                             lambda m: received.append((time.time(), m)), QoSProfile(depth=5))
    node.create_subscription(PointCloud2, '/bench/points', lambda _: None, QoSProfile(depth=5))
    image_pub = node.create_publisher(Image, '/bench/image', QoSProfile(depth=1))
    info_pub = node.create_publisher(CameraInfo, '/bench/camera_info', QoSProfile(depth=1))
    rgb = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    camera = messages.camera_info_from_camera(PinholeCamera.from_fov(width, height, 60.0))
    latencies = []
    try:
        deadline = time.monotonic() + 120
        while (not image_pub.get_subscription_count() or not node.count_publishers(
                '/bench/depth/image')) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        for index in range(frames + 1):
            now_ns = time.time_ns()
            header = Header(frame_id='camera_optical_frame')
            header.stamp.sec, header.stamp.nanosec = now_ns // 10**9, now_ns % 10**9
            info_pub.publish(convert.camera_info_message(camera, header))
            image_pub.publish(Image(header=header, height=height, width=width,
                                    encoding='rgb8', step=width * 3, data=rgb.tobytes()))
            count = len(received)
            wait_end = time.monotonic() + 60
            while len(received) == count and time.monotonic() < wait_end:
                rclpy.spin_once(node, timeout_sec=0.05)
            if len(received) > count and index > 0:  # the first frame warms up
                arrival, msg = received[-1]
                latencies.append(1e3 * (arrival - msg.header.stamp.sec
                                        - msg.header.stamp.nanosec * 1e-9))
    finally:
        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=30)
        node.destroy_node()
    return {'frames': len(latencies), 'latency_median_ms': float(np.median(latencies)),
            'latency_p90_ms': float(np.percentile(latencies, 90)), 'node_exit_code': exit_code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', default=['640x480', '1280x720'])
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--e2e-frames', type=int, default=10)
    parser.add_argument('--model', default='zoedepth_tiny_nk',
                        help='node model for the end-to-end part (preset or ModelConfig YAML)')
    parser.add_argument('--json', default=None, help='also write the results here')
    args = parser.parse_args()
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    rclpy.init()
    node = rclpy.create_node('bench_overhead')
    report: dict[str, Any] = {'machine': platform.processor() or platform.machine(),
                              'python': platform.python_version(), 'torch': torch.__version__,
                              'threads': torch.get_num_threads(), 'overhead': {},
                              'end_to_end': {}}
    try:
        for text in args.sizes:
            width, height = (int(v) for v in text.split('x'))
            steps = overhead(width, height, args.repeats, node)
            report['overhead'][text] = steps
            for name, value in steps.items():
                print(f'{text:>9s} {name:30s} {value["median_ms"]:8.2f} ms (p90 '
                      f'{value["p90_ms"]:.2f})')
        if args.e2e_frames:
            for text in args.sizes:
                width, height = (int(v) for v in text.split('x'))
                result = end_to_end(width, height, args.e2e_frames, args.model)
                report['end_to_end'][text] = result
                print(f'{text:>9s} end-to-end ({args.model}): median '
                      f'{result["latency_median_ms"]:.0f} ms, p90 {result["latency_p90_ms"]:.0f}'
                      f' ms over {result["frames"]} frames')
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == '__main__':
    main()
