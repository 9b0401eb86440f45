"""Training losses: SILog (metric), scale-and-shift-invariant (relative), router cross-entropy.

Every loss returns a :class:`LossResult`. When nothing is valid (an all-invalid mask, no image
whose alignment is solvable, no labelled sample) the value is a finite zero that still depends
on the prediction (so backward and DistributedDataParallel work unchanged) and ``skipped`` is
True, so the trainer can count and skip the batch. The original SILog returns NaN there
(upstream issue #54).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

SILOG_EPS = 1e-7
"""Added inside both logarithms of SILog, as the original."""


@dataclass(frozen=True)
class LossResult:
    """A loss value and whether the batch contributed nothing.

    Attributes:
        value: scalar tensor (finite; exactly zero when skipped).
        skipped: True when no element was valid.
        count: number of valid pixels (or samples) that entered the loss.
    """

    value: Tensor
    skipped: bool
    count: int


def _zero(*tensors: Tensor) -> LossResult:
    value = sum((t.sum() * 0.0 for t in tensors), torch.zeros((), device=tensors[0].device))
    return LossResult(value, True, 0)


def _match_size(pred: Tensor, target: Tensor) -> Tensor:
    """Bilinear (align_corners=True) upsampling of (B,1,h,w)/(B,h,w) ``pred`` to ``target``."""
    if pred.shape[-2:] == target.shape[-2:]:
        return pred
    squeeze = pred.ndim == 3
    out = F.interpolate(pred.unsqueeze(1) if squeeze else pred, size=target.shape[-2:],
                        mode='bilinear', align_corners=True)
    return out.squeeze(1) if squeeze else out


def silog_loss(pred: Tensor, target: Tensor, mask: Tensor, beta: float = 0.15) -> LossResult:
    """Scale-invariant log loss as the original implements it.

    Over the masked pixels of the whole batch, g = ln(pred + 1e-7) - ln(target + 1e-7) and
    loss = 10 * sqrt(Var(g) + beta * mean(g)**2) with the unbiased variance. Always fp32.

    Args:
        pred: (B, 1, h, w) metric depth in metres, upsampled to the target size first.
        target: (B, 1, H, W) ground-truth depth in metres.
        mask: (B, 1, H, W) or (B, H, W) bool, True where the target is valid.
        beta: weight of the squared mean (0.15; ~ lambda 0.85 in the usual form).
    """
    pred = _match_size(pred, target)
    mask = mask.reshape(target.shape).bool()
    count = int(mask.sum())
    if count < 2:  # the unbiased variance needs two pixels
        return _zero(pred)
    with torch.autocast(device_type=pred.device.type, enabled=False):
        log_diff = (torch.log(pred[mask].float() + SILOG_EPS)
                    - torch.log(target[mask].float() + SILOG_EPS))
        spread = torch.var(log_diff) + beta * log_diff.mean() ** 2
        value = 10.0 * torch.sqrt(spread)
    return LossResult(value, False, count)


def std_nll_loss(pred: Tensor, std: Tensor, target: Tensor, mask: Tensor,
                 floor: float = 0.01) -> LossResult:
    """Gaussian negative log-likelihood of the log-depth error under the predicted std: it
    teaches the bin distribution a spread that follows the error (SILog alone constrains only
    its mean, and the distribution may collapse to one bin or stay flat).

    With r = ln(target) - ln(pred) (not differentiated: the depth is SILog's) and the relative
    std s = max(std / pred, floor), loss = mean(ln s + r^2 / (2 s^2)) over the masked pixels.

    Args:
        pred, std: (B, 1, h, w) depth and its standard deviation in metres, upsampled to the
            target size first.
        target, mask: as for :func:`silog_loss`.
        floor: smallest relative std (keeps the loss bounded where a pixel is exact).
    """
    pred, std = _match_size(pred, target), _match_size(std, target)
    mask = mask.reshape(target.shape).bool()
    count = int(mask.sum())
    if count == 0:
        return _zero(pred, std)
    with torch.autocast(device_type=pred.device.type, enabled=False):
        depth = pred[mask].float()
        residual = (torch.log(target[mask].float() + SILOG_EPS)
                    - torch.log(depth + SILOG_EPS)).detach()
        relative = (std[mask].float() / depth.detach().clamp_min(SILOG_EPS)).clamp_min(floor)
        value = (torch.log(relative) + residual ** 2 / (2 * relative ** 2)).mean()
    return LossResult(value, False, count)


def _flat(pred: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(B, N) float32 views of prediction, target and mask."""
    batch = target.shape[0]
    pred = _match_size(pred.reshape(batch, *pred.shape[-2:]), target.reshape(batch,
                                                                             *target.shape[-2:]))
    return (pred.reshape(batch, -1).float(), target.reshape(batch, -1).float(),
            mask.reshape(batch, -1).float())


def least_squares_scale_shift(pred: Tensor, target: Tensor,
                              mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-image (s, t) minimising sum over masked pixels of (s * pred + t - target)**2.

    Args:
        pred, target, mask: (B, N) float tensors (mask 0/1).

    Returns:
        scale (B,), shift (B,), solvable (B,) bool (determinant of the normal equations > 0;
        scale and shift are 0 elsewhere).
    """
    a00 = (mask * pred * pred).sum(1)
    a01 = (mask * pred).sum(1)
    a11 = mask.sum(1)
    b0 = (mask * pred * target).sum(1)
    b1 = (mask * target).sum(1)
    det = a00 * a11 - a01 * a01
    solvable = det > 0
    safe = torch.where(solvable, det, torch.ones_like(det))
    scale = torch.where(solvable, (a11 * b0 - a01 * b1) / safe, torch.zeros_like(det))
    shift = torch.where(solvable, (-a01 * b0 + a00 * b1) / safe, torch.zeros_like(det))
    return scale, shift, solvable


def ssi_least_squares_loss(pred: Tensor, target: Tensor, mask: Tensor) -> LossResult:
    """Scale-and-shift-invariant L1 with least-squares alignment (the isl-org/ZoeDepth variant).

    Per image, solve (s, t) over masked pixels, then L1 between s * pred + t and the target over
    the masked pixels of the batch. Unlike the original, images whose normal equations are
    singular (determinant <= 0) are dropped instead of entering with s = t = 0.

    Args:
        pred: (B, h, w) or (B, 1, h, w) relative prediction (disparity-like), upsampled
            bilinear ac=True to the target size.
        target: (B, H, W) or (B, 1, H, W) disparity target.
        mask: same shape as target, True where valid.
    """
    pred_flat, target_flat, mask_flat = _flat(pred, target, mask)
    scale, shift, solvable = least_squares_scale_shift(pred_flat, target_flat, mask_flat)
    mask_flat = mask_flat * solvable[:, None].float()
    count = int(mask_flat.sum())
    if count == 0:
        return _zero(pred)
    aligned = scale[:, None] * pred_flat + shift[:, None]
    value = ((aligned - target_flat).abs() * mask_flat).sum() / count
    return LossResult(value, False, count)


def _median_mad_normalise(values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(values - median) / mean|values - median| per row over masked entries; (B, N), ok (B,)."""
    masked = torch.where(mask > 0, values, torch.full_like(values, float('nan')))
    median = torch.nanmedian(masked, dim=1).values.nan_to_num(0.0)
    centred = values - median[:, None]
    count = mask.sum(1).clamp_min(1.0)
    spread = (centred.abs() * mask).sum(1) / count
    ok = spread > 1e-8
    return centred / torch.where(ok, spread, torch.ones_like(spread))[:, None], ok


def gradient_matching_loss(residual: Tensor, mask: Tensor, scales: int = 4) -> Tensor:
    """Multi-scale gradient matching on an aligned residual (MiDaS).

    Args:
        residual: (B, H, W) aligned prediction minus aligned target.
        mask: (B, H, W) float 0/1.
        scales: number of scales; scale k keeps every 2**k-th pixel.

    Returns:
        Scalar: sum over scales of (sum of masked |dx| + |dy|) / (number of masked pixels).
    """
    total = residual.new_zeros(())
    for level in range(scales):
        step = 2 ** level
        res, msk = residual[:, ::step, ::step], mask[:, ::step, ::step]
        diff = res * msk
        grad_x = (diff[:, :, 1:] - diff[:, :, :-1]).abs() * msk[:, :, 1:] * msk[:, :, :-1]
        grad_y = (diff[:, 1:, :] - diff[:, :-1, :]).abs() * msk[:, 1:, :] * msk[:, :-1, :]
        pixels = msk.sum()
        if pixels > 0:
            total = total + (grad_x.sum() + grad_y.sum()) / pixels
    return total


def ssi_trimmed_loss(pred: Tensor, target: Tensor, mask: Tensor, trim: float = 0.2,
                     gradient_weight: float = 0.5, scales: int = 4) -> LossResult:
    """MiDaS loss: trimmed MAE after median/MAD alignment + multi-scale gradient matching.

    Prediction and target are each shifted by their median and scaled by their mean absolute
    deviation over the valid pixels of each image; per image the largest ``trim`` fraction of
    the absolute residuals is dropped and the rest summed and divided by 2M (M = valid pixels),
    averaged over images; plus ``gradient_weight`` times :func:`gradient_matching_loss`.

    Args:
        pred: (B, h, w) or (B, 1, h, w) relative prediction (disparity-like).
        target: (B, H, W) or (B, 1, H, W) disparity target.
        mask: same shape as target, True where valid.
        trim: fraction of the largest residuals left out per image.
        gradient_weight: weight of the gradient term.
        scales: scales of the gradient term.
    """
    height, width = target.shape[-2:]
    pred_flat, target_flat, mask_flat = _flat(pred, target, mask)
    pred_norm, pred_ok = _median_mad_normalise(pred_flat, mask_flat)
    target_norm, target_ok = _median_mad_normalise(target_flat, mask_flat)
    usable = pred_ok & target_ok & (mask_flat.sum(1) >= 2)
    mask_flat = mask_flat * usable[:, None].float()
    count = int(mask_flat.sum())
    if count == 0:
        return _zero(pred)
    residual = (pred_norm - target_norm) * mask_flat
    ordered = torch.where(mask_flat > 0, residual.abs(),
                          torch.full_like(residual, float('inf'))).sort(dim=1).values
    valid = mask_flat.sum(1)
    keep = torch.floor((1.0 - trim) * valid)
    rank = torch.arange(ordered.shape[1], device=ordered.device)[None, :]
    kept = torch.where(rank < keep[:, None], ordered, torch.zeros_like(ordered))
    per_image = kept.sum(1) / (2.0 * valid.clamp_min(1.0))
    value = per_image[usable].mean()
    if gradient_weight > 0:
        value = value + gradient_weight * gradient_matching_loss(
            residual.reshape(-1, height, width), mask_flat.reshape(-1, height, width), scales)
    return LossResult(value, False, count)


def router_loss(domain_logits: Tensor | None, labels: Tensor) -> LossResult:
    """Cross-entropy of the domain classifier; labels 0 = nyu/indoor, 1 = kitti/outdoor.

    Args:
        domain_logits: (B, 2) logits, or None for models without a router (skipped).
        labels: (B,) int64; negative labels are ignored.
    """
    if domain_logits is None:
        return LossResult(labels.new_zeros((), dtype=torch.float32), True, 0)
    labels = labels.to(domain_logits.device).long()
    known = labels >= 0
    count = int(known.sum())
    if count == 0:
        return _zero(domain_logits)
    value = F.cross_entropy(domain_logits[known].float(), labels[known])
    return LossResult(value, False, count)
