"""One short GPU run (< 5 min): ZoeD_NK-sized model FPS per precision, end-to-end FPS, GPU tests.

Usage (on a machine with a CUDA GPU):
    OUT=/some/dir python benchmarks/bench_gpu.py            # BEiT-L-384 NK, random weights
    python benchmarks/bench_gpu.py --quick --device cpu     # tiny NK, checks the script itself

Measures, in one process:
1. model-only forward FPS at 384x512, batch 1, for fp32 / fp16 / bf16 (autocast; the metric
   heads stay fp32), with channels-last convolutions as a variant, and ``torch.compile``
   (fp16, default mode) in a child process killed after --compile-timeout-s (100 s);
2. end-to-end ``pipeline.predict.predict_frame`` on a 640x480 uint8 frame with the node's
   defaults (upload, resize, normalise, model, upsample, range gate, stride-2 xyzrgb cloud on
   the GPU, copy of depth, std and cloud to the host), i.e. the node's work without ROS;
3. ``pytest -m gpu`` (the GPU-marked tests).
Writes everything to $OUT/bench_gpu.json (or --json) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import REPO, latency_stats, machine_facts, versions, write_report

from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io.messages import camera_info_from_camera
from zoedepth_ros.model import ZoeDepth, build_model
from zoedepth_ros.pipeline.outputs import FrameRequest
from zoedepth_ros.pipeline.predict import predict_frame
from zoedepth_ros.ros.config import NodeConfig

DTYPES = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def random_model(preset: str, device: torch.device) -> ZoeDepth:
    """Preset with random weights drawn on the device (seconds, not timm's CPU init)."""
    model = build_model(preset, initialize=False).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim > 1 or name.endswith('bias_table'):
                parameter.normal_(0.0, 0.02, generator=generator)
            elif 'norm' in name and name.endswith('weight'):
                parameter.fill_(1.0)
            elif name.endswith(('gamma_1', 'gamma_2')):
                parameter.fill_(0.1)
            else:
                parameter.zero_()
    return model.eval()


def cuda_sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_forward(model: Any, image: torch.Tensor, dtype: torch.dtype | None, warmup: int,
                 iterations: int) -> dict[str, float]:
    """Latency statistics and FPS of ``model(image, prepared=True)`` under autocast."""
    device = image.device
    autocast = torch.autocast(device.type, dtype=dtype or torch.float32,
                              enabled=dtype is not None)
    seconds = []
    with torch.inference_mode(), autocast:
        for index in range(warmup + iterations):
            cuda_sync(device)
            start = time.perf_counter()
            model(image, prepared=True)
            cuda_sync(device)
            if index >= warmup:
                seconds.append(time.perf_counter() - start)
    stats = latency_stats(seconds)
    stats['fps'] = 1e3 / stats['median_ms']
    if device.type == 'cuda':
        stats['max_memory_allocated_mb'] = torch.cuda.max_memory_allocated(device) / 2**20
    return stats


def model_only(model: ZoeDepth, device: torch.device, precisions: list[str], warmup: int,
               iterations: int) -> dict[str, Any]:
    image = torch.rand(1, 3, 384, 512, device=device) * 2 - 1
    results: dict[str, Any] = {}
    for name in precisions:
        results[name] = time_forward(model, image, DTYPES[name], warmup, iterations)
        print(f'model-only {name}: {results[name]["fps"]:.1f} FPS', flush=True)
    half = 'fp16' if 'fp16' in precisions else precisions[-1]
    model.to(memory_format=torch.channels_last)
    results[f'{half}_channels_last'] = time_forward(model, image, DTYPES[half], warmup,
                                                    iterations)
    model.to(memory_format=torch.contiguous_format)
    return results


def compiled_only(preset: str, device: torch.device, iterations: int) -> dict[str, Any]:
    """torch.compile (default mode) of the model, fp16 on CUDA: compile time and FPS."""
    model = random_model(preset, device)
    dtype = torch.float16 if device.type == 'cuda' else None
    image = torch.rand(1, 3, 384, 512, device=device) * 2 - 1
    start = time.perf_counter()
    compiled = torch.compile(model)
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32,
                                                enabled=dtype is not None):
        compiled(image, prepared=True)
    cuda_sync(device)
    result = {'compile_s': time.perf_counter() - start, 'dtype': str(dtype)}
    result.update(time_forward(compiled, image, dtype, 3, iterations))
    return result


