"""Bag corpora: one and two worker processes, one process with two threads, and a resumed run.

Usage:
    python benchmarks/bench_corpus.py [--bags 8] [--frames 24] [--model zoedepth_demo_nk]
        [--json PATH]

Writes ``--bags`` synthetic bags (``zoedepth synth --format bag``, alternating indoor and
outdoor, ``--frames`` frames each at 160x120) and times ``zoedepth bag eval`` on the folder,
each run in a fresh output folder, as a user runs it (the ``zoedepth`` command, start-up and
exit included):

- ``1 worker, 1 thread`` and ``2 workers, 1 thread each`` (target: at least 1.7x faster on
  two cores), and ``1 worker, 2 threads`` for comparison;
- ``killed and resumed``: two workers, one killed (SIGKILL) halfway through, then the same
  command again: the time of the second run, which evaluates only what is missing, and
  whether its report equals the uninterrupted run's (per-bag times aside).

Each worker process pays a fixed start-up (importing torch, timm and torchvision: about 3 s of
CPU here) and the launching process about 1.4 s more, so the gain of two workers grows with
the corpus: the default 96 frames per bag (under 10 s of a 10 Hz camera) keeps the run short
and still small beside real bags of minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import DEFAULT_OUTPUT_DIR, REPO, machine_facts, versions, write_report


def cli(*args: str) -> list[str]:
    return [sys.executable, '-m', 'zoedepth_ros.cli.main', *args]


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / 'stat').read_text().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def evaluate(bags: Path, out: Path, model: str, workers: int, threads: int,
             kill_after_s: float | None = None) -> dict[str, Any]:
    command = cli('bag', 'eval', str(bags), '-o', str(out), '--model', model, '--device', 'cpu',
                  '--threads', str(threads), '--workers', str(workers), '--samples', '0')
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    killed = None
    if kill_after_s is not None:
        time.sleep(kill_after_s)
        workers_now = [p for child in children(process.pid) for p in [child, *children(child)]]
        ranks = [p for p in workers_now if 'zoedepth_ros.cli.main' in
                 Path(f'/proc/{p}/cmdline').read_text().replace('\0', ' ')]
        if ranks:
            killed = ranks[-1]
            os.kill(killed, signal.SIGKILL)
    _, err = process.communicate()
    return {'workers': workers, 'threads': threads, 'seconds': time.perf_counter() - start,
            'exit_code': process.returncode, 'killed_pid': killed, 'stderr_tail': err[-400:]}


def scores(out: Path) -> dict[str, Any] | None:
    path = out / 'metrics.json'
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    for row in report['bags']:
        row.pop('seconds')
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bags', type=int, default=8)
    parser.add_argument('--frames', type=int, default=96)
    parser.add_argument('--model', default='zoedepth_demo_nk')
    parser.add_argument('--json', default=str(DEFAULT_OUTPUT_DIR / 'corpus.json'))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix='corpus_') as folder:
        root = Path(folder)
        for index in range(args.bags):
            domain = ('indoor', 'outdoor')[index % 2]
            subprocess.run(cli('synth', '--domain', domain, '--count', str(args.frames),
                               '--size', '160x120', '--seed', str(100 + index), '--format',
                               'bag', '--output', str(root / 'bags' / f'bag_{index:02d}')),
                           cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        cases = [('1 worker, 1 thread', 1, 1), ('2 workers, 1 thread each', 2, 1),
                 ('1 worker, 2 threads', 1, 2)]
        for name, workers, threads in cases:
            row = evaluate(root / 'bags', root / f'out_{workers}_{threads}', args.model,
                           workers, threads)
            rows.append({'case': name, **row})
            print(f'{name:26s} {row["seconds"]:6.1f} s (exit {row["exit_code"]})', flush=True)
        reference = scores(root / 'out_1_1')
        half = rows[1]['seconds'] / 2
        first = evaluate(root / 'bags', root / 'out_resume', args.model, 2, 1, half)
        stored = len(list((root / 'out_resume' / 'bags').glob('*/result.json')))
        resumed = evaluate(root / 'bags', root / 'out_resume', args.model, 2, 1)
        same = scores(root / 'out_resume') == reference
        rows.append({'case': 'killed halfway (2 workers)', **first, 'bags_stored': stored})
        rows.append({'case': 'resumed (2 workers)', **resumed, 'same_report': same,
                     'bags_evaluated': args.bags - stored})
        print(f'killed halfway             {first["seconds"]:6.1f} s (exit '
              f'{first["exit_code"]}, killed pid {first["killed_pid"]})')
        print(f'resumed                    {resumed["seconds"]:6.1f} s (exit '
              f'{resumed["exit_code"]}), report equal to the uninterrupted one: {same}')
    speedup = rows[0]['seconds'] / rows[1]['seconds']
    print(f'2 workers against 1: {speedup:.2f}x (target 1.7x)')
    report = {'benchmark': 'corpus', **machine_facts('cpu'), 'versions': versions(),
              'bags': args.bags, 'frames_per_bag': args.frames, 'model': args.model,
              'results': rows, 'speedup_2_workers': speedup,
              'speedup_2_threads': rows[0]['seconds'] / rows[2]['seconds']}
    print(f'wrote {write_report(args.json, report)}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
