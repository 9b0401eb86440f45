"""One optimiser step, an epoch over an iterable of batches, and validation.

Core functions take iterables and return or yield plain records; they never draw progress bars
(the CLI does). Batches are dicts as described in :mod:`zoedepth_ros.training.batches`.
"""

from __future__ import annotations

import contextlib
import math
import operator
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial, reduce
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from zoedepth_ros.metrics import Crop, DepthMetrics, resize_prediction
from zoedepth_ros.model.router import DOMAINS
from zoedepth_ros.training.config import LossConfig, Stage
from zoedepth_ros.training.distributed import DistInfo, all_reduce_sum, unwrap
from zoedepth_ros.training.losses import (
    LossResult,
    least_squares_scale_shift,
    router_loss,
    silog_loss,
    ssi_least_squares_loss,
    ssi_trimmed_loss,
    std_nll_loss,
)


@dataclass(frozen=True)
class StepRecord:
    """What one optimiser step did (losses averaged over processes)."""

    step: int
    loss: float
    parts: dict[str, float]
    skipped: bool
    """No process had a valid pixel; the optimiser did not step."""
    lr: float
    grad_norm: float
    source: int = 0


class StageLoss:
    """Forward pass and loss of one training stage.

    ``relative``: SSI loss on disparity (1 / depth over valid pixels) against the model's
    relative output. ``metric``: SILog on metric depth. ``metric_nk``: SILog + router_weight x
    cross-entropy of the domain logits; with ``route_by_label`` the head is chosen by the
    (single-domain) batch's label instead of the router.
    """

    def __init__(self, stage: Stage, cfg: LossConfig, route_by_label: bool = False) -> None:
        self.stage = stage
        self.cfg = cfg
        self.route_by_label = route_by_label

    def _domain(self, batch: dict[str, torch.Tensor]) -> str | None:
        if self.stage != 'metric_nk' or not self.route_by_label:
            return None
        labels = batch['domain']
        if labels.numel() == 0 or int(labels.min()) < 0 or int(labels.min()) != int(labels.max()):
            return None
        return DOMAINS[int(labels[0])]

    def __call__(self, model: nn.Module,
                 batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, LossResult]]:
        output = model(batch['image'], domain=self._domain(batch))
        if self.stage == 'relative':
            disparity = target_disparity(batch)
            ssi = ssi_trimmed_loss if self.cfg.ssi == 'trimmed' else ssi_least_squares_loss
            kwargs = ({'trim': self.cfg.ssi_trim, 'gradient_weight': self.cfg.gradient_weight,
                       'scales': self.cfg.gradient_scales} if self.cfg.ssi == 'trimmed' else {})
            depth = ssi(output.relative_depth, disparity, batch['mask'], **kwargs)
            return depth.value, {'ssi': depth}
        depth = silog_loss(output.metric_depth, batch['depth'], batch['mask'],
                           self.cfg.silog_beta)
        parts = {'silog': depth}
        total = depth.value
        if self.cfg.std_weight > 0 and output.depth_std is not None:
            spread = std_nll_loss(output.metric_depth, output.depth_std, batch['depth'],
                                  batch['mask'])
            parts['std_nll'] = spread
            total = total + self.cfg.std_weight * spread.value
        if self.stage == 'metric_nk':
            router = router_loss(output.domain_logits, batch['domain'])
            parts['router'] = router
            total = total + self.cfg.router_weight * router.value
        return total, parts


