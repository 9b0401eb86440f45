"""End-to-end demo (``make demo``): no camera, no internet, a few minutes on 2 CPU cores.

1. Renders a small synthetic indoor + outdoor rosbag with exact depth (zoedepth_ros.synth).
2. Starts the depth node (``python -m zoedepth_ros.ros.depth_node``) in its own ROS domain,
   records its outputs (``zoedepth bag record``), plays the bag into it (``bag play``).
3. Runs ``zoedepth bag eval`` on the input bag: report, plots, and a bag with predictions.
4. Writes depth images (npy, 16-bit mm PNG, colour) and PLY clouds of some frames.

Usage: ``python -m zoedepth_ros.cli.demo --output outputs/demo``
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from zoedepth_ros.cli.bag import format_summary
from zoedepth_ros.cli.infer import write_outputs
from zoedepth_ros.model.weights import DEMO_MODEL

logger = logging.getLogger('zoedepth.demo')
IMAGE, INFO, DEPTH = '/camera/image_raw', '/camera/camera_info', '/camera/depth/image'
NODE_OUTPUTS = ['/zoedepth/depth/image', '/zoedepth/depth/camera_info', '/zoedepth/depth/std',
                '/zoedepth/points', '/zoedepth/domain']
PARTS = ('input_bag', 'node_bag', 'eval', 'eval_bag', 'depth', 'logs')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m zoedepth_ros.cli.demo',
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output', type=Path, default=Path('outputs/demo'))
    parser.add_argument('--frames', type=int, default=12, help='frames per domain (default 12)')
    parser.add_argument('--size', type=int, nargs=2, default=(160, 120), metavar=('W', 'H'))
    parser.add_argument('--rate', type=float, default=0.5, help='bag playback rate')
    parser.add_argument('--node-timeout', type=float, default=180.0,
                        help='seconds to wait for the node and recorder to come up')
    return parser


def write_demo_bag(path: Path, frames: int, size: tuple[int, int]) -> None:
    """Indoor then outdoor synthetic frames in one bag (10 Hz, 1 s gap between domains)."""
    from zoedepth_ros.io.bag_writer import AtomicBagWriter
    from zoedepth_ros.io.messages import camera_info_from_camera, encode_depth, image_fields
    from zoedepth_ros.synth import iter_frames
    from zoedepth_ros.synth.generator import FIRST_STAMP_NS

    offset = 0
    with AtomicBagWriter(path, 'mcap') as bag:
        for domain in ('indoor', 'outdoor'):
            last = 0
            for frame in iter_frames(domain, frames, size, seed=0, frames_per_scene=6):
                stamp = frame.stamp_ns + offset
                header = bag.header(stamp, 'camera_optical_frame')
                bag.write(IMAGE, bag.image(image_fields(frame.rgb, 'rgb8'), header), stamp)
                bag.write(INFO, bag.camera_info(camera_info_from_camera(frame.camera), header),
                          stamp)
                bag.write(DEPTH, bag.image(encode_depth(frame.depth_m), header), stamp)
                last = stamp
            offset = last + 1_000_000_000 - FIRST_STAMP_NS  # next domain: 1 s later


def _spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    handle = open(log, 'w')  # noqa: SIM115 - the child owns it; closed with the process
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)


def _wait_for_line(process: subprocess.Popen, log: Path, text: str, timeout_s: float,
                   partner: subprocess.Popen) -> bool:
    """Wait for ``text`` in ``log`` while both processes live."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None and partner.poll() is None:
        if text in log.read_text():
            return True
        time.sleep(0.2)
    return text in log.read_text()


