"""The per-frame options, declared once (ROS-free).

:class:`FrameOptions` is what every frame is computed with: the range and uncertainty gate,
the fallback field of view, the encodings, which optional outputs exist, the cloud, metric
anchoring and the focal-length correction. :class:`StreamOptions` adds how one camera stream
is received (transport, image/camera_info pairing, size limit). The node's configuration
embeds them with the parameter names they have here (``min_range``, ``cloud.stride``,
``anchor.mode``), and bag evaluation embeds :class:`FrameOptions`; each field's metadata holds
its parameter description, range and whether it may change at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from zoedepth_ros.anchoring.options import AnchorOptions
from zoedepth_ros.config import param, section
from zoedepth_ros.errors import ConfigError
from zoedepth_ros.model.config import FOCAL_REFERENCE, NODE_MAX_RANGE_M, NODE_MIN_RANGE_M
from zoedepth_ros.pointcloud import CloudOptions

Encoding = Literal['32FC1', '16UC1']


@dataclass(frozen=True)
class FocalOptions:
    """Focal-length correction without any sensor."""

    enabled: bool = param(False, "Rescale depth by the camera's focal length in image widths "
                          "(fx / width from camera_info) over the training cameras'.")
    reference_indoor: float = param(FOCAL_REFERENCE[0], "fx / width of the indoor head's "
                                    'training camera (NYU Depth v2: 518.86 / 640).',
                                    low=0.01, high=100.0)
    reference_outdoor: float = param(FOCAL_REFERENCE[1], "fx / width of the outdoor head's "
                                     'training camera (KITTI: 721.54 / 1216).',
                                     low=0.01, high=100.0)

    def __post_init__(self) -> None:
        if min(self.reference) <= 0:
            raise ConfigError(f'focal references must be positive, got {self.reference}')

    @property
    def reference(self) -> tuple[float, float]:
        """(indoor, outdoor) fx / width of the training cameras."""
        return self.reference_indoor, self.reference_outdoor


@dataclass(frozen=True)
class FrameOptions:
    """How each frame is computed and encoded (see the module docstring)."""

    fov_deg: float = param(60.0, 'Horizontal field of view for intrinsics while no '
                           'camera_info has arrived; 0.0 = wait for camera_info.',
                           low=0.0, high=179.0)
    min_range: float = param(NODE_MIN_RANGE_M, 'Nearest valid depth, metres (closer pixels '
                             'become NaN).', low=0.0, high=1000.0)
    max_range: float = param(NODE_MAX_RANGE_M, 'Farthest valid depth, metres (farther pixels '
                             'become NaN).', low=0.001, high=1000.0)
    max_rel_std: float = param(0.0, 'Invalidate pixels whose std/depth exceeds this; 0.0 = off.',
                               low=0.0, high=100.0)
    frame_id: str = param('', "Frame id of every output; empty = the input image's (it must "
                          'be the camera optical frame).')
    output_encoding: Encoding = param(
        '32FC1', '32FC1 (metres, NaN invalid) | 16UC1 (millimetres, 0 invalid).')
    publish_std: bool = param(True, 'Publish depth/std (32FC1 standard deviation, metres).')
    publish_preview: bool = param(False, 'Publish depth/preview (bgr8 colour map for viewing).')
    cloud: CloudOptions = section(CloudOptions)
    anchor: AnchorOptions = section(AnchorOptions)
    focal: FocalOptions = section(FocalOptions)

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_range < self.max_range:
            raise ConfigError(f'min_range {self.min_range} must be smaller than max_range '
                              f'{self.max_range} (and not negative)')
        if self.fov_deg < 0 or self.max_rel_std < 0:
            raise ConfigError('fov_deg and max_rel_std must not be negative')

    @property
    def preview_top_m(self) -> float:
        """Far end of the preview's colour scale."""
        return self.max_range if math.isfinite(self.max_range) else 80.0


@dataclass(frozen=True)
class StreamOptions:
    """How one camera stream is received, and its per-frame options."""

    input_transport: Literal['raw', 'compressed'] = param(
        'raw', 'raw: subscribe image (sensor_msgs/Image); compressed: subscribe '
        'image/compressed (jpeg/png sensor_msgs/CompressedImage).', read_only=True)
    sync_mode: Literal['cache', 'approx', 'exact'] = param(
        'cache', 'cache: use the newest camera_info for every image; approx: pair each image '
        'with the camera_info nearest in stamp within sync_slop_s; exact: equal stamps only.',
        read_only=True)
    sync_slop_s: float = param(0.05, 'Largest image/camera_info stamp difference in approx '
                               'mode, seconds (about half a frame period).', low=0.0, high=10.0)
    max_input_pixels: int = param(3840 * 2160, 'Drop input images with more pixels than this '
                                  '(compressed ones before decoding).', low=1, high=1 << 30)
    always_run: bool = param(False, 'Run inference even when no output has a subscriber.')
    frame: FrameOptions = section(FrameOptions, inline=True)

    @property
    def slop_ns(self) -> int:
        """The pairing window in nanoseconds (0 in exact mode)."""
        return 0 if self.sync_mode == 'exact' else int(self.sync_slop_s * 1e9)
