"""colcon builds the package into a workspace, and the installed depth_node serves a frame.

The workspace holds a copy of the tracked sources, built with colcon from PyPI
(colcon-common-extensions) by this environment's Python, as on a machine whose ROS 2 comes
with the same interpreter. The installed ``lib/zoedepth_ros/depth_node`` starts as
``ros2 run`` would start it, with the installed config and package data (the bundled demo
model), and answers a frame published over DDS.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from node_harness import NodeProcess, Probe, make_image, make_info, serve, stamp_header
from node_harness import test_image as image_of
from sensor_msgs.msg import CameraInfo, Image


@pytest.mark.slow
def test_colcon_install_runs_like_ros2_run(colcon_install: Path, tmp_path: Path) -> None:
    workspace = colcon_install / 'zoedepth_ros'
    executable = workspace / 'lib' / 'zoedepth_ros' / 'depth_node'
    share = workspace / 'share' / 'zoedepth_ros'
    site = next(workspace.glob('lib/python3*/site-packages'))
    assert os.access(executable, os.X_OK)
    assert (share / 'launch' / 'depth.launch.py').is_file()
    assert (share / 'launch' / 'depth_lifecycle.launch.py').is_file()
    assert (site / 'zoedepth_ros' / 'assets' / 'models' / 'zoedepth_demo_nk.pt').is_file()
    # What `source install/setup.bash` sets for this package: its site-packages come first.
    path = f'{site}{os.pathsep}{os.environ.get("PYTHONPATH", "")}'
    env = {'PYTHONPATH': path, 'AMENT_PREFIX_PATH': str(workspace)}
    where = subprocess.run([sys.executable, '-c', 'import zoedepth_ros as z; print(z.__file__)'],
                           env={**os.environ, **env}, cwd=tmp_path, capture_output=True,
                           text=True, check=True)
    assert where.stdout.startswith(str(site))
    node = NodeProcess(tmp_path / 'node.log', '/colcon',
                       {'model': 'zoedepth_demo_nk', 'device': 'cpu', 'fov_deg': 0.0},
                       params_files=[share / 'config' / 'depth.yaml'],
                       executable=[str(executable)], env=env)
    probe = Probe('colcon_probe')
    try:
        probe.subscribe(DiagnosticArray, '/diagnostics')
        depth_topic = '/colcon/depth/image'
        probe.subscribe(Image, depth_topic)
        image_pub = probe.publisher(Image, '/colcon/image')
        info_pub = probe.publisher(CameraInfo, '/colcon/camera_info')
        header = stamp_header(42)
        depth = serve(probe, make_image(image_of(64, 48), header), make_info(header), image_pub,
                      info_pub, depth_topic)
        values = np.frombuffer(bytes(depth.data), '<f4').reshape(48, 64)
        assert depth.encoding == '32FC1' and depth.header.frame_id == 'camera_optical_frame'
        assert np.isfinite(values).mean() > 0.5 and np.nanmin(values) > 0
        assert 'bundled demo model' in node.log()  # said at start: not for real cameras
    finally:
        probe.close()
        assert node.stop() == 0, node.log()
