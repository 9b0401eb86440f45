"""bag eval on a corpus: bags named every way, a row per bag and the pooled tables, an
unreadable bag listed while the run goes on, and resumption that evaluates only what is
missing or changed and gives the same report."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bag_fixtures import TOPICS, truncate, write_bag
from doubles import null_estimator
from rosbags.rosbag2 import Reader

from zoedepth_ros.cli.main import main
from zoedepth_ros.errors import InputError
from zoedepth_ros.evaluation.corpus import balance, expand_corpus, pooled_corpus
from zoedepth_ros.metrics import METRIC_KEYS

REPO = Path(__file__).resolve().parents[2]


def corpus(root: Path) -> list[Path]:
    """Three readable bags (one with a different depth offset pattern) and a truncated one."""
    bags = [root / 'fleet' / 'day1' / 'run_a', root / 'fleet' / 'day1' / 'run_b',
            root / 'fleet' / 'day2' / 'run_c']
    for index, bag in enumerate(bags):
        write_bag(bag, 'mcap', offsets=[0.0, 5.0, None, -3.0, 1.0][:5 - index])
    write_bag(root / 'fleet' / 'day2' / 'broken', 'sqlite3')
    truncate(root / 'fleet' / 'day2' / 'broken')
    return bags


def args(inputs: list[Path | str], out: Path, *extra: str) -> list[str]:
    return ['bag', 'eval', *map(str, inputs), '--output', str(out), '--image-topic',
            TOPICS.image, '--depth-topic', TOPICS.depth, '--camera-info-topic',
            TOPICS.camera_info, '--max-depth', '10', *extra]


def scores(out: Path) -> dict:
    """The corpus report's metrics.json without the per-bag evaluation times."""
    report = json.loads((out / 'metrics.json').read_text())
    for row in report['bags']:
        row.pop('seconds')
    return report


