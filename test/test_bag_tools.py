"""Bag tools on bags written here with rosbags (sqlite3 and mcap): pairing, eval, output bag,
`zoedepth bag info|eval` and every bad-input case (one clear error, nothing written)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from zoedepth_ros.bag_eval import BagEvalSettings, FrameRecord, evaluate_bag, resize_depth
from zoedepth_ros.cli import bag as bag_cli
from zoedepth_ros.cli.main import main
from zoedepth_ros.config import save_config
from zoedepth_ros.data.bag_output import AtomicBagWriter
from zoedepth_ros.data.bagio import (
    FrameTopics,
    RgbdFrame,
    nearest_within,
    read_rgbd,
    stamp_ns,
)
from zoedepth_ros.data.messages import (
    CameraInfoFields,
    depth_image_from_msg,
    encode_depth,
    image_fields,
)
from zoedepth_ros.errors import BagError
from zoedepth_ros.inference import DepthEstimator, DepthResult
from zoedepth_ros.metrics import METRIC_KEYS, image_metrics
from zoedepth_ros.model import get_config

BASE_NS = 1_700_000_000_000_000_000
PERIOD_NS = 100_000_000
TOPICS = FrameTopics('/cam/image_raw', '/cam/depth', '/cam/camera_info', tolerance_s=0.02)
INFO = CameraInfoFields(64, 48, 'plumb_bob', (0.0,) * 5,
                        (40.0, 0.0, 31.5, 0.0, 40.0, 23.5, 0.0, 0.0, 1.0),
                        (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
                        (40.0, 0.0, 31.5, 0.0, 0.0, 40.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0))
# depth stamp offsets (ms) per colour frame; None = dropped, 50 = beyond the 20 ms tolerance
OFFSETS_MS: list[float | None] = [0.0, 3.0, -4.0, None, 50.0, 1.0]
PAIRED = [0, 1, 2, 5]


def gt_depth(index: int, shape: tuple[int, int] = (24, 32)) -> np.ndarray:
    """A slanted plane 1..6 m whose offset identifies the frame; one invalid corner."""
    rows = np.linspace(1.0, 5.0, shape[0], dtype=np.float32)[:, None]
    depth = np.repeat(rows, shape[1], axis=1) + np.float32(0.1 * index)
    depth[:2, :2] = np.nan
    return depth


def write_bag(path: Path, storage: str = 'sqlite3', depth_encoding: str = '32FC1',
              image_encoding: str = 'rgb8', offsets: list[float | None] = OFFSETS_MS) -> None:
    rng = np.random.default_rng(1)
    with AtomicBagWriter(path, storage) as bag:
        for index, offset in enumerate(offsets):
            stamp = BASE_NS + index * PERIOD_NS
            header = bag.header(stamp, 'cam_optical_frame')
            rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            bag.write(TOPICS.image, bag.image(image_fields(rgb, image_encoding), header),
                      stamp + 2_000_000)
            bag.write(TOPICS.camera_info, bag.camera_info(INFO, header), stamp + 2_000_000)
            if offset is not None:
                depth_stamp = stamp + int(offset * 1e6)
                fields = encode_depth(gt_depth(index), depth_encoding)
                bag.write(TOPICS.depth,
                          bag.image(fields, bag.header(depth_stamp, 'cam_optical_frame')),
                          depth_stamp + 1_000_000)


@pytest.fixture(autouse=True, scope='module')
def _one_thread() -> Iterator[None]:
    """One torch thread: two threads on a shared 2-core machine are many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope='module')
def tiny_estimator() -> DepthEstimator:
    cfg = dataclasses.replace(get_config('zoedepth_tiny_nk'), img_size=(64, 96))
    return DepthEstimator.from_config(cfg, device='cpu')


class ConstantEstimator:
    """Null model: constant depth, for throughput and interruption tests."""

    name = 'constant'

    def __init__(self, depth_m: float = 2.0, interrupt_at: int = -1) -> None:
        self.depth_m, self.interrupt_at, self.calls = depth_m, interrupt_at, 0

    def predict(self, rgb: np.ndarray) -> DepthResult:
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        self.calls += 1
        depth = np.full(rgb.shape[:2], self.depth_m, dtype=np.float32)
        return DepthResult(depth, depth * 0.1, 'outdoor', {'indoor': 0.2, 'outdoor': 0.8},
                           {'model': 0.0})


