"""Start one zoedepth_ros depth_node that serves several cameras from one batched model.

    ros2 launch zoedepth_ros multi_camera.launch.py cameras_file:=my_cameras.yaml \\
        model:=ZoeD_M12_NK device:=cuda

The cameras YAML (default: the package's config/cameras.yaml) lists each camera's name, image
and camera_info topics, optional sparse_depth / sparse_points topics and overrides (frame_id,
fov_deg, min_range, max_range, input_transport, sync_mode, sync_slop_s, anchor.extrinsic.*).
Outputs per camera under <namespace>/<camera>/: depth/image, depth/camera_info, points,
depth/std, depth/preview, domain; /diagnostics with one status per camera. Arguments and
precedence: zoedepth_ros/ros/launch_setup.py (plain Python, tested).
"""

from __future__ import annotations

from launch_ros.actions import Node

from zoedepth_ros.ros.launch_actions import multi_camera_launch_description


def generate_launch_description():  # noqa: ANN201 (launch's entry point)
    return multi_camera_launch_description(Node, 'depth_node')
