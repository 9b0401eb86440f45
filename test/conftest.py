"""Shared fixtures: deterministic seeds, offline hub, one ROS domain per test process."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault('HF_HUB_OFFLINE', '1')

# Every pytest process (each xdist worker) gets its own DDS domain and loopback discovery so
# that ROS tests never see each other's messages. Ids stay below 233 (Fast DDS port limit).
_worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')
_base = int(os.environ.get('ZOEDEPTH_TEST_DOMAIN_BASE', str(100 + os.getpid() % 60)))
os.environ['ROS_DOMAIN_ID'] = str(_base + int(_worker.lstrip('gw') or 0))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

# One thread: on 2 shared cores, two OpenMP threads per test process spin-wait badly.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Seed torch and numpy before every test."""
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def _ros_log_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep rclpy's log files out of the home directory."""
    os.environ.setdefault('ROS_LOG_DIR', str(tmp_path_factory.getbasetemp() / 'ros_log'))
