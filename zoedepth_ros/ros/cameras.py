"""The node's cameras: one, or several served by one batched model.

Without the ``cameras`` parameter the node has one camera in its own namespace (``image``,
``camera_info``, ``depth/image``, ...). ``cameras: [front, rear]`` gives each named camera the
same topics under its name (``front/image``, ``front/depth/image``, ...), its own counters in
/diagnostics, and ``<camera>.<parameter>`` overrides of what differs between cameras
(:data:`~zoedepth_ros.ros.camera_list.CAMERA_OVERRIDES`: frame id, field of view, range, input
transport, pairing, the anchoring extrinsic; set at start-up). One model serves every
camera: when it is free it takes the newest waiting frame of each camera as one batch
(:class:`~zoedepth_ros.pipeline.camera.CameraGroup`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from zoedepth_ros.errors import ConfigError
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.model.weights import progress_reporter
from zoedepth_ros.pipeline.camera import CameraGroup
from zoedepth_ros.pipeline.options import StreamOptions
from zoedepth_ros.ros.camera import RosCamera
from zoedepth_ros.ros.camera_list import CAMERA_OVERRIDES, check_camera_names
from zoedepth_ros.ros.config import (
    NodeConfig,
    config_from_parameters,
    parameter_specs,
    parameter_values,
)
from zoedepth_ros.ros.parameters import declare_node_parameters, descriptor, on_set_parameters
from zoedepth_ros.ros.transforms import tf2_lookup


def camera_stream(config: NodeConfig, camera: str, overrides: Mapping[str, Any]
                  ) -> StreamOptions:
    """The stream options of ``camera``: the node's, with its overrides (checked as the node
    parameters are; a ConfigError names the camera)."""
    if not overrides:
        return config.stream
    try:
        return config_from_parameters({**parameter_values(config), **overrides}).stream
    except ConfigError as err:
        raise ConfigError(f'camera {camera}: {err}') from None


def declare_cameras(node: Node) -> dict[str, dict[str, Any]]:
    """Declare ``cameras`` and every camera's overrides on ``node``.

    Returns:
        {camera name: {parameter: override}}; empty for the one-camera node.
    """
    described = ParameterDescriptor(
        name='cameras', read_only=True, description='Names of the cameras one model serves, '
        'each with its topics under its name (front/image, front/depth/image, ...) and '
        '<camera>.<parameter> overrides; unset = one camera in the node namespace.')
    given: Parameter = node.declare_parameter('cameras', Parameter.Type.STRING_ARRAY,
                                              described)
    # (a parameter declared by type only and not given reads as NOT_SET: get_parameter raises)
    names = check_camera_names(list(given.value or []))
    specs = {spec.name: spec for spec in parameter_specs()}
    cameras: dict[str, dict[str, Any]] = {}
    for camera in names:
        cameras[camera] = {}
        for name in CAMERA_OVERRIDES:
            spec = specs[name]
            declared = descriptor(spec)
            declared.name, declared.read_only = f'{camera}.{name}', True
            declared.description = f"{camera}: {spec.description} (default: the node's {name})"
            parameter: Parameter = node.declare_parameter(
                f'{camera}.{name}', Parameter.Type.from_parameter_value(spec.default), declared)
            if parameter.type_ != Parameter.Type.NOT_SET:
                cameras[camera][name] = parameter.value
    return cameras


class RosCameras:
    """Every camera of ``node`` and their one model (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.config = declare_node_parameters(node)
        self.overrides = declare_cameras(node)
        streams = {camera: camera_stream(self.config, camera, values)
                   for camera, values in (self.overrides or {'': {}}).items()}
        lookup = None
        if any(stream.frame.anchor.enabled for stream in streams.values()):
            lookup = tf2_lookup(node)  # one tf2 listener for every camera
        self.cameras = [RosCamera(node, self.config, stream, camera, lookup)
                        for camera, stream in streams.items()]
        self.group = CameraGroup([camera.pipeline for camera in self.cameras],
                                 node.get_logger(), self.config.workers)
        node.add_on_set_parameters_callback(on_set_parameters(lambda: self.config,
                                                              self._set_config))

    def _set_config(self, config: NodeConfig) -> None:
        self.config = config
        for camera in self.cameras:
            camera.configure(config, camera_stream(config, camera.name,
                                                   self.overrides.get(camera.name, {})))

    def load(self) -> None:
        """Load the model (ZoeDepthError for a bad name, file or checkpoint)."""
        cfg = self.config
        self.group.load(DepthEstimator.from_pretrained(
            cfg.model, cfg.model_config or None, cfg.random_weights,
            onnx_providers=cfg.providers or None,
            progress=progress_reporter(self.node.get_logger().info, cfg.model),
            device=cfg.device, precision=cfg.precision, preprocess=cfg.preprocess,
            flip=cfg.flip, domain=cfg.domain, compile=cfg.compile, threads=cfg.threads))

    def start(self) -> None:
        """Serve frames, and say what from and to."""
        self.group.start()
        estimator = self.group.estimator
        assert estimator is not None  # start() needs a loaded model
        routes = '; '.join(camera.describe() for camera in self.cameras)
        self.node.get_logger().info(f'model {estimator.name} on {estimator.device} '
                                    f'({self.config.precision}); {routes}')

    def stop(self) -> None:
        self.group.stop()

    def unload(self) -> None:
        self.group.unload()
