"""Metric anchoring and the focal-length correction on synthetic bags, measured in one run.

Usage (from the repository root, with the venv's python):
    python benchmarks/bench_anchoring.py [--model zoedepth_demo_nk] [--frames 40]
        [--fovs 45 62 90] [--size 160x120] [--json PATH]

For each horizontal field of view and domain, ``zoedepth synth --format bag`` renders a bag
with the exact depth, a simulated 16-beam lidar (``/lidar/points``) and a sparse ToF grid
(``/sparse/depth``) from the same seed; ``bag eval`` then scores every frame, in one pass per
variant: the model as it is, with the focal-length correction (the model's training cameras'
fx / width as the reference: ``--reference``), anchored to the lidar and anchored to the ToF
(the global-scale fit, smoothed over 0.5 s), each also with sparse-guided head selection
(``anchor.head_selection: sparse``: the head whose fit explains the samples better serves the
frame). Prints REL and delta1 per variant, the ratio REL(variant) / REL(plain) (the target for
the 16-beam lidar: <= 0.5 where the model's scale is off; anchored REL never above plain) and
the share of frames served by the bag's own domain's head. The
bundled demo model was trained on the synth cameras (62 degrees indoors, 75 outdoors: the
default reference).

``--crops 0.6`` adds a longer lens per domain, twice: the synth camera's field of view
narrowed to the centre 0.6 of its image ('crop', rendered at full size), and the default
camera's frames cut to their centre 0.6 ('cut': fewer pixels, as a crop of a recording; depth,
ToF and CameraInfo cut alike, lidar points unchanged).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_OUTPUT_DIR, machine_facts, versions, write_report

from zoedepth_ros.anchoring import AnchorOptions
from zoedepth_ros.cli.main import main as cli
from zoedepth_ros.evaluation.bags import BagEvalSettings, evaluate_bag
from zoedepth_ros.geometry import PinholeCamera
from zoedepth_ros.inference import DepthEstimator
from zoedepth_ros.io.bag_reader import open_bag
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.bags import IMAGE_TYPE, FrameTopics
from zoedepth_ros.io.messages import (
    camera_info_fields,
    camera_info_from_camera,
    depth_image_from_msg,
    encode_float_image,
    image_fields,
    image_to_rgb,
    stamp_ns,
)
from zoedepth_ros.pipeline.options import FocalOptions, FrameOptions

SYNTH_FOCAL = (0.5 / math.tan(math.radians(31.0)), 0.5 / math.tan(math.radians(37.5)))
"""fx / width of ``zoedepth synth``'s default cameras (indoor 62 degrees, outdoor 75): the
demo model's training cameras."""
TOPICS = FrameTopics('/camera/image_raw', '/camera/depth/image', '/camera/camera_info', 0.02)
RANGES = {'indoor': 10.0, 'outdoor': 80.0}
INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
SYNTH_FOV = {'indoor': 62.0, 'outdoor': 75.0}
"""``zoedepth synth``'s default horizontal field of view per domain."""


def cropped_fov(fov: float, crop: float) -> float:
    """The horizontal field of view of the centre ``crop`` of a ``fov`` camera's image."""
    return math.degrees(2 * math.atan(crop * math.tan(math.radians(fov / 2))))


def render(root: Path, domain: str, fov: float, sensor: str, frames: int, size: str,
           seed: int) -> Path:
    """The bag of one camera, domain and sensor (same seed: the same frames for each sensor)."""
    path = root / f'{domain}_{fov:g}_{sensor}'
    if not path.exists():
        code = cli(['synth', '--domain', domain, '--count', str(frames), '--size', size,
                    '--seed', str(seed), '--format', 'bag', '--sparse', sensor,
                    '--hfov', f'{fov:g}', '--output', str(path)])
        if code != 0:
            raise SystemExit(f'synth failed for {path}')
    return path


