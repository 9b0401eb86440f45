"""The training stages (``relative``, ``metric``, ``metric_nk``) behind ``zoedepth train``.

A :class:`Trainer` builds the model, data streams, optimiser and schedule from a
:class:`TrainConfig`, then :meth:`Trainer.run` yields one :class:`StepRecord` per optimiser step
(the CLI draws the bar). Rank 0 writes TensorBoard events, validation results and checkpoints:

``OUTPUT/config.yaml``              resolved TrainConfig
``OUTPUT/checkpoints/step_N.pt``    model weights, original ZoeDepth layout (``save_checkpoint``)
``OUTPUT/train_state.pt``           optimiser, scheduler, step, RNG states, config, best score,
                                    and the name of the weights file; ``--resume`` reads it
``OUTPUT/best.pt``, ``OUTPUT/last.pt``  best (lowest REL, aligned REL for the relative stage,
                                    on the first validation set) / final
                                    weights, each with its model config (``.yaml``) beside it
``OUTPUT/history.json``             validation metrics per evaluation
``OUTPUT/tensorboard/``             scalars and sample images
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from zoedepth_ros.config import save_config, to_dict
from zoedepth_ros.data.datasets import open_dataset
from zoedepth_ros.data.transforms import AugmentConfig, TrainAugmentation
from zoedepth_ros.errors import CheckpointError, ConfigError
from zoedepth_ros.extras import require
from zoedepth_ros.inference import DepthEstimator, resolve_device
from zoedepth_ros.io.atomic import strict_json, write_text
from zoedepth_ros.model.checkpoint import (
    load_checkpoint,
    save_checkpoint,
)
from zoedepth_ros.training.batches import BatchStream, EpochConcat, SeededView, collate
from zoedepth_ros.training.config import Stage, TrainConfig
from zoedepth_ros.training.distill import Labels, label_frames
from zoedepth_ros.training.distributed import (
    DistInfo,
    ResumableSampler,
    barrier,
    init_distributed,
    per_rank_batch,
    wrap_model,
)
from zoedepth_ros.training.loop import (
    StageLoss,
    StepRecord,
    Validation,
    enable_gradient_checkpointing,
    evaluate,
    train_steps,
)
from zoedepth_ros.training.model_init import build_training_model
from zoedepth_ros.training.optim import build_optimizer, build_scheduler
from zoedepth_ros.training.state import (
    capture_rng,
    read_state,
    restore_rng,
    write_state,
)

logger = logging.getLogger(__name__)


def _dataset_info(dataset: Any) -> tuple[str | None, tuple[float, float]]:
    domain = getattr(dataset, 'domain', None)
    low = float(getattr(dataset, 'min_depth', 1e-3))
    high = float(getattr(dataset, 'max_depth', 80.0 if domain == 'outdoor' else 10.0))
    return domain, (low, high)


def _train_transform(augment: bool, dataset: Any) -> TrainAugmentation | None:
    """The original recipe's augmentation (NYU gets its wider brightness range)."""
    if not augment:
        return None
    name = getattr(getattr(dataset, 'info', None), 'name', '')
    return TrainAugmentation(AugmentConfig.for_dataset(name))


