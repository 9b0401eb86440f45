"""Fit one frame's predicted depth to its sparse metric samples, and apply the result.

:func:`fit_alignment` fits a robust global ``scale`` (depth * s; the default) or
``scale_shift`` in inverse depth (1/d' = a/d + b, as MiDaS-style alignment): log-ratio
residuals (relative errors), a weighted-median start, Huber IRLS, then a least-squares refit on
the inliers; samples are weighted by the predicted relative std when given.
:func:`apply_alignment` applies an :class:`Alignment` to depth and std (arrays or tensors).
ROS-free numpy: the fit runs on at most a few ten thousand values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from zoedepth_ros.anchoring.options import AnchorOptions
from zoedepth_ros.errors import InputError


@dataclass(frozen=True)
class Alignment:
    """A correction and how it was obtained.

    Attributes:
        scale: depth multiplier ('scale' mode); in 'scale_shift' mode 1/a, the depth scale
            where the shift is negligible.
        shift: inverse-depth shift b (1/m) in 'scale_shift' mode, else 0.
        applied: whether the correction changes the depth (False: identity).
        status: 'fit' (this frame's samples, smoothed), 'reset' (smoothing restarted),
            'held' (too few samples: the last value, within hold_s), 'jump' (a jump not yet
            confirmed: the smoothed value), 'too few samples', 'low coverage' (the samples
            span too little of the frame's depths), 'no samples'.
        samples: valid samples fitted (at most max_samples); inliers: of those, within the
            threshold.
        residual: RMS relative residual of the inliers (log ratio; NaN without a fit).
        frame_scale: this frame's own fit before smoothing (NaN without one).
        coverage: share of the frame's valid pixels whose predicted depth lies within the
            span of the samples' predicted depths (NaN when not measured).
    """

    scale: float = 1.0
    shift: float = 0.0
    applied: bool = False
    status: str = 'no samples'
    samples: int = 0
    inliers: int = 0
    residual: float = math.nan
    frame_scale: float = math.nan
    coverage: float = math.nan

    @property
    def inverse_scale(self) -> float:
        """a of 1/d' = a/d + b."""
        return 1.0 / self.scale


IDENTITY = Alignment()


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order[np.searchsorted(cumulative, 0.5 * cumulative[-1])]])


def _huber(residual: np.ndarray, threshold: float, out: np.ndarray | None = None
           ) -> np.ndarray:
    """Huber IRLS weights: 1 where |r| <= threshold, else threshold / max(|r|, 1e-12); NaN
    for NaN. From 1e-12 on that equals threshold / max(|r|, threshold) bit for bit (t / t is
    1), two passes fewer, written into ``out`` when given (which may be ``residual``)."""
    size = np.abs(residual, out=out)
    if threshold < 1e-12:
        return np.where(size <= threshold, 1.0, threshold / np.maximum(size, 1e-12))
    return np.divide(threshold, np.maximum(size, threshold, out=size), out=size)


def _fit_scale(log_ratio: np.ndarray, weights: np.ndarray, options: AnchorOptions
               ) -> tuple[float, np.ndarray]:
    """Robust log-scale m of log(z / d): weighted median, Huber IRLS, inlier least squares."""
    m = _weighted_median(log_ratio, weights)
    w, product = np.empty_like(log_ratio), np.empty_like(log_ratio)  # reused by every pass
    for _ in range(options.iterations):
        np.multiply(weights, _huber(np.subtract(log_ratio, m, out=w), options.huber, w), out=w)
        m = float(np.sum(np.multiply(w, log_ratio, out=product)) / np.sum(w))
    inliers = np.abs(log_ratio - m) <= options.inlier_threshold
    if inliers.any():
        m = float(np.sum(weights[inliers] * log_ratio[inliers]) / np.sum(weights[inliers]))
        inliers = np.abs(log_ratio - m) <= options.inlier_threshold
    return m, inliers


def _fit_inverse(x: np.ndarray, y: np.ndarray, weights: np.ndarray, a: float,
                 options: AnchorOptions) -> tuple[float, float, np.ndarray] | None:
    """Robust a, b of y = a x + b (inverse depths), residuals relative to y, from b = 0."""
    b, squared = 0.0, y * y

    def solve(w: np.ndarray) -> tuple[float, float] | None:
        wx = w * x  # w * x * x is (w * x) * x: the same products, computed once
        sw, sx, sy = w.sum(), wx.sum(), (w * y).sum()
        sxx, sxy = (wx * x).sum(), (wx * y).sum()
        det = sw * sxx - sx * sx
        if det <= 1e-12 * max(sw * sxx, 1e-30):
            return None  # no spread in the predicted depths: the shift is not observable
        return (sw * sxy - sx * sy) / det, (sxx * sy - sx * sxy) / det

    for _ in range(options.iterations):
        relative = (a * x + b - y) / y
        solved = solve(weights * _huber(relative, options.huber, relative) / squared)
        if solved is None:
            return None
        a, b = solved
    inliers = np.abs((a * x + b - y) / y) <= options.inlier_threshold
    if inliers.sum() >= 2:
        solved = solve(np.where(inliers, weights / squared, 0.0))
        if solved is None:
            return None
        a, b = solved
        inliers = np.abs((a * x + b - y) / y) <= options.inlier_threshold
    return a, b, inliers


