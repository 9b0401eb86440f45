"""Depth-estimation metrics and the evaluation rules of the ZoeDepth protocol, in one place.

Every evaluation (datasets, recorded bags, validation during training) goes through here:
:func:`image_metrics` / :class:`DepthMetrics` resize the prediction to the ground truth, mask
and crop, and accumulate. numpy (torch tensors are accepted and converted); the metrics are
the standard ones of the depth literature, with d = ground truth and p = prediction over the
valid pixels:

=========  =======================================================
a1/a2/a3   fraction with max(d/p, p/d) < 1.25, 1.25**2, 1.25**3
abs_rel    mean(|d - p| / d)
sq_rel     mean((d - p)**2 / d)
rmse       sqrt(mean((d - p)**2))
rmse_log   sqrt(mean((ln d - ln p)**2))
log10      mean(|log10 d - log10 p|)
silog      100 * sqrt(mean(e**2) - mean(e)**2), e = ln p - ln d
=========  =======================================================

Evaluation rules: the prediction is resized bilinearly (align_corners=True) to the
ground-truth size and clamped to [min_depth, max_depth] (+inf -> max, NaN -> min); valid pixels
satisfy min_depth < d < max_depth and lie inside the crop (NYU Eigen or KITTI Garg). Metrics are
computed per image and averaged over images (:class:`DepthMetrics`), never pooled over pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from zoedepth_ros.errors import InputError

METRIC_KEYS: tuple[str, ...] = (
    'a1', 'a2', 'a3', 'abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'silog')
"""Every metric, in report order."""
HIGHER_IS_BETTER: frozenset[str] = frozenset({'a1', 'a2', 'a3'})
MRI_KEYS: tuple[str, ...] = ('a1', 'abs_rel', 'rmse')
"""Metrics averaged by the paper's mRI_theta."""

Crop = Literal['eigen', 'garg', 'none']
CROPS: tuple[str, ...] = ('eigen', 'garg', 'none')

EIGEN_ROWS = (45, 471)
"""NYU Eigen crop rows [45, 471) of a 480x640 map; fixed indices on maps at least that big."""
EIGEN_COLS = (41, 601)
GARG_FRACTIONS = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
"""Garg crop (top, bottom, left, right) as fractions of the map size, floored."""


def _to_numpy(array: Any) -> np.ndarray:
    if hasattr(array, 'detach'):
        array = array.detach().float().cpu().numpy()
    return np.asarray(array, dtype=np.float64)


def _as_map(array: Any, name: str) -> np.ndarray:
    """A (H, W) float64 map from (H, W), (1, H, W) or (1, 1, H, W) input."""
    values = _to_numpy(array)
    while values.ndim > 2 and values.shape[0] == 1:
        values = values[0]
    if values.ndim != 2:
        raise InputError(f'{name} must be one (H, W) depth map, got shape {values.shape}')
    return values


def crop_mask(height: int, width: int, crop: Crop) -> np.ndarray:
    """Boolean (H, W) mask of the evaluation crop.

    Args:
        height: map height in pixels.
        width: map width in pixels.
        crop: ``'eigen'`` (fixed pixel indices sized for 480x640, applied as-is to any map
            of at least 471x601 pixels, as the original evaluation does for every indoor set;
            smaller maps get the same window scaled to their size), ``'garg'`` (fractions of
            the size, floored) or ``'none'``.
    """
    mask = np.zeros((height, width), dtype=bool)
    if crop == 'none':
        mask[:] = True
    elif crop == 'eigen':
        rows, cols = EIGEN_ROWS, EIGEN_COLS
        if height < rows[1] or width < cols[1]:
            rows = (round(rows[0] * height / 480), round(rows[1] * height / 480))
            cols = (round(cols[0] * width / 640), round(cols[1] * width / 640))
        mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    elif crop == 'garg':
        top, bottom, left, right = GARG_FRACTIONS
        mask[int(top * height):int(bottom * height), int(left * width):int(right * width)] = True
    else:
        raise InputError(f'unknown crop {crop!r}; expected one of {list(CROPS)}')
    return mask


