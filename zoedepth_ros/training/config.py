"""TrainConfig: one frozen dataclass per ``config/train/*.yaml`` recipe (two levels deep at most).

Defaults follow the original ZoeDepth metric fine-tuning recipe: AdamW with
weight decay 0.01, per-part learning-rate factors, OneCycleLR per step starting at the maximum
(div_factor 1), pct_start 0.7, cosine annealing to max/1e4, beta1 cycled 0.95 -> 0.85, global
gradient-norm clipping at 0.1, seed 43.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from zoedepth_ros.errors import ConfigError

Stage = Literal['relative', 'metric', 'metric_nk', 'distill']


@dataclass(frozen=True)
class DataConfig:
    """Where the samples come from (generic RGB-D folders, standard layouts)."""

    train_roots: tuple[str, ...] = ()
    """Training sets (``zoedepth_ros.data.datasets.open_dataset`` specs): a generic RGB-D
    folder ``ROOT``, ``NAME:ROOT[:SPLIT_FILE[:DEPTH_ROOT]]`` for nyu, kitti, diode_indoor,
    diode_outdoor, or ``bag:PATH,image=TOPIC,depth=TOPIC,...`` for a recorded RGB-D bag. For
    ``metric_nk`` each set's domain picks its side."""
    train_weights: tuple[float, ...] = ()
    """``relative`` stage: sampling weight per root (empty = equal weights)."""
    val_roots: tuple[str, ...] = ()
    train_split: str = 'train'
    """Split file stem (``ROOT/<split>.txt``); a root without split files uses every sample."""
    val_split: str = 'test'
    nk_mixing: Literal['alternate', 'paired'] = 'alternate'
    """``metric_nk``: alternate single-domain batches (the original), or give every step one
    half-size batch of each domain (losses averaged), which keeps the router from swinging
    towards the last domain seen when training from scratch."""
    augment: bool = True
    """Original augmentation: rotation +-1 deg, flip p=0.5, photometric jitter p=0.5."""
    num_workers: int = 0
    size: tuple[int, int] | None = None
    """(height, width) every sample is resized to before batching; None: the datasets must
    already share one size (recorded bags at camera resolution need it)."""
    max_val_samples: int = 0
    """Cap on validation images per root (0 = all)."""


INIT_KINDS = ('scratch', 'midas', 'relative', 'zoedepth')


@dataclass(frozen=True)
class ModelSection:
    """Which network to train and how to initialise it."""

    preset: str = 'zoedepth_tiny_nk'
    """A name of ``zoedepth_ros.model.PRESETS``, or a path to a model YAML (ModelConfig)."""
    overrides: tuple[str, ...] = ()
    """``key=value`` overrides applied to the model config (e.g. ``img_size=[128, 160]``)."""
    init: str = 'scratch'
    """``scratch``; ``midas:<path>`` (a MiDaS v3.1 BEiT or v2.1 small checkpoint, file or
    registry name such as ``midas_v21_small_256``: the core);
    ``relative:<path>`` (the core of a ZoeDepth checkpoint, e.g. a relative stage's
    ``best.pt``; its heads are dropped); ``zoedepth:<path>`` (the full model)."""
    batchnorm: Literal['frozen', 'train'] = 'frozen'
    """BatchNorm layers of a convolutional encoder (MiDaS small): ``frozen`` keeps their
    statistics (fine-tuning pretrained weights, as the original); ``train`` learns them
    (training from scratch)."""
    gradient_checkpointing: bool = False
    """Recompute backbone blocks in the backward pass (less memory, ~30 % slower)."""
    route_by_label: bool = False
    """``metric_nk``: train each head on its own domain's batches (the paper's "labeled" router
    variant) instead of the router's choice (the original training)."""
    reset_bin_probabilities: bool = False
    """After ``init``: re-initialise the last layer of every head's bin-probability MLP (weights
    ~N(0, 1e-3), bias 0), so each pixel starts from q = t = 0.5, a spread-out distribution
    over the bins. A model whose distribution collapsed onto one bin (softmax saturated, so no
    gradient reaches its spread) can then learn a spread with ``loss.std_weight``."""

    def __post_init__(self) -> None:
        kind, _, path = self.init.partition(':')
        if kind not in INIT_KINDS or (kind != 'scratch') != bool(path):
            raise ConfigError(f'model.init {self.init!r}: expected scratch, midas:<path>, '
                              'relative:<path> or zoedepth:<path>')


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with per-part learning rates; ``lr`` is the metric heads' (maximum) rate."""

    lr: float = 1.61e-4
    weight_decay: float = 0.01
    encoder_lr_factor: float = 0.1
    """BEiT trunk and reassemble (readout) layers."""
    pos_bias_lr_factor: float = 0.1
    """``relative_position_bias_table`` parameters."""
    decoder_lr_factor: float | None = None
    """DPT decoder; None = 1.0 for one head, 0.1 for two heads (NK), as the original."""
    router_lr_factor: float = 1.0
    """Domain router (NK); the original uses the heads' rate."""
    beta2: float = 0.999
    grad_clip: float = 0.1
    """Global gradient-norm clip (0 = off)."""


