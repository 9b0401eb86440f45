"""The paper's two stages end to end on tiny configs: the relative (scale-shift-invariant)
stage learns and validates with aligned measures, resumes exactly, and its checkpoint starts
the metric stages; disparity data trains the relative stage only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tiny_data import TINY_MODEL, TINY_MODEL_N, TinyRGBD

from zoedepth_ros.config import from_dict
from zoedepth_ros.errors import CheckpointError, ConfigError
from zoedepth_ros.io.rgbd_folder import FolderWriter
from zoedepth_ros.model.checkpoint import CORE_PREFIXES, save_checkpoint
from zoedepth_ros.model.loading import load_model
from zoedepth_ros.training.config import TrainConfig
from zoedepth_ros.training.model_init import build_training_model
from zoedepth_ros.training.trainer import Trainer


def relative_config(tmp_path: Path, steps: int = 12, **extra: object) -> TrainConfig:
    return from_dict(TrainConfig, {
        'stage': 'relative', 'output_dir': str(tmp_path), 'batch_size': 4,
        'tensorboard': False, 'eval_interval': steps, 'data': {'augment': False},
        'model': {'preset': 'zoedepth_tiny_n', 'overrides': TINY_MODEL_N},
        'optim': {'lr': 5e-3}, 'schedule': {'steps': steps}, **extra})


def test_relative_stage_learns_with_aligned_validation(tmp_path: Path) -> None:
    trainer = Trainer(relative_config(tmp_path / 'rel'), train_sets=[TinyRGBD(8)],
                      val_sets=[TinyRGBD(4, seed=3)])
    before = trainer.validate()['tiny_indoor']
    records = list(trainer.run())
    after = trainer.history[-1]['tiny_indoor']
    losses = [r.loss for r in records]
    assert losses[-1] < 0.8 * losses[0], losses
    # validated as MiDaS reports it: scale-and-shift-aligned disparity, no router, no metres
    assert set(after) >= {'aligned_abs_rel', 'aligned_a1'}
    assert 'router_accuracy' not in after and 'rmse' not in after
    assert after['aligned_abs_rel'] < 0.8 * before['aligned_abs_rel']
    assert 0.0 <= after['aligned_a1'] <= 1.0 and after['aligned_a1'] >= before['aligned_a1']
    best = yaml.safe_load((tmp_path / 'rel' / 'best.yaml').read_text())
    assert best['n_bins'] == 16  # the model config is written beside the weights


def test_metric_stages_start_from_the_relative_checkpoint(tmp_path: Path) -> None:
    trainer = Trainer(relative_config(tmp_path / 'rel', steps=4), train_sets=[TinyRGBD(4)])
    list(trainer.run())
    relative = load_model(str(tmp_path / 'rel' / 'last.pt')).model.state_dict()

    nk = from_dict(TrainConfig, {
        'stage': 'metric_nk', 'output_dir': str(tmp_path / 'nk'),
        'model': {'preset': 'zoedepth_tiny_nk', 'overrides': TINY_MODEL,
                  'init': f'relative:{tmp_path / "rel" / "last.pt"}'}})
    model = build_training_model(nk).state_dict()
    core = [k for k in model if k.startswith(CORE_PREFIXES)]
    assert len(core) > 50 and all(torch.equal(model[k], relative[k]) for k in core)
    # the heads and the router are new: the relative checkpoint's one head is dropped
    assert 'router.classifier.0.weight' in model and 'heads.kitti.seed_regressor.mlp.0.weight' \
        in model and 'heads.kitti.seed_regressor.mlp.0.weight' not in relative
    key = 'bottleneck.weight'
    assert model[key].shape == relative[key].shape and not torch.equal(model[key], relative[key])

    wider = from_dict(TrainConfig, {
        'stage': 'metric', 'output_dir': str(tmp_path / 'n'),
        'model': {'preset': 'zoedepth_tiny_n',
                  'overrides': [*TINY_MODEL_N, 'backbone.features=48'],
                  'init': f'relative:{tmp_path / "rel" / "last.pt"}'}})
    with pytest.raises(CheckpointError, match=r'last.pt does not fit the model core: '
                                              r'\d+ shape-mismatched key\(s\): decoder'):
        build_training_model(wider)
    with pytest.raises(ConfigError, match='relative:<path>'):
        from_dict(TrainConfig, {'model': {'init': 'relative:'}})
    frozen_only = from_dict(TrainConfig, {
        'stage': 'metric_nk', 'output_dir': str(tmp_path / 'bn'),
        'model': {'preset': 'zoedepth_small_tiny_nk', 'batchnorm': 'train'}})
    with pytest.raises(ConfigError, match='batchnorm=train cannot be used with metric_nk'):
        Trainer(frozen_only, train_sets=[TinyRGBD(2), TinyRGBD(2, 'outdoor')])


@pytest.mark.slow
def test_relative_stage_resume_is_exact(tmp_path: Path) -> None:
    sets = [TinyRGBD(8)]
    straight = Trainer(relative_config(tmp_path / 'a', steps=6), train_sets=sets)
    expected = [r.loss for r in straight.run()]
    interrupted = Trainer(relative_config(tmp_path / 'b', steps=6, checkpoint_interval=3),
                          train_sets=sets)
    first = []
    for record in interrupted.run():
        first.append(record.loss)
        if record.step == 3:  # "killed" one step past the step-3 checkpoint
            break
    torch.manual_seed(99)
    resumed = Trainer(relative_config(tmp_path / 'b', steps=6, checkpoint_interval=3),
                      train_sets=sets, resume=str(tmp_path / 'b'))
    assert resumed.step == 3
    assert first[:3] + [r.loss for r in resumed.run()] == expected
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def _disparity_folder(root: Path, count: int = 8) -> Path:
    """Relative-depth data as a relative-depth dataset ships it: disparity up to scale."""
    writer = FolderWriter(root, 'indoor', None, 0.01, 10.0, name='rel', depth_kind='disparity')
    for index, item in enumerate(TinyRGBD(count).items):
        disparity = np.where(item['depth'] > 0, 50.0 / np.maximum(item['depth'], 1e-3), 0.0)
        writer.write(f'{index:03d}', item['image'], disparity.astype(np.float32), 'train')
    writer.close()
    return root


def test_disparity_data_trains_the_relative_stage_only(tmp_path: Path) -> None:
    root = _disparity_folder(tmp_path / 'rel_data')
    cfg = relative_config(tmp_path / 'run', steps=6,
                          data={'augment': False, 'train_roots': [str(root)]})
    trainer = Trainer(cfg)
    losses = [r.loss for r in trainer.run()]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    metric = from_dict(TrainConfig, {
        'stage': 'metric', 'output_dir': str(tmp_path / 'metric'), 'tensorboard': False,
        'data': {'train_roots': [str(root)]}, 'schedule': {'steps': 1},
        'model': {'preset': 'zoedepth_tiny_n', 'overrides': TINY_MODEL_N}})
    with pytest.raises(ConfigError, match=r"\['rel'\] hold relative depth"):
        Trainer(metric)


def test_reset_bin_probabilities_restarts_a_collapsed_distribution(tmp_path: Path) -> None:
    """A model whose bin distribution collapsed onto one bin (std 0 everywhere) is loaded in
    full (``zoedepth:``); the reset gives every pixel q = t = 0.5 in both heads and leaves the
    other weights as they were."""
    base = from_dict(TrainConfig, {
        'stage': 'metric_nk', 'output_dir': str(tmp_path / 'a'),
        'model': {'preset': 'zoedepth_tiny_nk', 'overrides': TINY_MODEL}})
    collapsed = build_training_model(base)
    with torch.no_grad():  # q -> 1 and the coldest temperature: all mass on the last bin
        for head in collapsed.heads.values():
            last = head.log_binomial.mlp[2]
            last.weight.zero_()
            last.bias.copy_(torch.tensor([40.0, -40.0, -40.0, 40.0]))
    path = save_checkpoint(collapsed, tmp_path / 'collapsed.pt')
    image = torch.rand(2, 3, 64, 96)
    collapsed.eval()
    with torch.no_grad():
        before = collapsed(image)
    assert float(before.depth_std.max()) < 1e-3  # the collapse this option exists for

    reset = from_dict(TrainConfig, {
        'stage': 'metric_nk', 'output_dir': str(tmp_path / 'b'),
        'model': {'preset': 'zoedepth_tiny_nk', 'overrides': TINY_MODEL,
                  'init': f'zoedepth:{path}', 'reset_bin_probabilities': True}})
    model = build_training_model(reset).eval()
    reset_keys = {f'heads.{name}.log_binomial.mlp.2.{part}' for name in model.heads
                  for part in ('weight', 'bias')}
    assert len(reset_keys) == 4
    old, new = collapsed.state_dict(), model.state_dict()
    assert all(torch.equal(old[k], new[k]) for k in new if k not in reset_keys)
    for name, head in model.heads.items():
        module = head.log_binomial
        features = torch.randn(2, module.mlp[0].in_channels - 8, 6, 8)
        channels = module.mlp[0].in_channels - features.shape[1]
        probs = module(features, torch.randn(2, channels, 3, 4))
        temperature = torch.full((1, 1, 1, 1), (module.max_temp + module.min_temp) / 2)
        even = module.log_binomial_transform(torch.full((1, 1, 1, 1), 0.5), temperature)
        torch.testing.assert_close(probs, even.expand_as(probs), atol=2e-3, rtol=0, msg=name)
    with torch.no_grad():
        after = model(image)
    assert float(after.depth_std.min()) > 10 * float(before.depth_std.max())
