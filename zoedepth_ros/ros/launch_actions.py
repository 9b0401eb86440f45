"""The launch files' glue to launch / launch_ros, imported only by them on a ROS 2 install.

Declares :data:`~zoedepth_ros.ros.launch_setup.LAUNCH_ARGUMENTS` (or
``MULTI_CAMERA_ARGUMENTS``), reads their values when the launch runs and starts one node from
:func:`~zoedepth_ros.ros.launch_setup.node_description` (or ``multi_camera_description`` with
the cameras YAML): the tested logic; nothing here decides anything.
"""

from __future__ import annotations

from typing import Any

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.launch_context import LaunchContext  # (not `from launch`: at the repository root
from launch.launch_description import LaunchDescription  # mypy takes launch/ for the package)
from launch.substitutions import LaunchConfiguration

from zoedepth_ros.ros.launch_setup import (
    LAUNCH_ARGUMENTS,
    MULTI_CAMERA_ARGUMENTS,
    multi_camera_description,
    node_description,
    read_cameras,
)


def _share(path: str) -> str:
    return f"{get_package_share_directory('zoedepth_ros')}/{path}"


def launch_description(node_action: Any, executable: str) -> LaunchDescription:
    """Arguments plus one ``node_action`` (launch_ros Node or LifecycleNode) of ``executable``."""

    def start(context: LaunchContext, *args: Any, **kwargs: Any) -> list[Any]:
        values = {a.name: LaunchConfiguration(a.name).perform(context)
                  for a in LAUNCH_ARGUMENTS}
        params_file = values['params_file'] or _share('config/depth.yaml')
        return [node_action(**node_description(values, params_file, executable))]

    arguments = [DeclareLaunchArgument(a.name, default_value=a.default,
                                       description=a.description) for a in LAUNCH_ARGUMENTS]
    return LaunchDescription(arguments + [OpaqueFunction(function=start)])


def multi_camera_launch_description(node_action: Any, executable: str) -> LaunchDescription:
    """Arguments plus one ``node_action`` of ``executable`` serving the cameras of the cameras
    YAML (``cameras_file``)."""

    def start(context: LaunchContext, *args: Any, **kwargs: Any) -> list[Any]:
        values = {a.name: LaunchConfiguration(a.name).perform(context)
                  for a in MULTI_CAMERA_ARGUMENTS}
        params_file = values['params_file'] or _share('config/depth.yaml')
        cameras_file = values['cameras_file'] or _share('config/cameras.yaml')
        with open(cameras_file) as handle:
            cameras = read_cameras(handle.read(), cameras_file)
        return [node_action(**multi_camera_description(values, params_file, cameras,
                                                       executable))]

    arguments = [DeclareLaunchArgument(a.name, default_value=a.default,
                                       description=a.description)
                 for a in MULTI_CAMERA_ARGUMENTS]
    return LaunchDescription(arguments + [OpaqueFunction(function=start)])
