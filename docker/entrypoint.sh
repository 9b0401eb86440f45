#!/bin/bash
# Container entry point: the ROS 2 Jazzy environment and the built workspace, then the command.
set -e
source /opt/ros/jazzy/setup.bash --
source /ws/install/setup.bash --
exec "$@"
