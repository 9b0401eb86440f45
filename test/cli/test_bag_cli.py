"""`zoedepth bag info|eval` from the command line: outputs, Ctrl-C, one clear error per bad
input with nothing written, and the eval config precedence."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from bag_fixtures import (
    OFFSETS_MS,
    TOPICS,
    UNPARSEABLE,
    compat_bag,
    custom_type_bag,
    raw_messages,
    sparse_image,
    truncate,
    write_bag,
    write_mono_depth_bag,
)
from doubles import null_estimator
from rosbags.rosbag2 import Reader

from zoedepth_ros.cli import bag_eval as bag_eval_cli
from zoedepth_ros.cli.main import main
from zoedepth_ros.config import save_config
from zoedepth_ros.model.config import get_config


@pytest.fixture(scope='module')
def tiny_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('cfg') / 'tiny.yaml'
    save_config(dataclasses.replace(get_config('zoedepth_tiny_nk'), img_size=(64, 96)), path)
    return path


def eval_args(bag: Path, out: Path, tiny_yaml: Path, *extra: str) -> list[str]:
    return ['bag', 'eval', str(bag), '--output', str(out), '--image-topic', TOPICS.image,
            '--depth-topic', TOPICS.depth, '--camera-info-topic', TOPICS.camera_info,
            '--model', str(tiny_yaml), '--random-weights', '--device', 'cpu',
            '--max-depth', '10', *extra]


def test_cli_info_and_eval_outputs(tmp_path: Path, tiny_yaml: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_bag(tmp_path / 'bag', 'mcap')
    assert main(['bag', 'info', str(tmp_path / 'bag')]) == 0
    text = capsys.readouterr().out
    assert 'Storage id:        mcap (rosbag2 version 9)' in text
    assert '/cam/depth' in text and 'Count: 5' in text and 'Count: 6' in text
    assert 'Messages:          17' in text and 'Duration:          0.501s' in text
    out = tmp_path / 'report'
    args = eval_args(tmp_path / 'bag', out, tiny_yaml, '--samples', '2', '--out-bag',
                     str(tmp_path / 'pred'), '--max-frames', '3')
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ['metrics.json', 'per_frame.csv', 'plots',
                                                      'report.md']
    assert len(list((out / 'plots').glob('*.png'))) == 6  # 4 plots + 2 sample panels
    assert len((out / 'per_frame.csv').read_text().splitlines()) == 1 + 3
    assert '| all | 3 |' in (out / 'report.md').read_text()
    assert (tmp_path / 'pred' / 'metadata.yaml').exists()
    assert main(args) == 2  # refuses to overwrite without --overwrite
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


def test_ctrl_c_leaves_nothing(tmp_path: Path, tiny_yaml: Path, monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture) -> None:
    write_bag(tmp_path / 'bag')
    monkeypatch.setattr('zoedepth_ros.cli.bag_eval.build_estimator',
                        lambda args: null_estimator(interrupt_at=3))
    code = main(eval_args(tmp_path / 'bag', tmp_path / 'report', tiny_yaml, '--out-bag',
                          str(tmp_path / 'pred')))
    assert code == 130
    assert 'interrupted after 3 of 6 frames: nothing was written' in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bag']


@pytest.mark.parametrize('case, expected', [
    ('missing_topic', "has no topic '/cam/nothing'; it has: /cam/camera_info"),
    ('truncated', 'truncated'),
    ('truncated_sqlite', 'truncated'),
    ('no_metadata', 'cannot read bag'),
    ('custom_type', 'carries acme_msgs/msg/Frame; expected sensor_msgs/msg/Image'),
    ('wrong_type', 'carries sensor_msgs/msg/CameraInfo; expected sensor_msgs/msg/Image'),
    ('image_encoding', "encoding 'bayer_rggb8', which we do not read"),
    ('depth_encoding', "encoding 'mono8', which we do not read"),
    ('no_pairs', 'frame has a /cam/depth frame within 0.02 s'),
])
def test_bad_input_one_clear_error_no_output(tmp_path: Path, tiny_yaml: Path, case: str,
                                             expected: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    bag, extra = tmp_path / 'bag', []
    if case == 'custom_type':
        custom_type_bag(bag)
    else:
        write_bag(bag, 'mcap' if case == 'truncated' else 'sqlite3',
                  image_encoding='bayer_rggb8' if case == 'image_encoding' else 'rgb8',
                  offsets=[2000.0] * 3 if case == 'no_pairs' else OFFSETS_MS)
    if case == 'depth_encoding':
        bag = tmp_path / 'mono_depth'
        write_mono_depth_bag(bag)
    if case == 'missing_topic':
        extra = ['--depth-topic', '/cam/nothing']
    elif case.startswith('truncated'):
        truncate(bag)
    elif case == 'no_metadata':
        (bag / 'metadata.yaml').write_text('not: [a, rosbag')
    elif case == 'wrong_type':
        extra = ['--image-topic', TOPICS.camera_info]
    args = eval_args(bag, tmp_path / 'report', tiny_yaml, '--out-bag', str(tmp_path / 'pred'))
    caplog.clear()
    assert main(args + extra) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == 'ERROR']
    assert len(errors) == 1 and expected in errors[0], errors
    assert not (tmp_path / 'report').exists() and not (tmp_path / 'pred').exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


def test_eval_config_file_and_flag_precedence(tmp_path: Path, tiny_yaml: Path) -> None:
    from zoedepth_ros.cli.main import build_parser

    config = tmp_path / 'eval.yaml'
    config.write_text('crop: eigen\nmin_depth: 0.5\nmax_depth: 5.0\nflip: true\n')
    parser = build_parser()
    args = parser.parse_args(eval_args(tmp_path / 'bag', tmp_path / 'out', tiny_yaml,
                                       '--eval-config', str(config)))
    settings = bag_eval_cli.eval_settings(args)  # --max-depth 10 on the command line wins
    assert (settings.crop, settings.min_depth, settings.max_depth) == ('eigen', 0.5, 10.0)
    assert args.flip and settings.edges == (0.5, 1.25, 2.5, 5.0, 10.0)


def test_cli_info_and_eval_with_unparseable_topics(tmp_path: Path, tiny_yaml: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A service event topic and a malformed definition beside the camera topics: info lists
    every topic, eval evaluates, notes the skipped topics and copies them byte for byte."""
    compat_bag(tmp_path / 'bag', 'sqlite3')
    assert main(['bag', 'info', str(tmp_path / 'bag')]) == 0
    text = capsys.readouterr().out
    assert 'Messages:          26' in text
    for topic, (msgtype, _) in UNPARSEABLE.items():
        assert f'Topic: {topic:<17} | Type: {msgtype} | Count: 3 |' in text
    caplog.clear()
    assert main(eval_args(tmp_path / 'bag', tmp_path / 'report', tiny_yaml, '--samples', '0',
                          '--out-bag', str(tmp_path / 'pred'))) == 0
    notes = [r.getMessage() for r in caplog.records if 'skipped' in r.getMessage()]
    assert notes == ['skipped 2 topic(s) whose message types cannot be parsed (not decoded; '
                     'copied unchanged into the output bag): /acme/broken '
                     '(acme_msgs/msg/Broken), /x/_service_event (some_pkg/srv/Foo_Event)']
    assert '| all | 4 |' in (tmp_path / 'report' / 'report.md').read_text()
    original = raw_messages(tmp_path / 'bag')
    copied = raw_messages(tmp_path / 'pred')
    for topic in UNPARSEABLE:
        assert ([m for m in copied if m[0] == topic] == [m for m in original if m[0] == topic]
                and len([m for m in copied if m[0] == topic]) == 3)
    with Reader(tmp_path / 'bag') as source, Reader(tmp_path / 'pred') as copy:
        definitions = [{c.topic: c.msgdef.data for c in r.connections if c.topic in UNPARSEABLE}
                       for r in (source, copy)]
    assert definitions[0] == definitions[1] == {t: d for t, (_, d) in UNPARSEABLE.items()}


