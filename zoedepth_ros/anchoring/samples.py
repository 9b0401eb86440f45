"""Sparse metric samples and the stream that pairs them with frames.

:class:`SparseSamples` holds samples as normalised pixel positions + metric z-depth, built from
a sparse depth image aligned with the camera (:meth:`SparseSamples.from_depth_image`) or from
3-D points in the camera's optical frame (:meth:`SparseSamples.from_points`), so one set of
samples serves a depth map of any size. :class:`SampleStream` is the one store of a camera
stream's sparse inputs, for the node (the newest few) and bag evaluation (a whole topic) alike:
one nearest-stamp rule, clouds brought into the optical frame by an injected transform.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from zoedepth_ros.anchoring.options import ExtrinsicOptions
from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera, rigid_transform


@dataclass(frozen=True)
class SparseSamples:
    """Metric samples at normalised image positions.

    Attributes:
        u, v: (N,) float32 positions as fractions of the image width / height, in [0, 1)
            (pixel column c of a W-wide image is u = (c + 0.5) / W).
        z: (N,) float32 metric z-depth in metres (> 0, finite).
    """

    u: np.ndarray
    v: np.ndarray
    z: np.ndarray

    def __len__(self) -> int:
        return int(self.z.size)

    @classmethod
    def from_depth_image(cls, depth_m: np.ndarray) -> SparseSamples:
        """Samples of a sparse depth image aligned with the camera (same field of view, any
        resolution): every finite pixel > 0 (NaN or 0 = no sample)."""
        if depth_m.ndim != 2:
            raise InputError(f'sparse depth must be (H, W), got {depth_m.shape}')
        height, width = depth_m.shape
        flat = depth_m.reshape(-1)
        index = np.flatnonzero((flat > 0) & (flat < np.inf))  # 2x faster than a 2-D nonzero
        rows, cols = np.divmod(index, width)
        return cls(((cols + 0.5) / width).astype(np.float32),
                   ((rows + 0.5) / height).astype(np.float32),
                   flat[index].astype(np.float32))

    @classmethod
    def from_points(cls, points: np.ndarray, camera: PinholeCamera) -> SparseSamples:
        """Samples of 3-D points (N, 3) in the camera's optical frame (x right, y down, z
        forward, metres), projected with ``camera``: those in front and inside the image."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        ahead = np.isfinite(points).all(axis=1) & (z > 1e-6)
        x, y, z = x[ahead], y[ahead], z[ahead]
        col = camera.fx * x / z + camera.cx + 0.5
        row = camera.fy * y / z + camera.cy + 0.5
        inside = (col >= 0) & (col < camera.width) & (row >= 0) & (row < camera.height)
        return cls((col[inside] / camera.width).astype(np.float32),
                   (row[inside] / camera.height).astype(np.float32),
                   z[inside].astype(np.float32))

    def thinned(self, limit: int) -> SparseSamples:
        """At most ``limit`` samples, taken by an even stride (self when already fewer)."""
        if len(self) <= limit:
            return self
        step = -(-len(self) // limit)
        return SparseSamples(self.u[::step], self.v[::step], self.z[::step])

    def pixels(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the samples in an H x W image (nearest pixel)."""
        rows = np.minimum((self.v * height).astype(np.int64), height - 1)
        cols = np.minimum((self.u * width).astype(np.int64), width - 1)
        return rows, cols


def values_at(image: Any, samples: SparseSamples) -> np.ndarray:
    """(N,) float64 values of an (H, W) array or tensor at the samples (one host copy)."""
    height, width = image.shape[-2:]
    rows, cols = samples.pixels(height, width)
    if isinstance(image, torch.Tensor):
        index = torch.from_numpy(rows * width + cols).to(image.device)
        return torch.take(image, index).double().cpu().numpy()
    return np.asarray(image)[rows, cols].astype(np.float64)  # only the samples converted


@dataclass(frozen=True)
class Points:
    """A decoded cloud: (N, 3) points and their frame (None: the camera's optical frame)."""

    xyz: np.ndarray
    frame_id: str | None


Transform = Callable[[np.ndarray, str, 'str | None', int], 'np.ndarray | None']
"""(points, their frame id, the optical frame id when known, stamp ns) -> the points in the
camera's optical frame, or None to keep them in their own frame; raises InputError when a
lookup fails."""


def extrinsic_transform(extrinsic: ExtrinsicOptions) -> Transform:
    """The :data:`Transform` of a fixed extrinsic: every cloud, whatever its frame, is moved
    by it into the optical frame."""
    def move(xyz: np.ndarray, source: str, target: str | None, stamp_ns: int) -> np.ndarray:
        return rigid_transform(xyz, extrinsic.translation, extrinsic.rotation)

    return move


class SampleStream:
    """Sparse inputs of one camera stream by stamp: sample sets (from sparse depth images) and
    clouds (:class:`Points`), thread-safe.

    Args:
        history: how many of each kind are kept (the newest); None keeps all.
        transform: brings a cloud in another frame into the optical frame as it is added
            (a fixed extrinsic, or a tf2 lookup); None keeps clouds as they come.
    """

    def __init__(self, history: int | None = 16, transform: Transform | None = None) -> None:
        self.history, self.transform = history, transform
        self._items: dict[str, tuple[list[int], list[Any]]] = {'depth': ([], []),
                                                                'points': ([], [])}
        self._lock = threading.Lock()
        self.received = 0

    def __len__(self) -> int:
        """How many sparse inputs have arrived (also those no longer kept)."""
        return self.received

    def add_samples(self, stamp_ns: int, samples: SparseSamples) -> None:
        """The samples of a sparse depth image."""
        self._add('depth', stamp_ns, samples)

    def add_points(self, stamp_ns: int, xyz: np.ndarray, frame_id: str,
                   camera_frame: str | None = None) -> None:
        """A cloud in ``frame_id`` (empty: the optical frame), through the transform;
        InputError when its lookup fails."""
        moved = None if self.transform is None else self.transform(xyz, frame_id,
                                                                   camera_frame, stamp_ns)
        if moved is not None:
            xyz, frame_id = moved, ''
        self._add('points', stamp_ns, Points(xyz, frame_id or None))

    def _add(self, kind: str, stamp_ns: int, item: Any) -> None:
        with self._lock:
            stamps, items = self._items[kind]
            at = bisect.bisect_right(stamps, stamp_ns)
            stamps.insert(at, stamp_ns)
            items.insert(at, item)
            if self.history is not None and len(stamps) > self.history:
                del stamps[0], items[0]
            self.received += 1

    def nearest(self, kind: str, stamp_ns: int, tolerance_ns: int) -> Any | None:
        """The ``kind`` ('depth' or 'points') item nearest ``stamp_ns`` within the tolerance
        (ties go to the earlier stamp), or None."""
        with self._lock:
            stamps, items = self._items[kind]
            at = bisect.bisect_left(stamps, stamp_ns)
            best = min((i for i in (at - 1, at) if 0 <= i < len(stamps)),
                       key=lambda i: abs(stamps[i] - stamp_ns), default=None)
            if best is None or abs(stamps[best] - stamp_ns) > tolerance_ns:
                return None
            return items[best]

    def samples_for(self, stamp_ns: int, tolerance_ns: int, camera: PinholeCamera,
                    camera_frame: str | None = None) -> tuple[SparseSamples | None, str | None]:
        """The samples nearest ``stamp_ns`` (a sparse depth image first, then a cloud projected
        with ``camera``) or None, and the frame id of a cloud left out because it is in another
        frame than ``camera_frame`` with no transform."""
        samples = self.nearest('depth', stamp_ns, tolerance_ns)
        if samples is not None:
            return samples, None
        points = self.nearest('points', stamp_ns, tolerance_ns)
        if points is None:
            return None, None
        if points.frame_id and camera_frame and points.frame_id != camera_frame:
            return None, points.frame_id
        return SparseSamples.from_points(points.xyz, camera), None
