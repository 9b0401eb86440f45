"""Progress without a terminal: a log line every few seconds and one at the end, with the
count, the share, the rate and the time left; on a terminal, a bar."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from zoedepth_ros.cli.corpus_progress import CorpusProgress
from zoedepth_ros.cli.progress import Progress, duration


def test_log_lines_carry_count_share_rate_and_eta(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, 'zoedepth.progress')
    with Progress('bag eval', 10, 'frame', every_s=0.05, terminal=False) as bar:
        for _ in range(10):
            time.sleep(0.02)
            bar.update()
    lines = [r.getMessage() for r in caplog.records]
    assert 2 <= len(lines) <= 6  # every ~0.05 s of 0.2 s, plus the last
    assert lines[-1].startswith('bag eval: 10/10 frames (100 %), ') and 'ETA 0 s' in lines[-1]
    rate = float(lines[-1].split(', ')[1].split('/s')[0])
    assert 20 < rate < 60  # one per 0.02 s, give or take the machine
    first = lines[0]
    assert first.startswith('bag eval: ') and 'ETA ' in first and '/10 frames (' in first


def test_unknown_totals_resumed_runs_notes_and_silence(caplog) -> None:
    caplog.set_level(logging.INFO, 'zoedepth.progress')
    with Progress('train', 100, 'step', initial=90, terminal=False) as bar:
        bar.note(loss='0.1234')
        bar.update(10)
    assert caplog.records[-1].getMessage().startswith('train: 100/100 steps (100 %)')
    assert caplog.records[-1].getMessage().endswith('loss 0.1234')
    caplog.clear()
    with Progress('labels', None, 'frame', terminal=False) as bar:
        bar.update(3)
    assert caplog.records[-1].getMessage().startswith('labels: 3 frames, ')
    caplog.clear()
    with Progress('quiet', 5, enabled=False, terminal=False) as bar:
        bar.update(5)
    with Progress('failed', 5, terminal=False) as bar:
        bar.update(0)  # nothing done: no closing line
    assert not caplog.records


def test_durations_read_like_a_person_writes_them() -> None:
    assert [duration(s) for s in (4.4, 65, 7620, float('inf'))] == [
        '4 s', '1 min 05 s', '2 h 07 min', '?']


def test_rank_0_shows_the_sum_over_every_rank_of_a_corpus(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two ranks of one run in one process: each rank's count goes through its file."""
    caplog.set_level(logging.INFO, logger='zoedepth.progress')
    zero = CorpusProgress(tmp_path, 0, 2, 4, every_s=0.0, terminal=False)
    one = CorpusProgress(tmp_path, 1, 2, 3, every_s=0.0, terminal=False)
    assert zero.counts() == (0, 7)
    zero.update(2)
    one.update(3)  # within PUBLISH_S of its last write: not written yet
    assert zero.counts() == (2, 7)
    one.finish()
    assert zero.counts() == (5, 7)
    one.close()
    assert caplog.text == ''  # rank 1 says nothing
    zero.update(2)
    zero.close()
    assert caplog.text.count('bag eval corpus: 7/7 frames (100 %)') == 1
    assert not (tmp_path / '.progress').exists()  # rank 0 removed the counts
    alone = CorpusProgress(tmp_path, 0, 1, 3, every_s=0.0, terminal=False)
    alone.update(3)
    alone.close()
    assert 'bag eval corpus: 3/3 frames (100 %)' in caplog.text
    assert not (tmp_path / '.progress').exists()  # one process writes no files