# ------------------------------------------------------------------------------ pairing


def test_nearest_within_by_hand() -> None:
    stamps = np.array([300, 100, 200, 1000], dtype=np.int64)  # unsorted on purpose
    queries = np.array([90, 150, 260, 640, 1010, 2000], dtype=np.int64)
    # 150 is a tie between 100 and 200: the earlier stamp wins; 640 is 340 from both
    assert nearest_within(stamps, queries, 50).tolist() == [1, 1, 0, -1, 3, -1]
    assert nearest_within(stamps[:0], queries, 50).tolist() == [-1] * 6


@pytest.mark.parametrize('storage, encoding', [('sqlite3', '32FC1'), ('mcap', '16UC1')])
def test_pairing_with_jitter_and_drops(tmp_path: Path, storage: str, encoding: str) -> None:
    write_bag(tmp_path / 'bag', storage, encoding)
    frames = list(read_rgbd(tmp_path / 'bag', TOPICS))
    assert [f.index for f in frames] == list(range(len(OFFSETS_MS)))
    assert [f.stamp_ns for f in frames] == [BASE_NS + i * PERIOD_NS for i in range(6)]
    assert [i for i, f in enumerate(frames) if f.depth_m is not None] == PAIRED
    tolerance = 1e-3 if encoding == '16UC1' else 0.0
    for index in PAIRED:
        frame = frames[index]
        assert frame.depth_offset_ns == int(OFFSETS_MS[index] * 1e6)
        np.testing.assert_allclose(frame.depth_m, gt_depth(index), atol=tolerance)
        assert frame.camera_info == INFO and frame.frame_id == 'cam_optical_frame'
        assert frame.rgb.shape == (48, 64, 3) and frame.rgb.dtype == np.uint8


# ------------------------------------------------------------------------------ evaluation


@pytest.mark.parametrize('storage, out_storage, version', [('sqlite3', 'mcap', 9),
                                                           ('mcap', 'sqlite3', 8)])
def test_eval_equals_direct_metrics_and_output_bag(tmp_path: Path, storage: str,
                                                   out_storage: str, version: int,
                                                   tiny_estimator: DepthEstimator) -> None:
    write_bag(tmp_path / 'bag', storage)
    settings = BagEvalSettings(TOPICS, min_depth=1e-3, max_depth=10.0, namespace='/pred')
    predictions = {}

    def keep(frame: RgbdFrame, result: DepthResult, record: FrameRecord) -> None:
        predictions[frame.index] = result

    with AtomicBagWriter(tmp_path / 'out', out_storage, version) as writer:
        report = evaluate_bag(tiny_estimator, tmp_path / 'bag', settings, writer, keep)
    assert (len(report.frames), report.paired, report.evaluated) == (6, 4, 4)
    direct, domains = [], []
    for index in PAIRED:  # the same predictions, scored here with metrics.image_metrics
        result, gt = predictions[index], gt_depth(index)
        pred = resize_depth(result.depth_m, gt.shape)  # 48x64 -> ground truth 24x32
        direct.append(image_metrics(pred, gt, 1e-3, 10.0))
        domains.append(result.domain)
    for key in METRIC_KEYS:
        assert report.overall[key] == pytest.approx(np.mean([d[key] for d in direct]), rel=1e-9)
    assert sum(v['frames'] for v in report.per_domain.values()) == 4
    assert set(report.per_domain) == set(domains)
    records = {r.index: r for r in report.frames}
    assert records[5].metrics == pytest.approx(direct[3], rel=1e-9)
    assert records[3].metrics is None and not records[3].paired
    pixels = sum(r.valid_pixels for r in records.values())
    assert sum(report.pixel_stats['error_histogram']) == pixels
    check_output_bag(tmp_path / 'out')
    assert f'version: {version}' in (tmp_path / 'out' / 'metadata.yaml').read_text()


