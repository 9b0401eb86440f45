"""tf2 lookups for sparse clouds in another frame than the camera's.

``tf2_ros`` comes with every ROS 2 installation but not with the pip-installed test
environment; without it, clouds in another frame are not used (the pipeline says so once).
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from rclpy.time import Time

from zoedepth_ros.anchoring.samples import Transform
from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import rigid_transform

try:
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the installation
    tf2_ros = None


class Tf2Lookup:
    """A :data:`~zoedepth_ros.anchoring.samples.Transform` through a tf2 buffer and listener
    on a node: clouds in another frame than the camera's are moved into the optical frame."""

    def __init__(self, node: Node) -> None:
        self.buffer = tf2_ros.Buffer()
        self.listener = tf2_ros.TransformListener(self.buffer, node)

    def __call__(self, xyz: np.ndarray, source: str, target: str | None,
                 stamp_ns: int) -> np.ndarray | None:
        if not target or not source or source == target:
            return None
        try:
            transform = self.buffer.lookup_transform(target, source,
                                                     Time(nanoseconds=stamp_ns)).transform
        except Exception as err:  # noqa: BLE001 - tf2's lookup exceptions vary by version
            raise InputError(f'no transform {source} -> {target} at the cloud stamp: {err}'
                             ) from None
        t, q = transform.translation, transform.rotation
        return rigid_transform(xyz, (t.x, t.y, t.z), (q.x, q.y, q.z, q.w))


def tf2_lookup(node: Node) -> Transform | None:
    """A :class:`Tf2Lookup` on ``node``, or None without tf2."""
    return None if tf2_ros is None else Tf2Lookup(node)
