"""launch/depth.launch.py, checked statically (launch_ros cannot be installed here).

The same start-up (params file + remaps) is exercised for real by test_depth_node.py, which
runs the node with ``--ros-args --params-file config/depth.yaml -r image:=...``.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from zoedepth_ros.ros.config import NodeConfig, parameter_specs, parameter_values

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / 'launch' / 'depth.launch.py'


@pytest.fixture(scope='module')
def tree() -> ast.Module:
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


def calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, 'id', getattr(node.func, 'attr', None)) == name]


def keyword(call: ast.Call, name: str) -> ast.expr:
    return next(k.value for k in call.keywords if k.arg == name)


def test_declares_the_documented_arguments(tree: ast.Module) -> None:
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert 'generate_launch_description' in functions
    declared = {ast.literal_eval(call.args[0]): call
                for call in calls(tree, 'DeclareLaunchArgument')}
    assert set(declared) >= {'image', 'camera_info', 'params_file', 'model', 'device',
                             'namespace', 'use_sim_time', 'node_name', 'log_level'}
    assert ast.literal_eval(keyword(declared['image'], 'default_value')) == '/camera/image_raw'
    # The model/device overrides must default to the node's defaults, or the launch file would
    # silently override config/depth.yaml with something else.
    defaults = parameter_values(NodeConfig())
    for name in ('model', 'device'):
        assert ast.literal_eval(keyword(declared[name], 'default_value')) == defaults[name]
    for call in declared.values():
        assert ast.literal_eval(keyword(call, 'description'))
    # The params file default is the installed share/zoedepth_ros/config/depth.yaml.
    join = keyword(declared['params_file'], 'default_value')
    parts = join.args[0].elts
    assert ast.unparse(parts[0]) == "FindPackageShare('zoedepth_ros')"
    assert [ast.literal_eval(p) for p in parts[1:]] == ['config', 'depth.yaml']
    assert (REPO / 'config' / 'depth.yaml').is_file()
    setup = (REPO / 'setup.py').read_text()
    assert "(f'share/{package_name}/config', glob('config/*.yaml'))" in setup
    assert "(f'share/{package_name}/launch', glob('launch/*.launch.py'))" in setup


def test_node_points_at_the_installed_executable(tree: ast.Module) -> None:
    (node,) = calls(tree, 'Node')
    assert ast.literal_eval(keyword(node, 'package')) == 'zoedepth_ros'
    executable = ast.literal_eval(keyword(node, 'executable'))
    setup = ast.parse((REPO / 'setup.py').read_text())
    scripts = [ast.literal_eval(n) for n in ast.walk(setup) if isinstance(n, ast.Constant)
               and isinstance(n.value, str) and n.value.startswith(f'{executable} =')]
    assert scripts == ['depth_node = zoedepth_ros.ros.depth_node:main']
    module, function = scripts[0].split('=')[1].strip().split(':')
    assert callable(getattr(importlib.import_module(module), function))
    # Remaps target the node's relative input names; outputs stay relative to the namespace.
    remaps = [tuple(e.elts) for e in keyword(node, 'remappings').elts]
    assert [ast.literal_eval(source) for source, _ in remaps] == ['image', 'camera_info']
    assert [ast.unparse(target) for _, target in remaps] == [
        "LaunchConfiguration('image')", "LaunchConfiguration('camera_info')"]
    assert ast.unparse(keyword(node, 'namespace')) == "LaunchConfiguration('namespace')"


def test_parameter_overrides_follow_the_params_file_and_are_declared(tree: ast.Module) -> None:
    (node,) = calls(tree, 'Node')
    parameters = keyword(node, 'parameters')
    assert ast.unparse(parameters.elts[0]) == "LaunchConfiguration('params_file')"
    overrides = next(a.value for a in ast.walk(tree) if isinstance(a, ast.Assign)
                     and a.targets[0].id == 'overrides')
    keys = {ast.literal_eval(k) for k in overrides.keys}
    declared = {spec.name for spec in parameter_specs()} | {'use_sim_time'}
    assert keys <= declared and {'model', 'device', 'use_sim_time'} <= keys
    # Typed override: use_sim_time must reach the node as a bool, not the string 'false'.
    sim_time = overrides.values[[ast.literal_eval(k) for k in overrides.keys].index(
        'use_sim_time')]
    assert ast.unparse(sim_time) == (
        "ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool)")
    arguments = [ast.unparse(e) for e in keyword(node, 'arguments').elts]
    assert arguments == ["'--ros-args'", "'--log-level'", "LaunchConfiguration('log_level')"]
