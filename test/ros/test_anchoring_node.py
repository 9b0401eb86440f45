"""Metric anchoring in depth_node over real DDS: sparse depth images and lidar-style clouds (in
another frame, with a fixed extrinsic) fix the scale; the fit goes to depth/alignment and
/diagnostics; without samples the node behaves as before; bad sparse input is dropped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from node_harness import (
    NodeProcess,
    Probe,
    diagnostics,
    make_image,
    make_info,
    same_stamp,
    serve,
    set_parameters,
    stamp_header,
    test_image,
    wait_counter,
    wait_until,
)
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Float32MultiArray

from zoedepth_ros.io import messages
from zoedepth_ros.pipeline.outputs import ALIGNMENT_LABELS

RGB = test_image(64, 48, seed=4)
# lidar frame (x forward, y left, z up) -> camera optical frame (x right, y down, z forward)
R_LIDAR = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
Q_LIDAR = (0.5, -0.5, 0.5, 0.5)
T_LIDAR = np.array([0.05, -0.1, 0.02])


@pytest.fixture(scope='module')
def node(tmp_path_factory: pytest.TempPathFactory, tiny_model_yaml: Path
         ) -> Iterator[NodeProcess]:
    log = tmp_path_factory.mktemp('anchor') / 'node.log'
    process = NodeProcess(log, '/s', {
        'model': str(tiny_model_yaml), 'random_weights': True, 'device': 'cpu',
        'diagnostics.period_s': 0.3, 'fov_deg': 0.0, 'min_range': 0.0, 'max_range': 1000.0,
        'anchor.time_constant_s': 0.0})
    yield process
    assert process.stop() == 0, process.log()
    assert 'Traceback' not in process.log()


@pytest.fixture(scope='module')
def probe(node: NodeProcess) -> Iterator[Probe]:
    probe = Probe('anchor_probe')
    probe.image = probe.publisher(Image, '/s/image')
    probe.info = probe.publisher(CameraInfo, '/s/camera_info')
    probe.sparse = probe.publisher(Image, '/s/sparse_depth')
    probe.cloud = probe.publisher(PointCloud2, '/s/sparse_points')
    probe.subscribe(Image, '/s/depth/image')
    probe.subscribe(Float32MultiArray, '/s/depth/alignment')
    probe.subscribe(DiagnosticArray, '/diagnostics')
    wait_until(lambda: probe.image.get_subscription_count() and
               probe.sparse.get_subscription_count() and probe.cloud.get_subscription_count(),
               what='the node to subscribe')
    wait_until(lambda: probe.node.count_publishers('/s/depth/alignment'),
               what='the alignment publisher')
    yield probe
    probe.close()


def depth_of(msg: Image) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), '<f4').reshape(msg.height, msg.width).copy()


def sparse_image(depth: np.ndarray, header: Any, step: int = 4) -> Image:
    sparse = np.full_like(depth, np.nan)
    sparse[::step, ::step] = depth[::step, ::step]
    fields = messages.encode_depth(sparse, '32FC1')
    return make_image(np.zeros((1, 1, 3), np.uint8), header) if fields is None else Image(
        header=header, height=fields.height, width=fields.width, encoding=fields.encoding,
        step=fields.step, data=bytes(fields.data))


def cloud_message(points: np.ndarray, header: Any) -> PointCloud2:
    data = np.ascontiguousarray(points, dtype='<f4')
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, n in enumerate('xyz')]
    return PointCloud2(header=header, height=1, width=len(points), fields=fields,
                       is_bigendian=False, point_step=12, row_step=12 * len(points),
                       data=data.tobytes(), is_dense=True)


def anchored(probe: Probe, publish_sparse: Any, first_sec: int, factor: float,
             reference: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Publish sparse input then the image (new stamps until the node had the samples in
    time: the two topics are not ordered) and return the aligned depth and alignment."""
    for sec in range(first_sec, first_sec + 10):
        header = stamp_header(sec)
        publish_sparse(header)
        serve(probe, make_image(RGB, header), make_info(header), probe.image, probe.info,
              '/s/depth/image')
        depth = depth_of(probe.latest('/s/depth/image', same_stamp(header)))
        valid = np.isfinite(depth) & np.isfinite(reference)
        if np.allclose(depth[valid], factor * reference[valid], rtol=1e-4):
            alignment = wait_until(lambda: probe.latest(
                '/s/depth/alignment', lambda m: abs(m.data[0] - factor) < 1e-3),
                what='alignment message')
            return depth, list(alignment.data)
    raise AssertionError('the sparse samples never reached the node in time')


