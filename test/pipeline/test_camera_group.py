"""Several cameras, one model, without ROS: batches of each camera's newest frame, answers that
belong to their own camera, fairness across camera rates, one bad frame costs only its own.

The model is the bundled demo model where outputs must follow the input, and a NullModel that
records each batch where timing matters.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import numpy as np
import pytest
import torch
from doubles import NullModel
from test_camera import CAMERA, HEIGHT, WIDTH, Log, Sink, header, image, make

from zoedepth_ros.errors import InputError
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io import builder, messages
from zoedepth_ros.pipeline.camera import CameraGroup, CameraPipeline
from zoedepth_ros.pipeline.options import FrameOptions, StreamOptions
from zoedepth_ros.pipeline.outputs import FrameRequest
from zoedepth_ros.pipeline.predict import FrameJob, predict_frame, predict_frames


def demo_estimator() -> DepthEstimator:
    """The bundled demo model: trained weights, so different scenes give different depth."""
    return DepthEstimator.from_pretrained('zoedepth_demo_nk', device='cpu')


def scene(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (HEIGHT // 4, WIDTH // 4, 3), dtype=np.uint8)
    return np.repeat(np.repeat(base, 4, 0), 4, 1)


def rgb_image(stamp_ns: int, rgb: np.ndarray, frame_id: str) -> Any:
    return builder.image(make, messages.image_fields(rgb, 'rgb8'), header(stamp_ns, frame_id))


def test_a_batch_gives_each_frame_what_it_gets_alone() -> None:
    """Three cameras with different scenes, ranges and requests in one batch: each frame's
    outputs equal those of the frame through the model on its own."""
    estimator = demo_estimator()
    info = messages.camera_info_from_camera(CAMERA)
    jobs = [FrameJob(scene(1), info, FrameOptions(min_range=0.0, max_range=1000.0),
                     FrameRequest(cloud=True)),
            FrameJob(scene(2), info, FrameOptions(min_range=0.5, max_range=3.0),
                     FrameRequest(std=False, cloud=False)),
            FrameJob(scene(3), info, FrameOptions(max_rel_std=0.5))]
    batched = predict_frames(estimator, jobs)
    alone = [predict_frame(estimator, j.rgb, j.camera_info, j.options, j.request) for j in jobs]
    assert len(batched) == 3
    for one, other in zip(batched, alone):
        np.testing.assert_allclose(one.depth_m, other.depth_m, rtol=1e-5, atol=1e-6,
                                   equal_nan=True)
        assert (one.std_m is None) == (other.std_m is None) and one.domain == other.domain
        assert (one.cloud is None) == (other.cloud is None)
    assert batched[1].std_m is None and batched[1].cloud is None
    depths = [np.nanmean(out.depth_m) for out in batched]
    assert len({round(float(d), 4) for d in depths}) == 3  # three scenes, three answers
    assert np.nanmax(batched[1].depth_m) <= 3.0  # its own range gate, not the others'


def test_frames_of_two_sizes_make_two_batches() -> None:
    estimator = demo_estimator()
    big = np.ascontiguousarray(np.repeat(np.repeat(scene(4), 2, 0), 2, 1))
    small_info = messages.camera_info_from_camera(CAMERA)
    big_info = messages.scale_camera_info(small_info, 2 * WIDTH, 2 * HEIGHT)
    outputs = predict_frames(estimator, [FrameJob(scene(4), small_info),
                                         FrameJob(big, big_info), FrameJob(scene(5), small_info)])
    assert [out.depth_m.shape for out in outputs] == [(HEIGHT, WIDTH), (2 * HEIGHT, 2 * WIDTH),
                                                    (HEIGHT, WIDTH)]


class Recording(NullModel):
    """NullModel that takes ``delay_s`` per call and records each call's batch size and the
    most calls in flight at once."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(depth_m=2.0)
        self.delay_s = delay_s
        self.batches: list[int] = []
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def forward(self, image: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.batches.append(int(image.shape[0]))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay_s)
        with self._lock:
            self.in_flight -= 1
            return super().forward(image, *args, **kwargs)


def group_of(names: list[str], estimator: DepthEstimator, sinks: dict[str, Sink],
             workers: int = 1, **stream: Any) -> tuple[CameraGroup, dict[str, CameraPipeline]]:
    log = Log()
    pipelines = {name: CameraPipeline(StreamOptions(**stream), sinks[name], log,
                                      (f'{name}/image', f'{name}/camera_info'))
                 for name in names}
    group = CameraGroup(list(pipelines.values()), log, workers)
    group.load(estimator)
    return group, pipelines