@pytest.mark.parametrize('command', ['info', 'eval'])
def test_not_a_bag_one_line(tmp_path: Path, tiny_yaml: Path, command: str,
                            capsys: pytest.CaptureFixture[str],
                            caplog: pytest.LogCaptureFixture) -> None:
    """What ``zoedepth synth --format bag --domain both`` writes (a folder of two bags: for
    ``eval`` a corpus, see test_bag_corpus.py) and a plain file: one ERROR line saying what
    was expected, exit code 2, no traceback."""
    write_bag(tmp_path / 'synth' / 'indoor')
    write_bag(tmp_path / 'synth' / 'outdoor', 'mcap')
    (tmp_path / 'notes.txt').write_text('not a bag')
    expected = {'synth': f'{tmp_path / "synth"} is not a rosbag2 bag (no metadata.yaml); it '
                         'holds the bags indoor, outdoor: pass one of them',
                'notes.txt': f'{tmp_path / "notes.txt"} is not a rosbag2 bag; expected a '
                             'rosbag2 directory with metadata.yaml'}
    if command == 'eval':  # a text file is a list of bags there
        expected = {'notes.txt': f'{tmp_path / "notes.txt"}, line 1: not a bag: no such bag, '
                                 'folder, list file or glob match'}
    for name, text in expected.items():
        args = (['bag', 'info', str(tmp_path / name)] if command == 'info' else
                eval_args(tmp_path / name, tmp_path / 'report', tiny_yaml))
        caplog.clear()
        assert main(args) == 2
        errors = [r.getMessage() for r in caplog.records if r.levelname == 'ERROR']
        assert len(errors) == 1 and errors[0].startswith(text), errors
        captured = capsys.readouterr()
        assert 'Traceback' not in captured.out + captured.err
    assert not (tmp_path / 'report').exists()


