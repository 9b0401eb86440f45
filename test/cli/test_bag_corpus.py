"""bag eval on a corpus: bags named every way, a row per bag and the pooled tables, an
unreadable bag listed while the run goes on, and resumption that evaluates only what is
missing or changed and gives the same report."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from bag_fixtures import TOPICS, truncate, write_bag
from doubles import null_estimator

from zoedepth_ros.cli.main import main
from zoedepth_ros.errors import InputError
from zoedepth_ros.evaluation.corpus import balance, expand_corpus, pooled_corpus
from zoedepth_ros.metrics import METRIC_KEYS


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


@pytest.mark.slow
def test_two_worker_processes_give_the_single_process_results(tmp_path: Path) -> None:
    """--workers 2: two ranks over gloo (torch.distributed's launcher, as torchrun) share the
    bags; every bag's metrics and the merged report are identical to one process's."""
    corpus(tmp_path)
    common = ['--model', 'zoedepth_demo_nk', '--device', 'cpu', '--threads', '1']
    single, split = tmp_path / 'single', tmp_path / 'split'
    assert main(args([tmp_path / 'fleet'], single, *common)) == 0
    assert main(args([tmp_path / 'fleet'], split, *common, '--workers', '2')) == 0
    assert scores(split) == scores(single)
    timing = {'seconds', 'frames_per_s'}
    for stored in sorted((single / 'bags').glob('run_*')):
        twin = split / 'bags' / stored.name
        one, other = (json.loads((folder / 'metrics.json').read_text())
                      for folder in (stored, twin))
        assert {k: v for k, v in one.items() if k not in timing} == {
            k: v for k, v in other.items() if k not in timing}
        rows = [list(csv.DictReader((folder / 'per_frame.csv').open())) for folder in
                (stored, twin)]
        for row in rows[0] + rows[1]:
            row.pop('model_ms')
        assert rows[0] == rows[1] and len(rows[0]) >= 2
