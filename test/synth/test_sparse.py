"""Simulated sparse sensors (lidar16, tof) and the field-of-view option of ``zoedepth synth``,
read back from the written bags with the package's own readers."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from zoedepth_ros.anchoring import SparseSamples, values_at
from zoedepth_ros.cli.main import main
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.bag_reader import open_bag
from zoedepth_ros.io.messages import camera_info_fields, depth_image_from_msg, stamp_ns
from zoedepth_ros.pointcloud import cloud_xyz
from zoedepth_ros.synth import generate, iter_frames
from zoedepth_ros.synth.sensors import LIDAR, TOF
from zoedepth_ros.synth.writers import (
    DEPTH_TOPIC,
    FRAME_ID,
    INFO_TOPIC,
    LIDAR_TOPIC,
    RGB_TOPIC,
    SPARSE_METADATA_KEY,
    TOF_TOPIC,
    BagWriter,
)

ELEVATIONS_DEG = np.arange(-15.0, 16.0, 2.0)  # 16 beams
AZIMUTH_STEP_DEG = 0.2


def _read(path: Path) -> dict[str, list[tuple[int, bytes, Any]]]:
    """topic -> [(bag time, raw CDR, message)] in bag order."""
    topics: dict[str, list[tuple[int, bytes, Any]]] = defaultdict(list)
    with open_bag(path) as reader:
        for connection, time_ns, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            topics[connection.topic].append((time_ns, bytes(raw), message))
    return topics


def _frames(topics: dict[str, list[tuple[int, bytes, Any]]], sparse_topic: str):
    """Per frame: (camera, exact depth, sparse message), checking stamps and frame ids."""
    count = len(topics[RGB_TOPIC])
    assert count > 0 and all(len(topics[t]) == count for t in (INFO_TOPIC, DEPTH_TOPIC,
                                                               sparse_topic))
    for index in range(count):
        rgb, info, depth, sparse = (topics[t][index][2] for t in (RGB_TOPIC, INFO_TOPIC,
                                                                  DEPTH_TOPIC, sparse_topic))
        assert stamp_ns(sparse.header) == stamp_ns(rgb.header) == topics[sparse_topic][index][0]
        assert sparse.header.frame_id == rgb.header.frame_id == FRAME_ID
        yield camera_info_fields(info).camera, depth_image_from_msg(depth), sparse


def _expected_rays(camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """(beam, azimuth step) keys and (N, 3) z = 1 directions of the lidar rays that cross the
    image at least one pixel inside its border (derived here, independently of the package)."""
    steps = np.arange(-449, 450)
    azimuth = np.radians(steps * AZIMUTH_STEP_DEG)[:, None]
    elevation = np.radians(ELEVATIONS_DEG)[None, :]
    x = np.broadcast_to(np.tan(azimuth), (azimuth.size, elevation.size))
    y = -np.tan(elevation) / np.cos(azimuth)
    u, v = camera.fx * x + camera.cx, camera.fy * y + camera.cy
    inside = (u > 0.5) & (u < camera.width - 1.5) & (v > 0.5) & (v < camera.height - 1.5)
    beam, step = np.nonzero(inside.T)
    keys = np.stack([beam, steps[step]], axis=1)
    rays = np.stack([x.T[inside.T], y.T[inside.T], np.ones(len(keys))], axis=1)
    return keys, rays


@pytest.mark.parametrize('domain', ['indoor', 'outdoor'])
def test_lidar_points_lie_on_the_beams_at_the_exact_depth(tmp_path, domain: str) -> None:
    generate(domain, 3, (64, 48), seed=4, output=tmp_path / 'bag', fmt='bag',
             frames_per_scene=3, sparse='lidar16')
    model = LIDAR[domain]
    sigma, max_range = model.range_sigma_m, model.max_range_m
    assert (sigma, max_range) == ((0.02, 10.0) if domain == 'indoor' else (0.05, 80.0))
    expected_total = dropped = 0
    errors = []
    for camera, depth, cloud in _frames(_read(tmp_path / 'bag'), LIDAR_TOPIC):
        assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
            ('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1)]
        assert (cloud.height, cloud.point_step, cloud.is_dense) == (1, 12, True)
        points = cloud_xyz(cloud)
        assert len(points) == cloud.width > 1000
        # Every point projects into the image (the anchoring's own projection) onto a pixel
        # of valid exact depth, and its z is that depth within the range noise.
        samples = SparseSamples.from_points(points, camera)
        assert len(samples) == len(points)
        exact = values_at(depth, samples)
        assert np.isfinite(exact).all()
        errors.append(samples.z - exact)
        assert np.linalg.norm(points, axis=1).max() <= max_range + 1e-4
        # Beams on their elevations, firings on the 0.2 degree azimuth grid.
        elevation = np.degrees(np.arctan2(-points[:, 1], np.hypot(points[:, 0], points[:, 2])))
        beam = np.rint((elevation + 15.0) / 2.0).astype(int)
        assert np.abs(elevation - ELEVATIONS_DEG[beam]).max() < 1e-3
        assert set(beam) == set(range(16))
        step = np.degrees(np.arctan2(points[:, 0], points[:, 2])) / AZIMUTH_STEP_DEG
        assert np.abs(step - np.rint(step)).max() < 1e-3
        # Dropouts: rays with a valid return well inside the range that brought no point.
        keys, rays = _expected_rays(camera)
        rows = np.floor(camera.fy * rays[:, 1] + camera.cy + 0.5).astype(int)
        cols = np.floor(camera.fx * rays[:, 0] + camera.cx + 0.5).astype(int)
        ray_range = depth[rows, cols] * np.linalg.norm(rays, axis=1)
        returns = keys[np.nan_to_num(ray_range, nan=np.inf) < 0.9 * max_range]
        found = {(b, s) for b, s in zip(beam, np.rint(step).astype(int))}
        expected_total += len(returns)
        dropped += sum((int(b), int(s)) not in found for b, s in returns)
        if domain == 'outdoor':  # sky in view: rays without a return that are not dropouts
            assert np.isnan(ray_range).any()
    error = np.concatenate(errors)
    assert (np.abs(error) < 5 * sigma).mean() > 0.99
    assert 0.7 * sigma < error.std() < 1.05 * sigma  # z noise: sigma / |ray|, |ray| in [1, 1.3]
    assert abs(float(error.mean())) < 0.1 * sigma
    assert expected_total > 5000
    assert 0.07 < dropped / expected_total < 0.13


def test_tof_samples_on_the_grid_within_range_and_noise(tmp_path) -> None:
    generate('indoor', 6, (160, 120), seed=2, output=tmp_path / 'bag', fmt='bag',
             frames_per_scene=3, sparse='tof')
    step = TOF.grid_step
    assert (step, TOF.relative_sigma, TOF.dropout, TOF.max_range_m) == (8, 0.01, 0.1, 5.0)
    eligible = missing = 0
    relative = []
    for camera, depth, image in _frames(_read(tmp_path / 'bag'), TOF_TOPIC):
        assert (image.encoding, image.height, image.width) == ('32FC1', 120, 160)
        tof = np.frombuffer(bytes(image.data), dtype='<f4').reshape(120, 160)
        grid = np.zeros(tof.shape, dtype=bool)
        grid[step // 2::step, step // 2::step] = True
        assert np.isnan(tof[~grid]).all()
        sampled = np.isfinite(tof)
        assert np.isfinite(depth[sampled]).all() and (tof[sampled] > 0).all()
        x = (np.arange(160) - camera.cx) / camera.fx
        y = (np.arange(120) - camera.cy) / camera.fy
        length = np.sqrt(1.0 + x[None, :] ** 2 + y[:, None] ** 2)
        assert (tof[sampled] * length[sampled]).max() <= 5.0  # radial distance: ToF range
        relative.append(tof[sampled] / depth[sampled] - 1.0)
        near = grid & (np.nan_to_num(depth * length, nan=np.inf) < 4.5)
        eligible += int(near.sum())
        missing += int((near & ~sampled).sum())
    relative_error = np.concatenate(relative)
    assert len(relative_error) > 500
    assert (np.abs(relative_error) < 0.05).all()  # 5 sigma
    assert 0.008 < relative_error.std() < 0.012
    assert 0.05 < missing / eligible < 0.15, (missing, eligible)


def test_same_seed_same_messages_any_workers_and_unchanged_camera_topics(tmp_path) -> None:
    options = dict(size=(48, 32), output=None, fmt='bag', frames_per_scene=1)
    bags = {}
    for name, seed, sparse, workers in (('a', 7, 'lidar16', 1), ('b', 7, 'lidar16', 2),
                                        ('other', 8, 'lidar16', 1), ('plain', 7, 'none', 1)):
        options.update(output=tmp_path / name, sparse=sparse, workers=workers)
        generate('outdoor', 2, seed=seed, **options)
        bags[name] = _read(tmp_path / name)
    a, b = bags['a'], bags['b']
    assert sorted(a) == sorted([RGB_TOPIC, INFO_TOPIC, DEPTH_TOPIC, LIDAR_TOPIC])
    for topic in a:
        assert [m[:2] for m in a[topic]] == [m[:2] for m in b[topic]]  # time and bytes
    assert [m[1] for m in a[LIDAR_TOPIC]] != [m[1] for m in bags['other'][LIDAR_TOPIC]]
    for topic in (RGB_TOPIC, INFO_TOPIC, DEPTH_TOPIC):  # the sensor changes no image
        assert [m[:2] for m in a[topic]] == [m[:2] for m in bags['plain'][topic]]
    first = [f.sparse for f in iter_frames('indoor', 2, (48, 32), seed=3, sparse='tof')]
    again = [f.sparse for f in iter_frames('indoor', 2, (48, 32), seed=3, sparse='tof')]
    for one, two in zip(first, again):
        np.testing.assert_array_equal(one, two)


def test_sensor_parameters_in_the_bag_metadata(tmp_path) -> None:
    generate('outdoor', 1, (32, 24), output=tmp_path / 'bag', fmt='bag', sparse='lidar16')
    metadata = yaml.safe_load((tmp_path / 'bag' / 'metadata.yaml').read_text())
    sensor = json.loads(metadata['rosbag2_bagfile_information']['custom_data'][
        SPARSE_METADATA_KEY])
    assert sensor == {'topic': LIDAR_TOPIC, 'frame_id': FRAME_ID, 'sensor': 'lidar16',
                      'elevations_deg': ELEVATIONS_DEG.tolist(), 'azimuth_step_deg': 0.2,
                      'range_sigma_m': 0.05, 'dropout': 0.1, 'max_range_m': 80.0}


def test_an_empty_scan_is_a_valid_cloud(tmp_path) -> None:
    camera = PinholeCamera.from_fov(8, 8, 60.0)
    writer = BagWriter(tmp_path / 'bag', camera, sparse='lidar16', domain='outdoor')
    writer.write('x', np.zeros((8, 8, 3), np.uint8), np.full((8, 8), np.nan), stamp_ns=5)
    writer.write_sparse(np.zeros((0, 3), np.float32), 5)  # all sky
    writer.close()
    (_, _, cloud), = _read(tmp_path / 'bag')[LIDAR_TOPIC]
    assert cloud.width == 0 and cloud_xyz(cloud).shape == (0, 3)


def test_cli_hfov_sets_the_intrinsics_and_the_lidar_follows(tmp_path) -> None:
    width, height = 64, 48
    fx = (width / 2) / math.tan(math.radians(45.0))
    assert main(['synth', '--domain', 'indoor', '--count', '2', '--size', '64x48',
                 '--format', 'bag', '--sparse', 'lidar16', '--hfov', '90',
                 '--output', str(tmp_path / 'bag')]) == 0
    for camera, _, cloud in _frames(_read(tmp_path / 'bag'), LIDAR_TOPIC):
        assert (camera.fx, camera.fy) == (pytest.approx(fx), pytest.approx(fx))
        assert (camera.cx, camera.cy, camera.width, camera.height) == (31.5, 23.5, 64, 48)
        points = cloud_xyz(cloud)
        azimuth = np.degrees(np.abs(np.arctan2(points[:, 0], points[:, 2])))
        assert 44.0 < azimuth.max() < 45.0  # the lidar sees what the 90 degree camera sees
    assert main(['synth', '--domain', 'outdoor', '--count', '1', '--size', '64x48',
                 '--hfov', '90', '--output', str(tmp_path / 'folder')]) == 0
    meta = yaml.safe_load((tmp_path / 'folder' / 'dataset.yaml').read_text())
    assert meta['camera'] == {'fx': pytest.approx(fx), 'fy': pytest.approx(fx), 'cx': 31.5,
                              'cy': 23.5, 'width': width, 'height': height}


@pytest.mark.parametrize('argv, message', [
    (['--sparse', 'tof'], 'written to bags only'),
    (['--format', 'bag', '--hfov', '180'], 'field of view must be in'),
])
def test_cli_usage_errors(tmp_path, caplog, argv: list[str], message: str) -> None:
    output = tmp_path / 'out'
    assert main(['synth', '--count', '1', '--size', '32x24', '--output', str(output)]
                + argv) == 2
    assert message in caplog.text
    assert not output.exists() and list(tmp_path.iterdir()) == []