def _stop(process: subprocess.Popen, timeout_s: float = 30.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def run_live(out: Path, rate: float, timeout_s: float) -> str | None:
    """Node + recorder + player over DDS; returns None on success or what went wrong."""
    # own domain, outside the test suite's 100..161 (test/conftest.py) and below Fast DDS's 233
    env = dict(os.environ, ROS_DOMAIN_ID=str(170 + os.getpid() % 60),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', OMP_NUM_THREADS='1',
               PYTHONUNBUFFERED='1')
    env.setdefault('ROS_LOG_DIR', str(out / 'logs' / 'ros'))
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                           'ROS_LOG_DIR')})
    node = _spawn([sys.executable, '-m', 'zoedepth_ros.ros.depth_node', '--ros-args',
                   '-r', '__ns:=/zoedepth', '-r', f'image:={IMAGE}', '-r', f'camera_info:={INFO}',
                   '-p', f'model:={DEMO_MODEL}', '-p', 'device:=cpu'], out / 'logs' / 'node.log',
                  env)
    record = _spawn([sys.executable, '-m', 'zoedepth_ros.cli.main', 'bag', 'record',
                     str(out / 'node_bag'), '--discovery-timeout', str(timeout_s), '--topics',
                     *NODE_OUTPUTS], out / 'logs' / 'record.log', env)
    try:
        if not _wait_for_line(record, out / 'logs' / 'record.log', 'recording', timeout_s,
                              node):
            return (f'the node did not come up within {timeout_s} s or exited (exit code '
                    f'{node.poll()}; see {out / "logs" / "node.log"})')
        from zoedepth_ros.ros.bag_play import play_bag

        logger.info('node is up; playing the bag into it at rate %s', rate)
        played = play_bag(out / 'input_bag', rate=rate, topics=[IMAGE, INFO],
                          wait_for_subscribers_s=timeout_s)
        logger.info('played %d messages; letting the node finish its last frame', played)
        time.sleep(5.0)
    finally:
        record_code = _stop(record)
        node_code = _stop(node)
    if record_code != 0 or node_code != 0:
        return f'recorder exit {record_code}, node exit {node_code} (see {out / "logs"})'
    return None


def write_depth_files(out: Path, every: int = 6) -> int:
    """Depth images and PLY clouds of every ``every``-th frame, from the eval output bag."""
    from zoedepth_ros.io.bags import FrameTopics, read_rgbd

    topics = FrameTopics(IMAGE, '/zoedepth/depth/image', '/zoedepth/depth/camera_info', 0.0)
    written = 0
    for frame in read_rgbd(out / 'eval_bag', topics):
        if frame.index % every or frame.depth_m is None or frame.camera_info is None:
            continue
        p = frame.camera_info.p
        args = argparse.Namespace(output=out / 'depth', max_depth=None, ply=True, fx=p[0],
                                  fy=p[5], cx=p[2], cy=p[6], fov_deg=60.0)
        write_outputs(args, f'frame_{frame.index:04d}', frame.rgb, frame.depth_m)
        written += 1
    return written


def run_demo(args: argparse.Namespace) -> int:
    import torch

    from zoedepth_ros.cli.main import main as zoedepth
    from zoedepth_ros.io.bag_info import summarize_bag

    start = time.perf_counter()
    out: Path = args.output
    for part in PARTS:
        shutil.rmtree(out / part, ignore_errors=True)
    (out / 'logs').mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # the node runs beside us on the same 2 cores
    logger.info('rendering %d indoor + %d outdoor synthetic frames', args.frames, args.frames)
    write_demo_bag(out / 'input_bag', args.frames, tuple(args.size))
    print(format_summary(summarize_bag(out / 'input_bag')))
    gap = run_live(out, args.rate, args.node_timeout)
    if gap:
        logger.error('live part skipped: %s; continuing with the offline evaluation', gap)
    code = zoedepth(['bag', 'eval', str(out / 'input_bag'), '--output', str(out / 'eval'),
                     '--camera-info-topic', INFO, '--device', 'cpu', '--model', DEMO_MODEL,
                     '--out-bag', str(out / 'eval_bag'), '--overwrite'])
    if code != 0:
        return code
    clouds = write_depth_files(out)
    print_locations(out, gap, clouds, time.perf_counter() - start)
    return 0 if gap is None else 1


def print_locations(out: Path, gap: str | None, clouds: int, seconds: float) -> None:
    from zoedepth_ros.io.bag_info import summarize_bag

    lines = ['', f'Demo finished in {seconds:.0f} s. Outputs under {out}/:',
             f'  report        {out / "eval" / "report.md"} (metrics.json, per_frame.csv)',
             f'  plots         {out / "eval" / "plots"}/',
             f'  depth images  {out / "depth"}/*_depth.png, *_depth_color.png, *_depth.npy',
             f'  clouds (PLY)  {out / "depth"}/*.ply ({clouds} frames)',
             f'  output bag    {out / "eval_bag"} (bag eval: originals + predictions)']
    if gap is None:
        counts = {t.name: t.count for t in summarize_bag(out / 'node_bag').topics}
        lines.append(f'  node bag      {out / "node_bag"} (recorded from the live node: '
                     f'{counts.get("/zoedepth/depth/image", 0)} depth frames)')
    else:
        lines.append(f'  node bag      not recorded: {gap}')
    lines.append(f'  NOTE: {DEMO_MODEL} was trained on synthetic scenes only; on real images '
                 'use ZoeD_M12_NK.')
    print('\n'.join(lines))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    args = build_parser().parse_args(argv)
    try:
        return run_demo(args)
    except KeyboardInterrupt:
        logger.error('interrupted')
        return 130


if __name__ == '__main__':
    sys.exit(main())
