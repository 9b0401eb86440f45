"""Distillation: a tiny teacher labels unlabeled frames (folders, bags), a student learns its
depth and matches it on held-out frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import yaml
from bag_fixtures import TOPICS, write_bag
from tiny_data import TINY_MODEL_N, TinyRGBD

from zoedepth_ros.config import from_dict
from zoedepth_ros.errors import ConfigError
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.training.config import TrainConfig
from zoedepth_ros.training.distill import label_frames
from zoedepth_ros.training.trainer import Trainer


def tiny_config(output: Path, stage: str, steps: int, **extra: object) -> TrainConfig:
    return from_dict(TrainConfig, {
        'stage': stage, 'output_dir': str(output), 'batch_size': 4, 'tensorboard': False,
        'eval_interval': steps, 'data': {'augment': False},
        'model': {'preset': 'zoedepth_tiny_n', 'overrides': TINY_MODEL_N},
        'optim': {'lr': 2e-3}, 'schedule': {'steps': steps, 'div_factor': 5.0,
                                            'pct_start': 0.1}, **extra})


def write_frames(folder: Path, count: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    for index, item in enumerate(TinyRGBD(count, seed=seed).items):
        assert cv2.imwrite(str(folder / f'{index:03d}.png'), item['image'][..., ::-1])
    return folder


@pytest.fixture(scope='module')
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained briefly on ground truth: depth that follows the scene."""
    output = tmp_path_factory.mktemp('teacher')
    trainer = Trainer(tiny_config(output, 'metric', 60), train_sets=[TinyRGBD(64)],
                      val_sets=[TinyRGBD(8, seed=1)])
    list(trainer.run())
    assert trainer.history[-1]['tiny_indoor']['a1'] > 0.6  # it learned something
    return output / 'last.pt'


def test_student_matches_the_teacher_on_held_out_frames(tmp_path: Path, teacher: Path) -> None:
    frames = write_frames(tmp_path / 'unlabeled', 64, seed=3)
    cfg = tiny_config(tmp_path / 'student', 'distill', 100, seed=11,
                      distill={'teacher': str(teacher), 'inputs': [str(frames)],
                               'holdout': 0.25})
    student = Trainer(cfg)
    labels = tmp_path / 'student' / 'teacher_labels' / 'indoor'
    test = (labels / 'test.txt').read_text().split()
    assert test == [f'00_{k:03d}' for k in range(30, 40)]  # one block of 10 in 4
    assert len((labels / 'train.txt').read_text().split()) == 54
    before = student.validate()['indoor']['a1']
    list(student.run())
    after = student.history[-1]['indoor']['a1']
    # delta1 of the student against the teacher's depth, on frames it never trained on
    assert before < 0.5 and after >= 0.9, (before, after)

    # what the student predicts on a held-out frame is the teacher's depth there
    image = cv2.imread(str(frames / '035.png'))[..., ::-1]
    theirs = DepthEstimator.from_pretrained(str(teacher), device='cpu').predict(image).depth_m
    mine = DepthEstimator.from_pretrained(str(tmp_path / 'student' / 'best.pt'),
                                          device='cpu').predict(image).depth_m
    assert float(abs(mine / theirs - 1).mean()) < 0.1


def test_labels_come_from_folders_and_bags_split_in_blocks(tmp_path: Path,
                                                           teacher: Path) -> None:
    frames = write_frames(tmp_path / 'frames', 12, seed=5)
    (frames / 'broken.png').write_bytes(b'not a png')
    write_bag(tmp_path / 'bag', offsets=[0.0] * 25)
    estimator = DepthEstimator.from_pretrained(str(teacher), device='cpu')
    seen = []
    labels = label_frames(estimator, [str(frames), f'bag:{tmp_path / "bag"},image={TOPICS.image}'],
                          tmp_path / 'labels', holdout=0.5, progress=seen.append)
    assert (labels.frames, labels.unreadable, labels.per_domain) == (37, 1, {'indoor': 37})
    assert len(seen) == 37
    root = labels.folders['indoor']
    meta = yaml.safe_load((root / 'dataset.yaml').read_text())
    assert (meta['domain'], meta['name']) == ('indoor', 'teacher_indoor')
    test = (root / 'test.txt').read_text().split()
    # per source, frames 10-19 are held out: 2 from the folder (12 frames), 10 from the bag
    assert len(test) == 12 and all(stem.startswith(('00_', '01_')) for stem in test)
    depth = cv2.imread(str(root / 'depth' / f'{test[0]}.png'), cv2.IMREAD_UNCHANGED)
    assert depth.dtype.name == 'uint16' and depth.shape == (32, 48) and depth.min() > 0
    with pytest.raises(FileExistsError):
        label_frames(estimator, [str(frames)], tmp_path / 'labels')


def test_distill_config_needs_a_teacher_and_inputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='distill.teacher and distill.inputs'):
        tiny_config(tmp_path, 'distill', 1, distill={'teacher': 'x.pt'})
