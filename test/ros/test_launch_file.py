"""The launch files: arguments, parameter precedence and the node they start.

launch / launch_ros cannot be installed here, so the logic lives in plain Python
(zoedepth_ros.ros.launch_setup) that this test calls, and the node is started exactly as
launch_ros would start it: ``--params-file`` for the parameters file, then one more
``--params-file`` holding the overrides launch_ros writes from the parameter dictionaries.
The launch files themselves are checked statically.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from node_harness import REPO, NodeProcess, Probe
from rcl_interfaces.srv import GetParameters

from zoedepth_ros.config import save_config
from zoedepth_ros.errors import ConfigError
from zoedepth_ros.model.config import get_config
from zoedepth_ros.ros.config import parameter_specs
from zoedepth_ros.ros.launch_setup import (
    LAUNCH_ARGUMENTS,
    MULTI_CAMERA_ARGUMENTS,
    multi_camera_description,
    node_description,
    parameter_overrides,
    read_cameras,
)

LAUNCH_FILES = {
    'depth.launch.py': ('Node', 'depth_node', 'launch_description'),
    'depth_lifecycle.launch.py': ('LifecycleNode', 'depth_lifecycle_node', 'launch_description'),
    'multi_camera.launch.py': ('Node', 'depth_node', 'multi_camera_launch_description'),
    'multi_camera_lifecycle.launch.py': ('LifecycleNode', 'depth_lifecycle_node',
                                         'multi_camera_launch_description')}


@pytest.mark.parametrize('name', sorted(LAUNCH_FILES))
def test_launch_files_start_the_installed_executables(name: str) -> None:
    tree = ast.parse((REPO / 'launch' / name).read_text())
    action, executable, describe = LAUNCH_FILES[name]
    imports = {(node.module, alias.name) for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert ('launch_ros.actions', action) in imports
    assert ('zoedepth_ros.ros.launch_actions', describe) in imports
    (call,) = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
               and getattr(node.func, 'id', '') == describe]
    assert [ast.unparse(arg) for arg in call.args] == [action, repr(executable)]
    setup = (REPO / 'setup.py').read_text()
    entry = f'{executable} = zoedepth_ros.ros.'
    assert entry in setup and "glob('launch/*.launch.py')" in setup
    module, function = setup.split(entry)[1].split("'")[0].split(':')
    assert callable(getattr(importlib.import_module(f'zoedepth_ros.ros.{module}'), function))


def test_arguments_are_documented_and_override_nothing_by_default() -> None:
    names = [a.name for a in LAUNCH_ARGUMENTS]
    assert set(names) >= {'image', 'camera_info', 'params_file', 'model', 'device', 'frame_id',
                          'namespace', 'use_sim_time', 'node_name', 'log_level'}
    assert all(a.description for a in LAUNCH_ARGUMENTS)
    declared = {spec.name for spec in parameter_specs()} | {'use_sim_time'}
    assert {a.parameter for a in LAUNCH_ARGUMENTS if a.parameter} <= declared
    defaults = {a.name: a.default for a in LAUNCH_ARGUMENTS}
    # The params file wins: launch defaults must not override any parameter.
    assert parameter_overrides(defaults) == {}
    described = node_description(defaults, '/share/depth.yaml')
    assert described['parameters'] == ['/share/depth.yaml']
    assert described['remappings'] == [('image', '/camera/image_raw'),
                                       ('camera_info', '/camera/camera_info')]
    assert described['arguments'] == ['--ros-args', '--log-level', 'info']
    given = node_description({**defaults, 'model': 'ZoeD_M12_N', 'use_sim_time': 'True',
                              'image': '/cam/rect'}, 'mine.yaml', 'depth_lifecycle_node')
    assert given['parameters'] == ['mine.yaml', {'model': 'ZoeD_M12_N', 'use_sim_time': True}]
    assert given['executable'] == 'depth_lifecycle_node'
    assert given['remappings'][0] == ('image', '/cam/rect')
    with pytest.raises(ConfigError, match='use_sim_time:=yes: expected true or false'):
        parameter_overrides({'use_sim_time': 'yes'})


def _parameter(probe: Probe, node: str, name: str) -> Any:
    value = probe.call(GetParameters, f'{node}/get_parameters',
                       GetParameters.Request(names=[name])).values[0]
    return value.string_value or value.bool_value


def _as_launch_ros_starts(description: dict[str, Any], folder: Path) -> list[Path]:
    """The parameter files launch_ros passes: the file itself, then each dictionary dumped
    under ``/**: ros__parameters:``."""
    files = []
    for index, entry in enumerate(description['parameters']):
        if isinstance(entry, dict):
            path = folder / f'launch_params_{index}.yaml'
            path.write_text(yaml.safe_dump({'/**': {'ros__parameters': entry}}))
            entry = path
        files.append(Path(entry))
    return files


@pytest.mark.parametrize('given', ['', 'override.yaml'])
def test_params_file_values_win_unless_a_launch_argument_is_given(tmp_path: Path,
                                                                  given: str) -> None:
    """With params_file:=mine.yaml and no model:= argument, the node runs mine.yaml's model;
    with model:=... it runs that one (a launch default never replaces the file's value)."""
    cfg = dataclasses.replace(get_config('zoedepth_tiny_nk'), img_size=(64, 96))
    for model in ('mine.yaml', 'override.yaml'):
        save_config(cfg, tmp_path / model)
    mine = tmp_path / 'params.yaml'
    mine.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'model': str(tmp_path / 'mine.yaml'), 'random_weights': True, 'device': 'cpu'}}}))
    values = {a.name: a.default for a in LAUNCH_ARGUMENTS}
    values.update(params_file=str(mine), model=str(tmp_path / given) if given else '',
                  namespace='/launch')
    description = node_description(values, values['params_file'])
    node = NodeProcess(tmp_path / 'node.log', description['namespace'], {},
                       params_files=_as_launch_ros_starts(description, tmp_path))
    probe = Probe('launch_probe')
    try:
        expected = tmp_path / (given or 'mine.yaml')
        assert _parameter(probe, '/launch/depth_node', 'model') == str(expected)
        assert _parameter(probe, '/launch/depth_node', 'random_weights') is True
    finally:
        probe.close()
        assert node.stop() == 0, node.log()


CAMERAS_YAML = """
cameras:
  - name: front
    image: /front/image_raw
    camera_info: /front/camera_info
    frame_id: front_optical_frame
  - name: rear
    image: /rear/image_raw
    camera_info: /rear/camera_info
    sparse_depth: /rear/tof
    min_range: 0.5
    anchor: {extrinsic: {enabled: true, x: 0.1}}
"""


def test_the_cameras_file_becomes_parameters_and_remappings() -> None:
    cameras = read_cameras(CAMERAS_YAML, 'cams.yaml')
    values = {a.name: a.default for a in MULTI_CAMERA_ARGUMENTS}
    described = multi_camera_description({**values, 'model': 'ZoeD_M12_NK'}, 'depth.yaml',
                                         cameras)
    assert described['parameters'] == ['depth.yaml', {
        'model': 'ZoeD_M12_NK', 'cameras': ['front', 'rear'],
        'front.frame_id': 'front_optical_frame', 'rear.min_range': 0.5,
        'rear.anchor.extrinsic.enabled': True, 'rear.anchor.extrinsic.x': 0.1}]
    assert described['remappings'] == [
        ('front/image', '/front/image_raw'), ('front/camera_info', '/front/camera_info'),
        ('rear/image', '/rear/image_raw'), ('rear/camera_info', '/rear/camera_info'),
        ('rear/sparse_depth', '/rear/tof')]
    assert {'image', 'camera_info', 'frame_id'}.isdisjoint(a.name for a in MULTI_CAMERA_ARGUMENTS)
    shipped = read_cameras((REPO / 'config' / 'cameras.yaml').read_text(), 'cameras.yaml')
    assert [camera['name'] for camera in shipped] == ['front', 'rear']


@pytest.mark.parametrize('text, message', [
    ('cameras: []', 'cams.yaml: expected "cameras:" with a list of cameras'),
    ('cameras:\n  - {name: a, image: /a}', 'cams.yaml: camera a: needs camera_info'),
    ('cameras:\n  - {name: a, image: /a, camera_info: /b, fov: 70.0}',
     'cams.yaml: camera a: unknown key(s) fov; allowed: name, image'),
    ('cameras:\n  - {name: a, image: /a, camera_info: /b}\n  - {name: a, image: /c, '
     'camera_info: /d}', 'cameras: a named more than once'),
    ('cameras: [: x', 'cams.yaml: not YAML'),
])
def test_a_bad_cameras_file_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_cameras(text, 'cams.yaml')


def test_the_multi_camera_launch_serves_each_camera_on_its_topics(tmp_path: Path,
                                                                 tiny_model_yaml: Path) -> None:
    """The node as multi_camera.launch.py starts it: each camera's remapped inputs in, its
    outputs under its name."""
    from node_harness import make_image, serve, stamp_header, test_image
    from sensor_msgs.msg import Image

    mine = tmp_path / 'params.yaml'
    mine.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'model': str(tiny_model_yaml), 'random_weights': True, 'device': 'cpu'}}}))
    values = {**{a.name: a.default for a in MULTI_CAMERA_ARGUMENTS}, 'namespace': '/two'}
    description = multi_camera_description(values, str(mine),
                                           read_cameras(CAMERAS_YAML, 'cams.yaml'))
    node = NodeProcess(tmp_path / 'node.log', description['namespace'], {},
                       remaps=dict(description['remappings']),
                       params_files=_as_launch_ros_starts(description, tmp_path))
    probe = Probe('multi_launch_probe')
    try:
        for camera in ('front', 'rear'):
            probe.subscribe(Image, f'/two/{camera}/depth/image')
            publisher = probe.publisher(Image, f'/{camera}/image_raw')
            header = stamp_header(5, 0, f'{camera}_cam_optical_frame')
            depth = serve(probe, make_image(test_image(64, 48), header), None, publisher, None,
                          f'/two/{camera}/depth/image')
            assert depth.header.frame_id == ('front_optical_frame' if camera == 'front'
                                             else 'rear_cam_optical_frame')
        assert _parameter(probe, '/two/depth_node', 'rear.anchor.extrinsic.enabled') is True
    finally:
        probe.close()
        assert node.stop() == 0, node.log()
