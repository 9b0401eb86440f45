"""ROS 2 depth node: camera image in; metric depth, CameraInfo, cloud, std, domain out.

Subscribes ``image`` (or ``<image>/compressed``) and ``camera_info``, and (metric anchoring,
optional) ``sparse_depth`` and ``sparse_points``; publishes, with the input header,
``depth/image``, ``depth/camera_info``, ``points``, ``depth/std``, ``depth/preview``,
``domain``, ``depth/alignment`` (once sparse samples arrive) and ``/diagnostics``. Callbacks
only convert and hand the newest frame to one worker thread (newest frame wins: a waiting
frame that gets replaced counts as dropped), which runs the model and publishes. Run:
``depth_node --ros-args --params-file config/depth.yaml -r image:=/camera/image_raw
-r camera_info:=/camera/camera_info``.
"""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Float32MultiArray, Header, String

from zoedepth_ros.anchoring import Anchor
from zoedepth_ros.errors import InputError, ZoeDepthError
from zoedepth_ros.frame import (
    OUTPUT_TOPICS,
    FrameOptions,
    frame_camera_info,
    predict_frame,
)
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io import messages
from zoedepth_ros.model.weights import progress_reporter
from zoedepth_ros.pointcloud import CloudOptions
from zoedepth_ros.ros import convert
from zoedepth_ros.ros.anchoring import SparseInputs
from zoedepth_ros.ros.config import NodeConfig
from zoedepth_ros.ros.diagnostics import NodeStats, diagnostic_array
from zoedepth_ros.ros.entry import run_node
from zoedepth_ros.ros.parameters import declare_node_parameters, on_set_parameters
from zoedepth_ros.ros.sync import Frame, LatestSlot, StampMatcher

MESSAGE_TYPES = {'depth': Image, 'info': CameraInfo, 'points': PointCloud2, 'std': Image,
                 'preview': Image, 'domain': String, 'alignment': Float32MultiArray}


