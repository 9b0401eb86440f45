"""Distillation: a teacher model labels unlabeled frames, a student trains on its depth.

Sources are image files, folders, globs and videos (``io.image_sources.iter_images``) and recorded
bags (``bag:PATH[,image=TOPIC]``: every colour frame of the topic). The teacher predicts each
frame at the frame's own resolution; the head its router picks decides where the frame goes:
``LABELS/indoor`` or ``LABELS/outdoor``, generic RGB-D folders (``io.rgbd_folder``) split
into train and test by blocks of consecutive frames (neighbouring frames look alike). The
student then trains on them like on any RGB-D data: ``metric`` for a one-head student,
``metric_nk`` for a two-head student (whose router learns the teacher's routing). No ground
truth is needed anywhere: a robot's own recordings become a model for its environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoedepth_ros.data.base import held_out
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io.atomic import atomic_directory
from zoedepth_ros.io.bags import FrameTopics, read_rgbd
from zoedepth_ros.io.image_sources import iter_images
from zoedepth_ros.io.rgbd_folder import FolderWriter

DEPTH_SCALE = {'indoor': 0.001, 'outdoor': 1.0 / 256.0}
"""Metres per stored unit: millimetres indoors (to 65 m), 1/256 m outdoors (to 256 m)."""
MAX_DEPTH = {'indoor': 10.0, 'outdoor': 80.0}


@dataclass
class Labels:
    """What labelling produced: one folder per domain the teacher chose, and counts."""

    folders: dict[str, Path] = field(default_factory=dict)
    frames: int = 0
    unreadable: int = 0
    per_domain: dict[str, int] = field(default_factory=dict)


def source_frames(spec: str) -> Iterator[tuple[str, np.ndarray | Exception]]:
    """(stem, RGB image or the error reading it) of every frame of one source."""
    name, sep, rest = spec.partition(':')
    if not (sep and name == 'bag'):
        yield from iter_images([spec])
        return
    path, *options = rest.split(',')
    topic = '/camera/image_raw'
    for option in options:
        key, _, value = option.partition('=')
        if key == 'image' and value:
            topic = value
    for frame in read_rgbd(path, FrameTopics(topic)):
        yield str(frame.stamp_ns), frame.rgb


def label_frames(teacher: DepthEstimator, sources: Sequence[str], output: Path,
                 holdout: float = 0.1,
                 progress: Callable[[int], None] | None = None) -> Labels:
    """Predict every frame of ``sources`` with ``teacher`` and write the labelled folders.

    Args:
        teacher: the estimator whose depth and routing the student learns.
        sources: image/folder/glob/video paths and ``bag:`` specs.
        output: directory to create (atomically: complete or absent).
        holdout: share of frames (in blocks of consecutive frames, ``data.base.held_out``)
            in each folder's test split.
        progress: called with 1 after each frame.
    """
    labels = Labels()
    writers: dict[str, FolderWriter] = {}
    with atomic_directory(output) as staging:
        staging.mkdir()
        for source_index, spec in enumerate(sources):
            for position, (stem, frame) in enumerate(source_frames(spec)):
                if isinstance(frame, Exception):
                    labels.unreadable += 1
                    continue
                result = teacher.predict(frame)
                domain = result.domain
                if domain not in writers:
                    writers[domain] = FolderWriter(staging / domain, domain, None,
                                                   DEPTH_SCALE[domain], MAX_DEPTH[domain],
                                                   name=f'teacher_{domain}')
                test = held_out(position, holdout)
                writers[domain].write(f'{source_index:02d}_{stem}', frame, result.depth_m,
                                      'test' if test else 'train')
                labels.frames += 1
                labels.per_domain[domain] = labels.per_domain.get(domain, 0) + 1
                if progress is not None:
                    progress(1)
        for writer in writers.values():
            writer.close()
    labels.folders = {domain: output / domain for domain in writers}
    return labels
