"""Opening a rosbag2 directory: the path check and the reader, the one way the package opens bags.

ROS-free. :class:`BagReader` (``with open_bag(path) as reader``) reads metadata and raw
messages with ``rosbags.rosbag2.Reader``:
rosbag2 versions up to 9, sqlite3 and mcap storage, split bags (several storage files), zstd
file, message and mcap chunk compression; not ROS 1. A message type is parsed only when a
message of it is deserialised: from the bag's stored definition, else (none stored, or one
rosbags cannot parse) from ROS 2 Kilted's. Topics whose types cannot be parsed (service events,
malformed definitions) stay readable as raw bytes (copying, replay, counting);
:meth:`BagReader.unparseable` names them. A path that is not a bag, or a bag that cannot be
read, gives one :class:`~zoedepth_ros.errors.BagError`; only damage is called damage.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rosbags.interfaces import Connection, MessageDefinitionFormat
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

from zoedepth_ros.errors import BagError

EXPECTED = 'expected a rosbag2 directory with metadata.yaml and its .db3/.mcap storage files'
HINTS = {'.db3': ' (pass its folder)', '.mcap': ' (pass its folder)',
         '.bag': ' (ROS 1 bags are not read: convert it with rosbags-convert)'}


def check_bag_path(path: Path) -> None:
    """Nothing when ``path`` has a metadata.yaml, else one BagError saying what was expected."""
    if (path / 'metadata.yaml').is_file():
        return
    if not path.exists():
        raise BagError(f'bag {path} not found; {EXPECTED}')
    if not path.is_dir():
        raise BagError(f'{path} is not a rosbag2 bag; {EXPECTED}{HINTS.get(path.suffix, "")}')
    if bags := sorted(p.name for p in path.iterdir() if (p / 'metadata.yaml').is_file()):
        more = f' and {len(bags) - 8} more' if len(bags) > 8 else ''
        raise BagError(f'{path} is not a rosbag2 bag (no metadata.yaml); it holds the bags '
                       f'{", ".join(bags[:8])}{more}: pass one of them')
    storage = sorted(p.name for p in path.iterdir() if {'.db3', '.mcap'} & set(p.suffixes))
    hint = (f'; to use its {", ".join(storage)}, rebuild the metadata: ros2 bag reindex {path}'
            if storage else '')
    raise BagError(f'{path} is not a rosbag2 bag (no metadata.yaml); {EXPECTED}{hint}')


def _brief(err: BaseException) -> str:
    """'Type: first line of the message' of an exception, for one-line errors."""
    lines = str(err).strip().splitlines() or ['']
    return f'{type(err).__name__}: {lines[0][:200]}'


def _damaged(path: Path, detail: str) -> BagError:
    """The error of a bag that cannot be read; only damage is called damage."""
    damage = ('' if 'not supported' in detail else  # newer version, storage or compression
              '; the bag is truncated or damaged: re-record it or repair it (ros2 bag reindex)')
    return BagError(f'cannot read bag {path}: {detail}{damage}')


@lru_cache(maxsize=1)
def _kilted() -> Any:
    return get_typestore(Stores.ROS2_KILTED)


def _read_metadata(path: Path) -> dict[str, Any]:
    """The ``rosbag2_bagfile_information`` mapping of a bag's metadata.yaml."""
    try:
        loaded = yaml.safe_load((path / 'metadata.yaml').read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise _damaged(path, _brief(err)) from None
    metadata = loaded.get('rosbag2_bagfile_information') if isinstance(loaded, dict) else None
    if not isinstance(metadata, dict):
        raise _damaged(path, 'metadata.yaml has no rosbag2_bagfile_information')
    return metadata


def _stored_types(connection: Connection) -> dict[str, Any]:
    """The types of a connection's stored definition (msg, or IDL as rosbag2 concatenates it)."""
    text, separator = connection.msgdef.data, '=' * 80 + '\n'
    if connection.msgdef.format == MessageDefinitionFormat.MSG:
        return get_types_from_msg(text, connection.msgtype)
    if text.startswith(separator + 'IDL: '):  # one 'IDL: name' line and its IDL per type
        parts = [part.split('\n', 1)[1] for part in text.split(separator)[1:]]
    else:
        parts = [text]
    return {name: kind for part in parts for name, kind in get_types_from_idl(part).items()}


def _typestore_of(connections: Sequence[Connection], msgtype: str) -> Any:
    """A typestore that decodes ``msgtype``, or a str saying why there is none."""
    problem = 'the bag stores no definition of it'
    defined = [c for c in connections
               if c.msgtype == msgtype and c.msgdef.format != MessageDefinitionFormat.NONE]
    if defined:
        store = get_typestore(Stores.EMPTY)  # one store per type: a bad one spoils no other
        try:
            store.register(_stored_types(defined[0]))
            store.get_msgdef(msgtype)  # builds the type and every type it uses
            return store
        except Exception as err:  # noqa: BLE001 - rosbags' parsers raise many kinds
            problem = f'its stored definition cannot be parsed ({_brief(err)})'
    return _kilted() if msgtype in _kilted().types else f'{problem}; ROS 2 Kilted lacks it'


UNKNOWN_TYPE_HASH = 'RIHS01_' + '0' * 64
"""Type hash written for a copied topic whose type neither the source bag (rosbag2 versions
before 8 store none) nor any parseable definition gives."""


def type_hash(connection: Connection) -> str:
    """The RIHS01 type hash of a connection: the stored one, else computed from its stored
    definition (or ROS 2 Kilted's), else :data:`UNKNOWN_TYPE_HASH`."""
    if connection.digest:
        return str(connection.digest)
    store = _typestore_of([connection], connection.msgtype)
    if isinstance(store, str):
        return UNKNOWN_TYPE_HASH
    try:
        return str(store.hash_rihs01(connection.msgtype))
    except Exception:  # noqa: BLE001 - rosbags' hashing raises many kinds on odd types
        return UNKNOWN_TYPE_HASH


class BagReader:
    """An open rosbag2 directory (a context manager): metadata, raw messages, lazy types.

    Attributes:
        path: the bag directory.
        metadata: the ``rosbag2_bagfile_information`` mapping of metadata.yaml.

    Raises:
        BagError: not a bag (see :func:`check_bag_path`), or a bag that cannot be read.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        check_bag_path(self.path)
        self.metadata = _read_metadata(self.path)
        self._stores: dict[str, Any] = {}
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as err:  # noqa: BLE001 - anything rosbags or its storages raise
            raise _damaged(self.path, _brief(err)) from None

    @property
    def connections(self) -> list[Connection]:
        """The bag's topics (one per topic, type and QoS), in metadata order."""
        return self._reader.connections

    def messages(self, connections: Sequence[Connection] = (), start: int | None = None,
                 stop: int | None = None) -> Iterator[tuple[Connection, int, bytes]]:
        """(connection, bag time ns, raw CDR) of ``connections`` (all if empty) in bag order."""
        try:
            yield from self._reader.messages(connections, start, stop)
        except Exception as err:  # noqa: BLE001 - only rosbags code runs inside this try
            raise _damaged(self.path, _brief(err)) from None

    def problem(self, msgtype: str) -> str | None:
        """Why ``msgtype`` cannot be decoded, or None when it can (parsed once, on first use)."""
        if msgtype not in self._stores:
            self._stores[msgtype] = _typestore_of(self.connections, msgtype)
        store = self._stores[msgtype]
        return store if isinstance(store, str) else None

    def deserialize(self, raw: bytes, msgtype: str) -> Any:
        """The message of ``msgtype`` in ``raw`` (CDR); BagError when it cannot be decoded."""
        if problem := self.problem(msgtype):
            topics = sorted({c.topic for c in self.connections if c.msgtype == msgtype})
            raise BagError(f'{self.path}: cannot decode {", ".join(topics)} ({msgtype}): '
                           f'{problem}')
        try:
            return self._stores[msgtype].deserialize_cdr(raw, msgtype)
        except Exception as err:  # noqa: BLE001 - the generated decoders raise many kinds
            raise BagError(f'{self.path}: a {msgtype} message does not match its type '
                           f'definition ({_brief(err)})') from None

    def unparseable(self) -> dict[str, str]:
        """Topic -> message type of every topic whose type cannot be parsed (reads no message)."""
        return {c.topic: c.msgtype for c in self.connections if self.problem(c.msgtype)}

    def close(self) -> None:
        if self._reader.is_open:
            self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_bag(path: Path | str) -> BagReader:
    """An open :class:`BagReader`; use it as a context manager (``with open_bag(p) as r``)."""
    return BagReader(path)


def skipped_note(skipped: Mapping[str, str], why: str) -> str:
    """One line naming the topics (topic -> message type) a tool left out, and why."""
    names = ', '.join(f'{topic} ({msgtype})' for topic, msgtype in sorted(skipped.items()))
    return f'skipped {len(skipped)} topic(s) {why}: {names}'
