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
from typing import TYPE_CHECKING, Any

from zoedepth_ros.cli.common import (
    add_model_arguments,
    build_estimator,
    os_error_line,
    writable_target,
)
from zoedepth_ros.cli.progress import Progress
from zoedepth_ros.errors import ConfigError, InputError

if TYPE_CHECKING:  # the commands import their modules lazily: `zoedepth --help` stays fast
    from zoedepth_ros.evaluation.bags import BagEvalReport, BagEvalSettings, FrameRecord
    from zoedepth_ros.inference import DepthEstimator
    from zoedepth_ros.io.bag_info import BagSummary
    from zoedepth_ros.io.bag_writer import AtomicBagWriter
    from zoedepth_ros.io.bags import CameraSource, FrameTopics, RgbdFrame
    from zoedepth_ros.pipeline.options import FrameOptions
    from zoedepth_ros.pipeline.outputs import FrameOutputs

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


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bag', type=Path)
    parser.add_argument('-o', '--output', type=Path, required=True, help='report folder')
    topics = parser.add_argument_group('topics')
    topics.add_argument('--image-topic', default='/camera/image_raw')
    topics.add_argument('--depth-topic', default='/camera/depth/image',
                        help='ground truth: Image 32FC1 metres or 16UC1 millimetres; "" = '
                             'none (predict every frame for --out-bag only)')
    topics.add_argument('--camera-info-topic', default=None,
                        help='CameraInfo of the images (default: the camera_info beside the '
                             "image topic, else the bag's only CameraInfo topic)")
    topics.add_argument('--fov', type=float, metavar='DEG',
                        help='horizontal field of view assumed for frames without a '
                             "CameraInfo (default: the node's fov_deg, 60; the report says "
                             'when it is used)')
    topics.add_argument('--tolerance', type=float, default=0.02,
                        help='largest image/depth stamp difference in seconds (default 0.02)')
    add_model_arguments(parser)
    protocol = parser.add_argument_group('protocol')
    protocol.add_argument('--eval-config', type=Path,
                          help='EvalConfig YAML (config/eval/*.yaml); flags override it')
    protocol.add_argument('--min-depth', type=float, help='metres (default 0.001)')
    protocol.add_argument('--max-depth', type=float, help='metres (default 80)')
    protocol.add_argument('--crop', choices=['eigen', 'garg', 'none'])
    protocol.add_argument('--range-edges', type=float, nargs='+',
                          help='depth range bins in metres (default min, max/8, max/4, max/2, '
                               'max)')
    protocol.add_argument('--max-frames', type=int, default=0, help='stop after N frames')
    protocol.add_argument('--samples', type=int, default=4, help='sample panels to draw')
    anchor = parser.add_argument_group('metric anchoring (scored with and without)')
    anchor.add_argument('--sparse-topic', help='sparse metric samples: a depth Image aligned '
                        'with the camera (NaN/0 = no sample) or a PointCloud2')
    anchor.add_argument('--sparse-tolerance', type=float, metavar='S',
                        help="largest image/sparse stamp difference (default: the node's "
                             'anchor.sync_tolerance_s, 0.05 s)')
    anchor.add_argument('--sparse-extrinsic', type=float, nargs=7,
                        metavar=('X', 'Y', 'Z', 'QX', 'QY', 'QZ', 'QW'),
                        help="pose of the cloud's frame in the camera optical frame")
    anchor.add_argument('--align-mode', default='scale', choices=['scale', 'scale_shift'])
    anchor.add_argument('--align-time-constant', type=float, metavar='S',
                        help='smoothing of the scale over frames (0 = per frame; default: the '
                             "node's anchor.time_constant_s, 0.5 s)")
    anchor.add_argument('--head-selection', default='router', choices=['router', 'sparse'],
                        help='router: the model routes each frame; sparse: the head whose '
                             'anchored fit explains the samples better serves the frame')
    anchor.add_argument('--focal-correction', action='store_true',
                        help="rescale depth by the camera's fx/width over the training "
                             "cameras' (--focal-reference)")
    anchor.add_argument('--focal-reference', type=float, nargs=2, metavar=('INDOOR', 'OUTDOOR'),
                        help="fx/width of the heads' training cameras (default NYU 0.8107, "
                             'KITTI 0.5934)')
    out = parser.add_argument_group('output bag')
    out.add_argument('--out-bag', type=Path, help='also write a bag with the predictions')
    out.add_argument('--out-storage', default='mcap', choices=['mcap', 'sqlite3'])
    out.add_argument('--out-version', type=int, default=9, choices=[8, 9],
                     help='rosbag2 metadata version (8: Humble tools, 9: Jazzy and later)')
    out.add_argument('--out-namespace', default='/zoedepth', help='namespace of output topics')
    out.add_argument('--min-range', type=float, metavar='M',
                     help='valid interval of the output depth and clouds, gated as the node '
                          "gates them (default: the node's min_range and max_range defaults); "
                          'the scores use the ungated depth')
    out.add_argument('--max-range', type=float, metavar='M')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --output folder / --out-bag')
    parser.set_defaults(_bag_run=run_eval)


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


