"""Counters, timings and last values of one camera stream (thread-safe, ROS-free).

Updated from the subscription callbacks and the worker thread (every method takes the lock);
the node publishes each period's :class:`Snapshot` on ``/diagnostics``.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field

from zoedepth_ros.anchoring import Alignment
from zoedepth_ros.pipeline.outputs import FrameOutputs

COUNTERS = ('received', 'published', 'dropped', 'malformed', 'idle_skipped', 'no_camera_info',
            'head_overruled')
"""``head_overruled``: frames that sparse-guided head selection gave to the head the router
did not choose."""


@dataclass
class Snapshot:
    """Statistics over one diagnostics period."""

    period_s: float
    counts: dict[str, int]
    totals: dict[str, int]
    inference_ms: list[float]
    stamp_age_s: float | None
    domain: str
    domain_probability: float
    fallback_intrinsics: bool
    alignment: Alignment | None = None
    routed_domain: str = ''


@dataclass
class StreamStats:
    """Thread-safe counters, timings and last values of one camera stream."""

    window: int = 200
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    fallback_intrinsics: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _marks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    _inference_ms: deque[float] = field(default_factory=deque)
    _stamp_age_s: float | None = None
    _last: tuple[str, float, Alignment | None, str] = ('', math.nan, None, '')
    """domain, its router probability, alignment and routed domain of the last frame (not the
    frame itself: its arrays would stay alive until the next one)."""

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.totals[name] += amount

    def record_output(self, outputs: FrameOutputs, stamp_age_s: float) -> None:
        """A published frame: its model time, the age of its stamp, its head and anchoring."""
        with self._lock:
            self._last = (outputs.domain, outputs.domain_probs.get(outputs.domain, 1.0),
                          outputs.alignment, outputs.routed_domain)
            self.totals['published'] += 1
            self.totals['head_overruled'] += outputs.domain != outputs.routed_domain
            self._inference_ms.append(outputs.timings_ms.get('model', math.nan))
            while len(self._inference_ms) > self.window:
                self._inference_ms.popleft()
            self._stamp_age_s = stamp_age_s

    def snapshot(self, period_s: float) -> Snapshot:
        """Counts since the previous snapshot plus totals and recent timings."""
        with self._lock:
            counts = {name: self.totals[name] - self._marks[name] for name in COUNTERS}
            self._marks = dict(self.totals)
            domain, probability, alignment, routed = self._last
            return Snapshot(period_s, counts, dict(self.totals), list(self._inference_ms),
                            self._stamp_age_s, domain, probability, self.fallback_intrinsics,
                            alignment, routed)
