"""Names that users give to cameras, one rule for the node and bag eval (standard library
only: the ``ros2 launch`` process imports it through the launch files)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_CAMERA_NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')
CAMERA_NAME_RULE = 'a letter, then letters, digits or underscores'
"""The rule, as error messages state it (a valid ROS name token)."""


def is_camera_name(name: str) -> bool:
    return bool(_CAMERA_NAME.match(name))


def repeated(values: Iterable[str]) -> list[str]:
    """The values given more than once, sorted."""
    seen: set[str] = set()
    twice: set[str] = set()
    for value in values:
        (twice if value in seen else seen).add(value)
    return sorted(twice)
