"""Writing rosbag2 files atomically with ``rosbags`` (ROS-free).

:class:`AtomicBagWriter` writes through :func:`zoedepth_ros.io.atomic.atomic_directory`: into a
hidden staging directory beside the target, renamed into place on
:meth:`~AtomicBagWriter.commit`; an interrupted or failed run removes the staging directory, so
the target name only ever holds a complete bag. Messages are either
copied as raw CDR (keeping the source connection's type definition and QoS) or made by
:mod:`zoedepth_ros.io.builder` through :meth:`AtomicBagWriter.make`, its rosbags factory.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from zoedepth_ros.errors import BagError
from zoedepth_ros.io import builder
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
        self._writer = Writer(staging, version=cast(Literal[8, 9], version),
                              storage_plugin=plugin)
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

    def make(self, msgtype: str, fields: dict[str, Any]) -> Any:
        """A message of this writer's typestore (the rosbags factory of ``io.builder``): bytes
        payloads become uint8 arrays, no copy."""
        values = {name: np.frombuffer(value, dtype=np.uint8)
                  if isinstance(value, (bytes, memoryview)) else value
                  for name, value in fields.items()}
        return self.typestore.types[msgtype](**values)

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        """std_msgs/Header with the stamp (nanoseconds) and frame id."""
        return builder.header(self.make, stamp_ns, frame_id)

    def image(self, fields: ImageFields, header: Any) -> Any:
        return builder.image(self.make, fields, header)

    def camera_info(self, fields: CameraInfoFields, header: Any) -> Any:
        return builder.camera_info(self.make, fields, header)

    def point_cloud(self, cloud: PackedCloud, header: Any) -> Any:
        return builder.point_cloud(self.make, cloud, header)

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
