"""CameraPipeline without ROS: pairing, newest-frame hand-over, counters, sparse samples, states.

Messages are made by the package's one message builder with a plain-object factory (the
fields rclpy and rosbags messages share); the model is the real DepthEstimator around a
NullModel (or a gated one, to hold a frame in the model).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from doubles import NullModel, null_estimator

from zoedepth_ros.anchoring import AnchorOptions, ExtrinsicOptions
from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io import builder, messages
from zoedepth_ros.pipeline.camera import CameraPipeline
from zoedepth_ros.pipeline.options import FrameOptions, StreamOptions
from zoedepth_ros.pipeline.outputs import ALIGNMENT_LABELS

WIDTH, HEIGHT = 32, 24
CAMERA = PinholeCamera.from_fov(WIDTH, HEIGHT, 60.0)


def make(msgtype: str, fields: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(**fields)


def header(stamp_ns: int, frame_id: str = 'cam_optical_frame') -> SimpleNamespace:
    return builder.header(make, stamp_ns, frame_id)


def image(stamp_ns: int, value: int = 100) -> SimpleNamespace:
    rgb = np.full((HEIGHT, WIDTH, 3), value, np.uint8)
    return builder.image(make, messages.image_fields(rgb, 'rgb8'), header(stamp_ns))


def info(stamp_ns: int) -> SimpleNamespace:
    return builder.camera_info(make, messages.camera_info_from_camera(CAMERA),
                               header(stamp_ns))


def sparse_depth(stamp_ns: int, depth_m: float) -> SimpleNamespace:
    values = np.full((HEIGHT, WIDTH), np.nan, np.float32)
    values[::4, ::4] = depth_m
    return builder.image(make, messages.encode_float_image(values), header(stamp_ns))


def cloud(stamp_ns: int, points: np.ndarray, frame_id: str) -> SimpleNamespace:
    from zoedepth_ros.io.messages import pack_xyz

    return builder.point_cloud(make, pack_xyz(points.astype(np.float32)),
                               header(stamp_ns, frame_id))


class Sink:
    """Records what the pipeline publishes; ``listening`` as set."""

    def __init__(self, listening: Callable[[str], bool] = lambda key: True) -> None:
        self.listening = listening
        self.frames: list[tuple[int, str, dict[str, Any]]] = []
        self.event = threading.Event()

    def publish(self, encoded: dict[str, Any], stamp_ns: int, frame_id: str) -> None:
        self.frames.append((stamp_ns, frame_id, encoded))
        self.event.set()

    def wait(self, count: int, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.frames) < count:
            assert time.monotonic() < deadline, f'{len(self.frames)} of {count} frames'
            self.event.wait(0.05)
            self.event.clear()


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def _add(self, level: str, message: str, **kwargs: Any) -> None:
        self.lines.append((level, message))

    def info(self, message: str, **kwargs: Any) -> None:
        self._add('info', message)

    def warning(self, message: str, **kwargs: Any) -> None:
        self._add('warning', message)

    def error(self, message: str, **kwargs: Any) -> None:
        self._add('error', message)

    def debug(self, message: str, **kwargs: Any) -> None:
        pass

    def text(self) -> str:
        return '\n'.join(message for _, message in self.lines)


def pipeline(sink: Sink, estimator: DepthEstimator | None = None, **options: Any
             ) -> tuple[CameraPipeline, Log]:
    frame = options.pop('frame', FrameOptions(min_range=0.0, max_range=1000.0))
    log = Log()
    stream = CameraPipeline(StreamOptions(frame=frame, **options), sink, log)
    stream.load(estimator or null_estimator(depth_m=2.0))
    return stream, log


def test_states_inputs_are_ignored_until_started_and_after_stop() -> None:
    sink = Sink()
    stream = CameraPipeline(StreamOptions(), sink, Log())
    stream.on_image(image(1))
    with pytest.raises(InputError, match='load'):
        stream.start()
    stream.load(null_estimator(depth_m=2.0))
    stream.on_image(image(2))
    assert stream.stats.totals['received'] == 0
    stream.start()
    stream.on_image(image(3))
    sink.wait(1)
    stream.stop()
    stream.on_image(image(4))
    assert stream.stats.totals['received'] == 1 and [f[0] for f in sink.frames] == [3]
    stream.start()  # a stopped stream starts again
    stream.on_image(image(5))
    sink.wait(2)
    stream.unload()
    assert stream.estimator is None and not stream.serving


def test_outputs_carry_the_input_stamp_and_frame_and_the_fallback_is_said() -> None:
    sink = Sink()
    stream, log = pipeline(sink)
    stream.start()
    stream.on_image(image(1_000_000_123))
    sink.wait(1)
    stamp, frame_id, encoded = sink.frames[0]
    assert (stamp, frame_id) == (1_000_000_123, 'cam_optical_frame')
    assert list(encoded) == ['depth', 'info', 'points', 'std', 'domain']
    assert encoded['info'].camera.fx == pytest.approx(CAMERA.fx)  # fov_deg 60 stood in
    assert 'no camera_info yet: intrinsics from fov_deg 60.0' in log.text()
    assert stream.stats.fallback_intrinsics
    stream.on_camera_info(info(2_000_000_000))
    stream.on_image(image(2_000_000_000))
    sink.wait(2)
    assert not stream.stats.fallback_intrinsics
    stream.stop()


def test_newest_frame_wins_while_the_model_is_busy() -> None:
    """The model holds the first frame until released; frames 2..9 arrive meanwhile: 2..8 are
    replaced (dropped) and 9 is served next."""
    release = threading.Event()
    model = NullModel(depth_m=2.0)
    forward = model.forward

    def held(*args: Any, **kwargs: Any) -> Any:
        release.wait(20.0)
        return forward(*args, **kwargs)

    model.forward = held  # type: ignore[method-assign]
    sink = Sink()
    stream, _ = pipeline(sink, DepthEstimator(model, device='cpu', name='held'))
    stream.start()
    stream.on_image(image(1))
    time.sleep(0.3)  # the worker has taken frame 1
    for stamp in range(2, 10):
        stream.on_image(image(stamp))
    release.set()
    sink.wait(2)
    stream.stop()
    assert [frame[0] for frame in sink.frames] == [1, 9]
    totals = stream.stats.totals
    assert (totals['received'], totals['dropped'], totals['published']) == (9, 7, 2)


def test_approx_sync_pairs_the_nearest_camera_info_and_counts_the_rest() -> None:
    sink = Sink()
    stream, log = pipeline(sink, sync_mode='approx', sync_slop_s=0.01,
                           frame=FrameOptions(fov_deg=0.0))
    stream.start()
    ms = 1_000_000
    stream.on_image(image(100 * ms))  # waits: no camera_info at or after it yet
    stream.on_camera_info(info(105 * ms))  # decides it: 5 ms apart
    stream.on_image(image(200 * ms))
    stream.on_camera_info(info(230 * ms))  # 30 ms: outside the slop, dropped
    sink.wait(1)
    time.sleep(0.2)
    stream.stop()
    assert [frame[0] for frame in sink.frames] == [100 * ms]
    assert stream.stats.totals['dropped'] == 1
    assert 'no camera_info with sync_slop_s=0.01 s' in log.text()


def test_bad_input_is_counted_and_the_stream_keeps_serving() -> None:
    sink = Sink()
    stream, log = pipeline(sink)
    stream.start()
    stream.on_image(image(5))
    sink.wait(1)
    stream.on_image(image(4))  # stamps must not go backwards
    broken = image(6)
    broken.encoding = 'bayer_xyz'
    stream.on_image(broken)
    bad_info = info(6)
    bad_info.p = np.zeros(12)
    bad_info.k = np.zeros(9)
    stream.on_camera_info(bad_info)
    stream.on_sparse_depth(image(6))  # rgb8 is not a depth encoding
    stream.on_image(image(7))
    sink.wait(2)
    stream.stop()
    assert stream.stats.totals['malformed'] == 4
    assert 'older than the previous' in log.text() and 'bayer_xyz' in log.text()


def test_idle_streams_skip_the_model_unless_always_run() -> None:
    nobody = Sink(listening=lambda key: False)
    stream, _ = pipeline(nobody)
    stream.start()
    stream.on_image(image(1))
    stream.stop()
    assert stream.stats.totals['idle_skipped'] == 1 and not nobody.frames
    always, _ = pipeline(nobody, always_run=True)
    always.start()
    always.on_image(image(2))
    nobody.wait(1)
    always.stop()
    assert list(nobody.frames[0][2]) == ['depth', 'info', 'domain']  # nothing optional


def test_sparse_depth_and_points_anchor_the_frames() -> None:
    """Samples at 3 m fix a constant 2 m prediction (scale 1.5); a cloud in another frame is
    refused until a fixed extrinsic is configured at run time, then used."""
    sink = Sink()
    frame = FrameOptions(min_range=0.0, max_range=1000.0,
                         anchor=AnchorOptions(time_constant_s=0.0, hold_s=0.0))
    stream, log = pipeline(sink, frame=frame)
    stream.start()
    second = 1_000_000_000
    stream.on_sparse_depth(sparse_depth(second, 3.0))
    stream.on_image(image(second))
    sink.wait(1)
    fit = dict(zip(ALIGNMENT_LABELS, sink.frames[0][2]['alignment'].values))
    assert fit['scale'] == pytest.approx(1.5) and fit['applied'] == 1.0
    np.testing.assert_allclose(np.frombuffer(sink.frames[0][2]['depth'].data, np.float32),
                               3.0, rtol=1e-5)
    # a cloud 4 m ahead in a frame 1 m behind the camera: in its own frame z = 5 m
    points = np.stack(np.meshgrid(np.linspace(-1, 1, 8), np.linspace(-0.7, 0.7, 6),
                                  [5.0]), -1).reshape(-1, 3)
    stream.on_sparse_points(cloud(2 * second, points, 'lidar'))
    stream.on_image(image(2 * second))
    sink.wait(2)
    assert "sparse_points are in frame 'lidar'" in log.text()
    assert sink.frames[1][2]['alignment'].values[3] == 0.0  # no samples used
    moved = FrameOptions(min_range=0.0, max_range=1000.0, anchor=AnchorOptions(
        time_constant_s=0.0, hold_s=0.0, extrinsic=ExtrinsicOptions(True, z=-1.0)))
    stream.configure(StreamOptions(frame=moved))
    stream.on_sparse_points(cloud(3 * second, points, 'lidar'))
    stream.on_image(image(3 * second))
    sink.wait(3)
    stream.stop()
    fit = dict(zip(ALIGNMENT_LABELS, sink.frames[2][2]['alignment'].values))
    assert fit['scale'] == pytest.approx(2.0) and fit['samples'] > 10  # 4 m / 2 m


def test_sparse_head_selection_needs_every_head() -> None:
    class RoutedOnly(DepthEstimator):
        has_all_heads = False  # as an ONNX graph

    estimator = RoutedOnly(NullModel(), device='cpu', name='graph')
    frame = FrameOptions(anchor=AnchorOptions(head_selection='sparse'))
    stream = CameraPipeline(StreamOptions(frame=frame), Sink(), Log())
    with pytest.raises(InputError, match='head_selection sparse needs both heads'):
        stream.load(estimator)
