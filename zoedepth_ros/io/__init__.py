"""ROS-free wire formats and files: messages, rosbag2 reading and writing, images, clouds."""
