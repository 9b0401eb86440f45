"""One frame, one path: from a camera image to every output, for the node and bag replay.

The depth node (through :class:`~zoedepth_ros.pipeline.camera.CameraPipeline`) and
``zoedepth bag eval`` both call :func:`predict_frame`: the estimator predicts, the focal-length
correction and metric anchoring (with sparse-guided head selection) apply, the
range/uncertainty gate and the point cloud run on the estimator's device (the GPU when there is
one), and depth, std and the packed cloud reach host memory once.
"""

from __future__ import annotations

import ctypes
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from zoedepth_ros.anchoring import (
    Alignment,
    Anchor,
    anchor_frame,
    apply_alignment,
    select_head,
)
from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.inference import (
    DepthEstimator,
    DepthTensors,
    domain_probabilities,
    phase_timings,
)
from zoedepth_ros.io import messages
from zoedepth_ros.io.messages import CameraInfoFields
from zoedepth_ros.model.config import FOCAL_REFERENCE
from zoedepth_ros.model.router import domain_name
from zoedepth_ros.pipeline.options import FrameOptions
from zoedepth_ros.pipeline.outputs import FrameOutputs, FrameRequest
from zoedepth_ros.pointcloud import pack_point_cloud


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


@dataclass
class FrameJob:
    """One frame's inputs to :func:`predict_frames` (the arguments of :func:`predict_frame`)."""

    rgb: np.ndarray
    camera_info: CameraInfoFields
    options: FrameOptions = field(default_factory=FrameOptions)
    request: FrameRequest = field(default_factory=FrameRequest)
    anchor: Anchor | None = None

    @property
    def selects(self) -> bool:
        """Whether sparse-guided head selection applies (it needs every head's depth)."""
        anchor = self.anchor
        return (anchor is not None and anchor.samples is not None and len(anchor.samples) > 0
                and self.options.anchor.head_selection == 'sparse')


def predict_frame(estimator: DepthEstimator, rgb: np.ndarray, camera_info: CameraInfoFields,
                  options: FrameOptions = FrameOptions(), request: FrameRequest = FrameRequest(),
                  anchor: Anchor | None = None) -> FrameOutputs:
    """One camera frame -> gated depth, std and point cloud (see the module docstring).

    Args:
        estimator: the depth estimator.
        rgb: HxWx3 uint8 RGB image.
        camera_info: CameraInfo of the H x W image (see :func:`frame_camera_info`).
        options: gates, encodings, focal correction, anchoring options.
        request: which optional outputs to compute.
        anchor: sparse metric samples and the aligners: the depth and std are corrected
            (after the focal-length correction, before the gates) when it yields a fit. With
            ``options.anchor.head_selection`` 'sparse' and samples, every head runs and the
            one whose fit explains the samples better serves the frame.
    """
    return predict_frames(estimator, [FrameJob(rgb, camera_info, options, request, anchor)])[0]


@torch.inference_mode()
def predict_frames(estimator: DepthEstimator, jobs: Sequence[FrameJob]) -> list[FrameOutputs]:
    """Several frames (of several cameras) through one model: frames of equal image size go
    through the network as one batch, each with its own camera, options and anchoring
    (:func:`predict_frame` for each, with the network's work shared). Routing is per image.
    The timings of a frame are those of its batch. Returns the outputs in the jobs' order."""
    results: list[FrameOutputs | None] = [None] * len(jobs)
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.rgb.shape, []).append(index)
    for indices in groups.values():
        start = time.perf_counter()
        image = estimator.upload([jobs[i].rgb for i in indices])
        tensor = estimator.to_float(image)
        estimator.synchronize()
        prepared = time.perf_counter()
        std = any(jobs[i].request.std or jobs[i].options.max_rel_std > 0 for i in indices)
        out = estimator.predict_tensor(tensor, std=std,
                                       all_heads=any(jobs[i].selects for i in indices))
        estimator.synchronize()
        timings = phase_timings(start, prepared, time.perf_counter())
        for row, index in enumerate(indices):
            results[index] = _finish(out, row, image[row], jobs[index], timings)
    return [result for result in results if result is not None]


def _finish(out: DepthTensors, row: int, image: torch.Tensor, job: FrameJob,
            timings: dict[str, float]) -> FrameOutputs:
    """Row ``row`` of a batch's predictions -> the frame's outputs (focal correction, head
    selection, anchoring, gates, cloud), on the estimator's device until the copies home."""
    options, request, anchor, camera_info = job.options, job.request, job.anchor, job.camera_info
    select = job.selects
    # A frame that asked for no std gets none, although its batch computed one for another
    # frame: the anchoring weighs samples by the std when there is one.
    wants_std = request.std or options.max_rel_std > 0
    routed = domain_name(int(out.domain_index[row]))
    heads = {routed: (out.depth[row, 0],
                      out.std[row, 0] if wants_std and out.std is not None else None)}
    if select and out.heads is not None:
        heads = {name: (depth[row, 0], std[row, 0] if wants_std and std is not None else None)
                 for name, (depth, std) in out.heads.items()}
    factor = {name: 1.0 for name in heads}
    if options.focal.enabled:
        factor = {name: focal_factor(camera_info.camera, name, options.focal.reference)
                  for name in heads}
        heads = {name: (depth * factor[name], None if std is None else std * factor[name])
                 for name, (depth, std) in heads.items()}
    domain, fit = routed, None
    if select and anchor is not None:
        domain, fit = select_head(heads, anchor, routed)
    raw, std = heads[domain]
    alignment: Alignment | None = None
    unaligned = None
    if anchor is not None:
        alignment = anchor_frame(raw, std, anchor, domain, fit)
        if request.keep_unaligned:
            unaligned = gate_depth(raw).cpu().numpy()
        raw, std = apply_alignment(raw, std, alignment)
    depth = gate_depth(raw, options.min_range, options.max_range, std, options.max_rel_std)
    ungated = gate_depth(raw).cpu().numpy() if request.keep_ungated else None
    cloud = None
    if request.cloud:
        cloud = pack_point_cloud(depth, camera_info.camera, options.cloud, image)
    kept = std.cpu().numpy() if request.std and std is not None else None
    return FrameOutputs(depth.cpu().numpy(), kept, cloud, camera_info, domain,
                        domain_probabilities(out.domain_probs[row].cpu().numpy()),
                        dict(timings), alignment, unaligned, factor[domain], ungated, routed,
                        request.preview)


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
