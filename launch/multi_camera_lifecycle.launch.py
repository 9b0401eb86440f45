"""Start one managed zoedepth_ros node that serves several cameras (configure loads the model,
activate serves every camera).

    ros2 launch zoedepth_ros multi_camera_lifecycle.launch.py cameras_file:=my_cameras.yaml
    ros2 lifecycle set /depth_node configure && ros2 lifecycle set /depth_node activate

Same cameras YAML and arguments as multi_camera.launch.py (zoedepth_ros/ros/launch_setup.py).
"""

from __future__ import annotations

from launch_ros.actions import LifecycleNode

from zoedepth_ros.ros.launch_actions import multi_camera_launch_description


def generate_launch_description():  # noqa: ANN201 (launch's entry point)
    return multi_camera_launch_description(LifecycleNode, 'depth_lifecycle_node')