def compiled_in_subprocess(device: torch.device, preset: str, iterations: int,
                           timeout_s: float) -> dict[str, Any]:
    """Run compiled_only in a child with a hard time limit (compilation can take minutes)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / 'compiled.json'
        command = [sys.executable, __file__, '--compile-only', '--device', str(device),
                   '--preset', preset, '--iterations', str(iterations), '--json', str(out)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {'skipped': f'compilation + timing exceeded {timeout_s:.0f} s'}
        if done.returncode != 0 or not out.is_file():
            return {'error': (done.stderr or done.stdout)[-800:]}
        return json.loads(out.read_text())


def end_to_end(model: ZoeDepth, device: torch.device, precisions: list[str], frames: int
               ) -> dict[str, Any]:
    """pipeline.predict.predict_frame on 640x480 uint8 with the node's defaults, per precision."""
    from zoedepth_ros.geometry import PinholeCamera

    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    info = camera_info_from_camera(PinholeCamera.from_fov(640, 480, 70.0))
    options = NodeConfig().frame
    request = FrameRequest.of(options, lambda key: key != 'preview')
    results: dict[str, Any] = {}
    for name in precisions:
        estimator = DepthEstimator(model, device=str(device), precision=name)
        walls, stages = [], []
        for index in range(frames + 2):
            start = time.perf_counter()
            result = predict_frame(estimator, rgb, info, options, request)
            if index >= 2:
                walls.append(time.perf_counter() - start)
                stages.append(result.timings_ms)
        stats = latency_stats(walls)
        stats['fps'] = 1e3 / stats['median_ms']
        for key in stages[0]:
            stats[f'{key}_median_ms'] = float(np.median([s[key] for s in stages]))
        results[name] = stats
        print(f'end-to-end {name} 640x480 (depth, std, stride-2 xyzrgb cloud): '
              f'{stats["fps"]:.1f} FPS, outside the model '
              f'{stats["preprocess_median_ms"] + stats["postprocess_median_ms"]:.2f} ms',
              flush=True)
    return results


def gpu_tests(timeout_s: int) -> dict[str, Any]:
    command = [sys.executable, '-m', 'pytest', '-m', 'gpu', '-q', '-p', 'no:xdist', '-p',
               'no:cacheprovider']
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {'returncode': None, 'summary': f'timed out after {timeout_s} s'}
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {'returncode': done.returncode, 'summary': lines[-1] if lines else '',
            'tail': '\n'.join(lines[-15:])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='tiny NK model, few iterations')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--iterations', type=int, default=0, help='0: 30 (quick: 3)')
    parser.add_argument('--compile-timeout-s', type=float, default=100.0,
                        help='limit for the torch.compile measurement (child process); 0: skip')
    parser.add_argument('--compile-only', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--preset', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--no-tests', action='store_true', help='skip pytest -m gpu')
    parser.add_argument('--json', default=None, help='default: $OUT/bench_gpu.json')
    args = parser.parse_args()
    started = time.perf_counter()
    device = torch.device(args.device)
    preset = args.preset or ('zoedepth_tiny_nk' if args.quick else 'ZoeD_NK')
    iterations = args.iterations or (3 if args.quick else 30)
    if args.compile_only:
        write_report(args.json, compiled_only(preset, device, iterations))
        return 0
    precisions = ['fp32', 'fp16', 'bf16'] if device.type == 'cuda' else ['fp32']
    model = random_model(preset, device)
    report: dict[str, Any] = {
        'benchmark': 'gpu', **machine_facts(str(device)), 'versions': versions(),
        'model': f'{preset} (random weights)', 'input_size': [384, 512], 'batch': 1,
        'iterations': iterations, 'build_s': time.perf_counter() - started,
        'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version()}
    report['model_only'] = model_only(model, device, precisions, 3, iterations)
    if args.compile_timeout_s > 0 and not args.quick:
        report['model_only']['fp16_compiled' if device.type == 'cuda' else 'fp32_compiled'] = (
            compiled_in_subprocess(device, preset, iterations, args.compile_timeout_s))
    report['end_to_end_640x480_cloud'] = end_to_end(model, device, precisions,
                                                    max(3, iterations // 2))
    if not args.no_tests:
        report['pytest_gpu'] = gpu_tests(timeout_s=120)
    report['total_s'] = time.perf_counter() - started
    out = args.json or str(Path(os.environ.get('OUT', REPO / 'outputs' / 'benchmarks'))
                           / 'bench_gpu.json')
    write_report(out, report)
    print(json.dumps(report, indent=2))
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
