"""The names of a node's cameras and what each may override (standard library only: the
launch files use it inside the ``ros2 launch`` process)."""

from __future__ import annotations

import re

from zoedepth_ros.errors import ConfigError

CAMERA_OVERRIDES = ('frame_id', 'fov_deg', 'min_range', 'max_range', 'input_transport',
                    'sync_mode', 'sync_slop_s', 'anchor.extrinsic.enabled', 'anchor.extrinsic.x',
                    'anchor.extrinsic.y', 'anchor.extrinsic.z', 'anchor.extrinsic.qx',
                    'anchor.extrinsic.qy', 'anchor.extrinsic.qz', 'anchor.extrinsic.qw')
"""Node parameters a camera can override as ``<camera>.<parameter>`` (read-only)."""

_CAMERA_NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')


def check_camera_names(names: list[str]) -> tuple[str, ...]:
    """The camera names, each a valid ROS name token, none twice (ConfigError otherwise)."""
    for name in names:
        if not _CAMERA_NAME.match(name):
            raise ConfigError(f'cameras: {name!r} is not a valid camera name (a letter, then '
                              'letters, digits or underscores)')
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f'cameras: {", ".join(twice)} named more than once')
    return tuple(names)
