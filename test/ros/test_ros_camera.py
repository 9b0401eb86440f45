"""RosCamera in this process: a frame the worker finishes after a Ctrl-C shut the context down
is dropped quietly (no error, no traceback), while one finished before reaches subscribers."""

from __future__ import annotations

import threading

import numpy as np
import rclpy
from doubles import null_estimator
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image

from zoedepth_ros.pipeline.sync import Frame
from zoedepth_ros.ros.camera import RosCamera
from zoedepth_ros.ros.config import NodeConfig


class Log:
    """The logger interface the pipeline uses, recording errors and warnings."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def error(self, message: str, **_: object) -> None:
        self.lines.append(('error', message))

    def warning(self, message: str, **_: object) -> None:
        self.lines.append(('warning', message))

    def info(self, message: str, **_: object) -> None:
        self.lines.append(('info', message))

    def debug(self, message: str, **_: object) -> None:
        pass


def test_a_frame_finished_after_shutdown_is_dropped_quietly() -> None:
    context = Context()
    rclpy.init(context=context)
    node = Node('camera_under_test', context=context)
    probe = Node('probe', context=context)
    received: list[Image] = []
    got = threading.Event()
    probe.create_subscription(Image, 'depth/image',
                              lambda msg: (received.append(msg), got.set()), 1)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        camera = RosCamera(node, NodeConfig())
        log = Log()
        camera.pipeline.log = log
        camera.pipeline.load(null_estimator(depth_m=2.0))
        rgb = np.full((24, 32, 3), 90, np.uint8)

        outputs = camera.pipeline.process(Frame(1_000, 'cam_optical_frame', rgb))
        assert outputs is not None
        assert got.wait(20.0), 'the frame before shutdown was not published'
        assert received[0].header.frame_id == 'cam_optical_frame'
        assert (received[0].width, received[0].height) == (32, 24)

        executor.shutdown()
        context.shutdown()  # what rclpy's SIGINT handler does under the running worker
        assert not camera.listening('depth')
        outputs = camera.pipeline.process(Frame(2_000, 'cam_optical_frame', rgb))
        assert outputs is not None  # computed, then dropped at the publishers
        assert [line for line in log.lines if line[0] == 'error'] == []
        assert len(received) == 1
    finally:
        context.try_shutdown()
