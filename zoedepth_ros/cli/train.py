"""Train or fine-tune ZoeDepth: relative pre-training, metric (one head) or NK (two heads, router).

The recipe is a TrainConfig YAML (config/train/); --set overrides single keys. A run writes its
resolved config, TensorBoard events, step checkpoints + training state (for --resume), best.pt
and last.pt (original ZoeDepth checkpoint layout) under output_dir. Multi-GPU/multi-process:
launch with torchrun (one process per GPU; CPU processes use gloo).

Examples:
  zoedepth train --config config/train/demo_nk.yaml
  zoedepth train --config config/train/zoed_n.yaml --set optim.lr=1e-4 --set batch_size=8
  zoedepth train --resume runs/demo_nk          # continue exactly where it stopped
  zoedepth train --config config/train/metric_small_nk.yaml \
      --train-data bag:bags/lab,image=/cam/color,depth=/cam/aligned_depth,holdout=0.1 \
      --val-data bag:bags/lab,image=/cam/color,depth=/cam/aligned_depth,holdout=0.1
  zoedepth train --config config/train/distill_small_cpu.yaml --distill-input bag:bags/run1
  torchrun --nproc_per_node 4 -m zoedepth_ros.cli.main train --config config/train/zoed_nk.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

from zoedepth_ros.cli.common import add_threads_argument, writable_folder
from zoedepth_ros.cli.progress import Progress
from zoedepth_ros.errors import ConfigError

HELP = 'train ZoeDepth (relative / metric / metric_nk stages, torchrun DDP, exact resume)'
logger = logging.getLogger('zoedepth.train')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--config', type=Path, help='TrainConfig YAML (config/train/*.yaml)')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='KEY=VALUE', help='override a config key, e.g. optim.lr=1e-4')
    add_threads_argument(parser)
    parser.add_argument('--resume', help="a run's output directory or its train_state.pt; "
                                         'without --config the saved config is used')
    parser.add_argument('--train-data', action='append', default=[], metavar='SPEC',
                        help="a training set, replacing the recipe's data.train_roots "
                             '(repeatable): an RGB-D folder, NAME:ROOT[:SPLIT_FILE], or '
                             'bag:PATH,image=TOPIC,depth=TOPIC[,info=TOPIC][,domain=indoor|'
                             'outdoor][,max_depth=M][,holdout=0.2]')
    parser.add_argument('--teacher', metavar='MODEL',
                        help='stage distill: the teacher (a name such as ZoeD_M12_NK, a '
                             'checkpoint or an .onnx file), replacing distill.teacher')
    parser.add_argument('--distill-input', action='append', default=[], metavar='SPEC',
                        help='stage distill: unlabeled frames, replacing distill.inputs '
                             '(repeatable): image files, folders, globs, videos, '
                             'bag:PATH[,image=TOPIC]')
    parser.add_argument('--val-data', action='append', default=[], metavar='SPEC',
                        help='a validation set, replacing data.val_roots (same forms; a bag '
                             'with holdout= gives its held-out frames)')


def _config(args: argparse.Namespace):  # -> TrainConfig
    from zoedepth_ros.config import apply_overrides, from_dict, load_config
    from zoedepth_ros.training.config import TrainConfig
    from zoedepth_ros.training.state import saved_config

    if args.config is not None:
        cfg = load_config(args.config, TrainConfig)
    elif args.resume:
        cfg = from_dict(TrainConfig, saved_config(args.resume))
    else:
        raise ConfigError('give --config RECIPE.yaml (see config/train/) or --resume RUN_DIR')
    cfg = apply_overrides(cfg, args.overrides)
    data = cfg.data
    if args.train_data:
        data = dataclasses.replace(data, train_roots=tuple(args.train_data))
    if args.val_data:
        data = dataclasses.replace(data, val_roots=tuple(args.val_data))
    distill = cfg.distill
    if args.teacher:
        distill = dataclasses.replace(distill, teacher=args.teacher)
    if args.distill_input:
        distill = dataclasses.replace(distill, inputs=tuple(args.distill_input))
    return dataclasses.replace(cfg, data=data, distill=distill)


def run(args: argparse.Namespace) -> int:
    from zoedepth_ros.training.distributed import shutdown_distributed
    from zoedepth_ros.training.trainer import Trainer

    cfg = _config(args)
    writable_folder(cfg.output_dir, 'run folder (output_dir)')
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    with Progress('teacher labels', None, 'frame', enabled=cfg.stage == 'distill') as labels:
        trainer = Trainer(cfg, resume=args.resume, label_progress=labels.update)
    main = trainer.info.is_main
    if main:
        logger.info('stage %s, %d steps (%d per epoch), global batch %d on %d process(es), '
                    'device %s, output %s', cfg.stage, trainer.total_steps,
                    trainer.steps_per_epoch, cfg.batch_size, trainer.info.world_size,
                    trainer.device, cfg.output_dir)
    start, skipped = time.perf_counter(), 0
    try:
        with Progress('train', trainer.total_steps, 'step', initial=trainer.step,
                      enabled=main) as bar:
            for record in trainer.run():
                skipped += record.skipped
                bar.note(loss=f'{record.loss:.4f}', lr=f'{record.lr:.2e}')
                bar.update(1)
    finally:
        shutdown_distributed()
    if main:
        minutes = (time.perf_counter() - start) / 60
        logger.info('done: %d steps in %.1f min, %d skipped batches; best %s %.4f; '
                    'weights %s', trainer.step, minutes, skipped, trainer.score_key,
                    trainer.best_score,
                    Path(cfg.output_dir) / 'last.pt')
    return 0
