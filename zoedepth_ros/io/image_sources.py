"""Which images a run reads and under which names its outputs go, decided before it starts.

:func:`plan_images` turns image files, folders (optionally recursive), globs and videos into
:class:`ImageSource` items whose output names mirror the inputs' paths relative to the folder
given (``sub/room`` for ``photos/sub/room.png`` of ``photos/``), and refuses, before any
work, a selection that is empty (saying why: a folder whose images are all in subfolders,
a missing path) or two inputs that would write the same output name.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from zoedepth_ros.errors import InputError, ZoeDepthError
from zoedepth_ros.io.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, read_rgb

MEDIA_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES


@dataclass(frozen=True)
class ImageSource:
    """One image or video file and the output name of its predictions (a relative POSIX path
    without suffix; a video's frames add ``_000000``, ``_000001``...)."""

    path: Path
    name: str


def plan_images(inputs: Sequence[str], recursive: bool = False) -> list[ImageSource]:
    """Every image and video of ``inputs`` with its output name, in input order.

    Raises:
        InputError: an input that is no file, folder or glob match; a folder without images
            (naming the subfolders' images when ``recursive`` is off); nothing selected; two
            inputs with the same output name (listing them).
    """
    sources: list[ImageSource] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            sources += _folder(path, recursive)
        elif path.is_file():
            sources.append(ImageSource(path, path.stem))
        else:
            matches = [Path(p) for p in sorted(glob.glob(item))]
            files = [p for p in matches if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES]
            if not files:
                raise InputError(f'{item}: no such file or folder, and no image or video '
                                 'matches it as a glob')
            sources += [ImageSource(p, p.stem) for p in files]
    if not sources:
        raise InputError('no input images given')
    _refuse_clashes(sources)
    return sources


def _folder(folder: Path, recursive: bool) -> list[ImageSource]:
    pattern = '**/*' if recursive else '*'
    files = sorted(p for p in folder.glob(pattern)
                   if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
    if files:
        return [ImageSource(p, p.relative_to(folder).with_suffix('').as_posix()) for p in files]
    deeper = [p for p in folder.glob('**/*') if p.suffix.lower() in MEDIA_SUFFIXES]
    if deeper and not recursive:
        raise InputError(f'{folder} holds no image at its top level, but {len(deeper)} in its '
                         'subfolders: add --recursive to read them (outputs keep the subfolders)')
    raise InputError(f'{folder} holds no image or video ({", ".join(MEDIA_SUFFIXES)})')


def _refuse_clashes(sources: list[ImageSource]) -> None:
    seen: dict[str, Path] = {}
    clashes = []
    for source in sources:
        first = seen.setdefault(source.name, source.path)
        if first != source.path:
            clashes.append(f'{first} and {source.path} -> {source.name}')
    if clashes:
        raise InputError(f'{len(clashes)} output name(s) would be written twice: '
                         f'{"; ".join(clashes[:5])}; give their common folder (with '
                         '--recursive) so the outputs keep their subfolders, or rename them')


def read_sources(sources: Sequence[ImageSource]
                 ) -> Iterator[tuple[str, np.ndarray | ZoeDepthError]]:
    """(output name, RGB image or the error reading it) of every image and video frame:
    errors are yielded, not raised, so one bad file never stops a batch."""
    for source in sources:
        if source.path.suffix.lower() in VIDEO_SUFFIXES:
            yield from _frames(source)
            continue
        try:
            yield source.name, read_rgb(source.path)
        except ZoeDepthError as err:
            yield source.name, err


def _frames(source: ImageSource) -> Iterator[tuple[str, np.ndarray | ZoeDepthError]]:
    capture = cv2.VideoCapture(str(source.path))
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield f'{source.name}_{index:06d}', cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    if index == 0:
        yield source.name, InputError(f'{source.path}: no frames could be read')


def iter_images(inputs: Sequence[str], recursive: bool = False
                ) -> Iterator[tuple[str, np.ndarray | ZoeDepthError]]:
    """(output name, RGB image or error) of every input, each planned on its own: an input
    that selects nothing yields its error instead of stopping the others."""
    for item in inputs:
        try:
            sources = plan_images([item], recursive)
        except InputError as err:
            yield Path(item).name, err
            continue
        yield from read_sources(sources)
