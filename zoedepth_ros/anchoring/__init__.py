"""Metric anchoring, one unit: a few metric samples per frame (lidar, ToF, VIO) fix the scale.

A monocular metric model is off by a scale factor on unseen cameras and scenes. The node and
bag evaluation both use:

- :mod:`.samples`: :class:`SparseSamples` (samples at normalised image positions) and
  :class:`SampleStream` (the sparse inputs of a camera stream; one nearest-stamp rule; clouds
  brought into the optical frame by an injected transform);
- :mod:`.fit`: :func:`fit_alignment` (robust scale, or scale and shift in inverse depth) and
  :func:`apply_alignment`;
- :mod:`.smoothing`: :class:`TemporalAligner` / :class:`HeadAligners` (smoothing, hold and
  jump state per routed head) and :func:`anchor_frame`, which ``frame.predict_frame`` calls.

The wire formats (PointCloud2 x y z, the ``depth/alignment`` array) are in
:mod:`zoedepth_ros.io.anchoring`; rigid transforms in :mod:`zoedepth_ros.geometry`.
"""

from zoedepth_ros.anchoring.fit import (
    IDENTITY,
    Alignment,
    AlignMode,
    AlignOptions,
    apply_alignment,
    fit_alignment,
)
from zoedepth_ros.anchoring.samples import Points, SampleStream, SparseSamples, values_at
from zoedepth_ros.anchoring.smoothing import Anchor, HeadAligners, TemporalAligner, anchor_frame

__all__ = ['IDENTITY', 'AlignMode', 'AlignOptions', 'Alignment', 'Anchor', 'HeadAligners',
           'Points', 'SampleStream', 'SparseSamples', 'TemporalAligner', 'anchor_frame',
           'apply_alignment', 'fit_alignment', 'values_at']
