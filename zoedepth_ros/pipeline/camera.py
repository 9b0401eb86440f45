"""One camera stream through the model, without rclpy: the node is a thin adapter around it.

:class:`CameraPipeline` owns what happens between the subscriptions and the publishers: it
decodes each input once (image or compressed image, camera_info, sparse depth or points),
pairs images with camera_info (newest, or nearest in stamp within a slop), keeps only the
newest frame while the model is busy (a frame replaced while waiting counts as dropped), makes
each frame's job for :func:`~zoedepth_ros.pipeline.predict.predict_frames` with the stream's
sparse samples, counts everything (:class:`~zoedepth_ros.pipeline.stats.StreamStats`) and
hands each frame's encoded outputs to a :class:`Sink`. A
:class:`~zoedepth_ros.pipeline.worker.BatchWorker` runs the model: the stream's own, or one
shared by a camera group (several cameras, one model). Messages are read by their fields, so
rclpy messages and rosbags dataclasses both serve.

States: built (inputs ignored) -> :meth:`load` (a model) -> :meth:`start` (serving) ->
:meth:`stop` -> :meth:`start` ... -> :meth:`unload`. The lifecycle node maps its transitions
onto them; the plain node loads and starts at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from zoedepth_ros.anchoring import Anchor, HeadAligners, SampleStream, SparseSamples
from zoedepth_ros.anchoring.samples import Transform
from zoedepth_ros.errors import InputError, ZoeDepthError
from zoedepth_ros.geometry import rigid_transform
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io import messages
from zoedepth_ros.io.messages import CameraInfoFields
from zoedepth_ros.pipeline.options import StreamOptions
from zoedepth_ros.pipeline.outputs import OUTPUTS, EncodedOutput, FrameOutputs, FrameRequest
from zoedepth_ros.pipeline.predict import FrameJob, frame_camera_info, predict_frames
from zoedepth_ros.pipeline.stats import StreamStats
from zoedepth_ros.pipeline.sync import Frame, LatestSlot, StampMatcher
from zoedepth_ros.pipeline.worker import BatchWorker, Log
from zoedepth_ros.pointcloud import cloud_xyz


class Sink(Protocol):
    """Where a stream's outputs go (the node's publishers)."""

    def listening(self, key: str) -> bool:
        """Whether output ``key`` (``pipeline.outputs.OUTPUTS``) has a subscriber."""

    def publish(self, encoded: dict[str, EncodedOutput], stamp_ns: int, frame_id: str) -> None:
        """One frame's encoded outputs, with its input's stamp and the output frame id."""


class CameraPipeline:
    """One camera stream (see the module docstring).

    Args:
        options: how the stream is received and each frame computed.
        sink: where the outputs go.
        log: where warnings go.
        names: (image topic, camera_info topic) as the user knows them, for messages.
        lookup: transform of clouds in another frame than the camera's (tf2 in the node),
            used unless the fixed extrinsic is enabled.
        clock_ns: now in nanoseconds, for the age of each output's stamp.
    """

    def __init__(self, options: StreamOptions, sink: Sink, log: Log,
                 names: tuple[str, str] = ('image', 'camera_info'),
                 lookup: Transform | None = None,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.options, self.sink, self.log, self.names = options, sink, log, names
        self.clock_ns = clock_ns
        self.estimator: DepthEstimator | None = None
        self.stats = StreamStats()
        self._lookup = lookup
        self.sparse = SampleStream(transform=self._to_optical)
        self.aligners = HeadAligners(options.frame.anchor)
        self._matcher = None if options.sync_mode == 'cache' else StampMatcher(options.slop_ns)
        self._info: CameraInfoFields | None = None
        self._last_stamp: int | None = None
        self._warned: set[str] = set()
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._wake: threading.Event | None = None
        self._worker: BatchWorker | None = None

    # ------------------------------------------------------------------ states

    def load(self, estimator: DepthEstimator, announce: bool = True) -> None:
        """Give the stream its model (``announce``: log the model's warning); a sparse-guided
        head selection it cannot serve fails here (InputError)."""
        if self.options.frame.anchor.head_selection == 'sparse' and not estimator.has_all_heads:
            raise InputError(f'anchor.head_selection sparse needs both heads of the model; '
                             f'{estimator.name} ({estimator.kind}) returns the routed one only')
        self.estimator = estimator
        if estimator.warning and announce:
            self.log.warning(estimator.warning)

    def unload(self) -> None:
        """Stop and release the model."""
        self.stop()
        self.estimator = None

    @property
    def serving(self) -> bool:
        """Whether a worker takes this stream's frames (its own, or a camera group's)."""
        return self._wake is not None

    def start(self) -> None:
        """Serve inputs from now on, with a worker thread of its own (a camera group starts
        one worker for all its streams instead)."""
        if self.estimator is None:
            raise InputError('the stream has no model: load() one first')
        if self._worker is None:
            self._worker = BatchWorker([self], self.estimator, self.log)
            self._worker.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop serving; a frame still in the model after ``timeout_s`` is abandoned."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(timeout_s)

    def attach(self, wake: threading.Event) -> None:
        """Accept frames from now on, setting ``wake`` for the worker when one waits."""
        self._slot = LatestSlot()
        self._wake = wake

    def detach(self) -> None:
        self._wake = None

    def configure(self, options: StreamOptions) -> None:
        """Apply run-time changes (the anchoring smoothing keeps its state)."""
        self.options = options
        self.aligners.configure(options.frame.anchor)
        if self._matcher is not None:
            self._matcher.slop_ns = options.slop_ns

    # ------------------------------------------------------------------ inputs

    def on_image(self, msg: Any) -> None:
        """An Image (or CompressedImage with the compressed transport)."""
        if not self.serving:
            return
        self.stats.count('received')
        opts = self.options
        if not opts.always_run and not any(self.sink.listening(o.key) for o in OUTPUTS):
            self.stats.count('idle_skipped')
            return
        try:
            frame = self._decode(msg)
        except ZoeDepthError as err:
            self.reject(err)
            return
        if not frame.frame_id.endswith(('_optical_frame', '_optical')):
            self._warn_once('frame', f'frame_id {frame.frame_id!r} is not an optical frame '
                            '(z forward, x right, y down); clouds will look rotated')
        matcher = self._matcher
        if matcher is None or (not matcher.has_infos and opts.frame.fov_deg > 0):
            frame.info = self._info  # None until a camera_info arrives (then fov_deg serves)
            self._hand_over(frame)
            return
        self._matched(matcher, lambda: matcher.add_image(frame.stamp_ns, frame), frame.stamp_ns)

    def on_camera_info(self, msg: Any) -> None:
        try:
            fields = messages.camera_info_fields(msg)  # parsed once per message
        except ZoeDepthError as err:
            self.reject(err)
            return
        if self._matcher is None:
            self._info = fields
            return
        matcher, stamp = self._matcher, messages.stamp_ns(msg.header)
        self._matched(matcher, lambda: matcher.add_info(stamp, fields), stamp)

    def on_sparse_depth(self, msg: Any) -> None:
        """A sparse depth Image aligned with the camera (ToF, projected lidar)."""
        try:
            samples = SparseSamples.from_depth_image(messages.depth_image_from_msg(msg))
            self.sparse.add_samples(messages.stamp_ns(msg.header), samples)
        except ZoeDepthError as err:
            self.reject(err)

    def on_sparse_points(self, msg: Any) -> None:
        """A sparse PointCloud2, brought into the optical frame when possible."""
        try:
            self.sparse.add_points(messages.stamp_ns(msg.header), cloud_xyz(msg),
                                   str(msg.header.frame_id), self.options.frame.frame_id or None)
        except ZoeDepthError as err:
            self.reject(err)

    def _to_optical(self, xyz: np.ndarray, source: str, target: str | None,
                    stamp_ns: int) -> np.ndarray | None:
        """The fixed extrinsic while enabled (a run-time parameter), else the lookup."""
        extrinsic = self.options.frame.anchor.extrinsic
        if extrinsic.enabled:
            return rigid_transform(xyz, extrinsic.translation, extrinsic.rotation)
        return None if self._lookup is None else self._lookup(xyz, source, target, stamp_ns)

    def reject(self, err: ZoeDepthError) -> None:
        """Count and report (throttled) an input that cannot be used."""
        self.stats.count('malformed')
        self.log.warning(f'dropped input: {err}', throttle_duration_sec=2.0)

    def _decode(self, msg: Any) -> Frame:
        """Image or CompressedImage -> Frame (RGB uint8); InputError for bad or late input."""
        stamp = messages.stamp_ns(msg.header)
        last, self._last_stamp = self._last_stamp, stamp
        if last is not None and stamp < last:
            raise InputError(f'image stamp {stamp * 1e-9:.6f} s is older than the previous '
                             f'{last * 1e-9:.6f} s (stamps must not go backwards)')
        opts = self.options
        decode = (messages.compressed_to_rgb if opts.input_transport == 'compressed'
                  else messages.image_to_rgb)
        frame_id = opts.frame.frame_id or str(msg.header.frame_id)
        return Frame(stamp, frame_id, decode(msg, opts.max_input_pixels))

    def _matched(self, matcher: StampMatcher, add: Callable[[], Any], stamp_ns: int) -> None:
        """Run a matcher step; hand over a completed pair, count and report dropped images."""
        before = matcher.unmatched
        pair = add()
        if matcher.unmatched > before:
            self.stats.count('dropped', matcher.unmatched - before)
            window = ('the same stamp' if self.options.sync_mode == 'exact'
                      else f'sync_slop_s={self.options.sync_slop_s} s')
            self.log.warning(
                f'no camera_info with {window} as the images on {self.names[0]} (stamp '
                f'{stamp_ns * 1e-9:.3f} s, newest camera_info on {self.names[1]} '
                f'{matcher.newest_info_s:.3f} s): frames dropped', throttle_duration_sec=5.0)
        if pair is not None:
            pair[0].info = pair[1]
            self._hand_over(pair[0])

    def _hand_over(self, frame: Frame) -> None:
        if self._slot.put(frame):
            self.stats.count('dropped')
        wake = self._wake
        if wake is not None:
            wake.set()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(message)

    # ------------------------------------------------------------------ frames

    def take(self) -> Frame | None:
        """The newest waiting frame (removed from the slot), or None."""
        return self._slot.take_nowait()

    def prepare(self, frame: Frame) -> FrameJob | None:
        """The frame's job for the model: intrinsics, what to compute, the sparse samples
        (None while there are no intrinsics)."""
        if self.estimator is None:
            raise InputError('the stream has no model')
        options = self.options.frame
        height, width = frame.rgb.shape[:2]
        info = self._camera_info(frame, width, height)
        if info is None:
            return None
        return FrameJob(frame.rgb, info, options, FrameRequest.of(options, self.sink.listening),
                        self._anchor(frame, info))

    def finish(self, frame: Frame, outputs: FrameOutputs) -> None:
        """Publish the frame's outputs and count them."""
        self.sink.publish(outputs.encoded(self.options.frame), frame.stamp_ns, frame.frame_id)
        age_s = (self.clock_ns() - frame.stamp_ns) * 1e-9
        self.stats.record_output(outputs, age_s)
        self.log.debug(f'frame {frame.stamp_ns}: {outputs.timings_ms}, age {age_s:.3f} s')

    def process(self, frame: Frame) -> FrameOutputs | None:
        """Run one frame through the model and hand its outputs to the sink (None when it
        has no intrinsics yet); the worker does the same for a batch of streams."""
        job = self.prepare(frame)
        if job is None or self.estimator is None:
            return None
        outputs = predict_frames(self.estimator, [job])[0]
        self.finish(frame, outputs)
        return outputs

    def _camera_info(self, frame: Frame, width: int, height: int) -> CameraInfoFields | None:
        fov = self.options.frame.fov_deg
        self.stats.fallback_intrinsics = frame.info is None and fov > 0
        fields = frame_camera_info(frame.info, width, height, fov)
        if fields is None:
            self.stats.count('no_camera_info')
            self.log.warning('no camera_info received yet (fov_deg is 0.0): dropping images',
                             throttle_duration_sec=5.0)
        elif frame.info is None:
            self._warn_once('fov', f'no camera_info yet: intrinsics from fov_deg {fov}')
        elif any(frame.info.d):
            self._warn_once('distortion', 'camera_info has non-zero distortion: feed a '
                            'rectified image (image_rect) or clouds will bend')
        return fields

    def _anchor(self, frame: Frame, info: CameraInfoFields) -> Anchor | None:
        """The frame's metric anchoring input, once sparse messages have arrived."""
        anchor = self.options.frame.anchor
        if not anchor.enabled or not len(self.sparse):
            return None
        samples, foreign = self.sparse.samples_for(frame.stamp_ns, anchor.tolerance_ns,
                                                   info.camera, frame.frame_id)
        if foreign is not None:
            self._warn_once('sparse_frame', f'sparse_points are in frame {foreign!r}, not the '
                            f'camera optical frame {frame.frame_id!r}, and no transform is '
                            'known (set anchor.extrinsic.* or run tf2): clouds not used')
        return Anchor(self.aligners, samples, frame.stamp_ns * 1e-9)


class CameraGroup:
    """Several camera streams, one model, one :class:`BatchWorker`: when the model is free,
    the newest waiting frame of every camera goes through it as one batch (with ``workers``
    threads, each takes its share of the cameras: see BatchWorker).

    The same states as one :class:`CameraPipeline` (load -> start -> stop -> unload).
    """

    def __init__(self, pipelines: Sequence[CameraPipeline], log: Log, workers: int = 1) -> None:
        if not pipelines:
            raise InputError('a camera group needs at least one camera')
        self.pipelines, self.log, self.workers = list(pipelines), log, workers
        self.estimator: DepthEstimator | None = None
        self.worker: BatchWorker | None = None

    def load(self, estimator: DepthEstimator) -> None:
        for index, pipeline in enumerate(self.pipelines):
            pipeline.load(estimator, announce=index == 0)
        self.estimator = estimator

    def start(self) -> None:
        if self.estimator is None:
            raise InputError('the camera group has no model: load() one first')
        if self.worker is None:
            self.worker = BatchWorker(self.pipelines, self.estimator, self.log, self.workers)
            self.worker.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop(timeout_s)

    def unload(self) -> None:
        self.stop()
        for pipeline in self.pipelines:
            pipeline.unload()
        self.estimator = None
