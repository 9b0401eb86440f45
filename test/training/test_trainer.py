"""The trainer end to end on a tiny model: learning, skipped batches, exact resume, logging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_data import TINY_MODEL, TINY_MODEL_N, TinyRGBD

from zoedepth_ros.config import from_dict
from zoedepth_ros.errors import CheckpointError, ConfigError
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.model import build_model
from zoedepth_ros.model.checkpoint import load_checkpoint
from zoedepth_ros.training.config import TrainConfig
from zoedepth_ros.training.model_init import build_training_model
from zoedepth_ros.training.trainer import Trainer


def make_config(tmp_path: Path, **changes) -> TrainConfig:
    data = {'stage': 'metric_nk', 'output_dir': str(tmp_path / 'run'), 'batch_size': 2,
            'tensorboard': False, 'eval_interval': 100,
            'data': {'augment': False},
            'model': {'preset': 'zoedepth_tiny_nk', 'overrides': TINY_MODEL},
            'schedule': {'steps': 6}, 'optim': {'lr': 2e-3}}
    for key, value in changes.items():
        section, _, name = key.partition('__')
        if name:
            data[section] = {**data.get(section, {}), name: value}
        else:
            data[key] = value
    return from_dict(TrainConfig, data)


def nk_sets() -> list[TinyRGBD]:
    return [TinyRGBD(4, 'indoor'), TinyRGBD(4, 'outdoor', seed=1)]


def test_loss_decreases_on_a_fixed_batch(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, stage='metric', batch_size=4,
                      model__preset='zoedepth_tiny_n', model__overrides=TINY_MODEL_N,
                      schedule__steps=8, optim__lr=5e-3, tensorboard=True,
                      eval_interval=8)
    trainer = Trainer(cfg, train_sets=[TinyRGBD(4)], val_sets=[TinyRGBD(2, seed=3)])
    records = list(trainer.run())
    losses = [r.loss for r in records]
    assert len(losses) == 8 and not any(r.skipped for r in records)
    assert losses[-1] < 0.85 * losses[0], losses
    run = Path(cfg.output_dir)
    assert (run / 'last.pt').is_file() and (run / 'best.pt').is_file()
    assert (run / 'config.yaml').is_file() and list((run / 'tensorboard').iterdir())
    assert trainer.history[-1]['step'] == 8
    assert 0.0 <= trainer.history[-1]['tiny_indoor']['a1'] <= 1.0
    reloaded = build_model(trainer.model.cfg)
    load_checkpoint(reloaded, run / 'last.pt')  # original layout, strict
    estimator = DepthEstimator.from_pretrained(str(run / 'best.pt'), device='cpu')
    assert estimator.model.cfg == trainer.model.cfg  # config YAML written beside the weights
    assert json.loads((run / 'history.json').read_text())[-1]['step'] == 8


@pytest.mark.slow
@pytest.mark.parametrize('mixing', ['alternate', 'paired'])
def test_resume_continues_exactly(tmp_path: Path, mixing: str) -> None:
    straight = Trainer(make_config(tmp_path / 'a', data__nk_mixing=mixing),
                       train_sets=nk_sets())
    expected = [(r.loss, r.parts['router'], r.source) for r in straight.run()]
    sources = [0, 1, 0, 1, 0, 1] if mixing == 'alternate' else [-1] * 6
    assert [s for *_, s in expected] == sources  # single-domain batches: alternating or paired

    interrupted = Trainer(make_config(tmp_path / 'b', checkpoint_interval=3,
                                      data__nk_mixing=mixing), train_sets=nk_sets())
    first = []
    for record in interrupted.run():
        first.append((record.loss, record.parts['router'], record.source))
        if record.step == 3:  # "killed" after 4 steps: 1 step past the step-3 checkpoint
            break
    torch.manual_seed(1234)  # a resumed process starts with unrelated RNG states
    resumed = Trainer(make_config(tmp_path / 'b', checkpoint_interval=3,
                                  data__nk_mixing=mixing),
                      train_sets=nk_sets(), resume=str(tmp_path / 'b' / 'run'))
    assert resumed.step == 3
    rest = [(r.loss, r.parts['router'], r.source) for r in resumed.run()]
    assert first[:3] + rest == expected
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_all_invalid_batches_are_skipped(tmp_path: Path) -> None:
    blank = TinyRGBD(2)
    for item in blank.items:
        item['depth'][:] = 0.0
    cfg = make_config(tmp_path, stage='metric', model__preset='zoedepth_tiny_n',
                      model__overrides=TINY_MODEL_N, schedule__steps=2)
    trainer = Trainer(cfg, train_sets=[blank])
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    records = list(trainer.run())
    assert all(r.skipped and r.loss == 0.0 for r in records)
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())


def test_config_and_resume_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='train_roots is empty'):
        Trainer(from_dict(TrainConfig, {'data': {}, 'output_dir': str(tmp_path)}))
    with pytest.raises(ConfigError, match='valid keys'):
        make_config(tmp_path, optim__learning_rate=1.0)
    with pytest.raises(ConfigError, match='zoedepth:<path>'):
        make_config(tmp_path, model__init='weights.pt')
    with pytest.raises(ConfigError, match='indoor and outdoor'):
        Trainer(make_config(tmp_path), train_sets=[TinyRGBD(4)])
    with pytest.raises(CheckpointError, match='no training state'):
        Trainer(make_config(tmp_path), train_sets=nk_sets(), resume=str(tmp_path / 'none'))
    with pytest.raises(ConfigError, match='neither a preset'):
        build_training_model(make_config(tmp_path, model__preset='ZoeD_X'))
