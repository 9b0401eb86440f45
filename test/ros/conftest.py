"""Fixtures for node tests; helpers live in node_harness.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from ros2_cli import build_workspace

from zoedepth_ros.config import save_config
from zoedepth_ros.model import get_config


@pytest.fixture(scope='session')
def tiny_model_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny NK preset at a small network size (fast random-weight inference on CPU)."""
    path = tmp_path_factory.mktemp('model') / 'tiny_nk_64x96.yaml'
    save_config(dataclasses.replace(get_config('zoedepth_tiny_nk'), img_size=(64, 96)), path)
    return path


@pytest.fixture(scope='session')
def colcon_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``colcon build`` of the tracked sources into a temporary workspace: its install/."""
    return build_workspace(tmp_path_factory.mktemp('ws'))
