"""ROS 2 depth node: camera image in; metric depth, CameraInfo, cloud, std, domain out.

Subscribes ``image`` (or ``<image>/compressed``) and ``camera_info``, and (metric anchoring,
optional) ``sparse_depth`` and ``sparse_points``; publishes, with the input's stamp and optical
frame, the outputs of ``pipeline.outputs.OUTPUTS`` (``depth/image``, ``depth/camera_info``,
``points``, ``depth/std``, ``depth/preview``, ``domain``, ``depth/alignment``) and
``/diagnostics``. With the ``cameras`` parameter it serves several cameras, each under its
name, from one batched model (:mod:`zoedepth_ros.ros.cameras`). The work is done by
:class:`~zoedepth_ros.pipeline.camera.CameraPipeline` (newest frame wins: a waiting frame
that gets replaced counts as dropped); this node declares the parameters, loads the model
and starts serving. Run:
``depth_node --ros-args --params-file config/depth.yaml -r image:=/camera/image_raw
-r camera_info:=/camera/camera_info``.
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.node import Node

from zoedepth_ros.ros.cameras import RosCameras
from zoedepth_ros.ros.entry import run_node


class DepthNode(Node):
    """Monocular metric depth node (see module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('depth_node', **kwargs)
        self.cameras = RosCameras(self)
        self.cameras.load()
        self.cameras.start()

    def destroy_node(self) -> None:
        self.cameras.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point ``depth_node``: 0 on SIGINT/SIGTERM, 2 on bad parameters (see run_node)."""
    return run_node(DepthNode, args)


if __name__ == '__main__':
    sys.exit(main())