@dataclass(frozen=True)
class ScheduleConfig:
    """Training length and OneCycleLR shape (stepped once per optimiser step)."""

    epochs: int = 5
    steps: int = 0
    """Total optimiser steps; 0 = epochs x steps per epoch."""
    div_factor: float = 1.0
    pct_start: float = 0.7
    final_div_factor: float = 1e4
    anneal: Literal['cos', 'linear'] = 'cos'
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95

    def check(self, total_steps: int) -> None:
        """Raise ConfigError unless OneCycleLR can run ``total_steps`` steps with this shape:
        pct_start in (0, 1), and a warm-up that does not end exactly at step 0 (OneCycleLR
        divides by the length of each phase)."""
        if total_steps < 1:
            raise ConfigError(f'the schedule needs at least one step, got {total_steps}')
        if not 0.0 < self.pct_start < 1.0:
            raise ConfigError(f'schedule.pct_start must lie between 0 and 1, got '
                              f'{self.pct_start}')
        warm_up = self.pct_start * total_steps
        if math.isclose(warm_up, 1.0):
            raise ConfigError(
                f'schedule.pct_start {self.pct_start} of {total_steps} steps is a warm-up of '
                f'exactly one step, which the one-cycle schedule cannot shape: use at least '
                f'{math.floor(1.0 / self.pct_start) + 1} steps (schedule.steps) or another '
                'pct_start')


@dataclass(frozen=True)
class LossConfig:
    """Loss weights and variants."""

    silog_beta: float = 0.15
    router_weight: float = 100.0
    std_weight: float = 0.0
    """Metric stages: weight of the std's Gaussian NLL (``losses.std_nll_loss``); 0 = the
    original recipe (SILog only), where nothing trains the bin distribution's spread."""
    ssi: Literal['trimmed', 'least_squares'] = 'trimmed'
    """Relative stage: MiDaS trimmed MAE + gradient matching, or the least-squares variant."""
    ssi_trim: float = 0.2
    gradient_weight: float = 0.5
    gradient_scales: int = 4


@dataclass(frozen=True)
class DistillConfig:
    """Stage ``distill``: a teacher labels unlabeled frames, the student learns its depth."""

    teacher: str = ''
    """Teacher weights (a name such as ZoeD_M12_NK, or a checkpoint / .onnx file)."""
    teacher_config: str = ''
    """Model config of a teacher checkpoint that has none beside it."""
    inputs: tuple[str, ...] = ()
    """Unlabeled frames: image files, folders, globs, videos, ``bag:PATH[,image=TOPIC]``."""
    holdout: float = 0.1
    """Share of the labelled frames (in blocks of 10) kept for validation."""
    labels: str = ''
    """Where the labelled folders go; empty: OUTPUT/teacher_labels (reused when present)."""


@dataclass(frozen=True)
class TrainConfig:
    """A complete training run."""

    stage: Stage = 'metric'
    output_dir: str = 'runs/train'
    seed: int = 43
    batch_size: int = 16
    """Global batch size, divided across DDP processes."""
    device: Literal['auto', 'cpu', 'cuda'] = 'auto'
    amp: bool = False
    """bfloat16 autocast on CUDA (ignored on CPU); the losses always run in fp32."""
    eval_interval: int = 0
    """Optimiser steps between validations (0 = four times per epoch, as the original)."""
    log_interval: int = 10
    checkpoint_interval: int = 0
    """Steps between training-state checkpoints (0 = at every validation and at the end)."""
    sample_images: int = 2
    """Validation samples written to TensorBoard as images at each validation."""
    tensorboard: bool = True
    threads: int = 0
    """torch CPU threads per process (0 = leave torch's default)."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f'batch_size must be >= 1, got {self.batch_size}')
        if self.stage == 'distill' and not (self.distill.teacher and self.distill.inputs):
            raise ConfigError('stage distill needs distill.teacher and distill.inputs')
        weights = self.data.train_weights
        if weights and (len(weights) != len(self.data.train_roots) or min(weights) <= 0):
            raise ConfigError(f'data.train_weights {list(weights)} must hold one positive '
                              f'weight per train root ({len(self.data.train_roots)})')
        if self.schedule.epochs < 1 and self.schedule.steps < 1:
            raise ConfigError('set schedule.epochs or schedule.steps to a positive number')
        if self.schedule.steps > 0:  # known before any data is read
            self.schedule.check(self.schedule.steps)
