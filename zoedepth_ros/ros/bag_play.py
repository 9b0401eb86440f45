"""Replay a rosbag2 through rclpy with its original timing (``zoedepth bag play``).

Messages are published as the raw CDR bytes stored in the bag (no decoding), on publishers of
the recorded message types, with RELIABLE KEEP_LAST QoS (which serves reliable and best-effort
subscribers alike), TRANSIENT_LOCAL for topics whose recorded publishers all were. With
``clock`` the bag time is published on ``/clock`` (run consumers with ``use_sim_time:=true``).
Reading goes through :func:`zoedepth_ros.io.bags.open_bag`, which parses no message definition,
so topics of any type replay as they were recorded. Playing every topic, those whose type is not
installed for rclpy are skipped with one log line (as ``ros2 bag play`` does); a topic named in
``topics`` must be playable.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import QosDurability
from rosgraph_msgs.msg import Clock

from zoedepth_ros.errors import BagError
from zoedepth_ros.io.bag_reader import open_bag, skipped_note

CLOCK_PERIOD_S = 0.025
"""Largest gap between /clock messages while waiting for the next message (40 Hz)."""


def message_class(msgtype: str) -> type:
    """The rclpy message class of 'package/msg/Name'; a clear error when it is not installed."""
    package, _, name = msgtype.rpartition('/')
    try:
        return getattr(importlib.import_module(package.replace('/', '.')), name)
    except (ImportError, AttributeError):
        raise BagError(f'message type {msgtype} is not installed for rclpy; install its '
                       f'package ({package.split("/")[0]}) or leave the topic out with '
                       '--topics') from None


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """While inside, SIGINT and SIGTERM set ``stop`` instead of raising (main thread only).

    A KeyboardInterrupt raised at an arbitrary point inside rclpy can leave a node's handles
    marked in use, and ``destroy_node`` then waits forever; a flag checked by the loops ends
    them cleanly within one wait period. The previous handlers come back on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.getsignal(number) for number in signals}
    for number in signals:
        signal.signal(number, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _wait_for_subscribers(node: Node, publishers: dict[str, Any], timeout_s: float,
                          running: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not running() or all(p.get_subscription_count() > 0 for p in publishers.values()):
            return
        time.sleep(0.05)
    missing = [t for t, p in publishers.items() if p.get_subscription_count() == 0]
    node.get_logger().warning(f'no subscriber after {timeout_s} s on {missing}; playing anyway')


def _sleep_until(target: float, clock_pub: Any, bag_now_ns: int, wall_start: float,
                 rate: float, running: Callable[[], bool]) -> None:
    """Sleep until the monotonic time ``target`` (or a stop), publishing /clock if asked."""
    while running():
        remaining = target - time.monotonic()
        if remaining <= 0:
            return
        if clock_pub is not None:
            elapsed_ns = int((time.monotonic() - wall_start) * rate * 1e9)
            _publish_clock(clock_pub, bag_now_ns + elapsed_ns)
        time.sleep(min(remaining, CLOCK_PERIOD_S))


def _publish_clock(publisher: Any, stamp_ns: int) -> None:
    message = Clock()
    message.clock.sec, message.clock.nanosec = divmod(stamp_ns, 1_000_000_000)
    publisher.publish(message)


def play_qos(connection: Any | None) -> QoSProfile:
    """RELIABLE KEEP_LAST 100 (serves reliable and best-effort subscribers alike), and
    TRANSIENT_LOCAL when every recorded publisher offered it (latched topics such as
    /tf_static reach subscribers that ask for it), else VOLATILE."""
    profiles = getattr(getattr(connection, 'ext', None), 'offered_qos_profiles', None) or []
    latched = bool(profiles) and all(q.durability == QosDurability.TRANSIENT_LOCAL
                                     for q in profiles)
    return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                      else DurabilityPolicy.VOLATILE)


def play_bag(path: Path | str, rate: float = 1.0, loop: bool = False,
             topics: Sequence[str] | None = None, clock: bool = False,
             wait_for_subscribers_s: float = 0.0, stop: threading.Event | None = None) -> int:
    """Publish the bag's messages; returns how many were published.

    Args:
        path: rosbag2 directory.
        rate: playback speed factor (2.0 = twice as fast).
        loop: start over at the end (until Ctrl-C or ``stop``).
        topics: play only these topics (default: all).
        clock: publish /clock with the bag time.
        wait_for_subscribers_s: before starting, wait up to this long until every played
            topic has a subscriber.
        stop: set by another thread to end the playback.
    """
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node('zoedepth_bag_player', context=context)
    published = 0
    try:
        with open_bag(path) as reader, stop_on_signals(stop or threading.Event()) as stop:
            publishers = _publishers(node, reader, topics)
            connections = [c for c in reader.connections if c.topic in publishers]
            clock_pub = (node.create_publisher(Clock, '/clock', play_qos(None)) if clock
                         else None)

            def running() -> bool:
                return context.ok() and not stop.is_set()

            if wait_for_subscribers_s > 0:
                waited = dict(publishers)
                if clock_pub is not None:
                    waited['/clock'] = clock_pub  # sim-time consumers need the first ticks too
                _wait_for_subscribers(node, waited, wait_for_subscribers_s, running)
            while True:
                published += _play_once(reader, connections, publishers, clock_pub, rate,
                                        running)
                if not loop or not running():
                    break
    finally:
        node.destroy_node()
        context.try_shutdown()
    return published


def _publishers(node: Node, reader: Any, topics: Sequence[str] | None) -> dict[str, Any]:
    """Topic -> publisher of each played topic (all, or ``topics``), skipping (with a log line)
    topics whose type rclpy lacks when playing all."""
    connections = [c for c in reader.connections if topics is None or c.topic in topics]
    missing = sorted(set(topics or ()) - {c.topic for c in connections})
    if missing:
        listing = ', '.join(sorted({c.topic for c in reader.connections}))
        raise BagError(f'{reader.path} has no topic {missing}; it has: {listing}')
    publishers: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for connection in connections:
        if connection.topic in publishers or connection.topic in skipped:
            continue
        try:
            kind = message_class(connection.msgtype)
        except BagError:
            if topics is not None:
                raise
            skipped[connection.topic] = connection.msgtype
            continue
        publishers[connection.topic] = node.create_publisher(kind, connection.topic,
                                                             play_qos(connection))
    if skipped:
        node.get_logger().warning(skipped_note(skipped, 'whose types are not installed for rclpy'))
    if not publishers:
        why = f'the types of {sorted(skipped)} are not installed' if skipped else 'no topics'
        raise BagError(f'{reader.path}: nothing to play ({why})')
    return publishers


def _play_once(reader: Any, connections: list[Any], publishers: dict[str, Any],
               clock_pub: Any, rate: float, running: Callable[[], bool]) -> int:
    count = 0
    wall_start = time.monotonic()
    bag_start: int | None = None
    for connection, bag_time, raw in reader.messages(connections=connections):
        if not running():
            break
        bag_start = bag_time if bag_start is None else bag_start
        target = wall_start + (bag_time - bag_start) * 1e-9 / rate
        _sleep_until(target, clock_pub, bag_start, wall_start, rate, running)
        if not running():
            break
        if clock_pub is not None:
            _publish_clock(clock_pub, bag_time)
        publishers[connection.topic].publish(bytes(raw))
        count += 1
    return count
