"""Smoothing of per-frame fits over a camera stream, one state per routed head.

:class:`TemporalAligner` smooths the per-frame fits over time (exponential, time constant
``time_constant_s``, in log scale), holds the last value for ``hold_s`` when a frame has too
few samples, and resets on a jump that persists for ``jump_frames`` frames.
:class:`HeadAligners` keeps one such state per routed head (the heads are off by different
scales): a frame never gets the other head's scale, and a head switch is no jump.
:func:`anchor_frame` is one frame's step: fit its samples, then smooth with its head's state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from zoedepth_ros.anchoring.fit import Alignment, AlignOptions, fit_alignment
from zoedepth_ros.anchoring.samples import SparseSamples, values_at

DEFAULT_OPTIONS = AlignOptions()


class TemporalAligner:
    """Smooths per-frame fits over time (see the module docstring); one per camera stream."""

    def __init__(self, options: AlignOptions = DEFAULT_OPTIONS) -> None:
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

    def __init__(self, options: AlignOptions = DEFAULT_OPTIONS) -> None:
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


@dataclass
class Anchor:
    """Metric anchoring of one frame: its sparse samples (None when none arrived in time),
    the stream's aligners (one smoothing state per routed head) and the frame's stamp in
    seconds."""

    aligners: HeadAligners
    samples: SparseSamples | None
    stamp_s: float


def anchor_frame(depth: torch.Tensor, std: torch.Tensor | None, anchor: Anchor,
                 domain: str) -> Alignment:
    """The correction of one frame: fit its samples (if any), smooth over the frames of the
    same routed head (``domain``)."""
    fit = Alignment()
    samples = anchor.samples
    options = anchor.aligners.options
    if samples is not None and len(samples):
        samples = samples.thinned(options.max_samples)
        spread = None if std is None else values_at(std, samples)
        fit = fit_alignment(values_at(depth, samples), samples.z, spread, options)
    return anchor.aligners.head(domain).update(fit, anchor.stamp_s)