def test_sparse_depth_and_points_fix_the_scale(node: NodeProcess, probe: Probe) -> None:
    header = stamp_header(100)
    serve(probe, make_image(RGB, header), make_info(header), probe.image, probe.info,
          '/s/depth/image')
    plain = depth_of(probe.latest('/s/depth/image', same_stamp(header)))
    assert np.isfinite(plain).mean() > 0.9
    # no sparse input yet: nothing on depth/alignment, the depth is the model's
    assert probe.latest('/s/depth/alignment') is None

    # a sparse depth image (every 4th pixel) at twice the predicted depth
    depth, values = anchored(
        probe, lambda h: probe.sparse.publish(sparse_image(2.0 * plain, h)), 101, 2.0, plain)
    fit = dict(zip(ALIGNMENT_LABELS, values))
    samples = int(np.isfinite(plain[::4, ::4]).sum())
    assert fit['scale'] == pytest.approx(2.0, rel=1e-5) and fit['applied'] == 1.0
    assert (fit['samples'], fit['inliers']) == (samples, samples)
    assert fit['residual'] < 1e-4 and fit['shift'] == 0.0
    probe_msg = probe.latest('/s/depth/alignment')
    assert probe_msg.layout.dim[0].label == ','.join(ALIGNMENT_LABELS)
    status = wait_until(lambda: (lambda values: 'alignment_status' in values and values)(
        diagnostics(probe, '/s/depth_node')[1]), what='alignment in diagnostics')
    assert status['alignment_status'] in ('fit', 'reset')
    assert float(status['alignment_scale']) == pytest.approx(2.0, rel=1e-3)

    # a lidar cloud in its own frame at 3x the predicted depth, through the fixed extrinsic
    camera = messages.camera_info_fields(make_info(header)).camera
    rows, cols = np.mgrid[0:48:3, 0:64:3]
    z = 3.0 * plain[rows, cols]
    keep = np.isfinite(z)
    optical = np.stack([(cols[keep] - camera.cx) * z[keep] / camera.fx,
                        (rows[keep] - camera.cy) * z[keep] / camera.fy, z[keep]], axis=1)
    in_lidar = (optical - T_LIDAR) @ R_LIDAR  # R^T (p - t), row vectors
    results = set_parameters(probe, '/s/depth_node', {
        'anchor.extrinsic.enabled': True, 'anchor.extrinsic.x': float(T_LIDAR[0]),
        'anchor.extrinsic.y': float(T_LIDAR[1]), 'anchor.extrinsic.z': float(T_LIDAR[2]),
        'anchor.extrinsic.qx': Q_LIDAR[0], 'anchor.extrinsic.qy': Q_LIDAR[1],
        'anchor.extrinsic.qz': Q_LIDAR[2], 'anchor.extrinsic.qw': Q_LIDAR[3]})
    assert all(result.successful for result in results)

    def publish_cloud(h: Any) -> None:
        probe.cloud.publish(cloud_message(in_lidar, stamp_header(
            h.stamp.sec, h.stamp.nanosec, frame_id='lidar')))

    _, values = anchored(probe, publish_cloud, 200, 3.0, plain)
    fit = dict(zip(ALIGNMENT_LABELS, values))
    assert fit['scale'] == pytest.approx(3.0, rel=1e-4) and fit['samples'] == keep.sum()


def test_bad_sparse_input_is_dropped_and_the_node_keeps_serving(node: NodeProcess,
                                                                 probe: Probe) -> None:
    before = int(diagnostics(probe, '/s/depth_node')[1]['malformed_total'])
    header = stamp_header(300)
    bad = make_image(RGB, header)  # rgb8 is not a depth encoding
    probe.sparse.publish(bad)
    broken = cloud_message(np.zeros((4, 3)), header)
    broken.fields = broken.fields[:2]  # no z field
    probe.cloud.publish(broken)
    wait_counter(probe, '/s/depth_node', 'malformed_total', before + 1)  # both counted
    serve(probe, make_image(RGB, stamp_header(301)), make_info(stamp_header(301)),
          probe.image, probe.info, '/s/depth/image')
    log = node.log()  # the warning is throttled: at least the first one is in the log
    assert "unsupported depth encoding 'rgb8'" in log or 'needs float32/float64 x, y, z' in log
