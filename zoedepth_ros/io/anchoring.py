"""Wire formats of metric anchoring (ROS-free): sparse inputs in, the alignment out.

- :func:`cloud_xyz` reads the x, y, z fields of a ``sensor_msgs/PointCloud2`` (rclpy messages
  and rosbags' dataclasses alike: ``.fields``, ``.point_step``, ``.data``...), any layout,
  float32 or float64, either byte order; NaN points are dropped.
- :class:`AlignmentFields` is what the node publishes on ``depth/alignment``
  (``std_msgs/Float32MultiArray``, one labelled dimension).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zoedepth_ros.errors import InputError
from zoedepth_ros.io.messages import as_uint8

_FLOAT_TYPES = {7: 'f4', 8: 'f8'}  # sensor_msgs/PointField FLOAT32, FLOAT64
MAX_CLOUD_POINTS = 4_000_000


def cloud_xyz(msg: Any) -> np.ndarray:
    """(N, 3) float64 points of a PointCloud2's x, y, z fields, NaN/inf points dropped.

    Raises:
        InputError: a field is missing or not float32/float64, or the data is too short.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.point_step)
    count = height * width
    if count > MAX_CLOUD_POINTS:
        raise InputError(f'point cloud of {count} points is larger than {MAX_CLOUD_POINTS}')
    fields = {str(f.name): f for f in msg.fields}
    order = '>' if msg.is_bigendian else '<'
    data = as_uint8(msg.data)
    row_step = int(msg.row_step) or width * step
    needed = (height - 1) * row_step + width * step if count else 0
    if data.size < needed:
        raise InputError(f'point cloud data has {data.size} bytes, {height}x{width} points '
                         f'of {step} bytes need {needed}')
    columns = []
    for name in ('x', 'y', 'z'):
        field = fields.get(name)
        if field is None or int(field.datatype) not in _FLOAT_TYPES:
            raise InputError(f'point cloud needs float32/float64 x, y, z fields; has '
                             f'{sorted(fields)}')
        dtype = np.dtype(order + _FLOAT_TYPES[int(field.datatype)])
        if int(field.offset) + dtype.itemsize > step:
            raise InputError(f'field {name} at offset {field.offset} exceeds point_step {step}')
        rows = np.lib.stride_tricks.as_strided(
            data[int(field.offset):], shape=(height, width, dtype.itemsize),
            strides=(row_step, step, 1)) if count else np.empty((0, 0, dtype.itemsize),
                                                                np.uint8)
        columns.append(np.ascontiguousarray(rows).view(dtype).reshape(-1).astype(np.float64))
    points = np.stack(columns, axis=1)
    return points[np.isfinite(points).all(axis=1)]


ALIGNMENT_LABELS = ('scale', 'shift', 'applied', 'samples', 'inliers', 'residual',
                    'frame_scale')
"""Order of the values on ``depth/alignment`` (the dimension's label lists them)."""


@dataclass(frozen=True)
class AlignmentFields:
    """Values of ``depth/alignment``: see :data:`ALIGNMENT_LABELS` (applied is 0 or 1;
    residual and frame_scale are NaN without a fit)."""

    values: tuple[float, ...]

    @property
    def label(self) -> str:
        return ','.join(ALIGNMENT_LABELS)

    @classmethod
    def of(cls, alignment: Any) -> AlignmentFields:
        """From a ``zoedepth_ros.anchoring.Alignment``."""
        return cls((alignment.scale, alignment.shift, float(alignment.applied),
                    float(alignment.samples), float(alignment.inliers), alignment.residual,
                    alignment.frame_scale))
