"""Options of metric anchoring, declared once: the node's ``anchor.*`` parameters and bag eval's
anchoring settings are this type (field metadata: description, range, run-time changes).

Fields without a description are internal fit settings, not parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from zoedepth_ros.config import param, section
from zoedepth_ros.errors import ConfigError

AnchorMode = Literal['off', 'scale', 'scale_shift']
AlignMode = Literal['scale', 'scale_shift']
HeadSelection = Literal['router', 'sparse']


@dataclass(frozen=True)
class ExtrinsicOptions:
    """Fixed pose of the sparse cloud's frame in the camera's optical frame (p_cam = R p + t)."""

    enabled: bool = param(False, 'Transform sparse_points with this fixed extrinsic (sensor '
                          'frame -> camera optical frame) instead of tf2; without it and '
                          'without tf2 the cloud must be in the optical frame.')
    x: float = param(0.0, 'Translation x, metres.', low=-100.0, high=100.0)
    y: float = param(0.0, 'Translation y, metres.', low=-100.0, high=100.0)
    z: float = param(0.0, 'Translation z, metres.', low=-100.0, high=100.0)
    qx: float = param(0.0, 'Rotation quaternion x.', low=-1.0, high=1.0)
    qy: float = param(0.0, 'Rotation quaternion y.', low=-1.0, high=1.0)
    qz: float = param(0.0, 'Rotation quaternion z.', low=-1.0, high=1.0)
    qw: float = param(1.0, 'Rotation quaternion w.', low=-1.0, high=1.0)

    @classmethod
    def of(cls, values: tuple[float, ...]) -> ExtrinsicOptions:
        """Enabled extrinsic from (x, y, z, qx, qy, qz, qw)."""
        if len(values) != 7:
            raise ConfigError(f'the sparse extrinsic needs 7 values (x y z qx qy qz qw), got '
                              f'{len(values)}')
        return cls(True, *(float(v) for v in values))

    @property
    def translation(self) -> tuple[float, float, float]:
        return self.x, self.y, self.z

    @property
    def rotation(self) -> tuple[float, float, float, float]:
        return self.qx, self.qy, self.qz, self.qw


@dataclass(frozen=True)
class AnchorOptions:
    """How frames are fitted to sparse metric samples and how the fits are smoothed.

    ``mode`` 'scale' fits depth * s; 'scale_shift' fits in inverse depth (1/d' = a/d + b).
    The smoothing, hold and jump state are kept per routed head. ``head_selection`` 'sparse'
    serves a frame with samples from the head whose anchored fit explains them better.
    """

    mode: AnchorMode = param(
        'scale', 'off | scale (robust global depth scale per frame) | scale_shift (scale and '
        'shift in inverse depth); applies only while sparse samples arrive.', read_only=True)
    min_samples: int = param(10, 'Fewer valid samples (or inliers) in a frame: no fit.',
                             low=2, high=1_000_000)
    inlier_threshold: float = param(0.2, 'Samples whose relative residual exceeds this '
                                    'after the robust fit are outliers.', low=0.001, high=10.0)
    time_constant_s: float = param(0.5, 'Smoothing time constant of the scale; 0 = every '
                                   "frame's own fit.", low=0.0, high=3600.0)
    jump_ratio: float = param(1.5, 'A fit off the smoothed scale by more than this factor is '
                              'a jump (reset once it persists for jump_frames).',
                              low=1.01, high=100.0)
    jump_frames: int = param(3, 'Consecutive jumping frames that reset the smoothing.',
                             low=1, high=1000)
    hold_s: float = param(1.0, 'Keep applying the last scale this long when samples stop.',
                          low=0.0, high=3600.0)
    sync_tolerance_s: float = param(0.05, 'Largest stamp difference between an image and the '
                                    'sparse message paired with it (nearest in time).',
                                    low=0.0, high=10.0)
    head_selection: HeadSelection = param(
        'router', "router (the model's router picks the head) | sparse (with samples, the head "
        'whose anchored fit explains them better serves the frame; both heads run).',
        read_only=True)
    evidence_weighting: bool = param(
        True, "scale mode: apply a frame's log scale in proportion to the evidence, "
        'offset^2 / (offset^2 + (2 residual)^2): an offset small against the spread of the '
        "samples' residuals (structure a global scale cannot fix) is shrunk towards 1 (false: "
        'apply every fit in full).')
    min_coverage: float = param(
        0.5, "Fits whose samples span the depths of less than this share of the frame's "
        "pixels (predicted depth within the span of the samples' predictions, +- "
        'inlier_threshold) are not used: a short-range ToF outdoors sees only the near '
        'ground. 0 = always use.', low=0.0, high=1.0)
    extrinsic: ExtrinsicOptions = section(ExtrinsicOptions)
    huber: float = 0.05
    """Huber threshold of the IRLS, on the relative residual (log ratio)."""
    iterations: int = 8
    """IRLS iterations."""
    std_floor: float = 0.05
    """Relative std added in quadrature when weighting by the predicted std."""
    max_samples: int = 4096
    """Larger sample sets are thinned by an even stride before the fit."""
    selection_margin: float = 0.25
    """Sparse-guided head selection overrules the router only when the other head's fit cost
    is below this share of the routed head's (clear evidence, not a tie)."""
    evidence_sigmas: float = 2.0
    """Evidence weighting applies half of a fitted log scale when it is this many residual
    spreads (RMS log residual of the inliers) away from 0."""

    def __post_init__(self) -> None:
        if self.mode not in ('off', 'scale', 'scale_shift'):
            raise ConfigError(f'anchoring mode {self.mode!r}; expected off, scale or scale_shift')
        if self.head_selection not in ('router', 'sparse'):
            raise ConfigError(f'head_selection {self.head_selection!r}; expected router or '
                              'sparse')
        if self.min_samples < 2 or self.inlier_threshold <= 0 or self.huber <= 0:
            raise ConfigError('anchoring needs min_samples >= 2, inlier_threshold > 0 and '
                              'huber > 0')
        if self.time_constant_s < 0 or self.hold_s < 0 or self.jump_ratio <= 1:
            raise ConfigError('anchoring needs time_constant_s >= 0, hold_s >= 0 and '
                              'jump_ratio > 1')
        if self.jump_frames < 1 or self.iterations < 0 or self.sync_tolerance_s < 0:
            raise ConfigError('anchoring needs jump_frames >= 1, iterations >= 0 and '
                              'sync_tolerance_s >= 0')

    @property
    def enabled(self) -> bool:
        return self.mode != 'off'

    @property
    def tolerance_ns(self) -> int:
        return round(self.sync_tolerance_s * 1e9)
