"""Reading bags: stamp pairing with jitter and drops, compressed colour, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bag_fixtures import BASE_NS, INFO, OFFSETS_MS, PAIRED, PERIOD_NS, TOPICS, gt_depth, write_bag

from zoedepth_ros.errors import BagError
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.bags import FrameTopics, nearest_within, read_rgbd
from zoedepth_ros.io.messages import encode_depth


def test_nearest_within_by_hand() -> None:
    stamps = np.array([300, 100, 200, 1000], dtype=np.int64)  # unsorted on purpose
    queries = np.array([90, 150, 260, 640, 1010, 2000], dtype=np.int64)
    # 150 is a tie between 100 and 200: the earlier stamp wins; 640 is 340 from both
    assert nearest_within(stamps, queries, 50).tolist() == [1, 1, 0, -1, 3, -1]
    assert nearest_within(stamps[:0], queries, 50).tolist() == [-1] * 6


@pytest.mark.parametrize('storage, encoding', [('sqlite3', '32FC1'), ('mcap', '16UC1')])
def test_pairing_with_jitter_and_drops(tmp_path: Path, storage: str, encoding: str) -> None:
    write_bag(tmp_path / 'bag', storage, encoding)
    frames = list(read_rgbd(tmp_path / 'bag', TOPICS))
    assert [f.index for f in frames] == list(range(len(OFFSETS_MS)))
    assert [f.stamp_ns for f in frames] == [BASE_NS + i * PERIOD_NS for i in range(6)]
    assert [i for i, f in enumerate(frames) if f.depth_m is not None] == PAIRED
    tolerance = 1e-3 if encoding == '16UC1' else 0.0
    for index in PAIRED:
        frame = frames[index]
        assert frame.depth_offset_ns == int(OFFSETS_MS[index] * 1e6)
        np.testing.assert_allclose(frame.depth_m, gt_depth(index), atol=tolerance)
        assert frame.camera_info == INFO and frame.frame_id == 'cam_optical_frame'
        assert frame.rgb.shape == (48, 64, 3) and frame.rgb.dtype == np.uint8


def test_read_errors_are_bag_errors(tmp_path: Path) -> None:
    with pytest.raises(BagError, match='not found'):
        list(read_rgbd(tmp_path / 'absent', TOPICS))


def test_compressed_colour_frames(tmp_path: Path) -> None:
    """CompressedImage (png) colour topics decode to the original RGB."""
    import cv2

    rgb = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    png = cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))[1]
    with AtomicBagWriter(tmp_path / 'bag', 'mcap') as bag:
        header = bag.header(BASE_NS, 'cam_optical_frame')
        message = bag.typestore.types['sensor_msgs/msg/CompressedImage'](
            header=header, format='rgb8; png compressed bgr8', data=png.ravel())
        bag.write('/cam/image_raw/compressed', message, BASE_NS)
        bag.write(TOPICS.depth, bag.image(encode_depth(gt_depth(0)), header), BASE_NS)
    topics = FrameTopics('/cam/image_raw/compressed', TOPICS.depth)
    (frame,) = read_rgbd(tmp_path / 'bag', topics)
    np.testing.assert_array_equal(frame.rgb, rgb)
    assert frame.depth_offset_ns == 0 and frame.camera_info is None