def eval_settings(args: argparse.Namespace) -> BagEvalSettings:
    """BagEvalSettings from flags over an optional EvalConfig file (flags win)."""
    from zoedepth_ros.evaluation.bags import BagEvalSettings
    from zoedepth_ros.io.bags import FrameTopics

    protocol: dict[str, Any] = {'min_depth': 1e-3, 'max_depth': 80.0, 'crop': 'none'}
    if args.eval_config is not None:
        from zoedepth_ros.config import load_config
        from zoedepth_ros.evaluation.datasets import EvalConfig

        cfg = load_config(args.eval_config, EvalConfig)
        protocol.update({k: v for k, v in (('min_depth', cfg.min_depth),
                                           ('max_depth', cfg.max_depth)) if v})
        if cfg.crop != 'auto':
            protocol['crop'] = cfg.crop
        args.flip = args.flip or cfg.flip
        for name in ('domain', 'device', 'precision'):
            if getattr(args, name) == parser_default(name):
                setattr(args, name, getattr(cfg, name))
    for name in ('min_depth', 'max_depth', 'crop'):
        if getattr(args, name) is not None:
            protocol[name] = getattr(args, name)
    topics = FrameTopics(args.image_topic, args.depth_topic or None,
                         args.camera_info_topic or None, args.tolerance)
    return BagEvalSettings(topics, range_edges=tuple(args.range_edges or ()),
                           max_frames=args.max_frames, namespace=args.out_namespace,
                           sparse_topic=args.sparse_topic, frame=frame_options(args),
                           **protocol)


def frame_options(args: argparse.Namespace) -> FrameOptions:
    """The node's per-frame options with the flags given (the node's defaults otherwise)."""
    from zoedepth_ros.anchoring import AnchorOptions, ExtrinsicOptions
    from zoedepth_ros.pipeline.options import FocalOptions, FrameOptions

    def given(**values: Any) -> dict[str, Any]:
        return {name: value for name, value in values.items() if value is not None}

    anchor = AnchorOptions(mode=args.align_mode, head_selection=args.head_selection, **given(
        time_constant_s=args.align_time_constant, sync_tolerance_s=args.sparse_tolerance,
        extrinsic=args.sparse_extrinsic and ExtrinsicOptions.of(tuple(args.sparse_extrinsic))))
    reference = args.focal_reference or (None, None)
    focal = FocalOptions(args.focal_correction, **given(reference_indoor=reference[0],
                                                        reference_outdoor=reference[1]))
    return FrameOptions(**given(fov_deg=args.fov, min_range=args.min_range,
                                max_range=args.max_range), anchor=anchor, focal=focal)


def parser_default(name: str) -> str:
    return {'domain': 'auto', 'device': 'auto', 'precision': 'fp32'}[name]