def check_output_bag(path: Path) -> None:
    """Original topics copied; predictions at every colour stamp with the right layout."""
    from zoedepth_ros.data.bagio import open_bag

    seen: dict[str, list] = {}
    with open_bag(path) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for connection, bag_time, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            seen.setdefault(connection.topic, []).append((bag_time, message))
    assert types['/pred/depth/image'] == types['/pred/depth/std'] == 'sensor_msgs/msg/Image'
    assert types['/pred/depth/camera_info'] == 'sensor_msgs/msg/CameraInfo'
    assert types['/pred/points'] == 'sensor_msgs/msg/PointCloud2'
    assert len(seen[TOPICS.image]) == 6 and len(seen[TOPICS.depth]) == 5
    colour_times = [(t, stamp_ns(m)) for t, m in seen[TOPICS.image]]
    for topic in ('/pred/depth/image', '/pred/depth/camera_info', '/pred/depth/std',
                  '/pred/points'):
        assert [(t, stamp_ns(m)) for t, m in seen[topic]] == colour_times, topic
        assert {m.header.frame_id for _, m in seen[topic]} == {'cam_optical_frame'}
    depth = seen['/pred/depth/image'][0][1]
    assert (depth.encoding, depth.height, depth.width, depth.step) == ('32FC1', 48, 64, 256)
    assert np.isfinite(depth_image_from_msg(depth)).all()
    assert seen['/pred/depth/std'][0][1].encoding == '32FC1'
    info = seen['/pred/depth/camera_info'][0][1]
    assert (info.width, info.height) == (64, 48) and list(info.p) == list(INFO.p)
    cloud = seen['/pred/points'][0][1]
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z', 'rgb']
    assert (cloud.height, cloud.width, cloud.point_step) == (24, 32, 16)


def test_null_model_constant_metrics(tmp_path: Path) -> None:
    """A constant 2 m prediction on the plane: REL matches the hand formula per frame."""
    write_bag(tmp_path / 'bag')
    report = evaluate_bag(ConstantEstimator(2.0), tmp_path / 'bag',
                          BagEvalSettings(TOPICS, max_depth=10.0, range_edges=(0.0, 3.0, 10.0)))
    expected = []
    for index in PAIRED:
        gt = gt_depth(index)
        gt = gt[np.isfinite(gt)]
        expected.append(np.mean(np.abs(gt - 2.0) / gt))
    assert report.overall['abs_rel'] == pytest.approx(np.mean(expected), rel=1e-6)
    assert list(report.per_domain) == ['outdoor']
    near, far = report.per_range
    assert (near['frames'], far['frames']) == (4, 4)
    assert near['abs_rel'] < far['abs_rel']
    pooled = np.concatenate([gt_depth(i)[np.isfinite(gt_depth(i))] for i in PAIRED])
    stats = report.pixel_stats  # pixel-pooled REL by depth bin, for the error-vs-depth plot
    counts = np.array(stats['pixels_by_depth'])
    by_bin = np.nan_to_num(np.array(stats['abs_rel_by_depth']))
    assert counts.sum() == pooled.size
    assert (by_bin * counts).sum() / counts.sum() == pytest.approx(
        np.mean(np.abs(pooled - 2.0) / pooled), rel=1e-5)


# ------------------------------------------------------------------------------ CLI


@pytest.fixture(scope='module')
def tiny_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('cfg') / 'tiny.yaml'
    save_config(dataclasses.replace(get_config('zoedepth_tiny_nk'), img_size=(64, 96)), path)
    return path


def eval_args(bag: Path, out: Path, tiny_yaml: Path, *extra: str) -> list[str]:
    return ['bag', 'eval', str(bag), '--output', str(out), '--image-topic', TOPICS.image,
            '--depth-topic', TOPICS.depth, '--camera-info-topic', TOPICS.camera_info,
            '--model', 'zoedepth_tiny_nk', '--config', str(tiny_yaml), '--device', 'cpu',
            '--max-depth', '10', *extra]


