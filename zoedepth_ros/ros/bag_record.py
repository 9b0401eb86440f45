"""Record topics into a rosbag2 through rclpy (``zoedepth bag record``).

Subscriptions take raw CDR bytes (``raw=True``) and write them unchanged, with the receive time
of the node clock as bag time (as ``ros2 bag record``); header stamps stay inside the messages.
The QoS follows the publishers: RELIABLE when every publisher is reliable, else BEST_EFFORT
(which matches both), TRANSIENT_LOCAL when every publisher is; their offered profiles are
stored in the bag (``zoedepth bag play`` and ``ros2 bag play`` read them). The bag is written
under a temporary name and renamed when the recording ends (Ctrl-C, SIGTERM or the duration),
so the target holds only complete bags.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

from zoedepth_ros.errors import BagError
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.ros.bag_play import message_class, stop_on_signals


def _discover(node: Node, executor: Any, topics: Sequence[str], timeout_s: float,
              running: Callable[[], bool]) -> dict[str, str] | None:
    """Message type of each topic, waiting up to ``timeout_s`` for publishers to appear;
    None when stopped first."""
    deadline = time.monotonic() + timeout_s
    found: dict[str, str] = {}
    while running():
        found = {name: types[0] for name, types in node.get_topic_names_and_types()}
        if all(topic in found for topic in topics) or time.monotonic() > deadline:
            break
        executor.spin_once(timeout_sec=0.1)
    else:
        return None
    missing = [topic for topic in topics if topic not in found]
    if missing:
        raise BagError(f'no publisher of {missing} appeared within {timeout_s} s; topics seen: '
                       f'{sorted(found) or "none"}')
    return {topic: found[topic] for topic in topics}


def _qos(infos: Sequence[Any]) -> QoSProfile:
    """Subscription QoS matching every publisher: RELIABLE / TRANSIENT_LOCAL only when all
    publishers offer it (as ``ros2 bag record``), so latched topics keep their last message."""
    reliable = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                                   for i in infos)
    latched = bool(infos) and all(
        i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                      else DurabilityPolicy.VOLATILE)


def offered_qos(infos: Sequence[Any]) -> list[Qos]:
    """The publishers' history, depth, reliability, durability and liveliness as rosbag2
    metadata profiles (rclpy and rosbag2 number these policies alike); deadline, lifespan and
    lease duration are stored as 0 (the middleware default)."""
    zero = QosTime(0, 0)
    return [Qos(QosHistory(q.history.value), q.depth, QosReliability(q.reliability.value),
                QosDurability(q.durability.value), zero, zero,
                QosLiveliness(q.liveliness.value), zero, q.avoid_ros_namespace_conventions)
            for q in (info.qos_profile for info in infos)]


def record_bag(path: Path | str, topics: Sequence[str], storage: str = 'mcap',
               duration_s: float = 0.0, discovery_timeout_s: float = 30.0,
               ready: threading.Event | None = None,
               stop: threading.Event | None = None) -> dict[str, int]:
    """Record ``topics`` until Ctrl-C / SIGTERM, ``duration_s`` or ``stop``; messages per topic.

    Args:
        path: bag directory to create (must not exist).
        topics: fully qualified topic names.
        storage: 'mcap' or 'sqlite3'.
        duration_s: stop after this long once subscribed (0 = no limit).
        discovery_timeout_s: how long to wait for every topic to have a publisher.
        ready: set once every subscription exists.
        stop: set by another thread to end the recording.

    Stopped before every topic appeared, it writes no bag and returns zero counts.
    """
    writer = AtomicBagWriter(path, storage)
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node('zoedepth_bag_recorder', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    counts = dict.fromkeys(topics, 0)
    lock = threading.Lock()
    subscribed = False
    try:
        with stop_on_signals(stop or threading.Event()) as stop:  # Ctrl-C/SIGTERM keep the bag
            def running() -> bool:
                return context.ok() and not stop.is_set()

            types = _discover(node, executor, topics, discovery_timeout_s, running)
            if types is not None:
                for topic, msgtype in types.items():
                    publishers = node.get_publishers_info_by_topic(topic)
                    writer.connection(topic, msgtype, qos=offered_qos(publishers))
                    _subscribe(node, topic, msgtype, writer, counts, lock, _qos(publishers))
                subscribed = True
                node.get_logger().info(f'recording {sorted(types)} into {path}')
                if ready is not None:
                    ready.set()
                _spin(executor, duration_s, running)
    except ExternalShutdownException:
        pass
    except BaseException:
        writer.abort()
        raise
    finally:
        node.destroy_node()
        context.try_shutdown()
    if not subscribed:  # stopped while waiting for the topics: no bag at all
        writer.abort()
        return counts
    with lock:
        writer.commit()
    return counts


def _subscribe(node: Node, topic: str, msgtype: str, writer: AtomicBagWriter,
               counts: dict[str, int], lock: threading.Lock, qos: QoSProfile) -> None:
    """A raw subscription writing each message with the node clock's receive time."""

    def store(raw: bytes) -> None:
        stamp = node.get_clock().now().nanoseconds
        with lock:
            writer.write_raw(topic, msgtype, stamp, raw)
            counts[topic] += 1

    node.create_subscription(message_class(msgtype), topic, store, qos, raw=True)


def _spin(executor: Any, duration_s: float, running: Callable[[], bool]) -> None:
    deadline = time.monotonic() + duration_s if duration_s > 0 else None
    while running():
        if deadline is not None and time.monotonic() > deadline:
            return
        executor.spin_once(timeout_sec=0.1)
