"""What the launch files start, as plain Python (no launch imports): tests call it directly.

``launch/depth.launch.py`` and ``launch/depth_lifecycle.launch.py`` declare
:data:`LAUNCH_ARGUMENTS`, read their values at launch time and pass
:func:`node_description` to ``launch_ros.actions.Node`` / ``LifecycleNode``. Precedence
follows ROS 2 conventions: the parameters file sets every parameter; a launch argument given
on the command line (``model:=...``) overrides its parameter, and one left empty does not, so
``params_file:=mine.yaml`` is never silently overridden by launch defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoedepth_ros.errors import ConfigError


@dataclass(frozen=True)
class LaunchArgument:
    """A launch argument: name, default, description, and the node parameter it overrides."""

    name: str
    default: str
    description: str
    parameter: str = ''


LAUNCH_ARGUMENTS = (
    LaunchArgument('image', '/camera/image_raw',
                   'Input sensor_msgs/Image topic (rectified preferred).'),
    LaunchArgument('camera_info', '/camera/camera_info', 'CameraInfo of the input image.'),
    LaunchArgument('params_file', '', 'Parameters file (/**: ros__parameters:); empty = the '
                   "package's config/depth.yaml."),
    LaunchArgument('namespace', '', 'Namespace of the node and its outputs.'),
    LaunchArgument('node_name', 'depth_node', 'Node name.'),
    LaunchArgument('model', '', 'Overrides the model parameter (ZoeD_M12_NK, zoedepth_demo_nk, '
                   'a checkpoint or .onnx file); empty = the params file value.', 'model'),
    LaunchArgument('device', '', 'Overrides the device parameter (auto | cpu | cuda | cuda:N); '
                   'empty = the params file value.', 'device'),
    LaunchArgument('frame_id', '', 'Overrides the output frame_id parameter; empty = the '
                   'params file value.', 'frame_id'),
    LaunchArgument('use_sim_time', '', 'true: use /clock (bag replay with --clock); empty = '
                   'the params file value (false by default).', 'use_sim_time'),
    LaunchArgument('log_level', 'info', 'debug | info | warn | error.'),
)
"""Every argument both launch files declare, in order."""

_BOOLEANS = {'use_sim_time'}


def parameter_overrides(values: dict[str, str]) -> dict[str, Any]:
    """Node parameters set by launch arguments given a value (empty ones set nothing).

    Raises:
        ConfigError: a boolean argument that is neither true nor false.
    """
    overrides: dict[str, Any] = {}
    for argument in LAUNCH_ARGUMENTS:
        value = values.get(argument.name, '')
        if not argument.parameter or value == '':
            continue
        if argument.parameter in _BOOLEANS:
            if value.lower() not in ('true', 'false'):
                raise ConfigError(f'{argument.name}:={value}: expected true or false')
            overrides[argument.parameter] = value.lower() == 'true'
        else:
            overrides[argument.parameter] = value
    return overrides


def node_description(values: dict[str, str], params_file: str, executable: str = 'depth_node'
                     ) -> dict[str, Any]:
    """Keyword arguments of ``launch_ros.actions.Node`` (or ``LifecycleNode``).

    Args:
        values: launch argument values (strings, as launch performs them).
        params_file: the parameters file to load (``values['params_file']`` or the installed
            default).
        executable: ``depth_node`` or ``depth_lifecycle_node``.
    """
    overrides = parameter_overrides(values)
    return {
        'package': 'zoedepth_ros',
        'executable': executable,
        'name': values.get('node_name') or 'depth_node',
        'namespace': values.get('namespace', ''),
        'parameters': [params_file] + ([overrides] if overrides else []),
        'remappings': [('image', values.get('image') or '/camera/image_raw'),
                       ('camera_info', values.get('camera_info') or '/camera/camera_info')],
        'arguments': ['--ros-args', '--log-level', values.get('log_level') or 'info'],
        'output': 'screen',
        'emulate_tty': True,
    }
