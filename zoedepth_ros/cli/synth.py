"""Generate synthetic indoor rooms / outdoor streets with exact metric depth.

Examples:
  zoedepth synth --domain both --count 500 --size 160x120 --seed 0 --output data/synth
  zoedepth synth --domain outdoor --count 200 --format bag --storage mcap --output bags/street
  zoedepth synth --domain indoor --count 50 --format bag --sparse tof --hfov 90 --output bags/tof

With --domain both, OUTPUT gets indoor/ and outdoor/ sub-datasets of COUNT frames each.
Folders use the generic RGB-D format (rgb/, depth/ uint16 PNG, dataset.yaml, train/test.txt);
bags hold /camera/image_raw (rgb8), /camera/camera_info and /camera/depth/image (32FC1 m).

--sparse (bags only) adds a simulated sparse metric sensor, sampled from the exact depth with
the same stamp and frame id (parameters also in metadata.yaml's custom_data):
  lidar16  /lidar/points (PointCloud2 x, y, z float32, optical frame): 16 beams at -15..+15 deg
           every 2 deg, every 0.2 deg of azimuth inside the image; range noise sigma 0.02 m
           indoors / 0.05 m outdoors, 10 % dropouts, max range 10 m / 80 m, none on sky.
  tof      /sparse/depth (Image 32FC1 m, NaN = no sample, camera size): every 8th pixel from
           (4, 4); noise 1 % of depth, 10 % dropouts, nothing beyond 5 m or on invalid depth.
--hfov sets the pinhole camera's horizontal field of view (square pixels, centred principal
point); CameraInfo and dataset.yaml carry the intrinsics. Same seed, same output.
"""

from __future__ import annotations

import argparse

from zoedepth_ros.cli.common import writable_target
from zoedepth_ros.cli.progress import Progress
from zoedepth_ros.errors import InputError

HELP = 'generate synthetic RGB-D scenes (folder format or rosbag2)'



def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (width, height)."""
    try:
        width, height = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise InputError(f'--size {text!r}: expected WIDTHxHEIGHT, e.g. 160x120') from None
    if width < 8 or height < 8:
        raise InputError(f'--size {text!r}: width and height must be at least 8 pixels')
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--domain', choices=('indoor', 'outdoor', 'both'), default='both')
    parser.add_argument('--count', type=int, required=True, help='frames per domain')
    parser.add_argument('--size', default='160x120', help='WIDTHxHEIGHT (default 160x120)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--format', dest='fmt', choices=('folder', 'bag'), default='folder')
    parser.add_argument('--storage', choices=('sqlite3', 'mcap'), default='sqlite3',
                        help='bag storage plugin (with --format bag)')
    parser.add_argument('--frames-per-scene', type=int, default=None,
                        help='views per random scene (default 4 for folders, 40 for bags)')
    parser.add_argument('--test-fraction', type=float, default=0.1,
                        help='share of scenes listed in test.txt (default 0.1)')
    parser.add_argument('--workers', type=int, default=1,
                        help='rendering processes (default 1; output does not depend on it)')
    # Literal choices and defaults (synth.sensors.SPARSE_MODES, synth.generator.HFOV_DEG):
    # importing the synth package pulls in trimesh, and --help stays instant without it.
    parser.add_argument('--sparse', choices=('none', 'lidar16', 'tof'), default='none',
                        help='simulated sparse depth sensor in the bag (with --format bag; '
                             'default none)')
    parser.add_argument('--hfov', type=float, default=None, metavar='DEG',
                        help='horizontal field of view in degrees (default 62 indoor, '
                             '75 outdoor)')
    parser.add_argument('--overwrite', action='store_true', help='replace a non-empty OUTPUT')
    parser.add_argument('--output', required=True, help='directory to create')


def run(args: argparse.Namespace) -> int:
    from zoedepth_ros.synth import generate

    size = parse_size(args.size)
    if args.count < 1:
        raise InputError(f'--count must be at least 1, got {args.count}')
    writable_target(args.output, 'output')
    total = args.count * (2 if args.domain == 'both' else 1)
    with Progress('synth', total, 'frame') as bar:
        summary = generate(args.domain, args.count, size, args.seed, args.output, args.fmt,
                           args.storage, frames_per_scene=args.frames_per_scene,
                           test_fraction=args.test_fraction, overwrite=args.overwrite,
                           workers=args.workers, progress=bar.update, sparse=args.sparse,
                           hfov_deg=args.hfov)
    print(summary)
    return 0
