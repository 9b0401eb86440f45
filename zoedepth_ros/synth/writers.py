"""Writing synthetic frames as rosbag2 (via rosbags); folders use ``io.rgbd_folder``.

The bag is staged and renamed into place by ``AtomicBagWriter``, so a failed run leaves
nothing. Topics: ``/camera/image_raw`` (sensor_msgs/Image rgb8), ``/camera/camera_info``
(sensor_msgs/CameraInfo, plumb_bob with zero distortion) and ``/camera/depth/image``
(sensor_msgs/Image 32FC1 metres, NaN invalid, REP 118), all with the same header stamp and
frame id per frame, written with the ROS 2 Kilted message definitions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io import messages
from zoedepth_ros.io.bag_writer import AtomicBagWriter

RGB_TOPIC = '/camera/image_raw'
INFO_TOPIC = '/camera/camera_info'
DEPTH_TOPIC = '/camera/depth/image'
FRAME_ID = 'camera_optical_frame'
STORAGES = ('sqlite3', 'mcap')


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
