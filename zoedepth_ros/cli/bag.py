"""Rosbag tools: summary, offline evaluation, replay and recording.

  zoedepth bag info BAG
  zoedepth bag eval BAG --image-topic /camera/image_raw --depth-topic /camera/depth/image \\
      --camera-info-topic /camera/camera_info --output out/eval [--out-bag out/pred_bag]
  zoedepth bag play BAG [--rate 0.5] [--loop] [--topics T ...] [--clock]
  zoedepth bag record OUT --topics /zoedepth/depth/image /zoedepth/points

`eval` runs offline (no ROS installation needed) and writes metrics.json, per_frame.csv,
report.md and plots/*.png into --output, all at once at the end (Ctrl-C leaves nothing).
`play` and `record` use rclpy and publish/receive raw CDR without decoding.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from zoedepth_ros.cli.bag_eval import add_eval_arguments
from zoedepth_ros.errors import ConfigError

if TYPE_CHECKING:  # the commands import their modules lazily: `zoedepth --help` stays fast
    from zoedepth_ros.io.bag_info import BagSummary

HELP = 'rosbag tools: info, eval (offline metrics and plots), play, record'
logger = logging.getLogger('zoedepth.bag')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest='bag_command', metavar='ACTION', required=True)
    info = sub.add_parser('info', help='topics, types, counts, rates and duration')
    info.add_argument('bag', type=Path)
    info.set_defaults(_bag_run=run_info)
    add_eval_arguments(sub.add_parser('eval', help='offline depth metrics against a depth topic'))
    play = sub.add_parser('play', help='publish a bag with its original timing (rclpy)')
    play.add_argument('bag', type=Path)
    play.add_argument('--rate', type=float, default=1.0, help='speed factor (default 1.0)')
    play.add_argument('--loop', action='store_true', help='start over at the end')
    play.add_argument('--topics', nargs='+', help='play only these topics')
    play.add_argument('--clock', action='store_true', help='publish /clock from bag time')
    play.add_argument('--wait-for-subscribers', type=float, default=0.0, metavar='S',
                      help='wait up to S seconds until every played topic has a subscriber')
    play.set_defaults(_bag_run=run_play)
    record = sub.add_parser('record', help='subscribe to topics and write a bag (rclpy)')
    record.add_argument('output', type=Path, help='bag directory to create')
    record.add_argument('--topics', nargs='+', required=True)
    record.add_argument('--storage', default='mcap', choices=['mcap', 'sqlite3'])
    record.add_argument('--duration', type=float, default=0.0,
                        help='stop after this many seconds (default: at Ctrl-C)')
    record.add_argument('--discovery-timeout', type=float, default=30.0,
                        help='seconds to wait for the topics to appear')
    record.set_defaults(_bag_run=run_record)


def run(args: argparse.Namespace) -> int:
    return int(args._bag_run(args) or 0)


# ---------------------------------------------------------------------------------- info


def _when(stamp_ns: int) -> str:
    moment = datetime.fromtimestamp(stamp_ns * 1e-9, tz=timezone.utc)
    return f'{moment:%b %d %Y %H:%M:%S}.{stamp_ns // 1_000_000 % 1000:03d} ({stamp_ns * 1e-9:.9f})'


def format_summary(summary: BagSummary) -> str:
    """``ros2 bag info``-style text of a :class:`~zoedepth_ros.io.bag_info.BagSummary`."""
    compression = f', compression {summary.compression}' if summary.compression else ''
    lines = [f'Files:             {", ".join(summary.files)}',
             f'Bag size:          {summary.size_bytes / 2**20:.2f} MiB',
             f'Storage id:        {summary.storage} (rosbag2 version {summary.version}'
             f'{compression})',
             f'Duration:          {summary.duration_s:.3f}s',
             f'Start:             {_when(summary.start_ns)}',
             f'End:               {_when(summary.end_ns)}',
             f'Messages:          {summary.message_count}',
             'Topic information:']
    width = max((len(t.name) for t in summary.topics), default=0)
    for topic in summary.topics:
        lines.append(f'  Topic: {topic.name:<{width}} | Type: {topic.msgtype} | Count: '
                     f'{topic.count} | Rate: {topic.rate_hz:.2f} Hz')
    return '\n'.join(lines)


def run_info(args: argparse.Namespace) -> int:
    from zoedepth_ros.io.bag_info import summarize_bag

    print(format_summary(summarize_bag(args.bag)))
    return 0


# ---------------------------------------------------------------------------------- eval


# ---------------------------------------------------------------------------------- ROS


def run_play(args: argparse.Namespace) -> int:
    if args.rate <= 0:
        raise ConfigError(f'--rate must be positive, got {args.rate}')
    from zoedepth_ros.ros.bag_play import play_bag

    start = time.perf_counter()
    stats = play_bag(args.bag, rate=args.rate, loop=args.loop, topics=args.topics,
                     clock=args.clock, wait_for_subscribers_s=args.wait_for_subscribers)
    logger.info('played %d messages in %.1f s', stats, time.perf_counter() - start)
    return 0


def run_record(args: argparse.Namespace) -> int:
    from zoedepth_ros.ros.bag_record import record_bag

    counts = record_bag(args.output, args.topics, storage=args.storage,
                        duration_s=args.duration, discovery_timeout_s=args.discovery_timeout)
    if not args.output.exists():
        logger.error('stopped before the topics appeared: no bag written')
        return 1
    logger.info('recorded %s into %s', ', '.join(f'{t}: {n}' for t, n in counts.items()),
                args.output)
    return 0
