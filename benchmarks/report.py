"""Run the benchmark suite and write one dated report for this machine (``make bench``).

Usage:
    python benchmarks/report.py [--only NAME ...] [--skip NAME ...] [--output DIR]

Each step runs one benchmark script (or the demo model's held-out evaluation) in its own
process, one after the other, with its JSON written beside the report. The report goes to
``benchmarks/reports/<machine>/<YYYY-MM-DD>.md`` (the tables) and ``.json`` (every step's raw
JSON, the command lines, exit codes, load averages and commits): one report per machine and
day (a step run again the same day replaces its section), named after the CPU model, its
logical CPU count and the GPU when one is present. The
README's measured figures are copied from such a report, which it names; a test checks that
each figure appears in the report it names.

A step that fails is recorded with its exit code and the end of its output; the others still
run, and the exit code is 1. Steps and what they take on 2 shared cores: inference (our
forward vs transformers, ~4 min), cpu (end-to-end CPU frames/s, ~4 min), pointcloud (~1
min), node (per-frame host work, ~1 min), bag_eval (bag evaluation around a null model, ~1
min), anchoring (~15 min), multicamera (one N-camera node against N nodes, ~4 min),
corpus (8 bags: 1 and 2 workers, 2 threads, killed and resumed, ~6 min), demo_model
(held-out evaluation of the bundled demo model, ~2 min).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import REPO, cpu_name  # first: puts the repository on sys.path for a fresh clone

from zoedepth_ros.io.atomic import write_json, write_text

REPORTS = REPO / 'benchmarks' / 'reports'
DEMO_SEED, DEMO_COUNT = 7, 60
"""The demo model's held-out evaluation: synthetic scenes of a seed that no training run
used (training uses seed 0, the Makefile's held-out set seed 1), frames per domain."""


@dataclass(frozen=True)
class Step:
    """One benchmark: the commands that make ``<name>.json`` in a folder, and its tables."""

    name: str
    commands: Callable[[Path], list[list[str]]]
    tables: Callable[[dict[str, Any]], list[str]]


def _script(name: str, *args: str) -> Callable[[Path], list[list[str]]]:
    def commands(folder: Path) -> list[list[str]]:
        return [[sys.executable, str(REPO / 'benchmarks' / f'bench_{name}.py'), *args,
                 '--json', str(folder / f'{name}.json')]]
    return commands


def _demo_commands(folder: Path) -> list[list[str]]:
    cli = [sys.executable, '-m', 'zoedepth_ros.cli.main']
    data = folder / f'synth_seed{DEMO_SEED}'
    return [[*cli, 'synth', '--domain', 'both', '--size', '160x120', '--count', str(DEMO_COUNT),
             '--seed', str(DEMO_SEED), '--overwrite', '--output', str(data)],
            [*cli, 'eval', '--model', 'zoedepth_demo_nk', '--dataset', 'folder', '--split',
             'all', '--no-flip', '--threads', '2', '--root', str(data / 'indoor'), '--root',
             str(data / 'outdoor'), '-o', str(folder / 'demo_model.json')]]


def _row(cells: list[Any]) -> str:
    return '| ' + ' | '.join(str(cell) for cell in cells) + ' |'


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return [_row(header), _row(['---'] * len(header)), *(_row(r) for r in rows), '']


def _ms(value: float) -> str:
    return f'{value:.2f}'


def inference_tables(data: dict[str, Any]) -> list[str]:
    rows = []
    for r in data['results']:
        ours, theirs = r['ours'], r['transformers']
        rows.append([r['model'], f'{r["parameters"] / 1e6:.1f} M',
                     f'{ours["median_ms"] / 1e3:.2f} s', f'{theirs["median_ms"] / 1e3:.2f} s',
                     f'{r["ratio_median"]:.2f}x', f'{r["ratio_cpu_time"]:.2f}x',
                     f'+{ours["forward_peak_mb"]:.0f} / +{theirs["forward_peak_mb"]:.0f} MiB',
                     f'{r["agreement"]["max_rel_diff"]:.0e}', ours['iterations']])
        for name, variant in r['variants'].items():
            rows.append([f'{r["model"]}, {name}', '', f'{variant["median_ms"] / 1e3:.2f} s', '',
                         f'{variant["ratio_median"]:.2f}x', '',
                         f'+{variant["forward_peak_mb"]:.0f} MiB', '', variant['iterations']])
    header = ['model', 'parameters', 'ours', 'transformers', 'ratio wall', 'ratio CPU time',
              'forward peak RSS ours / theirs', 'max rel. depth diff', 'rounds']
    return _table(header, rows)


def cpu_tables(data: dict[str, Any]) -> list[str]:
    rows = [[r['case'], r['config'], f'{r["network_size"][0]}x{r["network_size"][1]}',
             f'{r["fps"]:.2f}', _ms(r['median_ms']), _ms(r['p90_ms']),
             f'{r["time_ratio_to_small"]:.2f}' if 'time_ratio_to_small' in r else '',
             r['iterations']] for r in data['results']]
    header = ['case', 'config', 'network', 'frames/s', 'median ms', 'p90 ms',
              'time / small', 'frames']
    return [f'{data["threads"]} torch threads, freed memory kept: {data["keep_heap"]}, load '
            f'average {data.get("load_average_1m")} -> {data["load_average_1m_end"]}', '',
            *_table(header, rows)]


def pointcloud_tables(data: dict[str, Any]) -> list[str]:
    rows = [[r['size'], r['layout'], _ms(r['vectorised']['median_ms']),
             _ms(r['reference']['median_ms']), f'{r["ratio"]:.1f}x', r['same_layout_rgb_and_nans'],
             f'{r["max_rel_diff_xyz"]:.1e}'] for r in data['results']]
    header = ['size', 'layout', 'vectorised ms', 'per-point reference ms', 'ratio',
              'same layout, NaNs, colours', 'max rel. xyz diff']
    return _table(header, rows)


def node_tables(data: dict[str, Any]) -> list[str]:
    rows = []
    for r in data['overhead']:
        phases = r['phases_ms']
        parts = ', '.join(f'{name} {value["median_ms"]:.2f}' for name, value in phases.items()
                          if name != 'total')
        rows.append([r['size'], r['case'], _ms(phases['total']['median_ms']),
                     _ms(phases['total']['p90_ms']), parts])
    header = ['size', 'case', 'total median ms', 'p90 ms', 'phases (median ms)']
    return [f'freed memory kept: {data["keep_freed_memory"]}, load average '
            f'{data["load_average_1m_start"]} -> {data["load_average_1m"]}', '',
            *_table(header, rows)]


def bag_eval_tables(data: dict[str, Any]) -> list[str]:
    rows = [[name.replace('_', ' '), f'{data[f"{name}_frames_per_s"]:.1f}',
             f'{data[f"{name}_frames_per_cpu_s"]:.1f}',
             f'{1e3 / data[f"{name}_frames_per_cpu_s"]:.1f}']
            for name in ('metrics_only', 'with_out_bag')]
    header = ['case', 'frames/s', 'frames per CPU-second', 'CPU ms per frame']
    return [f'null model, {data["frames"]} frames at {data["size"][0]}x{data["size"][1]}, '
            f'{data["storage"]}', '', *_table(header, rows)]


def anchoring_tables(data: dict[str, Any]) -> list[str]:
    rows = [[r['lens'], f'{r["hfov_deg"]:.1f}', r['domain'], r['variant'],
             f'{r["abs_rel"]:.3f}', f'{r["a1"]:.3f}', f'{r["rel_ratio_to_plain"]:.2f}',
             f'{r["own_head_share"]:.2f} ({r["router_own_head_share"]:.2f})']
            for r in data['results']]
    header = ['lens', 'hfov', 'domain', 'variant', 'REL', 'delta1', 'REL / plain',
              'own head (router)']
    return [f'model {data["model"]}, {data["frames_per_bag"]} frames per bag at {data["size"]}',
            '', *_table(header, rows)]


def multicamera_tables(data: dict[str, Any]) -> list[str]:
    rows = []
    single = next((r['rss_mib'] for r in data['nodes']
                   if r['kind'] == 'one_node' and r['cameras'] == 1), float('nan'))
    separate = {r['cameras']: r['total_rate_hz'] for r in data['nodes'] if r['kind'] == 'n_nodes'}
    for r in data['nodes']:
        cameras = r['per_camera'].values()
        versus = separate.get(r['cameras'])
        rows.append([r['kind'], r['cameras'], f'{r["total_rate_hz"]:.1f}',
                     ', '.join(f'{c["rate_hz"]:.1f}' for c in cameras),
                     f'{r["total_rate_hz"] / versus:.2f}x' if versus else '',
                     f'{max(c["latency_p50_ms"] for c in cameras):.0f}',
                     f'{max(c["latency_p95_ms"] for c in cameras):.0f}', f'{r["rss_mib"]:.0f}',
                     f'{r["rss_mib"] / single:.2f}x'])
    header = ['node(s)', 'cameras', 'total frames/s', 'per camera frames/s',
              'rate / N nodes', 'worst p50 latency ms', 'worst p95 latency ms', 'RSS MiB',
              'RSS / one 1-camera node']
    models = [[r['cameras'], r['device'], f'{r["batched_frames_per_s"]:.1f}',
               f'{r["sequential_frames_per_s"]:.1f}', f'{r["batching_gain"]:.2f}x']
              for r in data['model_only']]
    return [f'model {data["model"]}, {data["size"][0]}x{data["size"][1]} images at '
            f'{data["rate_hz"]:.0f} Hz per camera, {data["seconds"]:.0f} s measured', '',
            *_table(header, rows),
            *_table(['cameras', 'device', 'batched frames/s', 'sequential frames/s', 'gain'],
                    models)]


def corpus_tables(data: dict[str, Any]) -> list[str]:
    single = data['results'][0]['seconds']
    rows = []
    for r in data['results']:
        note = ''
        if 'bags_stored' in r:
            note = f'{r["bags_stored"]} of {data["bags"]} bags stored when killed'
        elif 'same_report' in r:
            note = (f'evaluated {r["bags_evaluated"]} bags; report equal to the uninterrupted '
                    f'run: {r["same_report"]}')
        speed = '' if 'killed' in r['case'] or 'resumed' in r['case'] else (
            f'{single / r["seconds"]:.2f}x')
        rows.append([r['case'], f'{r["seconds"]:.1f}', speed, r['exit_code'], note])
    return [f'model {data["model"]}, {data["bags"]} synthetic bags of {data["frames_per_bag"]} '
            'frames at 160x120, `zoedepth bag eval` from start to exit', '',
            *_table(['case', 'seconds', 'speed-up over 1 worker', 'exit code', ''], rows)]


def demo_tables(data: dict[str, Any]) -> list[str]:
    rows = [[name, f'{v["images"]:.0f}', f'{v["a1"]:.3f}', f'{v["abs_rel"]:.3f}',
             f'{v["rmse"]:.3f}', f'{v.get("router_accuracy", float("nan")):.3f}',
             f'{v["std_spearman"]:.3f}', f'{v.get("std_constant", 0):.0f}']
            for name, v in data['per_domain'].items()]
    header = ['domain', 'images', 'delta1', 'REL', 'RMSE', 'router accuracy',
              'std-error Spearman', 'constant std maps']
    return [f'model {data["model"]}, synthetic scenes seed {DEMO_SEED}, {DEMO_COUNT} frames '
            'per domain at 160x120, no flip', '', *_table(header, rows)]


STEPS = [
    Step('inference', _script('inference', '--threads', '2'), inference_tables),
    Step('cpu', _script('cpu', '--keep-heap'), cpu_tables),
    Step('pointcloud', _script('pointcloud'), pointcloud_tables),
    Step('node', _script('node'), node_tables),
    Step('bag_eval', _script('bag_eval'), bag_eval_tables),
    Step('anchoring', _script('anchoring', '--frames', '40'), anchoring_tables),
    Step('multicamera', _script('multicamera'), multicamera_tables),
    Step('corpus', _script('corpus'), corpus_tables),
    Step('demo_model', _demo_commands, demo_tables),
]


def machine_slug() -> str:
    """``<cpu model>-<n>cpu[-<gpu>]``, lower case, dashes: the report folder's name."""
    parts = [cpu_name(), f'{os.cpu_count()}cpu']
    try:
        import torch

        if torch.cuda.is_available():
            parts.append(torch.cuda.get_device_name(0))
    except ImportError:
        pass
    return re.sub(r'[^a-z0-9]+', '-', ' '.join(parts).lower()).strip('-')


def git_commit() -> str:
    """The checked-out commit (``+dirty`` with uncommitted changes to tracked files)."""
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, text=True,
                                capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'diff', '--quiet', 'HEAD'], cwd=REPO).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return commit + ('+dirty' if dirty else '')


