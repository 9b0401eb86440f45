"""Several cameras of one bag: each evaluated as the multi-camera node serves it, one table per
camera and the pooled one.

``--camera front=/front/image_raw,depth=/front/depth,info=/front/camera_info,sparse=/front/tof``
names a camera and its topics (:func:`parse_camera`). Each camera's frames go through
:func:`~zoedepth_ros.evaluation.bags.evaluate_bag` with the run's settings and its own topics;
its outputs go into the output bag under ``<namespace>/<camera>/``, as the node publishes them,
and the original messages are copied once. The pooled table averages the frames of every
camera (per-frame metrics, as each camera's own table).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from zoedepth_ros.errors import ConfigError
from zoedepth_ros.evaluation.bags import BagEvalReport, BagEvalSettings
from zoedepth_ros.evaluation.corpus import pooled_corpus
from zoedepth_ros.metrics import METRIC_KEYS
from zoedepth_ros.names import CAMERA_NAME_RULE, is_camera_name, repeated

_KEYS = {'depth': 'depth', 'info': 'camera_info', 'sparse': 'sparse'}


@dataclass(frozen=True)
class CameraTopics:
    """One camera of a bag: its name and topics (None: not in the bag / use the default)."""

    name: str
    image: str
    depth: str | None = None
    camera_info: str | None = None
    sparse: str | None = None


def parse_camera(text: str) -> CameraTopics:
    """``NAME=IMAGE_TOPIC[,depth=TOPIC][,info=TOPIC][,sparse=TOPIC]`` -> CameraTopics.

    Raises:
        ConfigError: naming what is wrong (name, missing image topic, unknown key).
    """
    head, *rest = text.split(',')
    name, _, image = head.partition('=')
    if not is_camera_name(name):
        raise ConfigError(f'--camera {text!r}: {name!r} is not a camera name '
                          f'({CAMERA_NAME_RULE})')
    if not image.startswith('/'):
        raise ConfigError(f'--camera {text!r}: expected NAME=/image/topic first')
    values: dict[str, str] = {}
    for item in rest:
        key, _, topic = item.partition('=')
        if key not in _KEYS or not topic:
            raise ConfigError(f'--camera {text!r}: {item!r} is not depth=, info= or sparse= '
                              'with a topic')
        values[_KEYS[key]] = topic
    return CameraTopics(name, image, **values)


def check_cameras(cameras: list[CameraTopics]) -> list[CameraTopics]:
    """The cameras, with distinct names and image topics (ConfigError otherwise)."""
    for what, values in (('name', [c.name for c in cameras]),
                         ('image topic', [c.image for c in cameras])):
        twice = repeated(values)
        if twice:
            raise ConfigError(f'--camera: {what} {", ".join(twice)} given twice')
    return cameras


def camera_settings(settings: BagEvalSettings, camera: CameraTopics) -> BagEvalSettings:
    """The run's settings with ``camera``'s topics and its output namespace."""
    topics = replace(settings.topics, image=camera.image, depth=camera.depth,
                     camera_info=camera.camera_info)
    return replace(settings, topics=topics, sparse_topic=camera.sparse or settings.sparse_topic,
                   namespace=f'{settings.namespace.rstrip("/")}/{camera.name}')


def evaluate_cameras(evaluate: Callable[[str, BagEvalSettings, bool], BagEvalReport],
                     settings: BagEvalSettings, cameras: list[CameraTopics]
                     ) -> dict[str, BagEvalReport]:
    """Each camera's report: ``evaluate(name, its settings, copy the original messages)``
    (only the first camera copies them into an output bag)."""
    return {camera.name: evaluate(camera.name, camera_settings(settings, camera), index == 0)
            for index, camera in enumerate(check_cameras(cameras))}


def pooled_tables(reports: Mapping[str, BagEvalReport]) -> dict[str, Any]:
    """'per_camera' (frames, metrics, router mix, time), the pooled 'overall' and
    'per_domain': per-frame metrics averaged over every camera's evaluated frames."""
    per_camera = {}
    for name, report in reports.items():
        mix: dict[str, int] = {}
        for record in report.frames:
            mix[record.domain] = mix.get(record.domain, 0) + 1
        per_camera[name] = {'frames': len(report.frames), 'evaluated': report.evaluated,
                            **{key: report.overall[key] for key in METRIC_KEYS},
                            'domains': mix, 'seconds': report.seconds,
                            'camera_info': report.camera.get('camera_info_topic')}
    pooled = pooled_corpus({name: report.to_dict() for name, report in reports.items()})
    return {'per_camera': per_camera, 'overall': pooled['overall'],
            'per_domain': pooled['per_domain']}


def cameras_markdown(bag: str, model: str, tables: Mapping[str, Any], anchored: bool) -> str:
    """The top-level report.md of a multi-camera evaluation (each camera's own report is in
    its folder)."""
    label = ' (anchored)' if anchored else ''
    keys = ('a1', 'abs_rel', 'rmse')
    lines = [f'# Depth evaluation of {bag}: {len(tables["per_camera"])} cameras', '',
             f'Model: {model}. Each camera has its own report in `<camera>/report.md`.', '',
             f'## Per camera{label}', '',
             '| camera | frames | evaluated | delta1 | REL | RMSE | router mix | seconds |',
             '|---|---:|---:|---:|---:|---:|---|---:|']
    for name, row in tables['per_camera'].items():
        mix = ', '.join(f'{d} {n}' for d, n in sorted(row['domains'].items()))
        lines.append(f'| [{name}]({name}/report.md) | {row["frames"]} | {row["evaluated"]} | '
                     + ' | '.join(f'{row[k]:.4f}' for k in keys)
                     + f' | {mix} | {row["seconds"]:.1f} |')
    lines += ['', f'## All cameras{label}', '', '| | frames | delta1 | REL | RMSE |',
              '|---|---:|---:|---:|---:|']
    rows = [('overall', tables['overall'])] + list(tables['per_domain'].items())
    for name, row in rows:
        lines.append(f'| {name} | {row["frames"]} | '
                     + ' | '.join(f'{row[k]:.4f}' for k in keys) + ' |')
    return '\n'.join(lines) + '\n'
