"""Datasets over standard RGB-D layouts, all returning the sample of :mod:`.base`.

Layouts: NYU Depth v2 and KITTI Eigen as in the BTS split files (``<rgb> <depth> <focal>``
per line, paths relative to the data roots), DIODE (``<stem>.png``, ``<stem>_depth.npy``,
``<stem>_depth_mask.npy``) and the generic RGB-D folder format (``dataset.yaml``, ``rgb/``,
``depth/``, split files; written by ``zoedepth synth``). Recorded bags:
:mod:`zoedepth_ros.data.bag_dataset`. :func:`build_dataset` opens any of them by name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from zoedepth_ros.data.bag_dataset import RosbagRGBD
from zoedepth_ros.data.base import DatasetInfo, DepthDataset
from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.files import read_depth_png, read_rgb

KB_HEIGHT, KB_WIDTH = 352, 1216
NYU_FOCAL = 518.8579


def _existing_dir(root: Path | str, what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f'{what}: root {root} is not a directory; expected {what} there')
    return root


def _check_files(paths: Sequence[Path], what: str, where: str) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ', '.join(str(p) for p in missing[:3])
        raise InputError(f'{what}: {len(missing)} of {len(paths)} files listed in {where} are '
                         f'missing, e.g. {shown}; check the root directories')


def read_split_lines(split_file: Path | str, what: str) -> list[list[str]]:
    """Non-empty whitespace-split lines of a BTS-style split file."""
    path = Path(split_file)
    if not path.is_file():
        raise InputError(f'{what}: split file {path} not found; expected a text file of '
                         '"<rgb path> <depth path> <focal>" lines')
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


class NYUDepthV2(DepthDataset):
    """NYU Depth v2 in the BTS layout: the "sync" training tree or the 654-image test set.

    Args:
        root: directory the split file's paths are relative to (``.../sync`` for training,
            ``.../official_splits/test`` for the test set); a leading '/' is ignored.
        split_file: e.g. nyudepthv2_train_files_with_gt.txt or
            nyudepthv2_test_files_with_gt.txt. Without it, every ``rgb_*.jpg`` under
            ``root`` paired with ``sync_depth_*.png`` in the same folder is used.

    Depth PNGs store millimetres (value / 1000 = metres); valid 1e-3 < d < 10; Eigen crop.
    """

    info = DatasetInfo('nyu', 'indoor', 1e-3, 10.0, 'eigen')

    def __init__(self, root: Path | str, split_file: Path | str | None = None) -> None:
        self.root = _existing_dir(root, 'NYU Depth v2')
        if split_file is not None:
            lines = read_split_lines(split_file, 'NYU Depth v2')
            self.pairs = [(self.root / rgb.lstrip('/'), self.root / depth.lstrip('/'),
                           float(rest[0]) if rest else NYU_FOCAL)
                          for rgb, depth, *rest in lines]
            where = str(split_file)
        else:
            images = sorted(self.root.rglob('rgb_*.jpg'))
            self.pairs = [(p, p.with_name(p.name.replace('rgb_', 'sync_depth_'))
                           .with_suffix('.png'), NYU_FOCAL) for p in images]
            where = f'{self.root} (rgb_*.jpg with sync_depth_*.png beside them)'
        if not self.pairs:
            raise InputError(f'NYU Depth v2: no frames found in {where}')
        _check_files([p for pair in self.pairs for p in pair[:2]], 'NYU Depth v2', where)

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        rgb_path, depth_path, _ = self.pairs[index]
        stem = str(rgb_path.relative_to(self.root).with_suffix(''))
        return read_rgb(rgb_path), read_depth_png(depth_path, 1e-3), stem

    def camera(self, index: int) -> PinholeCamera:
        """The Kinect intrinsics used by NYU (fx from the split file's focal column)."""
        return PinholeCamera(self.pairs[index][2], 519.4696, 325.5824, 253.7362, 640, 480)


def kb_crop(array: np.ndarray) -> np.ndarray:
    """KITTI benchmark crop: the bottom 352 rows and the central 1216 columns."""
    height, width = array.shape[:2]
    if height < KB_HEIGHT or width < KB_WIDTH:
        raise InputError(f'KITTI image of {width}x{height} is smaller than the '
                         f'{KB_WIDTH}x{KB_HEIGHT} benchmark crop')
    top, left = height - KB_HEIGHT, (width - KB_WIDTH) // 2
    return array[top:top + KB_HEIGHT, left:left + KB_WIDTH]


class KITTIEigen(DepthDataset):
    """KITTI Eigen split: raw RGB images with annotated depth PNGs (value / 256 = metres).

    Args:
        root: raw data root (holds ``2011_09_26/2011_09_26_drive_0002_sync/image_02/...``).
        split_file: BTS eigen list, lines ``<rgb> <depth or None> <focal>``.
        depth_root: root of the annotated depth paths (default: ``root``, or a sibling
            ``gts/`` or ``data_depth_annotated/`` folder that holds them).

    Lines whose depth is ``None`` (no ground truth) are skipped, as in evaluation (697 test
    lines, 652 with ground truth). Images and depth are KB-cropped to 352x1216.
    Valid 1e-3 < d < 80; Garg crop.
    """

    info = DatasetInfo('kitti', 'outdoor', 1e-3, 80.0, 'garg')

    def __init__(self, root: Path | str, split_file: Path | str,
                 depth_root: Path | str | None = None) -> None:
        self.root = _existing_dir(root, 'KITTI raw data')
        lines = read_split_lines(split_file, 'KITTI Eigen')
        first_depth = next((line[1] for line in lines if line[1] != 'None'), '')
        self.depth_root = _existing_dir(depth_root or _find_depth_root(self.root, first_depth),
                                        'KITTI annotated depth')
        self.skipped = sum(1 for line in lines if line[1] == 'None')
        self.pairs = [(self.root / rgb.lstrip('/'), self.depth_root / depth.lstrip('/'),
                       float(rest[0]) if rest else math.nan)
                      for rgb, depth, *rest in lines if depth != 'None']
        if not self.pairs:
            raise InputError(f'KITTI Eigen: no lines with ground truth in {split_file}')
        _check_files([p for pair in self.pairs for p in pair[:2]], 'KITTI Eigen',
                     str(split_file))

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        rgb_path, depth_path, _ = self.pairs[index]
        stem = str(rgb_path.relative_to(self.root).with_suffix(''))
        rgb = kb_crop(read_rgb(rgb_path))
        return rgb, kb_crop(read_depth_png(depth_path, 1.0 / 256.0)), stem


def _find_depth_root(raw_root: Path, depth_path: str) -> Path:
    """Where the annotated depth lives: the raw root itself or a sibling 'gts' tree
    (ZoeDepth's kitti/raw + kitti/gts layout); the raw root when neither has the file."""
    for candidate in (raw_root, raw_root.parent / 'gts', raw_root / 'gts',
                      raw_root.parent / 'data_depth_annotated'):
        if (candidate / depth_path.lstrip('/')).is_file():
            return candidate
    return raw_root


class DIODE(DepthDataset):
    """DIODE (indoor or outdoor): ``<stem>.png``, ``<stem>_depth.npy``, ``<stem>_depth_mask.npy``.

    Args:
        root: a DIODE split folder (e.g. ``diode/val``) holding ``indoors/`` or ``outdoor/``,
            or one of those folders itself; searched recursively.
        domain: 'indoor' (valid 1e-3..10, Eigen crop) or 'outdoor' (1e-3..80, Garg crop).
    """

    def __init__(self, root: Path | str, domain: str = 'indoor') -> None:
        if domain not in ('indoor', 'outdoor'):
            raise InputError(f'DIODE domain {domain!r}; expected indoor or outdoor')
        self.info = DatasetInfo(f'diode_{domain}', domain, 1e-3,
                                10.0 if domain == 'indoor' else 80.0,
                                'eigen' if domain == 'indoor' else 'garg')
        root = _existing_dir(root, 'DIODE')
        sub = root / ('indoors' if domain == 'indoor' else 'outdoor')
        self.root = sub if sub.is_dir() else root
        self.images = sorted(p for p in self.root.rglob('*.png'))
        if not self.images:
            raise InputError(f'DIODE: no <stem>.png images under {self.root}; expected the '
                             'DIODE layout (scene_*/scan_*/<stem>.png + _depth.npy + '
                             '_depth_mask.npy)')
        _check_files([p.with_name(p.stem + suffix) for p in self.images
                      for suffix in ('_depth.npy', '_depth_mask.npy')], 'DIODE',
                     f'{self.root} (one _depth.npy and _depth_mask.npy per <stem>.png)')

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        path = self.images[index]
        depth = np.load(path.with_name(path.stem + '_depth.npy')).astype(np.float32)
        mask = np.load(path.with_name(path.stem + '_depth_mask.npy'))
        depth = depth.reshape(depth.shape[:2])
        depth[~(mask.reshape(depth.shape) > 0)] = 0.0
        return read_rgb(path), depth, path.stem


_FOLDER_KEYS = ('domain', 'depth_scale', 'min_depth', 'max_depth', 'camera', 'eval_crop', 'name',
                'depth_kind')


class GenericFolder(DepthDataset):
    """The generic RGB-D folder format (written by ``zoedepth synth``).

    Args:
        root: folder with ``dataset.yaml``, ``rgb/<stem>.png|jpg`` and
            ``depth/<stem>.png`` (uint16 x depth_scale) or ``depth/<stem>.npy`` (float metres).
        split: None (every image in rgb/), or 'train' / 'test' (stems from ``<split>.txt``).

    ``dataset.yaml`` keys: domain, depth_scale, min_depth, max_depth, camera (optional:
    fx, fy, cx, cy, width, height), eval_crop (optional: eigen | garg | null, default null),
    name (optional, default: the folder name), depth_kind (optional: metric | disparity,
    default metric; disparity folders hold relative inverse depth for the relative stage).
    """

    def __init__(self, root: Path | str, split: str | None = None) -> None:
        self.root = _existing_dir(root, 'RGB-D folder')
        meta = self._read_meta(self.root / 'dataset.yaml')
        self.depth_scale = float(meta.get('depth_scale', 1.0))
        self.info = DatasetInfo(str(meta.get('name', self.root.name)), meta['domain'],
                                float(meta.get('min_depth', 1e-3)),
                                float(meta.get('max_depth', 10.0 if meta['domain'] == 'indoor'
                                               else 80.0)), meta.get('eval_crop'),
                                str(meta.get('depth_kind', 'metric')))
        cam = meta.get('camera')
        self._camera = PinholeCamera(float(cam['fx']), float(cam['fy']), float(cam['cx']),
                                     float(cam['cy']), int(cam['width']),
                                     int(cam['height'])) if cam else None
        self.stems = self._stems(split)
        self.rgb_paths = [self._find(stem, 'rgb', ('.png', '.jpg', '.jpeg'))
                          for stem in self.stems]
        self.depth_paths = [self._find(stem, 'depth', ('.png', '.npy')) for stem in self.stems]

    @staticmethod
    def _read_meta(path: Path) -> dict[str, Any]:
        if not path.is_file():
            raise InputError(f'RGB-D folder: {path} not found; expected a dataset.yaml with '
                             f'keys {list(_FOLDER_KEYS)}')
        meta = yaml.safe_load(path.read_text()) or {}
        unknown = sorted(set(meta) - set(_FOLDER_KEYS))
        if unknown or meta.get('domain') not in ('indoor', 'outdoor'):
            raise InputError(f'{path}: unknown keys {unknown} or domain '
                             f'{meta.get("domain")!r}; valid keys are {list(_FOLDER_KEYS)} '
                             'and domain must be indoor or outdoor')
        if meta.get('depth_kind', 'metric') not in ('metric', 'disparity'):
            raise InputError(f'{path}: depth_kind {meta["depth_kind"]!r}; expected metric or '
                             'disparity')
        if meta.get('eval_crop') not in (None, 'eigen', 'garg'):
            raise InputError(f'{path}: eval_crop {meta["eval_crop"]!r}; expected eigen, garg '
                             'or null')
        return meta

    def _stems(self, split: str | None) -> list[str]:
        if split is not None:
            path = self.root / f'{split}.txt'
            if not path.is_file():
                raise InputError(f'RGB-D folder: split file {path} not found; expected one stem '
                                 'per line (or --split all for every image)')
            stems = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            if not stems:
                raise InputError(f'RGB-D folder: split file {path} lists no stems')
            return stems
        stems = sorted(p.stem for p in (self.root / 'rgb').glob('*')
                       if p.suffix.lower() in ('.png', '.jpg', '.jpeg'))
        if not stems:
            raise InputError(f'RGB-D folder: no images in {self.root / "rgb"}; expected '
                             'rgb/<stem>.png or .jpg')
        return stems

    def _find(self, stem: str, folder: str, suffixes: tuple[str, ...]) -> Path:
        for suffix in suffixes:
            path = self.root / folder / f'{stem}{suffix}'
            if path.is_file():
                return path
        raise InputError(f'RGB-D folder: missing {folder}/{stem} with one of {suffixes} '
                         f'in {self.root}')

    def __len__(self) -> int:
        return len(self.stems)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        depth_path = self.depth_paths[index]
        if depth_path.suffix == '.npy':
            depth = np.load(depth_path).astype(np.float32)
        else:
            depth = read_depth_png(depth_path, self.depth_scale)
        return read_rgb(self.rgb_paths[index]), depth, self.stems[index]

    def camera(self, index: int) -> PinholeCamera | None:
        return self._camera


def build_dataset(name: str, root: Path | str, split: str | None = None,
                  split_file: Path | str | None = None, **kwargs: Any) -> DepthDataset:
    """Dataset by name: 'nyu', 'kitti', 'diode_indoor', 'diode_outdoor', 'folder', 'bag'.

    ``split`` is used by 'folder' (train/test); ``split_file`` by 'nyu' and 'kitti'; extra
    keyword arguments go to the dataset class (e.g. ``depth_root`` for KITTI, topics for bags).
    """
    if name == 'nyu':
        return NYUDepthV2(root, split_file, **kwargs)
    if name == 'kitti':
        if split_file is None:
            raise InputError('KITTI Eigen needs a split file (eigen_test_files_with_gt.txt)')
        return KITTIEigen(root, split_file, **kwargs)
    if name in ('diode_indoor', 'diode_outdoor'):
        return DIODE(root, name.split('_')[1], **kwargs)
    if name == 'folder':
        return GenericFolder(root, split, **kwargs)
    if name == 'bag':
        return RosbagRGBD(root, **kwargs)
    raise InputError(f'unknown dataset {name!r}; expected one of {list(DATASET_NAMES)}')


DATASET_NAMES = ('nyu', 'kitti', 'diode_indoor', 'diode_outdoor', 'folder', 'bag')
_BAG_OPTIONS = {'image': 'rgb_topic', 'depth': 'depth_topic', 'info': 'info_topic',
                'domain': 'domain', 'max_depth': 'max_depth_m', 'tolerance': 'tolerance_s',
                'holdout': 'holdout', 'name': 'name'}
_FLOAT_OPTIONS = ('max_depth_m', 'tolerance_s', 'holdout')


def open_dataset(spec: str, split: str | None = None) -> DepthDataset:
    """A dataset from a spec string (training config roots, ``--train-data``, ``eval``).

    - ``ROOT``: a generic RGB-D folder; ``ROOT/<split>.txt`` selects the split when present,
      else every frame is used.
    - ``NAME:ROOT[:SPLIT_FILE[:DEPTH_ROOT]]``: ``nyu``, ``kitti``, ``diode_indoor``,
      ``diode_outdoor``.
    - ``bag:PATH[,image=TOPIC][,depth=TOPIC][,info=TOPIC][,domain=indoor|outdoor]
      [,max_depth=M][,tolerance=S][,holdout=F][,name=N]``: colour and depth topics of a recorded
      bag paired by stamp; with ``holdout`` the bag is split in blocks of frames and ``split``
      ('train' or 'test') picks a part.

    Raises:
        InputError: an unknown option or layout, or a dataset that cannot be opened.
    """
    name, sep, rest = spec.partition(':')
    if sep and name == 'bag':
        path, *options = rest.split(',')
        kwargs: dict[str, Any] = {}
        for option in options:
            key, _, value = option.partition('=')
            if key not in _BAG_OPTIONS or not value:
                raise InputError(f'bag spec {spec!r}: {option!r} is not one of '
                                 f'{[f"{k}=..." for k in _BAG_OPTIONS]}')
            argument = _BAG_OPTIONS[key]
            try:
                kwargs[argument] = float(value) if argument in _FLOAT_OPTIONS else value
            except ValueError:
                raise InputError(f'bag spec {spec!r}: {key} needs a number, got {value!r}'
                                 ) from None
        if kwargs.get('holdout'):
            kwargs['split'] = 'test' if split == 'test' else 'train'
        return RosbagRGBD(path, **kwargs)
    if sep and name in DATASET_NAMES and name != 'folder':
        root, _, rest = rest.partition(':')
        split_file, _, depth_root = rest.partition(':')
        extra = {'depth_root': depth_root} if depth_root else {}
        return build_dataset(name, root, split_file=split_file or None, **extra)
    folder = Path(spec)
    return build_dataset('folder', folder, split=split if split and (
        folder / f'{split}.txt').is_file() else None)
