"""Any valid rosbag2 bag reads: topics whose types cannot be parsed, metadata versions 4..9,
sqlite3 and mcap, split bags, zstd compression; damaged bags and paths that are not bags give one
clear error, and only damage is called damage."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from bag_fixtures import (
    CUSTOM,
    PAIRED,
    TOPICS,
    UNPARSEABLE,
    compat_bag,
    downgrade_metadata,
    extra_messages,
    raw_messages,
    split_bag,
    write_bag,
)
from doubles import null_estimator

from zoedepth_ros.data.bag_dataset import RosbagRGBD
from zoedepth_ros.errors import BagError
from zoedepth_ros.evaluation.bags import BagEvalSettings, evaluate_bag
from zoedepth_ros.io.bag_info import summarize_bag
from zoedepth_ros.io.bag_reader import open_bag
from zoedepth_ros.io.bag_writer import AtomicBagWriter
from zoedepth_ros.io.bags import read_rgbd

COUNTS = {'/cam/image_raw': 6, '/cam/camera_info': 6, '/cam/depth': 5, CUSTOM[0]: 3,
          **dict.fromkeys(UNPARSEABLE, 3)}
SKIPPED = {topic: msgtype for topic, (msgtype, _) in UNPARSEABLE.items()}
DAMAGED = 'the bag is truncated or damaged'


def check_reads(bag: Path, version: int = 9, skipped: dict[str, str] = SKIPPED) -> None:
    """Summary (every topic counted), frames paired, unparseable topics named, not decoded."""
    summary = summarize_bag(bag)
    assert {t.name: t.count for t in summary.topics} == COUNTS
    assert summary.version == version and summary.message_count == sum(COUNTS.values())
    assert summary.duration_s == pytest.approx(0.501)
    frames = list(read_rgbd(bag, TOPICS))
    assert [i for i, f in enumerate(frames) if f.depth_m is not None] == PAIRED
    with open_bag(bag) as reader:
        assert reader.unparseable() == skipped


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_unparseable_topics_are_named_and_stay_raw(tmp_path: Path, storage: str) -> None:
    compat_bag(tmp_path / 'bag', storage)
    check_reads(tmp_path / 'bag')
    expected = {(topic, t, raw) for topic, _, t, raw in extra_messages()}
    with open_bag(tmp_path / 'bag') as reader:
        custom = [c for c in reader.connections if c.topic == CUSTOM[0]]
        values = [reader.deserialize(raw, CUSTOM[1]).value
                  for _, _, raw in reader.messages(custom)]
        assert values == [40, 41, 42]  # a type defined only in the bag decodes from it
        every = {(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()}
        assert {m for m in every if m[0] in UNPARSEABLE or m[0] == CUSTOM[0]} == expected
        service = next(c for c in reader.connections if c.topic == '/x/_service_event')
        _, _, raw = next(reader.messages([service]))
        with pytest.raises(BagError, match=r'cannot decode /x/_service_event '
                                           r'\(some_pkg/srv/Foo_Event\): its stored definition'):
            reader.deserialize(raw, service.msgtype)
    dataset = RosbagRGBD(tmp_path / 'bag', TOPICS.image, TOPICS.depth, TOPICS.camera_info)
    assert len(dataset) == len(PAIRED) and dataset.skipped_topics == SKIPPED


@pytest.mark.parametrize('version', [4, 5, 6, 7, 8])
@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_metadata_versions_4_to_8(tmp_path: Path, storage: str, version: int) -> None:
    compat_bag(tmp_path / 'bag', storage)
    downgrade_metadata(tmp_path / 'bag', version)
    check_reads(tmp_path / 'bag', version)


@pytest.mark.parametrize('version', [5, 9])
def test_copies_keep_every_topic_even_without_stored_type_hashes(tmp_path: Path,
                                                                  version: int) -> None:
    """bag eval --out-bag of a bag that stores no type hashes (Humble's version 5): every
    topic, unparseable ones too, is copied byte for byte with its own definition."""
    compat_bag(tmp_path / 'bag', 'sqlite3')
    if version < 9:
        downgrade_metadata(tmp_path / 'bag', version)
    settings = BagEvalSettings(TOPICS, max_depth=10.0, namespace='/pred')
    with AtomicBagWriter(tmp_path / 'out', 'mcap') as writer:
        evaluate_bag(null_estimator(depth_m=2.0), tmp_path / 'bag', settings, writer)
    with open_bag(tmp_path / 'bag') as source, open_bag(tmp_path / 'out') as copy:
        original = {(c.topic, t, bytes(raw)) for c, t, raw in source.messages()}
        copied = {(c.topic, t, bytes(raw)) for c, t, raw in copy.messages()
                  if not c.topic.startswith('/pred/')}
        definitions = {c.topic: c.msgdef.data for c in source.connections}
        assert copied == original
        assert all(c.msgdef.data == definitions[c.topic] and c.digest.startswith('RIHS01_')
                   for c in copy.connections if c.topic in definitions)
        assert copy.unparseable() == SKIPPED


def test_bag_without_stored_definitions(tmp_path: Path) -> None:
    """As Foxy and Galactic recorded: no definitions in the bag; standard types come from ROS 2
    Kilted, the others cannot be parsed (but are still counted)."""
    compat_bag(tmp_path / 'bag', 'sqlite3')
    downgrade_metadata(tmp_path / 'bag', 4)
    with sqlite3.connect(tmp_path / 'bag' / 'bag.db3') as database:
        database.execute('DELETE FROM message_definitions')
    check_reads(tmp_path / 'bag', 4, {**SKIPPED, CUSTOM[0]: CUSTOM[1]})


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_split_bag(tmp_path: Path, storage: str) -> None:
    write_bag(tmp_path / 'source', 'sqlite3')
    split_bag(tmp_path / 'bag', raw_messages(tmp_path / 'source') + extra_messages(), storage)
    suffix = '.db3' if storage == 'sqlite3' else '.mcap'
    assert summarize_bag(tmp_path / 'bag').files == (f'bag_0{suffix}', f'bag_1{suffix}')
    check_reads(tmp_path / 'bag')
    whole = list(read_rgbd(tmp_path / 'source', TOPICS))
    dataset = RosbagRGBD(tmp_path / 'bag', TOPICS.image, TOPICS.depth, TOPICS.camera_info)
    last = dataset.load(len(dataset) - 1)  # random access into the second storage file
    # the colour frame comes at the depth image's size (registered depth, half resolution)
    expected = cv2.resize(whole[PAIRED[-1]].rgb, (32, 24), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(last[0], expected)


@pytest.mark.parametrize('storage, mode, shown', [
    ('sqlite3', 'file', 'zstd (file)'), ('sqlite3', 'message', 'zstd (message)'),
    ('mcap', 'file', 'zstd (file)'), ('mcap', 'message', 'zstd (message)'),
    ('mcap', 'storage', '')])  # mcap chunk compression is inside the storage file
def test_compressed_bags(tmp_path: Path, storage: str, mode: str, shown: str) -> None:
    compat_bag(tmp_path / 'bag', storage, mode)
    assert summarize_bag(tmp_path / 'bag').compression == shown
    check_reads(tmp_path / 'bag')
    plain = tmp_path / 'plain'
    compat_bag(plain, storage)
    for frame, expected in zip(read_rgbd(tmp_path / 'bag', TOPICS), read_rgbd(plain, TOPICS)):
        np.testing.assert_array_equal(frame.rgb, expected.rgb)


def _storage_file(bag: Path) -> Path:
    return next(p for p in bag.iterdir() if p.name != 'metadata.yaml')


def _truncate(bag: Path) -> None:
    data = _storage_file(bag).read_bytes()
    _storage_file(bag).write_bytes(data[:len(data) // 2])


def _metadata_text(text: str) -> Callable[[Path], None]:
    return lambda bag: (bag / 'metadata.yaml').write_text(text)


def _drop_key(bag: Path) -> None:
    meta = bag / 'metadata.yaml'
    meta.write_text(meta.read_text().replace('topics_with_message_count', 'topics'))


def _bad_compressed_message(bag: Path) -> None:
    with sqlite3.connect(_storage_file(bag)) as database:
        database.execute('UPDATE messages SET data = ? WHERE id = 3', (b'not zstd',))


@pytest.mark.parametrize('case, storage, compression, damage, detail', [
    ('truncated', 'sqlite3', None, _truncate, 'database disk image is malformed'),
    ('truncated', 'mcap', None, _truncate, 'File end magic is invalid'),
    ('truncated', 'mcap', 'file', _truncate, 'EOFError'),
    ('message', 'sqlite3', 'message', _bad_compressed_message, 'ZstdError'),
    ('yaml', 'mcap', None, _metadata_text('not: [a, rosbag'), 'ParserError'),
    ('list', 'mcap', None, _metadata_text('- a\n- b\n'), 'no rosbag2_bagfile_information'),
    ('empty', 'mcap', None, _metadata_text(''), 'no rosbag2_bagfile_information'),
    ('key', 'mcap', None, _drop_key, 'A metadata key is missing'),
    ('missing', 'mcap', None, lambda bag: _storage_file(bag).unlink(), 'files are missing'),
])
def test_damaged_bag_one_clear_error(tmp_path: Path, case: str, storage: str,
                                     compression: str | None,
                                     damage: Callable[[Path], None],
                                     detail: str) -> None:
    compat_bag(tmp_path / 'bag', storage, compression)
    damage(tmp_path / 'bag')
    for use in (summarize_bag, lambda bag: list(read_rgbd(bag, TOPICS))):
        with pytest.raises(BagError) as caught:
            use(tmp_path / 'bag')
        message = str(caught.value)
        assert message.startswith(f'cannot read bag {tmp_path / "bag"}: ')
        assert detail in message and DAMAGED in message and '\n' not in message


def test_valid_bags_are_never_called_damaged(tmp_path: Path) -> None:
    """A newer rosbag2 version is not supported, not damaged; a message whose bytes do not fit
    its type names the type."""
    compat_bag(tmp_path / 'bag', 'sqlite3')
    newer = tmp_path / 'newer'
    shutil.copytree(tmp_path / 'bag', newer)
    meta = newer / 'metadata.yaml'
    meta.write_text(meta.read_text().replace('version: 9', 'version: 10'))
    with pytest.raises(BagError, match='version 10 not supported') as caught:
        summarize_bag(newer)
    assert DAMAGED not in str(caught.value)
    with sqlite3.connect(_storage_file(tmp_path / 'bag')) as database:
        database.execute('UPDATE messages SET data = ? WHERE topic_id = '
                         '(SELECT id FROM topics WHERE name = ?)', (b'\x00\x01', TOPICS.image))
    with pytest.raises(BagError, match='a sensor_msgs/msg/Image message does not match its '
                                       'type definition') as caught:
        list(read_rgbd(tmp_path / 'bag', TOPICS))
    assert DAMAGED not in str(caught.value)


def test_paths_that_are_not_bags(tmp_path: Path) -> None:
    write_bag(tmp_path / 'both' / 'indoor')
    write_bag(tmp_path / 'both' / 'outdoor', 'mcap')
    (tmp_path / 'notes.txt').write_text('hello')
    (tmp_path / 'empty').mkdir()
    loose = tmp_path / 'loose'
    shutil.copytree(tmp_path / 'both' / 'indoor', loose)
    (loose / 'metadata.yaml').unlink()
    expected = {
        'both': 'both is not a rosbag2 bag (no metadata.yaml); it holds the bags indoor, '
                'outdoor: pass one of them',
        'notes.txt': 'notes.txt is not a rosbag2 bag; expected a rosbag2 directory with '
                     'metadata.yaml',
        'empty': 'empty is not a rosbag2 bag (no metadata.yaml); expected a rosbag2 directory',
        'loose': 'loose is not a rosbag2 bag (no metadata.yaml); expected a rosbag2 directory '
                 'with metadata.yaml and its .db3/.mcap storage files; to use its indoor.db3, '
                 'rebuild the metadata: ros2 bag reindex',
        'absent': 'absent not found; expected a rosbag2 directory with metadata.yaml',
        'both/indoor/indoor.db3': 'indoor.db3 is not a rosbag2 bag; expected a rosbag2 '
                                  'directory with metadata.yaml and its .db3/.mcap storage '
                                  'files (pass its folder)',
    }
    for name, text in expected.items():
        with pytest.raises(BagError) as caught:
            summarize_bag(tmp_path / name)
        assert text in str(caught.value) and '\n' not in str(caught.value)
        assert DAMAGED not in str(caught.value)


def test_play_skips_topics_without_rclpy_types(tmp_path: Path) -> None:
    """``bag play`` replays raw bytes: every topic whose type rclpy has is played, the others
    (the service event and the acme types here) are left out with a log line; naming one of
    them is an error."""
    pytest.importorskip('rclpy')
    from zoedepth_ros.ros.bag_play import play_bag

    compat_bag(tmp_path / 'bag', 'mcap')
    played = play_bag(tmp_path / 'bag', rate=50.0)
    assert played == COUNTS['/cam/image_raw'] + COUNTS['/cam/camera_info'] + COUNTS['/cam/depth']
    with pytest.raises(BagError, match='some_pkg/srv/Foo_Event is not installed'):
        play_bag(tmp_path / 'bag', topics=['/x/_service_event'])


def test_types_defined_in_idl(tmp_path: Path) -> None:
    """rosbag2 stores IDL-only types as 'IDL: name' sections; they decode from the bag."""
    from rosbags.rosbag2 import Writer

    idl = 'module acme_msgs { module msg { struct Blob { int32 value; }; }; };\n'
    with Writer(tmp_path / 'bag', version=9) as writer:
        connection = writer.add_connection(
            '/blob', 'acme_msgs/msg/Blob', msgdef=f'{"=" * 80}\nIDL: acme_msgs/msg/Blob\n{idl}',
            rihs01='RIHS01_' + '1' * 64)
        writer.write(connection, 5, b'\x00\x01\x00\x00\x07\x00\x00\x00')
    with open_bag(tmp_path / 'bag') as reader:
        assert reader.unparseable() == {}
        ((_, _, raw),) = reader.messages()
        assert reader.deserialize(raw, 'acme_msgs/msg/Blob').value == 7
