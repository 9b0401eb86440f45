"""Offline evaluation of a depth estimator on a recorded bag (no rclpy).

Every colour frame of the bag goes through the node's per-frame path
(:func:`zoedepth_ros.pipeline.predict.predict_frame`); frames paired with ground truth
(nearest depth stamp within the tolerance, see :mod:`zoedepth_ros.io.bags`) are scored with
the ZoeDepth protocol of :mod:`zoedepth_ros.metrics`: the prediction is resized bilinearly
(align_corners=True) to the ground-truth size, clamped to [min_depth, max_depth]; valid pixels
satisfy min_depth < gt < max_depth inside the crop; metrics are per image and averaged over
images. The report breaks the averages down by the domain the router chose and
by ground-truth depth range (each image scored on its pixels inside the range, then averaged
over the images that have any), and keeps per-pixel error statistics for plots.

With a sparse topic (``settings.sparse_topic``: a sparse depth Image or a PointCloud2, see
:mod:`zoedepth_ros.evaluation.sparse`) every frame is also anchored to its metric samples as
the node does (:mod:`zoedepth_ros.anchoring`, ``settings.frame.anchor``) and scored twice in
the same run: the main results are with alignment, ``report.unaligned`` holds the same tables
without it, and each frame records the fitted scale.

Frames are computed with the node's per-frame options (``settings.frame``, the type the node's
parameters embed, with the node's defaults). With an output bag the run also writes, at each
colour frame's stamp and bag time, what the node publishes with those options
(``pipeline.outputs.OUTPUTS`` under the output namespace, built by the node's message
builder), beside a copy of every original message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoedepth_ros.anchoring import Anchor, HeadAligners, SampleStream
from zoedepth_ros.errors import BagError, ConfigError
from zoedepth_ros.evaluation.replay import copier, write_outputs
from zoedepth_ros.evaluation.sparse import read_sparse
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.bag_reader import open_bag
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.bags import FrameTopics, RgbdFrame, camera_info_source, read_rgbd
from zoedepth_ros.metrics import (
    CROPS,
    METRIC_KEYS,
    Crop,
    DepthMetrics,
    compute_errors,
    valid_pairs,
)
from zoedepth_ros.pipeline.options import FrameOptions
from zoedepth_ros.pipeline.outputs import FrameOutputs, FrameRequest
from zoedepth_ros.pipeline.predict import frame_camera_info, predict_frame

if TYPE_CHECKING:
    from zoedepth_ros.inference import DepthEstimator

ERROR_BINS = np.linspace(-1.0, 1.0, 81)
"""Edges of the signed relative error (pred - gt) / gt histogram; outliers go to the ends."""


@dataclass(frozen=True)
class BagEvalSettings:
    """How to read, score and write one bag.

    Attributes:
        topics: image / depth / camera_info topics and pairing tolerance.
        min_depth, max_depth: evaluation range in metres.
        crop: 'eigen', 'garg' or 'none' (see ``metrics.crop_mask``).
        range_edges: ground-truth depth bins in metres (empty: min, max/8, max/4, max/2, max).
        max_frames: stop after this many colour frames (0 = all).
        namespace: namespace of the output topics in the output bag.
        sparse_topic: sparse metric samples to anchor every frame to (None: no anchoring).
        frame: the node's per-frame options: the gate of the output bag's depth and clouds
            (scoring uses the ungated depth), the field of view assumed for frames without a
            CameraInfo (reported; it must be positive here), the outputs, the cloud, the
            anchoring (``anchor``: fit, smoothing, tolerance, extrinsic, head selection) and
            the focal-length correction.
    """

    topics: FrameTopics
    min_depth: float = 1e-3
    max_depth: float = 10.0
    crop: Crop = 'none'
    range_edges: tuple[float, ...] = ()
    max_frames: int = 0
    namespace: str = '/zoedepth'
    sparse_topic: str | None = None
    frame: FrameOptions = FrameOptions()

    def __post_init__(self) -> None:
        if self.frame.fov_deg <= 0:
            raise ConfigError(f'fov_deg must be positive, got {self.frame.fov_deg}')
        if not 0 <= self.min_depth < self.max_depth:
            raise ConfigError(f'need 0 <= min_depth < max_depth, got {self.min_depth}, '
                              f'{self.max_depth}')
        if self.crop not in CROPS:
            raise ConfigError(f'crop {self.crop!r}: expected one of {list(CROPS)}')
        edges = self.edges
        if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ConfigError(f'range_edges must increase and hold at least two values, got '
                              f'{list(edges)}')

    @property
    def edges(self) -> tuple[float, ...]:
        """Depth range bin edges in metres."""
        if self.range_edges:
            return tuple(float(e) for e in self.range_edges)
        top = self.max_depth
        return (self.min_depth, top / 8, top / 4, top / 2, top)


@dataclass
class FrameRecord:
    """Per-frame result (one row of per_frame.csv)."""

    index: int
    stamp_ns: int
    paired: bool
    depth_offset_ms: float | None
    domain: str
    domain_prob: float
    valid_pixels: int
    metrics: dict[str, float] | None
    model_ms: float
    unaligned: dict[str, float] | None = None
    """Metrics without alignment (with a sparse topic)."""
    alignment: dict[str, float | str] | None = None
    """scale, frame_scale, samples, inliers, status of the frame's alignment."""
    routed_domain: str = ''
    """The router's choice (``domain`` differs when sparse-guided head selection overruled
    it)."""


