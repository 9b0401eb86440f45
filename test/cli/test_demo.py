"""`make demo` end to end at a tiny size (2 frames per domain, 64x48): every promised output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zoedepth_ros.io.bag_reader import open_bag
from zoedepth_ros.io.bags import FrameTopics, read_rgbd
from zoedepth_ros.io.messages import stamp_ns

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / 'demo'
    done = subprocess.run([sys.executable, '-m', 'zoedepth_ros.cli.demo', '--output', str(out),
                           '--frames', '2', '--size', '64', '48', '--rate', '1.0'],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ('report', 'plots', 'depth images', 'clouds (PLY)', 'output bag', 'node bag'):
        assert f'  {line}' in done.stdout
    report = (out / 'eval' / 'report.md').read_text()
    assert '| all | 4 |' in report and 'frames: 4 colour frames, 4 paired' in report
    assert len(list((out / 'eval' / 'plots').glob('sample_*.png'))) == 4
    assert len(list((out / 'eval' / 'plots').glob('*.png'))) == 8
    input_stamps = [f.stamp_ns for f in read_rgbd(out / 'input_bag', FrameTopics(
        '/camera/image_raw'))]
    assert len(input_stamps) == 4 and input_stamps[2] - input_stamps[1] == 10**9  # 1 s gap
    with open_bag(out / 'node_bag') as reader:
        depth = [c for c in reader.connections if c.topic == '/zoedepth/depth/image']
        recorded = [stamp_ns(reader.deserialize(raw, c.msgtype).header)
                    for c, _, raw in reader.messages(connections=depth)]
    assert recorded and set(recorded) <= set(input_stamps)
    eval_topics = FrameTopics('/camera/image_raw', '/zoedepth/depth/image', tolerance_s=0.0)
    assert all(f.depth_m is not None for f in read_rgbd(out / 'eval_bag', eval_topics))
    plys = sorted((out / 'depth').glob('*.ply'))
    assert [p.name for p in plys] == ['frame_0000.ply']  # every 6th frame
    header = plys[0].read_bytes()[:200].decode('ascii', 'replace')
    assert 'element vertex 3072' in header  # 64 x 48 valid points
    assert (out / 'depth' / 'frame_0000_depth_color.png').stat().st_size > 0
