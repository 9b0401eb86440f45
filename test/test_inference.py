"""DepthEstimator on tiny models: shapes, units, presets, routing, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoedepth_ros.config import ModelConfig
from zoedepth_ros.errors import ConfigError, InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.inference import DepthEstimator, FrameOptions, original_padding
from zoedepth_ros.model import get_config
from zoedepth_ros.pointcloud import (
    CloudOptions,
    cloud_to_array,
    gate_depth,
    pack_point_cloud_reference,
)


def small(preset: str) -> ModelConfig:
    """A tiny preset with a small network size so CPU tests stay fast."""
    cfg = get_config(preset)
    return type(cfg)(**{**cfg.__dict__, 'img_size': (64, 96)})


@pytest.fixture(scope='module')
def estimator() -> DepthEstimator:
    return DepthEstimator.from_config(small('zoedepth_tiny_nk'), seed=1, device='cpu')


def image(height: int = 48, width: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_predict_returns_metric_depth_at_input_resolution(estimator) -> None:
    result = estimator.predict(image(48, 80))
    assert result.depth_m.shape == (48, 80) and result.depth_m.dtype == np.float32
    assert result.std_m.shape == (48, 80) and np.all(result.std_m >= 0)
    assert np.all(np.isfinite(result.depth_m)) and np.all(result.depth_m > 0)
    assert result.domain in ('indoor', 'outdoor')
    assert pytest.approx(sum(result.domain_probs.values()), abs=1e-5) == 1.0
    assert result.domain == max(result.domain_probs, key=result.domain_probs.get)
    assert set(result.timings_ms) == {'preprocess', 'model', 'postprocess'}


def test_eval_preset_stretches_to_training_size(estimator) -> None:
    rgb = torch.rand(1, 3, 40, 200)
    with torch.inference_mode():
        out = estimator.model(rgb, keep_aspect=False)
        kept = estimator.model(rgb, keep_aspect=True)
    assert out.network_size == (64, 96)
    assert kept.network_size == (32, 96)


def test_batch_equals_single_predictions(estimator) -> None:
    images = [image(seed=i) for i in range(3)]
    batch = estimator.predict_batch(images)
    for single_image, result in zip(images, batch):
        single = estimator.predict(single_image)
        np.testing.assert_allclose(result.depth_m, single.depth_m, rtol=1e-4, atol=1e-5)
        assert result.domain == single.domain


def test_forced_domains_use_their_heads() -> None:
    cfg = small('zoedepth_tiny_nk')
    indoor = DepthEstimator.from_config(cfg, seed=1, device='cpu', domain='indoor')
    outdoor = DepthEstimator.from_config(cfg, seed=1, device='cpu', domain='outdoor')
    rgb = image()
    a, b = indoor.predict(rgb), outdoor.predict(rgb)
    assert (a.domain, b.domain) == ('indoor', 'outdoor')
    assert not np.allclose(a.depth_m, b.depth_m)
    with pytest.raises(ConfigError, match='not available'):
        DepthEstimator.from_config(small('zoedepth_tiny_n'), device='cpu', domain='outdoor')


def test_flip_averaging_is_mirror_symmetric() -> None:
    flipping = DepthEstimator.from_config(small('zoedepth_tiny_n'), seed=2, device='cpu',
                                          flip=True)
    rgb = image(48, 64)
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    np.testing.assert_allclose(flipping.predict(rgb).depth_m,
                               flipping.predict(mirrored).depth_m[:, ::-1], rtol=1e-4, atol=1e-5)


def test_original_padding_values() -> None:
    """§7: pad = int(3 * sqrt(side / 2))."""
    assert original_padding(480, 640) == (46, 53)
    assert original_padding(720, 1280) == (56, 75)
    assert original_padding(384, 512) == (41, 48)
    assert original_padding(256, 320) == (33, 37)


def test_bad_inputs_and_options(estimator) -> None:
    with pytest.raises(InputError, match='HxWx3 uint8'):
        estimator.predict(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(InputError, match='HxWx3 uint8'):
        estimator.predict(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ConfigError, match='needs a CUDA device'):
        DepthEstimator(estimator.model, device='cpu', precision='fp16')
    with pytest.raises(ConfigError, match='preprocess'):
        DepthEstimator(estimator.model, device='cpu', preprocess='crop')
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match='CUDA is not available'):
            DepthEstimator(estimator.model, device='cuda')


def test_predict_frame_gates_and_packs_like_the_host_functions(estimator) -> None:
    rgb = image(48, 80, seed=4)
    camera = PinholeCamera.from_fov(80, 48, 70.0)
    plain = estimator.predict(rgb)
    # Cut inside the predicted range so both gates remove pixels.
    low, high = np.quantile(plain.depth_m, [0.2, 0.9])
    rel = float(np.median(plain.std_m / plain.depth_m))
    cloud = CloudOptions(stride=3, organized=False, color=True)
    options = FrameOptions(float(low), float(high), rel, std=True, cloud=cloud)
    frame = estimator.predict_frame(rgb, options, camera)
    expected = gate_depth(plain.depth_m, float(low), float(high), plain.std_m, rel)
    np.testing.assert_array_equal(frame.depth_m, expected)
    assert 0.3 < np.isnan(frame.depth_m).mean() < 0.9
    np.testing.assert_array_equal(frame.std_m, plain.std_m)
    reference = pack_point_cloud_reference(expected, camera, cloud, rgb=rgb)
    assert (frame.cloud.width, frame.cloud.point_step, frame.cloud.is_dense) == (
        reference.width, 16, True) and reference.width > 0
    np.testing.assert_allclose(cloud_to_array(frame.cloud)['z'],
                               cloud_to_array(reference)['z'])
    assert frame.cloud.data[12::16] == reference.data[12::16]  # blue bytes of every point
    assert (frame.domain, frame.domain_probs) == (plain.domain, plain.domain_probs)
    bare = estimator.predict_frame(rgb, FrameOptions(std=False))
    assert bare.std_m is None and bare.cloud is None
    np.testing.assert_array_equal(bare.depth_m, plain.depth_m)
    with pytest.raises(InputError, match='intrinsics'):
        estimator.predict_frame(rgb, options)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
@pytest.mark.parametrize('precision', ['fp16', 'bf16'])
def test_half_precision_on_cuda_stays_close(precision: str) -> None:
    cfg = small('zoedepth_tiny_nk')
    reference = DepthEstimator.from_config(cfg, seed=3, device='cuda')
    half = DepthEstimator.from_config(cfg, seed=3, device='cuda', precision=precision)
    rgb = image(96, 128)
    full, low = reference.predict(rgb), half.predict(rgb)
    relative = np.abs(full.depth_m - low.depth_m) / full.depth_m
    assert np.median(relative) < 0.02


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_predict_frame_on_cuda_matches_the_cpu() -> None:
    cfg = small('zoedepth_tiny_nk')
    rgb, camera = image(96, 128, seed=5), PinholeCamera.from_fov(128, 96, 60.0)
    options = FrameOptions(0.0, 80.0, cloud=CloudOptions(stride=2))
    on_cpu = DepthEstimator.from_config(cfg, seed=3, device='cpu').predict_frame(
        rgb, options, camera)
    on_gpu = DepthEstimator.from_config(cfg, seed=3, device='cuda').predict_frame(
        rgb, options, camera)
    np.testing.assert_allclose(on_gpu.depth_m, on_cpu.depth_m, rtol=1e-3)
    gpu_points, cpu_points = cloud_to_array(on_gpu.cloud), cloud_to_array(on_cpu.cloud)
    np.testing.assert_allclose(gpu_points['x'], cpu_points['x'], rtol=1e-3, atol=1e-5)
    assert on_gpu.cloud.data[12::16] == on_cpu.cloud.data[12::16]
