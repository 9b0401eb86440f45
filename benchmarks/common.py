"""Shared pieces of the benchmark scripts: timing statistics, machine facts, JSON output.

Benchmarks are scripts, never timed tests (style.md). Every script writes one JSON file
(atomically) with the device, library versions, sizes, dtype, iteration counts, median and
p90 latency and peak memory, and prints a one-line summary. Numbers are only comparable
between runs on the same device; ratios measured in one process (implementations
interleaved) are the robust figure on a shared machine.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as `python benchmarks/bench_x.py` from a fresh clone: the package, and the slow oracles
# and stand-in models the tests also use (test/oracles.py, test/doubles.py).
for _path in (REPO, REPO / 'test'):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from zoedepth_ros.io.atomic import write_json  # noqa: E402

DEFAULT_OUTPUT_DIR = REPO / 'outputs' / 'benchmarks'


def cpu_name() -> str:
    """CPU model name from /proc/cpuinfo (Linux) or platform's best guess."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str = 'cpu') -> str:
    """Human-readable name of a torch device ('cpu', 'cuda', 'cuda:1')."""
    if device.startswith('cuda'):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f'{cpu_name()} ({os.cpu_count()} logical CPUs)'


def versions(*extra: str) -> dict[str, str]:
    """Python, torch, timm, numpy (and ``extra`` packages') versions; 'missing' if absent."""
    from importlib import metadata

    found = {'python': platform.python_version()}
    for package in ('torch', 'timm', 'numpy', *extra):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = 'missing'
    return found


def machine_facts(device: str = 'cpu') -> dict[str, Any]:
    """Device name, load average and torch threading at the time of the run."""
    import torch

    facts: dict[str, Any] = {'device': device, 'device_name': device_name(device),
                             'platform': platform.platform(),
                             'torch_threads': torch.get_num_threads()}
    if hasattr(os, 'getloadavg'):
        facts['load_average_1m'] = round(os.getloadavg()[0], 2)
    return facts


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """Median, p90, min and mean of a list of durations, in milliseconds."""
    ordered = sorted(seconds)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {'median_ms': 1e3 * statistics.median(ordered), 'p90_ms': 1e3 * p90,
            'min_ms': 1e3 * ordered[0], 'mean_ms': 1e3 * statistics.fmean(ordered),
            'iterations': len(ordered)}


def time_call(function: Callable[[], object], sync: Callable[[], None] = lambda: None
              ) -> tuple[float, float]:
    """(wall, process CPU) seconds of one call (``sync`` waits for queued device work)."""
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    sync()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(candidates: dict[str, Callable[[], object]], iterations: int, warmup: int,
                sync: Callable[[], None] = lambda: None
                ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time several implementations alternately (order rotated each round).

    On a shared machine load changes within seconds; alternating the candidates makes each
    round's ratio fair even when absolute numbers drift. Returns (wall, CPU) seconds per call
    by name; with one torch thread, CPU time is the work done, untouched by other processes.
    """
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    walls: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(iterations):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time_call(candidates[name], sync)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return walls, cpus


def max_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB; Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != 'darwin' else peak / 2**20


def write_report(path: str | os.PathLike[str], report: dict[str, Any]) -> Path:
    """Write ``report`` as indented JSON atomically; returns the path."""
    path = Path(path)
    write_json(path, report)
    return path
