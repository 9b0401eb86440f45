"""Per-frame outputs: one path from a camera frame to everything the node publishes.

The depth node and bag replay (``zoedepth bag eval --out-bag``) both call
:func:`predict_frame` and :meth:`FrameOutputs.encoded`, so the two write the same topics with
the same content: the estimator predicts, the range/uncertainty gate and the point cloud run on
the estimator's device (the GPU when there is one), and depth, std and the packed cloud reach
host memory once. ``OUTPUT_TOPICS`` is the one table of output names, relative to the node's
namespace.
"""

from __future__ import annotations

import ctypes
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from zoedepth_ros.anchoring import Alignment, Anchor, anchor_frame, apply_alignment
from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.inference import DepthEstimator, domain_probabilities, phase_timings
from zoedepth_ros.io import messages
from zoedepth_ros.io.anchoring import AlignmentFields
from zoedepth_ros.io.messages import CameraInfoFields, PackedCloud
from zoedepth_ros.model.config import FOCAL_REFERENCE
from zoedepth_ros.model.router import domain_name
from zoedepth_ros.pointcloud import CloudOptions, pack_point_cloud

OUTPUT_TOPICS = {
    'depth': 'depth/image',
    'info': 'depth/camera_info',
    'points': 'points',
    'std': 'depth/std',
    'preview': 'depth/preview',
    'domain': 'domain',
    'alignment': 'depth/alignment',
}
"""Output key -> topic name relative to the node's namespace (REP 118 depth, its CameraInfo,
the cloud, the uncertainty, a colour preview, the router's choice, the metric anchoring)."""



@dataclass(frozen=True)
class FrameOptions:
    """What :func:`predict_frame` computes besides depth, and how it is encoded.

    Attributes:
        min_range, max_range: valid depth interval in metres (NaN outside; 0 is never valid).
        max_rel_std: invalidate pixels with std / depth above this; 0 disables the gate.
        std: also compute and return the std map (it is computed only when this is set or
            the uncertainty gate needs it).
        cloud: point cloud options (stride, layout, colour); None for no cloud.
        encoding: depth image encoding, '32FC1' (metres, NaN invalid) or '16UC1' (mm, 0).
        preview: also encode a bgr8 colour map of the depth.
        focal_correction: rescale depth by the camera's focal length in image widths over
            that of the training cameras (``focal_reference``, per domain: indoor, outdoor).
        keep_unaligned: with an anchor, also return the depth before alignment (not gated).
        keep_ungated: also return the depth before the range and uncertainty gate, for
            scoring: the evaluation protocol clamps predictions, where a gate leaves holes.
    """

    min_range: float = 0.0
    max_range: float = math.inf
    max_rel_std: float = 0.0
    std: bool = True
    cloud: CloudOptions | None = None
    encoding: Literal['32FC1', '16UC1'] = '32FC1'
    preview: bool = False
    focal_correction: bool = False
    focal_reference: tuple[float, float] = FOCAL_REFERENCE
    keep_unaligned: bool = False
    keep_ungated: bool = False

    def __post_init__(self) -> None:
        if min(self.focal_reference) <= 0:
            raise InputError(f'focal_reference must be positive, got {self.focal_reference}')
        if not 0.0 <= self.min_range < self.max_range:
            raise InputError(f'need 0 <= min_range < max_range, got {self.min_range}, '
                             f'{self.max_range}')


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
        ungated_depth_m: the depth before the gates (with ``keep_ungated``).
        focal_factor: the focal-length correction applied (1.0 when off).
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

    def encoded(self, options: FrameOptions) -> dict[str, Any]:
        """Field values per output key of ``OUTPUT_TOPICS`` (only the outputs computed).

        'depth', 'std', 'preview': ImageFields; 'info': CameraInfoFields; 'points':
        PackedCloud; 'domain': str; 'alignment': AlignmentFields (with an anchor).
        """
        out: dict[str, Any] = {'depth': messages.encode_depth(self.depth_m, options.encoding),
                               'info': self.camera_info}
        if self.std_m is not None:
            out['std'] = messages.encode_float_image(self.std_m)
        if self.cloud is not None:
            out['points'] = self.cloud
        if options.preview:
            top = options.max_range if math.isfinite(options.max_range) else 80.0
            out['preview'] = messages.encode_preview(self.depth_m, options.min_range, top)
        out['domain'] = self.domain
        if self.alignment is not None:
            out['alignment'] = AlignmentFields.of(self.alignment)
        return out


def gate_depth(depth: torch.Tensor, min_range: float = 0.0, max_range: float = math.inf,
               std: torch.Tensor | None = None, max_rel_std: float = 0.0) -> torch.Tensor:
    """The range and uncertainty gate, on the tensors' device.

    Args:
        depth: (H, W) depth in metres.
        std: (H, W) standard deviation in metres, needed when ``max_rel_std`` > 0.

    Returns:
        New (H, W) float32 tensor, NaN where depth is not positive and finite, outside
        [min_range, max_range], or std / depth > max_rel_std.
    """
    depth = depth.float()
    # One comparison per bound, all False for NaN: depth >= min_range > 0 implies depth > 0,
    # and depth < inf keeps only finite depth when there is no upper bound.
    valid = depth > 0 if min_range <= 0 else depth >= min_range
    valid &= depth < math.inf if max_range == math.inf else depth <= max_range
    if max_rel_std > 0.0:
        if std is None or std.shape != depth.shape:
            raise InputError('max_rel_std needs a std map of the depth shape')
        valid &= std.float() <= max_rel_std * depth  # False for a NaN std
    return torch.where(valid, depth, math.nan)


