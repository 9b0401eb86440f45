"""ZoeDepth on MiDaS v2.1 small (EfficientNet-Lite3): parity with the original code on the
shared reference vectors (``zoed_midas_small/``), checkpoint layouts (ZoeDepth and MiDaS),
NK on this backbone, the slim variant and ONNX export.

The reference directory is found as in test_refvectors.py ($ZOEDEPTH_REFVECTORS, default
``../shared/refvectors``); CI always has it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from oracles import assert_close

from zoedepth_ros.config import load_config, save_config
from zoedepth_ros.errors import CheckpointError, ConfigError
from zoedepth_ros.model import ZoeDepth, build_model, get_config
from zoedepth_ros.model.checkpoint import (
    load_backbone_checkpoint,
    load_original_state,
    original_key_shapes,
    original_state_dict,
    save_checkpoint,
)
from zoedepth_ros.model.config import EfficientNetConfig, ModelConfig
from zoedepth_ros.model.loading import load_model

REPO = Path(__file__).resolve().parents[2]
REFVECTORS = Path(os.environ.get('ZOEDEPTH_REFVECTORS', REPO.parent / 'shared' / 'refvectors'))
CASE = REFVECTORS / 'zoed_midas_small'
needs_refvectors = pytest.mark.skipif(not (CASE / 'orig_ckpt_fp16.pt').is_file(),
                                      reason=f'reference vectors not found at {REFVECTORS} '
                                             f'(set ZOEDEPTH_REFVECTORS)')


def read_tsv(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    rows = {}
    for line in path.read_text().splitlines():
        key, shape, dtype = line.split('\t')
        rows[key] = (tuple(json.loads(shape)), dtype)
    return rows


@pytest.fixture(scope='module')
def fp32_state() -> dict[str, torch.Tensor]:
    """The reference checkpoint, each floating tensor upcast to float32 (exact)."""
    state = torch.load(CASE / 'orig_ckpt_fp16.pt', weights_only=True)['model']
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


@pytest.fixture(scope='module')
def checkpoint_file(fp32_state, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('midas_small') / 'zoed_midas_small.pt'
    torch.save({'model': fp32_state}, path)
    return path


@pytest.fixture(scope='module')
def model(checkpoint_file) -> ZoeDepth:
    """Loaded through the one door, config guessed from the key set."""
    return load_model(str(checkpoint_file)).model


def run_inputs() -> dict[str, torch.Tensor]:
    """Runs a, b, c as the reference README describes them."""
    data = torch.load(REFVECTORS / 'inputs.pt', weights_only=True)
    return {'a': F.interpolate(data['img_a'], size=(256, 320), mode='bilinear',
                               align_corners=False),
            'b': data['img_b'],
            'c': data['img_c'][:, :, 0:288, 0:384]}


@needs_refvectors
@pytest.mark.parametrize('run', ['a', 'b', 'c'])
def test_forward_matches_original(model, run: str) -> None:
    assert model.cfg == get_config('ZoeD_small_N')
    reference = torch.load(CASE / 'orig_outputs.pt', weights_only=True)
    image = run_inputs()[run]
    with torch.inference_mode():
        prepped = model.prepare(image)
        out = model(image)
    produced = {'prepped': prepped, 'rel_depth': out.relative_depth,
                'metric_depth': out.metric_depth,
                'bin_centers_s8': out.bin_centers[:, :, ::8, ::8],
                'probs_s8': out.probs[:, :, ::8, ::8]}
    assert {k.split('/')[1] for k in reference if k.startswith(f'{run}/')} == set(produced)
    for key, value in produced.items():
        assert_close(f'{run}/{key}', value, reference[f'{run}/{key}'])


@needs_refvectors
def test_key_set_equals_original(fp32_state, model) -> None:
    expected = read_tsv(CASE / 'keys.tsv')
    assert len(expected) == 530
    assert {k: shape for k, (shape, _) in expected.items()} == {
        k: tuple(v.shape) for k, v in fp32_state.items()}
    with torch.device('meta'):
        fresh = ZoeDepth(get_config('ZoeD_small_N'))
    assert original_key_shapes(fresh) == {k: shape for k, (shape, _) in expected.items()}
    state = original_state_dict(model)  # the layout save_checkpoint writes
    assert {k: str(v.dtype).replace('torch.', '') for k, v in state.items()} == {
        k: dtype for k, (_, dtype) in expected.items()}


@needs_refvectors
def test_midas_layout_loads_into_the_core(fp32_state, model, tmp_path) -> None:
    midas = {k[len('core.core.'):]: v for k, v in fp32_state.items() if k.startswith('core.core.')}
    layout = read_tsv(CASE / 'midas_small_keys.tsv')
    assert {k: tuple(v.shape) for k, v in midas.items()} == {k: s for k, (s, _) in layout.items()}
    torch.save(midas, tmp_path / 'midas_v21_small_256.pt')  # a plain state dict, as released
    torch.manual_seed(4)
    fresh = build_model('ZoeD_small_N')
    head = fresh.heads['nyu'].seed_regressor.mlp[0].weight.clone()
    load_backbone_checkpoint(fresh, tmp_path / 'midas_v21_small_256.pt')
    ours = fresh.state_dict()
    for key, value in model.state_dict().items():
        if key.startswith(('encoder.', 'decoder.')):
            assert torch.equal(ours[key], value), key
    assert torch.equal(fresh.heads['nyu'].seed_regressor.mlp[0].weight, head)
    reference = torch.load(CASE / 'orig_outputs.pt', weights_only=True)
    with torch.inference_mode():
        relative = fresh(run_inputs()['b']).relative_depth
    assert_close('b/rel_depth (MiDaS layout)', relative, reference['b/rel_depth'])
    with pytest.raises(CheckpointError, match='MiDaS relative-depth checkpoint'):
        load_model(str(tmp_path / 'midas_v21_small_256.pt'))


@needs_refvectors
def test_save_load_round_trip_is_exact(model, fp32_state, tmp_path) -> None:
    path = save_checkpoint(model, tmp_path / 'again.pt')
    written = torch.load(path, weights_only=True)['model']
    assert written.keys() == fp32_state.keys()
    for key, value in written.items():
        assert torch.equal(value, fp32_state[key]), key
    again = ZoeDepth(get_config('ZoeD_small_N')).eval()
    load_original_state(again, written)
    for (key, a), b in zip(again.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), key


def test_channels_come_from_the_backbone() -> None:
    lite3 = build_model('ZoeD_small_N')
    assert lite3.encoder.channels == (32, 48, 136, 384)
    assert [p.out_channels for p in (lite3.decoder.fusion[i].out_conv for i in (3, 2, 1, 0))] \
        == [256, 128, 64, 64]
    assert lite3.bottleneck.in_channels == 512 and lite3.seed_projector[0].in_channels == 512
    assert [p[0].in_channels for p in lite3.projectors] == [256, 128, 64, 64]
    assert lite3.heads['nyu'].log_binomial.mlp[0].in_channels == 32 + 1 + 128
    with torch.device('meta'):
        nk = ZoeDepth(get_config('ZoeD_small_NK'))
    assert nk.router.embedding.in_channels == 512 and set(nk.heads) == {'nyu', 'kitti'}
    assert nk.heads['kitti'].log_binomial.mlp[0].in_channels == 32 + 128  # no rel-depth input
    tiny = build_model('zoedepth_small_tiny_nk')
    assert tiny.router.embedding.in_channels == tiny.cfg.trunk.bottleneck_features == 256
    assert sum(p.numel() for p in tiny.parameters()) < sum(p.numel() for p in lite3.parameters())


def test_nk_routes_per_image_and_forced_heads() -> None:
    torch.manual_seed(1)
    nk = build_model('zoedepth_small_tiny_nk')
    images = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        logits = nk(images, size=(96, 128)).domain_logits
        nk.router.classifier[2].bias[1] -= (logits[:, 1] - logits[:, 0]).mean()
        routed = nk(images, size=(96, 128))
        forced = {d: nk(images, domain=d, size=(96, 128)) for d in ('nyu', 'kitti')}
    index = routed.domain_index.tolist()
    assert sorted(index) == [0, 1], 'the shifted router should split the two images'
    for i, domain in enumerate(('nyu', 'kitti')[j] for j in index):
        torch.testing.assert_close(routed.metric_depth[i], forced[domain].metric_depth[i])
    assert routed.metric_depth.shape == (2, 1, 96, 128)
    keys = original_key_shapes(nk)
    assert keys['patch_transformer.embedding_convPxP.weight'] == (128, 256, 1, 1)
    assert keys['conditional_log_binomial.kitti.mlp.0.weight'][1] == 16 + 128


def test_batchnorm_stays_frozen_in_training() -> None:
    model = build_model('zoedepth_small_tiny_n').train()
    norms = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and model.decoder.training
    before = norms[0].running_mean.clone()
    model(torch.rand(2, 3, 64, 96), size=(64, 96)).metric_depth.mean().backward()
    assert torch.equal(norms[0].running_mean, before)
    assert norms[0].weight.grad is not None
    # from scratch (training config model.batchnorm: train) the statistics are learned
    model.encoder.freeze_batchnorm = False
    model.train()(torch.rand(2, 3, 64, 96) + 1.0, size=(64, 96))
    assert all(m.training for m in norms) and not torch.equal(norms[0].running_mean, before)


def test_metric_stride_pools_the_finest_head_work() -> None:
    base = build_model('zoedepth_small_tiny_nk').eval()
    strided = build_model(dataclasses.replace(base.cfg, metric_stride=2)).eval()
    strided.load_state_dict(base.state_dict())  # the option adds no weights
    x = torch.rand(1, 3, 128, 160)
    with torch.no_grad():
        full, pooled = base(x, size=(128, 160)), strided(x, size=(128, 160))
    assert full.metric_depth.shape[-2:] == (128, 160)  # MiDaS small: head features at input size
    assert pooled.metric_depth.shape[-2:] == (64, 80)
    torch.testing.assert_close(pooled.relative_depth, full.relative_depth)
    # the same network seen at a quarter of the pixels: the depth agrees where it is smooth
    coarse = torch.nn.functional.avg_pool2d(full.metric_depth, 2)
    assert float(((pooled.metric_depth - coarse).abs() / coarse).median()) < 0.05
    cpu = get_config('ZoeD_small_NK_cpu')
    assert cpu.metric_stride == 2 and [h.n_bins for h in cpu.heads] == [32, 32]
    assert cpu.trunk == get_config('ZoeD_small_NK').trunk  # MiDaS small weights fit its core
    with pytest.raises(ConfigError, match='metric_stride must be 1, 2 or 4'):
        dataclasses.replace(base.cfg, metric_stride=3)


def test_config_sections_round_trip_and_are_checked(tmp_path) -> None:
    cfg = get_config('zoedepth_small_tiny_nk')
    assert cfg.trunk == EfficientNetConfig(width=0.5, features=32, head_features=16)
    save_config(cfg, tmp_path / 'small.yaml')
    assert load_config(tmp_path / 'small.yaml', ModelConfig) == cfg
    assert get_config('ZoeD_small_N').trunk == EfficientNetConfig()
    with pytest.raises(ConfigError, match='needs kind efficientnet_lite3'):
        ModelConfig(midas_model_type='MiDaS_small', backbone=get_config('zoedepth_tiny_n').trunk)
    with pytest.raises(ConfigError, match='width'):
        EfficientNetConfig(width=0)


def test_tiny_checkpoint_is_recognised(tmp_path) -> None:
    model = load_model('zoedepth_small_tiny_n', random_weights=True, seed=2).model
    save_checkpoint(model, tmp_path / 'tiny.pt')
    loaded = load_model(str(tmp_path / 'tiny.pt'))
    assert loaded.model.cfg == get_config('zoedepth_small_tiny_n')
    assert 'MiDaS_small x0.5' in load_model('zoedepth_small_tiny_n', random_weights=True).name


def test_onnx_export_matches_torch(tmp_path) -> None:
    from zoedepth_ros.model.onnx import OnnxDepthModel, export_onnx

    torch.manual_seed(0)
    nk = build_model('zoedepth_small_tiny_nk')
    graph = OnnxDepthModel(export_onnx(nk, tmp_path / 'small.onnx', 128, 160))
    images = torch.rand(2, 3, 128, 160, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        expected = nk(images, size=(128, 160))
    exported = graph(images)
    assert exported.domain_index.tolist() == expected.domain_index.tolist()
    for name in ('metric_depth', 'depth_std', 'domain_logits'):
        reference = getattr(expected, name)
        error = (getattr(exported, name) - reference).abs().max() / reference.abs().max()
        assert error < 1e-4, name
    assert graph.cfg == nk.cfg