def test_cli_eval_anchored_to_a_sparse_topic(tmp_path: Path, tiny_yaml: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    write_bag(tmp_path / 'bag', 'mcap', extra=sparse_image)
    out = tmp_path / 'report'
    assert main(eval_args(tmp_path / 'bag', out, tiny_yaml, '--samples', '0', '--sparse-topic',
                          '/cam/sparse', '--align-time-constant', '0')) == 0
    text = (out / 'report.md').read_text()
    assert '## Metric anchoring' in text and '| without alignment | 4 |' in text
    assert (out / 'plots' / 'alignment_scale.png').is_file()
    rows = (out / 'per_frame.csv').read_text().splitlines()
    assert rows[0].split(',')[-6:] == ['alignment_scale', 'alignment_frame_scale',
                                       'alignment_coverage', 'alignment_samples',
                                       'alignment_inliers', 'alignment_status']
    assert rows[5].endswith(',held')  # frame 4 has no samples
    # without a terminal: progress as log lines; the anchored scores say that they are
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith('bag eval, anchored: 6/6 frames (100 %)') for m in messages)
    assert any(m.startswith('anchored to /cam/sparse: delta1 ') for m in messages)
    assert any(m.startswith('without anchoring: delta1 ') for m in messages)
    assert main(eval_args(tmp_path / 'bag', tmp_path / 'bad', tiny_yaml, '--sparse-topic',
                          '/cam/nothing')) == 2


def test_cli_says_when_the_camera_is_assumed(tmp_path: Path, tiny_yaml: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    write_bag(tmp_path / 'bag', info_topic=None)
    args = eval_args(tmp_path / 'bag', tmp_path / 'report', tiny_yaml, '--max-frames', '2',
                     '--fov', '75')
    args.remove('--camera-info-topic')
    args.remove(TOPICS.camera_info)
    assert main(args) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert any('no CameraInfo for /cam/image_raw (the bag has no CameraInfo topic): '
               'intrinsics assume a 75.0 degree' in w for w in warnings), warnings
    assert any('ASSUMED a 75.0 degree horizontal field of view' in w for w in warnings)
    assert 'ASSUMED a 75.0 degree' in (tmp_path / 'report' / 'report.md').read_text()