def resize_prediction(pred: Any, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) prediction resized bilinearly (align_corners=True) to ``shape``, as float32."""
    values = _as_map(pred, 'prediction').astype(np.float32)
    if values.shape == tuple(shape):
        return values
    tensor = torch.from_numpy(np.ascontiguousarray(values))[None, None]
    return F.interpolate(tensor, size=tuple(shape), mode='bilinear',
                         align_corners=True)[0, 0].numpy()


def clamp_prediction(pred: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Clamp to [min_depth, max_depth]; +inf becomes max_depth and NaN becomes min_depth."""
    out = np.array(pred, dtype=np.float64, copy=True)
    out[np.isnan(out)] = min_depth
    return np.clip(out, min_depth, max_depth)


def valid_mask(gt: np.ndarray, min_depth: float, max_depth: float,
               crop: Crop = 'none') -> np.ndarray:
    """Pixels that count: min_depth < gt < max_depth (NaN excluded), inside the crop."""
    gt = np.asarray(gt, dtype=np.float64)
    with np.errstate(invalid='ignore'):
        mask = (gt > min_depth) & (gt < max_depth)
    return mask & crop_mask(gt.shape[0], gt.shape[1], crop)


def compute_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """All metrics over matching 1-D arrays of valid, positive depths (metres).

    Args:
        gt: (N,) ground-truth depths, all > 0.
        pred: (N,) predicted depths, all > 0.

    Returns:
        Mapping from each key of :data:`METRIC_KEYS` to its value.
    """
    gt = np.asarray(gt, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if gt.shape != pred.shape or gt.size == 0:
        raise InputError(f'need two equally sized non-empty arrays, got {gt.shape} and '
                         f'{pred.shape}')
    ratio = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    log_err = np.log(pred) - np.log(gt)
    return {
        'a1': float(np.mean(ratio < 1.25)),
        'a2': float(np.mean(ratio < 1.25 ** 2)),
        'a3': float(np.mean(ratio < 1.25 ** 3)),
        'abs_rel': float(np.mean(np.abs(diff) / gt)),
        'sq_rel': float(np.mean(diff ** 2 / gt)),
        'rmse': float(np.sqrt(np.mean(diff ** 2))),
        'rmse_log': float(np.sqrt(np.mean(log_err ** 2))),
        'log10': float(np.mean(np.abs(np.log10(gt) - np.log10(pred)))),
        'silog': float(100.0 * np.sqrt(max(np.mean(log_err ** 2) - np.mean(log_err) ** 2,
                                           0.0))),
    }


def valid_pairs(pred: Any, gt: Any, min_depth: float, max_depth: float,
                crop: Crop = 'none') -> tuple[np.ndarray, np.ndarray] | None:
    """The protocol's (ground truth, prediction) values over the valid pixels of one image.

    Args:
        pred: (h, w) predicted depth in metres, any size (resized to the ground truth).
        gt: (H, W) ground-truth depth in metres; values outside (min, max) or NaN are invalid.
        min_depth: lower evaluation bound in metres.
        max_depth: upper evaluation bound in metres.
        crop: evaluation crop, see :func:`crop_mask`.

    Returns:
        Matching 1-D float64 arrays (prediction clamped), or None without a valid pixel.
    """
    gt_map = _as_map(gt, 'ground truth')
    mask = valid_mask(gt_map, min_depth, max_depth, crop)
    if not mask.any():
        return None
    pred_map = resize_prediction(pred, gt_map.shape)
    return gt_map[mask], clamp_prediction(pred_map[mask], min_depth, max_depth)


def image_metrics(pred: Any, gt: Any, min_depth: float, max_depth: float,
                  crop: Crop = 'none') -> dict[str, float] | None:
    """Metrics of one image under the evaluation rules (resize, clamp, range mask, crop);
    None when the image has no valid pixel. Arguments as :func:`valid_pairs`."""
    pairs = valid_pairs(pred, gt, min_depth, max_depth, crop)
    return None if pairs is None else compute_errors(*pairs)


class DepthMetrics:
    """Accumulates per-image metrics and averages them over images.

    Args:
        min_depth: lower evaluation bound in metres.
        max_depth: upper evaluation bound in metres.
        crop: evaluation crop, see :func:`crop_mask`.
    """

    def __init__(self, min_depth: float = 1e-3, max_depth: float = 10.0,
                 crop: Crop = 'none') -> None:
        if not 0 <= min_depth < max_depth:
            raise InputError(f'need 0 <= min_depth < max_depth, got {min_depth}, {max_depth}')
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.crop = crop
        self._sums = dict.fromkeys(METRIC_KEYS, 0.0)
        self.count = 0
        self.skipped = 0
        """Images without any valid pixel (not counted in the averages)."""

    def update(self, pred: Any, gt: Any) -> dict[str, float] | None:
        """Add one image; returns its metrics (None when it had no valid pixel)."""
        values = image_metrics(pred, gt, self.min_depth, self.max_depth, self.crop)
        if values is None:
            self.skipped += 1
            return None
        self.add(values)
        return values

    def add(self, values: Mapping[str, float]) -> None:
        """Add one image's precomputed metrics."""
        for key in METRIC_KEYS:
            self._sums[key] += float(values[key])
        self.count += 1

    def compute(self) -> dict[str, float]:
        """Per-image averages; NaN for every key when no image was valid."""
        if self.count == 0:
            return dict.fromkeys(METRIC_KEYS, math.nan)
        return {key: self._sums[key] / self.count for key in METRIC_KEYS}


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1, tied values sharing their average rank (as Spearman's rho needs)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + ends - 1) / 2.0)[inverse.ravel()]


def rank_correlation(a: np.ndarray, b: np.ndarray, max_values: int = 50_000) -> float:
    """Spearman's rank correlation of two equally long 1-D arrays, ties sharing their average
    rank (NaN for fewer than 3 values or a constant array). Long inputs are thinned to
    ``max_values`` by an even stride."""
    a, b = np.ravel(a), np.ravel(b)
    if a.size != b.size:
        raise InputError(f'need two equally long arrays, got {a.size} and {b.size}')
    if a.size > max_values:
        step = -(-a.size // max_values)
        a, b = a[::step], b[::step]
    if a.size < 3:
        return math.nan
    ranks = [_average_ranks(a), _average_ranks(b)]
    if ranks[0].std() == 0 or ranks[1].std() == 0:
        return math.nan
    return float(np.corrcoef(ranks[0], ranks[1])[0, 1])


CONSTANT_STD_RTOL = 1e-5
"""A std map whose range is at most this share of its largest value counts as constant."""


def std_error_correlation(pred: Any, std: Any, gt: Any, min_depth: float, max_depth: float,
                          crop: Crop = 'none') -> float:
    """Rank correlation of the predicted std with the absolute error over the valid pixels
    of one image (both resized to the ground truth): does the uncertainty point at errors?

    NaN when the std map is constant: its range within ``CONSTANT_STD_RTOL`` of its largest
    value (resizing a constant map leaves float rounding, whose ranks would otherwise give a
    noise correlation)."""
    gt_map = _as_map(gt, 'ground truth')
    mask = valid_mask(gt_map, min_depth, max_depth, crop)
    pred_values = clamp_prediction(resize_prediction(pred, gt_map.shape)[mask], min_depth,
                                   max_depth)
    spread = resize_prediction(std, gt_map.shape)[mask]
    if spread.size == 0 or np.ptp(spread) <= CONSTANT_STD_RTOL * float(np.abs(spread).max()):
        return math.nan
    return rank_correlation(spread, np.abs(pred_values - gt_map[mask]))


def relative_improvement(target: float, reference: float, key: str) -> float:
    """(r - t) / r for lower-is-better metrics, (t - r) / r for higher-is-better ones."""
    if reference == 0:
        raise InputError(f'reference value of {key!r} is 0; relative improvement is undefined')
    if key in HIGHER_IS_BETTER:
        return (target - reference) / reference
    return (reference - target) / reference


def mri_theta(target: Mapping[str, float], reference: Mapping[str, float],
              keys: Sequence[str] = MRI_KEYS) -> float:
    """Mean relative improvement of ``target`` over ``reference`` on one dataset.

    Args:
        target: metrics of the evaluated model.
        reference: metrics of the baseline (the paper uses NeWCRFs).
        keys: metrics to average; the paper's mRI_theta uses delta1, REL and RMSE.

    Returns:
        The mean relative improvement as a fraction (0.16 = 16 %).
    """
    missing = [k for k in keys if k not in target or k not in reference]
    if missing:
        raise InputError(f'mRI needs {list(keys)} in both results; missing {missing}')
    return float(np.mean([relative_improvement(target[k], reference[k], k) for k in keys]))
