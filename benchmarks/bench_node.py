"""depth_node's per-frame work outside the model, with a null model; optional DDS latency.

Usage (from the repository root, with the venv's python):
    python benchmarks/bench_node.py [--sizes 640x480 1280x720] [--iterations 40]
        [--cases rgb8_defaults ...] [--e2e-frames 0] [--json PATH]

Part 1 runs the real DepthNode in this process on each frame with the node's own code:
input conversion (``_decode``), the estimator's upload and float conversion, the model call's
resize/normalise and upsampling, range/std gate, cloud packing, copy to the host, message
filling, CDR serialisation and ``publish`` to a subscriber in another node over loopback DDS.
The network is replaced by a null model that returns fixed outputs at the network size, so
the time is ours only. Cases: rgb8 with the node's defaults (32FC1 depth, std, organised
xyzrgb cloud at stride 2), the same with metric anchoring (a 32FC1 ``sparse_depth`` image of
the frame's size with a random 6.5 % of its pixels valid, ~20k samples at 640x480, handed to
the node's ``_on_sparse_depth`` before each frame: the frame's time includes the alignment,
i.e. gathering the samples, the robust scale fit and applying it, reported alone as 'align';
the sparse image's decode in the callback is 'sparse_input', outside the frame's total), a jpeg
CompressedImage input, and a full-resolution dense xyz cloud. Part 2 (``--e2e-frames N``)
starts the node as a subprocess with a tiny random-weight model and reports ``receive time -
header.stamp`` over DDS, one frame in flight at a time.
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
from std_msgs.msg import Header

from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io import builder, messages
from zoedepth_ros.model.loading import is_config_source
from zoedepth_ros.pipeline import camera as camera_module
from zoedepth_ros.pipeline import predict as predict_module
from zoedepth_ros.pipeline.outputs import OUTPUT_BY_KEY
from zoedepth_ros.pipeline.predict import keep_freed_memory
from zoedepth_ros.ros import convert
from zoedepth_ros.ros.depth_node import DepthNode

TARGET_MS = 5.0
"""Issue target: node overhead at 640x480 with the defaults."""

CASES: dict[str, dict[str, Any]] = {
    'rgb8_defaults': {},
    'rgb8_anchored': {'anchor.mode': 'scale'},
    'jpeg_defaults': {'input_transport': 'compressed'},
    'rgb8_dense_xyz_stride1': {'cloud.stride': 1, 'cloud.organized': False,
                               'cloud.color': False},
}
SPARSE_CASES = ('rgb8_anchored',)
"""Cases fed a sparse depth image before every frame."""
SPARSE_FRACTION = 0.065
"""Share of valid pixels in the sparse depth image (~20k at 640x480)."""


def frame_messages(width: int, height: int) -> tuple[Image, CompressedImage, CameraInfo]:
    rgb = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    header = Header(frame_id='camera_optical_frame')
    raw = Image(header=header, height=height, width=width, encoding='rgb8', step=width * 3,
                data=rgb.tobytes())
    jpeg = CompressedImage(header=header, format='jpeg', data=cv2.imencode(
        '.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    camera = messages.camera_info_from_camera(PinholeCamera.from_fov(width, height, 60.0))
    return raw, jpeg, builder.camera_info(convert.make, camera, header)


def sparse_message(node: DepthNode, raw: Image) -> Image:
    """A 32FC1 sparse depth image for ``raw`` (same header and size): a random
    SPARSE_FRACTION of the pixels hold the null model's depth there x 1.3 with 2 % noise
    (5 % of them 3x off, as outliers), the rest NaN."""
    rgb = messages.image_to_rgb(raw)
    depth = node.camera.pipeline.estimator.predict(rgb).depth_m
    rng = np.random.default_rng(raw.width)
    noisy = depth * np.float32(1.3) * (1 + 0.02 * rng.standard_normal(depth.shape))
    noisy[rng.random(depth.shape) < 0.05] *= 3
    sparse = np.where(rng.random(depth.shape) < SPARSE_FRACTION, noisy, np.nan)
    return builder.image(convert.make, messages.encode_float_image(sparse.astype(np.float32)),
                         raw.header)


def make_node(index: int, overrides: dict[str, Any]) -> DepthNode:
    """A DepthNode on the CPU with the null model in place of its network."""
    parameters = {'model': 'zoedepth_tiny_nk', 'random_weights': True, 'device': 'cpu',
                  **overrides}
    node = DepthNode(namespace=f'/bench{index}', parameter_overrides=[
        Parameter(name, value=value) for name, value in parameters.items()])
    node.camera.pipeline.estimator = null_estimator()
    return node


def wait_for_subscribers(node: DepthNode, sink: Any, keys: tuple[str, ...],
                         timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(node.camera.listening(key) for key in keys):
            return
        rclpy.spin_once(sink, timeout_sec=0.05)
    raise SystemExit('the sink subscribers were not discovered within 30 s')


def timed(module: Any, name: str, seconds: list[float]) -> Any:
    """The function ``module.name`` (the original), replaced by a copy that appends its wall
    time to ``seconds``."""
    original = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    setattr(module, name, wrapper)
    return original


def per_frame(node: DepthNode, msg: Any, info: CameraInfo, iterations: int, warmup: int,
              sparse: Image | None = None) -> dict[str, Any]:
    """Wall time of decode -> publish for one frame, and its phases, in milliseconds. With
    ``sparse``, the node's sparse depth callback runs before each frame ('sparse_input', not
    part of 'total'); 'align' is the alignment inside 'postprocess'."""
    phases: dict[str, list[float]] = {'decode': [], 'preprocess': [], 'model_call': [],
                                      'postprocess': [], 'encode_publish': [], 'total': []}
    if sparse is not None:
        phases.update(align=[], sparse_input=[])
    predict = camera_module.predict_frame
    recorded: dict[str, float] = {}
    align: list[float] = []

    def predict_frame(*args: Any, **kwargs: Any) -> Any:
        result = predict(*args, **kwargs)
        recorded.update(result.timings_ms)
        return result

    camera_module.predict_frame = predict_frame  # the pipeline's per-frame call, timed
    # What predict_frame calls for the alignment (module globals of pipeline.predict).
    originals = {name: timed(predict_module, name, align)
                 for name in ('anchor_frame', 'apply_alignment')}
    pipeline = node.camera.pipeline
    try:
        for index in range(warmup + iterations):
            pipeline._last_stamp = None  # the same message again is not a stamp going back
            align.clear()
            if sparse is not None:
                start = time.perf_counter()
                pipeline.on_sparse_depth(sparse)
                sparse_s = time.perf_counter() - start
            start = time.perf_counter()
            frame = pipeline._decode(msg)
            decoded = time.perf_counter()
            frame.info = messages.camera_info_fields(info)
            pipeline.process(frame)
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
            if sparse is not None:
                phases['sparse_input'].append(sparse_s)
                phases['align'].append(sum(align))
    finally:
        camera_module.predict_frame = predict
        for name, original in originals.items():
            setattr(predict_module, name, original)
    return {name: latency_stats(values) for name, values in phases.items()}


def overhead(sizes: list[tuple[int, int]], iterations: int, warmup: int,
             cases: list[str]) -> list[dict[str, Any]]:
    sink = rclpy.create_node('bench_sink')
    rows = []
    try:
        for index, name in enumerate(cases):
            overrides = CASES[name]
            node = make_node(index, overrides)
            reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
            keys = ('depth', 'info', 'points', 'std', 'domain') + (
                ('alignment',) if name in SPARSE_CASES else ())
            for key in keys:
                output = OUTPUT_BY_KEY[key]
                sink.create_subscription(convert.message_class(output.msgtype),
                                         f'/bench{index}/{output.topic}', lambda _: None,
                                         reliable)
            try:
                wait_for_subscribers(node, sink, keys)
                for width, height in sizes:
                    raw, jpeg, info = frame_messages(width, height)
                    msg = jpeg if overrides.get('input_transport') == 'compressed' else raw
                    sparse = sparse_message(node, raw) if name in SPARSE_CASES else None
                    stats = per_frame(node, msg, info, iterations, warmup, sparse)
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
    parser.add_argument('--cases', nargs='+', choices=list(CASES), default=list(CASES))
    parser.add_argument('--plain-heap', action='store_true',
                        help="glibc's default heap (the node executables keep freed memory: "
                             'frame.keep_freed_memory)')
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
    load_start = round(os.getloadavg()[0], 2)
    heap_kept = keep_freed_memory() if not args.plain_heap else False  # as the node process
    rclpy.init()
    try:
        rows = overhead(sizes, args.iterations, args.warmup,  # type: ignore[arg-type]
                        args.cases)
        e2e = [end_to_end(w, h, args.e2e_frames, args.model)
               for w, h in sizes] if args.e2e_frames else []
    finally:
        rclpy.try_shutdown()
    report = {'benchmark': 'node', **machine_facts('cpu'), 'versions': versions('rclpy'),
              'load_average_1m_start': load_start, 'keep_freed_memory': heap_kept,
              'dtype': 'float32', 'target_ms_640x480': TARGET_MS, 'iterations': args.iterations,
              'warmup': args.warmup, 'peak_rss_mb': max_rss_mb(), 'overhead': rows,
              'end_to_end': e2e}
    path = write_report(args.json, report)
    for row in rows:
        phases = row['phases_ms']
        parts = ', '.join(f'{name} {value["median_ms"]:.2f}' for name, value in phases.items()
                          if name not in ('total', 'align', 'sparse_input'))
        if 'align' in phases:
            parts += (f' (align {phases["align"]["median_ms"]:.2f} inside postprocess; '
                      f'sparse_input callback {phases["sparse_input"]["median_ms"]:.2f}, '
                      'not in the total)')
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
    print(f'load average (1 min) {load_start} at the start, {report["load_average_1m"]} at the '
          f'end; wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
