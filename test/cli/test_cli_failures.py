"""Failures a user can cause end in one line and exit code 2, never a traceback, in every verb.

Outputs are checked before the long work starts: an output path below a file (which no user,
root included, can create) is refused before any model loads. A bad ``--set`` is refused before
any data is read. A disk that fills up mid-run is a real write failure of the operating system:
the file size limit (RLIMIT_FSIZE) of a child process, with SIGXFSZ ignored, makes its writes
fail with EFBIG as a full disk fails them with ENOSPC.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from bag_fixtures import TOPICS, write_bag

from zoedepth_ros.cli.main import main

REPO = Path(__file__).resolve().parents[2]
TINY = ['--model', 'zoedepth_tiny_nk', '--random-weights', '--device', 'cpu']


@pytest.fixture
def blocked(tmp_path: Path) -> Path:
    """A path below a regular file: no folder can be created there."""
    wall = tmp_path / 'a_file'
    wall.write_text('not a folder')
    return wall / 'out'


def one_error(caplog: pytest.LogCaptureFixture, *needles: str) -> str:
    errors = [r.getMessage() for r in caplog.records if r.levelname == 'ERROR']
    assert len(errors) == 1, errors
    assert all(needle in errors[0] for needle in needles), errors[0]
    assert not any(r.exc_info for r in caplog.records)
    return errors[0]


def test_infer_refuses_an_unwritable_output_before_loading(tmp_path, blocked, caplog) -> None:
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.zeros((24, 32, 3), np.uint8))
    assert main(['infer', '-o', str(blocked), str(image), '--model', 'no_such_model']) == 2
    one_error(caplog, 'cannot write to the output folder', str(blocked))  # not the model


def test_synth_refuses_an_unwritable_output(blocked, caplog) -> None:
    assert main(['synth', '--count', '1', '--size', '64x48', '--output',
                 str(blocked / 'set')]) == 2
    one_error(caplog, 'cannot write to the folder of the output', str(blocked))


def test_bag_eval_refuses_unwritable_report_and_output_bag(tmp_path, blocked, caplog) -> None:
    write_bag(tmp_path / 'bag')
    common = ['bag', 'eval', str(tmp_path / 'bag'), '--image-topic', TOPICS.image,
              '--depth-topic', TOPICS.depth, *TINY]
    assert main([*common, '-o', str(blocked / 'report')]) == 2
    one_error(caplog, 'cannot write to the folder of the report folder')
    caplog.clear()
    assert main([*common, '-o', str(tmp_path / 'report'), '--out-bag',
                 str(blocked / 'bag')]) == 2
    one_error(caplog, 'cannot write to the folder of the output bag')
    assert not (tmp_path / 'report').exists()


def test_eval_refuses_an_unwritable_results_file(tmp_path, blocked, caplog) -> None:
    assert main(['eval', *TINY, '--dataset', 'folder', '--root', str(tmp_path), '-o',
                 str(blocked / 'r.json')]) == 2
    one_error(caplog, 'cannot write to the folder of the results')


def test_export_refuses_an_unwritable_target(blocked, caplog) -> None:
    assert main(['export', '--model', 'zoedepth_tiny_nk', '--random-weights', '--onnx',
                 str(blocked / 'm.onnx')]) == 2
    one_error(caplog, 'cannot write to the folder of the export')


def test_train_validates_the_config_and_the_run_folder_first(blocked, caplog) -> None:
    recipe = str(REPO / 'config' / 'train' / 'demo_relative.yaml')
    assert main(['train', '--config', recipe, '--set', 'schedule.steps=10']) == 2
    one_error(caplog, 'schedule.pct_start 0.1 of 10 steps', 'at least 11 steps')
    caplog.clear()
    assert main(['train', '--config', recipe, '--set', 'schedule.stepz=10']) == 2
    one_error(caplog, "unknown key 'stepz'", 'valid keys')
    caplog.clear()
    assert main(['train', '--config', recipe, '--set', f'output_dir={blocked}']) == 2
    one_error(caplog, 'cannot write to the run folder', str(blocked))


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.skipif(sys.platform != 'linux', reason='RLIMIT_FSIZE semantics of Linux')
def test_a_write_that_fails_mid_run_is_one_line_and_leaves_no_partial_file(tmp_path) -> None:
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.zeros((48, 64, 3), np.uint8))  # a 12 KiB depth .npy
    out = tmp_path / 'out'
    done = subprocess.run(
        [sys.executable, '-m', 'zoedepth_ros.cli.main', 'infer', '-o', str(out), str(image),
         *TINY], cwd=REPO, capture_output=True, text=True, timeout=300,
        preexec_fn=_limit_file_size, env=dict(os.environ, PYTHONUNBUFFERED='1'))
    assert done.returncode == 2, done.stderr
    assert 'Traceback' not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith('ERROR')]
    assert len(errors) == 1 and str(out) in errors[0], done.stderr
    assert 'File too large' in errors[0] or 'written' in errors[0], done.stderr  # EFBIG/short
    assert 'the outputs of 0 image(s) before a are complete' in errors[0]
    assert not list(out.glob('a_depth*')) and not list(out.glob('.*'))  # nothing half-written


@pytest.mark.skipif(sys.platform != 'linux', reason='RLIMIT_FSIZE semantics of Linux')
def test_bag_eval_says_what_a_failing_write_left(tmp_path) -> None:
    write_bag(tmp_path / 'bag')
    done = subprocess.run(
        [sys.executable, '-m', 'zoedepth_ros.cli.main', 'bag', 'eval', str(tmp_path / 'bag'),
         '-o', str(tmp_path / 'report'), '--image-topic', TOPICS.image, '--depth-topic',
         TOPICS.depth, *TINY], cwd=REPO, capture_output=True, text=True, timeout=300,
        preexec_fn=_limit_file_size, env=dict(os.environ, PYTHONUNBUFFERED='1'))
    assert done.returncode == 2 and 'Traceback' not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith('ERROR')]
    assert len(errors) == 1, done.stderr
    assert 'writing the report or the output bag failed after 6 of 6 frames' in errors[0]
    assert 'nothing was written' in errors[0] and not (tmp_path / 'report').exists()
