"""Every shipped recipe parses; ``zoedepth train`` end to end on a tiny synthetic set."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml
from bag_fixtures import TOPICS, write_bag

from zoedepth_ros.cli import train
from zoedepth_ros.cli.main import main
from zoedepth_ros.config import load_config
from zoedepth_ros.evaluation.datasets import EvalConfig
from zoedepth_ros.training.config import TrainConfig
from zoedepth_ros.training.state import read_state

CONFIG = Path(__file__).resolve().parents[2] / 'config'


@pytest.mark.parametrize('path', sorted((CONFIG / 'train').glob('*.yaml')), ids=lambda p: p.name)
def test_train_recipes_load(path: Path) -> None:
    cfg = load_config(path, TrainConfig)
    assert cfg.data.train_roots or (cfg.distill.teacher and cfg.distill.inputs)


@pytest.mark.parametrize('path', sorted((CONFIG / 'eval').glob('*.yaml')), ids=lambda p: p.name)
def test_eval_configs_load(path: Path) -> None:
    load_config(path, EvalConfig)


def test_train_cli_runs_the_tiny_recipe_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / 'synth'
    assert main(['synth', '--domain', 'both', '--count', '8', '--size', '64x48', '--seed', '3',
                 '--test-fraction', '0.5', '--output', str(data)]) == 0
    run = tmp_path / 'run'
    overrides = ['--set', f'output_dir={run}',
                 '--set', f"data.train_roots=['{data / 'indoor'}', '{data / 'outdoor'}']",
                 '--set', f"data.val_roots=['{data / 'indoor'}']"]
    assert main(['train', '--config', str(CONFIG / 'train' / 'tiny_test.yaml'),
                 *overrides]) == 0
    assert (run / 'last.pt').is_file() and (run / 'last.yaml').is_file()
    state, _ = read_state(run)
    assert state['step'] == 4 and state['config']['output_dir'] == str(run)
    # resuming a finished run uses its saved config and has nothing left to do
    assert main(['train', '--resume', str(run)]) == 0
    assert main(['train']) == 2  # neither --config nor --resume
    assert main(['train', '--config', str(CONFIG / 'train' / 'tiny_test.yaml'),
                 '--set', 'optim.learning_rate=1']) == 2


def test_train_cli_on_recorded_rgbd_bags(tmp_path: Path) -> None:
    """Own data from the command line: an indoor and an outdoor bag, each split into training
    frames and held-out validation frames, with no dataset roots in the recipe."""
    for name in ('room', 'yard'):
        write_bag(tmp_path / name, offsets=[0.0] * 20)
    specs = {name: f'bag:{tmp_path / name},image={TOPICS.image},depth={TOPICS.depth},'
                   f'domain={domain},holdout=0.5'
             for name, domain in (('room', 'indoor'), ('yard', 'outdoor'))}
    run = tmp_path / 'run'
    assert main(['train', '--config', str(CONFIG / 'train' / 'tiny_test.yaml'),
                 '--set', f'output_dir={run}', '--set', 'data.train_roots=[]',
                 '--train-data', specs['room'], '--train-data', specs['yard'],
                 '--val-data', specs['room']]) == 0
    history = json.loads((run / 'history.json').read_text())
    assert history[-1]['step'] == 4 and 0.0 <= history[-1]['room']['a1'] <= 1.0
    saved = yaml.safe_load((run / 'config.yaml').read_text())
    assert saved['data']['train_roots'] == [specs['room'], specs['yard']]
    assert main(['train', '--config', str(CONFIG / 'train' / 'tiny_test.yaml'),
                 '--set', f'output_dir={tmp_path / "bad"}',
                 '--train-data', f'bag:{tmp_path / "room"},colour=x']) == 2


def test_distill_flags_replace_the_recipe_teacher_and_inputs() -> None:
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(['--config', str(CONFIG / 'train' / 'distill_small_cpu.yaml'),
                              '--teacher', 'teacher.pt', '--distill-input', 'bag:bags/a',
                              '--distill-input', 'videos/'])
    cfg = train._config(args)
    assert cfg.stage == 'distill' and cfg.distill.teacher == 'teacher.pt'
    assert cfg.distill.inputs == ('bag:bags/a', 'videos/')
    assert cfg.model.preset == 'ZoeD_small_NK_cpu'
