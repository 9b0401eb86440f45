"""Start zoedepth_ros depth_lifecycle_node (managed: configure loads the model, activate serves).

    ros2 launch zoedepth_ros depth_lifecycle.launch.py image:=/camera/color/image_raw \\
        camera_info:=/camera/color/camera_info
    ros2 lifecycle set /depth_node configure && ros2 lifecycle set /depth_node activate

Same arguments and parameter precedence as depth.launch.py (zoedepth_ros/ros/launch_setup.py);
the node starts unconfigured, for a lifecycle manager (e.g. nav2_lifecycle_manager) to drive.
"""

from __future__ import annotations

from launch_ros.actions import LifecycleNode

from zoedepth_ros.ros.launch_actions import launch_description


def generate_launch_description():  # noqa: ANN201 (launch's entry point)
    return launch_description(LifecycleNode, 'depth_lifecycle_node')
