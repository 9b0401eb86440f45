"""Newest-frame-wins hand-over and image/camera_info stamp matching (plain Python, no rclpy).

``LatestSlot`` is the one-element queue between the subscription callbacks and the inference
worker: a new frame replaces the waiting one, so output lag stays bounded by one inference.
``StampMatcher`` stands in for message_filters' ApproximateTimeSynchronizer on the two topics.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar('T')


@dataclass
class Frame:
    """A converted input waiting for the worker."""

    header: Any
    stamp_ns: int
    rgb: np.ndarray
    info: Any | None = None


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

    def close(self) -> None:
        """Wake a waiting ``take`` for shutdown."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()


class StampMatcher:
    """Pairs images with the camera_info of the closest stamp within ``slop_ns``.

    Keeps the newest ``history`` CameraInfo messages and at most one image waiting for its
    CameraInfo (a newer image replaces it; the replaced one counts in ``unmatched``).
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

    def _closest(self, stamp: int) -> Any | None:
        best = min(self._infos, key=lambda item: abs(item[0] - stamp), default=None)
        if best is None or abs(best[0] - stamp) > self.slop_ns:
            return None
        return best[1]

    def add_image(self, stamp: int, image: Any) -> tuple[Any, Any] | None:
        """Return (image, info) when a CameraInfo matches; else keep the image waiting."""
        with self._lock:
            info = self._closest(stamp)
            if info is not None:
                return image, info
            if self._pending is not None:
                self.unmatched += 1
            self._pending = (stamp, image)
            return None

    def add_info(self, stamp: int, info: Any) -> tuple[Any, Any] | None:
        """Store ``info``; return (image, info) if it completes the waiting image."""
        with self._lock:
            self._infos.append((stamp, info))
            if self._pending is None or abs(self._pending[0] - stamp) > self.slop_ns:
                return None
            image, self._pending = self._pending[1], None
            return image, info