@pytest.fixture
def null_model(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The null model (2 m everywhere) for every bag eval; counts the models built."""
    built: list[int] = []

    def build(_: object) -> object:
        built.append(1)
        return null_estimator(preset='zoedepth_tiny_nk', depth_m=2.0)

    monkeypatch.setattr('zoedepth_ros.cli.bag_eval.build_estimator', build)
    return built


def test_a_corpus_gives_a_row_per_bag_pooled_tables_and_the_broken_bag_listed(
        tmp_path: Path, null_model: list[int], caplog: pytest.LogCaptureFixture) -> None:
    bags = corpus(tmp_path)
    out = tmp_path / 'report'
    assert main(args([tmp_path / 'fleet'], out)) == 0, caplog.text
    report = json.loads((out / 'metrics.json').read_text())
    assert [row['name'] for row in report['bags']] == ['run_a', 'run_b', 'run_c']
    assert [item['bag'] for item in report['failed']] == [
        str((tmp_path / 'fleet' / 'day2' / 'broken').resolve())]
    assert 'truncated' in report['failed'][0]['reason']
    singles = []
    for index, bag in enumerate(bags):  # each bag alone, as before: the same metrics
        alone = tmp_path / f'alone_{index}'
        assert main(args([bag], alone)) == 0
        singles.append(json.loads((alone / 'metrics.json').read_text()))
        assert report['bags'][index]['abs_rel'] == singles[-1]['overall']['abs_rel']
        assert report['bags'][index]['evaluated'] == singles[-1]['evaluated']
    total = sum(s['evaluated'] for s in singles)
    assert report['overall']['frames'] == total == 4 + 3 + 2
    expected = sum(s['overall']['abs_rel'] * s['evaluated'] for s in singles) / total
    assert report['overall']['abs_rel'] == pytest.approx(expected, rel=1e-12)
    text = (out / 'report.md').read_text()
    assert '## Per bag' in text and '## Worst bags (REL)' in text and 'broken' in text
    assert '| overall | 9 |' in text
    # the plots over the corpus pool every bag's pixels
    pixels = report['pixel_stats']
    counts = np.array([s['pixel_stats']['pixels_by_depth'] for s in singles], dtype=float)
    assert pixels['pixels_by_depth'] == counts.sum(axis=0).tolist() and counts.sum() > 0
    rel = np.array([s['pixel_stats']['abs_rel_by_depth'] for s in singles], dtype=float)
    busy = int(np.argmax(counts.sum(axis=0)))
    assert pixels['abs_rel_by_depth'][busy] == pytest.approx(
        np.nansum(rel[:, busy] * counts[:, busy]) / counts[:, busy].sum(), rel=1e-12)
    assert pixels['error_histogram'] == np.sum(
        [s['pixel_stats']['error_histogram'] for s in singles], axis=0).tolist()
    for name in ('error_vs_depth', 'error_histogram', 'per_bag'):
        assert (out / 'plots' / f'{name}.png').stat().st_size > 5000
        assert f'(plots/{name}.png)' in text


def test_an_interrupted_corpus_resumes_with_what_is_missing_and_the_same_report(
        tmp_path: Path, null_model: list[int], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level('INFO')
    bags = corpus(tmp_path)
    out = tmp_path / 'report'
    inputs = [bags[0], tmp_path / 'fleet' / 'day2', str(tmp_path / 'fleet' / 'day1' / 'run_*')]
    assert main(args(inputs, out)) == 0
    first = scores(out)
    assert main(args(inputs, out)) == 0  # all stored: no model is even loaded
    assert '4 bag(s): 3 stored from an earlier run, 1 to evaluate' in caplog.text
    assert 'broken: cannot read bag' in caplog.text  # tried again, listed again
    assert len(null_model) == 1 and scores(out) == first
    # a run killed after two bags: the third bag's stored result is missing
    stored = sorted((out / 'bags').glob('run_c-*'))
    assert len(stored) == 1
    for path in stored[0].rglob('*'):
        if path.is_file():
            path.unlink()
    for path in sorted(stored[0].rglob('*'), reverse=True):
        path.rmdir()
    stored[0].rmdir()
    caplog.clear()
    assert main(args(inputs, out)) == 0
    assert '4 bag(s): 2 stored from an earlier run, 2 to evaluate' in caplog.text
    assert scores(out) == first  # the same report as the uninterrupted run
    # a bag that changed (rewritten: new modification time) is evaluated again
    storage = next(p for p in bags[1].iterdir() if p.suffix == '.mcap')
    os.utime(storage, ns=(storage.stat().st_atime_ns, storage.stat().st_mtime_ns + 10**9))
    caplog.clear()
    assert main(args(inputs, out)) == 0
    assert '4 bag(s): 2 stored from an earlier run, 2 to evaluate' in caplog.text
    # other settings are other results
    caplog.clear()
    assert main(args(inputs, out, '--min-depth', '0.5')) == 0
    assert '4 bag(s): 0 stored from an earlier run, 4 to evaluate' in caplog.text


def test_out_bag_gets_an_output_bag_per_input_bag_at_its_relative_path(
        tmp_path: Path, null_model: list[int], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level('INFO')
    corpus(tmp_path)
    write_bag(tmp_path / 'fleet' / 'day2' / 'run_a', 'mcap', offsets=[0.0, 2.0])  # a twin name
    out, pred = tmp_path / 'report', tmp_path / 'pred'
    assert main(args([tmp_path / 'fleet'], out, '--out-bag', str(pred))) == 0
    counts = {}
    for meta in sorted(pred.rglob('metadata.yaml')):
        with Reader(meta.parent) as reader:
            counts[str(meta.parent.relative_to(pred))] = {
                c.topic: c.msgcount for c in reader.connections}
    assert sorted(counts) == ['day1/run_a', 'day1/run_b', 'day2/run_a', 'day2/run_c']
    assert [counts[name]['/zoedepth/depth/image'] for name in sorted(counts)] == [5, 4, 2, 3]
    assert all(c['/zoedepth/depth/image'] == c[TOPICS.image] for c in counts.values())
    caplog.clear()  # stored results, output bags in place: nothing to evaluate but the broken
    assert main(args([tmp_path / 'fleet'], out, '--out-bag', str(pred))) == 0
    assert '5 bag(s): 4 stored from an earlier run, 1 to evaluate' in caplog.text
    caplog.clear()  # stored results without the output bags asked for now: evaluated again
    assert main(args([tmp_path / 'fleet'], out, '--out-bag', str(tmp_path / 'pred2'))) == 0
    assert '5 bag(s): 0 stored from an earlier run, 5 to evaluate' in caplog.text
    assert len(list((tmp_path / 'pred2').rglob('metadata.yaml'))) == 4


def test_bags_are_named_every_way_once_and_balanced_by_size(tmp_path: Path) -> None:
    bags = corpus(tmp_path)
    listing = tmp_path / 'lists' / 'bags.txt'
    listing.parent.mkdir()
    listing.write_text('# the fleet\n../fleet/day1/run_a\n\n../fleet/day1/run_b  # again\n')
    found = expand_corpus([str(listing), str(bags[0]), str(tmp_path / 'fleet' / 'day1')])
    assert found == sorted(b.resolve() for b in bags[:2])
    assert len(expand_corpus([str(tmp_path / 'fleet')])) == 4  # the broken one too
    with pytest.raises(InputError, match='no such bag, folder, list file or glob match'):
        expand_corpus([str(tmp_path / 'nothing')])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(InputError, match='a folder without bags'):
        expand_corpus([str(tmp_path / 'empty')])
    shares = balance(bags, 2)
    assert sorted(sum(shares, [])) == sorted(bags) and all(shares)


def test_pooling_takes_bags_in_sorted_order() -> None:
    def metrics(rel: float, frames: int) -> dict:
        values = {key: rel for key in METRIC_KEYS}
        return {'overall': values, 'evaluated': frames,
                'per_domain': {'indoor': {**values, 'frames': frames}},
                'per_range': [{'low_m': 0.0, 'high_m': 1.0, **values, 'frames': frames}]}

    one = {'b': metrics(0.1, 3), 'a': metrics(0.3, 1)}
    other = {'a': metrics(0.3, 1), 'b': metrics(0.1, 3)}
    assert pooled_corpus(one) == pooled_corpus(other)
    assert pooled_corpus(one)['overall']['abs_rel'] == pytest.approx(0.15)


def test_a_settings_error_in_the_workers_is_one_line_each_and_exit_code_2(
        tmp_path: Path) -> None:
    corpus(tmp_path)
    done = subprocess.run([sys.executable, '-m', 'zoedepth_ros.cli.main', *args(
        [tmp_path / 'fleet'], tmp_path / 'out', '--min-depth', '50', '--workers', '2')],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    # each worker logs it, unless the launcher stops the second first
    assert done.stderr.count('need 0 <= min_depth < max_depth, got 50.0, 10.0') >= 1
    assert 'stopped on the error above' in done.stderr and 'Traceback' not in done.stderr


def rank_processes(pid: int) -> dict[int, int]:
    """LOCAL_RANK -> process id of the worker processes below ``pid`` (Linux /proc)."""
    found: dict[int, int] = {}
    for entry in Path('/proc').iterdir():
        try:
            environ = (entry / 'environ').read_bytes().split(b'\0')
            ancestry = (entry / 'stat').read_text().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(ancestry[1]) in (pid, *found.values()):
            for item in environ:
                if item.startswith(b'LOCAL_RANK='):
                    found[int(item.split(b'=')[1])] = int(entry.name)
    return found


@pytest.mark.slow
def test_two_workers_killed_and_resumed_give_the_single_process_results(tmp_path: Path) -> None:
    """--workers 2: two ranks over gloo (torch.distributed's launcher, as torchrun) share the
    bags. One rank is killed (SIGKILL) once the first bag is stored; the run ends with one
    line, the next run evaluates only what is missing, and every bag's metrics and the merged
    report are identical to one process's."""
    corpus(tmp_path)
    common = ['--model', 'zoedepth_demo_nk', '--device', 'cpu', '--threads', '1']
    single, split = tmp_path / 'single', tmp_path / 'split'
    assert main(args([tmp_path / 'fleet'], single, *common)) == 0
    command = [sys.executable, '-m', 'zoedepth_ros.cli.main',
               *args([tmp_path / 'fleet'], split, *common, '--workers', '2')]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not list((split / 'bags').glob('*/result.json')) and process.poll() is None:
            assert time.monotonic() < deadline, 'no bag stored within 300 s'
            time.sleep(0.01)
        ranks = rank_processes(process.pid)
        for pid in ranks.values():  # hold both ranks still while one is chosen
            os.kill(pid, signal.SIGSTOP)
        stored = sorted(path.parent.name for path in (split / 'bags').glob('*/result.json'))
        # balanced by size, rank 0 has run_a then run_c, rank 1 broken then run_b: run_c, the
        # second of rank 0's bags, is not done when the first bag of either rank is stored
        assert sorted(ranks) == [0, 1] and 1 <= len(stored) <= 2, (ranks, stored)
        assert not any(name.startswith('run_c-') for name in stored), stored
        os.kill(ranks[0], signal.SIGKILL)
        os.kill(ranks[1], signal.SIGCONT)
        output = process.communicate(timeout=120)[0]
    finally:
        process.kill()
    assert process.returncode == 1, output
    assert 'Traceback' not in output and 'worker 0 ended by SIGKILL' in output, output
    assert 'another rank ended before the merge' in output, output  # rank 1, one line
    assert 'run the same command again to evaluate what is missing' in output, output
    half_written = list((split / 'bags').glob('.*.partial-*'))
    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert not list((split / 'bags').glob('.*.partial-*'))  # what the killed rank left
    assert ('removed what an interrupted run left half-written' in resumed.stderr) == bool(
        half_written)
    done = int(re.search(r'4 bag\(s\): (\d) stored from an earlier run',
                         resumed.stderr).group(1))
    assert 1 <= done <= 2, resumed.stderr  # the killed rank's second bag was evaluated again
    assert scores(split) == scores(single)
    timing = {'seconds', 'frames_per_s'}
    for stored_bag in sorted((single / 'bags').glob('run_*')):
        twin = split / 'bags' / stored_bag.name
        one, other = (json.loads((folder / 'metrics.json').read_text())
                      for folder in (stored_bag, twin))
        assert {k: v for k, v in one.items() if k not in timing} == {
            k: v for k, v in other.items() if k not in timing}
        rows = [list(csv.DictReader((folder / 'per_frame.csv').open())) for folder in
                (stored_bag, twin)]
        for row in rows[0] + rows[1]:
            row.pop('model_ms')
        assert rows[0] == rows[1] and len(rows[0]) >= 2
