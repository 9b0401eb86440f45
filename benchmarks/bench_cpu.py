"""End-to-end CPU frames/s on a 256x320 image: ZoeDepth on MiDaS v2.1 small vs BEiT-B / tiny BEiT.

Usage:
    python benchmarks/bench_cpu.py [--threads 2] [--rounds 3] [--json PATH]

Every case is ``DepthEstimator.predict`` on the same 256x320 uint8 RGB frame (upload, resize to
the model's network size, normalise, model, upsample depth and std to 256x320, copy to the
host) with the estimator's CPU defaults (fp32, channels-last convolutions, preprocess
``eval``), random weights, batch 1, ``torch.set_num_threads(--threads)``:

- ``small``: ZoeD_small_NK (MiDaS v2.1 small, EfficientNet-Lite3, router + two heads), network
  256x320; ``small_frame``: the same model through ``frame.predict_frame`` with the node's
  defaults (range gate, std, stride-2 organised xyzrgb cloud): the node's per-frame work;
- ``small_cpu``: ZoeD_small_NK_cpu (the same core; finest attractor and log-binomial at a
  quarter of the pixels, 32 bins per head): the >= 10 frames/s CPU configuration;
- ``small_tiny``: zoedepth_small_tiny_nk (the same code path at half the encoder width);
- ``beit_b``: the ZoeD_NK layout on the BEiT-B-384 trunk at its configured 384x512 network size,
  and ``beit_b_256`` the same at 256x320 (like-for-like network size);
- ``tiny``: zoedepth_tiny_nk (the small BEiT of the reference vectors), network 384x512.

All cases run in one process, in rounds (order rotated each round; the cheap cases repeat
several frames per round), so that the ratios to ``small`` are fair on a shared machine.
The load average before and after the run is recorded. Writes ``outputs/benchmarks/cpu.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from common import (  # first: puts the repository on sys.path for a fresh clone
    DEFAULT_OUTPUT_DIR,
    latency_stats,
    machine_facts,
    max_rss_mb,
    time_call,
    versions,
    write_report,
)

from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io.messages import camera_info_from_camera
from zoedepth_ros.model.config import ModelConfig, get_config
from zoedepth_ros.model.loading import load_model
from zoedepth_ros.pipeline.options import FrameOptions
from zoedepth_ros.pipeline.outputs import FrameRequest
from zoedepth_ros.pipeline.predict import keep_freed_memory, predict_frame
from zoedepth_ros.ros.config import NodeConfig

INPUT = (256, 320)
TARGET_FPS = 10.0


@dataclass
class Case:
    """One timed configuration: a call that processes one frame."""

    name: str
    cfg: ModelConfig
    repeat: int
    run: Callable[[], object]
    parameters: int


def configs() -> dict[str, tuple[ModelConfig, int]]:
    """Case name -> (model config, frames per round)."""
    beit_b = dataclasses.replace(get_config('ZoeD_NK'), midas_model_type='DPT_BEiT_B_384')
    return {'small': (get_config('ZoeD_small_NK'), 8),
            'small_cpu': (get_config('ZoeD_small_NK_cpu'), 8),
            'small_tiny': (get_config('zoedepth_small_tiny_nk'), 8),
            'beit_b': (beit_b, 1),
            'beit_b_256': (dataclasses.replace(beit_b, img_size=INPUT), 1),
            'tiny': (get_config('zoedepth_tiny_nk'), 2)}


def frame_options() -> FrameOptions:
    """What the node computes per frame by default (gate, std, stride-2 xyzrgb cloud)."""
    return NodeConfig().frame


def build_cases(names: list[str], rgb: np.ndarray) -> list[Case]:
    table = configs()
    cases = []
    for name in names:
        base = 'small' if name == 'small_frame' else name
        cfg, repeat = table[base]
        model = load_model(cfg, random_weights=True, seed=0).model
        estimator = DepthEstimator(model, device='cpu')
        count = sum(p.numel() for p in model.parameters())
        cases.append(Case(name, cfg, repeat, frame_call(estimator, rgb, name == 'small_frame'),
                           count))
    return cases


def frame_call(estimator: DepthEstimator, rgb: np.ndarray, node_path: bool
               ) -> Callable[[], object]:
    """One frame: ``estimator.predict`` or the node's ``frame.predict_frame``."""
    if not node_path:
        return lambda: estimator.predict(rgb)
    info = camera_info_from_camera(PinholeCamera.from_fov(INPUT[1], INPUT[0], 70.0))
    options = frame_options()
    request = FrameRequest.of(options, lambda key: key != 'preview')
    return lambda: predict_frame(estimator, rgb, info, options, request)


