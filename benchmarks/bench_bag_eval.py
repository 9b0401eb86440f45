"""Throughput of `bag eval` outside the model: a null model (constant depth) on a bag.

Measures reading + pairing + decoding + the per-frame path + metrics (+ writing an output bag
with depth, info, std, an organised cloud and the domain) per colour frame. Writes JSON to
--json (default: print only).

  python benchmarks/bench_bag_eval.py --frames 60 --size 640 480
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine_facts, versions, write_report
from doubles import null_estimator

from zoedepth_ros.evaluation.bags import BagEvalSettings, evaluate_bag
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.bags import FrameTopics
from zoedepth_ros.io.messages import camera_info_from_camera, encode_depth, image_fields

TOPICS = FrameTopics('/camera/image_raw', '/camera/depth/image', '/camera/camera_info')


def write_bag(path: Path, frames: int, width: int, height: int, storage: str) -> None:
    rng = np.random.default_rng(0)
    info = camera_info_from_camera(PinholeCamera.from_fov(width, height, 60.0))
    depth = np.repeat(np.linspace(0.5, 8.0, height, dtype=np.float32)[:, None], width, 1)
    with AtomicBagWriter(path, storage) as bag:
        for index in range(frames):
            stamp = 1_700_000_000_000_000_000 + index * 100_000_000
            header = bag.header(stamp, 'camera_optical_frame')
            rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            bag.write(TOPICS.image, bag.image(image_fields(rgb, 'rgb8'), header), stamp)
            bag.write(TOPICS.camera_info, bag.camera_info(info, header), stamp)
            bag.write(TOPICS.depth, bag.image(encode_depth(depth), header), stamp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--size', type=int, nargs=2, default=(640, 480))
    parser.add_argument('--storage', default='mcap', choices=['mcap', 'sqlite3'])
    parser.add_argument('--json', type=Path)
    args = parser.parse_args()
    results = {'benchmark': 'bag_eval', **machine_facts('cpu'), 'versions': versions('rosbags'),
               'frames': args.frames, 'size': list(args.size), 'storage': args.storage}
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / 'bag'
        write_bag(bag, args.frames, *args.size, args.storage)
        settings = BagEvalSettings(TOPICS, max_depth=10.0)
        for name, out in (('metrics_only', None), ('with_out_bag', Path(tmp) / 'out')):
            start, cpu = time.perf_counter(), time.process_time()
            if out is None:
                evaluate_bag(null_estimator(depth_m=2.0), bag, settings)
            else:
                with AtomicBagWriter(out, args.storage) as writer:
                    evaluate_bag(null_estimator(depth_m=2.0), bag, settings, writer)
            results[f'{name}_frames_per_s'] = args.frames / (time.perf_counter() - start)
            results[f'{name}_frames_per_cpu_s'] = args.frames / (time.process_time() - cpu)
    print(json.dumps(results, indent=2))
    if args.json:
        write_report(args.json, results)


if __name__ == '__main__':
    main()
