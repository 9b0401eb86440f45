"""DDP parity job: ``torchrun ... ddp_job.py OUT`` or ``python ddp_job.py OUT``.

Trains the tiny single-head model for a few steps on an in-memory dataset with a fixed global
batch and writes the per-step losses (averaged over processes) to OUT/losses.json (rank 0).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).resolve().parents[2])]

from tiny_data import TINY_MODEL_N, TinyRGBD  # noqa: E402

from zoedepth_ros.config import from_dict  # noqa: E402
from zoedepth_ros.training.config import TrainConfig  # noqa: E402
from zoedepth_ros.training.distributed import shutdown_distributed  # noqa: E402
from zoedepth_ros.training.trainer import Trainer  # noqa: E402

STEPS = 4


def main(output: str) -> None:
    torch.set_num_threads(1)
    cfg = from_dict(TrainConfig, {
        'stage': 'metric', 'output_dir': output, 'batch_size': 4, 'device': 'cpu',
        'tensorboard': False, 'data': {'augment': False},
        'model': {'preset': 'zoedepth_tiny_n', 'overrides': TINY_MODEL_N},
        'schedule': {'steps': STEPS}, 'optim': {'lr': 2e-3}})
    trainer = Trainer(cfg, train_sets=[TinyRGBD(16)])
    losses = [record.loss for record in trainer.run()]
    if trainer.info.is_main:
        Path(output, 'losses.json').write_text(json.dumps(
            {'world_size': trainer.info.world_size, 'losses': losses}))
    shutdown_distributed()


if __name__ == '__main__':
    main(sys.argv[1])
