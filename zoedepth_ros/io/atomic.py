"""Atomic files and directories: write under a temporary name, rename when complete.

Every file or directory the package writes for users goes through here, so an interrupted
run (Ctrl-C, a crash, a full disk) never leaves a half-written output under its final name.
Temporary names start with a dot and live in the target's own directory (a rename within one
file system is atomic). Files get the permissions a plain ``open()`` would give (0666 minus
the umask), not the 0600 of a private temporary file. Standard library only, so every layer of
the package may use it.
"""

from __future__ import annotations

import errno
import glob
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith('Umask:'):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not atomic across threads)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary file path beside ``path``; renamed over ``path`` when the block succeeds.

    For writers that need a file name rather than a handle (e.g. exporters). On any error,
    KeyboardInterrupt included, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is not None:
            raise
        # a short write (numpy: "N requested and M written") names no file: say which one
        raise OSError(err.errno or errno.EIO, f'{err.strerror or err} (writing {path})',
                      str(path)) from err
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a temporary binary file, then rename it to ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open('wb') as handle:
        write(handle)
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda handle: handle.write(text.encode()))


@contextmanager
def atomic_directory(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """A staging path for the directory ``path``, moved to ``path`` when the block succeeds.

    The staging path has ``path``'s name inside a hidden holder directory beside it and does
    not exist yet: the caller creates it (``mkdir``, or a writer that insists on creating its
    own directory, as rosbag2 writers do).

    Args:
        path: the directory to create.
        overwrite: replace an existing ``path`` (removed only once the new one is complete);
            without it an existing, non-empty ``path`` is refused before anything is written.

    Raises:
        FileExistsError: ``path`` exists, is not empty, and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f'{path} already exists; choose another path or remove it first')
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = Path(tempfile.mkdtemp(dir=path.parent, prefix=f'.{path.name}.partial-'))
    staging = holder / path.name
    try:
        yield staging
        if not staging.is_dir():
            raise FileNotFoundError(f'nothing was written to the staging directory {staging}')
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        os.replace(staging, path)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def remove_stale_staging(path: str | os.PathLike[str]) -> int:
    """Remove what an interrupted :func:`atomic_directory` for ``path`` left beside it (a
    process killed before its cleanup ran); the count removed.

    Only for a caller that owns ``path`` alone (no other process may be writing it now).
    """
    path = Path(path)
    stale = list(path.parent.glob(f'.{glob.escape(path.name)}.partial-*'))
    for holder in stale:
        shutil.rmtree(holder, ignore_errors=True)
    return len(stale)


def strict_json(data: object, indent: int | None = 2) -> str:
    """JSON text that strict parsers accept: NaN and infinities become ``null``, numpy
    scalars and arrays become numbers and lists (anything with ``tolist``)."""
    return json.dumps(_json_safe(data), indent=indent, allow_nan=False) + '\n'


def write_json(path: str | os.PathLike[str], data: object, indent: int | None = 2) -> Path:
    """Write :func:`strict_json` of ``data`` to ``path`` atomically."""
    return write_text(path, strict_json(data, indent))


def _json_safe(value: object) -> object:
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    to_list = getattr(value, 'tolist', None)  # numpy scalars and arrays, torch tensors
    if callable(to_list):
        return _json_safe(to_list())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f'{type(value).__name__} is not JSON serialisable')
