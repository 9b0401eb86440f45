"""Writing the generic RGB-D folder format (what ``data.datasets.GenericFolder`` reads)::

    ROOT/dataset.yaml      name, domain, depth_scale, min_depth, max_depth, camera (optional),
                           depth_kind (metric, or disparity for relative inverse depth)
    ROOT/rgb/<stem>.png    8-bit RGB
    ROOT/depth/<stem>.png  uint16, metres (or disparity) = value * depth_scale, 0 = invalid
    ROOT/train.txt, ROOT/test.txt  one stem per line (a split without frames gets no file)

Used by ``zoedepth synth`` and by distillation (teacher labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io.atomic import write_text


class FolderWriter:
    """Writes frames in the generic RGB-D folder format.

    Args:
        root: an existing, empty directory.
        domain: 'indoor' or 'outdoor'.
        camera: intrinsics shared by every frame, or None when unknown.
        depth_scale: metres per stored depth unit (0.001 = millimetres, 1/256 as KITTI).
        max_depth_m: the dataset's valid depth range upper bound.
        name: the dataset's name in samples and reports.
        depth_kind: 'metric' (depth in metres) or 'disparity' (relative inverse depth, for
            the relative stage; ``depth_m`` then holds disparity).
    """

    def __init__(self, root: Path, domain: str, camera: PinholeCamera | None,
                 depth_scale: float, max_depth_m: float, name: str = '',
                 depth_kind: str = 'metric') -> None:
        self.root = Path(root)
        self.domain = domain
        self.name = name or f'synth_{domain}'
        self.camera = camera
        self.depth_scale = depth_scale
        self.max_depth_m = max_depth_m
        self.depth_kind = depth_kind
        self._splits: dict[str, list[str]] = {'train': [], 'test': []}
        (self.root / 'rgb').mkdir(parents=True, exist_ok=True)
        (self.root / 'depth').mkdir(parents=True, exist_ok=True)

    def write(self, stem: str, rgb: np.ndarray, depth_m: np.ndarray, split: str = 'train',
              stamp_ns: int = 0) -> None:
        """Store one frame.

        Args:
            stem: file stem, unique within the dataset.
            rgb: (H, W, 3) uint8 RGB.
            depth_m: (H, W) float depth in metres; NaN, inf and <= 0 are stored as 0.
            split: 'train' or 'test'.
            stamp_ns: unused here (folder frames carry no time).
        """
        del stamp_ns
        stored = depth_to_uint16(depth_m, self.depth_scale)
        if not cv2.imwrite(str(self.root / 'rgb' / f'{stem}.png'), rgb[..., ::-1]):
            raise InputError(f'could not write {self.root / "rgb" / stem}.png')
        if not cv2.imwrite(str(self.root / 'depth' / f'{stem}.png'), stored):
            raise InputError(f'could not write {self.root / "depth" / stem}.png')
        self._splits[split].append(stem)

    def close(self) -> None:
        """Write dataset.yaml and the split files."""
        camera = self.camera
        meta: dict[str, Any] = {'name': self.name, 'domain': self.domain,
                                'depth_scale': float(self.depth_scale), 'min_depth': 0.001,
                                'max_depth': float(self.max_depth_m)}
        if self.depth_kind != 'metric':
            meta['depth_kind'] = self.depth_kind
        if camera is not None:
            meta['camera'] = {'fx': float(camera.fx), 'fy': float(camera.fy),
                              'cx': float(camera.cx), 'cy': float(camera.cy),
                              'width': camera.width, 'height': camera.height}
        write_text(self.root / 'dataset.yaml', yaml.safe_dump(meta, sort_keys=False))
        for split, stems in self._splits.items():
            if stems:  # no empty split files: an empty test set is not a test set
                write_text(self.root / f'{split}.txt', ''.join(f'{s}\n' for s in stems))


def depth_to_uint16(depth_m: np.ndarray, depth_scale: float) -> np.ndarray:
    """(H, W) metres -> uint16 units of ``depth_scale``; invalid or out-of-range -> 0."""
    units = np.nan_to_num(np.asarray(depth_m, dtype=np.float64) / depth_scale, nan=0.0,
                          posinf=0.0, neginf=0.0)
    units = np.rint(units)
    units[(units < 1) | (units > 65535)] = 0
    return units.astype(np.uint16)
