"""``zoedepth bag eval``: a bag's frames through the model, scored against its depth topic, with
a report folder and optionally an output bag of what the node would publish; ``--camera``
(repeated) evaluates several cameras of the bag in one run."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoedepth_ros.cli.common import (
    add_model_arguments,
    build_estimator,
    os_error_line,
    writable_folder,
    writable_target,
)
from zoedepth_ros.cli.progress import Progress
from zoedepth_ros.errors import InputError

if TYPE_CHECKING:  # the commands import their modules lazily: `zoedepth --help` stays fast
    from zoedepth_ros.evaluation.bags import BagEvalReport, BagEvalSettings, FrameRecord
    from zoedepth_ros.inference import DepthEstimator
    from zoedepth_ros.io.bag_writer import AtomicBagWriter
    from zoedepth_ros.io.bags import CameraSource, FrameTopics, RgbdFrame
    from zoedepth_ros.pipeline.options import FrameOptions
    from zoedepth_ros.pipeline.outputs import FrameOutputs

logger = logging.getLogger('zoedepth.bag')


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bag', nargs='+',
                        help='a bag; or a corpus: several bags, folders of bags, globs or a '
                             'text file listing bags (one report over all, resumable)')
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
    topics.add_argument('--camera', action='append',
                        metavar='NAME=IMAGE[,depth=T,info=T,sparse=T]',
                        help='evaluate this camera of the bag (repeat for several; replaces '
                             '--image-topic/--depth-topic/--camera-info-topic): one report per '
                             'camera in OUTPUT/NAME/ and a pooled one; --out-bag gets its '
                             'outputs under OUT_NAMESPACE/NAME/')
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
    corpus = parser.add_argument_group('corpus')
    corpus.add_argument('--workers', type=int, default=1, metavar='N',
                        help='N local processes (torch.distributed, gloo on CPU, one GPU each '
                             'on CUDA) share the bags; under torchrun the ranks do')
    out = parser.add_argument_group('output bag')
    out.add_argument('--out-bag', type=Path, help='also write a bag with the predictions (a '
                     'corpus: a folder with one output bag per input bag)')
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
    from zoedepth_ros.evaluation.corpus import is_bag

    if len(args.bag) > 1 or not is_bag(Path(args.bag[0])) and Path(args.bag[0]).exists():
        return _run_corpus(args)
    from zoedepth_ros.evaluation.cameras import camera_settings, check_cameras, parse_camera
    from zoedepth_ros.io.atomic import atomic_directory
    from zoedepth_ros.io.bag_writer import AtomicBagWriter

    settings = eval_settings(args)
    cameras = check_cameras([parse_camera(text) for text in args.camera or []])
    args.bag = Path(args.bag[0])
    if not args.bag.exists():
        raise InputError(f'bag {args.bag} not found')
    writable_target(args.output, 'report folder')
    if args.out_bag is not None:
        writable_target(args.out_bag, 'output bag')
    runs = {camera.name: camera_settings(settings, camera) for camera in cameras} or {
        '': settings}
    plans = {name: _read_plan(args.bag, run.topics) for name, run in runs.items()}
    for name, (_, _, camera) in plans.items():
        if camera.topic is None:
            logger.warning('no CameraInfo for %s (%s): intrinsics assume a %s degree '
                           'horizontal field of view (--fov sets it)', runs[name].topics.image,
                           camera.reason, settings.frame.fov_deg)
    counts = [plan[0] for plan in plans.values()]
    total = None if None in counts else sum(c or 0 for c in counts)
    skipped = next(iter(plans.values()))[1]
    done: list[int] = []
    writer = None
    reports: dict[str, BagEvalReport] = {}
    try:
        with atomic_directory(args.output, args.overwrite) as staging:
            staging.mkdir()
            if args.out_bag is not None:  # refuses an existing bag before the model loads
                writer = AtomicBagWriter(args.out_bag, args.out_storage, args.out_version,
                                         overwrite=args.overwrite)
            estimator = build_estimator(args)
            logger.info('model %s on %s; %s -> %s', estimator.name, estimator.device,
                        args.bag, args.output)
            for index, (name, run) in enumerate(runs.items()):
                folder = staging / name if name else staging
                reports[name] = evaluate_with_progress(
                    estimator, args.bag, run, writer, plans[name][0], args.samples, folder,
                    done, copy_input=index == 0, label=name)
            if cameras:
                _write_pooled(reports, staging, args.bag, estimator.name, settings)
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
    for name, report in reports.items():
        if name:
            logger.info('camera %s:', name)
        print_summary(report, args.output / name if name else args.output, skipped)
    if cameras:
        logger.info('all cameras: report %s', args.output / 'report.md')
    if estimator.warning:
        logger.warning('%s', estimator.warning)
    return 0


def _run_corpus(args: argparse.Namespace) -> int:
    """Several bags, folders of bags, globs or a list file: one resumable corpus report.

    With ``--workers N`` this process only checks the corpus and the output folders and
    starts the workers (it does not load the model stack: each second here is serial time);
    each worker then reads the settings like a single process."""
    import os

    from zoedepth_ros.cli.bag_corpus import launch_workers, run_corpus
    from zoedepth_ros.evaluation.corpus import expand_corpus

    if args.camera:
        raise InputError('--camera evaluates the cameras of one bag; give one bag with it')
    bags = expand_corpus(args.bag)
    writable_folder(args.output, 'report folder')
    if args.out_bag is not None:
        writable_folder(args.out_bag, 'output bags folder')
    if args.workers > 1 and 'WORLD_SIZE' not in os.environ:
        return launch_workers(args)
    return run_corpus(args, bags, eval_settings(args), lambda parsed: build_estimator(parsed))


def _write_pooled(reports: dict[str, BagEvalReport], folder: Path, bag: Path, model: str,
                  settings: BagEvalSettings) -> None:
    """The multi-camera run's own report.md and metrics.json (pooled and per camera)."""
    from zoedepth_ros.evaluation.cameras import cameras_markdown, pooled_tables
    from zoedepth_ros.io.atomic import write_json, write_text

    tables = pooled_tables(reports)
    anchored = any(report.settings.get('sparse_topic') for report in reports.values())
    write_json(folder / 'metrics.json', {'bag': str(bag), 'model': model, **tables})
    write_text(folder / 'report.md', cameras_markdown(str(bag), model, tables, anchored))
    overall = tables['overall']
    logger.info('all cameras%s: delta1 %.4f  REL %.4f  RMSE %.4f m  (%d evaluated frames)',
                ', anchored' if anchored else '', overall['a1'], overall['abs_rel'],
                overall['rmse'], overall['frames'])


def evaluate_with_progress(estimator: DepthEstimator, bag: Path, settings: BagEvalSettings,
                           writer: AtomicBagWriter | None, total: int | None,
                           sample_count: int, directory: Path, done: list[int],
                           copy_input: bool = True, label: str = '') -> BagEvalReport:
    """evaluate_bag with progress and sample panels; writes the report into ``directory``
    (``copy_input``: copy the bag's own messages into the output bag; ``label``: the camera
    named in the progress line)."""
    import numpy as np

    from zoedepth_ros.evaluation.bags import evaluate_bag
    from zoedepth_ros.evaluation.report import SamplePanel, write_report
    from zoedepth_ros.metrics import resize_prediction

    count = min(total or 0, settings.max_frames or (total or 0))
    wanted = set(np.linspace(0, max(count - 1, 0), sample_count).round().astype(int).tolist()
                 if sample_count and count else [])
    samples: list[SamplePanel] = []
    what = 'bag eval' + (f' {label}' if label else '') + (
        ', anchored' if settings.sparse_topic else '')
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

        report = evaluate_bag(estimator, bag, settings, writer, on_frame, copy_input)
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