def _read_plan(path: Path, topics: FrameTopics
               ) -> tuple[int | None, dict[str, str], CameraSource]:
    """Colour messages of the bag (None if unknown), its topics (-> type) whose types cannot be
    parsed, and where the intrinsics will come from: read before the model loads."""
    from zoedepth_ros.io.bag_reader import open_bag
    from zoedepth_ros.io.bags import camera_info_source

    with open_bag(path) as reader:
        count = sum(c.msgcount for c in reader.connections if c.topic == topics.image)
        return count or None, reader.unparseable(), camera_info_source(reader, topics)


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate, then move the report folder (and output bag) into place together."""
    from zoedepth_ros.io.atomic import atomic_directory
    from zoedepth_ros.io.bag_writer import AtomicBagWriter

    settings = eval_settings(args)
    if not args.bag.exists():
        raise InputError(f'bag {args.bag} not found')
    writable_target(args.output, 'report folder')
    if args.out_bag is not None:
        writable_target(args.out_bag, 'output bag')
    total, skipped, camera = _read_plan(args.bag, settings.topics)
    if camera.topic is None:
        logger.warning('no CameraInfo for %s (%s): intrinsics assume a %s degree horizontal '
                       'field of view (--fov sets it)', settings.topics.image, camera.reason,
                       settings.frame.fov_deg)
    done: list[int] = []
    writer = None
    try:
        with atomic_directory(args.output, args.overwrite) as staging:
            staging.mkdir()
            if args.out_bag is not None:  # refuses an existing bag before the model loads
                writer = AtomicBagWriter(args.out_bag, args.out_storage, args.out_version,
                                         overwrite=args.overwrite)
            estimator = build_estimator(args)
            logger.info('model %s on %s; %s -> %s', estimator.name, estimator.device,
                        args.bag, args.output)
            report = evaluate_with_progress(estimator, args.bag, settings, writer, total,
                                            args.samples, staging, done)
            if writer is not None:
                writer.commit()
                writer = None
    except FileExistsError:
        raise InputError(f'output folder {args.output} exists and is not empty; choose another '
                         'or pass --overwrite') from None
    except KeyboardInterrupt:
        logger.error('interrupted after %d of %s frames: nothing was written (%s and %s are '
                     'unchanged)', len(done), total or '?', args.output,
                     args.out_bag or 'no output bag')
        return 130
    except OSError as err:  # the disk filled up, a quota: say where, and what is left
        logger.error('writing the report or the output bag failed after %d of %s frames (%s): '
                     'nothing was written (%s and %s are unchanged)', len(done), total or '?',
                     os_error_line(err), args.output, args.out_bag or 'no output bag')
        return 2
    finally:
        if writer is not None:
            writer.abort()
    print_summary(report, args.output, skipped)
    if estimator.warning:
        logger.warning('%s', estimator.warning)
    return 0


def evaluate_with_progress(estimator: DepthEstimator, bag: Path, settings: BagEvalSettings,
                           writer: AtomicBagWriter | None, total: int | None,
                           sample_count: int, directory: Path, done: list[int]
                           ) -> BagEvalReport:
    """evaluate_bag with progress and sample panels; writes the report into ``directory``."""
    import numpy as np

    from zoedepth_ros.evaluation.bags import evaluate_bag
    from zoedepth_ros.evaluation.report import SamplePanel, write_report
    from zoedepth_ros.metrics import resize_prediction

    count = min(total or 0, settings.max_frames or (total or 0))
    wanted = set(np.linspace(0, max(count - 1, 0), sample_count).round().astype(int).tolist()
                 if sample_count and count else [])
    samples: list[SamplePanel] = []
    what = 'bag eval, anchored' if settings.sparse_topic else 'bag eval'
    with Progress(what, count or None, 'frame') as bar:
        def on_frame(frame: RgbdFrame, outputs: FrameOutputs, record: FrameRecord) -> None:
            bar.update(1)
            done.append(frame.index)
            if frame.index in wanted and frame.depth_m is not None:
                shape = frame.depth_m.shape
                samples.append(SamplePanel(
                    frame.index, frame.rgb, frame.depth_m,
                    resize_prediction(outputs.ungated_depth_m, shape),
                    resize_prediction(outputs.std_m, shape), outputs.domain))

        report = evaluate_bag(estimator, bag, settings, writer, on_frame)
    write_report(report, directory, samples)
    return report


def print_summary(report: BagEvalReport, output: Path,
                  skipped: dict[str, str] | None = None) -> None:
    """Log the scores, where the report went, and one line on topics that were not decoded."""
    from zoedepth_ros.io.bag_reader import skipped_note

    data = report.to_dict()
    overall = report.overall
    logger.info('%d frames (%d paired, %d unpaired) in %.1f s, %.2f frames/s',
                data['frames'], data['paired'], data['unpaired'], report.seconds,
                report.frames_per_s)
    sparse = report.settings.get('sparse_topic')
    label = f'anchored to {sparse}' if sparse else 'model alone'
    logger.info('%s: delta1 %.4f  REL %.4f  RMSE %.4f m  (%d evaluated frames)', label,
                overall['a1'], overall['abs_rel'], overall['rmse'], report.evaluated)
    for name, values in report.per_domain.items():
        logger.info('  %-8s %3d frames: delta1 %.4f  REL %.4f  RMSE %.4f m', name,
                    values['frames'], values['a1'], values['abs_rel'], values['rmse'])
    if sparse and report.unaligned:
        plain = report.unaligned['overall']
        logger.info('without anchoring: delta1 %.4f  REL %.4f  RMSE %.4f m', plain['a1'],
                    plain['abs_rel'], plain['rmse'])
    from zoedepth_ros.evaluation.report import camera_line

    (logger.warning if report.camera_assumed else logger.info)('%s', camera_line(report))
    logger.info('report: %s', output / 'report.md')
    if report.out_bag:
        logger.info('output bag: %s', report.out_bag)
    if skipped:
        copied = '; copied unchanged into the output bag' if report.out_bag else ''
        logger.warning('%s', skipped_note(skipped, f'whose message types cannot be parsed (not '
                                                   f'decoded{copied})'))


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
