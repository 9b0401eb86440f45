"""DepthEstimator on tiny models: shapes, units, presets, routing, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoedepth_ros.errors import ConfigError, InputError
from zoedepth_ros.inference import DepthEstimator, original_padding
from zoedepth_ros.model.config import ModelConfig, get_config


def small(preset: str) -> ModelConfig:
    """A tiny preset with a small network size so CPU tests stay fast."""
    cfg = get_config(preset)
    return type(cfg)(**{**cfg.__dict__, 'img_size': (64, 96)})


def tiny(preset: str = 'zoedepth_tiny_nk', **options: object) -> DepthEstimator:
    """A random-weight estimator of a tiny preset (CPU unless ``device`` is given)."""
    options.setdefault('device', 'cpu')
    return DepthEstimator.from_pretrained(small(preset), random_weights=True, **options)


@pytest.fixture(scope='module')
def estimator() -> DepthEstimator:
    return tiny()


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
    indoor = tiny(domain='indoor')
    outdoor = tiny(domain='outdoor')
    rgb = image()
    a, b = indoor.predict(rgb), outdoor.predict(rgb)
    assert (a.domain, b.domain) == ('indoor', 'outdoor')
    assert not np.allclose(a.depth_m, b.depth_m)
    with pytest.raises(ConfigError, match='not available'):
        tiny('zoedepth_tiny_n', domain='outdoor')


def test_flip_averaging_is_mirror_symmetric() -> None:
    flipping = tiny('zoedepth_tiny_n', flip=True)
    rgb = image(48, 64)
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    np.testing.assert_allclose(flipping.predict(rgb).depth_m,
                               flipping.predict(mirrored).depth_m[:, ::-1], rtol=1e-4, atol=1e-5)


def test_original_padding_values() -> None:
    """The original infer pads by int(3 * sqrt(side / 2))."""
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


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
@pytest.mark.parametrize('precision', ['fp16', 'bf16'])
def test_half_precision_on_cuda_stays_close(precision: str) -> None:

    reference = tiny(device='cuda')
    half = tiny(device='cuda', precision=precision)
    rgb = image(96, 128)
    full, low = reference.predict(rgb), half.predict(rgb)
    relative = np.abs(full.depth_m - low.depth_m) / full.depth_m
    assert np.median(relative) < 0.02
