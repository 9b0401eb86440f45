"""ROS 2 adapters: the depth node, message builders and diagnostics (the only rclpy users)."""
