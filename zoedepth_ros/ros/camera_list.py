"""The names of a node's cameras and what each may override (standard library only: the
launch files use it inside the ``ros2 launch`` process)."""

from __future__ import annotations

from zoedepth_ros.errors import ConfigError
from zoedepth_ros.names import CAMERA_NAME_RULE, is_camera_name, repeated

CAMERA_OVERRIDES = ('frame_id', 'fov_deg', 'min_range', 'max_range', 'input_transport',
                    'sync_mode', 'sync_slop_s', 'anchor.extrinsic.enabled', 'anchor.extrinsic.x',
                    'anchor.extrinsic.y', 'anchor.extrinsic.z', 'anchor.extrinsic.qx',
                    'anchor.extrinsic.qy', 'anchor.extrinsic.qz', 'anchor.extrinsic.qw')
"""Node parameters a camera can override as ``<camera>.<parameter>`` (read-only)."""


def check_camera_names(names: list[str]) -> tuple[str, ...]:
    """The camera names, each a valid ROS name token, none twice (ConfigError otherwise)."""
    for name in names:
        if not is_camera_name(name):
            raise ConfigError(f'cameras: {name!r} is not a valid camera name '
                              f'({CAMERA_NAME_RULE})')
    twice = repeated(names)
    if twice:
        raise ConfigError(f'cameras: {", ".join(twice)} named more than once')
    return tuple(names)