def run_step(step: Step, folder: Path) -> dict[str, Any]:
    """Run one step's commands; its record (commands, exit code, load, output, JSON)."""
    record: dict[str, Any] = {'name': step.name, 'load_average_1m': os.getloadavg()[0],
                              'commands': [], 'exit_code': 0}
    output = []
    for command in step.commands(folder):
        print(f'[bench] {step.name}: {" ".join(command)}', flush=True)
        done = subprocess.run(command, cwd=REPO, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        print(done.stdout, end='', flush=True)
        record['commands'].append(command)
        output.append(done.stdout)
        if done.returncode != 0:
            record['exit_code'] = done.returncode
            break
    path = folder / f'{step.name}.json'
    if record['exit_code'] == 0:
        record['result'] = json.loads(path.read_text())
    record['output_tail'] = ''.join(output)[-3000:]
    return record


def markdown(date: str, slug: str, records: list[dict[str, Any]]) -> str:
    commits = sorted({record.get('commit', '?') for record in records})
    lines = [f'# Benchmark report {date}, {slug}', '',
             f'- machine: {cpu_name()}, {os.cpu_count()} logical CPUs',
             f'- commit: {", ".join(commits)}', '- command: `make bench` '
             '(`benchmarks/report.py`; a step run again later the same day replaces its '
             'section, with its own commit)', '']
    tables = {step.name: step.tables for step in STEPS}
    for record in records:
        lines += [f'## {record["name"]}', '',
                  f'load average (1 min) at the start: {record["load_average_1m"]:.2f}'
                  + (f'; commit {record["commit"]}' if len(commits) > 1 else ''), '']
        if record['exit_code'] != 0:
            lines += [f'FAILED (exit code {record["exit_code"]}):', '', '```',
                      record['output_tail'].rstrip(), '```', '']
            continue
        result = record['result']
        if 'versions' in result:
            versions = ', '.join(f'{k} {v}' for k, v in result['versions'].items())
            lines += [f'{result.get("device_name", "")}; {versions}', '']
        lines += tables[record['name']](result)
    return '\n'.join(lines).rstrip() + '\n'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [step.name for step in STEPS]
    parser.add_argument('--only', nargs='+', choices=names, default=names)
    parser.add_argument('--skip', nargs='+', choices=names, default=[])
    parser.add_argument('--render', action='store_true',
                        help="only write the day's report again from its JSON (new tables)")
    parser.add_argument('--output', type=Path, default=REPORTS,
                        help='reports folder (default benchmarks/reports)')
    args = parser.parse_args()
    date = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d')
    slug, commit = machine_slug(), git_commit()
    target = args.output / slug / date
    earlier: dict[str, dict[str, Any]] = {}
    if target.with_suffix('.json').exists():  # the day's report: steps run now replace theirs
        day = json.loads(target.with_suffix('.json').read_text())
        for record in day['steps']:
            earlier[record['name']] = {'commit': day.get('commit', 'unknown'), **record}
    fresh = []
    with tempfile.TemporaryDirectory(prefix='bench_') as folder:
        for step in STEPS:
            if step.name in args.only and step.name not in args.skip and not args.render:
                fresh.append({**run_step(step, Path(folder)), 'commit': commit})
    merged = {**earlier, **{record['name']: record for record in fresh}}
    records = [merged[step.name] for step in STEPS if step.name in merged]
    report = {'date': date, 'machine': slug, 'cpu': cpu_name(), 'cpus': os.cpu_count(),
              'steps': records}
    write_json(target.with_suffix('.json'), report)
    write_text(target.with_suffix('.md'), markdown(date, slug, records))
    failed = [r['name'] for r in fresh if r['exit_code'] != 0]
    print(f'[bench] wrote {target}.md and .json' + (f'; FAILED: {", ".join(failed)}'
                                                      if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