@dataclass
class BagEvalReport:
    """Everything an evaluation found; ``to_dict`` is metrics.json."""

    model: str
    bag: str
    settings: dict[str, Any]
    frames: list[FrameRecord] = field(default_factory=list)
    overall: dict[str, float] = field(default_factory=dict)
    per_domain: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_range: list[dict[str, Any]] = field(default_factory=list)
    pixel_stats: dict[str, list[float]] = field(default_factory=dict)
    unaligned: dict[str, Any] = field(default_factory=dict)
    """With a sparse topic: 'overall', 'per_domain', 'per_range' without alignment."""
    seconds: float = 0.0
    out_bag: str | None = None
    camera: dict[str, Any] = field(default_factory=dict)
    """'camera_info_topic', 'source' (how chosen, or why none), 'assumed_fov_frames'."""

    @property
    def paired(self) -> int:
        return sum(record.paired for record in self.frames)

    @property
    def evaluated(self) -> int:
        """Paired frames with at least one valid ground-truth pixel."""
        return sum(record.metrics is not None for record in self.frames)

    @property
    def frames_per_s(self) -> float:
        return len(self.frames) / self.seconds if self.seconds > 0 else 0.0

    @property
    def camera_assumed(self) -> bool:
        """Whether any frame's intrinsics were assumed (no CameraInfo for it)."""
        return bool(self.camera.get('assumed_fov_frames'))

    def to_dict(self) -> dict[str, Any]:
        counts = {'frames': len(self.frames), 'paired': self.paired,
                  'unpaired': len(self.frames) - self.paired, 'evaluated': self.evaluated,
                  'no_valid_pixels': self.paired - self.evaluated}
        data = asdict(self)
        data.pop('frames')
        return {**counts, 'frames_per_s': self.frames_per_s, **data}