def variants(reference: tuple[float, float]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Variant -> (the sensor bag it reads, bag eval settings)."""
    def anchored(topic: str, selection: str) -> dict[str, Any]:
        anchor = AnchorOptions(time_constant_s=0.5, head_selection=selection)
        return {'sparse_topic': topic, 'frame': FrameOptions(anchor=anchor)}

    return {'plain': ('lidar16', {}),
            'focal': ('lidar16', {'frame': FrameOptions(focal=FocalOptions(True, *reference))}),
            'lidar16': ('lidar16', anchored('/lidar/points', 'router')),
            'lidar16_select': ('lidar16', anchored('/lidar/points', 'sparse')),
            'tof': ('tof', anchored('/sparse/depth', 'router')),
            'tof_select': ('tof', anchored('/sparse/depth', 'sparse'))}


def cameras(fovs: list[float], crops: list[float], domains: list[str]
            ) -> list[tuple[str, str, float, float]]:
    """(lens label, domain, horizontal field of view, cut) of every bag pair."""
    lenses = [(f'hfov {fov:g}', domain, fov, 1.0) for fov in fovs for domain in domains]
    for crop in crops:
        lenses += [(f'crop {crop:g}', domain, round(cropped_fov(SYNTH_FOV[domain], crop), 2),
                    1.0) for domain in domains]
        lenses += [(f'cut {crop:g}', domain, SYNTH_FOV[domain], crop) for domain in domains]
    return lenses


def cut_bag(source: Path, cut: float) -> Path:
    """``source`` with every image, depth image and CameraInfo cut to its centre ``cut``."""
    target = source.with_name(f'{source.name}_cut{cut:g}')
    if target.exists():
        return target
    with open_bag(source) as reader, AtomicBagWriter(target, 'mcap') as writer:
        for connection, bag_time, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            if connection.msgtype == IMAGE_TYPE:
                rows, cols = _centre(int(message.height), cut), _centre(int(message.width), cut)
                header = writer.header(stamp_ns(message.header), message.header.frame_id)
                if message.encoding == 'rgb8':
                    pixels = image_to_rgb(message)[rows, cols]
                    fields = image_fields(np.ascontiguousarray(pixels), 'rgb8')
                else:
                    depth = depth_image_from_msg(message)[rows, cols]
                    fields = encode_float_image(np.ascontiguousarray(depth, np.float32))
                writer.write(connection.topic, writer.image(fields, header), bag_time)
            elif connection.msgtype == INFO_TYPE:
                info = camera_info_fields(message)
                rows, cols = _centre(info.height, cut), _centre(info.width, cut)
                camera = info.camera
                cut_camera = PinholeCamera(camera.fx, camera.fy, camera.cx - cols.start,
                                           camera.cy - rows.start, cols.stop - cols.start,
                                           rows.stop - rows.start)
                header = writer.header(stamp_ns(message.header), message.header.frame_id)
                writer.write(connection.topic, writer.camera_info(
                    camera_info_from_camera(cut_camera), header), bag_time)
            else:  # lidar points: 3-D, unchanged
                writer.write_raw(connection.topic, connection.msgtype, bag_time, raw, connection)
    return target


def _centre(size: int, cut: float) -> slice:
    keep = int(round(size * cut))
    start = (size - keep) // 2
    return slice(start, start + keep)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='zoedepth_demo_nk')
    parser.add_argument('--frames', type=int, default=40, help='frames per bag')
    parser.add_argument('--fovs', type=float, nargs='*', default=[45.0, 62.0, 75.0, 90.0])
    parser.add_argument('--crops', type=float, nargs='*', default=[0.6],
                        help='longer lenses: centre crops of the synth camera (per domain)')
    parser.add_argument('--domains', nargs='+', default=list(RANGES), choices=list(RANGES))
    parser.add_argument('--size', default='160x120')
    parser.add_argument('--seed', type=int, default=11)
    parser.add_argument('--reference', type=float, nargs=2, default=SYNTH_FOCAL,
                        metavar=('INDOOR', 'OUTDOOR'),
                        help="fx / width of the model's training cameras (per head)")
    parser.add_argument('--bags', default=str(DEFAULT_OUTPUT_DIR / 'anchoring_bags'))
    parser.add_argument('--json', default=str(DEFAULT_OUTPUT_DIR / 'anchoring.json'))
    args = parser.parse_args()
    estimator = DepthEstimator.from_pretrained(args.model, device='cpu')
    rows = []
    for lens, domain, fov, cut in cameras(args.fovs, args.crops, args.domains):
        top = RANGES[domain]
        plain_rel = math.nan
        for name, (sensor, extra) in variants(tuple(args.reference)).items():
            bag = render(Path(args.bags), domain, fov, sensor, args.frames, args.size,
                         args.seed)
            bag = bag if cut == 1.0 else cut_bag(bag, cut)
            settings = BagEvalSettings(TOPICS, max_depth=top, **extra)
            report = evaluate_bag(estimator, bag, settings)
            rel, a1 = report.overall['abs_rel'], report.overall['a1']
            plain_rel = rel if name == 'plain' else plain_rel
            scales = [r.alignment['scale'] for r in report.frames if r.alignment]
            own = sum(r.domain == domain for r in report.frames) / len(report.frames)
            routed = sum(r.routed_domain == domain for r in report.frames) / len(report.frames)
            row = {'lens': lens, 'hfov_deg': fov, 'domain': domain, 'variant': name,
                   'abs_rel': rel, 'a1': a1, 'rel_ratio_to_plain': rel / plain_rel,
                   'frames': report.evaluated, 'own_head_share': own,
                   'router_own_head_share': routed,
                   'median_scale': sorted(scales)[len(scales) // 2] if scales else None}
            rows.append(row)
            print(f'{lens:9s} ({fov:5.1f}) {domain:7s} {name:14s} REL {rel:.4f} '
                  f'delta1 {a1:.4f}  REL / plain {rel / plain_rel:.3f}  own head '
                  f'{own:.2f} (router {routed:.2f})', flush=True)
    report = {'benchmark': 'anchoring', **machine_facts('cpu'), 'versions': versions(),
              'model': args.model, 'frames_per_bag': args.frames, 'size': args.size,
              'reference_focal': args.reference, 'results': rows}
    print(f'wrote {write_report(args.json, report)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
