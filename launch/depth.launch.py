"""Start zoedepth_ros depth_node on a camera.

    ros2 launch zoedepth_ros depth.launch.py image:=/camera/color/image_raw \\
        camera_info:=/camera/color/camera_info model:=ZoeD_M12_NK device:=cuda

Outputs (relative to `namespace`): depth/image, depth/camera_info, points, depth/std,
depth/preview, domain; /diagnostics. Parameters: config/depth.yaml (`params_file`), with
`model`, `device` and `use_sim_time` overriding it.
"""

from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument('image', default_value='/camera/image_raw',
                              description='Input sensor_msgs/Image topic (rectified preferred).'),
        DeclareLaunchArgument('camera_info', default_value='/camera/camera_info',
                              description='CameraInfo of the input image.'),
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution(
                [FindPackageShare('zoedepth_ros'), 'config', 'depth.yaml']),
            description='Parameters file (/**: ros__parameters:).'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and its outputs.'),
        DeclareLaunchArgument('node_name', default_value='depth_node',
                              description='Node name.'),
        DeclareLaunchArgument('model', default_value='zoedepth_demo_nk',
                              description='Weights name (ZoeD_M12_NK ...), preset or config; '
                              'overrides params_file.'),
        DeclareLaunchArgument('device', default_value='auto',
                              description='auto | cpu | cuda | cuda:N; overrides params_file.'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock (bag replay with --clock).'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='debug | info | warn | error.'),
    ]
    overrides = {
        'model': LaunchConfiguration('model'),
        'device': LaunchConfiguration('device'),
        'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool),
    }
    node = Node(
        package='zoedepth_ros',
        executable='depth_node',
        name=LaunchConfiguration('node_name'),
        namespace=LaunchConfiguration('namespace'),
        parameters=[LaunchConfiguration('params_file'), overrides],
        remappings=[('image', LaunchConfiguration('image')),
                    ('camera_info', LaunchConfiguration('camera_info'))],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
        output='screen',
        emulate_tty=True,
    )
    return LaunchDescription(arguments + [node])
