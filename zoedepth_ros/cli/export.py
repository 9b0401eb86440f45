"""Export a model to ONNX at a fixed network size, checked against torch with onnxruntime, or
to a checkpoint in the original ZoeDepth layout (``--checkpoint``, optionally float16).

The graph takes (B, 3, H, W) float32 RGB in [0, 1] at the exported size and returns depth and
std (B, 1, H, W) in metres, the domain index (B,) and, for NK models, the router logits. With
--domain auto an NK graph computes both heads and routes each image inside the graph.
Use the file with `DepthEstimator.from_pretrained(path)` (or any tool taking a model, e.g.
`zoedepth infer --model model.onnx`), optionally with TensorRT/CUDA execution providers.

Examples:
  zoedepth export --onnx zoed_nk.onnx --model ZoeD_M12_NK
  zoedepth export --onnx kitti.onnx --model ZoeD_M12_K.pt --height 384 --width 768
  zoedepth export --onnx tiny.onnx --model zoedepth_tiny_nk --random-weights --domain indoor
  zoedepth export --checkpoint demo.pt --half --model outputs/runs/demo_nk/best.pt
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from zoedepth_ros.cli.common import add_model_arguments, add_threads_argument, writable_target
from zoedepth_ros.errors import ConfigError

if TYPE_CHECKING:  # torch loads lazily: `zoedepth --help` stays fast
    from zoedepth_ros.model.zoedepth import ZoeDepth

HELP = 'export a model to ONNX (fixed size, routing inside) and check it with onnxruntime'
logger = logging.getLogger('zoedepth.export')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('--onnx', type=Path, help='output .onnx file')
    target.add_argument('--checkpoint', type=Path,
                        help='output .pt: weights in the original ZoeDepth layout with the '
                             'model config YAML beside them (e.g. to bundle a trained model)')
    parser.add_argument('--half', action='store_true',
                        help='--checkpoint: store float weights as float16 (half the size; '
                             'loaded back as float32)')
    add_model_arguments(parser, runtime=False)
    add_threads_argument(parser)
    parser.add_argument('--height', type=int, help='network input height (default: config)')
    parser.add_argument('--width', type=int, help='network input width (default: config)')
    parser.add_argument('--domain', default='auto', choices=['auto', 'indoor', 'outdoor'],
                        help='route inside the graph (auto) or export one head')
    parser.add_argument('--no-check', action='store_true',
                        help='skip the onnxruntime vs torch comparison')
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help='largest accepted max|onnx - torch| / max|torch| of the depth')


def check(model: ZoeDepth, path: Path, tolerance: float) -> dict[str, float]:
    """Run torch and onnxruntime on one random image; raise if the depth differs too much."""
    import torch

    from zoedepth_ros.model.onnx import OnnxDepthModel

    graph = OnnxDepthModel(path)
    head = {'auto': None, 'indoor': 'nyu', 'outdoor': 'kitti'}[graph.exported_domain]
    image = torch.rand(1, 3, *graph.size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = model(image, domain=head, size=graph.size)
    exported = graph(image, domain=head)
    errors = {}
    for name, ours, theirs in (('depth', exported.metric_depth, reference.metric_depth),
                               ('std', exported.depth_std, reference.depth_std)):
        scale = max(theirs.abs().max().item(), 1e-12)
        errors[name] = (ours - theirs).abs().max().item() / scale
    errors['same_domain'] = float(torch.equal(exported.domain_index, reference.domain_index))
    if errors['depth'] > tolerance or not errors['same_domain']:
        raise ConfigError(f'onnxruntime output differs from torch: relative depth error '
                          f'{errors["depth"]:.2e} (tolerance {tolerance:g}), same domain '
                          f'{bool(errors["same_domain"])}; the file is kept at {path}')
    return errors


def run(args: argparse.Namespace) -> int:
    import torch

    from zoedepth_ros.config import save_config
    from zoedepth_ros.model.checkpoint import save_checkpoint
    from zoedepth_ros.model.loading import load_model
    from zoedepth_ros.model.onnx import export_onnx
    from zoedepth_ros.model.weights import progress_reporter

    if args.onnx is not None and args.onnx.suffix != '.onnx':
        raise ConfigError(f'--onnx needs a .onnx file name, got {args.onnx}')
    if args.checkpoint is not None and args.checkpoint.suffix != '.pt':
        raise ConfigError(f'--checkpoint needs a .pt file name, got {args.checkpoint}')
    if args.model.endswith('.onnx'):
        raise ConfigError(f'{args.model} is already an ONNX graph; export from torch weights')
    writable_target(args.onnx if args.onnx is not None else args.checkpoint, 'export')
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model, args.config, random_weights=args.random_weights,
                        progress=progress_reporter(logger.info, args.model))
    if loaded.warning:
        logger.warning('%s', loaded.warning)
    model = loaded.torch_model()
    if args.checkpoint is not None:
        path = save_checkpoint(model, args.checkpoint,
                               dtype=torch.float16 if args.half else None)
        save_config(model.cfg, path.with_suffix('.yaml'))
        logger.info('wrote %s (%.1f MB) and %s', path, path.stat().st_size / 1e6,
                    path.with_suffix('.yaml').name)
        return 0
    start = time.perf_counter()
    path = export_onnx(model, args.onnx, args.height, args.width, args.domain, name=loaded.name)
    logger.info('wrote %s (%.1f MB) in %.1f s', path, path.stat().st_size / 1e6,
                time.perf_counter() - start)
    if not args.no_check:
        errors = check(model, path, args.tolerance)
        logger.info('onnxruntime vs torch: max relative difference depth %.2e, std %.2e, '
                    'same domain', errors['depth'], errors['std'])
    return 0