def test_each_camera_gets_its_own_stamp_frame_and_scene() -> None:
    estimator = demo_estimator()
    names = ['front', 'rear', 'left']
    sinks = {name: Sink() for name in names}
    group, pipelines = group_of(names, estimator, sinks)
    group.start()
    scenes = {name: scene(10 + index) for index, name in enumerate(names)}
    for index, name in enumerate(names):  # all three wait together: one batch
        pipelines[name].on_image(rgb_image(1_000 + index, scenes[name], f'{name}_optical_frame'))
    for name in names:
        sinks[name].wait(1)
    group.stop()
    info = messages.camera_info_from_camera(CAMERA)
    for index, name in enumerate(names):
        stamp, frame_id, encoded = sinks[name].frames[0]
        assert (stamp, frame_id) == (1_000 + index, f'{name}_optical_frame')
        own = predict_frame(estimator, scenes[name], info)
        published = messages.depth_image_from_msg(builder.image(make, encoded['depth'],
                                                                header(stamp)))
        np.testing.assert_allclose(published, own.depth_m, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_cameras_at_30_10_and_1_hz_are_all_served_and_none_waits_more_than_a_batch() -> None:
    """A model slower than the fastest camera: every batch takes each camera's newest frame;
    the 1 Hz camera is answered every time, the fast ones drop what a newer frame replaced."""
    model = Recording(delay_s=0.08)
    estimator = DepthEstimator(model, device='cpu', name='slow')
    rates = {'fast': 30.0, 'mid': 10.0, 'slow': 1.0}
    sinks = {name: Sink() for name in rates}
    group, pipelines = group_of(list(rates), estimator, sinks)
    sent: dict[str, list[tuple[float, int]]] = {name: [] for name in rates}
    stale: list[tuple[str, int, int]] = []

    def watched(name: str, take: Any) -> Any:
        def take_newest() -> Any:  # at the start of a batch: the newest handed-over frame
            newest = sent[name][-1][1] if sent[name] else None
            frame = take()
            if frame is not None and newest is not None and frame.stamp_ns < newest:
                stale.append((name, frame.stamp_ns, newest))
            return frame
        return take_newest

    for name, stream in pipelines.items():
        stream.take = watched(name, stream.take)  # type: ignore[method-assign]
    group.start()
    stop = threading.Event()

    def camera(name: str, rate: float) -> None:
        count = 0
        start = time.monotonic()
        while not stop.is_set():
            stamp = 1_000_000_000 + count
            pipelines[name].on_image(image(stamp))
            sent[name].append((time.monotonic(), stamp))  # handed over
            count += 1
            stop.wait(max(0.0, start + count / rate - time.monotonic()))

    threads = [threading.Thread(target=camera, args=item) for item in rates.items()]
    for thread in threads:
        thread.start()
    time.sleep(3.2)
    stop.set()
    for thread in threads:
        thread.join()
    time.sleep(0.3)
    group.stop()
    served = {name: [frame[0] for frame in sinks[name].frames] for name in rates}
    assert stale == []  # no batch took a frame older than its camera's newest
    assert len(sent['slow']) >= 3 and served['slow'] == [s for _, s in sent['slow']]
    for name in ('fast', 'mid'):
        stats = pipelines[name].stats.totals
        assert stats['published'] >= 8, (name, stats)
        assert stats['published'] + stats['dropped'] == stats['received'] == len(sent[name])
        assert served[name] == sorted(served[name])
    assert pipelines['fast'].stats.totals['dropped'] > 20  # 30 Hz into a ~10 Hz model
    # one frame per camera at most, several cameras per batch, every served frame in one
    assert 2 <= max(model.batches) <= 3
    assert sum(model.batches) == sum(map(len, served.values()))


def test_one_bad_frame_costs_only_its_own_camera() -> None:
    """A frame whose camera_info describes another image size fails alone; the other camera
    of the batch is served."""
    estimator = demo_estimator()
    sinks = {'good': Sink(), 'bad': Sink()}
    group, pipelines = group_of(['good', 'bad'], estimator, sinks)
    wrong = builder.camera_info(make, messages.camera_info_from_camera(
        dataclasses.replace(CAMERA, width=2 * WIDTH, height=HEIGHT)), header(1))
    pipelines['bad'].on_camera_info(wrong)
    group.start()
    pipelines['bad'].on_image(image(5))
    pipelines['good'].on_image(image(5))
    sinks['good'].wait(1)
    time.sleep(0.3)
    group.stop()
    assert sinks['bad'].frames == [] and pipelines['bad'].stats.totals['malformed'] == 1
    assert pipelines['good'].stats.totals['published'] == 1


def test_a_group_needs_cameras_and_a_model() -> None:
    with pytest.raises(InputError, match='at least one camera'):
        CameraGroup([], Log())
    group, _ = group_of(['a'], demo_estimator(), {'a': Sink()})
    group.unload()
    with pytest.raises(InputError, match='no model'):
        group.start()


def test_two_workers_share_the_cameras_each_camera_in_order() -> None:
    """Four cameras, two model threads: each batch holds at most two cameras, two batches run
    at once, and every camera's outputs keep their stamps' order (one worker per camera at a
    time)."""
    model = Recording(delay_s=0.1)
    estimator = DepthEstimator(model, device='cpu', name='slow')
    names = ['a', 'b', 'c', 'd']
    sinks = {name: Sink() for name in names}
    group, pipelines = group_of(names, estimator, sinks, workers=2)
    group.start()
    for tick in range(15):
        for name in names:
            pipelines[name].on_image(image(1_000 + tick))
        time.sleep(0.05)
    for name in names:
        sinks[name].wait(3)
    time.sleep(0.3)
    group.stop()
    assert max(model.batches) <= 2 and model.most_in_flight == 2
    for name in names:
        stamps = [frame[0] for frame in sinks[name].frames]
        assert stamps == sorted(set(stamps)) and len(stamps) >= 3, (name, stamps)
        totals = pipelines[name].stats.totals
        assert totals['published'] + totals['dropped'] == totals['received'] == 15
