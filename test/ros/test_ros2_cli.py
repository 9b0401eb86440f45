"""The package through the real ROS 2 command line, after ``colcon build`` and sourcing.

``ros2 launch`` with a params file and a command-line override, the multi-camera launch files
(one node serving two cameras, plain and managed), the lifecycle launch driven
by ``ros2 lifecycle set``, ``ros2 run`` with ``ros2 param set`` / ``ros2 topic hz``, the
default model offline, and Ctrl-C / SIGTERM stops of twenty launches each. The frames come
from a test-side rclpy node over DDS in the test's own ROS domain.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from node_harness import (
    Probe,
    make_image,
    make_info,
    serve,
    stamp_header,
    wait_until,
)
from ros2_cli import Ros2, params_file, require_tools, settle
from sensor_msgs.msg import CameraInfo, Image

from zoedepth_ros.model.weights import REGISTRY

pytestmark = pytest.mark.slow

SAMPLE = (Path(__file__).resolve().parents[2] / 'zoedepth_ros' / 'assets' / 'samples' /
          'outdoor' / 'rgb' / 'outdoor_000000.png')
"""A street: the demo model puts its depth between about 3 and 50 m."""

STOPS = 20
"""Consecutive launches stopped with each signal."""

DEMO = {'model': 'zoedepth_demo_nk', 'device': 'cpu'}


def scene(width: int = 64, height: int = 48) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.imread(str(SAMPLE)), cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def depth_m(msg: Image) -> np.ndarray:
    if msg.encoding == '16UC1':
        values = np.frombuffer(bytes(msg.data), '<u2').astype(np.float32) / 1000.0
        values[values == 0] = np.nan
    else:
        values = np.frombuffer(bytes(msg.data), '<f4')
    return values.reshape(msg.height, msg.width)


class Feeder:
    """Publishes the scene with its CameraInfo at ``rate_hz`` from a thread (a camera)."""

    def __init__(self, probe: Probe, namespace: str, rate_hz: float) -> None:
        self.image_pub = probe.publisher(Image, f'{namespace}/image')
        self.info_pub = probe.publisher(CameraInfo, f'{namespace}/camera_info')
        self.rate_hz, self.sent = rate_hz, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rgb = scene()
        while not self._stop.wait(1.0 / self.rate_hz):
            self.sent += 1
            header = stamp_header(100 + self.sent // 1000, (self.sent % 1000) * 1000)
            self.info_pub.publish(make_info(header))
            self.image_pub.publish(make_image(rgb, header))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


@pytest.fixture
def ros2(colcon_install: Path, tmp_path: Path) -> Iterator[Ros2]:
    require_tools()
    tools = Ros2(colcon_install, tmp_path / 'ros_log')
    yield tools
    tools.stop_all()


@pytest.fixture
def probe() -> Iterator[Probe]:
    node = Probe('cli_probe')
    yield node
    node.close()


def assert_clean_exit(output: str) -> None:
    assert 'process has finished cleanly' in output, output
    assert 'Traceback' not in output and 'has died' not in output, output


def test_launch_applies_the_params_file_and_a_command_line_override(
        ros2: Ros2, probe: Probe, tmp_path: Path) -> None:
    params = params_file(tmp_path / 'mine.yaml', {
        **DEMO, 'output_encoding': '16UC1', 'max_range': 20.0,
        'frame_id': 'file_optical_frame', 'cloud': {'enabled': False}})
    output = tmp_path / 'launch.log'
    launch = ros2.start('launch', 'zoedepth_ros', 'depth.launch.py', f'params_file:={params}',
                        'namespace:=/cli', 'frame_id:=arg_optical_frame', 'image:=/cam/image',
                        'camera_info:=/cam/camera_info', output=output)
    probe.subscribe(Image, '/cli/depth/image')
    header = stamp_header(7)
    depth = serve(probe, make_image(scene(), header), make_info(header),
                  probe.publisher(Image, '/cam/image'),
                  probe.publisher(CameraInfo, '/cam/camera_info'), '/cli/depth/image')
    values = depth_m(depth)
    assert depth.encoding == '16UC1'  # the file's value
    assert depth.header.frame_id == 'arg_optical_frame'  # the argument beats the file's
    assert np.nanmax(values) <= 20.0 and 0.05 < np.isnan(values).mean() < 0.95
    assert ros2.run('param', 'get', '--no-daemon', '/cli/depth_node', 'cloud.enabled'
                    ).stdout.strip() == 'Boolean value is: False'
    assert ros2.stop_all() == [0]
    assert launch.returncode == 0
    assert_clean_exit(output.read_text())


def test_lifecycle_launch_serves_only_while_active(ros2: Ros2, probe: Probe,
                                                   tmp_path: Path) -> None:
    params = params_file(tmp_path / 'mine.yaml', DEMO)
    output = tmp_path / 'launch.log'
    ros2.start('launch', 'zoedepth_ros', 'depth_lifecycle.launch.py', f'params_file:={params}',
               'namespace:=/managed', 'image:=/managed/image',
               'camera_info:=/managed/camera_info', output=output)
    received = probe.subscribe(Image, '/managed/depth/image')
    ros2.wait_for_node('/managed/depth_node', lifecycle=True)
    feeder = Feeder(probe, '/managed', rate_hz=5.0)

    def transition(name: str) -> None:
        done = ros2.run('lifecycle', 'set', '--no-daemon', '/managed/depth_node', name)
        assert 'Transitioning successful' in done.stdout, done.stdout + done.stderr

    try:
        settle(2.0)
        assert received == [] and feeder.sent >= 5  # unconfigured: no publisher, no model
        transition('configure')
        settle(2.0)
        assert received == []  # inactive
        transition('activate')
        wait_until(lambda: len(received) >= 3, what='depth while active')
        transition('deactivate')
        settle(0.5)  # what was already on the wire
        count = len(received)
        settle(2.0)
        assert len(received) == count, 'depth after deactivate'
        transition('activate')
        wait_until(lambda: len(received) > count, what='depth after reactivation')
    finally:
        feeder.close()
    assert ros2.stop_all() == [0]
    assert_clean_exit(output.read_text())


def _cameras_file(path: Path) -> Path:
    path.write_text(yaml.safe_dump({'cameras': [
        {'name': 'left', 'image': '/rig/left/image_raw', 'camera_info': '/rig/left/info',
         'frame_id': 'left_optical_frame'},
        {'name': 'right', 'image': '/rig/right/image_raw', 'camera_info': '/rig/right/info'}]}))
    return path


def test_multi_camera_launch_serves_every_camera_from_one_node(ros2: Ros2, probe: Probe,
                                                              tmp_path: Path) -> None:
    params = params_file(tmp_path / 'mine.yaml', DEMO)
    output = tmp_path / 'launch.log'
    ros2.start('launch', 'zoedepth_ros', 'multi_camera.launch.py', f'params_file:={params}',
               f'cameras_file:={_cameras_file(tmp_path / "cams.yaml")}', 'namespace:=/multi',
               output=output)
    for camera, frame_id in (('left', 'left_optical_frame'), ('right', 'camera_optical_frame')):
        probe.subscribe(Image, f'/multi/{camera}/depth/image')
        header = stamp_header(3 if camera == 'left' else 4)
        depth = serve(probe, make_image(scene(), header), make_info(header),
                      probe.publisher(Image, f'/rig/{camera}/image_raw'),
                      probe.publisher(CameraInfo, f'/rig/{camera}/info'),
                      f'/multi/{camera}/depth/image')
        assert depth.header.frame_id == frame_id
        assert depth.header.stamp.sec == header.stamp.sec
        values = depth_m(depth)
        assert 1.0 < np.nanmedian(values) < 60.0  # the demo model on a street
    def listed() -> list[str] | None:  # a --no-daemon call can miss nodes: asked again
        names = ros2.run('node', 'list', '--no-daemon', '--spin-time', '2.0').stdout.split()
        return [name for name in names if name.startswith('/multi/')] or None

    assert wait_until(listed, what='the /multi nodes') == ['/multi/depth_node']
    assert ros2.stop_all() == [0]
    assert_clean_exit(output.read_text())


def test_multi_camera_lifecycle_launch_serves_once_active(ros2: Ros2, probe: Probe,
                                                          tmp_path: Path) -> None:
    params = params_file(tmp_path / 'mine.yaml', DEMO)
    output = tmp_path / 'launch.log'
    ros2.start('launch', 'zoedepth_ros', 'multi_camera_lifecycle.launch.py',
               f'params_file:={params}', f'cameras_file:={_cameras_file(tmp_path / "c.yaml")}',
               'namespace:=/mlc', output=output)
    ros2.wait_for_node('/mlc/depth_node', lifecycle=True)
    for name in ('configure', 'activate'):
        done = ros2.run('lifecycle', 'set', '--no-daemon', '/mlc/depth_node', name)
        assert 'Transitioning successful' in done.stdout, done.stdout + done.stderr
    for camera in ('left', 'right'):
        probe.subscribe(Image, f'/mlc/{camera}/depth/image')
        header = stamp_header(5)
        serve(probe, make_image(scene(), header), make_info(header),
              probe.publisher(Image, f'/rig/{camera}/image_raw'),
              probe.publisher(CameraInfo, f'/rig/{camera}/info'), f'/mlc/{camera}/depth/image')
    assert ros2.stop_all() == [0]
    assert_clean_exit(output.read_text())


def _topic_hz(ros2: Ros2, topic: str, seconds: float) -> float:
    hz = subprocess.Popen(['ros2', 'topic', 'hz', topic, '--window', '20'], env=ros2.env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)
    time.sleep(seconds)
    os.killpg(hz.pid, signal.SIGINT)
    output = hz.communicate(timeout=30)[0]
    rates = [float(x) for x in re.findall(r'average rate: ([0-9.]+)', output)]
    assert rates, output
    return rates[-1]


def test_ros2_run_param_set_and_topic_hz(ros2: Ros2, probe: Probe, tmp_path: Path) -> None:
    output = tmp_path / 'run.log'
    ros2.start('run', 'zoedepth_ros', 'depth_node', '--ros-args', '-p', 'model:=zoedepth_demo_nk',
               '-p', 'device:=cpu', '-p', 'cloud.enabled:=false', '-r', '__ns:=/run',
               output=output)
    received = probe.subscribe(Image, '/run/depth/image')
    ros2.wait_for_node('/run/depth_node')
    feeder = Feeder(probe, '/run', rate_hz=5.0)
    try:
        wait_until(lambda: len(received) >= 2, what='depth from ros2 run')
        before = depth_m(received[-1][1])
        assert np.nanmax(before) > 8.0  # the street reaches beyond the new limit
        done = ros2.run('param', 'set', '--no-daemon', '/run/depth_node', 'max_range', '8.0')
        assert 'Set parameter successful' in done.stdout, done.stdout + done.stderr
        count = len(received)
        wait_until(lambda: len(received) > count + 2, what='depth after param set')
        after = depth_m(received[-1][1])
        assert np.nanmax(after) <= 8.0
        assert np.isnan(after).mean() > np.isnan(before).mean() + 0.1

        refused = ros2.run('param', 'set', '--no-daemon', '/run/depth_node', 'model',
                           'ZoeD_M12_N')
        assert 'read-only parameter: model' in refused.stdout + refused.stderr
        kept = ros2.run('param', 'get', '--no-daemon', '/run/depth_node', 'model')
        assert kept.stdout.strip() == 'String value is: zoedepth_demo_nk'

        start, first = time.monotonic(), len(received)
        rate = _topic_hz(ros2, '/run/depth/image', 6.0)
        seen = (len(received) - first) / (time.monotonic() - start)
        assert 3.0 < rate < 7.0, rate  # fed at 5 Hz, served at the camera's rate
        assert abs(rate - seen) < 0.35 * seen, (rate, seen)
    finally:
        feeder.close()
    assert ros2.stop_all() == [0]
    log = output.read_text()
    assert 'stopped by SIGINT: finished cleanly' in log and 'Traceback' not in log, log


def test_default_model_offline_is_one_line(ros2: Ros2, tmp_path: Path) -> None:
    cache = tmp_path / 'cache'
    # No network: a proxy on a closed local port refuses every download at once.
    offline = Ros2(ros2.install, tmp_path / 'offline_log', {
        'ZOEDEPTH_CACHE_DIR': str(cache), 'https_proxy': 'http://127.0.0.1:9',
        'HTTPS_PROXY': 'http://127.0.0.1:9'})
    output = tmp_path / 'launch.log'
    launch = offline.start('launch', 'zoedepth_ros', 'depth.launch.py', 'device:=cpu',
                           output=output)
    assert launch.wait(timeout=120) == 0  # launch ends once its one node has exited
    text = output.read_text()
    errors = [line for line in text.splitlines() if 'cannot start' in line]
    assert len(errors) == 1, text
    url = REGISTRY['ZoeD_M12_NK'].url
    assert url in errors[0] and str(cache / 'ZoeD_M12_NK.pt') in errors[0]
    assert 'zoedepth_demo_nk' in errors[0]
    assert 'Traceback' not in text and 'exit code 2' in text, text


@pytest.mark.parametrize('sig', ['SIGINT', 'SIGTERM'])
def test_every_launch_stops_cleanly(ros2: Ros2, tmp_path: Path, sig: str) -> None:
    params = params_file(tmp_path / 'mine.yaml', DEMO)
    helper = Path(__file__).with_name('stop_launches.py')
    done = subprocess.run([sys.executable, str(helper), sig, str(STOPS), str(params)],
                          env=ros2.env,
                          capture_output=True, text=True, timeout=60 * STOPS)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(runs) == STOPS
    failed = [run for run in runs if run['node_code'] != 0 or 'Traceback' in run['output']
              or f'stopped by {sig}: finished cleanly' not in run['node_log']]
    if failed:  # whole texts: an assertion message would be cut in the middle
        pytest.fail(f'{len(failed)} of {STOPS} launches did not stop cleanly; the first:\n'
                    f"exit code {failed[0]['node_code']}\n--- launch output ---\n"
                    f"{failed[0]['output']}\n--- node log file ---\n{failed[0]['node_log']}",
                    pytrace=False)
    if sig == 'SIGINT':  # launch waits for its nodes and reports how they ended
        assert all(run['launch_code'] == 0 for run in runs)
        assert all('process has finished cleanly' in run['output'] for run in runs)
