"""depth_lifecycle_node: bad weights fail configure cleanly; configure + activate serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from node_harness import (
    WAIT_S,
    NodeProcess,
    Probe,
    make_image,
    make_info,
    stamp_header,
    test_image,
    wait_until,
)
from sensor_msgs.msg import CameraInfo, Image


def call(probe: Probe, kind: type, name: str, request: Any) -> Any:
    client = probe.node.create_client(kind, name)
    assert client.wait_for_service(timeout_sec=WAIT_S), name
    future = client.call_async(request)
    wait_until(future.done, what=f'{name} response')
    probe.node.destroy_client(client)
    return future.result()


def transition(probe: Probe, transition_id: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition_id))
    return call(probe, ChangeState, '/l/depth_node/change_state', request).success


def state(probe: Probe) -> str:
    return call(probe, GetState, '/l/depth_node/get_state', GetState.Request()).current_state.label


def test_bad_checkpoint_fails_configure_and_the_node_stays_up(tmp_path: Path,
                                                              tiny_model_yaml: Path) -> None:
    node = NodeProcess(tmp_path / 'l.log', '/l', {
        'model': str(tmp_path / 'none.pt'), 'device': 'cpu'},
        module='zoedepth_ros.ros.lifecycle_node')
    probe = Probe('lifecycle_probe')
    try:
        assert state(probe) == 'unconfigured'
        assert transition(probe, Transition.TRANSITION_CONFIGURE) is False  # no such file
        assert state(probe) == 'unconfigured' and node.process.poll() is None
        assert 'configure failed' in node.log() and 'none.pt' in node.log()
    finally:
        probe.close()
        code = node.stop()
    assert code == 0, node.log()


def test_lifecycle_configure_activate_serves(tmp_path: Path, tiny_model_yaml: Path) -> None:
    node = NodeProcess(tmp_path / 'm.log', '/l', {'model': str(tiny_model_yaml),
                                                   'random_weights': True, 'device': 'cpu'},
                       module='zoedepth_ros.ros.lifecycle_node')
    probe = Probe('lifecycle_probe')
    try:
        image_pub = probe.publisher(Image, '/l/image')
        info_pub = probe.publisher(CameraInfo, '/l/camera_info')
        outputs = probe.subscribe(Image, '/l/depth/image')
        assert transition(probe, Transition.TRANSITION_CONFIGURE) is True
        assert transition(probe, Transition.TRANSITION_ACTIVATE) is True
        assert state(probe) == 'active'
        wait_until(lambda: image_pub.get_subscription_count() and
                   probe.node.count_publishers('/l/depth/image'), what='node matched')
        header = stamp_header(7)
        rgb = test_image(64, 48)
        wait_until(lambda: info_pub.publish(make_info(header)) or image_pub.publish(
            make_image(rgb, header)) or outputs, what='depth from the active node')
        depth = outputs[-1][1]
        assert depth.header == header and (depth.width, depth.height) == (64, 48)
        assert np.isfinite(np.frombuffer(bytes(depth.data), '<f4')).any()
        assert transition(probe, Transition.TRANSITION_DEACTIVATE) is True
        assert state(probe) == 'inactive'
    finally:
        probe.close()
        code = node.stop()
    assert code == 0, node.log()
    assert 'Traceback' not in node.log()
