"""Writing synthetic frames as rosbag2 (via rosbags); folders use ``io.rgbd_folder``.

The bag is staged and renamed into place by ``AtomicBagWriter``, so a failed run leaves
nothing. Topics: ``/camera/image_raw`` (sensor_msgs/Image rgb8), ``/camera/camera_info``
(sensor_msgs/CameraInfo, plumb_bob with zero distortion) and ``/camera/depth/image``
(sensor_msgs/Image 32FC1 metres, NaN invalid, REP 118), all with the same header stamp and
frame id per frame, written with the ROS 2 Kilted message definitions. With a simulated sparse
sensor (:mod:`.sensors`) also ``/lidar/points`` (sensor_msgs/PointCloud2, x, y, z float32 in
the optical frame) or ``/sparse/depth`` (sensor_msgs/Image 32FC1 metres, NaN = no sample), same
stamp and frame id; the sensor's parameters go into metadata.yaml's ``custom_data`` under
``zoedepth_ros.synth.sparse`` (JSON).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from zoedepth_ros.errors import InputError
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.io import messages
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.synth.sensors import check_mode, describe

RGB_TOPIC = '/camera/image_raw'
INFO_TOPIC = '/camera/camera_info'
DEPTH_TOPIC = '/camera/depth/image'
LIDAR_TOPIC = '/lidar/points'
TOF_TOPIC = '/sparse/depth'
SPARSE_TOPICS = {'lidar16': LIDAR_TOPIC, 'tof': TOF_TOPIC}
SPARSE_METADATA_KEY = 'zoedepth_ros.synth.sparse'
FRAME_ID = 'camera_optical_frame'
STORAGES = ('sqlite3', 'mcap')


class BagWriter:
    """Writes frames as a rosbag2 with image, camera info and depth topics.

    Args:
        path: bag directory to create (must not exist yet); the storage file is named after
            it (``<name>.mcap`` / ``<name>.db3``).
        camera: intrinsics shared by every frame.
        storage: 'sqlite3' or 'mcap'.
        sparse: the simulated sparse sensor whose readings :meth:`write_sparse` takes
            ('none', 'lidar16', 'tof').
        domain: the frames' domain (selects the sensor's parameters in the metadata).
    """

    def __init__(self, path: Path, camera: PinholeCamera, storage: str = 'sqlite3',
                 sparse: str = 'none', domain: str = 'indoor') -> None:
        if storage not in STORAGES:
            raise InputError(f'unknown bag storage {storage!r}; expected one of {STORAGES}')
        check_mode(sparse)
        self.camera = camera
        self.sparse = sparse
        self._info = messages.camera_info_from_camera(camera)
        self._bag = AtomicBagWriter(path, storage=storage, version=9)
        if sparse != 'none':
            sensor = {'topic': SPARSE_TOPICS[sparse], 'frame_id': FRAME_ID,
                      **describe(sparse, domain)}
            self._bag.set_custom_data(SPARSE_METADATA_KEY, json.dumps(sensor))

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

    def write_sparse(self, reading: np.ndarray, stamp_ns: int) -> None:
        """Store the sparse sensor's reading of the frame at ``stamp_ns``.

        Args:
            reading: lidar (N, 3) points in the optical frame, or a ToF (H, W) depth image in
                metres (NaN = no sample), as :func:`.sensors.measure` returns.
            stamp_ns: the frame's stamp (header stamp and bag time).
        """
        if self.sparse == 'none':
            raise InputError('this bag has no sparse sensor (BagWriter(sparse=...))')
        bag = self._bag
        header = bag.header(stamp_ns, FRAME_ID)
        if self.sparse == 'lidar16':
            message = bag.point_cloud(messages.pack_xyz(reading), header)
        else:
            message = bag.image(messages.encode_float_image(reading), header)
        bag.write(SPARSE_TOPICS[self.sparse], message, stamp_ns)

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml) and move it to its path."""
        self._bag.commit()
