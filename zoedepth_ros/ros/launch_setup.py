"""What the launch files start, as plain Python (no launch imports): tests call it directly.

``launch/depth.launch.py`` and ``launch/depth_lifecycle.launch.py`` declare
:data:`LAUNCH_ARGUMENTS`, read their values at launch time and pass
:func:`node_description` to ``launch_ros.actions.Node`` / ``LifecycleNode``;
``launch/multi_camera.launch.py`` and its lifecycle variant do the same with
:data:`MULTI_CAMERA_ARGUMENTS`, a cameras YAML (:func:`read_cameras`) and
:func:`multi_camera_description`. Precedence
follows ROS 2 conventions: the parameters file sets every parameter; a launch argument given
on the command line (``model:=...``) overrides its parameter, and one left empty does not, so
``params_file:=mine.yaml`` is never silently overridden by launch defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from zoedepth_ros.config import flatten
from zoedepth_ros.errors import ConfigError
from zoedepth_ros.ros.camera_list import CAMERA_OVERRIDES, check_camera_names


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


MULTI_CAMERA_ARGUMENTS = (
    LaunchArgument('cameras_file', '', 'Cameras YAML (a "cameras:" list of name, image, '
                   'camera_info, optional sparse_depth / sparse_points topics and per-camera '
                   "overrides); empty = the package's config/cameras.yaml."),
    *(argument for argument in LAUNCH_ARGUMENTS
      if argument.name not in ('image', 'camera_info', 'frame_id')),
)
"""The arguments of multi_camera.launch.py and its lifecycle variant."""

CAMERA_TOPICS = ('image', 'camera_info', 'sparse_depth', 'sparse_points')
"""Input topics a camera entry remaps (image and camera_info are required)."""


def read_cameras(text: str, source: str) -> list[dict[str, Any]]:
    """The camera entries of a cameras YAML: each with ``name``, its input topics and its
    overrides (nested or dotted keys: ``anchor: {extrinsic: {x: 0.1}}`` or
    ``anchor.extrinsic.x: 0.1``).

    Raises:
        ConfigError: naming ``source`` and the entry: not a list, an unknown key, a missing
            image or camera_info topic, a bad or repeated name.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f'{source}: not YAML: {err}') from None
    entries = data.get('cameras') if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f'{source}: expected "cameras:" with a list of cameras')
    allowed = {'name', *CAMERA_TOPICS, *CAMERA_OVERRIDES}
    cameras = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f'{source}: camera {index + 1} is not a mapping')
        flat = flatten(entry)
        where = f'{source}: camera {flat.get("name", index + 1)}'
        unknown = sorted(set(flat) - allowed)
        if unknown:
            raise ConfigError(f'{where}: unknown key(s) {", ".join(unknown)}; allowed: name, '
                              f'{", ".join(CAMERA_TOPICS)}, {", ".join(CAMERA_OVERRIDES)}')
        missing = [key for key in ('name', 'image', 'camera_info') if not flat.get(key)]
        if missing:
            raise ConfigError(f'{where}: needs {", ".join(missing)}')
        cameras.append({key: str(value) if key == 'name' else value
                        for key, value in flat.items()})
    check_camera_names([camera['name'] for camera in cameras])
    return cameras


def multi_camera_description(values: dict[str, str], params_file: str,
                             cameras: list[dict[str, Any]],
                             executable: str = 'depth_node') -> dict[str, Any]:
    """Keyword arguments of ``launch_ros.actions.Node`` (or ``LifecycleNode``) for one node
    that serves ``cameras`` (from :func:`read_cameras`): the ``cameras`` parameter, each
    camera's overrides as ``<camera>.<parameter>``, its input topics remapped."""
    overrides = parameter_overrides(values)
    overrides['cameras'] = [camera['name'] for camera in cameras]
    remappings = []
    for camera in cameras:
        name = camera['name']
        for key, value in camera.items():
            if key in CAMERA_OVERRIDES:
                overrides[f'{name}.{key}'] = value
            elif key in CAMERA_TOPICS:
                remappings.append((f'{name}/{key}', str(value)))
    return {
        'package': 'zoedepth_ros',
        'executable': executable,
        'name': values.get('node_name') or 'depth_node',
        'namespace': values.get('namespace', ''),
        'parameters': [params_file, overrides],
        'remappings': remappings,
        'arguments': ['--ros-args', '--log-level', values.get('log_level') or 'info'],
        'output': 'screen',
        'emulate_tty': True,
    }
