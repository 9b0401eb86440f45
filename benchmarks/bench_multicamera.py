"""Many cameras, one model: one N-camera node against N single-camera nodes, and batched
against sequential forwards.

Usage:
    python benchmarks/bench_multicamera.py [--cameras 1 2 4] [--rate 10] [--seconds 10]
        [--model zoedepth_demo_nk] [--device cpu] [--size 320x240] [--json PATH]

Node cases (each in processes of its own, started as users start them: ``python -m
zoedepth_ros.ros.depth_node --ros-args --params-file config/depth.yaml``): for N cameras,
``one_node`` is one node with ``cameras: [c0, ..]`` (on a CPU ``workers`` = cores and
``threads`` 1: cameras in parallel; ``one_node_batched`` is the same node with one worker
that batches every camera, the GPU setting), and ``n_nodes`` is N single-camera nodes, each
in its own namespace with its share of the cores as torch threads (``threads`` = cores // N,
at least 1: more would oversubscribe them). A feeder in this process publishes a different
synthetic scene per camera at ``--rate`` Hz (stamped with the time of sending) and subscribes
every camera's ``depth/image`` (the node computes no cloud then). After a warm-up it measures
for ``--seconds``: the total output rate, each camera's output rate and latency (receive time
minus stamp: p50, p95), and the resident memory of the node processes (VmRSS, summed for N
nodes).

Model case (``--device``, in this process): ``pipeline.predict.predict_frames`` on N frames as
one batch against N ``predict_frame`` calls, alternating; the ratio is the batching gain
(on a GPU the target is at least 2x at N = 4).

Targets (README): with 4 cameras, one node at most 1.3x the memory of one single-camera node,
and a total output rate at least that of four single-camera nodes on the same cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (  # first: puts the repository on sys.path for a fresh clone
    DEFAULT_OUTPUT_DIR,
    REPO,
    interleaved,
    latency_stats,
    machine_facts,
    versions,
    write_report,
)
from sensor_msgs.msg import Image

sys.path.insert(0, str(REPO / 'test' / 'ros'))  # the node tests' process and probe helpers
from node_harness import (  # noqa: E402
    NodeProcess,
    Probe,
    make_image,
    stamp_header,
    wait_until,
)

WARMUP_S = 4.0


def scene(index: int, width: int, height: int) -> np.ndarray:
    """A different blocky scene per camera."""
    rng = np.random.default_rng(100 + index)
    blocks = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(blocks, 16, 0), 16, 1)[:height, :width])


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share)) if values else float('nan')


def rss_mib(nodes: list[NodeProcess]) -> float:
    return sum(node.rss_kib() for node in nodes) / 1024


def start_nodes(kind: str, names: list[str], args: argparse.Namespace, folder: Path
                ) -> list[NodeProcess]:
    params = {'model': args.model, 'device': args.device, 'diagnostics.period_s': 1.0}
    cores = os.cpu_count() or 1
    if kind.startswith('one_node'):
        workers = 1 if kind == 'one_node_batched' else args.workers
        threads = max(1, cores // workers) if workers > 1 else 0
        return [NodeProcess(folder / f'{kind}_{len(names)}.log', '/bench',
                            {**params, 'cameras': '[' + ','.join(names) + ']',
                             'workers': workers, 'threads': threads})]
    threads = max(1, cores // len(names))  # the cores shared fairly
    return [NodeProcess(folder / f'{kind}_{len(names)}_{name}.log', f'/bench/{name}',
                        {**params, 'threads': threads}) for name in names]


def run_case(kind: str, count: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """One node case: start the node(s), feed every camera, measure, stop."""
    width, height = args.size
    names = [f'c{index}' for index in range(count)]
    nodes = start_nodes(kind, names, args, folder)
    probe = Probe(f'bench_{kind}_{count}')
    stop = threading.Event()
    elapsed, memory, cameras = 0.0, 0.0, {}
    try:
        publishers = {name: probe.publisher(Image, f'/bench/{name}/image') for name in names}
        received = {name: probe.subscribe(Image, f'/bench/{name}/depth/image', depth=100)
                    for name in names}
        wait_until(lambda: all(p.get_subscription_count() for p in publishers.values()),
                   timeout_s=120.0, what='the node(s) to subscribe')
        scenes = {name: scene(index, width, height) for index, name in enumerate(names)}

        def feed() -> None:
            period = 1.0 / args.rate
            tick, turn = time.monotonic(), 0
            while not stop.is_set():
                # the order rotates: the first image of a burst was lost more often in DDS
                turn = (turn + 1) % len(names)
                for name in names[turn:] + names[:turn]:
                    now_ns = time.time_ns()
                    header = stamp_header(now_ns // 10**9, now_ns % 10**9,
                                          f'{name}_optical_frame')
                    publishers[name].publish(make_image(scenes[name], header))
                tick += period
                stop.wait(max(0.0, tick - time.monotonic()))

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        wait_until(lambda: all(received[name] for name in names), timeout_s=120.0,
                   what='an output of every camera')
        time.sleep(WARMUP_S)
        marks = {name: len(received[name]) for name in names}
        start = time.monotonic()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - start
        memory = rss_mib(nodes)
        stop.set()
        feeder.join(timeout=5.0)
        offset = time.time() - time.monotonic()  # the probe records monotonic times
        for name in names:
            window = received[name][marks[name]:]
            latency = [arrival + offset - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
                       for arrival, msg in window]
            cameras[name] = {'frames': len(window), 'rate_hz': len(window) / elapsed,
                             'latency_p50_ms': 1e3 * percentile(latency, 50),
                             'latency_p95_ms': 1e3 * percentile(latency, 95)}
    finally:
        stop.set()
        probe.close()
        codes = [node.stop() for node in nodes]
    return {'kind': kind, 'cameras': count, 'seconds': elapsed, 'exit_codes': codes,
            'total_rate_hz': sum(c['rate_hz'] for c in cameras.values()),
            'rss_mib': memory, 'per_camera': cameras}


def model_case(count: int, args: argparse.Namespace) -> dict[str, Any]:
    """Batched predict_frames against sequential predict_frame, alternating."""
    from zoedepth_ros.geometry import PinholeCamera
    from zoedepth_ros.inference import DepthEstimator
    from zoedepth_ros.io.messages import camera_info_from_camera
    from zoedepth_ros.pipeline.predict import FrameJob, predict_frame, predict_frames

    estimator = DepthEstimator.from_pretrained(args.model, device=args.device)
    width, height = args.size
    info = camera_info_from_camera(PinholeCamera.from_fov(width, height, 60.0))
    jobs = [FrameJob(scene(index, width, height), info) for index in range(count)]

    def sequential() -> None:
        for job in jobs:
            predict_frame(estimator, job.rgb, job.camera_info, job.options, job.request)

    walls, _ = interleaved({'batched': lambda: predict_frames(estimator, jobs),
                            'sequential': sequential}, args.model_iterations, 3,
                           estimator.synchronize)
    stats = {name: latency_stats(values) for name, values in walls.items()}
    return {'cameras': count, 'device': str(estimator.device), **stats,
            'batched_frames_per_s': count * 1e3 / stats['batched']['median_ms'],
            'sequential_frames_per_s': count * 1e3 / stats['sequential']['median_ms'],
            'batching_gain': stats['sequential']['median_ms'] / stats['batched']['median_ms']}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cameras', type=int, nargs='+', default=[1, 2, 4])
    parser.add_argument('--rate', type=float, default=10.0, help='frames/s per camera')
    parser.add_argument('--seconds', type=float, default=10.0, help='measured window')
    parser.add_argument('--model', default='zoedepth_demo_nk')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--size', default='320x240', help='WIDTHxHEIGHT of the camera images')
    parser.add_argument('--model-iterations', type=int, default=20)
    parser.add_argument('--workers', type=int, default=0,
                        help="the N-camera node's workers (0: one per core on a CPU, 1 on a "
                             'GPU); with more than one, threads = cores // workers, and the '
                             'one-batch node (workers 1) runs too, as one_node_batched')
    parser.add_argument('--no-nodes', action='store_true', help='the model case only (GPU)')
    parser.add_argument('--json', default=str(DEFAULT_OUTPUT_DIR / 'multicamera.json'))
    args = parser.parse_args()
    args.size = tuple(int(v) for v in args.size.lower().split('x'))
    if args.workers <= 0:
        args.workers = 1 if args.device.startswith('cuda') else os.cpu_count() or 1
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    folder = Path(args.json).parent / 'multicamera_logs'
    folder.mkdir(parents=True, exist_ok=True)
    load_start = round(os.getloadavg()[0], 2)
    nodes = []
    if not args.no_nodes:
        for count in args.cameras:
            kinds = ['one_node']
            if count > 1:
                kinds += (['one_node_batched'] if args.workers > 1 else []) + ['n_nodes']
            for kind in kinds:
                row = run_case(kind, count, args, folder)
                nodes.append(row)
                cams = row['per_camera'].values()
                p50 = statistics.median(c['latency_p50_ms'] for c in cams)
                p95 = max(c['latency_p95_ms'] for c in cams)
                rates = ', '.join(f'{c["rate_hz"]:.1f}' for c in cams)
                print(f'{kind:16s} N={count}: total {row["total_rate_hz"]:.2f} frames/s '
                      f'(per camera {rates}), latency p50 {p50:.0f} ms, worst camera p95 '
                      f'{p95:.0f} ms, RSS {row["rss_mib"]:.0f} MiB, exit codes '
                      f'{row["exit_codes"]}', flush=True)
    models = [model_case(count, args) for count in args.cameras]
    for row in models:
        print(f'model N={row["cameras"]} on {row["device"]}: batched '
              f'{row["batched_frames_per_s"]:.2f} frames/s, sequential '
              f'{row["sequential_frames_per_s"]:.2f}, gain {row["batching_gain"]:.2f}x',
              flush=True)
    report = {'benchmark': 'multicamera', **machine_facts(args.device),
              'versions': versions('rclpy'), 'load_average_1m_start': load_start,
              'load_average_1m_end': round(os.getloadavg()[0], 2),
              'model': args.model, 'rate_hz': args.rate, 'size': list(args.size),
              'seconds': args.seconds, 'nodes': nodes, 'model_only': models}
    print(f'wrote {write_report(args.json, report)}')
    return 0 if all(code == 0 for row in nodes for code in row['exit_codes']) else 1


if __name__ == '__main__':
    raise SystemExit(main())