class Trainer:
    """One training run (single process or one rank of a torchrun job).

    Args:
        cfg: the resolved configuration.
        train_sets: datasets to train on instead of opening ``cfg.data.train_roots``.
        val_sets: datasets to validate on instead of opening ``cfg.data.val_roots``.
        resume: a training-state file or an output directory holding one.
    """

    def __init__(self, cfg: TrainConfig, train_sets: Sequence[Any] | None = None,
                 val_sets: Sequence[Any] | None = None, resume: str | None = None,
                 label_progress: Callable[[int], None] | None = None) -> None:
        self.cfg = cfg
        self.label_progress = label_progress  # distillation: one call per labelled frame
        self.device = resolve_device(cfg.device)
        self.info: DistInfo = init_distributed(self.device.type)
        if self.device.type == 'cuda':
            self.device = torch.device('cuda', self.info.local_rank)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        _seed_everything(cfg.seed)
        self.output = Path(cfg.output_dir)
        model = build_training_model(cfg).to(self.device)
        self.num_heads = len(model.heads)
        self.stage: Stage = cfg.stage
        """The loss and validation stage: distillation trains like metric / metric_nk."""
        if cfg.stage == 'distill':
            self.stage = 'metric_nk' if self.num_heads > 1 else 'metric'
        if self.stage == 'metric_nk' and cfg.model.batchnorm == 'train':
            # Every NK batch is single-domain: statistics per domain let the router learn
            # features that the running statistics at inference do not reproduce (a trial
            # reached router loss 2e-4 and validation router accuracy 0 outdoors).
            raise ConfigError('model.batchnorm=train cannot be used with metric_nk (its '
                              'batches are single-domain); learn the statistics in the '
                              'relative stage (mixed batches) and keep them frozen here')
        if cfg.model.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        self.local_batch = per_rank_batch(cfg.batch_size, self.info)
        train_roots, val_roots = list(cfg.data.train_roots), list(cfg.data.val_roots)
        if cfg.stage == 'distill':
            labelled = [str(folder) for folder in self._teacher_labels().folders.values()]
            train_roots, val_roots = train_roots + labelled, val_roots + labelled
        if train_sets is None and not train_roots:
            raise ConfigError('data.train_roots is empty; name at least one dataset '
                              '(folder, NAME:ROOT or bag:PATH,...)')
        train_sets = list(train_sets) if train_sets is not None else [
            open_dataset(root, cfg.data.train_split) for root in train_roots]
        _check_depth_kinds(train_sets, self.stage)
        self.stream = self._build_stream(train_sets)
        self.val_sets = list(val_sets) if val_sets is not None else [
            open_dataset(root, cfg.data.val_split) for root in val_roots]
        self.steps_per_epoch = self.stream.steps_per_epoch()
        self.total_steps = cfg.schedule.steps or cfg.schedule.epochs * self.steps_per_epoch
        self.eval_interval = cfg.eval_interval or max(1, self.steps_per_epoch // 4)
        self.optimizer = build_optimizer(model, cfg.optim, cfg.schedule, self.num_heads)
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule, self.total_steps)
        self.model = model
        # Some parameters never get gradients: the unused ImageNet head kept for checkpoint
        # compatibility, the metric heads in the relative stage, the other head when routing
        # by label. DDP must be told to look for them.
        self.train_model = wrap_model(model, self.info, self.device, find_unused_parameters=True)
        self.loss_fn = StageLoss(self.stage, cfg.loss, cfg.model.route_by_label)
        self.step = 0
        self.score_key = 'aligned_abs_rel' if self.stage == 'relative' else 'abs_rel'
        """What picks best.pt: the first validation set's (aligned) REL."""
        self.best_score = math.inf
        self.history: list[dict[str, Any]] = []
        if resume is not None:
            self._load(resume)
        self.writer = self._make_writer()

    # ---------------------------------------------------------------------------- data

    def _teacher_labels(self) -> Labels:
        """Label the distillation inputs with the teacher once (rank 0; reused on resume)."""
        section = self.cfg.distill
        output = Path(section.labels or self.output / 'teacher_labels')
        if self.info.is_main and not output.exists():
            teacher = DepthEstimator.from_pretrained(
                section.teacher, section.teacher_config or None, device=str(self.device))
            logger.info('labelling %s with teacher %s into %s', ', '.join(section.inputs),
                        teacher.name, output)
            labels = label_frames(teacher, section.inputs, output, section.holdout,
                                  self.label_progress)
            logger.info('teacher labelled %d frames (%s), %d unreadable', labels.frames,
                        ', '.join(f'{k} {v}' for k, v in labels.per_domain.items()),
                        labels.unreadable)
        barrier(self.info)
        folders = {p.name: p for p in sorted(output.iterdir()) if p.is_dir()}
        if not folders:
            raise ConfigError(f'the teacher labelled no frame of {list(section.inputs)}')
        return Labels(folders=folders)

    def _loader(self, datasets: list[Any], index: int, batch: int | None = None) -> DataLoader:
        views = []
        for offset, dataset in enumerate(datasets):
            domain, depth_range = _dataset_info(dataset)
            transform = _train_transform(self.cfg.data.augment, dataset)
            views.append(SeededView(dataset, transform, self.cfg.seed + 1000 * index + offset,
                                    domain, depth_range, self.cfg.data.size))
        view = views[0] if len(views) == 1 else EpochConcat(views)
        sampler = ResumableSampler(len(view), self.info, shuffle=True,
                                   seed=self.cfg.seed + index)
        # Own generator: creating a loader iterator must not consume the global torch RNG,
        # or a resumed run (which creates its iterators at other steps) would diverge.
        generator = torch.Generator().manual_seed(self.cfg.seed + index)
        return DataLoader(view, batch_size=batch or self.local_batch, sampler=sampler,
                          drop_last=True,
                          num_workers=self.cfg.data.num_workers, collate_fn=collate,
                          generator=generator)

    def _build_stream(self, datasets: list[Any]) -> BatchStream:
        if self.stage == 'metric_nk':
            groups: dict[str, list[Any]] = {'indoor': [], 'outdoor': []}
            for dataset in datasets:
                domain = _dataset_info(dataset)[0]
                if domain not in groups:
                    raise ConfigError(f'metric_nk needs each training set to declare domain '
                                      f'indoor or outdoor; {dataset!r} declares {domain!r}')
                groups[domain].append(dataset)
            if not groups['indoor'] or not groups['outdoor']:
                raise ConfigError('metric_nk needs indoor and outdoor training sets, got '
                                  f'{ {k: len(v) for k, v in groups.items()} }')
            if self.cfg.data.nk_mixing == 'paired':
                if self.local_batch % 2:
                    raise ConfigError(f'nk_mixing=paired splits each batch between the two '
                                      f'domains; batch_size per process {self.local_batch} '
                                      'must be even')
                half = self.local_batch // 2
                loaders = [self._loader(groups['indoor'], 0, half),
                           self._loader(groups['outdoor'], 1, half)]
                return BatchStream(loaders, 'paired')
            loaders = [self._loader(groups['indoor'], 0), self._loader(groups['outdoor'], 1)]
            return BatchStream(loaders, 'round_robin')
        if self.stage == 'metric':
            return BatchStream([self._loader(datasets, 0)])
        loaders = [self._loader([d], i) for i, d in enumerate(datasets)]
        return BatchStream(loaders, 'weighted', self.cfg.data.train_weights, self.cfg.seed)

    def _val_loader(self, dataset: Any) -> DataLoader:
        domain, depth_range = _dataset_info(dataset)
        limit = self.cfg.data.max_val_samples
        if limit and len(dataset) > limit:
            dataset = torch.utils.data.Subset(dataset, range(limit))
        view = SeededView(dataset, None, 0, domain, depth_range, self.cfg.data.size)
        return DataLoader(view, batch_size=self.local_batch, shuffle=False,
                          num_workers=self.cfg.data.num_workers, collate_fn=collate,
                          generator=torch.Generator())

    # ---------------------------------------------------------------------------- run

    def run(self) -> Iterator[StepRecord]:
        """Train from the current step to the end, yielding one record per step."""
        if self.info.is_main:
            save_config(self.cfg, self.output / 'config.yaml')
        remaining = self.total_steps - self.step
        batches = islice(self.stream.iterate(self.step), max(remaining, 0))
        for record in train_steps(self.train_model, batches, self.loss_fn, self.optimizer,
                                  self.scheduler, self.cfg.optim.grad_clip, self.info,
                                  self.device, self.cfg.amp, self.step):
            self.step = record.step + 1
            self._log_step(record)
            last = self.step == self.total_steps
            if self.val_sets and (self.step % self.eval_interval == 0 or last):
                self.validate()
            interval = self.cfg.checkpoint_interval or self.eval_interval
            if self.step % interval == 0 or last:
                self.save()
            yield record
        if self.info.is_main:
            self._save_weights('last.pt', step=self.step)
        if self.writer is not None:
            self.writer.flush()

    def validate(self) -> dict[str, dict[str, float]]:
        """Validate on every validation set (rank 0; other ranks wait); returns the metrics."""
        results: dict[str, dict[str, float]] = {}
        if self.info.is_main:
            for index, dataset in enumerate(self.val_sets):
                name = _val_name(dataset, index)
                done = evaluate(self.model, self._val_loader(dataset), self.device,
                                self.stage, keep_samples=self.cfg.sample_images)
                results[name] = done.summary()
                self._log_validation(name, done)
            if results:
                first = next(iter(results.values()))[self.score_key]
                self.history.append({'step': self.step, **results})
                logger.info('step %d validation: %s', self.step, _format(results))
                write_text(self.output / 'history.json',
                                  strict_json(self.history, indent=1))
                if math.isfinite(first) and first < self.best_score:
                    self.best_score = first
                    self._save_weights('best.pt', step=self.step, **{self.score_key: first})
        barrier(self.info)
        return results

    # ---------------------------------------------------------------------------- state

    def _save_weights(self, name: str, **extra: Any) -> Path:
        """Weights in the original layout + the model's config YAML beside them, so that
        ``DepthEstimator.from_pretrained(path)`` and ``zoedepth eval --weights`` load them."""
        path = save_checkpoint(self.model, self.output / name, extra=extra)
        save_config(self.model.cfg, path.with_suffix('.yaml'))
        return path

    def save(self) -> Path | None:
        """Write weights and the training state (rank 0); returns the state file."""
        path = None
        if self.info.is_main:
            path = write_state(self.output, self.model, self.optimizer, self.scheduler,
                               self.step, to_dict(self.cfg), self.best_score, capture_rng())
        barrier(self.info)
        return path

    def _load(self, resume: str) -> None:
        state, weights = read_state(resume)
        load_checkpoint(self.model, weights)
        try:
            self.optimizer.load_state_dict(state['optimizer'])
            self.scheduler.load_state_dict(state['scheduler'])
        except (ValueError, KeyError) as err:
            raise CheckpointError(f'{resume}: optimiser state does not fit this model/config '
                                  f"({err}); resume with the run's own config") from None
        self.step = int(state['step'])
        self.best_score = float(state['best_score'])
        restore_rng(state['rng'])

    # ---------------------------------------------------------------------------- logging

    def _make_writer(self) -> Any:
        if not (self.cfg.tensorboard and self.info.is_main):
            return None
        require('train', 'tensorboard', 'TensorBoard logging (tensorboard: true in the recipe; '
                'false or --set tensorboard=false turns it off)')
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.output / 'tensorboard'), purge_step=self.step or None)

    def _log_step(self, record: StepRecord) -> None:
        if self.writer is None or record.step % max(1, self.cfg.log_interval):
            return
        self.writer.add_scalar('train/loss', record.loss, record.step)
        for name, value in record.parts.items():
            self.writer.add_scalar(f'train/{name}', value, record.step)
        self.writer.add_scalar('train/lr', record.lr, record.step)
        if math.isfinite(record.grad_norm):
            self.writer.add_scalar('train/grad_norm', record.grad_norm, record.step)

    def _log_validation(self, name: str, done: Validation) -> None:
        if self.writer is None:
            return
        for key, value in done.summary().items():
            if math.isfinite(value):
                self.writer.add_scalar(f'val_{name}/{key}', value, self.step)
        for index, sample in enumerate(done.samples):
            cap = float(sample['gt'].max().clamp_min(1e-3))
            pred = (sample['pred'] / cap).clamp(0, 1)[None]
            gt = (sample['gt'] / cap).clamp(0, 1)[None]
            self.writer.add_image(f'val_{name}/sample{index}_rgb', sample['image'], self.step)
            self.writer.add_image(f'val_{name}/sample{index}_pred_gt',
                                  torch.cat([pred, gt], dim=-1), self.step)


def _val_name(dataset: Any, index: int) -> str:
    """A validation set's key in the history: its root folder's name, else its own name."""
    root = getattr(dataset, 'root', None)
    if root is not None:
        return Path(str(root)).name or f'val{index}'
    return getattr(getattr(dataset, 'info', None), 'name', '') or f'val{index}'


def _check_depth_kinds(datasets: Sequence[Any], stage: Stage) -> None:
    """Disparity (relative-depth) datasets train the relative stage only."""
    if stage == 'relative':
        return
    relative = [getattr(d.info, 'name', '?') for d in datasets
                if getattr(getattr(d, 'info', None), 'depth_kind', 'metric') == 'disparity']
    if relative:
        raise ConfigError(f'{relative} hold relative depth (depth_kind: disparity): they can '
                          f'train the relative stage, not the {stage} stage')


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


SHOWN = ('a1', 'abs_rel', 'rmse', 'router_accuracy', 'aligned_a1', 'aligned_abs_rel')


def _format(results: dict[str, dict[str, float]]) -> str:
    parts = []
    for name, values in results.items():
        shown = ' '.join(f'{k}={values[k]:.4f}' for k in SHOWN if k in values)
        parts.append(f'{name}: {shown}')
    return '; '.join(parts)
