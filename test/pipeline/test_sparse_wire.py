"""Sparse-input and alignment wire formats: PointCloud2 x, y, z in any layout, the
alignment output's fields."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from zoedepth_ros.anchoring import Alignment
from zoedepth_ros.errors import InputError
from zoedepth_ros.pipeline.outputs import ALIGNMENT_LABELS, AlignmentFields
from zoedepth_ros.pointcloud import cloud_xyz


def cloud(points: np.ndarray, dtype: str = '<f4', pad: int = 4, rows: int = 1,
          row_pad: int = 0) -> SimpleNamespace:
    """A PointCloud2-like message: x y z of ``dtype`` then ``pad`` bytes per point."""
    item = np.dtype(dtype).itemsize
    step = 3 * item + pad
    width = len(points) // rows
    row_step = width * step + row_pad
    data = bytearray(rows * row_step)
    for index, point in enumerate(points):
        row, col = divmod(index, width)
        start = row * row_step + col * step
        data[start:start + 3 * item] = np.asarray(point, dtype=dtype).tobytes()
    datatype = 7 if item == 4 else 8
    fields = [SimpleNamespace(name=n, offset=i * item, datatype=datatype, count=1)
              for i, n in enumerate('xyz')] + [SimpleNamespace(name='intensity',
                                                               offset=3 * item, datatype=7,
                                                               count=1)]
    return SimpleNamespace(height=rows, width=width, point_step=step, row_step=row_step,
                           fields=fields, is_bigendian=dtype.startswith('>'),
                           data=bytes(data))


POINTS = np.array([[1.0, 2.0, 3.0], [-0.5, 0.25, 8.0], [np.nan, 0.0, 1.0], [4.0, 5.0, 6.0]])


@pytest.mark.parametrize('dtype, rows, row_pad', [('<f4', 1, 0), ('>f4', 2, 8),
                                                  ('<f8', 2, 0), ('>f8', 1, 3)])
def test_cloud_xyz_reads_every_layout_and_drops_nan_points(dtype: str, rows: int,
                                                           row_pad: int) -> None:
    xyz = cloud_xyz(cloud(POINTS, dtype, rows=rows, row_pad=row_pad))
    np.testing.assert_array_equal(xyz, POINTS[[0, 1, 3]])


def test_cloud_errors_name_the_problem() -> None:
    bad = cloud(POINTS)
    bad.fields = bad.fields[:2]
    with pytest.raises(InputError, match=r"x, y, z fields; has \['x', 'y'\]"):
        cloud_xyz(bad)
    short = cloud(POINTS)
    short.data = short.data[:-5]
    with pytest.raises(InputError, match='data has 59 bytes'):
        cloud_xyz(short)
    empty = cloud(POINTS[:0])
    assert cloud_xyz(empty).shape == (0, 3)


def test_alignment_fields_follow_the_labels() -> None:
    fields = AlignmentFields.of(Alignment(2.0, 0.1, True, 'fit', 50, 45, 0.02, 2.1, 0.8))
    assert dict(zip(ALIGNMENT_LABELS, fields.values)) == {
        'scale': 2.0, 'shift': 0.1, 'applied': 1.0, 'samples': 50.0, 'inliers': 45.0,
        'residual': 0.02, 'frame_scale': 2.1, 'coverage': 0.8}
    assert fields.label == 'scale,shift,applied,samples,inliers,residual,frame_scale,coverage'
