"""The outputs of one frame: the one table of what is published, and their encoding (ROS-free).

:data:`OUTPUTS` gives each output's key, topic (relative to the node's namespace, or to bag
eval's output namespace), message type and when it is computed. :class:`FrameRequest` says what
one frame computes (from the options and who listens); :class:`FrameOutputs` holds the results
on the host and :meth:`FrameOutputs.encoded` turns them into field values, which
:mod:`zoedepth_ros.pipeline.builder` makes into messages for rclpy and rosbags alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from zoedepth_ros.anchoring import Alignment
from zoedepth_ros.io import messages
from zoedepth_ros.io.messages import CameraInfoFields, ImageFields, PackedCloud
from zoedepth_ros.pipeline.options import FrameOptions


@dataclass(frozen=True)
class Output:
    """One published output.

    Attributes:
        key: short name used in code.
        topic: topic relative to the namespace.
        msgtype: ROS message type, e.g. 'sensor_msgs/msg/Image'.
        when: when it is computed, for people (docs, README).
        switch: the FrameOptions flag that enables it ('' = always computed), as a dotted
            name; such outputs are computed only while somebody listens.
    """

    key: str
    topic: str
    msgtype: str
    when: str
    switch: str = ''


OUTPUTS = (
    Output('depth', 'depth/image', 'sensor_msgs/msg/Image',
           'every frame (REP 118: 32FC1 metres with NaN, or 16UC1 millimetres with 0)'),
    Output('info', 'depth/camera_info', 'sensor_msgs/msg/CameraInfo',
           'every frame (the intrinsics of the depth image)'),
    Output('points', 'points', 'sensor_msgs/msg/PointCloud2',
           'cloud.enabled, while subscribed', 'cloud.enabled'),
    Output('std', 'depth/std', 'sensor_msgs/msg/Image',
           'publish_std, while subscribed (32FC1 metres)', 'publish_std'),
    Output('preview', 'depth/preview', 'sensor_msgs/msg/Image',
           'publish_preview, while subscribed (bgr8)', 'publish_preview'),
    Output('domain', 'domain', 'std_msgs/msg/String',
           'every frame (the head that served it: indoor or outdoor)'),
    Output('alignment', 'depth/alignment', 'std_msgs/msg/Float32MultiArray',
           'frames anchored to sparse samples (once any have arrived)'),
)
"""Every per-frame output, in publishing order."""

OUTPUT_BY_KEY = {output.key: output for output in OUTPUTS}


def _switch_on(options: FrameOptions, switch: str) -> bool:
    value: object = options
    for name in switch.split('.'):
        value = getattr(value, name)
    return bool(value)


@dataclass(frozen=True)
class FrameRequest:
    """What one frame computes besides depth, CameraInfo and the domain.

    Attributes:
        std, cloud, preview: compute these outputs.
        keep_unaligned: with an anchor, also return the depth before alignment (not gated).
        keep_ungated: also return the depth before the range and uncertainty gate (for
            scoring: the evaluation protocol clamps predictions, where a gate leaves holes).
    """

    std: bool = True
    cloud: bool = False
    preview: bool = False
    keep_unaligned: bool = False
    keep_ungated: bool = False

    @classmethod
    def of(cls, options: FrameOptions, listening: Callable[[str], bool] = lambda key: True,
           keep_unaligned: bool = False, keep_ungated: bool = False) -> FrameRequest:
        """The outputs whose switch is on and that somebody listens to (``listening(key)``)."""
        wanted = {output.key for output in OUTPUTS if output.switch
                  and _switch_on(options, output.switch) and listening(output.key)}
        return cls('std' in wanted, 'points' in wanted, 'preview' in wanted, keep_unaligned,
                   keep_ungated)


ALIGNMENT_LABELS = ('scale', 'shift', 'applied', 'samples', 'inliers', 'residual',
                    'frame_scale', 'coverage')
"""Order of the values on ``depth/alignment`` (the dimension's label lists them)."""


@dataclass(frozen=True)
class AlignmentFields:
    """Values of ``depth/alignment``: see :data:`ALIGNMENT_LABELS` (applied is 0 or 1;
    residual and frame_scale are NaN without a fit)."""

    values: tuple[float, ...]

    @property
    def label(self) -> str:
        return ','.join(ALIGNMENT_LABELS)

    @classmethod
    def of(cls, alignment: Alignment) -> AlignmentFields:
        return cls((alignment.scale, alignment.shift, float(alignment.applied),
                    float(alignment.samples), float(alignment.inliers), alignment.residual,
                    alignment.frame_scale, alignment.coverage))


EncodedOutput = ImageFields | CameraInfoFields | PackedCloud | AlignmentFields | str
"""Field values of one output (``str``: the domain)."""


@dataclass
class FrameOutputs:
    """One frame's outputs on the host.

    Attributes:
        depth_m: (H, W) float32 z-depth in metres, NaN outside the gates.
        std_m: (H, W) float32 standard deviation in metres (None unless requested).
        cloud: the packed point cloud (None unless requested).
        camera_info: CameraInfo of the depth image (scaled to its size).
        domain: 'indoor' or 'outdoor', the head that produced the depth.
        domain_probs: router probability per domain.
        timings_ms: 'preprocess', 'model', 'postprocess' wall times.
        alignment: the metric anchoring applied (None without an anchor).
        unaligned_depth_m: the depth before alignment, not gated (with ``keep_unaligned``).
        focal_factor: the focal-length correction applied (1.0 when off).
        ungated_depth_m: the depth before the gates (with ``keep_ungated``).
        routed_domain: the router's choice (differs from ``domain`` when sparse-guided
            head selection overruled it).
        preview: the preview was requested.
    """

    depth_m: np.ndarray
    std_m: np.ndarray | None
    cloud: PackedCloud | None
    camera_info: CameraInfoFields
    domain: str
    domain_probs: dict[str, float]
    timings_ms: dict[str, float] = field(default_factory=dict)
    alignment: Alignment | None = None
    unaligned_depth_m: np.ndarray | None = None
    focal_factor: float = 1.0
    ungated_depth_m: np.ndarray | None = None
    routed_domain: str = ''
    preview: bool = False

    def encoded(self, options: FrameOptions) -> dict[str, EncodedOutput]:
        """Field values per output key of :data:`OUTPUTS` (only the outputs computed), in
        the table's order."""
        out: dict[str, EncodedOutput] = {
            'depth': messages.encode_depth(self.depth_m, options.output_encoding),
            'info': self.camera_info}
        if self.cloud is not None:
            out['points'] = self.cloud
        if self.std_m is not None:
            out['std'] = messages.encode_float_image(self.std_m)
        if self.preview:
            out['preview'] = messages.encode_preview(self.depth_m, options.min_range,
                                                     options.preview_top_m)
        out['domain'] = self.domain
        if self.alignment is not None:
            out['alignment'] = AlignmentFields.of(self.alignment)
        return out
