"""Newest-frame-wins slot and image/camera_info stamp matching (no DDS needed)."""

from __future__ import annotations

import threading
import time

import pytest

from zoedepth_ros.pipeline.sync import LatestSlot, StampMatcher

MS = 1_000_000


def test_slot_keeps_only_the_newest_and_reports_drops() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True  # 1 and 2 dropped
    assert slot.take(0.01) == 3
    assert slot.take(0.01) is None


def test_slot_wakes_a_waiting_taker_and_closes() -> None:
    slot: LatestSlot[str] = LatestSlot()
    taken: list = []
    worker = threading.Thread(target=lambda: taken.append(slot.take(5.0)))
    worker.start()
    slot.put('frame')
    worker.join(2.0)
    assert taken == ['frame']
    start = time.monotonic()
    closer = threading.Thread(target=lambda: taken.append(slot.take(5.0)))
    closer.start()
    slot.close()
    closer.join(2.0)
    assert taken == ['frame', None] and time.monotonic() - start < 2.0


def test_matcher_pairs_closest_info_within_slop() -> None:
    matcher = StampMatcher(slop_ns=50 * MS)
    assert not matcher.has_infos
    assert matcher.add_info(1000 * MS, 'far') is None
    assert matcher.add_info(1980 * MS, 'near') is None
    assert matcher.add_info(2100 * MS, 'later') is None
    assert matcher.has_infos
    assert matcher.add_image(2000 * MS, 'image') == ('image', 'near')


def test_matcher_waits_for_late_info_and_counts_replaced_images() -> None:
    matcher = StampMatcher(slop_ns=50 * MS)
    assert matcher.add_image(3000 * MS, 'first') is None
    assert matcher.add_image(3100 * MS, 'second') is None  # replaces 'first'
    assert matcher.unmatched == 1 and str(matcher.newest_info_s) == 'nan'
    assert matcher.add_info(3080 * MS, 'early') is None  # a nearer one may still come
    assert matcher.newest_info_s == pytest.approx(3.08)
    assert matcher.add_info(3120 * MS, 'match') == ('second', 'early')  # 20 ms vs 20 ms: first
    assert matcher.add_info(3140 * MS, 'again') is None  # nothing waiting any more
    assert matcher.add_image(3300 * MS, 'lonely') is None
    assert matcher.add_info(3400 * MS, 'too far') is None  # decided: nothing within 50 ms
    assert matcher.unmatched == 2


def test_matcher_takes_the_nearest_not_the_first_within_the_slop() -> None:
    matcher = StampMatcher(slop_ns=50 * MS)
    assert matcher.add_image(2000 * MS, 'image') is None
    assert matcher.add_info(1960 * MS, 'within slop, 40 ms') is None
    assert matcher.add_info(1995 * MS, 'nearest, 5 ms') is None
    assert matcher.add_info(2030 * MS, 'after, 30 ms') == ('image', 'nearest, 5 ms')


def test_exact_matcher_pairs_equal_stamps_only() -> None:
    matcher = StampMatcher(slop_ns=0)
    assert matcher.add_info(1000 * MS, 'a') is None
    assert matcher.add_image(1000 * MS, 'same') == ('same', 'a')
    assert matcher.add_image(1001 * MS, 'off by 1 ms') is None
    assert matcher.add_info(1002 * MS, 'b') is None and matcher.unmatched == 1
