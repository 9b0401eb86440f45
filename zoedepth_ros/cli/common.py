"""What every command that runs a model shares: its options and how they become an estimator.

The options map one to one onto :func:`zoedepth_ros.model.loading.load_model` (the one way
from a name or path to a model) and :class:`~zoedepth_ros.inference.DepthEstimator`.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoedepth_ros.errors import InputError
from zoedepth_ros.model.weights import DEFAULT_MODEL, DEMO_MODEL, progress_reporter

if TYPE_CHECKING:
    from zoedepth_ros.inference import DepthEstimator

logger = logging.getLogger('zoedepth')


def add_model_arguments(parser: argparse.ArgumentParser, runtime: bool = True) -> None:
    """``--model/--weights``, ``--config``, ``--random-weights`` and, with ``runtime``, how the
    model runs (device, precision, preprocessing, flip, domain)."""
    group = parser.add_argument_group('model')
    source = group.add_mutually_exclusive_group()
    source.add_argument('--model', default=DEFAULT_MODEL,
                        help='weights: a name (ZoeD_M12_N, ZoeD_M12_K, ZoeD_M12_NK, '
                             f'{DEMO_MODEL}), a checkpoint file, a transformers folder or a '
                             '.onnx file; with --random-weights a preset or ModelConfig YAML '
                             '(default: %(default)s)')
    source.add_argument('--weights', dest='model', help='same as --model (a file or folder)')
    group.add_argument('--config', help='model config (preset or ModelConfig YAML) of a '
                                        'checkpoint that has no .yaml beside it')
    group.add_argument('--random-weights', action='store_true',
                       help='build --model (a preset or config) with random weights: smoke '
                            'tests only, the depth is meaningless')
    if not runtime:
        return
    group.add_argument('--device', default='auto', help='auto, cpu, cuda, cuda:N')
    group.add_argument('--precision', default='fp32', choices=['fp32', 'fp16', 'bf16'])
    group.add_argument('--preprocess', default='eval',
                       choices=['eval', 'keep_aspect', 'original_infer'])
    group.add_argument('--flip', action='store_true', help='average with the mirrored image')
    group.add_argument('--domain', default='auto', choices=['auto', 'indoor', 'outdoor'])
    add_threads_argument(group)


def add_threads_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--threads N``: torch's and onnxruntime's intra-op threads."""
    parser.add_argument('--threads', type=int, default=0, metavar='N',
                        help='intra-op threads of torch and onnxruntime (default 0: one per '
                             'core); lower it on a machine other work shares, where more '
                             'threads than free cores run several times slower')


def build_estimator(args: argparse.Namespace, **overrides: object) -> DepthEstimator:
    """DepthEstimator from the shared model options (``overrides`` replace runtime options).

    A model that is not trained weights (random, or the synthetic-scene demo) is said as a
    warning here; commands repeat it in their summary.
    """
    from zoedepth_ros.inference import DepthEstimator

    defaults = {'device': 'auto', 'precision': 'fp32', 'preprocess': 'eval', 'flip': False,
                'domain': 'auto'}
    options: dict[str, Any] = {name: getattr(args, name, value)
                               for name, value in defaults.items()}
    options['flip'] = options['flip'] or None  # no --flip: the preprocessing preset decides
    options.update(overrides)
    progress = progress_reporter(logger.info, str(args.model))
    estimator = DepthEstimator.from_pretrained(args.model, args.config,
                                               random_weights=args.random_weights,
                                               progress=progress,
                                               threads=getattr(args, 'threads', 0), **options)
    if estimator.warning:
        logger.warning('%s', estimator.warning)
    return estimator


def writable_folder(path: Path | str, what: str = 'output folder') -> Path:
    """Create ``path`` (with its parents) and check that a file can be written in it, before
    any long work: InputError naming the folder and the reason otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix='.zoedepth-write-check-'):
            pass
    except OSError as err:
        raise InputError(f'cannot write to the {what} {path}: {err.strerror or err}') from None
    return path


def writable_target(path: Path | str, what: str = 'output') -> Path:
    """Check that the folder that will hold ``path`` (a file, or a folder created at the end)
    can be written in, creating it; InputError otherwise."""
    path = Path(path)
    writable_folder(path.parent, f'folder of the {what}')
    return path


def os_error_line(err: OSError) -> str:
    """One line for a failed file operation: what, where, why (no traceback)."""
    if not err.filename:
        return f'cannot write: {err.strerror or err}'
    where = f'{err.filename} -> {err.filename2}' if err.filename2 else f'{err.filename}'
    return f'cannot access {where}: {err.strerror or err}'