class _PixelStats:
    """Per-pixel errors pooled over frames, for the error-vs-depth plot and the histogram."""

    def __init__(self, min_depth: float, max_depth: float) -> None:
        self.depth_edges = np.geomspace(max(min_depth, max_depth / 1000), max_depth, 41)
        self.abs_rel_sum = np.zeros(40)
        self.abs_err_sum = np.zeros(40)
        self.count = np.zeros(40, dtype=np.int64)
        self.histogram = np.zeros(len(ERROR_BINS) - 1, dtype=np.int64)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add matching 1-D arrays of valid ground truth and clamped prediction."""
        where = np.clip(np.searchsorted(self.depth_edges, gt) - 1, 0, 39)
        error = np.abs(pred - gt)
        self.abs_rel_sum += np.bincount(where, weights=error / gt, minlength=40)
        self.abs_err_sum += np.bincount(where, weights=error, minlength=40)
        self.count += np.bincount(where, minlength=40)
        signed = np.clip((pred - gt) / gt, ERROR_BINS[0], ERROR_BINS[-1])
        self.histogram += np.histogram(signed, ERROR_BINS)[0]

    def as_dict(self) -> dict[str, list[float]]:
        with np.errstate(invalid='ignore', divide='ignore'):
            abs_rel = np.where(self.count > 0, self.abs_rel_sum / self.count, np.nan)
            abs_err = np.where(self.count > 0, self.abs_err_sum / self.count, np.nan)
        return {'depth_edges_m': self.depth_edges.tolist(), 'abs_rel_by_depth': abs_rel.tolist(),
                'abs_err_m_by_depth': abs_err.tolist(), 'pixels_by_depth': self.count.tolist(),
                'error_edges': ERROR_BINS.tolist(), 'error_histogram': self.histogram.tolist()}


class _Scorer:
    """Accumulates per-frame metrics overall, per domain and per depth range."""

    def __init__(self, settings: BagEvalSettings) -> None:
        self.settings = settings
        low, high = settings.min_depth, settings.max_depth
        self.overall = DepthMetrics(low, high, settings.crop)
        self.domains: dict[str, DepthMetrics] = {}
        edges = settings.edges
        self.ranges = [(a, b, DepthMetrics(low, high, settings.crop))
                       for a, b in zip(edges, edges[1:])]
        self.pixels = _PixelStats(low, high)

    def score(self, pred: np.ndarray, gt: np.ndarray, domain: str) -> tuple[dict | None, int]:
        """Metrics of one frame (None without valid pixels) and its valid pixel count.

        Same rules as ``metrics.image_metrics`` (resize, clamp, range mask, crop), computed once
        and reused for the depth range bins, which partition the valid pixels.
        """
        cfg = self.settings
        pairs = valid_pairs(pred, gt, cfg.min_depth, cfg.max_depth, cfg.crop)
        if pairs is None:
            self.overall.skipped += 1
            return None, 0
        gt_valid, pred_valid = pairs
        values = compute_errors(gt_valid, pred_valid)
        self.overall.add(values)
        self.domains.setdefault(domain, DepthMetrics(cfg.min_depth, cfg.max_depth)).add(values)
        self.pixels.add(gt_valid, pred_valid)
        for low, high, metrics in self.ranges:
            inside = (gt_valid >= low) & (gt_valid < high)
            if inside.any():
                metrics.add(compute_errors(gt_valid[inside], pred_valid[inside]))
        return values, int(gt_valid.size)

    def tables(self) -> dict[str, Any]:
        """'overall', 'per_domain' and 'per_range' of what was scored."""
        return {'overall': self.overall.compute(),
                'per_domain': {name: {'frames': m.count, **m.compute()}
                               for name, m in sorted(self.domains.items())},
                'per_range': [{'low_m': low, 'high_m': high, 'frames': m.count, **m.compute()}
                              for low, high, m in self.ranges]}

    def fill(self, report: BagEvalReport) -> None:
        tables = self.tables()
        report.overall = tables['overall']
        report.per_domain = tables['per_domain']
        report.per_range = tables['per_range']
        report.pixel_stats = self.pixels.as_dict()


FrameCallback = Callable[[RgbdFrame, FrameOutputs, FrameRecord], None]
"""Called after each frame with (frame, outputs, record): progress bars, sample panels."""


def evaluate_bag(estimator: DepthEstimator, path: Path | str, settings: BagEvalSettings,
                 out_bag: AtomicBagWriter | None = None,
                 on_frame: FrameCallback | None = None,
                 copy_input: bool = True) -> BagEvalReport:
    """Predict every colour frame of a bag, score the paired ones, optionally write outputs.

    Args:
        estimator: the depth estimator.
        path: rosbag2 directory.
        settings: topics, protocol and output options.
        out_bag: open writer receiving the original messages and the predictions; the caller
            commits it (or aborts it on error) after this returns.
        on_frame: per-frame callback.
        copy_input: copy every original message into ``out_bag`` (off for the second and
            later cameras of one bag: the first copied them).

    Raises:
        BagError: see :func:`zoedepth_ros.io.bags.read_rgbd`; also when no colour frame
            had a usable ground truth pixel.
    """
    start = time.perf_counter()
    with open_bag(path) as reader:
        source = camera_info_source(reader, settings.topics)
    settings = replace(settings, topics=replace(settings.topics, camera_info=source.topic))
    report = BagEvalReport(getattr(estimator, 'name', type(estimator).__name__), str(path),
                           _settings_dict(settings))
    options = settings.frame
    report.camera = {'camera_info_topic': source.topic, 'source': source.reason,
                     'fov_deg': options.fov_deg, 'assumed_fov_frames': 0}
    scorer, raw_scorer = _Scorer(settings), _Scorer(settings)
    copy = None if out_bag is None or not copy_input else copier(out_bag, settings.namespace)
    track = (None if settings.sparse_topic is None else
             read_sparse(path, settings.sparse_topic, options.anchor.extrinsic))
    aligners = HeadAligners(options.anchor)
    # the std serves the report's panels; the other optional outputs only the output bag
    request = FrameRequest.of(options, lambda key: key == 'std' or out_bag is not None,
                              keep_unaligned=track is not None, keep_ungated=True)
    for frame in read_rgbd(path, settings.topics, on_message=copy):
        if settings.max_frames and frame.index >= settings.max_frames:
            break
        height, width = frame.rgb.shape[:2]
        report.camera['assumed_fov_frames'] += frame.camera_info is None
        info = frame_camera_info(frame.camera_info, width, height, options.fov_deg)
        assert info is not None  # fov_deg > 0 (checked in BagEvalSettings)
        anchor = None if track is None else _anchor(track, frame, info.camera, aligners)
        outputs = predict_frame(estimator, frame.rgb, info, options, request, anchor)
        values, pixels, unaligned = None, 0, None
        if frame.depth_m is not None and outputs.ungated_depth_m is not None:
            values, pixels = scorer.score(outputs.ungated_depth_m, frame.depth_m,
                                          outputs.domain)
            if outputs.unaligned_depth_m is not None:
                unaligned, _ = raw_scorer.score(outputs.unaligned_depth_m, frame.depth_m,
                                                outputs.domain)
        record = _record(frame, outputs, values, pixels)
        record.unaligned = unaligned
        report.frames.append(record)
        if out_bag is not None:
            write_outputs(out_bag, settings.namespace, frame, outputs.encoded(options),
                          options.frame_id)
        if on_frame is not None:
            on_frame(frame, outputs, record)
    if settings.topics.depth is not None and report.evaluated == 0:
        raise BagError(f'{path}: {report.paired} frame(s) paired with {settings.topics.depth} '
                       f'but none has ground truth inside {settings.min_depth}..'
                       f'{settings.max_depth} m; check --min-depth/--max-depth and the units')
    scorer.fill(report)
    if track is not None:
        report.unaligned = raw_scorer.tables()
    report.seconds = time.perf_counter() - start
    report.out_bag = None if out_bag is None else str(out_bag.path)
    return report


def _anchor(track: SampleStream, frame: RgbdFrame, camera: PinholeCamera,
            aligners: HeadAligners) -> Anchor:
    samples, _ = track.samples_for(frame.stamp_ns, aligners.options.tolerance_ns, camera)
    return Anchor(aligners, samples, frame.stamp_ns * 1e-9)


def _record(frame: RgbdFrame, result: FrameOutputs, values: dict[str, float] | None,
            pixels: int) -> FrameRecord:
    offset = frame.depth_offset_ns
    fit = result.alignment
    alignment: dict[str, float | str] | None = None if fit is None else {
        'scale': fit.scale, 'shift': fit.shift, 'frame_scale': fit.frame_scale,
        'coverage': fit.coverage,
        'samples': fit.samples, 'inliers': fit.inliers, 'status': fit.status}
    return FrameRecord(frame.index, frame.stamp_ns, frame.depth_m is not None,
                       None if offset is None else offset * 1e-6, result.domain,
                       float(result.domain_probs.get(result.domain, 1.0)), pixels, values,
                       float(result.timings_ms.get('model', math.nan)), None, alignment,
                       result.routed_domain)


def _settings_dict(settings: BagEvalSettings) -> dict[str, Any]:
    data = asdict(settings)
    data['range_edges'] = list(settings.edges)
    if settings.sparse_topic is None:
        data.pop('sparse_topic')
        data['frame'].pop('anchor')
    return data


def metric_row(values: dict[str, float] | None) -> list[str]:
    """Formatted METRIC_KEYS values ('' when missing) for tables and CSV."""
    return ['' if values is None else f'{values[key]:.6g}' for key in METRIC_KEYS]
