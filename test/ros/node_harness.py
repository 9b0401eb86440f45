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
from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
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
        self._clients: dict[str, Any] = {}
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

    def call(self, kind: type, service: str, request: Any, resend_s: float | None = 5.0,
             timeout_s: float = WAIT_S) -> Any:
        """The response of ``service`` to ``request``; None when none came (``resend_s=None``).

        The service may take ``WAIT_S`` to appear (a node starting on a loaded machine); its
        answer then ``timeout_s``.

        ``wait_for_service`` returns once the client sees the server, but the server may not
        have matched the client's response reader yet; a response sent in that window is lost
        (a DDS discovery race). An idempotent request is therefore sent again every
        ``resend_s`` seconds until an answer comes; a request that is not idempotent is sent
        once (``resend_s=None``) and a lost answer gives None for the caller to resolve. The
        client is kept, so a later call finds its response path matched.
        """
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = self.node.create_client(kind, service)
        assert client.wait_for_service(timeout_sec=WAIT_S), f'no service {service}'
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            future = client.call_async(request)
            try:
                wait_until(future.done, timeout_s=min(resend_s or timeout_s,
                                                      deadline - time.monotonic()),
                           what=f'{service} response')
            except AssertionError:
                if resend_s is None:
                    return None
                continue
            return future.result()
        raise AssertionError(f'timed out after {timeout_s} s waiting for {service} response')

    def close(self) -> None:
        self.node.destroy_node()
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)


class NodeProcess:
    """depth_node in a subprocess; ``stop`` sends SIGINT and returns the exit code."""

    def __init__(self, log_path: Path, namespace: str, params: dict[str, Any],
                 remaps: dict[str, str] | None = None,
                 module: str = 'zoedepth_ros.ros.depth_node',
                 params_files: list[Path] | None = None, executable: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        command = (executable or [sys.executable, '-m', module]) + ['--ros-args']
        for path in params_files or [PARAMS_FILE]:
            command += ['--params-file', str(path)]
        command += ['-r', f'__ns:={namespace}']
        for name, value in params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            command += ['-p', f'{name}:={text}']
        for source, target in (remaps or {}).items():
            command += ['-r', f'{source}:={target}']
        env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1', **(env or {}))
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


def same_stamp(header: Any) -> Any:
    return lambda msg: (msg.header.stamp.sec, msg.header.stamp.nanosec) == (
        header.stamp.sec, header.stamp.nanosec)


def serve(probe: Probe, image: Any, info: Any | None, image_pub: Any, info_pub: Any | None,
          topic: str, retry_s: float = 3.0) -> Any:
    """Publish (info, image) until ``topic`` carries an output with the image's stamp."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if info is not None:
            info_pub.publish(info)
        image_pub.publish(image)
        try:
            return wait_until(lambda: probe.latest(topic, same_stamp(image.header)),
                              timeout_s=retry_s, what=f'{topic} output')
        except AssertionError:
            continue
    raise AssertionError(f'no output on {topic} for stamp {image.header.stamp}')


def diagnostics(probe: Probe, node_name: str) -> tuple[DiagnosticStatus, dict[str, str]]:
    """Latest diagnostics status of ``node_name`` and its key/values."""
    def find() -> Any:
        array = probe.latest('/diagnostics', lambda m: any(
            s.name == f'{node_name}: depth' for s in m.status))
        return array and next(s for s in array.status if s.name == f'{node_name}: depth')

    status = wait_until(find, what=f'diagnostics of {node_name}')
    return status, {kv.key: kv.value for kv in status.values}


def wait_counter(probe: Probe, node_name: str, key: str, above: int) -> int:
    def check() -> int | None:
        value = int(diagnostics(probe, node_name)[1][key])
        return value if value > above else None
    return wait_until(check, what=f'{key} > {above} on {node_name}')


def set_parameters(probe: Probe, node: str, values: dict[str, Any]) -> list[Any]:
    request = SetParameters.Request(parameters=[
        ParameterMsg(name=name, value=Parameter(name, value=value).get_parameter_value())
        for name, value in values.items()])
    return probe.call(SetParameters, f'{node}/set_parameters', request).results
