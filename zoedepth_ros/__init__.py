"""Monocular metric depth (ZoeDepth) for ROS 2: model, inference, tools and node."""

__version__ = '0.1.0'
