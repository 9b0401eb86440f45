"""The per-frame path shared by the node and bag replay: gate, cloud, CameraInfo, encoding,
anchoring per head and sparse-guided head selection."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from oracles import cloud_to_array, gated_cloud_reference

from zoedepth_ros.anchoring import Anchor, AnchorOptions, HeadAligners, SparseSamples
from zoedepth_ros.errors import ConfigError, InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io import messages
from zoedepth_ros.model.config import get_config
from zoedepth_ros.pipeline.options import FocalOptions, FrameOptions
from zoedepth_ros.pipeline.outputs import OUTPUTS, FrameRequest
from zoedepth_ros.pipeline.predict import frame_camera_info, gate_depth, predict_frame
from zoedepth_ros.pointcloud import CloudOptions

EVERYTHING = FrameRequest(std=True, cloud=True, preview=True)


def tiny(device: str = 'cpu') -> DepthEstimator:
    cfg = get_config('zoedepth_tiny_nk')
    cfg = type(cfg)(**{**cfg.__dict__, 'img_size': (64, 96)})
    return DepthEstimator.from_pretrained(cfg, random_weights=True, device=device)


@pytest.fixture(scope='module')
def estimator() -> DepthEstimator:
    return tiny()


def image(height: int = 48, width: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_gate_depth_range_and_relative_std() -> None:
    depth = torch.tensor([0.05, 1.0, 5.0, 20.0, math.nan, 2.0, 0.0])
    std = torch.tensor([0.0, 0.05, 2.0, 0.0, 0.0, math.nan, 0.0])
    gated = gate_depth(depth, 0.1, 10.0, std, max_rel_std=0.1)
    assert torch.isnan(gated).tolist() == [True, False, True, True, True, True, True]
    assert gate_depth(depth, 0.1, 10.0)[[1, 2, 5]].tolist() == [1.0, 5.0, 2.0]
    assert torch.isnan(gate_depth(depth)[[4, 6]]).all()  # NaN and 0 are never valid
    assert not torch.isnan(depth[0])  # input untouched
    with pytest.raises(InputError, match='std map'):
        gate_depth(depth, max_rel_std=0.1)


def test_frame_camera_info_scales_synthesises_or_refuses() -> None:
    camera = PinholeCamera(400.0, 410.0, 300.0, 200.0, 640, 480)
    info = messages.camera_info_from_camera(camera)
    assert frame_camera_info(info, 640, 480) == info
    sizeless = messages.CameraInfoFields(0, 0, info.distortion_model, info.d, info.k, info.r,
                                         info.p)
    assert frame_camera_info(sizeless, 64, 48).camera == PinholeCamera(400.0, 410.0, 300.0,
                                                                       200.0, 64, 48)
    assert frame_camera_info(None, 80, 60, fov_deg=90.0).camera.fx == pytest.approx(40.0)
    assert frame_camera_info(None, 80, 60) is None
    with pytest.raises(InputError, match='CameraInfo is for 640x480'):
        frame_camera_info(info, 320, 200)
    half = frame_camera_info(info, 320, 240)  # same aspect ratio: scaled like image_proc
    assert half.camera == PinholeCamera(200.0, 205.0, 150.0, 100.0, 320, 240)


def test_predict_frame_gates_and_packs_like_the_oracle(estimator) -> None:
    rgb = image(48, 80, seed=4)
    info = messages.camera_info_from_camera(PinholeCamera.from_fov(80, 48, 70.0))
    plain = estimator.predict(rgb)
    # Cut inside the predicted range so both gates remove pixels.
    low, high = (float(v) for v in np.quantile(plain.depth_m, [0.2, 0.9]))
    rel = float(np.median(plain.std_m / plain.depth_m))
    cloud = CloudOptions(stride=3, organized=False, color=True)
    options = FrameOptions(min_range=low, max_range=high, max_rel_std=rel, cloud=cloud)
    frame = predict_frame(estimator, rgb, info, options, FrameRequest(std=True, cloud=True))
    expected = gate_depth(torch.from_numpy(plain.depth_m), low, high,
                          torch.from_numpy(plain.std_m), rel).numpy()
    np.testing.assert_array_equal(frame.depth_m, expected)
    assert 0.3 < np.isnan(frame.depth_m).mean() < 0.9
    np.testing.assert_array_equal(frame.std_m, plain.std_m)
    reference = gated_cloud_reference(plain.depth_m, info.camera, cloud, rgb=rgb,
                                      std_m=plain.std_m, min_range=low, max_range=high,
                                      max_rel_std=rel)
    assert (frame.cloud.width, frame.cloud.point_step, frame.cloud.is_dense) == (
        reference.width, 16, True) and reference.width > 0
    np.testing.assert_allclose(cloud_to_array(frame.cloud)['z'],
                               cloud_to_array(reference)['z'])
    assert frame.cloud.data[12::16] == reference.data[12::16]  # blue bytes of every point
    assert (frame.domain, frame.domain_probs) == (plain.domain, plain.domain_probs)
    bare = predict_frame(estimator, rgb, info, FrameOptions(min_range=0.0, max_range=1000.0),
                         FrameRequest(std=False))
    assert bare.std_m is None and bare.cloud is None and bare.camera_info == info
    np.testing.assert_array_equal(bare.depth_m, plain.depth_m)


def test_encoded_outputs_follow_the_options(estimator) -> None:
    rgb = image(48, 80, seed=2)
    info = messages.camera_info_from_camera(PinholeCamera.from_fov(80, 48, 60.0))
    options = FrameOptions(min_range=0.1, max_range=5.0, cloud=CloudOptions(stride=2),
                           output_encoding='16UC1', publish_preview=True)
    request = FrameRequest.of(options)
    assert request == EVERYTHING
    frame = predict_frame(estimator, rgb, info, options, request)
    encoded = frame.encoded(options)
    assert list(encoded) == [o.key for o in OUTPUTS if o.key != 'alignment']  # table order
    assert encoded['depth'].encoding == '16UC1' and encoded['std'].encoding == '32FC1'
    assert encoded['preview'].encoding == 'bgr8' and encoded['info'] is info
    assert encoded['domain'] == frame.domain and encoded['points'].width == 40
    # switched on but nobody listens, or listening but switched off: not computed
    minimal = FrameRequest.of(options, listening=lambda key: key == 'depth')
    off = FrameRequest.of(FrameOptions(publish_std=False, publish_preview=False,
                                       cloud=CloudOptions(enabled=False)))
    assert minimal == off == FrameRequest(std=False)
    assert set(predict_frame(estimator, rgb, info, options, minimal).encoded(options)) == {
        'depth', 'info', 'domain'}
    with pytest.raises(ConfigError, match='min_range 5.0 must be smaller than max_range 1.0'):
        FrameOptions(min_range=5.0, max_range=1.0)


def test_the_midas_small_backbone_serves_the_per_frame_path() -> None:
    small = DepthEstimator.from_pretrained('zoedepth_small_tiny_nk', random_weights=True,
                                           device='cpu')
    rgb = image(120, 160, seed=6)
    info = messages.camera_info_from_camera(PinholeCamera.from_fov(160, 120, 62.0))
    options = FrameOptions(min_range=0.0, max_range=1000.0, cloud=CloudOptions(stride=4))
    out = predict_frame(small, rgb, info, options, EVERYTHING)
    assert out.depth_m.shape == (120, 160) and np.isfinite(out.depth_m).all()
    assert out.std_m.shape == (120, 160) and (out.std_m >= 0).all()
    assert out.domain in ('indoor', 'outdoor') and out.cloud.width == 40


def test_anchor_and_focal_correction_rescale_depth_std_and_cloud(estimator) -> None:
    rgb = image(48, 80, seed=3)
    camera = PinholeCamera.from_fov(80, 48, 90.0)  # fx / width = 0.5
    info = messages.camera_info_from_camera(camera)
    options = FrameOptions(min_range=0.0, max_range=1000.0, cloud=CloudOptions(stride=1))
    request = FrameRequest(std=True, cloud=True)
    plain = predict_frame(estimator, rgb, info, options, request)
    # focal-length correction: depth x (0.5 / reference) of the routed head
    focal = dataclasses.replace(options, focal=FocalOptions(True, 0.8, 0.25))
    corrected = predict_frame(estimator, rgb, info, focal, request)
    factor = 0.5 / (0.8 if plain.domain == 'indoor' else 0.25)
    assert corrected.focal_factor == pytest.approx(factor)
    np.testing.assert_allclose(corrected.depth_m, factor * plain.depth_m, rtol=1e-5)
    np.testing.assert_allclose(corrected.std_m, factor * plain.std_m, rtol=1e-5)
    # anchoring: samples at 1.5x the depth on a grid -> everything 1.5x, cloud included
    sparse = np.full_like(plain.depth_m, np.nan)
    sparse[::5, ::5] = 1.5 * plain.depth_m[::5, ::5]
    anchor = Anchor(HeadAligners(), SparseSamples.from_depth_image(sparse), 1.0)
    keep = dataclasses.replace(request, keep_unaligned=True)
    aligned = predict_frame(estimator, rgb, info, options, keep, anchor)
    assert aligned.alignment.status == 'reset' and aligned.alignment.applied
    assert aligned.alignment.scale == pytest.approx(1.5, rel=1e-5)
    assert aligned.alignment.samples == int(np.isfinite(sparse).sum())
    np.testing.assert_allclose(aligned.depth_m, 1.5 * plain.depth_m, rtol=1e-5)
    np.testing.assert_allclose(aligned.std_m, 1.5 * plain.std_m, rtol=1e-5)
    np.testing.assert_array_equal(aligned.unaligned_depth_m, plain.depth_m)
    mine, theirs = cloud_to_array(aligned.cloud), cloud_to_array(plain.cloud)
    for axis in 'xyz':
        np.testing.assert_allclose(mine[axis], 1.5 * theirs[axis], rtol=1e-5, equal_nan=True)
    encoded = aligned.encoded(options)
    assert encoded['alignment'].values[0] == pytest.approx(1.5, rel=1e-5)
    # a later frame without samples holds the scale (within hold_s), then lets go
    held = predict_frame(estimator, rgb, info, options, request,
                         Anchor(anchor.aligners, None, 1.5))
    assert held.alignment.status == 'held'
    np.testing.assert_allclose(held.depth_m, 1.5 * plain.depth_m, rtol=1e-5)
    free = predict_frame(estimator, rgb, info, options, request,
                         Anchor(anchor.aligners, None, 5.0))
    assert free.alignment.status == 'no samples' and not free.alignment.applied
    np.testing.assert_array_equal(free.depth_m, plain.depth_m)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_predict_frame_on_cuda_matches_the_cpu() -> None:
    rgb = image(96, 128, seed=5)
    info = messages.camera_info_from_camera(PinholeCamera.from_fov(128, 96, 60.0))
    options = FrameOptions(min_range=0.0, max_range=80.0, cloud=CloudOptions(stride=2))
    on_cpu = predict_frame(tiny('cpu'), rgb, info, options, EVERYTHING)
    on_gpu = predict_frame(tiny('cuda'), rgb, info, options, EVERYTHING)
    np.testing.assert_allclose(on_gpu.depth_m, on_cpu.depth_m, rtol=1e-3)
    gpu_points, cpu_points = cloud_to_array(on_gpu.cloud), cloud_to_array(on_cpu.cloud)
    np.testing.assert_allclose(gpu_points['x'], cpu_points['x'], rtol=1e-3, atol=1e-5)
    assert on_gpu.cloud.data[12::16] == on_cpu.cloud.data[12::16]


def test_a_frame_never_gets_the_other_heads_scale() -> None:
    """Frames routed to alternating heads, anchored to samples at 3 m: the indoor head predicts
    2 m (scale 1.5), the outdoor head 6 m (scale 0.5). Each frame is corrected by its own
    head's fit, right at the first switch (one shared state held 1.5 there as a 'jump')."""
    from doubles import null_estimator

    heads = {'indoor': null_estimator(depth_m=2.0, domain_index=0),
             'outdoor': null_estimator(depth_m=6.0, domain_index=1)}
    rgb = np.zeros((24, 32, 3), np.uint8)
    info = frame_camera_info(None, 32, 24, fov_deg=60.0)
    samples = SparseSamples.from_depth_image(np.full((24, 32), 3.0, np.float32))
    aligners = HeadAligners()
    for index, domain in enumerate(['indoor', 'indoor', 'outdoor', 'indoor', 'outdoor']):
        out = predict_frame(heads[domain], rgb, info, FrameOptions(), FrameRequest(std=False),
                            Anchor(aligners, samples, 0.1 * index))
        assert out.domain == domain and out.alignment.applied
        np.testing.assert_allclose(out.depth_m, 3.0, rtol=1e-5)
    assert aligners.head('indoor').current.scale == pytest.approx(1.5, rel=1e-5)
    assert aligners.head('outdoor').current.scale == pytest.approx(0.5, rel=1e-5)