def test_cli_info_and_eval_outputs(tmp_path: Path, tiny_yaml: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_bag(tmp_path / 'bag', 'mcap')
    assert main(['bag', 'info', str(tmp_path / 'bag')]) == 0
    text = capsys.readouterr().out
    assert 'Storage id:        mcap (rosbag2 version 9)' in text
    assert '/cam/depth' in text and 'Count: 5' in text and 'Count: 6' in text
    assert 'Messages:          17' in text and 'Duration:          0.501s' in text
    out = tmp_path / 'report'
    args = eval_args(tmp_path / 'bag', out, tiny_yaml, '--samples', '2', '--out-bag',
                     str(tmp_path / 'pred'), '--max-frames', '3')
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ['metrics.json', 'per_frame.csv', 'plots',
                                                      'report.md']
    assert len(list((out / 'plots').glob('*.png'))) == 6  # 4 plots + 2 sample panels
    assert len((out / 'per_frame.csv').read_text().splitlines()) == 1 + 3
    assert '| all | 3 |' in (out / 'report.md').read_text()
    assert (tmp_path / 'pred' / 'metadata.yaml').exists()
    assert main(args) == 2  # refuses to overwrite without --overwrite
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


def test_ctrl_c_leaves_nothing(tmp_path: Path, tiny_yaml: Path, monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture) -> None:
    write_bag(tmp_path / 'bag')
    monkeypatch.setattr('zoedepth_ros.cli.bag.build_estimator',
                        lambda args: ConstantEstimator(interrupt_at=3))
    code = main(eval_args(tmp_path / 'bag', tmp_path / 'report', tiny_yaml, '--out-bag',
                          str(tmp_path / 'pred')))
    assert code == 130
    assert 'interrupted after 3 of 6 frames: nothing was written' in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bag']


def truncate(bag: Path) -> None:
    storage = next(p for p in bag.iterdir() if p.suffix in ('.db3', '.mcap'))
    data = storage.read_bytes()
    storage.write_bytes(data[:len(data) // 2])


def custom_type_bag(bag: Path) -> None:
    """A bag whose image topic carries a type no typestore knows (defined in the bag)."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg('int32 value', 'acme_msgs/msg/Frame'))
    with Writer(bag, version=9) as writer:
        connection = writer.add_connection('/cam/image_raw', 'acme_msgs/msg/Frame',
                                           typestore=store)
        writer.write(connection, BASE_NS, b'\x00\x01\x00\x00\x07\x00\x00\x00')


@pytest.mark.parametrize('case, expected', [
    ('missing_topic', "has no topic '/cam/nothing'; it has: /cam/camera_info"),
    ('truncated', 'truncated'),
    ('truncated_sqlite', 'truncated'),
    ('no_metadata', 'cannot read bag'),
    ('custom_type', 'carries acme_msgs/msg/Frame; expected sensor_msgs/msg/Image'),
    ('wrong_type', 'carries sensor_msgs/msg/CameraInfo; expected sensor_msgs/msg/Image'),
    ('image_encoding', "encoding 'bayer_rggb8', which we do not read"),
    ('depth_encoding', "encoding 'mono8', which we do not read"),
    ('no_pairs', 'frame has a /cam/depth frame within 0.02 s'),
])
def test_bad_input_one_clear_error_no_output(tmp_path: Path, tiny_yaml: Path, case: str,
                                             expected: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    bag, extra = tmp_path / 'bag', []
    if case == 'custom_type':
        custom_type_bag(bag)
    else:
        write_bag(bag, 'mcap' if case == 'truncated' else 'sqlite3',
                  image_encoding='bayer_rggb8' if case == 'image_encoding' else 'rgb8',
                  offsets=[2000.0] * 3 if case == 'no_pairs' else OFFSETS_MS)
    if case == 'depth_encoding':
        bag = tmp_path / 'mono_depth'
        write_mono_depth_bag(bag)
    if case == 'missing_topic':
        extra = ['--depth-topic', '/cam/nothing']
    elif case.startswith('truncated'):
        truncate(bag)
    elif case == 'no_metadata':
        (bag / 'metadata.yaml').write_text('not: [a, rosbag')
    elif case == 'wrong_type':
        extra = ['--image-topic', TOPICS.camera_info]
    args = eval_args(bag, tmp_path / 'report', tiny_yaml, '--out-bag', str(tmp_path / 'pred'))
    caplog.clear()
    assert main(args + extra) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == 'ERROR']
    assert len(errors) == 1 and expected in errors[0], errors
    assert not (tmp_path / 'report').exists() and not (tmp_path / 'pred').exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


def write_mono_depth_bag(path: Path) -> None:
    with AtomicBagWriter(path, 'sqlite3') as bag:
        header = bag.header(BASE_NS, 'cam_optical_frame')
        rgb = np.zeros((48, 64, 3), dtype=np.uint8)
        bag.write(TOPICS.image, bag.image(image_fields(rgb, 'rgb8'), header), BASE_NS)
        bag.write(TOPICS.camera_info, bag.camera_info(INFO, header), BASE_NS)
        mono = image_fields(np.zeros((24, 32, 1), dtype=np.uint8), 'mono8')
        bag.write(TOPICS.depth, bag.image(mono, header), BASE_NS)


def test_read_errors_are_bag_errors(tmp_path: Path) -> None:
    with pytest.raises(BagError, match='not found'):
        list(read_rgbd(tmp_path / 'absent', TOPICS))


def test_eval_config_file_and_flag_precedence(tmp_path: Path, tiny_yaml: Path) -> None:
    from zoedepth_ros.cli.main import build_parser

    config = tmp_path / 'eval.yaml'
    config.write_text('crop: eigen\nmin_depth: 0.5\nmax_depth: 5.0\nflip: true\n')
    parser = build_parser()
    args = parser.parse_args(eval_args(tmp_path / 'bag', tmp_path / 'out', tiny_yaml,
                                       '--eval-config', str(config)))
    settings = bag_cli.eval_settings(args)  # --max-depth 10 on the command line wins
    assert (settings.crop, settings.min_depth, settings.max_depth) == ('eigen', 0.5, 10.0)
    assert args.flip and settings.edges == (0.5, 1.25, 2.5, 5.0, 10.0)


def test_compressed_colour_frames(tmp_path: Path) -> None:
    """CompressedImage (png) colour topics decode to the original RGB."""
    import cv2

    rgb = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    png = cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))[1]
    with AtomicBagWriter(tmp_path / 'bag', 'mcap') as bag:
        header = bag.header(BASE_NS, 'cam_optical_frame')
        message = bag.typestore.types['sensor_msgs/msg/CompressedImage'](
            header=header, format='rgb8; png compressed bgr8', data=png.ravel())
        bag.write('/cam/image_raw/compressed', message, BASE_NS)
        bag.write(TOPICS.depth, bag.image(encode_depth(gt_depth(0)), header), BASE_NS)
    topics = FrameTopics('/cam/image_raw/compressed', TOPICS.depth)
    (frame,) = read_rgbd(tmp_path / 'bag', topics)
    np.testing.assert_array_equal(frame.rgb, rgb)
    assert frame.depth_offset_ns == 0 and frame.camera_info is None


def test_predict_only_without_ground_truth(tmp_path: Path) -> None:
    """No depth topic: every frame is predicted into the output bag; the report still renders."""
    from zoedepth_ros.bag_report import write_report

    write_bag(tmp_path / 'bag')
    settings = BagEvalSettings(FrameTopics(TOPICS.image, None, TOPICS.camera_info),
                               namespace='/pred')
    with AtomicBagWriter(tmp_path / 'out', 'mcap') as writer:
        report = evaluate_bag(ConstantEstimator(), tmp_path / 'bag', settings, writer)
    assert (len(report.frames), report.paired, report.evaluated) == (6, 0, 0)
    assert all(math.isnan(value) for value in report.overall.values())
    write_report(report, tmp_path / 'report', [])
    assert '6 colour frames, 0 paired' in (tmp_path / 'report' / 'report.md').read_text()
    assert len(list((tmp_path / 'report' / 'plots').glob('*.png'))) == 4
    check_output_bag(tmp_path / 'out')
