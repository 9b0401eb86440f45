"""Metric anchoring, one unit: a few metric samples per frame (lidar, ToF, VIO) fix the scale.

A monocular metric model is off by a scale factor on unseen cameras and scenes. The node and
bag evaluation both use:

- :mod:`.samples`: :class:`SparseSamples` (samples at normalised image positions) and
  :class:`SampleStream` (the sparse inputs of a camera stream; one nearest-stamp rule; clouds
  brought into the optical frame by an injected transform);
- :mod:`.fit`: :func:`fit_alignment` (robust scale, or scale and shift in inverse depth) and
  :func:`apply_alignment`;
- :mod:`.smoothing`: :class:`TemporalAligner` / :class:`HeadAligners` (smoothing, hold and
  jump state per routed head), :func:`anchor_frame`, which ``pipeline.predict.predict_frame``
  calls, and :func:`select_head` (sparse-guided routing);
- :mod:`.options`: :class:`AnchorOptions`, the one declaration of the anchoring options (the
  node's ``anchor.*`` parameters, bag eval's settings).

Reading PointCloud2 x y z is :func:`zoedepth_ros.pointcloud.cloud_xyz`; the ``depth/alignment``
output is encoded in :mod:`zoedepth_ros.pipeline.outputs`; rigid transforms are in
:mod:`zoedepth_ros.geometry`.
"""

from zoedepth_ros.anchoring.fit import (
    IDENTITY,
    Alignment,
    apply_alignment,
    fit_alignment,
)
from zoedepth_ros.anchoring.options import AlignMode, AnchorOptions, ExtrinsicOptions
from zoedepth_ros.anchoring.samples import Points, SampleStream, SparseSamples, values_at
from zoedepth_ros.anchoring.smoothing import (
    Anchor,
    HeadAligners,
    TemporalAligner,
    anchor_frame,
    frame_fit,
    select_head,
)

__all__ = ['IDENTITY', 'AlignMode', 'Alignment', 'Anchor', 'AnchorOptions', 'ExtrinsicOptions',
           'HeadAligners', 'Points', 'SampleStream', 'SparseSamples', 'TemporalAligner',
           'anchor_frame', 'apply_alignment', 'fit_alignment', 'frame_fit', 'select_head',
           'values_at']