class DepthNode(Node):
    """Monocular metric depth node (see module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('depth_node', **kwargs)
        self.config = declare_node_parameters(self)
        self.add_on_set_parameters_callback(
            on_set_parameters(lambda: self.config, self._set_config))
        self._configure()
        self._activate()

    def _configure(self) -> None:
        """Load the model, reset the state and create the publishers (lifecycle: configure)."""
        cfg = self.config
        self.estimator = DepthEstimator.from_pretrained(
            cfg.model, cfg.model_config or None, cfg.random_weights,
            onnx_providers=cfg.providers or None,
            progress=progress_reporter(self.get_logger().info, cfg.model), device=cfg.device,
            precision=cfg.precision, preprocess=cfg.preprocess, flip=cfg.flip,
            domain=cfg.domain, compile=cfg.compile)
        if self.estimator.warning:
            self.get_logger().warning(self.estimator.warning)
        self.stats = NodeStats()
        self._matcher = None if cfg.sync_mode == 'cache' else StampMatcher(
            0 if cfg.sync_mode == 'exact' else int(cfg.sync_slop_s * 1e9))
        self._info: Any | None = None
        self._last_stamp: int | None = None
        self._warned: set[str] = set()
        self._sparse = None if cfg.anchor.mode == 'off' else SparseInputs(cfg.anchor, self)
        if not hasattr(self, '_pubs'):  # created once: QoS override parameters are declared
            self._create_interfaces(cfg)

    def _create_interfaces(self, cfg: NodeConfig) -> None:
        """Reliable depth-1 publishers, sensor-data subscriptions, the diagnostics timer."""
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        overrides = QoSOverridingOptions.with_default_policies()
        self._pubs = {key: self.create_publisher(MESSAGE_TYPES[key], topic, reliable,
                                                 qos_overriding_options=overrides)
                      for key, topic in OUTPUT_TOPICS.items()}
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        sensor = QoSProfile(depth=1, reliability=qos_profile_sensor_data.reliability,
                            durability=qos_profile_sensor_data.durability)
        compressed = cfg.input_transport == 'compressed'
        # Like image_transport: the compressed topic hangs below the resolved image topic.
        image_topic = self.resolve_topic_name('image') + ('/compressed' if compressed else '')
        self.create_subscription(CompressedImage if compressed else Image, image_topic,
                                 self._on_image, sensor, qos_overriding_options=overrides)
        self.create_subscription(CameraInfo, 'camera_info', self._on_info,
                                 qos_profile_sensor_data, qos_overriding_options=overrides)
        self._topics = (image_topic, self.resolve_topic_name('camera_info'))
        if cfg.anchor.mode != 'off':
            self.create_subscription(Image, 'sparse_depth', self._on_sparse_depth, sensor,
                                     qos_overriding_options=overrides)
            self.create_subscription(PointCloud2, 'sparse_points', self._on_sparse_points,
                                     sensor, qos_overriding_options=overrides)
        self.create_timer(cfg.diagnostics.period_s, self._publish_diagnostics)

    def _activate(self) -> None:
        """Start the worker; inputs are served from now on (lifecycle: activate)."""
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = threading.Thread(
            target=self._work, name='depth_worker', daemon=True)
        self._worker.start()
        cfg = self.config
        self.get_logger().info(
            f'model {self.estimator.name} on {self.estimator.device} ({cfg.precision}); '
            f'{self._topics[0]} + {self._topics[1]} ({cfg.sync_mode}) -> '
            f'{self.resolve_topic_name("depth/image")} ({cfg.output_encoding}), '
            f'{self.resolve_topic_name("points")}, {self.resolve_topic_name("domain")}')

    def _deactivate(self) -> None:
        """Stop the worker; inputs are ignored until activated again."""
        worker, self._worker = getattr(self, '_worker', None), None
        if worker is not None:
            self._stop.set()
            self._slot.close()
            # Within launch's sigterm_timeout (5 s): a frame still in the model is abandoned.
            worker.join(timeout=3.0)
            if worker.is_alive():
                self.get_logger().warning('the worker is still in a frame: not waiting for it')

    def _set_config(self, config: NodeConfig) -> None:
        self.config = config
        if getattr(self, '_sparse', None) is not None:
            self._sparse.configure(config.anchor)
        if getattr(self, '_matcher', None) is not None and config.sync_mode == 'approx':
            self._matcher.slop_ns = int(config.sync_slop_s * 1e9)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(message)

    def _reject(self, err: ZoeDepthError) -> None:
        self.stats.count('malformed')
        self.get_logger().warning(f'dropped input: {err}', throttle_duration_sec=2.0)

    def _wanted(self, key: str) -> bool:
        return self._pubs[key].get_subscription_count() > 0

    # ------------------------------------------------------------------ callbacks

    def _on_image(self, msg: Any) -> None:
        if getattr(self, '_worker', None) is None:  # not active (lifecycle)
            return
        self.stats.count('received')
        cfg = self.config
        if not cfg.always_run and not any(self._wanted(key) for key in OUTPUT_TOPICS):
            self.stats.count('idle_skipped')
            return
        try:
            frame = self._decode(msg)
        except ZoeDepthError as err:
            self._reject(err)
            return
        frame_id = cfg.frame_id or msg.header.frame_id
        if not frame_id.endswith(('_optical_frame', '_optical')):
            self._warn_once('frame', f'frame_id {frame_id!r} is not an optical frame '
                            '(z forward, x right, y down); clouds will look rotated')
        if self._matcher is None or (not self._matcher.has_infos and cfg.fov_deg > 0):
            frame.info = self._info  # None until a camera_info arrives (then fov_deg serves)
            self._hand_over(frame)
            return
        self._matched(lambda: self._matcher.add_image(frame.stamp_ns, frame), frame.stamp_ns)

    def _matched(self, add: Any, stamp_ns: int) -> None:
        """Run a matcher step; hand over a completed pair, count and report dropped images."""
        before = self._matcher.unmatched
        pair = add()
        if self._matcher.unmatched > before:
            self.stats.count('dropped', self._matcher.unmatched - before)
            window = ('the same stamp' if self.config.sync_mode == 'exact'
                      else f'sync_slop_s={self.config.sync_slop_s} s')
            self.get_logger().warning(
                f'no camera_info with {window} as the images on {self._topics[0]} (stamp '
                f'{stamp_ns * 1e-9:.3f} s, newest camera_info on {self._topics[1]} '
                f'{self._matcher.newest_info_s:.3f} s): frames dropped',
                throttle_duration_sec=5.0)
        if pair is not None:
            pair[0].info = pair[1]
            self._hand_over(pair[0])

    def _decode(self, msg: Any) -> Frame:
        """Image or CompressedImage -> Frame (RGB uint8); InputError for bad or late input."""
        stamp = messages.stamp_ns(msg.header)
        last, self._last_stamp = self._last_stamp, stamp
        if last is not None and stamp < last:
            raise InputError(f'image stamp {stamp * 1e-9:.6f} s is older than the previous '
                             f'{last * 1e-9:.6f} s (stamps must not go backwards)')
        decode = (messages.compressed_to_rgb if isinstance(msg, CompressedImage)
                  else messages.image_to_rgb)
        return Frame(msg.header, stamp, decode(msg, self.config.max_input_pixels))

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            fields = messages.camera_info_fields(msg)  # parsed once per message
        except ZoeDepthError as err:
            self._reject(err)
            return
        if self._matcher is None:
            self._info = fields
            return
        stamp = messages.stamp_ns(msg.header)
        self._matched(lambda: self._matcher.add_info(stamp, fields), stamp)

    def _on_sparse_depth(self, msg: Image) -> None:
        if self._sparse is None:
            return
        try:
            self._sparse.add_depth(msg)
        except ZoeDepthError as err:
            self._reject(err)

    def _on_sparse_points(self, msg: PointCloud2) -> None:
        if self._sparse is None:
            return
        try:
            self._sparse.add_points(msg, self.config.frame_id or None)
        except ZoeDepthError as err:
            self._reject(err)

    def _hand_over(self, frame: Frame) -> None:
        if self._slot.put(frame):
            self.stats.count('dropped')

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while not self._stop.is_set():
            frame = self._slot.take(0.2)
            if frame is None:
                continue
            try:
                self._process(frame)
            except ZoeDepthError as err:
                self._reject(err)
            except Exception as err:  # noqa: BLE001 - the worker must outlive one bad frame
                if self._stop.is_set() or not self.context.ok():
                    return
                self.get_logger().error(f'processing a frame failed: {err!r}\n'
                                        f'{traceback.format_exc()}', throttle_duration_sec=2.0)

    def _camera_info(self, frame: Frame, width: int,
                     height: int) -> messages.CameraInfoFields | None:
        cfg = self.config
        self.stats.fallback_intrinsics = frame.info is None and cfg.fov_deg > 0
        fields = frame_camera_info(frame.info, width, height, cfg.fov_deg)
        if fields is None:
            self.stats.count('no_camera_info')
            self.get_logger().warning('no camera_info received yet (fov_deg is 0.0): '
                                      'dropping images', throttle_duration_sec=5.0)
        elif frame.info is None:
            self._warn_once('fov', f'no camera_info yet: intrinsics from fov_deg {cfg.fov_deg}')
        elif any(frame.info.d):
            self._warn_once('distortion', 'camera_info has non-zero distortion: feed a '
                            'rectified image (image_rect) or clouds will bend')
        return fields

    def _frame_options(self) -> FrameOptions:
        """What this frame needs: only outputs somebody subscribes to are computed."""
        cfg = self.config
        cloud = None
        if cfg.cloud.enabled and self._wanted('points'):
            cloud = CloudOptions(cfg.cloud.stride, cfg.cloud.organized, cfg.cloud.color)
        return FrameOptions(cfg.min_range, cfg.max_range, cfg.max_rel_std,
                            cfg.publish_std and self._wanted('std'), cloud, cfg.output_encoding,
                            cfg.publish_preview and self._wanted('preview'),
                            cfg.focal.enabled,
                            (cfg.focal.reference_indoor, cfg.focal.reference_outdoor))

    def _anchor(self, frame: Frame, info: messages.CameraInfoFields) -> Anchor | None:
        """The frame's metric anchoring input, once sparse messages have arrived."""
        sparse = self._sparse
        if sparse is None or not sparse.active:
            return None
        camera_frame = self.config.frame_id or frame.header.frame_id
        samples, foreign = sparse.samples_for(frame.stamp_ns, info.camera, camera_frame)
        if foreign is not None:
            self._warn_once('sparse_frame', f'sparse_points are in frame {foreign!r}, not the '
                            f'camera optical frame {camera_frame!r}, and no transform is known '
                            '(set anchor.extrinsic.* or run tf2): clouds not used')
        return Anchor(sparse.aligners, samples, frame.stamp_ns * 1e-9)

    def _process(self, frame: Frame) -> None:
        height, width = frame.rgb.shape[:2]
        info = self._camera_info(frame, width, height)
        if info is None:
            return
        options = self._frame_options()
        result = predict_frame(self.estimator, frame.rgb, info, options,
                               self._anchor(frame, info))
        header = frame.header
        if self.config.frame_id:
            header = Header(stamp=header.stamp, frame_id=self.config.frame_id)
        for key, fields in result.encoded(options).items():
            self._pubs[key].publish(convert.to_message(fields, header))
        age_s = (self.get_clock().now().nanoseconds - frame.stamp_ns) * 1e-9
        self.stats.record_output(result.timings_ms.get('model', float('nan')), age_s,
                                 result.domain, result.domain_probs.get(result.domain, 1.0),
                                 result.alignment)
        self.get_logger().debug(f'frame {frame.stamp_ns}: {result.timings_ms}, age {age_s:.3f} s')

    def _publish_diagnostics(self) -> None:
        if self.estimator is None:  # cleaned up (lifecycle)
            return
        device = self.estimator.device
        info = {'model': self.estimator.name, 'model_kind': self.estimator.kind,
                'device': str(device), 'precision': self.config.precision,
                'sync_mode': self.config.sync_mode}
        snapshot = self.stats.snapshot(self.config.diagnostics.period_s)
        self._diagnostics.publish(diagnostic_array(
            snapshot, f'{self.get_fully_qualified_name()}: depth', str(device), info,
            self.get_clock().now().to_msg(), self.estimator.warning))

    def destroy_node(self) -> None:
        self._deactivate()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point ``depth_node``: 0 on SIGINT/SIGTERM, 2 on bad parameters (see run_node)."""
    return run_node(DepthNode, args)


if __name__ == '__main__':
    sys.exit(main())
