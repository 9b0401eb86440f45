"""Helpers for node tests: start depth_node as a subprocess, talk to it over real DDS.

The node runs exactly as users start it (``python -m zoedepth_ros.ros.depth_node --ros-args
--params-file config/depth.yaml -p ... -r ...``) in the test's ROS domain (set by
test/conftest.py). A ``Probe`` is a test-side rclpy node in its own context whose executor
spins in a background thread; tests wait on conditions with timeouts, never fixed sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

REPO = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO / 'config' / 'depth.yaml'
WAIT_S = 60.0
"""Longest wait for one condition (slow inference on a loaded 2-core machine)."""

K = [50.0, 0.0, 31.5, 0.0, 52.0, 23.5, 0.0, 0.0, 1.0]
P = [48.0, 0.0, 30.0, 0.0, 0.0, 50.0, 22.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def wait_until(condition: Callable[[], Any], timeout_s: float = WAIT_S,
               what: str = 'condition') -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f'timed out after {timeout_s} s waiting for {what}')


def stamp_header(sec: int, nanosec: int = 0, frame_id: str = 'camera_optical_frame') -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return header


def make_image(rgb: np.ndarray, header: Header, encoding: str = 'rgb8') -> Image:
    height, width = rgb.shape[:2]
    data = np.ascontiguousarray(rgb).tobytes()
    return Image(header=header, height=height, width=width, encoding=encoding,
                 step=len(data) // height, data=data)


def make_info(header: Header, width: int = 64, height: int = 48, k: list | None = None,
              p: list | None = None) -> CameraInfo:
    return CameraInfo(header=header, width=width, height=height, distortion_model='plumb_bob',
                      d=[0.0] * 5, k=k or K, r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1], p=p or P)


def make_compressed(rgb: np.ndarray, header: Header) -> CompressedImage:
    data = cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))[1].tobytes()
    return CompressedImage(header=header, format='rgb8; png compressed bgr8', data=data)


def test_image(width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


test_image.__test__ = False  # a helper, not a test


class Probe:
    """Test-side node: publishers, collecting subscriptions, a spinning executor thread."""

    def __init__(self, name: str) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list[tuple[float, Any]]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except Exception:  # noqa: BLE001 - context shut down under the executor
            pass

    def publisher(self, kind: type, topic: str, reliable: bool = True) -> Any:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE if reliable
                         else ReliabilityPolicy.BEST_EFFORT)
        return self.node.create_publisher(kind, topic, qos)

    def subscribe(self, kind: type, topic: str, depth: int | QoSProfile = 50
                  ) -> list[tuple[float, Any]]:
        """Messages arriving on ``topic`` as (monotonic receive time, message)."""
        messages = self.received.setdefault(topic, [])

        def store(msg: Any) -> None:
            with self._lock:
                messages.append((time.monotonic(), msg))

        qos = depth if isinstance(depth, QoSProfile) else QoSProfile(depth=depth)
        self.node.create_subscription(kind, topic, store, qos)
        return messages

    def latest(self, topic: str, predicate: Callable[[Any], bool] = lambda m: True) -> Any:
        with self._lock:
            matches = [m for _, m in self.received.get(topic, []) if predicate(m)]
        return matches[-1] if matches else None

    def close(self) -> None:
        self.node.destroy_node()
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)


class NodeProcess:
    """depth_node in a subprocess; ``stop`` sends SIGINT and returns the exit code."""

    def __init__(self, log_path: Path, namespace: str, params: dict[str, Any],
                 remaps: dict[str, str] | None = None,
                 module: str = 'zoedepth_ros.ros.depth_node') -> None:
        command = [sys.executable, '-m', module, '--ros-args',
                   '--params-file', str(PARAMS_FILE), '-r', f'__ns:={namespace}']
        for name, value in params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            command += ['-p', f'{name}:={text}']
        for source, target in (remaps or {}).items():
            command += ['-r', f'{source}:={target}']
        env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
        self.log_path = log_path
        self._log = open(log_path, 'w')  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT)

    def rss_kib(self) -> int:
        for line in Path(f'/proc/{self.process.pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
        raise AssertionError('no VmRSS')

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, timeout_s: float = 30.0, sig: int = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code