def fit_alignment(predicted: np.ndarray, target: np.ndarray, std: np.ndarray | None = None,
                  options: AnchorOptions = AnchorOptions()) -> Alignment:
    """One frame's correction of ``predicted`` depths towards metric ``target`` depths.

    Args:
        predicted: (N,) predicted depth at the samples (metres).
        target: (N,) metric sample depths (metres).
        std: (N,) predicted std at the samples; weights 1 / ((std/d)^2 + std_floor^2).
        options: mode, thresholds (see :class:`AnchorOptions`).

    Returns:
        The fit ('fit' status, applied) or the identity with status 'too few samples' /
        'no samples'. Pairs with a non-positive or non-finite value are ignored.
    """
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    target = np.asarray(target, dtype=np.float64).ravel()
    if predicted.shape != target.shape:
        raise InputError(f'{predicted.size} predictions for {target.size} samples')
    valid = np.isfinite(predicted) & np.isfinite(target) & (predicted > 0) & (target > 0)
    weights = np.ones(predicted.size)
    if std is not None:
        relative = np.asarray(std, dtype=np.float64).ravel() / np.maximum(predicted, 1e-12)
        valid &= np.isfinite(relative)
        weights = 1.0 / (np.square(relative) + options.std_floor ** 2)
    index = np.flatnonzero(valid)
    if index.size > options.max_samples:
        index = index[::-(-index.size // options.max_samples)]
    count = int(index.size)
    if count == 0:
        return IDENTITY
    if count < options.min_samples:
        return replace(IDENTITY, status='too few samples', samples=count)
    d, z, w = predicted, target, weights  # every pair is used: no gather
    if count < predicted.size:
        d, z, w = predicted[index], target[index], weights[index]
    log_ratio = np.log(z) - np.log(d)
    m, inliers = _fit_scale(log_ratio, w, options)
    scale, shift = math.exp(m), 0.0
    relative = log_ratio - m
    if options.mode == 'scale_shift':
        fitted = _fit_inverse(1.0 / d, 1.0 / z, w, 1.0 / scale, options)
        if fitted is not None and fitted[0] > 0:
            a, shift, inliers = fitted
            scale = 1.0 / a
            relative = np.log(z) + np.log(a / d + shift, where=a / d + shift > 0,
                                          out=np.full(d.shape, np.inf))
    kept = int(inliers.sum())
    if kept < options.min_samples:
        return replace(IDENTITY, status='too few samples', samples=count, inliers=kept)
    residual = float(np.sqrt(np.mean(np.square(relative[inliers]))))
    applied = scale
    if options.mode == 'scale' and options.evidence_weighting:
        applied = math.exp(evidence_weight(m, options.evidence_sigmas * residual) * m)
    return Alignment(applied, shift, True, 'fit', count, kept, residual, scale)


def evidence_weight(log_scale: float, residual: float) -> float:
    """How much of a fitted log scale to apply: offset^2 / (offset^2 + residual^2), where
    ``residual`` is the samples' residual spread times ``evidence_sigmas`` (half the offset
    is applied when it is that many spreads).

    The samples are not a random subset of the pixels (lidar rings, a ToF's near range), and
    the residual spread is structure a global scale cannot fix; an offset small against that
    spread is as likely the samples' own bias as the model's scale, so it is shrunk towards 1,
    while an offset well above it is applied in full (noise-free samples of a scaled
    prediction: the exact scale)."""
    offset = log_scale * log_scale
    spread = residual * residual
    return 1.0 if offset + spread <= 0.0 else offset / (offset + spread)


def apply_alignment(depth: Any, std: Any, alignment: Alignment) -> tuple[Any, Any]:
    """Aligned (depth, std): arrays or tensors of any shape (std may be None).

    'scale': depth * s, std * s. 'scale_shift': d' = 1 / (a/d + b), NaN where a/d + b <= 0;
    std' = std * a d'^2 / d^2 (first order).
    """
    if not alignment.applied:
        return depth, std
    if alignment.shift == 0.0:
        return depth * alignment.scale, None if std is None else std * alignment.scale
    a, b = alignment.inverse_scale, alignment.shift
    inverse = a / depth + b
    positive = inverse > 0
    aligned: torch.Tensor | np.ndarray
    if isinstance(depth, torch.Tensor):
        aligned = torch.where(positive, 1.0 / inverse, torch.full_like(depth, math.nan))
    else:
        aligned = np.where(positive, 1.0 / np.where(positive, inverse, 1.0), np.nan)
    if std is None:
        return aligned, None
    return aligned, std * a * (aligned / depth) ** 2
