"""bag eval with several cameras of one bag: one report per camera, the pooled one, each
camera's outputs in its namespace of the output bag, the originals copied once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from doubles import null_estimator

from zoedepth_ros.cli.main import main
from zoedepth_ros.errors import ConfigError
from zoedepth_ros.evaluation.cameras import CameraTopics, check_cameras, parse_camera
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.bag_reader import open_bag
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.messages import camera_info_from_camera, encode_depth, image_fields

FRAMES = {'front': 5, 'rear': 3}
TRUTH_M = {'front': 2.0, 'rear': 4.0}
"""Ground truth per camera: the null model predicts 2 m, so front is exact and rear off by
half (REL 0.5)."""


def two_camera_bag(path: Path) -> None:
    rng = np.random.default_rng(0)
    info = camera_info_from_camera(PinholeCamera.from_fov(32, 24, 60.0))
    with AtomicBagWriter(path, 'mcap') as bag:
        for camera, count in FRAMES.items():
            for index in range(count):
                stamp = 1_700_000_000_000_000_000 + index * 100_000_000
                header = bag.header(stamp, f'{camera}_optical_frame')
                rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
                bag.write(f'/{camera}/image_raw', bag.image(image_fields(rgb, 'rgb8'), header),
                          stamp)
                bag.write(f'/{camera}/camera_info', bag.camera_info(info, header), stamp)
                depth = np.full((24, 32), TRUTH_M[camera], np.float32)
                bag.write(f'/{camera}/depth', bag.image(encode_depth(depth), header), stamp)


def test_each_camera_its_table_the_pooled_one_and_its_outputs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    caplog.set_level('INFO')
    two_camera_bag(tmp_path / 'bag')
    monkeypatch.setattr('zoedepth_ros.cli.bag_eval.build_estimator',
                        lambda args: null_estimator(preset='zoedepth_tiny_nk', depth_m=2.0))
    out = tmp_path / 'report'
    code = main(['bag', 'eval', str(tmp_path / 'bag'), '-o', str(out), '--max-depth', '10.0',
                 '--camera', 'front=/front/image_raw,depth=/front/depth',
                 '--camera', 'rear=/rear/image_raw,depth=/rear/depth,info=/rear/camera_info',
                 '--out-bag', str(tmp_path / 'pred'), '--samples', '1'])
    assert code == 0, caplog.text
    pooled = json.loads((out / 'metrics.json').read_text())
    cameras = pooled['per_camera']
    assert (cameras['front']['evaluated'], cameras['rear']['evaluated']) == (5, 3)
    assert cameras['front']['abs_rel'] == pytest.approx(0.0, abs=1e-6)
    assert cameras['rear']['abs_rel'] == pytest.approx(0.5, abs=1e-6)
    assert pooled['overall']['frames'] == 8
    assert pooled['overall']['abs_rel'] == pytest.approx((5 * 0.0 + 3 * 0.5) / 8, abs=1e-6)
    for camera in FRAMES:  # each camera's full report in its own folder, its own camera_info
        own = json.loads((out / camera / 'metrics.json').read_text())
        assert own['evaluated'] == FRAMES[camera]
        assert own['camera']['camera_info_topic'] == f'/{camera}/camera_info'
        assert (out / camera / 'report.md').exists()
    text = (out / 'report.md').read_text()
    assert '[front](front/report.md) | 5 | 5 |' in text and '| overall | 8 |' in text
    with open_bag(tmp_path / 'pred') as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    for camera, count in FRAMES.items():
        assert counts[f'/{camera}/image_raw'] == count  # copied once
        assert counts[f'/zoedepth/{camera}/depth/image'] == count
        assert counts[f'/zoedepth/{camera}/depth/camera_info'] == count
    assert 'all cameras: delta1' in caplog.text


@pytest.mark.parametrize('text, message', [
    ('front', 'expected NAME=/image/topic first'),
    ('9x=/a', "'9x' is not a camera name"),
    ('a=/a,dept=/b', "'dept=/b' is not depth=, info= or sparse="),
])
def test_a_bad_camera_is_a_usage_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_camera(text)


def test_cameras_need_distinct_names_and_images(tmp_path: Path) -> None:
    assert parse_camera('a=/a/image,info=/a/info,sparse=/a/tof') == CameraTopics(
        'a', '/a/image', None, '/a/info', '/a/tof')
    with pytest.raises(ConfigError, match='name a given twice'):
        check_cameras([parse_camera('a=/x'), parse_camera('a=/y')])
    with pytest.raises(ConfigError, match='image topic /x given twice'):
        check_cameras([parse_camera('a=/x'), parse_camera('b=/x')])
    assert main(['bag', 'eval', str(tmp_path), '-o', str(tmp_path / 'o'), '--camera',
                 'front']) == 2
