"""Dataset adapters on tiny fixtures written in each dataset's on-disk layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from bag_fixtures import BASE_NS, PERIOD_NS, TOPICS, gt_depth, write_bag

from zoedepth_ros.data.bag_dataset import RosbagRGBD
from zoedepth_ros.data.datasets import (
    DIODE,
    GenericFolder,
    KITTIEigen,
    NYUDepthV2,
    build_dataset,
    open_dataset,
)
from zoedepth_ros.errors import BagError, InputError


def _rgb(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[..., ::-1])


def _write_u16(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), values.astype(np.uint16))


def _mm(height: int, width: int, seed: int) -> np.ndarray:
    values = np.random.default_rng(seed).integers(500, 12000, (height, width))
    values[0, :5] = 0  # missing ground truth
    return values


def test_nyu_train_and_test_layouts(tmp_path: Path) -> None:
    sync, test_root = tmp_path / 'nyu' / 'sync', tmp_path / 'nyu' / 'official_splits' / 'test'
    depth = _mm(480, 640, 0)
    rows, columns = np.mgrid[0:480, 0:640]
    rgb = np.stack([columns * 255 // 639, rows * 255 // 479, np.full_like(rows, 30)],
                   axis=-1).astype(np.uint8)  # smooth, so JPEG keeps it close
    for root, scene in ((sync, 'kitchen_0028b'), (test_root, 'bathroom')):
        _write_rgb(root / scene / 'rgb_00045.jpg', rgb)
        _write_u16(root / scene / 'sync_depth_00045.png', depth)
    train_list = tmp_path / 'nyudepthv2_train_files_with_gt.txt'
    train_list.write_text('/kitchen_0028b/rgb_00045.jpg /kitchen_0028b/sync_depth_00045.png '
                          '518.8579\n')
    test_list = tmp_path / 'nyudepthv2_test_files_with_gt.txt'
    test_list.write_text('bathroom/rgb_00045.jpg bathroom/sync_depth_00045.png 518.8579\n')
    for dataset in (NYUDepthV2(sync, train_list), NYUDepthV2(test_root, test_list),
                    NYUDepthV2(test_root)):  # no list: scan rgb_*.jpg + sync_depth_*.png
        assert len(dataset) == 1
        sample = dataset[0]
        assert sample['image'].shape == (3, 480, 640) and sample['image'].dtype == torch.float32
        expected = depth / 1000.0
        np.testing.assert_allclose(sample['depth'][0].numpy(), expected, rtol=1e-6)
        np.testing.assert_array_equal(sample['mask'][0].numpy(), (expected > 1e-3) &
                                      (expected < 10.0))
        assert np.abs(sample['image'].numpy().transpose(1, 2, 0) * 255 - rgb).mean() < 2.0
        assert (sample['domain'], sample['dataset']) == ('indoor', 'nyu')
        assert dataset.info.eval_crop == 'eigen' and dataset.info.max_depth_m == 10.0
    assert NYUDepthV2(sync, train_list)[0]['stem'] == 'kitchen_0028b/rgb_00045'
    assert NYUDepthV2(sync, train_list).camera(0).fx == pytest.approx(518.8579)


def test_nyu_errors_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match='is not a directory'):
        NYUDepthV2(tmp_path / 'nope')
    listing = tmp_path / 'list.txt'
    listing.write_text('/a/rgb_00001.jpg /a/sync_depth_00001.png 518.8579\n')
    with pytest.raises(InputError, match=r'2 of 2 files listed in .*list.txt are missing'):
        NYUDepthV2(tmp_path, listing)
    with pytest.raises(InputError, match='split file .* not found'):
        NYUDepthV2(tmp_path, tmp_path / 'absent.txt')


def test_kitti_eigen_kb_crop_and_none_lines(tmp_path: Path) -> None:
    raw, gts = tmp_path / 'raw', tmp_path / 'gts'
    rgb = _rgb(375, 1242, 1)
    depth = np.random.default_rng(1).integers(0, 80 * 256, (375, 1242))
    drive = '2011_09_26_drive_0002_sync'
    _write_rgb(raw / '2011_09_26' / drive / 'image_02' / 'data' / '0000000069.png', rgb)
    _write_rgb(raw / '2011_09_26' / drive / 'image_02' / 'data' / '0000000070.png', rgb)
    _write_u16(gts / drive / 'proj_depth' / 'groundtruth' / 'image_02' / '0000000069.png',
               depth)
    listing = tmp_path / 'eigen_test_files_with_gt.txt'
    listing.write_text(
        f'2011_09_26/{drive}/image_02/data/0000000069.png '
        f'{drive}/proj_depth/groundtruth/image_02/0000000069.png 721.5377\n'
        f'2011_09_26/{drive}/image_02/data/0000000070.png None 721.5377\n')
    dataset = KITTIEigen(raw, listing, depth_root=gts)
    assert len(dataset) == 1 and dataset.skipped == 1
    sample = dataset[0]
    assert sample['image'].shape == (3, 352, 1216)
    top, left = 375 - 352, (1242 - 1216) // 2
    np.testing.assert_allclose(sample['depth'][0].numpy(),
                               depth[top:, left:left + 1216] / 256.0, rtol=1e-6)
    np.testing.assert_array_equal((sample['image'].numpy().transpose(1, 2, 0) * 255).round(),
                                  rgb[top:, left:left + 1216])
    assert dataset.info.eval_crop == 'garg' and dataset.info.max_depth_m == 80.0
    assert KITTIEigen(raw, listing).depth_root == gts  # kitti/raw + kitti/gts found
    with pytest.raises(InputError, match='missing, e.g. .*0000000069.png'):
        KITTIEigen(raw, listing, depth_root=raw)


def test_diode_indoor_and_outdoor(tmp_path: Path) -> None:
    for domain, folder in (('indoor', 'indoors'), ('outdoor', 'outdoor')):
        scan = tmp_path / 'val' / folder / 'scene_00019' / 'scan_00183'
        stem = f'00019_00183_{folder}_000_010'
        rgb = _rgb(24, 32, 2)
        depth = np.random.default_rng(2).uniform(0.5, 50.0, (24, 32, 1)).astype(np.float32)
        mask = np.ones((24, 32), dtype=np.float32)
        mask[:3] = 0
        _write_rgb(scan / f'{stem}.png', rgb)
        np.save(scan / f'{stem}_depth.npy', depth)
        np.save(scan / f'{stem}_depth_mask.npy', mask)
        dataset = DIODE(tmp_path / 'val', domain)
        sample = dataset[0]
        expected = np.where(mask > 0, depth[..., 0], 0.0)
        np.testing.assert_allclose(sample['depth'][0].numpy(), expected)
        limit = 10.0 if domain == 'indoor' else 80.0
        np.testing.assert_array_equal(sample['mask'][0].numpy(), (expected > 1e-3) &
                                      (expected < limit))
        assert sample['dataset'] == f'diode_{domain}' and sample['stem'] == stem
        assert dataset.info.eval_crop == ('eigen' if domain == 'indoor' else 'garg')
        (scan / f'{stem}_depth_mask.npy').unlink()
        with pytest.raises(InputError, match='_depth_mask.npy'):
            DIODE(tmp_path / 'val', domain)


def _generic(root: Path, **meta: object) -> None:
    (root / 'rgb').mkdir(parents=True)
    (root / 'depth').mkdir()
    _write_rgb(root / 'rgb' / 'a.png', _rgb(12, 16, 3))
    _write_u16(root / 'depth' / 'a.png', _mm(12, 16, 3))
    _write_rgb(root / 'rgb' / 'b.jpg', _rgb(12, 16, 4))
    depth = np.full((12, 16), 40.0, dtype=np.float32)
    depth[0, 0], depth[0, 1] = np.nan, np.inf
    np.save(root / 'depth' / 'b.npy', depth)
    (root / 'test.txt').write_text('b\n')
    (root / 'dataset.yaml').write_text(yaml.safe_dump(meta))


def test_generic_folder_png_npy_split_and_errors(tmp_path: Path) -> None:
    root = tmp_path / 'mine'
    _generic(root, domain='outdoor', depth_scale=0.002, max_depth=80.0,
             camera={'fx': 10.0, 'fy': 11.0, 'cx': 7.5, 'cy': 5.5, 'width': 16, 'height': 12})
    dataset = GenericFolder(root)
    assert len(dataset) == 2 and dataset.info.name == 'mine' and dataset.info.eval_crop is None
    np.testing.assert_allclose(dataset[0]['depth'][0].numpy(), _mm(12, 16, 3) * 0.002,
                               rtol=1e-6)
    b = dataset[1]
    assert b['depth'][0, 0, 0] == 0 and b['depth'][0, 0, 1] == 0 and b['depth'][0, 5, 5] == 40
    assert not b['mask'][0, 0, :2].any() and b['mask'][0, 1:].all()
    assert dataset.camera(0).fy == 11.0
    assert [s['stem'] for s in GenericFolder(root, split='test')] == ['b']
    assert len(build_dataset('folder', root, split='test')) == 1
    with pytest.raises(InputError, match='train.txt not found'):
        GenericFolder(root, split='train')
    (root / 'depth' / 'b.npy').unlink()
    with pytest.raises(InputError, match=r'missing depth/b with one of'):
        GenericFolder(root)
    bad = tmp_path / 'bad'
    _generic(bad, domain='indoor', depth_scale=0.001, colour='red')
    with pytest.raises(InputError, match="unknown keys \\['colour'\\]"):
        GenericFolder(bad)
    with pytest.raises(InputError, match='dataset.yaml not found'):
        GenericFolder(tmp_path)


def _write_bag(path: Path, storage: str) -> list[int]:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    types = store.types
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    stamps = [1_000_000_000 + k * 100_000_000 for k in range(4)]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        rgb_c = writer.add_connection('/rgb', 'sensor_msgs/msg/Image', typestore=store)
        depth_c = writer.add_connection('/depth', 'sensor_msgs/msg/Image', typestore=store)
        info_c = writer.add_connection('/info', 'sensor_msgs/msg/CameraInfo', typestore=store)
        png_c = writer.add_connection('/png', 'sensor_msgs/msg/CompressedImage',
                                      typestore=store)
        for k, stamp in enumerate(stamps):
            def header(ns: int) -> object:
                time = types['builtin_interfaces/msg/Time'](sec=ns // 10**9, nanosec=ns % 10**9)
                return types['std_msgs/msg/Header'](stamp=time, frame_id='cam')
            bgr = np.full((6, 8, 3), (10 * k, 100, 200), dtype=np.uint8)
            depth_ns = stamp + (5_000_000 if k != 3 else 60_000_000)  # frame 3: too far
            mm = np.full((6, 8), 1000 * (k + 1), dtype=np.uint16)
            mm[0, 0] = 0
            messages = [
                (rgb_c, stamp, types['sensor_msgs/msg/Image'](
                    header=header(stamp), height=6, width=8, encoding='bgr8', is_bigendian=0,
                    step=24, data=bgr.reshape(-1))),
                (depth_c, depth_ns, types['sensor_msgs/msg/Image'](
                    header=header(depth_ns), height=6, width=8, encoding='16UC1',
                    is_bigendian=0, step=16, data=mm.view(np.uint8).reshape(-1))),
                (info_c, stamp, types['sensor_msgs/msg/CameraInfo'](
                    header=header(stamp), height=6, width=8, distortion_model='plumb_bob',
                    d=np.zeros(5), k=np.array([5.0, 0, 3.5, 0, 6.0, 2.5, 0, 0, 1]),
                    r=np.eye(3).reshape(-1), p=np.array([5.0, 0, 3.5, 0, 0, 6.0, 2.5, 0, 0, 0,
                                                         1, 0]),
                    binning_x=0, binning_y=0, roi=types['sensor_msgs/msg/RegionOfInterest'](
                        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))),
            ]
            encoded = cv2.imencode('.png', bgr)[1].reshape(-1)
            messages.append((png_c, stamp, types['sensor_msgs/msg/CompressedImage'](
                header=header(stamp), format='png', data=encoded)))
            for connection, bag_time, message in messages:
                writer.write(connection, bag_time, store.serialize_cdr(message,
                                                                       message.__msgtype__))
    return stamps


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_rosbag_pairs_by_stamp_within_tolerance(tmp_path: Path, storage: str) -> None:
    stamps = _write_bag(tmp_path / 'bag', storage)
    dataset = RosbagRGBD(tmp_path / 'bag', rgb_topic='/rgb', depth_topic='/depth',
                         info_topic='/info', tolerance_s=0.01)
    assert len(dataset) == 3  # the fourth depth frame is 60 ms off
    assert [dataset.stamp_ns(i) for i in range(3)] == stamps[:3]
    sample = dataset[1]
    assert sample['stem'] == str(stamps[1])
    pixel = (sample['image'][:, 2, 3] * 255).round().tolist()
    assert pixel == [200, 100, 10]  # bgr8 decoded to RGB
    assert sample['depth'][0, 2, 3] == pytest.approx(2.0) and sample['depth'][0, 0, 0] == 0
    assert not sample['mask'][0, 0, 0] and sample['mask'][0, 1:].all()
    camera = dataset.camera(0)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (5.0, 6.0, 3.5, 2.5)
    assert len(RosbagRGBD(tmp_path / 'bag', rgb_topic='/rgb', depth_topic='/depth',
                          info_topic='/info', tolerance_s=0.1)) == 4
    compressed = RosbagRGBD(tmp_path / 'bag', rgb_topic='/png', depth_topic='/depth',
                            info_topic=None, tolerance_s=0.01)
    assert compressed.camera(0) is None
    torch.testing.assert_close(compressed[1]['image'], sample['image'])
    with pytest.raises(BagError, match=r"has no topic '/camera/image_raw'; it has: /depth"):
        RosbagRGBD(tmp_path / 'bag')
    with pytest.raises(InputError, match='rosbag .* not found'):
        RosbagRGBD(tmp_path / 'missing')


def test_dataset_exposes_domain_and_range_attributes(tmp_path: Path) -> None:
    root = tmp_path / 'mine'
    _generic(root, domain='outdoor', depth_scale=0.001, min_depth=0.5, max_depth=60.0)
    dataset = GenericFolder(root)
    assert (dataset.domain, dataset.min_depth, dataset.max_depth) == ('outdoor', 0.5, 60.0)


def test_open_dataset_specs_bag_holdout_and_disparity_folders(tmp_path: Path) -> None:
    write_bag(tmp_path / 'bag', offsets=[0.0] * 30)
    spec = (f'bag:{tmp_path / "bag"},image={TOPICS.image},depth={TOPICS.depth},'
            f'info={TOPICS.camera_info},domain=outdoor,max_depth=50,holdout=0.5,name=yard')
    train, test = open_dataset(spec, 'train'), open_dataset(spec, 'test')
    # blocks of 10 consecutive frames: 0-9 train, 10-19 held out, 20-29 train
    assert (len(train), len(test)) == (20, 10)
    held = {test.stamp_ns(i) for i in range(len(test))}
    assert held == {BASE_NS + k * PERIOD_NS for k in range(10, 20)}
    assert not held & {train.stamp_ns(i) for i in range(len(train))}
    assert (train.domain, train.max_depth, train.info.name) == ('outdoor', 50.0, 'yard')
    sample = train[12]
    np.testing.assert_allclose(sample['depth'][0, 5:].numpy(), gt_depth(22)[5:], rtol=1e-6)
    assert len(open_dataset(spec.replace(',holdout=0.5', ''), 'test')) == 30
    with pytest.raises(InputError, match=r"'colour=x' is not one of"):
        open_dataset(f'bag:{tmp_path / "bag"},colour=x')
    with pytest.raises(InputError, match='max_depth needs a number'):
        open_dataset(f'bag:{tmp_path / "bag"},max_depth=far')

    root = tmp_path / 'relative'
    _generic(root, domain='indoor', depth_scale=0.01, depth_kind='disparity')
    folder = open_dataset(str(root), 'test')
    sample = folder[0]
    # disparity is not range-gated like metres (40 is beyond indoor's 10 m): any finite
    # positive value is valid
    assert sample['disparity'] and folder.info.depth_kind == 'disparity'
    assert not sample['mask'][0, 0, :2].any() and sample['mask'][0, 1:].all()
    assert float(sample['depth'][0, 5, 5]) == 40.0
    bad = tmp_path / 'bad_kind'
    _generic(bad, domain='indoor', depth_scale=0.01, depth_kind='inverse')
    with pytest.raises(InputError, match="depth_kind 'inverse'"):
        open_dataset(str(bad))
