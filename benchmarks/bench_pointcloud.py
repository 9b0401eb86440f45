"""Vectorised range gate + PointCloud2 packing vs the per-point reference (depth_image_proc's
loop).

Usage:
    python benchmarks/bench_pointcloud.py [--sizes 640x480 1280x720] [--iterations 10]

For each size and layout (organised xyzrgb, dense xyzrgb with a range cut, organised xyz with
stride 2) both implementations pack the same depth map (with invalid pixels) and must produce
the same cloud (layout, NaN pattern and colours identical, coordinates equal to float32
rounding; byte equality is reported); the ratio is reference time / vectorised time. The
per-point reference is slow (seconds per 640x480 frame), so it runs
``--reference-iterations`` times (default 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from common import (
    DEFAULT_OUTPUT_DIR,
    latency_stats,
    machine_facts,
    max_rss_mb,
    time_call,
    versions,
    write_report,
)
from oracles import cloud_to_array, gated_cloud_reference

from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.messages import PackedCloud
from zoedepth_ros.pipeline.predict import gate_depth
from zoedepth_ros.pointcloud import CloudOptions, pack_point_cloud

LAYOUTS: dict[str, tuple[CloudOptions, tuple[float, float]]] = {
    'organized_xyzrgb': (CloudOptions(stride=1), (0.0, float('inf'))),
    'dense_xyzrgb_range': (CloudOptions(stride=1, organized=False), (0.5, 8.0)),
    'organized_xyz_stride2': (CloudOptions(stride=2, color=False), (0.0, float('inf'))),
}


def vectorised(depth: np.ndarray, camera: PinholeCamera, options: CloudOptions,
               rgb: np.ndarray, limits: tuple[float, float]) -> PackedCloud:
    """What the per-frame path does: gate, then back-project and pack (CPU tensors)."""
    return pack_point_cloud(gate_depth(torch.from_numpy(depth), *limits), camera, options, rgb)


def reference(depth: np.ndarray, camera: PinholeCamera, options: CloudOptions,
              rgb: np.ndarray, limits: tuple[float, float]) -> PackedCloud:
    return gated_cloud_reference(depth, camera, options, rgb, min_range=limits[0],
                                 max_range=limits[1])


def scene(width: int, height: int, seed: int) -> tuple[np.ndarray, np.ndarray, PinholeCamera]:
    """A sloped depth map (0.3-12 m) with 2% NaN and 1% inf pixels, a random RGB image."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0.3, 12.0, height, dtype=np.float32)[:, None]
    depth = np.repeat(rows, width, axis=1) + rng.random((height, width), dtype=np.float32)
    depth[rng.random(depth.shape) < 0.02] = np.nan
    depth[rng.random(depth.shape) < 0.01] = np.inf
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return depth, rgb, PinholeCamera.from_fov(width, height, 70.0)


def compare(fast: PackedCloud, reference: PackedCloud) -> dict[str, Any]:
    """Byte equality, else the xyz difference (float32 rounding: the reference computes
    (u - cx) z / fx per point in float64, the vectorised code z ((u - cx) / fx) in float32)."""
    header = [(c.height, c.width, c.fields, c.point_step, c.row_step, c.is_dense)
              for c in (fast, reference)]
    a, b = cloud_to_array(fast), cloud_to_array(reference)
    same = header[0] == header[1] and a.shape == b.shape
    error = 0.0
    if same:
        for axis in 'xyz':
            x, y = a[axis], b[axis]
            same &= bool(np.array_equal(np.isnan(x), np.isnan(y)))
            finite = ~np.isnan(y)
            scale = np.maximum(np.abs(y[finite]), 1.0)
            error = max(error, float((np.abs(x[finite] - y[finite]) / scale).max(initial=0)))
        if 'rgb' in a.dtype.names:
            same &= bool(np.array_equal(a['rgb'].view(np.uint32), b['rgb'].view(np.uint32)))
    return {'equal_bytes': fast.data == reference.data, 'same_layout_rgb_and_nans': same,
            'max_rel_diff_xyz': error}


def timed(function: Callable[[], Any], iterations: int) -> list[float]:
    return [time_call(function)[0] for _ in range(iterations)]


def bench_size(width: int, height: int, iterations: int, reference_iterations: int
               ) -> list[dict[str, Any]]:
    depth, rgb, camera = scene(width, height, seed=width)
    rows = []
    for layout, (options, limits) in LAYOUTS.items():
        fast = vectorised(depth, camera, options, rgb, limits)
        slow = reference(depth, camera, options, rgb, limits)
        agreement = compare(fast, slow)
        if not agreement['same_layout_rgb_and_nans'] or agreement['max_rel_diff_xyz'] > 2e-6:
            raise SystemExit(f'{layout} {width}x{height}: vectorised and reference clouds '
                             f'differ: {agreement}')
        fast_times = timed(lambda o=options, r=limits: vectorised(depth, camera, o, rgb, r),
                           iterations)
        reference_times = timed(lambda o=options, r=limits: reference(depth, camera, o, rgb, r),
                                reference_iterations)
        ours, theirs = latency_stats(fast_times), latency_stats(reference_times)
        rows.append({'size': f'{width}x{height}', 'layout': layout,
                     'points': fast.height * fast.width, 'bytes': len(fast.data), **agreement,
                     'vectorised': ours,
                     'reference': theirs, 'ratio': theirs['median_ms'] / ours['median_ms']})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', default=['640x480', '1280x720'])
    parser.add_argument('--iterations', type=int, default=10)
    parser.add_argument('--reference-iterations', type=int, default=2)
    parser.add_argument('--json', default=str(DEFAULT_OUTPUT_DIR / 'pointcloud.json'))
    args = parser.parse_args()
    results = []
    for text in args.sizes:
        width, height = (int(v) for v in text.lower().split('x'))
        results += bench_size(width, height, args.iterations, args.reference_iterations)
    report = {'benchmark': 'pointcloud', **machine_facts('cpu'), 'versions': versions(),
              'dtype': 'float32', 'peak_rss_mb': max_rss_mb(), 'results': results}
    path = write_report(args.json, report)
    for row in results:
        print(f'cloud {row["size"]} {row["layout"]}: vectorised '
              f'{row["vectorised"]["median_ms"]:.1f} ms '
              f'(p90 {row["vectorised"]["p90_ms"]:.1f}), reference '
              f'{row["reference"]["median_ms"]:.0f} ms, {row["ratio"]:.0f}x, equal bytes '
              f'{row["equal_bytes"]}, max rel xyz diff {row["max_rel_diff_xyz"]:.1e} '
              f'({row["points"]} points)')
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
