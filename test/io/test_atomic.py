"""Atomic files and directories: complete under the final name, or not there at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from zoedepth_ros.io.atomic import (
    atomic_directory,
    atomic_path,
    atomic_write,
    current_umask,
    remove_stale_staging,
    write_text,
)


def test_files_appear_complete_or_not_at_all(tmp_path: Path) -> None:
    target = write_text(tmp_path / 'sub' / 'a.txt', 'hello')
    assert target.read_text() == 'hello'
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('half')
        raise RuntimeError('crash while writing')
    assert target.read_text() == 'hello'  # the old content survives a failed rewrite

    def interrupted(handle) -> None:
        handle.write(b'partial')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / 'b.bin', interrupted)
    assert sorted(p.name for p in tmp_path.rglob('*')) == ['a.txt', 'sub']


def test_directories_replace_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / 'report'
    with atomic_directory(out) as staging:
        assert not staging.exists() and staging.name == 'report'
        staging.mkdir()
        (staging / 'x.txt').write_text('1')
    assert (out / 'x.txt').read_text() == '1'
    with pytest.raises(FileExistsError, match='already exists'), atomic_directory(out):
        pass
    with pytest.raises(ValueError), atomic_directory(out, overwrite=True) as staging:
        staging.mkdir()
        (staging / 'y.txt').write_text('2')
        raise ValueError('failed half way')
    assert [p.name for p in out.iterdir()] == ['x.txt']
    with atomic_directory(out, overwrite=True) as staging:
        staging.mkdir()
        (staging / 'y.txt').write_text('2')
    assert [p.name for p in out.iterdir()] == ['y.txt']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['report']  # no staging left over


def test_files_and_directories_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        file = write_text(tmp_path / 'a.txt', 'x')
        with atomic_directory(tmp_path / 'out') as staging:
            staging.mkdir()
            write_text(staging / 'b.txt', 'y')
    finally:
        os.umask(previous)
    assert stat.S_IMODE(file.stat().st_mode) == 0o640  # 0666 & ~027, not mkstemp's 0600
    assert stat.S_IMODE((tmp_path / 'out').stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / 'out' / 'b.txt').stat().st_mode) == 0o640


def test_a_killed_writers_staging_is_removed_by_the_next_owner(tmp_path: Path) -> None:
    target = tmp_path / 'run[1]-ab'
    with pytest.raises(KeyboardInterrupt), atomic_directory(target) as staging:
        staging.mkdir()
        (staging / 'half.json').write_text('{')
        holder = staging.parent
        raise KeyboardInterrupt
    assert not holder.exists()  # the block's own cleanup ran
    killed = tmp_path / '.run[1]-ab.partial-x1y2' / 'run[1]-ab'  # a SIGKILL skips it
    killed.mkdir(parents=True)
    (killed / 'half.json').write_text('{')
    other = tmp_path / '.run1-ab.partial-zz'  # another bag's: not touched
    other.mkdir()
    assert remove_stale_staging(target) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.run1-ab.partial-zz']
