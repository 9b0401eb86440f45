"""Predict metric depth for image files, folders, globs or videos.

For each image writes <name>_depth.npy (float32 metres), <name>_depth.png (uint16
millimetres, 0 = invalid), <name>_depth_color.png (colour map with a metre scale bar) and,
with --ply, <name>.ply (coloured points in the camera optical frame). <name> is the image's
path relative to the folder given (subfolders kept, with --recursive), or its file name for
files and globs; two inputs with the same name are refused before the run starts.

Examples:
  zoedepth infer --output out/ photos/*.jpg
  zoedepth infer --model ZoeD_M12_NK --device cuda --precision fp16 --output out/ video.mp4
  zoedepth infer --model ZoeD_M12_N.pt --ply --fov-deg 60 --output out/ room.png
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np

from zoedepth_ros.cli.common import (
    add_model_arguments,
    build_estimator,
    os_error_line,
    writable_folder,
)
from zoedepth_ros.cli.progress import Progress

HELP = 'predict metric depth for images, folders, globs or videos'
logger = logging.getLogger('zoedepth.infer')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('inputs', nargs='+', help='image files, folders, globs or videos')
    parser.add_argument('-o', '--output', type=Path, required=True, help='output folder')
    parser.add_argument('-r', '--recursive', action='store_true',
                        help="also read folders' subfolders (outputs keep the subfolders)")
    add_model_arguments(parser)
    camera = parser.add_argument_group('point cloud (--ply)')
    camera.add_argument('--ply', action='store_true', help='also write a coloured PLY cloud')
    camera.add_argument('--fov-deg', type=float, default=60.0,
                        help='horizontal field of view when fx is not given (default 60)')
    for name in ('fx', 'fy', 'cx', 'cy'):
        camera.add_argument(f'--{name}', type=float, help=f'intrinsics {name} in pixels')
    parser.add_argument('--max-depth', type=float, default=None,
                        help='colour-map range upper end in metres (default: per image)')


def write_outputs(args: argparse.Namespace, stem: str, rgb: np.ndarray, depth: np.ndarray
                  ) -> None:
    from zoedepth_ros.geometry import PinholeCamera, depth_to_points
    from zoedepth_ros.io.files import write_npy, write_ply, write_png
    from zoedepth_ros.io.messages import depth_to_millimetres
    from zoedepth_ros.io.visualize import colorize_depth, with_scale_bar

    out = args.output
    write_npy(out / f'{stem}_depth.npy', depth.astype(np.float32))
    write_png(out / f'{stem}_depth.png', depth_to_millimetres(depth))
    finite = depth[np.isfinite(depth)]
    low = float(finite.min()) if finite.size else 0.1
    high = args.max_depth or (float(finite.max()) if finite.size else 10.0)
    write_png(out / f'{stem}_depth_color.png',
              with_scale_bar(colorize_depth(depth, low, high), low, high))
    if args.ply:
        height, width = depth.shape
        if args.fx is not None:
            camera = PinholeCamera(args.fx, args.fy or args.fx,
                                   args.cx if args.cx is not None else (width - 1) / 2,
                                   args.cy if args.cy is not None else (height - 1) / 2,
                                   width, height)
        else:
            camera = PinholeCamera.from_fov(width, height, args.fov_deg)
        points = depth_to_points(depth, camera).reshape(-1, 3)
        valid = np.isfinite(points).all(axis=1)
        write_ply(out / f'{stem}.ply', points[valid], rgb.reshape(-1, 3)[valid])


def run(args: argparse.Namespace) -> int:
    from zoedepth_ros.io.files import VIDEO_SUFFIXES
    from zoedepth_ros.io.image_sources import plan_images, read_sources

    sources = plan_images(args.inputs, args.recursive)  # names decided before any work
    writable_folder(args.output)
    estimator = build_estimator(args)
    logger.info('model %s on %s (%s, preprocess %s)', estimator.name, estimator.device,
                estimator.precision, estimator.preprocess)
    done, failed = 0, 0
    domains: Counter[str] = Counter()
    model_ms: list[float] = []
    start = time.perf_counter()
    videos = any(s.path.suffix.lower() in VIDEO_SUFFIXES for s in sources)
    with Progress('infer', None if videos else len(sources), 'image') as bar:
        for stem, frame in read_sources(sources):
            if isinstance(frame, Exception):
                logger.error('skipped %s: %s', stem, frame)
                failed += 1
            else:
                result = estimator.predict(frame)
                try:
                    write_outputs(args, stem, frame, result.depth_m)
                except OSError as err:  # the disk filled up: what is written stays
                    logger.error('%s; the outputs of %d image(s) before %s are complete in %s',
                                 os_error_line(err), done, stem, args.output)
                    return 2
                done += 1
                domains[result.domain] += 1
                model_ms.append(result.timings_ms['model'])
            bar.update()
    elapsed = time.perf_counter() - start
    summary = ', '.join(f'{name} {count}' for name, count in sorted(domains.items()))
    logger.info('%d image(s) -> %s in %.1f s (model %.0f ms/image; %s)%s', done, args.output,
                elapsed, float(np.mean(model_ms)) if model_ms else 0.0, summary or 'none',
                f'; {failed} failed' if failed else '')
    if estimator.warning:
        logger.warning('%s', estimator.warning)
    return 1 if failed or not done else 0
