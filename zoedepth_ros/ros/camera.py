"""The ROS side of one camera stream: topics around a :class:`CameraPipeline`.

:class:`RosCamera` creates, on any node (plain or lifecycle), the publishers of every output
in ``pipeline.outputs.OUTPUTS`` (reliable, depth 1, QoS overridable), the sensor-data
subscriptions (``image`` or ``image/compressed``, ``camera_info``, ``sparse_depth``,
``sparse_points``) that forward to the pipeline, the ``/diagnostics`` timer and the parameter
callback; it is the pipeline's :class:`~zoedepth_ros.pipeline.camera.Sink`.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from zoedepth_ros.anchoring.samples import Transform
from zoedepth_ros.pipeline.builder import output_messages
from zoedepth_ros.pipeline.camera import CameraPipeline
from zoedepth_ros.pipeline.options import StreamOptions
from zoedepth_ros.pipeline.outputs import OUTPUTS, EncodedOutput
from zoedepth_ros.ros import convert
from zoedepth_ros.ros.config import NodeConfig
from zoedepth_ros.ros.diagnostics import diagnostic_array
from zoedepth_ros.ros.transforms import tf2_lookup


class RosCamera:
    """Publishers, subscriptions and diagnostics of one camera stream on ``node``.

    Args:
        node: the node (plain or lifecycle).
        config: the node's configuration (model, diagnostics period).
        stream: this camera's stream options (default: the node's).
        name: the camera's name: its topics live under ``<name>/`` (empty: the node's own
            namespace, as the one-camera node).
        lookup: the transform lookup of sparse clouds (default: a tf2 listener of its own
            when anchoring is on).
    """

    def __init__(self, node: Node, config: NodeConfig, stream: StreamOptions | None = None,
                 name: str = '', lookup: Transform | None = None) -> None:
        self.node, self.config, self.name = node, config, name
        stream = config.stream if stream is None else stream
        self.topic = (lambda topic: f'{name}/{topic}') if name else (lambda topic: topic)
        overrides = QoSOverridingOptions.with_default_policies()
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.publishers: dict[str, Publisher] = {
            output.key: node.create_publisher(convert.message_class(output.msgtype),
                                              self.topic(output.topic), reliable,
                                              qos_overriding_options=overrides)
            for output in OUTPUTS}
        compressed = stream.input_transport == 'compressed'
        # Like image_transport: the compressed topic hangs below the resolved image topic.
        image_topic = (node.resolve_topic_name(self.topic('image'))
                       + ('/compressed' if compressed else ''))
        names = (image_topic, node.resolve_topic_name(self.topic('camera_info')))
        anchor = stream.frame.anchor
        if lookup is None and anchor.enabled:
            lookup = tf2_lookup(node)
        self.pipeline = CameraPipeline(stream, self, node.get_logger(), names, lookup,
                                       lambda: node.get_clock().now().nanoseconds)
        sensor = QoSProfile(depth=1, reliability=qos_profile_sensor_data.reliability,
                            durability=qos_profile_sensor_data.durability)
        pipeline = self.pipeline
        node.create_subscription(CompressedImage if compressed else Image, image_topic,
                                 pipeline.on_image, sensor, qos_overriding_options=overrides)
        node.create_subscription(CameraInfo, self.topic('camera_info'), pipeline.on_camera_info,
                                 qos_profile_sensor_data, qos_overriding_options=overrides)
        if anchor.enabled:
            node.create_subscription(Image, self.topic('sparse_depth'), pipeline.on_sparse_depth,
                                     sensor, qos_overriding_options=overrides)
            node.create_subscription(PointCloud2, self.topic('sparse_points'),
                                     pipeline.on_sparse_points, sensor,
                                     qos_overriding_options=overrides)
        self._diagnostics = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        node.create_timer(config.diagnostics.period_s, self.publish_diagnostics)

    def configure(self, config: NodeConfig, stream: StreamOptions) -> None:
        """Apply run-time parameter changes."""
        self.config = config
        self.pipeline.configure(stream)

    def describe(self) -> str:
        """Where this camera's frames come from and go to, for the start-up line."""
        names, stream = self.pipeline.names, self.pipeline.options
        topic = self.node.resolve_topic_name
        return (f'{names[0]} + {names[1]} ({stream.sync_mode}) -> '
                f'{topic(self.topic("depth/image"))} ({stream.frame.output_encoding}), '
                f'{topic(self.topic("points"))}, {topic(self.topic("domain"))}')

    # ------------------------------------------------------------------ the pipeline's sink

    def listening(self, key: str) -> bool:
        return self.node.context.ok() and self.publishers[key].get_subscription_count() > 0

    def publish(self, encoded: dict[str, EncodedOutput], stamp_ns: int, frame_id: str) -> None:
        """Publish one frame's outputs; a frame finished after the context was shut down (a
        Ctrl-C lands while the worker is inside the model) has no one to go to and is dropped
        without a word."""
        context = self.node.context
        for key, message in output_messages(convert.make, encoded, stamp_ns, frame_id).items():
            if not context.ok():
                return
            try:
                self.publishers[key].publish(message)
            except Exception:
                if context.ok():
                    raise
                return  # shut down between the check and the publish

    def publish_diagnostics(self) -> None:
        estimator = self.pipeline.estimator
        if estimator is None:  # not configured (lifecycle)
            return
        cfg = self.config
        stream = self.pipeline.options
        info = {'model': estimator.name, 'model_kind': estimator.kind,
                'device': str(estimator.device), 'precision': cfg.precision,
                'sync_mode': stream.sync_mode,
                'head_selection': stream.frame.anchor.head_selection}
        if self.name:
            info['camera'] = self.name
        snapshot = self.pipeline.stats.snapshot(cfg.diagnostics.period_s)
        label = f'{self.name} depth' if self.name else 'depth'
        self._diagnostics.publish(diagnostic_array(
            snapshot, f'{self.node.get_fully_qualified_name()}: {label}', str(estimator.device),
            info, self.node.get_clock().now().to_msg(), estimator.warning))
