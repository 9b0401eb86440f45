"""Summary of a rosbag2 as ``ros2 bag info`` shows it: storage, files, size, span and topics.

Counts raw messages only, so bags with topics of any type (parseable or not) are summarised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath

from zoedepth_ros.io.bag_reader import BagReader


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
    """What ``ros2 bag info`` shows: storage, size, span and topics.

    Attributes:
        files: storage file names (metadata ``relative_file_paths``).
        compression: e.g. 'zstd (file)', or '' when not compressed.
    """

    path: Path
    storage: str
    version: int
    size_bytes: int
    start_ns: int
    end_ns: int
    message_count: int
    topics: tuple[TopicSummary, ...]
    files: tuple[str, ...] = ()
    compression: str = ''

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) * 1e-9


def summarize_bag(path: Path | str) -> BagSummary:
    """Topics, types, counts, rates and duration of a bag (reads every message's time; decodes
    no message, so topics of any type are counted)."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    counts: dict[str, int] = {}
    with BagReader(path) as reader:
        for connection, bag_time, _ in reader.messages():
            topic = connection.topic
            first.setdefault(topic, bag_time)
            last[topic] = bag_time
            counts[topic] = counts.get(topic, 0) + 1
        types: dict[str, str] = {}
        for connection in reader.connections:
            types.setdefault(connection.topic, connection.msgtype)
        meta = reader.metadata
    topics = tuple(TopicSummary(name, types[name], counts.get(name, 0), first.get(name, 0),
                                last.get(name, 0)) for name in sorted(types))
    path = Path(path)
    size = sum(f.stat().st_size for f in path.rglob('*') if f.is_file())
    mode = str(meta.get('compression_mode') or '').lower()
    compression = f'{meta.get("compression_format")} ({mode})' if mode not in ('', 'none') else ''
    files = tuple(PurePath(str(name)).name for name in meta.get('relative_file_paths') or ())
    return BagSummary(path, str(meta.get('storage_identifier', '')), int(meta.get('version', 0)),
                      size, min(first.values(), default=0), max(last.values(), default=0),
                      sum(counts.values()), topics, files, compression)
