"""Start zoedepth_ros depth_node on a camera.

    ros2 launch zoedepth_ros depth.launch.py image:=/camera/color/image_raw \\
        camera_info:=/camera/color/camera_info model:=ZoeD_M12_NK device:=cuda

Outputs (relative to `namespace`): depth/image, depth/camera_info, points, depth/std,
depth/preview, domain; /diagnostics. Parameters come from `params_file` (default: the
package's config/depth.yaml); `model`, `device`, `frame_id` and `use_sim_time` override it only
when given. Arguments and precedence: zoedepth_ros/ros/launch_setup.py (plain Python, tested).
"""

from __future__ import annotations

from launch_ros.actions import Node

from zoedepth_ros.ros.launch_actions import launch_description


def generate_launch_description():  # noqa: ANN201 (launch's entry point)
    return launch_description(Node, 'depth_node')
