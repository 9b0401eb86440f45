"""Metric anchoring: fit the predicted depth to sparse metric samples (lidar, ToF, VIO).

A monocular metric model is off by a scale factor on unseen cameras and scenes. A few metric
measurements per frame fix it:

- :class:`SparseSamples` holds samples as normalised pixel positions + metric z-depth, built
  from a sparse depth image aligned with the camera (:meth:`SparseSamples.from_depth_image`)
  or from 3-D points in the camera's optical frame (:meth:`SparseSamples.from_points`), so one
  set of samples serves a depth map of any size.
- :func:`fit_alignment` fits one frame: a robust global ``scale`` (depth * s; the default) or
  ``scale_shift`` in inverse depth (1/d' = a/d + b, as MiDaS-style alignment). Log-ratio
  residuals (relative errors), a weighted-median start, Huber IRLS, then a least-squares refit
  on the inliers; samples are weighted by the predicted relative std when given.
- :class:`TemporalAligner` smooths the per-frame fits over time (exponential, time constant
  ``time_constant_s``, in log scale), holds the last value for ``hold_s`` when a frame has too
  few samples, and resets on a jump that persists for ``jump_frames`` frames.
- :class:`HeadAligners` keeps one such state per routed head (the heads are off by different
  scales): a frame never gets the other head's scale, and a head switch is no jump.
- :func:`apply_alignment` applies the result to depth and std (any array or tensor).

Everything here is ROS-free numpy (the fit runs on at most a few ten thousand values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera

AlignMode = Literal['scale', 'scale_shift']


@dataclass(frozen=True)
class AlignOptions:
    """How a frame is fitted and how fits are smoothed over time.

    Attributes:
        mode: 'scale' (depth * s) or 'scale_shift' (in inverse depth: 1/d' = a/d + b).
        min_samples: fewer valid samples (or inliers) than this: no fit for the frame.
        huber: Huber threshold of the IRLS, on the relative residual (log ratio).
        inlier_threshold: samples whose relative residual exceeds this after the robust fit
            are outliers (0.2 = 20 %).
        iterations: IRLS iterations.
        std_floor: relative std added in quadrature when weighting by the predicted std (so
            that a near-zero std cannot dominate).
        time_constant_s: smoothing time constant; 0 uses each frame's fit as it is.
        jump_ratio: a fit differing from the smoothed scale by more than this factor is a jump.
        jump_frames: consecutive jumping frames that reset the smoothing to the new fit.
        hold_s: how long the last value is applied when frames bring too few samples.
        max_samples: larger sample sets are thinned by an even stride before the fit (a
            global scale is settled by a few thousand samples; the cost grows with them).
    """

    mode: AlignMode = 'scale'
    min_samples: int = 10
    huber: float = 0.05
    inlier_threshold: float = 0.2
    iterations: int = 8
    std_floor: float = 0.05
    time_constant_s: float = 0.5
    jump_ratio: float = 1.5
    jump_frames: int = 3
    hold_s: float = 1.0
    max_samples: int = 4096

    def __post_init__(self) -> None:
        if self.mode not in ('scale', 'scale_shift'):
            raise InputError(f'alignment mode {self.mode!r}; expected scale or scale_shift')
        if self.min_samples < 2 or self.inlier_threshold <= 0 or self.huber <= 0:
            raise InputError('alignment needs min_samples >= 2, inlier_threshold > 0 and '
                             'huber > 0')
        if self.time_constant_s < 0 or self.hold_s < 0 or self.jump_ratio <= 1:
            raise InputError('alignment needs time_constant_s >= 0, hold_s >= 0 and '
                             'jump_ratio > 1')
        if self.jump_frames < 1 or self.iterations < 0:
            raise InputError('alignment needs jump_frames >= 1 and iterations >= 0')


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
            confirmed: the smoothed value), 'too few samples', 'no samples'.
        samples: valid samples fitted (at most max_samples); inliers: of those, within the
            threshold.
        residual: RMS relative residual of the inliers (log ratio; NaN without a fit).
        frame_scale: this frame's own fit before smoothing (NaN without one).
    """

    scale: float = 1.0
    shift: float = 0.0
    applied: bool = False
    status: str = 'no samples'
    samples: int = 0
    inliers: int = 0
    residual: float = math.nan
    frame_scale: float = math.nan

    @property
    def inverse_scale(self) -> float:
        """a of 1/d' = a/d + b."""
        return 1.0 / self.scale


IDENTITY = Alignment()


@dataclass(frozen=True)
class SparseSamples:
    """Metric samples at normalised image positions.

    Attributes:
        u, v: (N,) float32 positions as fractions of the image width / height, in [0, 1)
            (pixel column c of a W-wide image is u = (c + 0.5) / W).
        z: (N,) float32 metric z-depth in metres (> 0, finite).
    """

    u: np.ndarray
    v: np.ndarray
    z: np.ndarray

    def __len__(self) -> int:
        return int(self.z.size)

    @classmethod
    def from_depth_image(cls, depth_m: np.ndarray) -> SparseSamples:
        """Samples of a sparse depth image aligned with the camera (same field of view, any
        resolution): every finite pixel > 0 (NaN or 0 = no sample)."""
        if depth_m.ndim != 2:
            raise InputError(f'sparse depth must be (H, W), got {depth_m.shape}')
        height, width = depth_m.shape
        flat = depth_m.reshape(-1)
        index = np.flatnonzero((flat > 0) & (flat < np.inf))  # 2x faster than a 2-D nonzero
        rows, cols = np.divmod(index, width)
        return cls(((cols + 0.5) / width).astype(np.float32),
                   ((rows + 0.5) / height).astype(np.float32),
                   flat[index].astype(np.float32))

    @classmethod
    def from_points(cls, points: np.ndarray, camera: PinholeCamera) -> SparseSamples:
        """Samples of 3-D points (N, 3) in the camera's optical frame (x right, y down, z
        forward, metres), projected with ``camera``: those in front and inside the image."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        ahead = np.isfinite(points).all(axis=1) & (z > 1e-6)
        x, y, z = x[ahead], y[ahead], z[ahead]
        col = camera.fx * x / z + camera.cx + 0.5
        row = camera.fy * y / z + camera.cy + 0.5
        inside = (col >= 0) & (col < camera.width) & (row >= 0) & (row < camera.height)
        return cls((col[inside] / camera.width).astype(np.float32),
                   (row[inside] / camera.height).astype(np.float32),
                   z[inside].astype(np.float32))

    def thinned(self, limit: int) -> SparseSamples:
        """At most ``limit`` samples, taken by an even stride (self when already fewer)."""
        if len(self) <= limit:
            return self
        step = -(-len(self) // limit)
        return SparseSamples(self.u[::step], self.v[::step], self.z[::step])

    def pixels(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the samples in an H x W image (nearest pixel)."""
        rows = np.minimum((self.v * height).astype(np.int64), height - 1)
        cols = np.minimum((self.u * width).astype(np.int64), width - 1)
        return rows, cols


def values_at(image: Any, samples: SparseSamples) -> np.ndarray:
    """(N,) float64 values of an (H, W) array or tensor at the samples (one host copy)."""
    height, width = image.shape[-2:]
    rows, cols = samples.pixels(height, width)
    if isinstance(image, torch.Tensor):
        index = torch.from_numpy(rows * width + cols).to(image.device)
        return torch.take(image, index).double().cpu().numpy()
    return np.asarray(image)[rows, cols].astype(np.float64)  # only the samples converted


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


def _fit_scale(log_ratio: np.ndarray, weights: np.ndarray, options: AlignOptions
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
                 options: AlignOptions) -> tuple[float, float, np.ndarray] | None:
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
                  options: AlignOptions = AlignOptions()) -> Alignment:
    """One frame's correction of ``predicted`` depths towards metric ``target`` depths.

    Args:
        predicted: (N,) predicted depth at the samples (metres).
        target: (N,) metric sample depths (metres).
        std: (N,) predicted std at the samples; weights 1 / ((std/d)^2 + std_floor^2).
        options: mode, thresholds (see :class:`AlignOptions`).

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
    return Alignment(scale, shift, True, 'fit', count, kept, residual, scale)


class TemporalAligner:
    """Smooths per-frame fits over time (see the module docstring); one per camera stream."""

    def __init__(self, options: AlignOptions = AlignOptions()) -> None:
        self.options = options
        self.reset()

    def reset(self) -> None:
        """Forget the history (the next fit starts afresh)."""
        self._state: Alignment | None = None
        self._stamp_s = -math.inf
        self._fitted_s = -math.inf
        self._jumps = 0

    @property
    def current(self) -> Alignment | None:
        """The smoothed correction, or None before the first fit."""
        return self._state

    def update(self, fit: Alignment, stamp_s: float) -> Alignment:
        """Fold one frame's :func:`fit_alignment` result (stamped ``stamp_s`` seconds) in and
        return the correction to apply to that frame."""
        if stamp_s < self._stamp_s:  # time went backwards (a bag looped): start afresh
            self.reset()
        elapsed, self._stamp_s = stamp_s - self._stamp_s, stamp_s
        state = self._state
        if fit.status != 'fit':
            if state is not None and stamp_s - self._fitted_s <= self.options.hold_s:
                return replace(state, status='held', samples=fit.samples,
                               inliers=fit.inliers, residual=math.nan,
                               frame_scale=math.nan)
            return fit
        self._fitted_s = stamp_s
        if state is None:
            self._jumps = 0
            self._state = replace(fit, status='reset')
            return self._state
        if abs(math.log(fit.scale / state.scale)) > math.log(self.options.jump_ratio):
            self._jumps += 1
            if self._jumps < self.options.jump_frames:
                return replace(state, status='jump', samples=fit.samples,
                               inliers=fit.inliers, residual=fit.residual,
                               frame_scale=fit.scale)
            self._jumps = 0
            self._state = replace(fit, status='reset')
            return self._state
        self._jumps = 0
        tau = self.options.time_constant_s
        alpha = 1.0 if tau <= 0 else 1.0 - math.exp(-max(elapsed, 0.0) / tau)
        scale = math.exp(math.log(state.scale) + alpha * math.log(fit.scale / state.scale))
        shift = state.shift + alpha * (fit.shift - state.shift)
        self._state = replace(fit, scale=scale, shift=shift)
        return self._state


class HeadAligners:
    """One :class:`TemporalAligner` per routed head (domain) of one camera stream."""

    def __init__(self, options: AlignOptions = AlignOptions()) -> None:
        self.options, self.heads = options, dict[str, TemporalAligner]()

    def configure(self, options: AlignOptions) -> None:
        """New run-time options for every head (the smoothing keeps its state)."""
        self.options = options
        for aligner in self.heads.values():
            aligner.options = options

    def head(self, domain: str) -> TemporalAligner:
        """The state of the head that served a frame (created at its first frame)."""
        if domain not in self.heads:
            self.heads[domain] = TemporalAligner(self.options)
        return self.heads[domain]


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
    if isinstance(depth, torch.Tensor):
        aligned = torch.where(positive, 1.0 / inverse, torch.full_like(depth, math.nan))
    else:
        aligned = np.where(positive, 1.0 / np.where(positive, inverse, 1.0), np.nan)
    if std is None:
        return aligned, None
    return aligned, std * a * (aligned / depth) ** 2
