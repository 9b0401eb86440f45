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
from pathlib import Path
from typing import Any

import pytest
import yaml
from node_harness import REPO, WAIT_S, NodeProcess, Probe, wait_until
from rcl_interfaces.srv import GetParameters

from zoedepth_ros.config import save_config
from zoedepth_ros.errors import ConfigError
from zoedepth_ros.model.config import get_config
from zoedepth_ros.ros.config import parameter_specs
from zoedepth_ros.ros.launch_setup import (
    LAUNCH_ARGUMENTS,
    node_description,
    parameter_overrides,
)

LAUNCH_FILES = {'depth.launch.py': ('Node', 'depth_node'),
                'depth_lifecycle.launch.py': ('LifecycleNode', 'depth_lifecycle_node')}


@pytest.mark.parametrize('name', sorted(LAUNCH_FILES))
def test_launch_files_start_the_installed_executables(name: str) -> None:
    tree = ast.parse((REPO / 'launch' / name).read_text())
    action, executable = LAUNCH_FILES[name]
    imports = {(node.module, alias.name) for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert ('launch_ros.actions', action) in imports
    assert ('zoedepth_ros.ros.launch_actions', 'launch_description') in imports
    (call,) = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
               and getattr(node.func, 'id', '') == 'launch_description']
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
    client = probe.node.create_client(GetParameters, f'{node}/get_parameters')
    assert client.wait_for_service(timeout_sec=WAIT_S)
    future = client.call_async(GetParameters.Request(names=[name]))
    wait_until(future.done, what='get_parameters response')
    probe.node.destroy_client(client)
    value = future.result().values[0]
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
