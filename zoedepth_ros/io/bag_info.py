"""Summary of a rosbag2 as ``ros2 bag info`` shows it: storage, size, span and topics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from zoedepth_ros.io.bags import open_bag


@dataclass(frozen=True)
class TopicSummary:
    """One topic of a bag: message type, count and bag-time span (nanoseconds)."""

    name: str
    msgtype: str
    count: int
    first_ns: int
    last_ns: int

    @property
    def rate_hz(self) -> float:
        """Mean message rate over the topic's own span (0 for fewer than two messages)."""
        span = self.last_ns - self.first_ns
        return (self.count - 1) / (span * 1e-9) if self.count > 1 and span > 0 else 0.0


@dataclass(frozen=True)
class BagSummary:
    """What ``ros2 bag info`` shows: storage, size, span and topics."""

    path: Path
    storage: str
    version: int
    size_bytes: int
    start_ns: int
    end_ns: int
    message_count: int
    topics: tuple[TopicSummary, ...]

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) * 1e-9


def summarize_bag(path: Path | str) -> BagSummary:
    """Topics, types, counts, rates and duration of a bag (reads every message's time)."""
    path = Path(path)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    counts: dict[str, int] = {}
    with open_bag(path) as reader:
        for connection, bag_time, _ in reader.messages():
            topic = connection.topic
            first.setdefault(topic, bag_time)
            last[topic] = bag_time
            counts[topic] = counts.get(topic, 0) + 1
        types = {c.topic: c.msgtype for c in reader.connections}
    storage, version = _storage_and_version(path)
    topics = tuple(TopicSummary(name, types[name], counts.get(name, 0), first.get(name, 0),
                                last.get(name, 0)) for name in sorted(types))
    size = sum(f.stat().st_size for f in path.rglob('*') if f.is_file())
    return BagSummary(path, storage, version, size, min(first.values(), default=0),
                      max(last.values(), default=0), sum(counts.values()), topics)


def _storage_and_version(path: Path) -> tuple[str, int]:
    try:
        meta = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
        return str(meta.get('storage_identifier', '')), int(meta.get('version', 0))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return '', 0