def autocast_context(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA when ``amp``; a no-op elsewhere (AMP is CUDA-only here)."""
    if amp and device.type == 'cuda':
        return torch.autocast('cuda', dtype=torch.bfloat16)
    return contextlib.nullcontext()


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Recompute the backbone's forward in the backward pass instead of storing activations.

    The encoder's own forward loops over its blocks inline, so the whole encoder (trunk and
    readouts) is checkpointed as one segment; its parameters and state-dict keys are unchanged.
    """
    encoder = cast(nn.Module, unwrap(model).encoder)
    if getattr(encoder, '_checkpointed', False):
        return
    inner = encoder.forward
    encoder.forward = partial(checkpoint, inner, use_reentrant=False)
    # torch types Module.__setattr__ values as Tensor | Module; a plain attribute is fine
    encoder._checkpointed = True  # type: ignore[assignment]


def train_step(model: nn.Module, batch: dict[str, torch.Tensor], loss_fn: StageLoss,
               optimizer: torch.optim.Optimizer, scheduler: Any, grad_clip: float,
               info: DistInfo, amp_context: Callable[[], Any] = contextlib.nullcontext,
               step: int = 0, source: int = 0) -> StepRecord:
    """Forward, backward, clip, optimiser and scheduler step for one (per-process) batch.

    When no process had a valid pixel the optimiser step is skipped (the original would
    produce NaN); the scheduler still advances so the schedule stays tied to the step count.
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total, parts = _forward_backward(model, batch, loss_fn, amp_context)
    depth_skipped = next(iter(parts.values())).skipped
    sums = all_reduce_sum([float(total), float(depth_skipped), 1.0]
                          + [float(p.value.detach()) for p in parts.values()], info)
    processes = sums[2]
    skipped = sums[1] >= processes
    params = [p for group in optimizer.param_groups for p in group['params']]
    grad_norm = math.nan
    if not skipped:
        limit = grad_clip if grad_clip > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, limit))
        optimizer.step()
    lr = max(group['lr'] for group in optimizer.param_groups)
    with warnings.catch_warnings():  # a skipped first step triggers torch's order warning
        warnings.filterwarnings('ignore', message='Detected call of')
        scheduler.step()
    part_means = {name: value / processes for name, value in zip(parts, sums[3:], strict=True)}
    return StepRecord(step, sums[0] / processes, part_means, skipped, lr, grad_norm, source)


def _forward_backward(model: nn.Module, batch: Any, loss_fn: StageLoss,
                      amp_context: Callable[[], Any]
                      ) -> tuple[torch.Tensor, dict[str, LossResult]]:
    """Loss and backward of a batch, or of a list of batches (averaged, gradients accumulated;
    under DDP only the last backward synchronises)."""
    parts_list = batch if isinstance(batch, list) else [batch]
    results = []
    for index, part in enumerate(parts_list):
        last = index == len(parts_list) - 1
        no_sync = getattr(model, 'no_sync', None)  # DDP's
        sync = contextlib.nullcontext() if last or no_sync is None else no_sync()
        with sync:
            with amp_context():
                total, parts = loss_fn(model, part)
            (total / len(parts_list)).backward()
        results.append((total.detach(), parts))
    if len(results) == 1:
        return results[0]
    count = len(results)
    merged = {name: LossResult(_tensor_sum(r[1][name].value.detach() for r in results) / count,
                               all(r[1][name].skipped for r in results),
                               sum(r[1][name].count for r in results))
              for name in results[0][1]}
    return _tensor_sum(r[0] for r in results) / count, merged


def _tensor_sum(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """The sum of a non-empty iterable of tensors (``sum`` would be typed ``Tensor | int``)."""
    return reduce(operator.add, tensors)


def train_steps(model: nn.Module, batches: Iterable[tuple[int, dict[str, torch.Tensor]]],
                loss_fn: StageLoss, optimizer: torch.optim.Optimizer, scheduler: Any,
                grad_clip: float, info: DistInfo, device: torch.device, amp: bool = False,
                start_step: int = 0) -> Iterator[StepRecord]:
    """Run :func:`train_step` over (source, batch) pairs, yielding a record per step."""
    context = partial(autocast_context, device, amp)
    for offset, (source, batch) in enumerate(batches):
        batch = _to_device(batch, device)
        yield train_step(model, batch, loss_fn, optimizer, scheduler, grad_clip, info,
                         context, start_step + offset, source)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, list):
        return [_to_device(part, device) for part in batch]
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


ALIGNED_KEYS = ('aligned_abs_rel', 'aligned_a1')


@dataclass
class AlignedMetrics:
    """Relative-depth measures after per-image scale-and-shift alignment in disparity space.

    As MiDaS reports them: the prediction is aligned to the ground-truth disparity by least
    squares over the valid pixels, then ``aligned_abs_rel`` = mean |p - g| / g and
    ``aligned_a1`` = share of max(p/g, g/p) < 1.25, both on disparity, averaged over images.
    """

    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ALIGNED_KEYS, 0.0))
    count: int = 0

    def update(self, aligned: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
        valid = mask & (target > 0)
        if int(valid.sum()) == 0:
            return
        pred = aligned[valid].clamp_min(1e-6).double()
        gt = target[valid].double()
        ratio = torch.maximum(pred / gt, gt / pred)
        self.sums['aligned_abs_rel'] += float(((pred - gt).abs() / gt).mean())
        self.sums['aligned_a1'] += float((ratio < 1.25).double().mean())
        self.count += 1

    def compute(self) -> dict[str, float]:
        if not self.count:
            return dict.fromkeys(ALIGNED_KEYS, math.nan)
        return {key: value / self.count for key, value in self.sums.items()}


@dataclass
class Validation:
    """Validation of one dataset: depth metrics (or aligned relative measures for the
    relative stage), router accuracy and a few samples."""

    metrics: DepthMetrics | AlignedMetrics
    router_correct: int = 0
    router_total: int = 0
    samples: list[dict[str, torch.Tensor]] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        values = self.metrics.compute()
        if self.router_total:
            values['router_accuracy'] = self.router_correct / self.router_total
        return values


def target_disparity(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Ground truth as disparity: 1 / depth, or the values of disparity datasets (0 invalid)."""
    depth, mask = batch['depth'], batch['mask']
    inverse = torch.where(mask, 1.0 / depth.clamp_min(1e-8), torch.zeros_like(depth))
    if 'disparity' not in batch:
        return inverse
    given = batch['disparity'].view(-1, 1, 1, 1)
    return torch.where(given & mask, depth, inverse)


def align_disparity(relative: torch.Tensor, disparity: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) relative prediction aligned to ``disparity`` by per-image least squares."""
    batch = disparity.shape[0]
    scale, shift, _ = least_squares_scale_shift(relative.reshape(batch, -1),
                                                disparity.reshape(batch, -1),
                                                mask.reshape(batch, -1).float())
    return scale.view(-1, 1, 1, 1) * relative + shift.view(-1, 1, 1, 1)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]],
             device: torch.device | str = 'cpu', stage: Stage = 'metric',
             min_depth: float = 1e-3, max_depth: float | None = None, crop: Crop = 'none',
             keep_samples: int = 0) -> Validation:
    """Per-image measures of a model over batches (no flip; for monitoring during training).

    Metric stages: :class:`DepthMetrics` (resize to the ground truth, clamp, range, crop) and,
    for NK models with labelled samples, the router's accuracy. The relative stage:
    :class:`AlignedMetrics` on disparity (the metric heads and the router are not trained
    there, so neither is scored).
    """
    model = unwrap(model)
    model.eval()
    device = torch.device(device)
    result: Validation | None = None
    for batch in batches:
        batch = {key: value.to(device) for key, value in batch.items()}
        output = model(batch['image'])
        gt = torch.where(batch['mask'], batch['depth'], torch.zeros_like(batch['depth']))
        if stage == 'relative':
            result = result or Validation(AlignedMetrics())
            relative = F.interpolate(output.relative_depth.unsqueeze(1), size=gt.shape[-2:],
                                     mode='bilinear', align_corners=True)
            disparity = target_disparity(batch)
            aligned = align_disparity(relative, disparity, batch['mask'])
            assert isinstance(result.metrics, AlignedMetrics)  # the stage made it
            for index in range(gt.shape[0]):
                result.metrics.update(aligned[index, 0], disparity[index, 0],
                                      batch['mask'][index, 0])
            pred = 1.0 / aligned.clamp_min(1e-6)  # for the sample images only
        else:
            cap = max_depth or float(batch['max_depth'].max())
            result = result or Validation(DepthMetrics(min_depth, cap, crop))
            pred = output.metric_depth
            assert isinstance(result.metrics, DepthMetrics)  # the stage made it
            for index in range(gt.shape[0]):
                result.metrics.update(pred[index, 0], gt[index, 0])
            if output.domain_logits is not None:
                labels = batch['domain']
                known = labels >= 0
                guess = output.domain_logits.argmax(dim=1)
                result.router_correct += int((guess[known] == labels[known]).sum())
                result.router_total += int(known.sum())
        for index in range(gt.shape[0]):
            if len(result.samples) < keep_samples:
                shown = resize_prediction(pred[index, 0], (gt.shape[-2], gt.shape[-1]))
                result.samples.append({'image': batch['image'][index].cpu(),
                                       'pred': torch.from_numpy(shown),
                                       'gt': gt[index, 0].cpu()})
    fallback = AlignedMetrics() if stage == 'relative' else DepthMetrics(
        min_depth, max_depth or 80.0, crop)
    return result or Validation(fallback)