def frame_camera_info(info: CameraInfoFields | None, width: int, height: int,
                      fov_deg: float = 0.0) -> CameraInfoFields | None:
    """The CameraInfo of a width x height frame.

    Args:
        info: the camera's CameraInfo fields, or None when none has arrived.
        width, height: size of the image.
        fov_deg: horizontal field of view for synthesised intrinsics when ``info`` is None.

    Returns:
        ``info`` scaled to the image (0 x 0 means "this image"), synthesised intrinsics, or
        None when there is no CameraInfo and ``fov_deg`` is 0.

    Raises:
        InputError: the CameraInfo describes an image of another size.
    """
    if info is None:
        if fov_deg <= 0:
            return None
        return messages.camera_info_from_camera(PinholeCamera.from_fov(width, height, fov_deg))
    messages.check_camera_info_size(info, width, height)
    return messages.scale_camera_info(info, width, height)


def focal_factor(camera: PinholeCamera, domain: str,
                 reference: tuple[float, float] = FOCAL_REFERENCE) -> float:
    """Depth factor of the focal-length correction: the camera's focal length in image widths
    over the training cameras' (a wider field of view than training makes the model read
    objects as farther away by about this ratio)."""
    return (camera.fx / camera.width) / reference[0 if domain == 'indoor' else 1]


@torch.inference_mode()
def predict_frame(estimator: DepthEstimator, rgb: np.ndarray, camera_info: CameraInfoFields,
                  options: FrameOptions = FrameOptions(),
                  anchor: Anchor | None = None) -> FrameOutputs:
    """One camera frame -> gated depth, std and point cloud (see the module docstring).

    Args:
        estimator: the depth estimator.
        rgb: HxWx3 uint8 RGB image.
        camera_info: CameraInfo of the H x W image (see :func:`frame_camera_info`).
        options: gates, what to compute and the depth encoding.
        anchor: sparse metric samples and the aligners: the depth and std are corrected
            (after the focal-length correction, before the gates) when it yields a fit.
    """
    start = time.perf_counter()
    image = estimator.upload([rgb])
    tensor = estimator.to_float(image)
    estimator.synchronize()
    prepared = time.perf_counter()
    out = estimator.predict_tensor(tensor, std=options.std or options.max_rel_std > 0)
    estimator.synchronize()
    inferred = time.perf_counter()
    std = None if out.std is None else out.std[0, 0]
    raw = out.depth[0, 0]
    domain = domain_name(int(out.domain_index[0]))
    factor = 1.0
    if options.focal_correction:
        factor = focal_factor(camera_info.camera, domain, options.focal_reference)
        raw, std = raw * factor, None if std is None else std * factor
    alignment = unaligned = None
    if anchor is not None:
        alignment = anchor_frame(raw, std, anchor, domain)
        if options.keep_unaligned:
            unaligned = gate_depth(raw).cpu().numpy()
        raw, std = apply_alignment(raw, std, alignment)
    depth = gate_depth(raw, options.min_range, options.max_range, std, options.max_rel_std)
    ungated = gate_depth(raw).cpu().numpy() if options.keep_ungated else None
    cloud = None
    if options.cloud is not None:
        cloud = pack_point_cloud(depth, camera_info.camera, options.cloud, image[0])
    kept = std.cpu().numpy() if options.std and std is not None else None
    return FrameOutputs(depth.cpu().numpy(), kept, cloud, camera_info, domain,
                        domain_probabilities(out.domain_probs[0].cpu().numpy()),
                        phase_timings(start, prepared, inferred), alignment, unaligned, factor,
                        ungated)


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory in the process for reuse: no heap trimming, and blocks up
    to 32 MiB (glibc's largest threshold on 64-bit) from the heap instead of fresh mappings.

    Each frame allocates and frees the same temporaries (a few MB each at 640x480, tens of MB
    in a network); with glibc's defaults they often come back as fresh pages that fault in on
    first touch, every frame. The resident size then stays at its high-water mark.
    Process-wide and glibc-only, for processes that run the per-frame path (the node
    executables call it); the same as ``MALLOC_TRIM_THRESHOLD_`` and
    ``MALLOC_MMAP_THRESHOLD_`` in the environment, which win when set.

    Returns:
        Whether both settings are now in effect (False when the environment sets them, or on
        a C library without ``mallopt``).
    """
    if os.environ.keys() & {'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_THRESHOLD_'}:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library's, among the process's symbols
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_trim_threshold, 2**31 - 1) and mallopt(m_mmap_threshold, 32 << 20))
