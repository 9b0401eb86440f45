"""Data access: message conversion, rosbag frames and datasets (ROS-free)."""
