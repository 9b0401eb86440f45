"""The one door from a name or path to a model: what it accepts, what it refuses, what it says."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from zoedepth_ros.config import save_config
from zoedepth_ros.errors import CheckpointError, ConfigError
from zoedepth_ros.model.checkpoint import save_checkpoint
from zoedepth_ros.model.config import get_config
from zoedepth_ros.model.loading import load_model
from zoedepth_ros.model.weights import DEFAULT_MODEL, DEMO_MODEL
from zoedepth_ros.model.zoedepth import ZoeDepth


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values(), strict=True))


def test_random_weights_only_on_request_and_seeded(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match='configuration without weights.*random'):
        load_model('zoedepth_tiny_n')
    first = load_model('zoedepth_tiny_n', random_weights=True)
    again = load_model('zoedepth_tiny_n', random_weights=True)
    other = load_model('zoedepth_tiny_n', random_weights=True, seed=1)
    assert first.kind == 'random' and 'RANDOM' in first.warning and first.source == ''
    assert _same(first.model, again.model) and not _same(first.model, other.model)
    yaml = tmp_path / 'tiny.yaml'
    cfg = dataclasses.replace(get_config('zoedepth_tiny_n'), img_size=(64, 96))
    save_config(cfg, yaml)
    with pytest.raises(CheckpointError, match='configuration without weights'):
        load_model(str(yaml))
    from_yaml = load_model(str(yaml), random_weights=True)
    assert from_yaml.model.cfg == cfg and load_model(cfg, random_weights=True).model.cfg == cfg
    with pytest.raises(ConfigError, match='names weights'):
        load_model(DEMO_MODEL, random_weights=True)
    with pytest.raises(ConfigError, match='once'):
        load_model('zoedepth_tiny_n', 'zoedepth_tiny_k', random_weights=True)


def test_checkpoint_files_with_given_beside_or_guessed_config(tmp_path: Path) -> None:
    model = load_model('zoedepth_tiny_k', random_weights=True, seed=3).model
    path = save_checkpoint(model, tmp_path / 'k.pt')
    guessed = load_model(str(path))
    assert guessed.kind == 'weights' and guessed.warning is None
    assert guessed.name == 'k.pt' and guessed.source == str(path)
    assert guessed.model.cfg == get_config('zoedepth_tiny_k') and _same(guessed.model, model)
    given = load_model(str(path), 'zoedepth_tiny_k')
    assert _same(given.model, model)
    with pytest.raises(CheckpointError, match='does not fit model ZoeDepth'):
        load_model(str(path), 'zoedepth_tiny_n')  # softplus head: other shapes
    with pytest.raises(CheckpointError, match='neither an existing file nor a known weights'):
        load_model(str(tmp_path / 'absent.pt'))


def test_the_bundled_demo_model_is_named_and_flagged() -> None:
    demo = load_model(DEMO_MODEL)
    assert demo.kind == 'demo' and demo.name == DEMO_MODEL
    assert isinstance(demo.model, ZoeDepth) and not demo.model.training
    assert 'synthetic scenes' in demo.warning and 'ZoeD_M12_NK' in demo.warning
    assert Path(demo.source).is_file() and DEFAULT_MODEL
