"""Smoothing of per-frame fits over a camera stream, one state per routed head.

:class:`TemporalAligner` smooths the per-frame fits over time (exponential, time constant
``time_constant_s``, in log scale), holds the last value for ``hold_s`` when a frame has too
few samples, and resets on a jump that persists for ``jump_frames`` frames.
:class:`HeadAligners` keeps one such state per routed head (the heads are off by different
scales): a frame never gets the other head's scale, and a head switch is no jump.
:func:`anchor_frame` is one frame's step: fit its samples, then smooth with its head's state.
:func:`select_head` is sparse-guided routing: given every head's depth, the head whose own fit
explains the samples better (a truncated quadratic of the residuals) serves the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from zoedepth_ros.anchoring.fit import IDENTITY, Alignment, fit_alignment
from zoedepth_ros.anchoring.options import AnchorOptions
from zoedepth_ros.anchoring.samples import SparseSamples, values_at

DEFAULT_OPTIONS = AnchorOptions()


class TemporalAligner:
    """Smooths per-frame fits over time (see the module docstring); one per camera stream."""

    def __init__(self, options: AnchorOptions = DEFAULT_OPTIONS) -> None:
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
                               frame_scale=fit.frame_scale)
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

    def __init__(self, options: AnchorOptions = DEFAULT_OPTIONS) -> None:
        self.options, self.heads = options, dict[str, TemporalAligner]()

    def configure(self, options: AnchorOptions) -> None:
        """New run-time options for every head (the smoothing keeps its state)."""
        self.options = options
        for aligner in self.heads.values():
            aligner.options = options

    def head(self, domain: str) -> TemporalAligner:
        """The state of the head that served a frame (created at its first frame)."""
        if domain not in self.heads:
            self.heads[domain] = TemporalAligner(self.options)
        return self.heads[domain]


@dataclass
class Anchor:
    """Metric anchoring of one frame: its sparse samples (None when none arrived in time),
    the stream's aligners (one smoothing state per routed head) and the frame's stamp in
    seconds."""

    aligners: HeadAligners
    samples: SparseSamples | None
    stamp_s: float


def frame_fit(depth: torch.Tensor, std: torch.Tensor | None, samples: SparseSamples | None,
              options: AnchorOptions) -> Alignment:
    """One frame's own fit to its samples (no smoothing); 'no samples' without any, 'low
    coverage' when the samples span the depths of less than ``min_coverage`` of the frame (a
    short-range sensor that sees only the near ground cannot vouch for the far pixels)."""
    if samples is None or not len(samples):
        return Alignment()
    samples = samples.thinned(options.max_samples)
    spread = None if std is None else values_at(std, samples)
    predicted = values_at(depth, samples)
    fit = fit_alignment(predicted, samples.z, spread, options)
    if fit.status != 'fit':
        return fit
    share = coverage(depth, predicted, options.inlier_threshold)
    if share < options.min_coverage:
        return replace(IDENTITY, status='low coverage', samples=fit.samples,
                       inliers=fit.inliers, frame_scale=fit.frame_scale, coverage=share)
    return replace(fit, coverage=share)


def coverage(depth: torch.Tensor, predicted: np.ndarray, margin: float) -> float:
    """Share of the finite, positive pixels of ``depth`` inside the span of the predicted
    depths at the samples (1st to 99th percentile, widened by the relative ``margin``)."""
    values = predicted[np.isfinite(predicted) & (predicted > 0)]
    if not values.size:
        return 0.0
    low, high = (float(v) for v in np.percentile(values, [1.0, 99.0]))
    low, high = low / (1.0 + margin), high * (1.0 + margin)
    valid = torch.isfinite(depth) & (depth > 0)
    inside = valid & (depth >= low) & (depth <= high)
    total = int(valid.sum())
    return int(inside.sum()) / total if total else 0.0


def anchor_frame(depth: torch.Tensor, std: torch.Tensor | None, anchor: Anchor,
                 domain: str, fit: Alignment | None = None) -> Alignment:
    """The correction of one frame: fit its samples (if any; ``fit`` when already computed),
    smooth over the frames of the same routed head (``domain``)."""
    if fit is None:
        fit = frame_fit(depth, std, anchor.samples, anchor.aligners.options)
    return anchor.aligners.head(domain).update(fit, anchor.stamp_s)


def fit_cost(fit: Alignment, options: AnchorOptions) -> float:
    """How badly a fit explains its samples: the mean truncated squared relative residual
    (inliers at their RMS residual, outliers at the inlier threshold); inf without a fit."""
    if fit.status != 'fit' or not fit.samples:
        return math.inf
    share = fit.inliers / fit.samples
    return share * fit.residual ** 2 + (1.0 - share) * options.inlier_threshold ** 2


def select_head(heads: dict[str, tuple[torch.Tensor, torch.Tensor | None]], anchor: Anchor,
                routed: str) -> tuple[str, Alignment | None]:
    """Sparse-guided routing: the head (domain) whose own fit explains the frame's samples
    clearly better (cost below ``selection_margin`` times the routed head's, with samples
    spanning the depths of at least ``min_coverage`` of the frame in the routed head's map),
    with that fit;
    the router's choice ``routed`` otherwise (without a fit when no head has one).

    Args:
        heads: domain -> (depth, std) of every head for this frame.
    """
    options = anchor.aligners.options
    fits = {domain: frame_fit(depth, std, anchor.samples, options)
            for domain, (depth, std) in heads.items()}
    costs = {domain: fit_cost(fit, options) for domain, fit in fits.items()}
    best = min(costs, key=lambda domain: (costs[domain], domain != routed))
    if not math.isfinite(costs[best]):
        return routed, None
    clear = costs[best] < options.selection_margin * costs.get(routed, math.inf)
    seen = fits.get(routed, fits[best]).coverage  # judged on the router's own depth map
    if best != routed and not (clear and seen >= options.min_coverage):
        best = routed  # not clearly better, or the samples see too little of the frame
    return best, fits[best]