def test_sparse_guided_selection_serves_the_head_that_explains_the_samples() -> None:
    """The router sends the frame to the outdoor head; the samples follow the indoor head's
    structure at 1.3x its depth. With head_selection 'sparse' the indoor head serves the frame
    (corrected by 1.3 exactly), the router's choice is kept in routed_domain, and only the
    indoor head's smoothing state moves. With 'router' the outdoor head serves it."""
    from doubles import null_estimator

    estimator = null_estimator(depth_m=None, domain_index=1)  # a ramp; router: outdoor
    rgb = np.zeros((24, 32, 3), np.uint8)
    info = frame_camera_info(None, 32, 24, fov_deg=60.0)
    indoor = estimator.predict_tensor(torch.zeros(1, 3, 24, 32), all_heads=True).heads
    assert set(indoor) == {'indoor', 'outdoor'}
    truth = 1.3 * indoor['indoor'][0][0, 0].numpy()
    grid = np.full_like(truth, np.nan)
    grid[::3, ::3] = truth[::3, ::3]
    samples = SparseSamples.from_depth_image(grid)
    sparse = FrameOptions(min_range=0.0, max_range=1000.0,
                          anchor=AnchorOptions(head_selection='sparse'))
    aligners = HeadAligners(sparse.anchor)
    out = predict_frame(estimator, rgb, info, sparse, FrameRequest(std=False),
                        Anchor(aligners, samples, 0.0))
    assert (out.domain, out.routed_domain) == ('indoor', 'outdoor')
    assert out.alignment.scale == pytest.approx(1.3, rel=1e-4)
    np.testing.assert_allclose(out.depth_m, truth, rtol=1e-4)
    assert set(aligners.heads) == {'indoor'}
    routed = dataclasses.replace(sparse, anchor=AnchorOptions())
    plain = predict_frame(estimator, rgb, info, routed, FrameRequest(std=False),
                          Anchor(HeadAligners(routed.anchor), samples, 0.0))
    assert (plain.domain, plain.routed_domain) == ('outdoor', 'outdoor')
    assert plain.alignment.residual > 10 * max(out.alignment.residual, 1e-6)
    # without samples there is nothing to select by: the router's head serves the frame
    blind = predict_frame(estimator, rgb, info, sparse, FrameRequest(std=False),
                          Anchor(HeadAligners(sparse.anchor), None, 0.0))
    assert (blind.domain, blind.routed_domain) == ('outdoor', 'outdoor')
