"""depth_node over real DDS: outputs, parameters, bad input, overload, sync modes, shutdown.

Node A (raw input, cached camera_info, fov fallback off) is shared by the module's tests and
must exit 0 on SIGINT at teardown; node B (compressed input, approximate stamp matching, fov
fallback on) lives inside its own test. Each test stands alone (xdist may split the module).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from node_harness import (
    PARAMS_FILE,
    WAIT_S,
    K,
    NodeProcess,
    P,
    Probe,
    diagnostics,
    make_compressed,
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
from rcl_interfaces.srv import DescribeParameters
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String

A_OUTPUTS = {'depth/image': Image, 'depth/camera_info': CameraInfo, 'points': PointCloud2,
             'depth/std': Image, 'depth/preview': Image, 'domain': String}


@pytest.fixture(scope='module')
def model_params(tiny_model_yaml: Path) -> dict[str, Any]:
    return {'model': str(tiny_model_yaml), 'random_weights': True, 'device': 'cpu',
            'diagnostics.period_s': 0.3}


@pytest.fixture(scope='module')
def node_a(tmp_path_factory: pytest.TempPathFactory,
           model_params: dict[str, Any]) -> Iterator[NodeProcess]:
    """Raw input, cached camera_info, no fov fallback, preview on. Must exit 0 on SIGINT."""
    log = tmp_path_factory.mktemp('node_a') / 'a.log'
    node = NodeProcess(log, '/a', {**model_params, 'fov_deg': 0.0, 'publish_preview': True})
    yield node
    assert node.stop() == 0, node.log()
    assert 'Traceback' not in node.log()


@pytest.fixture(scope='module')
def listener() -> Iterator[Probe]:
    """Test-side node that records /diagnostics."""
    probe = Probe('probe')
    probe.subscribe(DiagnosticArray, '/diagnostics')
    yield probe
    probe.close()


@pytest.fixture(scope='module')
def probe(node_a: NodeProcess, listener: Probe) -> Probe:
    """``listener`` with publishers into node A and subscriptions to all its outputs."""
    listener.image = listener.publisher(Image, '/a/image')
    listener.info = listener.publisher(CameraInfo, '/a/camera_info')
    for topic, kind in A_OUTPUTS.items():
        listener.subscribe(kind, f'/a/{topic}')
    wait_until(lambda: listener.image.get_subscription_count() and
               listener.info.get_subscription_count(), what='node A to subscribe')
    wait_until(lambda: all(listener.node.count_publishers(f'/a/{topic}')
                           for topic in A_OUTPUTS), what='node A publishers to match')
    return listener


RGB = test_image(64, 48)


def test_outputs_carry_input_header_and_follow_the_formulas(node_a: NodeProcess,
                                                            probe: Probe) -> None:
    header = stamp_header(1000, 5)
    serve(probe, make_image(RGB, header), make_info(header), probe.image, probe.info,
          '/a/depth/image')
    match = same_stamp(header)
    depth_msg = probe.latest('/a/depth/image', match)
    info = wait_until(lambda: probe.latest('/a/depth/camera_info', match), what='camera_info')
    cloud = wait_until(lambda: probe.latest('/a/points', match), what='points')
    std_msg = wait_until(lambda: probe.latest('/a/depth/std', match), what='std')
    preview = wait_until(lambda: probe.latest('/a/depth/preview', match), what='preview')
    domain = wait_until(lambda: probe.latest('/a/domain'), what='domain')
    for msg in (depth_msg, info, cloud, std_msg, preview):
        assert msg.header == header  # stamp and frame_id of the input, never now()
    assert (depth_msg.encoding, depth_msg.width, depth_msg.height, depth_msg.step,
            depth_msg.is_bigendian) == ('32FC1', 64, 48, 256, 0)
    depth = np.frombuffer(bytes(depth_msg.data), '<f4').reshape(48, 64)
    finite = depth[np.isfinite(depth)]
    assert finite.size > 0 and finite.min() >= 0.1 and finite.max() <= 80.0
    assert (info.width, info.height, list(info.k), list(info.p)) == (64, 48, K, P)
    assert list(info.d) == [0.0] * 5 and info.distortion_model == 'plumb_bob'
    std = np.frombuffer(bytes(std_msg.data), '<f4').reshape(48, 64)
    assert std_msg.encoding == '32FC1' and np.all(np.isfinite(std)) and np.all(std >= 0)
    assert (preview.encoding, preview.width, preview.height) == ('bgr8', 64, 48)
    assert domain.data in ('indoor', 'outdoor')
    # Cloud: stride 2, organised, xyz + rgb, depth_image_proc's formula with P.
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('rgb', 12, 7, 1)]
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (24, 32, 16, 512)
    assert cloud.is_dense is False and cloud.is_bigendian is False
    points = np.frombuffer(bytes(cloud.data), np.dtype(
        {'names': list('xyz') + ['rgb'], 'formats': ['<f4'] * 3 + ['<u4'],
         'offsets': [0, 4, 8, 12], 'itemsize': 16})).reshape(24, 32)
    z = depth[::2, ::2]
    u, v = np.meshgrid(np.arange(0, 64, 2), np.arange(0, 48, 2))
    np.testing.assert_allclose(points['z'], z, equal_nan=True)
    np.testing.assert_allclose(points['x'], (u - P[2]) * z / P[0], rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(points['y'], (v - P[6]) * z / P[5], rtol=1e-5, equal_nan=True)
    rgb = RGB[::2, ::2].astype(np.uint32)
    np.testing.assert_array_equal(points['rgb'], (rgb[..., 0] << 16) | (rgb[..., 1] << 8)
                                  | rgb[..., 2])


def test_runtime_parameters_are_validated_and_applied(node_a: NodeProcess, probe: Probe) -> None:
    header = stamp_header(1001)
    serve(probe, make_image(RGB, header), make_info(header), probe.image, probe.info,
          '/a/depth/image')
    baseline = probe.latest('/a/depth/image', same_stamp(header))
    assert baseline.encoding == '32FC1'
    depth = np.frombuffer(bytes(baseline.data), '<f4').reshape(48, 64)
    results = set_parameters(probe, '/a/depth_node', {'min_range': 100.0})
    assert not results[0].successful and 'must be smaller than max_range' in results[0].reason
    results = set_parameters(probe, '/a/depth_node', {'model': 'ZoeD_NK'})
    assert not results[0].successful
    results = set_parameters(probe, '/a/depth_node', {'cloud.stride': 0})
    assert not results[0].successful
    changes = {'output_encoding': '16UC1', 'cloud.organized': False, 'cloud.color': False,
               'frame_id': 'override_optical_frame'}
    try:
        assert all(r.successful for r in set_parameters(probe, '/a/depth_node', changes))
        header = stamp_header(1002)
        serve(probe, make_image(RGB, header), make_info(header), probe.image, probe.info,
              '/a/depth/image')
        match = same_stamp(header)
        depth_msg = probe.latest('/a/depth/image', match)
        cloud = wait_until(lambda: probe.latest('/a/points', match), what='points')
    finally:
        set_parameters(probe, '/a/depth_node', {'output_encoding': '32FC1', 'frame_id': '',
                                                'cloud.organized': True, 'cloud.color': True})
    assert (depth_msg.encoding, depth_msg.step) == ('16UC1', 128)
    assert depth_msg.header.frame_id == cloud.header.frame_id == 'override_optical_frame'
    assert depth_msg.header.stamp == header.stamp  # the frame id changes, never the stamp
    millimetres = np.frombuffer(bytes(depth_msg.data), '<u2').reshape(48, 64)
    expected = np.nan_to_num(np.rint(depth * np.float32(1000.0)), nan=0.0)  # same image
    np.testing.assert_array_equal(millimetres, expected.astype(np.uint16))
    # Dense cloud of the valid strided pixels, x y z only.
    valid = np.isfinite(depth[::2, ::2])
    assert (cloud.height, cloud.width, cloud.point_step, cloud.is_dense) == (
        1, int(valid.sum()), 12, True)
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z']


def test_every_yaml_key_is_a_declared_parameter_with_a_descriptor(node_a: NodeProcess,
                                                                  probe: Probe) -> None:
    document = yaml.safe_load(PARAMS_FILE.read_text())['/**']['ros__parameters']

    def flatten(section: dict[str, Any], prefix: str = '') -> list[str]:
        return [name for key, value in section.items() for name in (
            flatten(value, f'{prefix}{key}.') if isinstance(value, dict)
            else [f'{prefix}{key}'])]

    names = flatten(document)
    assert 'anchor.extrinsic.qw' in names
    response = probe.call(DescribeParameters, '/a/depth_node/describe_parameters',
                          DescribeParameters.Request(names=names))
    described = {d.name: d for d in response.descriptors}
    assert sorted(described) == sorted(names) and all(d.description for d in described.values())
    assert described['model'].read_only and described['device'].read_only
    assert not described['max_range'].read_only
    assert described['max_range'].floating_point_range[0].to_value == 1000.0
    assert described['cloud.stride'].integer_range[0].from_value == 1
    assert '32FC1' in described['output_encoding'].additional_constraints


def test_bad_input_is_dropped_and_counted_then_good_input_served(node_a: NodeProcess,
                                                                 probe: Probe) -> None:
    assert set_parameters(probe, '/a/depth_node', {'max_input_pixels': 5000})[0].successful
    bad_step = make_image(RGB, stamp_header(2002))
    bad_step.step = 64 * 3 + 1
    truncated = make_image(RGB, stamp_header(2003))
    truncated.data = bytes(truncated.data)[:-10]
    bayer = make_image(RGB[..., 0], stamp_header(2001), encoding='bayer_rggb8')
    cases = [
        (probe.image, bayer),
        (probe.image, bad_step),
        (probe.image, truncated),
        (probe.image, Image(header=stamp_header(2004), encoding='rgb8')),  # 0 x 0
        (probe.image, make_image(test_image(100, 60), stamp_header(2005))),  # > 5000 pixels
        (probe.info, make_info(stamp_header(2006), k=[0.0] * 9, p=[0.0] * 12)),
        (probe.image, make_image(RGB, stamp_header(1999))),  # stamp goes backwards
    ]
    count = int(diagnostics(probe, '/a/depth_node')[1]['malformed_total'])
    for publisher, message in cases:
        publisher.publish(message)
        count = wait_counter(probe, '/a/depth_node', 'malformed_total', count)
        assert node_a.process.poll() is None
    # CameraInfo of another shape than the image (640x400 for 64x48): refused when paired
    # with the image. (640x480, the same aspect ratio, would be scaled instead.)
    probe.info.publish(make_info(stamp_header(2007), width=640, height=400))
    wait_until(lambda: (probe.image.publish(make_image(RGB, stamp_header(2008))) or
                        int(diagnostics(probe, '/a/depth_node')[1]['malformed_total']) > count),
               what='wrong-size camera_info refused')
    assert set_parameters(probe, '/a/depth_node', {'max_input_pixels': 8294400})[0].successful
    header = stamp_header(3000)
    serve(probe, make_image(RGB, header), make_info(header), probe.image, probe.info,
          '/a/depth/image')
    assert "unsupported image encoding 'bayer_rggb8'" in node_a.log()


def test_diagnostics_report_rates_timings_and_model(node_a: NodeProcess, probe: Probe) -> None:
    header = stamp_header(4000)
    serve(probe, make_image(RGB, header), make_info(header), probe.image, probe.info,
          '/a/depth/image')
    malformed = int(diagnostics(probe, '/a/depth_node')[1]['malformed_total'])
    probe.image.publish(make_image(RGB[..., 0], stamp_header(4001), encoding='bayer_rggb8'))
    wait_counter(probe, '/a/depth_node', 'malformed_total', malformed)
    wait_counter(probe, '/a/depth_node', 'published_total', 0)
    status, values = diagnostics(probe, '/a/depth_node')
    assert isinstance(status.level, bytes) and status.hardware_id == 'cpu'
    assert values['device'] == 'cpu' and 'ZoeDepthNK' in values['model']
    # Random weights are said loudly: WARN with the reason, in the log at start too.
    assert values['model_kind'] == 'random' and status.level == DiagnosticStatus.WARN
    assert 'RANDOM weights' in status.message and 'RANDOM weights' in node_a.log()
    assert int(values['published_total']) >= 1 and int(values['malformed_total']) >= 1
    assert float(values['inference_ms_mean']) > 0
    assert float(values['inference_ms_p95']) >= float(values['inference_ms_mean']) * 0.5
    assert float(values['input_rate_hz']) >= 0 and float(values['stamp_age_s']) > 0
    assert values['domain'] in ('indoor', 'outdoor') and values['fallback_intrinsics'] == 'False'
    for key in ('output_rate_hz', 'dropped_total', 'idle_skipped_total', 'domain_probability'):
        assert key in values


@pytest.mark.slow
def test_overload_keeps_lag_bounded_drops_frames_and_memory_flat(node_a: NodeProcess,
                                                                 probe: Probe) -> None:
    header = stamp_header(5000)  # warm up (first inferences allocate) before measuring memory
    serve(probe, make_image(RGB, header), make_info(header), probe.image, probe.info,
          '/a/depth/image')
    rss_before = node_a.rss_kib()
    seen = len(probe.received['/diagnostics'])  # counters after the warm-up frame settled:
    wait_until(lambda: len(probe.received['/diagnostics']) > seen + 2, what='fresh diagnostics')
    before = _counters(probe)
    outputs = probe.received['/a/depth/image']
    first_output = len(outputs)
    sent, start = 0, time.monotonic()
    info = make_info(stamp_header(0))
    while time.monotonic() - start < 6.0:  # ~100 Hz, far above the inference rate here
        now_ns = time.time_ns()
        header = stamp_header(now_ns // 10**9, now_ns % 10**9)
        info.header = header
        probe.info.publish(info)
        probe.image.publish(make_image(RGB, header))
        sent += 1
        time.sleep(0.01)
    wait_until(lambda: len(outputs) > first_output + 3, what='outputs under overload')

    def settled() -> dict[str, int] | None:
        """Counter deltas once every received frame was either published or dropped."""
        delta = {k: v - before[k] for k, v in _counters(probe).items()}
        accounted = sum(delta[k] for k in ('published_total', 'dropped_total',
                                           'malformed_total', 'no_camera_info_total'))
        return delta if delta['received_total'] == accounted and delta[
            'published_total'] == len(outputs) - first_output else None

    delta = wait_until(settled, what='received == published + dropped')
    served = outputs[first_output:]
    lags = [received_wall - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9)
            for received_wall, m in _wall_times(served)]
    rss_after = node_a.rss_kib()
    intervals = np.diff([received for received, _ in served])
    inference_s = float(np.median(intervals))
    print(f'overload: sent {sent}, received {delta["received_total"]}, served {len(served)}, '
          f'dropped {delta["dropped_total"]}, lag median {np.median(lags):.3f} s max '
          f'{max(lags):.3f} s, inference ~{inference_s:.3f} s, RSS {rss_before / 1024:.1f} -> '
          f'{rss_after / 1024:.1f} MiB')
    assert delta['malformed_total'] == 0 and delta['received_total'] <= sent
    if inference_s > 0.05:  # slower than the input: most frames must be dropped, not queued
        assert delta['dropped_total'] >= delta['received_total'] // 2
    # Newest frame wins: a frame waits at most one inference, then takes one.
    assert np.median(lags[1:]) <= 2.0 * inference_s + 0.3
    assert max(lags[len(lags) // 2:]) <= 3.0 * inference_s + 0.5
    assert rss_after - rss_before < 40 * 1024


def _counters(probe: Probe) -> dict[str, int]:
    values = diagnostics(probe, '/a/depth_node')[1]
    return {k: int(v) for k, v in values.items() if k.endswith('_total')}


def _wall_times(served: list) -> list:
    """Convert monotonic receive times to wall-clock times (the stamps are wall clock)."""
    offset = time.time() - time.monotonic()
    return [(received + offset, msg) for received, msg in served]


def test_compressed_input_approx_sync_fov_fallback_and_sigint(
        tmp_path: Path, model_params: dict[str, Any], listener: Probe) -> None:
    node_b = NodeProcess(tmp_path / 'b.log', '/b', {
        **model_params, 'input_transport': 'compressed', 'sync_mode': 'approx',
        'sync_slop_s': 0.05, 'fov_deg': 90.0},
        remaps={'image': '/b/cam/image', 'camera_info': '/b/cam/info'})
    try:
        _compressed_approx_fallback(listener)
    finally:
        code = node_b.stop()
    assert code == 0, node_b.log()  # SIGINT while spinning: clean exit
    assert 'Traceback' not in node_b.log()


def _compressed_approx_fallback(probe: Probe) -> None:
    image_pub = probe.publisher(CompressedImage, '/b/cam/image/compressed')
    info_pub = probe.publisher(CameraInfo, '/b/cam/info')
    wait_until(lambda: image_pub.get_subscription_count() and info_pub.get_subscription_count(),
               what='node B to subscribe')
    # Nobody listens to B's outputs yet: frames are skipped without inference.
    idle = make_compressed(RGB, stamp_header(10))
    wait_until(lambda: image_pub.publish(idle) or int(
        diagnostics(probe, '/b/depth_node')[1]['idle_skipped_total']) > 0, what='idle skip')
    assert diagnostics(probe, '/b/depth_node')[1]['published_total'] == '0'
    probe.subscribe(Image, '/b/depth/image')
    probe.subscribe(CameraInfo, '/b/depth/camera_info')
    wait_until(lambda: probe.node.count_publishers('/b/depth/camera_info'), what='B matched')
    # No camera_info ever: intrinsics from fov_deg 90 (fx = 0.5 w / tan 45 deg).
    header = stamp_header(11)
    serve(probe, make_compressed(RGB, header), None, image_pub, None, '/b/depth/camera_info')
    info = probe.latest('/b/depth/camera_info', same_stamp(header))
    assert info.p[0] == pytest.approx(32.0) and (info.p[2], info.p[6]) == (31.5, 23.5)
    p_fov = info.p[0]
    wait_until(lambda: diagnostics(probe, '/b/depth_node')[1]['fallback_intrinsics'] == 'True',
               what='fallback intrinsics flagged in diagnostics')
    # Approximate matching: the image pairs with the camera_info within 50 ms of its stamp.
    p_far = [70.0, 0, 30, 0, 0, 70, 22, 0, 0, 0, 1, 0]
    p_near = [60.0, 0, 30, 0, 0, 60, 22, 0, 0, 0, 1, 0]
    image_header = stamp_header(20, 0)
    match = same_stamp(image_header)
    deadline = time.monotonic() + WAIT_S
    # (An image reaching the node before its first camera_info is still served with fov_deg.)
    while not probe.latest('/b/depth/camera_info', lambda m: match(m) and m.p[0] != p_fov):
        assert time.monotonic() < deadline, 'approx-synchronised output never came'
        info_pub.publish(make_info(stamp_header(20, 200_000_000), p=p_far))  # 200 ms off
        info_pub.publish(make_info(stamp_header(19, 980_000_000), p=p_near))  # 20 ms off
        image_pub.publish(make_compressed(RGB, image_header))
        time.sleep(0.5)
    infos = [m for _, m in probe.received['/b/depth/camera_info'] if match(m)]
    assert all(list(m.p) in (p_near, list(info.p)) for m in infos)  # never the far one
    info = next(m for m in infos if m.p[0] != p_fov)
    assert list(info.p) == p_near and info.header == image_header
    depth = probe.latest('/b/depth/image', same_stamp(image_header))
    assert (depth.width, depth.height, depth.encoding) == (64, 48, '32FC1')
    # A corrupt jpeg is dropped and counted; the node stays up (checked by the SIGINT exit).
    malformed = int(diagnostics(probe, '/b/depth_node')[1]['malformed_total'])
    corrupt = CompressedImage(header=stamp_header(21), format='jpeg',
                              data=b'\xff\xd8\xff\xe0' + bytes(200))
    wait_until(lambda: image_pub.publish(corrupt) or int(
        diagnostics(probe, '/b/depth_node')[1]['malformed_total']) > malformed,
        what='corrupt jpeg counted')


@pytest.mark.slow
def test_onnx_model_runs_with_onnxruntime_and_matches_torch(
        tmp_path: Path, tiny_model_yaml: Path, listener: Probe) -> None:
    """An exported graph as ``model``: the node serves it (onnxruntime CPU provider) and its
    depth equals the torch model's to 1e-3."""
    import torch

    from zoedepth_ros.config import load_config
    from zoedepth_ros.inference import DepthEstimator
    from zoedepth_ros.model import build_model
    from zoedepth_ros.model.config import ModelConfig
    from zoedepth_ros.model.onnx import export_onnx

    torch.manual_seed(5)
    model = build_model(load_config(tiny_model_yaml, ModelConfig))
    graph = export_onnx(model, tmp_path / 'tiny_nk.onnx', 64, 96)
    node = NodeProcess(tmp_path / 'd.log', '/d', {
        'model': str(graph), 'onnx_providers': 'CPUExecutionProvider', 'fov_deg': 60.0})
    try:
        image_pub = listener.publisher(Image, '/d/image')
        listener.subscribe(Image, '/d/depth/image')
        wait_until(lambda: image_pub.get_subscription_count() and listener.node.count_publishers(
            '/d/depth/image'), what='node D matched')
        header = stamp_header(30)
        depth_msg = serve(listener, make_image(RGB, header), None, image_pub, None,
                          '/d/depth/image')
        depth = np.frombuffer(bytes(depth_msg.data), '<f4').reshape(48, 64)
        expected = DepthEstimator(model, device='cpu').predict(RGB).depth_m
        np.testing.assert_allclose(depth, expected, rtol=1e-3)
    finally:
        code = node.stop()
    assert code == 0, node.log()
    assert 'tiny_nk.onnx on cpu' in node.log() and 'RANDOM' not in node.log()


def test_sigterm_during_start_up_exits_cleanly(tmp_path: Path, model_params: dict[str, Any],
                                               listener: Probe) -> None:
    node = NodeProcess(tmp_path / 'c.log', '/c', model_params)
    # The node joins the graph before it loads the model: stop it right then.
    wait_until(lambda: ('depth_node', '/c') in listener.node.get_node_names_and_namespaces(),
               what='node C in the graph')
    assert node.stop(sig=signal.SIGTERM) == 0, node.log()
    assert 'Traceback' not in node.log()
