"""depth_node with several cameras over real DDS: each camera's topics under its name, its own
stamps, frame ids and overrides, its own counters in /diagnostics; bad camera lists refused."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from node_harness import (
    NodeProcess,
    Probe,
    make_image,
    serve,
    stamp_header,
    test_image,
    wait_until,
)
from sensor_msgs.msg import CameraInfo, Image

from zoedepth_ros.io.messages import depth_image_from_msg


@pytest.fixture()
def model_params(tiny_model_yaml: Path) -> dict[str, Any]:
    return {'model': str(tiny_model_yaml), 'random_weights': True, 'device': 'cpu',
            'diagnostics.period_s': 0.3}


def camera_status(probe: Probe, name: str) -> dict[str, str]:
    def find() -> Any:
        array = probe.latest('/diagnostics', lambda m: any(s.name == name for s in m.status))
        return array and next(s for s in array.status if s.name == name)

    status = wait_until(find, what=f'diagnostics {name}')
    return {kv.key: kv.value for kv in status.values}


def counted(probe: Probe, name: str) -> dict[str, str] | None:
    """The camera's newest status once it counts a published frame."""
    values = camera_status(probe, name)
    return values if int(values['published_total']) >= 1 else None


def test_two_cameras_one_model_each_with_its_topics_and_overrides(
        tmp_path: Path, model_params: dict[str, Any]) -> None:
    node = NodeProcess(tmp_path / 'multi.log', '/rig', {
        **model_params, 'cameras': '[front,rear]', 'front.frame_id': 'front_optical_frame',
        'rear.fov_deg': 90.0, 'rear.min_range': 5.0})
    probe = Probe('multi_probe')
    try:
        probe.subscribe(DiagnosticArray, '/diagnostics')
        publishers = {}
        for camera in ('front', 'rear'):
            publishers[camera] = probe.publisher(Image, f'/rig/{camera}/image')
            for topic, kind in (('depth/image', Image), ('depth/camera_info', CameraInfo)):
                probe.subscribe(kind, f'/rig/{camera}/{topic}')
        wait_until(lambda: all(p.get_subscription_count() for p in publishers.values()),
                   what='both cameras to subscribe')
        rgb = test_image(64, 48)
        front = serve(probe, make_image(rgb, stamp_header(11, 0, 'cam_f_optical_frame')), None,
                      publishers['front'], None, '/rig/front/depth/image')
        rear = serve(probe, make_image(rgb, stamp_header(22, 0, 'cam_r_optical_frame')), None,
                     publishers['rear'], None, '/rig/rear/depth/image')
        # each camera's own stamp; front's frame id overridden, rear's from its input
        assert (front.header.stamp.sec, front.header.frame_id) == (11, 'front_optical_frame')
        assert (rear.header.stamp.sec, rear.header.frame_id) == (22, 'cam_r_optical_frame')
        front_depth, rear_depth = depth_image_from_msg(front), depth_image_from_msg(rear)
        assert np.isfinite(front_depth).all()  # the tiny model predicts under 1 m:
        assert np.isnan(rear_depth).all()  # rear.min_range 5 m gates every pixel
        infos = {camera: wait_until(lambda c=camera: probe.latest(f'/rig/{c}/depth/camera_info'),
                                    what=f'{camera} camera_info') for camera in ('front', 'rear')}
        for camera, fov in (('front', 60.0), ('rear', 90.0)):  # fallback fields of view
            assert infos[camera].k[0] == pytest.approx(32.0 / math.tan(math.radians(fov / 2)),
                                                       rel=1e-6)
        for camera in ('front', 'rear'):  # a status published after the camera's frame
            values = wait_until(lambda c=camera: counted(probe, f'/rig/depth_node: {c} depth'),
                                what=f'{camera} diagnostics counting its frame')
            assert values['camera'] == camera and int(values['received_total']) >= 1
    finally:
        probe.close()
        code = node.stop()
    log = node.log()
    assert code == 0, log
    assert '/rig/front/image' in log and '/rig/rear/depth/image' in log and 'Traceback' not in log
    assert log.count('bundled demo model') <= 1


@pytest.mark.parametrize('cameras, message', [
    ('[front,front]', 'cameras: front named more than once'),
    ('[front,9rear]', "cameras: '9rear' is not a valid camera name"),
])
def test_a_bad_camera_list_is_refused_with_one_line(tmp_path: Path, model_params: dict[str, Any],
                                                    cameras: str, message: str) -> None:
    node = NodeProcess(tmp_path / 'bad.log', '/bad', {**model_params, 'cameras': cameras})
    node.process.wait(timeout=60.0)  # it ends by itself
    code = node.stop()
    log = node.log()
    assert code == 2, log
    assert message in log and 'Traceback' not in log


def test_an_override_outside_its_range_names_the_camera(tmp_path: Path,
                                                        model_params: dict[str, Any]) -> None:
    node = NodeProcess(tmp_path / 'range.log', '/bad_range', {
        **model_params, 'cameras': '[front]', 'front.min_range': 90.0})
    node.process.wait(timeout=60.0)
    code = node.stop()
    log = node.log()
    assert code == 2, log
    assert 'camera front: min_range 90.0 must be smaller than max_range 80.0' in log
