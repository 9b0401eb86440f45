"""Writers for synthetic frames: the generic RGB-D folder format and rosbag2 (via rosbags).

Both write into a directory that the caller creates fresh (the generator writes into a
temporary directory and renames it into place at the end, so a failed run leaves nothing).

Folder format (the generic RGB-D layout ``data.datasets.GenericFolder`` reads)::

    ROOT/dataset.yaml      domain, depth_scale, min_depth, max_depth, camera
    ROOT/rgb/<stem>.png    8-bit RGB
    ROOT/depth/<stem>.png  uint16, metres = value * depth_scale, 0 = invalid
    ROOT/train.txt, ROOT/test.txt  one stem per line (split by scene, never within a scene;
                                   a split without frames gets no file)

Bag topics: ``/camera/image_raw`` (sensor_msgs/Image rgb8), ``/camera/camera_info``
(sensor_msgs/CameraInfo, plumb_bob with zero distortion) and ``/camera/depth/image``
(sensor_msgs/Image 32FC1 metres, NaN invalid, REP 118), all with the same header stamp and
frame id per frame, written with the ROS 2 Kilted message definitions.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io import messages
from zoedepth_ros.io.bag_writer import AtomicBagWriter

RGB_TOPIC = '/camera/image_raw'
INFO_TOPIC = '/camera/camera_info'
DEPTH_TOPIC = '/camera/depth/image'
FRAME_ID = 'camera_optical_frame'
STORAGES = ('sqlite3', 'mcap')


class FolderWriter:
    """Writes frames in the generic RGB-D folder format.

    Args:
        root: an existing, empty directory.
        domain: 'indoor' or 'outdoor'.
        camera: intrinsics shared by every frame.
        depth_scale: metres per stored depth unit (0.001 = millimetres, 1/256 as KITTI).
        max_depth_m: the dataset's valid depth range upper bound.
    """

    def __init__(self, root: Path, domain: str, camera: PinholeCamera, depth_scale: float,
                 max_depth_m: float) -> None:
        self.root = Path(root)
        self.domain = domain
        self.camera = camera
        self.depth_scale = depth_scale
        self.max_depth_m = max_depth_m
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
        meta = {'name': f'synth_{self.domain}', 'domain': self.domain,
                'depth_scale': float(self.depth_scale), 'min_depth': 0.001,
                'max_depth': float(self.max_depth_m),
                'camera': {'fx': float(camera.fx), 'fy': float(camera.fy),
                           'cx': float(camera.cx), 'cy': float(camera.cy),
                           'width': camera.width, 'height': camera.height}}
        (self.root / 'dataset.yaml').write_text(yaml.safe_dump(meta, sort_keys=False))
        for split, stems in self._splits.items():
            if stems:  # no empty split files: an empty test set is not a test set
                (self.root / f'{split}.txt').write_text(''.join(f'{s}\n' for s in stems))


def depth_to_uint16(depth_m: np.ndarray, depth_scale: float) -> np.ndarray:
    """(H, W) metres -> uint16 units of ``depth_scale``; invalid or out-of-range -> 0."""
    units = np.nan_to_num(np.asarray(depth_m, dtype=np.float64) / depth_scale, nan=0.0,
                          posinf=0.0, neginf=0.0)
    units = np.rint(units)
    units[(units < 1) | (units > 65535)] = 0
    return units.astype(np.uint16)


class BagWriter:
    """Writes frames as a rosbag2 with image, camera info and depth topics.

    Args:
        path: bag directory to create (must not exist yet); the storage file is named after
            it (``<name>.mcap`` / ``<name>.db3``).
        camera: intrinsics shared by every frame.
        storage: 'sqlite3' or 'mcap'.
    """

    def __init__(self, path: Path, camera: PinholeCamera, storage: str = 'sqlite3') -> None:
        if storage not in STORAGES:
            raise InputError(f'unknown bag storage {storage!r}; expected one of {STORAGES}')
        self.camera = camera
        self._info = messages.camera_info_from_camera(camera)
        self._bag = AtomicBagWriter(path, storage=storage, version=9)

    def write(self, stem: str, rgb: np.ndarray, depth_m: np.ndarray, split: str = 'train',
              stamp_ns: int = 0) -> None:
        """Store one frame at ``stamp_ns`` (header stamp and bag time).

        Args:
            stem: unused (bags index frames by time).
            rgb: (H, W, 3) uint8 RGB.
            depth_m: (H, W) float depth in metres, NaN invalid.
            split: unused.
            stamp_ns: nanoseconds since the epoch; must increase from frame to frame.
        """
        del stem, split
        bag = self._bag
        header = bag.header(stamp_ns, FRAME_ID)
        rgb_fields = messages.image_fields(np.asarray(rgb, dtype=np.uint8), 'rgb8')
        bag.write(RGB_TOPIC, bag.image(rgb_fields, header), stamp_ns)
        bag.write(INFO_TOPIC, bag.camera_info(self._info, header), stamp_ns)
        bag.write(DEPTH_TOPIC, bag.image(messages.encode_float_image(depth_m), header), stamp_ns)

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml) and move it to its path."""
        self._bag.commit()
