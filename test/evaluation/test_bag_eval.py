"""Offline evaluation of recorded bags: the scores equal direct metrics, the output bag holds
what the node publishes, a null model gives hand-computed numbers."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from bag_fixtures import (
    LIDAR_EXTRINSIC,
    PAIRED,
    TOPICS,
    check_output_bag,
    gt_depth,
    sparse_cloud,
    sparse_image,
    write_bag,
)
from doubles import null_estimator

from zoedepth_ros.evaluation.bags import BagEvalSettings, FrameRecord, evaluate_bag
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.bags import FrameTopics, RgbdFrame
from zoedepth_ros.metrics import METRIC_KEYS, image_metrics, resize_prediction
from zoedepth_ros.model.config import get_config
from zoedepth_ros.pipeline.outputs import FrameOutputs


@pytest.fixture(scope='module')
def tiny_estimator() -> DepthEstimator:
    cfg = dataclasses.replace(get_config('zoedepth_tiny_nk'), img_size=(64, 96))
    return DepthEstimator.from_pretrained(cfg, random_weights=True, device='cpu')


@pytest.mark.parametrize('storage, out_storage, version', [('sqlite3', 'mcap', 9),
                                                           ('mcap', 'sqlite3', 8)])
def test_eval_equals_direct_metrics_and_output_bag(tmp_path: Path, storage: str,
                                                   out_storage: str, version: int,
                                                   tiny_estimator: DepthEstimator) -> None:
    write_bag(tmp_path / 'bag', storage)
    settings = BagEvalSettings(TOPICS, min_depth=1e-3, max_depth=10.0, namespace='/pred')
    predictions = {}

    def keep(frame: RgbdFrame, result: FrameOutputs, record: FrameRecord) -> None:
        predictions[frame.index] = result

    with AtomicBagWriter(tmp_path / 'out', out_storage, version) as writer:
        report = evaluate_bag(tiny_estimator, tmp_path / 'bag', settings, writer, keep)
    assert (len(report.frames), report.paired, report.evaluated) == (6, 4, 4)
    direct, domains = [], []
    for index in PAIRED:  # the same predictions, scored here with metrics.image_metrics
        result, gt = predictions[index], gt_depth(index)
        pred = resize_prediction(result.depth_m, gt.shape)  # 48x64 -> ground truth 24x32
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


def test_null_model_constant_metrics(tmp_path: Path) -> None:
    """A constant 2 m prediction on the plane: REL matches the hand formula per frame."""
    write_bag(tmp_path / 'bag')
    report = evaluate_bag(null_estimator(depth_m=2.0, domain_index=1), tmp_path / 'bag',
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


def test_predict_only_without_ground_truth(tmp_path: Path) -> None:
    """No depth topic: every frame is predicted into the output bag; the report still renders."""
    from zoedepth_ros.evaluation.report import write_report

    write_bag(tmp_path / 'bag')
    settings = BagEvalSettings(FrameTopics(TOPICS.image, None, TOPICS.camera_info),
                               namespace='/pred')
    with AtomicBagWriter(tmp_path / 'out', 'mcap') as writer:
        report = evaluate_bag(null_estimator(depth_m=2.0), tmp_path / 'bag', settings, writer)
    assert (len(report.frames), report.paired, report.evaluated) == (6, 0, 0)
    assert all(math.isnan(value) for value in report.overall.values())
    write_report(report, tmp_path / 'report', [])
    assert '6 colour frames, 0 paired' in (tmp_path / 'report' / 'report.md').read_text()
    assert len(list((tmp_path / 'report' / 'plots').glob('*.png'))) == 4
    check_output_bag(tmp_path / 'out')


@pytest.mark.parametrize('writer, topic, extrinsic', [
    (sparse_image, '/cam/sparse', ()), (sparse_cloud, '/cam/lidar', LIDAR_EXTRINSIC)])
def test_anchored_and_plain_scores_in_one_run(tmp_path: Path, writer, topic: str,
                                              extrinsic: tuple[float, ...]) -> None:
    """A constant 2 m prediction anchored to samples at 3 m: scale 1.5 exactly, scored as a
    constant 3 m prediction, and as 2 m without alignment, in the same run."""
    from zoedepth_ros.anchoring import AnchorOptions, ExtrinsicOptions
    from zoedepth_ros.evaluation.report import write_report
    from zoedepth_ros.pipeline.options import FrameOptions

    write_bag(tmp_path / 'bag', extra=writer)
    anchor = AnchorOptions(time_constant_s=0.0, **(
        {'extrinsic': ExtrinsicOptions.of(extrinsic)} if extrinsic else {}))
    settings = BagEvalSettings(TOPICS, max_depth=10.0, sparse_topic=topic,
                               frame=FrameOptions(anchor=anchor))
    report = evaluate_bag(null_estimator(depth_m=2.0), tmp_path / 'bag', settings)

    def rel(constant: float) -> float:
        per_frame = []
        for index in PAIRED:
            gt = gt_depth(index)
            gt = gt[np.isfinite(gt)]
            per_frame.append(np.mean(np.abs(gt - constant) / gt))
        return float(np.mean(per_frame))

    assert report.overall['abs_rel'] == pytest.approx(rel(3.0), rel=1e-6)
    assert report.unaligned['overall']['abs_rel'] == pytest.approx(rel(2.0), rel=1e-6)
    fits = [r.alignment for r in report.frames]
    assert all(f['scale'] == pytest.approx(1.5, rel=1e-6) for f in fits)
    statuses = [f['status'] for f in fits]
    if topic == '/cam/sparse':  # frame 4 has no samples: the last scale is held
        assert statuses == ['reset', 'fit', 'fit', 'fit', 'held', 'fit']
        assert fits[0]['samples'] == 48 and fits[0]['inliers'] == 48
    else:
        assert statuses == ['reset'] + ['fit'] * 5 and fits[0]['samples'] == 35
    write_report(report, tmp_path / 'report', [])
    text = (tmp_path / 'report' / 'report.md').read_text()
    assert '## Metric anchoring' in text and f'anchored to `{topic}`' in text
    assert '| without alignment | 4 |' in text and '| with alignment | 4 |' in text
    assert (tmp_path / 'report' / 'plots' / 'alignment_scale.png').stat().st_size > 1000
    header = (tmp_path / 'report' / 'per_frame.csv').read_text().splitlines()[0]
    assert header.endswith('alignment_samples,alignment_inliers,alignment_status')


@pytest.mark.parametrize('info_topic, found, source', [
    ('/cam/camera_info', '/cam/camera_info', 'beside /cam/image_raw'),
    ('/calibration/info', '/calibration/info', "the bag's only CameraInfo topic"),
    (None, None, 'the bag has no CameraInfo topic')])
def test_no_silent_camera(tmp_path: Path, info_topic: str | None, found: str | None,
                          source: str) -> None:
    """Without --camera-info-topic the bag's own CameraInfo serves (beside the image topic, or
    the only one); with none, the assumed field of view is said in the report and used."""
    from zoedepth_ros.evaluation.report import camera_line, report_markdown
    from zoedepth_ros.io.bag_reader import open_bag
    from zoedepth_ros.pipeline.options import FrameOptions

    write_bag(tmp_path / 'bag', info_topic=info_topic)
    settings = BagEvalSettings(FrameTopics(TOPICS.image, TOPICS.depth), namespace='/pred',
                               frame=FrameOptions(fov_deg=90.0))
    with AtomicBagWriter(tmp_path / 'out', 'mcap') as writer:
        report = evaluate_bag(null_estimator(depth_m=2.0), tmp_path / 'bag', settings, writer)
    assert report.camera['camera_info_topic'] == found
    assert report.camera['source'] == source
    assert report.camera['assumed_fov_frames'] == (6 if found is None else 0)
    assert report.camera_assumed == (found is None)
    line = camera_line(report)
    assert ('ASSUMED a 90.0 degree horizontal field of view' in line) == (found is None)
    assert line in report_markdown(report, [])
    with open_bag(tmp_path / 'out') as reader:
        infos = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()
                 if c.topic == '/pred/depth/camera_info']
    # the bag's camera (fx 40 px), or the assumed one: 90 degrees over 64 px gives fx 32 px
    assert len(infos) == 6
    fx = 32.0 if found is None else 40.0
    assert [float(info.k[0]) for info in infos] == pytest.approx([fx] * 6, rel=1e-12)


def test_several_camera_infos_and_none_beside_the_image(tmp_path: Path) -> None:
    def second(bag: AtomicBagWriter, index: int, stamp: int) -> None:
        from bag_fixtures import INFO

        bag.write('/other/camera_info', bag.camera_info(INFO, bag.header(stamp, 'x')), stamp)

    write_bag(tmp_path / 'bag', info_topic='/calibration/info', extra=second)
    settings = BagEvalSettings(FrameTopics(TOPICS.image, TOPICS.depth))
    report = evaluate_bag(null_estimator(depth_m=2.0), tmp_path / 'bag', settings)
    assert report.camera['camera_info_topic'] is None
    assert 'several CameraInfo topics (/calibration/info, /other/camera_info)' in \
        report.camera['source'] and '--camera-info-topic' in report.camera['source']


def test_the_output_bag_holds_what_the_node_publishes(tmp_path: Path) -> None:
    """A 0.3-100 m ramp prediction: the output bag's depth, std and cloud are byte for byte the
    node's per-frame outputs at its default parameters (range gate 0.1-80 m included), while
    the scores use the ungated depth (the protocol clamps)."""
    from zoedepth_ros.io.bag_reader import open_bag
    from zoedepth_ros.pipeline.outputs import FrameRequest
    from zoedepth_ros.pipeline.predict import predict_frame
    from zoedepth_ros.ros.config import NodeConfig

    write_bag(tmp_path / 'bag')
    estimator = null_estimator()  # depth_m=None: a ramp 0.3-100 m over the image
    frames: dict[int, RgbdFrame] = {}

    def keep(frame: RgbdFrame, result: FrameOutputs, record: FrameRecord) -> None:
        frames[frame.index] = frame

    settings = BagEvalSettings(TOPICS, namespace='/pred', max_depth=100.0)
    with AtomicBagWriter(tmp_path / 'out', 'mcap') as writer:
        report = evaluate_bag(estimator, tmp_path / 'bag', settings, writer, keep)
    with open_bag(tmp_path / 'out') as reader:
        written: dict[str, list] = {}
        for connection, _, raw in reader.messages():
            if connection.topic.startswith('/pred/'):
                written.setdefault(connection.topic, []).append(
                    reader.deserialize(raw, connection.msgtype))
    options = NodeConfig().frame  # the node's defaults
    assert settings.frame == options
    for index, frame in frames.items():
        expected = predict_frame(estimator, frame.rgb, frame_info(frame), options,
                                 FrameRequest.of(options))
        encoded = expected.encoded(options)
        depth = written['/pred/depth/image'][index]
        assert bytes(depth.data) == bytes(encoded['depth'].data)
        assert bytes(written['/pred/depth/std'][index].data) == bytes(encoded['std'].data)
        assert bytes(written['/pred/points'][index].data) == bytes(encoded['points'].data)
        values = np.frombuffer(bytes(depth.data), '<f4')
        assert np.nanmax(values) <= 80.0 and np.isnan(values).mean() > 0.05
    record = report.frames[PAIRED[0]]
    ungated = predict_frame(estimator, frames[PAIRED[0]].rgb, frame_info(frames[PAIRED[0]]),
                            options, FrameRequest(std=False, keep_ungated=True))
    assert record.metrics == pytest.approx(
        image_metrics(ungated.ungated_depth_m, gt_depth(PAIRED[0]), 1e-3, 100.0), rel=1e-9)


def frame_info(frame: RgbdFrame):  # noqa: ANN201 - CameraInfoFields
    from zoedepth_ros.pipeline.predict import frame_camera_info

    return frame_camera_info(frame.camera_info, frame.rgb.shape[1], frame.rgb.shape[0])