def timed_rounds(cases: list[Case], rounds: int, warmup: int) -> dict[str, list[list[float]]]:
    """Wall seconds per frame, per case and round (order rotated every round)."""
    for case in cases:
        for _ in range(warmup):
            case.run()
    walls: dict[str, list[list[float]]] = {case.name: [] for case in cases}
    for index in range(rounds):
        shift = index % len(cases)
        for case in cases[shift:] + cases[:shift]:
            walls[case.name].append([time_call(case.run)[0] for _ in range(case.repeat)])
    return walls


def summarise(case: Case, walls: list[list[float]], reference: list[list[float]] | None
              ) -> dict[str, Any]:
    flat = [w for round_walls in walls for w in round_walls]
    stats = latency_stats(flat)
    row: dict[str, Any] = {
        'case': case.name, 'config': case.cfg.name, 'backbone': case.cfg.midas_model_type,
        'trunk': dataclasses.asdict(case.cfg.trunk), 'network_size': list(case.cfg.img_size),
        'input_size': list(INPUT), 'parameters': case.parameters, 'frames_per_round':
        case.repeat, **stats, 'fps': 1e3 / stats['median_ms']}
    if reference is not None:  # per-round ratio of medians: fair when the load drifts
        ratios = sorted(float(np.median(w)) / float(np.median(r))
                        for w, r in zip(walls, reference))
        row['time_ratio_to_small'] = ratios[len(ratios) // 2]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', nargs='+', default=['small', 'small_cpu', 'small_frame',
                                                       'small_tiny', 'beit_b', 'beit_b_256',
                                                       'tiny'])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--keep-heap', action='store_true',
                        help='glibc keeps freed memory (frame.keep_freed_memory, as the node '
                             'processes); off = plain defaults')
    parser.add_argument('--json', default=str(DEFAULT_OUTPUT_DIR / 'cpu.json'))
    args = parser.parse_args()
    heap_kept = keep_freed_memory() if args.keep_heap else False
    torch.set_num_threads(args.threads)
    rgb = np.random.default_rng(0).integers(0, 256, (*INPUT, 3), dtype=np.uint8)
    cases = build_cases(args.cases, rgb)
    facts = machine_facts('cpu')
    walls = timed_rounds(cases, args.rounds, args.warmup)
    reference = walls.get('small')
    results = [summarise(case, walls[case.name], reference) for case in cases]
    report = {'benchmark': 'cpu_end_to_end', **facts,
              'load_average_1m_end': round(os.getloadavg()[0], 2),
              'versions': versions(), 'threads': args.threads, 'rounds': args.rounds,
              'warmup': args.warmup, 'dtype': 'float32', 'target_fps_small': TARGET_FPS,
              'keep_heap': heap_kept,
              'peak_rss_mb': max_rss_mb(), 'results': results}
    path = write_report(args.json, report)
    print(f'{report["device_name"]}, {args.threads} threads, load average '
          f'{facts.get("load_average_1m")} -> {report["load_average_1m_end"]}'
          f'{", glibc keeps freed memory" if heap_kept else ""}')
    for row in results:
        ratio = row.get('time_ratio_to_small')
        versus = f', {ratio:.2f}x the time of small' if ratio is not None else ''
        print(f'{row["case"]:11s} network {row["network_size"][0]}x{row["network_size"][1]}: '
              f'{row["fps"]:6.2f} frames/s (median {row["median_ms"]:.0f} ms, p90 '
              f'{row["p90_ms"]:.0f} ms, {row["iterations"]} frames){versus}')
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
