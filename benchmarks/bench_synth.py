"""Synthetic scene generation speed (one process): frames/s per domain and image size.

Usage (from the repository root):
    python benchmarks/bench_synth.py [--frames 48] [--sizes 160x120 320x240] [--json out.json]

Renders ``--frames`` frames per domain and size with ``iter_frames`` (4 views per scene, so
scene building is included, writing is not) and reports wall-clock and CPU-time rates; CPU
time is the steadier number on a shared machine.
"""

from __future__ import annotations

import argparse
import time

from common import machine_facts, versions, write_report

from zoedepth_ros.synth import iter_frames


def measure(domain: str, size: tuple[int, int], frames: int, seed: int) -> dict[str, float]:
    """Time ``frames`` frames of ``domain`` at ``size``; returns rates and latencies."""
    next(iter_frames(domain, 1, size, seed + 1))  # warm-up: imports, caches
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in iter_frames(domain, frames, size, seed):
        pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {'frames': frames, 'wall_s': wall, 'cpu_s': cpu, 'frames_per_s_wall': frames / wall,
            'frames_per_s_cpu': frames / cpu, 'ms_per_frame_cpu': 1000 * cpu / frames}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=48)
    parser.add_argument('--sizes', nargs='+', default=['160x120', '320x240'])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, help='also write the results here')
    args = parser.parse_args()
    results = []
    for text in args.sizes:
        width, height = (int(v) for v in text.split('x'))
        for domain in ('indoor', 'outdoor'):
            row = {'domain': domain, 'size': text,
                   **measure(domain, (width, height), args.frames, args.seed)}
            results.append(row)
            print(f'{domain:8s} {text:>8s}: {row["frames_per_s_wall"]:6.1f} frames/s wall, '
                  f'{row["frames_per_s_cpu"]:6.1f} frames/s CPU '
                  f'({row["ms_per_frame_cpu"]:.0f} ms/frame)')
    report = {'benchmark': 'synth', **machine_facts('cpu'), 'versions': versions('trimesh'),
              'processes': 1, 'results': results}
    if args.json:
        write_report(args.json, report)


if __name__ == '__main__':
    main()
