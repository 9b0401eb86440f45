"""colcon builds the package into a workspace, and the installed depth_node serves a frame.

The workspace holds a copy of the tracked sources, built with colcon from PyPI
(colcon-common-extensions) by this environment's Python, as on a machine whose ROS 2 comes
with the same interpreter. The installed ``lib/zoedepth_ros/depth_node`` starts as
``ros2 run`` would start it, with the installed config and package data (the bundled demo
model), and answers a frame published over DDS.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from node_harness import REPO, NodeProcess, Probe, make_image, make_info, serve, stamp_header
from node_harness import test_image as image_of
from sensor_msgs.msg import CameraInfo, Image


def _tracked_files() -> list[str]:
    done = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                          cwd=REPO, capture_output=True, text=True)
    if done.returncode == 0 and done.stdout.strip():
        return [name for name in done.stdout.splitlines() if (REPO / name).is_file()]
    skip = ('.git', '.venv', 'outputs', 'build', 'install', 'log')  # a tree without git
    return [str(p.relative_to(REPO)) for p in REPO.rglob('*')
            if p.is_file() and not p.relative_to(REPO).parts[0].startswith(skip)
            and '__pycache__' not in p.parts]


@pytest.fixture(scope='module')
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('ws')
    source = root / 'src' / 'zoedepth_ros'
    for name in _tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    env = dict(os.environ, COLCON_HOME=str(root / '.colcon'))
    done = subprocess.run([sys.executable, '-m', 'colcon', 'build', '--base-paths', 'src',
                           '--event-handlers', 'console_direct-'], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root / 'install' / 'zoedepth_ros'


@pytest.mark.slow
def test_colcon_install_runs_like_ros2_run(workspace: Path, tmp_path: Path) -> None:
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
