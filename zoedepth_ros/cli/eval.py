"""Evaluate a model on an RGB-D dataset with the ZoeDepth protocol; table on stdout, JSON on disk.

Protocol (paper): stretch to the training resolution, flip averaging (``--no-flip`` turns it
off), bilinear upsampling to the ground truth, clamp to the depth range, dataset crop (NYU
Eigen, KITTI Garg), per-image metrics averaged over images.

Examples:
  zoedepth eval --dataset folder --root data/synth/indoor --split test
  zoedepth eval --model zoedepth_demo_nk --dataset folder --split all \
      --root outputs/synth_heldout/indoor --root outputs/synth_heldout/outdoor
  zoedepth eval --model ZoeD_M12_N.pt --dataset nyu --root nyu_test \\
      --split-file nyu_test.txt --baseline newcrfs_nyu.json
  zoedepth eval --eval-config config/eval/kitti.yaml --model ZoeD_M12_NK --root kitti
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from zoedepth_ros.cli.common import (
    add_model_arguments,
    add_threads_argument,
    build_estimator,
    writable_target,
)
from zoedepth_ros.cli.progress import Progress

HELP = 'evaluate a model on a dataset (delta1-3, REL, RMSE, ...; mRI against a baseline)'
DATASETS = ('nyu', 'kitti', 'diode', 'diode_indoor', 'diode_outdoor', 'folder')
logger = logging.getLogger('zoedepth.eval')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, runtime=False)  # the protocol fixes preprocessing and flip
    add_threads_argument(parser)
    parser.add_argument('--eval-config', type=Path, help='EvalConfig YAML (config/eval/)')
    parser.add_argument('--dataset', choices=DATASETS,
                        help="dataset layout ('diode' = diode_indoor)")
    parser.add_argument('--root', type=Path, required=True, action='append',
                        help='dataset root folder; repeat to evaluate several together (e.g. '
                             'an indoor and an outdoor folder: per-domain rows, router '
                             'accuracy over both), each with its own range and crop')
    parser.add_argument('--split', help='folder split (train/test; "all" = every image)')
    parser.add_argument('--split-file', help='NYU/KITTI list of test pairs')
    parser.add_argument('--crop', choices=['auto', 'eigen', 'garg', 'none'])
    parser.add_argument('--min-depth', type=float, help='evaluation range start (m)')
    parser.add_argument('--max-depth', type=float, help='evaluation range end (m)')
    parser.add_argument('--no-flip', action='store_true', help='no flip averaging')
    parser.add_argument('--domain', choices=['auto', 'indoor', 'outdoor'])
    parser.add_argument('--max-samples', type=int, help='only the first N samples')
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--device', help='auto, cpu, cuda, cuda:N')
    parser.add_argument('--baseline', type=Path, help='results JSON of a reference (mRI_theta)')
    parser.add_argument('-o', '--output', type=Path,
                        help='results JSON (default: eval_<model>_<dataset>.json)')


def _config(args: argparse.Namespace):  # -> EvalConfig
    from zoedepth_ros.config import from_dict, load_config, to_dict
    from zoedepth_ros.evaluation.datasets import EvalConfig

    cfg = load_config(args.eval_config, EvalConfig) if args.eval_config else EvalConfig()
    data = to_dict(cfg)
    dataset = args.dataset
    if dataset == 'diode':
        dataset = 'diode_outdoor' if args.domain == 'outdoor' else 'diode_indoor'
    flags = {'dataset': dataset, 'split': args.split, 'split_file': args.split_file,
             'crop': args.crop, 'min_depth': args.min_depth, 'max_depth': args.max_depth,
             'domain': args.domain, 'max_samples': args.max_samples,
             'batch_size': args.batch_size, 'device': args.device}
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.no_flip:
        data['flip'] = False
    if data.get('split') == 'all':
        data['split'] = None
    return from_dict(EvalConfig, data)


def run(args: argparse.Namespace) -> int:
    from zoedepth_ros.data.datasets import build_dataset
    from zoedepth_ros.evaluation.datasets import (
        evaluate_dataset,
        load_baseline,
        merge_reports,
        save_report,
        with_baseline,
    )

    cfg = _config(args)
    writable_target(args.output if args.output is not None else Path('eval.json'), 'results')
    datasets = [build_dataset(cfg.dataset, root, split=cfg.split, split_file=cfg.split_file)
                for root in args.root]
    estimator = build_estimator(args, device=cfg.device, precision=cfg.precision,
                                preprocess='eval', flip=cfg.flip, domain=cfg.domain)
    baseline = load_baseline(args.baseline) if args.baseline else None

    def progress(samples: Iterable[Any], total: int) -> Iterator[Any]:
        with Progress('eval', total, 'image') as bar:
            for sample in samples:
                yield sample
                bar.update()

    reports = []
    for root, dataset in zip(args.root, datasets):
        report = evaluate_dataset(estimator, dataset, cfg, wrap=progress)
        report.settings['root'] = str(root)
        reports.append(report)
    report = merge_reports(reports)
    if baseline is not None:
        with_baseline(report, baseline)
    output = args.output or Path(f'eval_{Path(estimator.name).stem}_{report.dataset}.json')
    print(report.table())  # first: a failing write below still leaves the numbers
    save_report(report, output)
    logger.info('wrote %s (%.1f s, %.1f img/s)', output, report.seconds,
                (report.samples + report.skipped) / max(report.seconds, 1e-9))
    if estimator.warning:
        logger.warning('%s', estimator.warning)
    return 0
