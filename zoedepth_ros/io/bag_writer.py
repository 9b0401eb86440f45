"""Writing rosbag2 files atomically with ``rosbags`` (ROS-free).

:class:`AtomicBagWriter` writes through :func:`zoedepth_ros.io.atomic.atomic_directory`: into a
hidden staging directory beside the target, renamed into place on
:meth:`~AtomicBagWriter.commit`; an interrupted or failed run removes the staging directory, so
the target name only ever holds a complete bag. Messages are either
copied as raw CDR (keeping the source connection's type definition and QoS) or built from the
core's field dataclasses (:class:`~zoedepth_ros.io.messages.ImageFields`,
:class:`~zoedepth_ros.io.messages.CameraInfoFields`,
:class:`~zoedepth_ros.io.messages.PackedCloud`) with a given header.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from zoedepth_ros.errors import BagError
from zoedepth_ros.io.anchoring import AlignmentFields
from zoedepth_ros.io.atomic import atomic_directory
from zoedepth_ros.io.bag_reader import type_hash
from zoedepth_ros.io.messages import CameraInfoFields, ImageFields, PackedCloud

STORAGES = ('mcap', 'sqlite3')
VERSIONS = (8, 9)


class AtomicBagWriter:
    """A rosbag2 written under a temporary name and renamed when complete.

    Args:
        path: bag directory to create; must not exist (unless ``overwrite``).
        storage: 'mcap' or 'sqlite3'.
        version: rosbag2 metadata version, 8 or 9.
        overwrite: replace an existing ``path`` on commit.
    """

    def __init__(self, path: Path | str, storage: str = 'mcap', version: int = 9,
                 overwrite: bool = False) -> None:
        if storage not in STORAGES or version not in VERSIONS:
            raise BagError(f'bag storage {storage!r} / version {version}: expected a storage in '
                           f'{STORAGES} and a version in {VERSIONS}')
        self.path = Path(path)
        self.typestore = get_typestore(Stores.ROS2_KILTED)
        self._stack = ExitStack()
        try:
            staging = self._stack.enter_context(atomic_directory(self.path, overwrite))
        except FileExistsError:
            raise BagError(f'output bag {self.path} already exists; choose another path or '
                           'remove it first') from None
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(staging, version=version, storage_plugin=plugin)
        try:
            self._writer.open()
        except Exception as err:  # rosbags raises its own WriterError types
            self._stack.__exit__(type(err), err, err.__traceback__)
            raise BagError(f'cannot create bag {self.path}: {err}') from err
        self._connections: dict[tuple[str, str], Any] = {}
        self.message_count = 0

    def connection(self, topic: str, msgtype: str, source: Any | None = None,
                   qos: Sequence[Any] = ()) -> Any:
        """The writer's connection for ``topic``, added on first use.

        Args:
            topic: fully qualified topic name.
            msgtype: e.g. 'sensor_msgs/msg/Image'.
            source: a reader connection to copy the type definition and QoS from (needed for
                types the ROS 2 Kilted typestore does not know).
            qos: offered QoS profiles of the topic's publishers (``rosbags.interfaces.Qos``),
                stored in the bag's metadata when ``source`` has none.
        """
        key = (topic, msgtype)
        if key not in self._connections:
            options: dict[str, Any] = {'typestore': self.typestore}
            ext = getattr(source, 'ext', None)
            if source is not None and source.msgdef.data:  # its own definition, even
                # from bags that store no type hash (rosbag2 before version 8)
                options = {'msgdef': source.msgdef.data, 'rihs01': type_hash(source)}
            profiles = getattr(ext, 'offered_qos_profiles', None) or list(qos)
            if profiles:
                options['offered_qos_profiles'] = profiles
            try:
                self._connections[key] = self._writer.add_connection(topic, msgtype, **options)
            except Exception as err:  # unknown type without a definition, duplicate topic
                raise BagError(f'cannot add topic {topic} ({msgtype}) to {self.path}: '
                               f'{err}') from err
        return self._connections[key]

    def set_custom_data(self, key: str, value: str) -> None:
        """Store ``key: value`` (strings) in metadata.yaml's ``custom_data`` (rosbag2 >= 6)."""
        self._writer.set_custom_data(key, value)

    def write_raw(self, topic: str, msgtype: str, bag_time_ns: int, raw: bytes,
                  source: Any | None = None) -> None:
        """Append serialised CDR bytes (e.g. copied from another bag) at ``bag_time_ns``."""
        self._writer.write(self.connection(topic, msgtype, source), bag_time_ns, raw)
        self.message_count += 1

    def write(self, topic: str, message: Any, bag_time_ns: int) -> None:
        """Serialise a message of ``self.typestore`` and append it."""
        msgtype = message.__msgtype__
        self.write_raw(topic, msgtype, bag_time_ns,
                       bytes(self.typestore.serialize_cdr(message, msgtype)))

    # ------------------------------------------------------------------ message building

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        """std_msgs/Header with the given stamp (nanoseconds) and frame id."""
        seconds, nanoseconds = divmod(int(stamp_ns), 1_000_000_000)
        time_type = self.typestore.types['builtin_interfaces/msg/Time']
        return self.typestore.types['std_msgs/msg/Header'](
            stamp=time_type(sec=seconds, nanosec=nanoseconds), frame_id=frame_id)

    def image(self, fields: ImageFields, header: Any) -> Any:
        """sensor_msgs/Image from core image fields."""
        return self.typestore.types['sensor_msgs/msg/Image'](
            header=header, height=fields.height, width=fields.width, encoding=fields.encoding,
            is_bigendian=fields.is_bigendian, step=fields.step,
            data=np.frombuffer(fields.data, dtype=np.uint8))

    def camera_info(self, fields: CameraInfoFields, header: Any) -> Any:
        """sensor_msgs/CameraInfo from core fields; binning and roi zero."""
        types = self.typestore.types
        empty_roi = types['sensor_msgs/msg/RegionOfInterest'](0, 0, 0, 0, False)
        arrays = {name: np.array(getattr(fields, name), dtype=np.float64)
                  for name in ('d', 'k', 'r', 'p')}
        return types['sensor_msgs/msg/CameraInfo'](
            header=header, height=fields.height, width=fields.width,
            distortion_model=fields.distortion_model, binning_x=0, binning_y=0, roi=empty_roi,
            **arrays)

    def point_cloud(self, cloud: PackedCloud, header: Any) -> Any:
        """sensor_msgs/PointCloud2 from a packed cloud."""
        types = self.typestore.types
        fields = [types['sensor_msgs/msg/PointField'](name=f.name, offset=f.offset,
                                                      datatype=f.datatype, count=f.count)
                  for f in cloud.fields]
        return types['sensor_msgs/msg/PointCloud2'](
            header=header, height=cloud.height, width=cloud.width, fields=fields,
            is_bigendian=cloud.is_bigendian, point_step=cloud.point_step,
            row_step=cloud.row_step, data=np.frombuffer(cloud.data, dtype=np.uint8),
            is_dense=cloud.is_dense)

    def float_array(self, fields: AlignmentFields) -> Any:
        """std_msgs/Float32MultiArray with one labelled dimension."""
        types = self.typestore.types
        size = len(fields.values)
        layout = types['std_msgs/msg/MultiArrayLayout'](
            dim=[types['std_msgs/msg/MultiArrayDimension'](label=fields.label, size=size,
                                                           stride=size)], data_offset=0)
        return types['std_msgs/msg/Float32MultiArray'](
            layout=layout, data=np.array(fields.values, dtype=np.float32))

    def message(self, fields: ImageFields | CameraInfoFields | PackedCloud | AlignmentFields
                | str, header: Any) -> Any:
        """The message of one per-frame output (``frame.FrameOutputs.encoded``): Image,
        CameraInfo, PointCloud2, Float32MultiArray (alignment), or std_msgs/String for text
        (the header is not used by the last two)."""
        if isinstance(fields, AlignmentFields):
            return self.float_array(fields)
        if isinstance(fields, ImageFields):
            return self.image(fields, header)
        if isinstance(fields, CameraInfoFields):
            return self.camera_info(fields, header)
        if isinstance(fields, PackedCloud):
            return self.point_cloud(fields, header)
        return self.typestore.types['std_msgs/msg/String'](data=str(fields))

    # ------------------------------------------------------------------ finishing

    def commit(self) -> Path:
        """Finish the bag and rename it to its final path."""
        self._writer.close()
        self._stack.close()
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; the target path is left untouched."""
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001 - the staging directory goes away regardless
            pass
        error = BagError('aborted')
        self._stack.__exit__(BagError, error, None)

    def __enter__(self) -> AtomicBagWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()
