"""depth_lifecycle_node: bad weights fail configure cleanly; configure + activate serve."""

from __future__ import annotations

import time
from pathlib import Path

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

GOAL = {Transition.TRANSITION_CONFIGURE: 'inactive', Transition.TRANSITION_ACTIVATE: 'active',
        Transition.TRANSITION_DEACTIVATE: 'inactive'}
MOVING = {'configuring', 'cleaningup', 'shuttingdown', 'activating', 'deactivating',
          'errorprocessing'}


def state(probe: Probe) -> str:
    return probe.call(GetState, '/l/depth_node/get_state',
                      GetState.Request()).current_state.label


def transition(probe: Probe, transition_id: int) -> bool:
    """Ask for a transition; when its answer is lost, the node's state says how it went.

    A transition is not idempotent, so it is not simply sent again: a lost answer is resolved
    by asking the state once the node has settled. The goal state means it succeeded; the
    state before means it failed or never arrived, and both may be asked again with the same
    result.
    """
    request = ChangeState.Request(transition=Transition(id=transition_id))
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        response = probe.call(ChangeState, '/l/depth_node/change_state', request,
                              resend_s=None, timeout_s=15.0)
        if response is not None:
            return bool(response.success)
        settled = wait_until(lambda: (label := state(probe)) not in MOVING and label,
                             what='a settled lifecycle state')
        if settled == GOAL[transition_id]:
            return True
    raise AssertionError(f'no answer to transition {transition_id}')


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
