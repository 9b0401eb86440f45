"""Synthetic scene generator: exact depth, projection, sky, determinism, folder and bag output."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from zoedepth_ros.data.bag_dataset import RosbagRGBD
from zoedepth_ros.data.datasets import GenericFolder
from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.synth import camera_for, generate, iter_frames
from zoedepth_ros.synth.render import Renderer
from zoedepth_ros.synth.scenes import CameraPose, Lights, Material, SceneBuilder

CAMERA = PinholeCamera(50.0, 55.0, 31.5, 23.25, 64, 48)


def _lights() -> Lights:
    return Lights(ambient=np.full(3, 0.3), point_positions=np.zeros((0, 3)),
                  point_colors=np.zeros((0, 3)), sun_direction=np.array([0.0, 0.6, 0.8]),
                  shadows=True)


def _render(builder: SceneBuilder, pose: CameraPose, max_depth_m: float = 80.0,
            sky: bool = True) -> tuple[np.ndarray, np.ndarray]:
    grey = np.full(3, 0.5)
    scene = builder.build(_lights(), sky_horizon=grey if sky else None,
                          sky_zenith=grey if sky else None, max_depth_m=max_depth_m,
                          domain='outdoor')
    return Renderer(scene, CAMERA).render(pose, np.random.default_rng(0))


def _rays(yaw: float) -> np.ndarray:
    """(H, W, 3) world directions with camera z = 1 for a level camera turned by ``yaw``."""
    u = (np.arange(CAMERA.width) - CAMERA.cx) / CAMERA.fx
    v = (np.arange(CAMERA.height) - CAMERA.cy) / CAMERA.fy
    camera_rays = np.stack(np.broadcast_arrays(u[None, :], v[:, None], 1.0), axis=-1)
    return camera_rays @ CameraPose.from_yaw_pitch_roll(np.zeros(3), yaw, 0.0).rotation.T


def test_wall_depth_is_z_not_ray_length() -> None:
    builder = SceneBuilder()
    builder.box((5.0, -50.0, -50.0), (6.0, 50.0, 50.0), builder.material(
        Material((0.5, 0.5, 0.5), (0.2, 0.2, 0.2))))
    _, facing = _render(builder, CameraPose.from_yaw_pitch_roll(np.zeros(3), 0.0, 0.0))
    np.testing.assert_allclose(facing, 5.0, atol=1e-5)  # every pixel, also at the corners
    yaw = 0.3
    _, turned = _render(builder, CameraPose.from_yaw_pitch_roll(np.zeros(3), yaw, 0.0))
    rays = _rays(yaw)
    expected = 5.0 / rays[..., 0]  # the camera z of the point where the ray meets x = 5
    np.testing.assert_allclose(turned, expected, rtol=1e-6)
    ray_length = expected * np.linalg.norm(rays, axis=-1)
    assert np.abs(turned - ray_length).max() > 0.5


def test_known_point_projects_where_the_intrinsics_say() -> None:
    pose = CameraPose.look_at(np.array([0.0, 0.0, 1.5]), np.array([10.0, 2.0, 1.0]))
    point = np.array([6.0, 1.7, 0.9])
    x, y, z = pose.world_to_camera(point[None])[0]
    u, v = CAMERA.fx * x / z + CAMERA.cx, CAMERA.fy * y / z + CAMERA.cy
    builder = SceneBuilder()
    builder.box((30.0, -50.0, -50.0), (31.0, 50.0, 50.0), builder.material(
        Material((0.5, 0.5, 0.5), (0.2, 0.2, 0.2))))
    radius = 0.25
    builder.sphere(tuple(point), radius, builder.material(Material((1, 1, 1), (1, 1, 1))),
                   subdivisions=3)
    _, depth = _render(builder, pose)
    near = np.argwhere(depth < 20.0)
    area = math.pi * (CAMERA.fx * radius / z) * (CAMERA.fy * radius / z)  # ~15 pixels
    assert 0.6 * area < len(near) < 1.5 * area
    row, column = near.mean(axis=0)
    assert abs(column - u) < 0.5 and abs(row - v) < 0.5
    assert depth[int(round(v)), int(round(u))] == pytest.approx(z - radius, abs=0.03)


def test_ground_plane_depth_sky_and_range_limit() -> None:
    height_m = 1.5
    builder = SceneBuilder()
    builder.box((-10.0, -500.0, -1.0), (1000.0, 500.0, 0.0), builder.material(
        Material((0.4, 0.4, 0.4), (0.3, 0.3, 0.3))))
    _, depth = _render(builder, CameraPose.from_yaw_pitch_roll(
        np.array([0.0, 0.0, height_m]), 0.0, 0.0), max_depth_m=20.0)
    rows = np.arange(CAMERA.height) - CAMERA.cy
    expected = np.where(rows > 0, height_m * CAMERA.fy / np.where(rows > 0, rows, 1), np.inf)
    expected = np.where(expected < 20.0, expected, np.nan)[:, None].repeat(CAMERA.width, 1)
    np.testing.assert_allclose(depth, expected, rtol=1e-5)  # NaN where expected is NaN
    assert np.isnan(depth[:24]).all()  # the sky and the ground beyond 20 m are invalid


def test_generated_frames_are_deterministic_and_in_range() -> None:
    first = list(iter_frames('outdoor', 3, (48, 32), seed=5, frames_per_scene=2))
    again = list(iter_frames('outdoor', 3, (48, 32), seed=5, frames_per_scene=2))
    other = next(iter_frames('outdoor', 1, (48, 32), seed=6))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth_m, b.depth_m)
    assert not np.array_equal(first[0].depth_m, other.depth_m, equal_nan=True)
    assert [f.scene_index for f in first] == [0, 0, 1]
    assert first[1].stamp_ns - first[0].stamp_ns == 100_000_000
    indoor = next(iter_frames('indoor', 1, (48, 32), seed=0))
    assert np.isfinite(indoor.depth_m).mean() > 0.95  # a closed room: almost all valid
    assert 0.2 < np.nanmin(indoor.depth_m) and np.nanmax(indoor.depth_m) < 10.0
    outdoor = [f.depth_m for f in iter_frames('outdoor', 4, (48, 32), seed=1)]
    assert all(np.isnan(d[0]).any() for d in outdoor)  # sky in the top row
    assert max(np.nanmax(d) for d in outdoor) < 80.0


def test_parallel_workers_give_the_same_frames() -> None:
    serial = list(iter_frames('indoor', 5, (32, 24), seed=9, frames_per_scene=2))
    parallel = list(iter_frames('indoor', 5, (32, 24), seed=9, frames_per_scene=2, workers=2))
    assert [f.stem for f in parallel] == [f.stem for f in serial]
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth_m, b.depth_m)


def test_views_of_one_scene_differ_photometrically_and_geometrically() -> None:
    a, b = iter_frames('indoor', 2, (48, 32), seed=3, frames_per_scene=2)
    assert a.rgb.std() > 5.0  # textured, shaded, not flat
    assert np.abs(a.rgb.astype(int) - b.rgb.astype(int)).mean() > 2.0
    assert np.linalg.norm(a.pose.position - b.pose.position) > 0.0


def test_folder_output_reads_back(tmp_path) -> None:
    summary = generate('both', 3, (40, 30), seed=2, output=tmp_path / 'synth',
                       frames_per_scene=1, test_fraction=0.5)
    assert summary.frames == 6 and summary.frames_per_s > 0
    for domain in ('indoor', 'outdoor'):
        root = tmp_path / 'synth' / domain
        meta = yaml.safe_load((root / 'dataset.yaml').read_text())
        assert meta['camera']['fx'] == pytest.approx(camera_for(domain, (40, 30)).fx)
        dataset = GenericFolder(root)
        frames = list(iter_frames(domain, 3, (40, 30), seed=2, frames_per_scene=1))
        assert len(dataset) == 3 and dataset.info.domain == domain
        assert (root / 'test.txt').read_text().split() == [frames[1].stem]
        for frame, index in zip(frames, range(3)):
            sample = dataset[index]
            np.testing.assert_array_equal(
                (sample['image'].numpy().transpose(1, 2, 0) * 255).round(), frame.rgb)
            truth = np.nan_to_num(frame.depth_m)
            np.testing.assert_allclose(sample['depth'][0].numpy(), truth,
                                       atol=meta['depth_scale'] / 2 + 1e-6)
    with pytest.raises(InputError, match='not empty'):
        generate('indoor', 1, (40, 30), output=tmp_path / 'synth')


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_bag_output_reads_back(tmp_path, storage: str) -> None:
    generate('outdoor', 4, (40, 30), seed=1, output=tmp_path / 'bag', fmt='bag',
             storage=storage)
    suffix = '.mcap' if storage == 'mcap' else '.db3'
    # Only the bag is left, its storage file named after the bag (no staging names).
    assert sorted(p.name for p in (tmp_path / 'bag').iterdir()) == ['bag' + suffix,
                                                                      'metadata.yaml']
    assert [p.name for p in tmp_path.iterdir()] == ['bag']
    dataset = RosbagRGBD(tmp_path / 'bag', domain='outdoor', tolerance_s=0.0)
    frames = list(iter_frames('outdoor', 4, (40, 30), seed=1, frames_per_scene=40))
    assert len(dataset) == 4
    assert [dataset.stamp_ns(i) for i in range(4)] == [f.stamp_ns for f in frames]
    assert dataset.camera(0) == camera_for('outdoor', (40, 30))
    sample = dataset[2]
    np.testing.assert_array_equal((sample['image'].numpy().transpose(1, 2, 0) * 255).round(),
                                  frames[2].rgb)
    np.testing.assert_array_equal(sample['depth'][0].numpy(), np.nan_to_num(frames[2].depth_m))
    moved = [np.linalg.norm(b.pose.position - a.pose.position) for a, b in zip(frames,
                                                                              frames[1:])]
    assert 0.0 < max(moved) < 1.0  # smooth motion between consecutive frames


def test_cli_writes_folder(tmp_path, capsys) -> None:
    from zoedepth_ros.cli import synth

    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    args = parser.parse_args(['--domain', 'indoor', '--count', '2', '--size', '32x24',
                              '--output', str(tmp_path / 'out')])
    assert synth.run(args) == 0
    assert len(list((tmp_path / 'out' / 'rgb').glob('*.png'))) == 2
    assert '2 32x24 frames (indoor)' in capsys.readouterr().out
    with pytest.raises(InputError, match='WIDTHxHEIGHT'):
        synth.parse_size('32by24')


def test_bundled_samples_load_and_match_the_generator() -> None:
    from importlib.resources import files

    root = Path(str(files('zoedepth_ros') / 'assets' / 'samples'))
    for domain in ('indoor', 'outdoor'):
        dataset = GenericFolder(root / domain, split='train')
        assert len(dataset) == 4 and dataset.info.domain == domain
        sample = dataset[0]
        assert sample['image'].shape == (3, 240, 320)
        valid = sample['mask'].float().mean()
        assert valid > (0.95 if domain == 'indoor' else 0.5)
    # the README's command (seed 2, one view per scene) reproduces them
    frame = next(iter_frames('outdoor', 1, (320, 240), seed=2, frames_per_scene=1))
    stored = GenericFolder(root / 'outdoor')[0]['depth'][0].numpy()
    same = np.abs(stored - np.nan_to_num(frame.depth_m)) <= 1.0 / 512 + 1e-6
    assert same.mean() > 0.99
