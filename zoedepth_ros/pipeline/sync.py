"""Newest-frame-wins hand-over and image/camera_info stamp matching (ROS-free).

``LatestSlot`` is the one-element queue between the subscription callbacks and the inference
worker: a new frame replaces the waiting one, so output lag stays bounded by one inference.
``StampMatcher`` stands in for message_filters' ApproximateTimeSynchronizer on the two topics.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import numpy as np

from zoedepth_ros.io.messages import CameraInfoFields

T = TypeVar('T')


@dataclass
class Frame:
    """A decoded camera image waiting for the worker: its stamp, the frame id of its outputs,
    the HxWx3 uint8 RGB pixels and the CameraInfo paired with it (None: none yet)."""

    stamp_ns: int
    frame_id: str
    rgb: np.ndarray
    info: CameraInfoFields | None = None


class LatestSlot(Generic[T]):
    """Holds at most one item; ``put`` over a waiting item drops the older one."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> bool:
        """Store ``item``; return True if it replaced (dropped) a waiting item."""
        with self._condition:
            replaced = self._item is not None
            self._item = item
            self._condition.notify()
            return replaced

    def take(self, timeout_s: float) -> T | None:
        """Wait up to ``timeout_s`` for an item and remove it; None on timeout or close."""
        with self._condition:
            if self._item is None and not self._closed:
                self._condition.wait(timeout_s)
            item, self._item = self._item, None
            return item

    def take_nowait(self) -> T | None:
        """Remove and return the waiting item, or None."""
        with self._condition:
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake a waiting ``take`` for shutdown."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()


class StampMatcher:
    """Pairs each image with the CameraInfo nearest in stamp, if within ``slop_ns``.

    ``slop_ns`` 0 pairs equal stamps only (exact sync). Keeps the newest ``history`` CameraInfo
    messages and at most one image waiting. An image is decided once a CameraInfo stamped at
    or after it has arrived (a later one can only be farther away): it pairs with the nearest
    stored CameraInfo, or is dropped when none lies within the slop. A newer image replaces a
    waiting one. Dropped and replaced images count in ``unmatched``.
    """

    def __init__(self, slop_ns: int, history: int = 32) -> None:
        self.slop_ns = slop_ns
        self.unmatched = 0
        self._infos: deque[tuple[int, Any]] = deque(maxlen=history)
        self._pending: tuple[int, Any] | None = None
        self._lock = threading.Lock()

    @property
    def has_infos(self) -> bool:
        """Whether any CameraInfo has arrived."""
        return bool(self._infos)

    @property
    def newest_info_s(self) -> float:
        """Stamp of the newest CameraInfo in seconds (NaN if none)."""
        return self._infos[-1][0] * 1e-9 if self._infos else float('nan')

    def _decide(self, stamp: int, image: Any) -> tuple[Any, Any] | None | Literal[False]:
        """(image, info), None when dropped, or False while later CameraInfos may come."""
        if not self._infos or max(item[0] for item in self._infos) < stamp:
            return False
        best = min(self._infos, key=lambda item: abs(item[0] - stamp))
        if abs(best[0] - stamp) > self.slop_ns:
            self.unmatched += 1
            return None
        return image, best[1]

    def add_image(self, stamp: int, image: Any) -> tuple[Any, Any] | None:
        """Return (image, info) when the image can be decided now; else keep it waiting."""
        with self._lock:
            decided = self._decide(stamp, image)
            if decided is not False:
                return decided
            if self._pending is not None:
                self.unmatched += 1
            self._pending = (stamp, image)
            return None

    def add_info(self, stamp: int, info: Any) -> tuple[Any, Any] | None:
        """Store ``info``; return (image, info) if it decides the waiting image."""
        with self._lock:
            self._infos.append((stamp, info))
            if self._pending is None:
                return None
            decided = self._decide(*self._pending)
            if decided is False:
                return None
            self._pending = None
            return decided
